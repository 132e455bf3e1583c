-- Two indexes on reviews were keyed by reviewer first: UNIQUE (reviewer_id, review_id)
-- for idempotency and (reviewer_id, answered_at) for "answers today". With 64 reviewers
-- answering, a group commit of ~25 answers touched ~25 leaf pages in each — 65 of the
-- 116 pages a commit wrote to the WAL in the claim-and-answer benchmark (read from the
-- WAL's frame headers and `dbstat`). So:
-- * an answer's idempotency key is scoped to its task: UNIQUE (task_id, reviewer_id,
--   review_id). A retry is sent to the same task, so it is still found; tasks are answered
--   roughly in the order they were queued, so inserts land on a few pages. The index also
--   serves lookups by task, so reviews_task goes.
-- * answers per reviewer and UTC day are counted in reviewer_days, whose rows for one day
--   sit together on a page or two.
-- reviews is rebuilt (a UNIQUE constraint cannot be dropped in place), as in 0005.

CREATE TABLE reviews_new (
    id               INTEGER PRIMARY KEY,
    review_id        TEXT    NOT NULL,         -- the client's idempotency key, per task
    reviewer_id      INTEGER NOT NULL REFERENCES reviewers(id),
    task_id          INTEGER NOT NULL REFERENCES tasks(id),
    item_id          INTEGER NOT NULL REFERENCES items(id),
    lease_id         INTEGER NOT NULL REFERENCES leases(id),
    kind             TEXT    NOT NULL CHECK (kind = 'label' OR kind = 'escalate' OR kind = 'skip'),
    label            TEXT,
    reason           TEXT,
    failure_category TEXT,
    note             TEXT,
    claimed_at       INTEGER NOT NULL,
    answered_at      INTEGER NOT NULL,
    result           TEXT    NOT NULL,         -- the answer given to the client (JSON)
    UNIQUE (task_id, reviewer_id, review_id)
);
INSERT INTO reviews_new (id, review_id, reviewer_id, task_id, item_id, lease_id, kind, label, reason, failure_category,
                         note, claimed_at, answered_at, result)
    SELECT id, review_id, reviewer_id, task_id, item_id, lease_id, kind, label, reason, failure_category,
           note, claimed_at, answered_at, result FROM reviews;
DROP TABLE reviews;
ALTER TABLE reviews_new RENAME TO reviews;
CREATE INDEX reviews_item ON reviews (item_id);

CREATE TABLE reviewer_days (
    day         INTEGER NOT NULL,              -- UTC day: answered_at / 86400000
    reviewer_id INTEGER NOT NULL,
    answers     INTEGER NOT NULL,
    PRIMARY KEY (day, reviewer_id)
) WITHOUT ROWID;
INSERT INTO reviewer_days (day, reviewer_id, answers)
    SELECT answered_at / 86400000, reviewer_id, count(*) FROM reviews GROUP BY 1, 2;
