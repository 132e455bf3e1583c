-- Answer fields (issue #17): typed fields a reviewer fills in beside the label.
-- * projects.answer_fields: the schema (a JSON array of field specs, `[]` for none),
--   checked by core's `fields` module at creation.
-- * reviews.fields: an answer's checked fields (a JSON object; NULL when none were sent).
-- * labels.fields: a human resolution's resolved fields (majority, median, last text),
--   computed by core's `review::plan`; NULL for rows without them (auto decisions).
ALTER TABLE projects ADD COLUMN answer_fields TEXT NOT NULL DEFAULT '[]';
ALTER TABLE reviews ADD COLUMN fields TEXT;
ALTER TABLE labels ADD COLUMN fields TEXT;
