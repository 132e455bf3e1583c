-- The browser console: reviewer passwords and sign-in sessions, and the indexes the
-- dashboard's time series and a reviewer's daily count read.

-- An Argon2id PHC string, or NULL: the reviewer signs in with a key only.
ALTER TABLE reviewers ADD COLUMN password_hash TEXT;

-- A browser session, stored as the SHA-256 of its cookie. It acts as the key it was
-- opened with (revoking the key ends it) or as the reviewer who gave a password.
CREATE TABLE web_sessions (
    hash        TEXT    PRIMARY KEY,
    key_hash    TEXT,
    reviewer_id INTEGER REFERENCES reviewers(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    CHECK ((key_hash IS NULL) <> (reviewer_id IS NULL))
) WITHOUT ROWID;

CREATE INDEX reviews_reviewer_time ON reviews (reviewer_id, answered_at);
CREATE INDEX items_project_time    ON items (project_id, created_at);
