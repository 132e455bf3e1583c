-- Answer fields (issue #17; see the SQLite migration 0010 for each column's meaning).
ALTER TABLE projects ADD COLUMN answer_fields JSONB NOT NULL DEFAULT '[]';
ALTER TABLE reviews ADD COLUMN fields JSONB;
ALTER TABLE labels ADD COLUMN fields JSONB;
