-- Multi-label projects (issue #17; see the SQLite migration 0013 for the column's meaning).
ALTER TABLE projects ADD COLUMN label_mode TEXT NOT NULL DEFAULT 'single' CHECK (label_mode IN ('single', 'multi'));
