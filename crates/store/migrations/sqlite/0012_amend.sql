-- Undo and amend (issue #21): a reviewer's change of mind about an answer already stored.
-- reviews keeps each reviewer's current answer (the label is replaced in place, so that
-- consensus, agreement and exports read what the reviewer now says); amendments keeps the
-- history — what it was, what it became, why — and the result the reviewer was told, so
-- that a retried amend_id gets it again. Core's amend.rs decides what a change does.
CREATE TABLE amendments (
    id          INTEGER PRIMARY KEY,
    amend_id    TEXT    NOT NULL,              -- the client's idempotency key, per reviewer
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
    review      INTEGER NOT NULL REFERENCES reviews(id),
    previous    TEXT,                          -- the label before (NULL: an escalation)
    label       TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome = 'undone' OR outcome = 'amended'),
    reason      TEXT,
    result      TEXT    NOT NULL,              -- the answer given to the client (JSON)
    amended_at  INTEGER NOT NULL,
    UNIQUE (reviewer_id, amend_id)
);
CREATE INDEX amendments_review ON amendments (review);
