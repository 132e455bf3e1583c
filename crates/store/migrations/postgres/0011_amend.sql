-- Undo and amend (see the SQLite migration 0010 for why reviews is changed in place and
-- amendments keeps the history).
CREATE TABLE amendments (
    id          BIGSERIAL PRIMARY KEY,
    amend_id    TEXT    NOT NULL,
    reviewer_id BIGINT  NOT NULL REFERENCES reviewers(id),
    review      BIGINT  NOT NULL REFERENCES reviews(id),
    previous    TEXT,
    label       TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('undone', 'amended')),
    reason      TEXT,
    result      JSONB   NOT NULL,
    amended_at  BIGINT  NOT NULL,
    UNIQUE (reviewer_id, amend_id)
);
CREATE INDEX amendments_review ON amendments (review);
