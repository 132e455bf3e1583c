-- The browser console (see the SQLite migration).
ALTER TABLE reviewers ADD COLUMN password_hash TEXT;

CREATE TABLE web_sessions (
    hash        TEXT   PRIMARY KEY,
    key_hash    TEXT,
    reviewer_id BIGINT REFERENCES reviewers(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    CHECK ((key_hash IS NULL) <> (reviewer_id IS NULL))
);

CREATE INDEX reviews_reviewer_time ON reviews (reviewer_id, answered_at);
CREATE INDEX items_project_time    ON items (project_id, created_at);
