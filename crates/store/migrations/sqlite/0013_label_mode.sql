-- Multi-label projects (issue #17): whether an answer is one label or a set of labels.
-- * projects.label_mode: 'single' (today's projects) or 'multi'. A multi-label answer,
--   resolution, label-feed row or gold answer is stored in the same `label` TEXT columns as
--   its canonical encoding, the JSON array of its labels in project order (core's `label`).
ALTER TABLE projects ADD COLUMN label_mode TEXT NOT NULL DEFAULT 'single' CHECK (label_mode IN ('single', 'multi'));
