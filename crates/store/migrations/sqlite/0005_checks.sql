-- CHECK constraints written as `x IN ('a', 'b', 'c')` made SQLite build a temporary
-- B-tree for the list on every INSERT and UPDATE of the row (lists of three or more
-- values; `EXPLAIN` shows an OpenEphemeral): ~3% of the writer's time in an import, more
-- in claim-and-answer loops, which write leases and reviews. The same constraints as
-- comparisons cost nothing. SQLite cannot change a CHECK in place, so the four tables are
-- rebuilt (its documented 12-step procedure: the migration runs with foreign keys off and
-- checks them before it commits; no view or trigger refers to these tables), with the
-- same columns, rows and indexes.

CREATE TABLE tasks_new (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    item_id     INTEGER NOT NULL REFERENCES items(id),
    stage       TEXT    NOT NULL CHECK (stage = 'review' OR stage = 'adjudicate' OR stage = 'audit'),
    queue       TEXT    NOT NULL,
    tier        INTEGER NOT NULL,
    priority    INTEGER NOT NULL,
    overlap     INTEGER NOT NULL,
    -- Invariant: available = overlap - answered - (active leases), while state = 'open'.
    available   INTEGER NOT NULL,
    answered    INTEGER NOT NULL DEFAULT 0,
    state       TEXT    NOT NULL CHECK (state = 'open' OR state = 'done'),
    reason      TEXT,
    created_at  INTEGER NOT NULL,
    closed_at   INTEGER,
    gold        INTEGER NOT NULL DEFAULT 0
);
INSERT INTO tasks_new (id, project_id, item_id, stage, queue, tier, priority, overlap, available, answered, state,
                       reason, created_at, closed_at, gold)
    SELECT id, project_id, item_id, stage, queue, tier, priority, overlap, available, answered, state,
           reason, created_at, closed_at, gold FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX tasks_claim       ON tasks (project_id, priority DESC, item_id, id) WHERE available > 0;
CREATE INDEX tasks_claim_queue ON tasks (project_id, queue, priority DESC, item_id, id) WHERE available > 0;
CREATE INDEX tasks_open        ON tasks (project_id, queue, created_at) WHERE state = 'open';
CREATE INDEX tasks_item        ON tasks (item_id);

CREATE TABLE leases_new (
    id          INTEGER PRIMARY KEY,
    task_id     INTEGER NOT NULL REFERENCES tasks(id),
    item_id     INTEGER NOT NULL REFERENCES items(id),
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
    granted_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    lease_ms    INTEGER NOT NULL,              -- a heartbeat extends the lease by this much
    state       TEXT    NOT NULL CHECK (state = 'active' OR state = 'answered' OR state = 'skipped'
                                        OR state = 'expired' OR state = 'cancelled'),
    ended_at    INTEGER
);
INSERT INTO leases_new (id, task_id, item_id, reviewer_id, granted_at, expires_at, lease_ms, state, ended_at)
    SELECT id, task_id, item_id, reviewer_id, granted_at, expires_at, lease_ms, state, ended_at FROM leases;
DROP TABLE leases;
ALTER TABLE leases_new RENAME TO leases;
CREATE INDEX leases_active ON leases (expires_at) WHERE state = 'active';
CREATE INDEX leases_task   ON leases (task_id);

CREATE TABLE reviews_new (
    id               INTEGER PRIMARY KEY,
    review_id        TEXT    NOT NULL,         -- the client's idempotency key
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
    UNIQUE (reviewer_id, review_id)
);
INSERT INTO reviews_new (id, review_id, reviewer_id, task_id, item_id, lease_id, kind, label, reason, failure_category,
                         note, claimed_at, answered_at, result)
    SELECT id, review_id, reviewer_id, task_id, item_id, lease_id, kind, label, reason, failure_category,
           note, claimed_at, answered_at, result FROM reviews;
DROP TABLE reviews;
ALTER TABLE reviews_new RENAME TO reviews;
CREATE INDEX reviews_task          ON reviews (task_id);
CREATE INDEX reviews_item          ON reviews (item_id);
CREATE INDEX reviews_reviewer_time ON reviews (reviewer_id, answered_at);

CREATE TABLE labels_new (
    cursor         INTEGER PRIMARY KEY,
    project_id     INTEGER NOT NULL REFERENCES projects(id),
    item_id        INTEGER NOT NULL REFERENCES items(id),
    label          TEXT    NOT NULL,
    source         TEXT    NOT NULL CHECK (source = 'auto' OR source = 'human' OR source = 'adjudicated'),
    model          TEXT,
    model_version  TEXT,
    policy_version INTEGER NOT NULL,
    resolved_at    INTEGER NOT NULL
);
INSERT INTO labels_new (cursor, project_id, item_id, label, source, model, model_version, policy_version, resolved_at)
    SELECT cursor, project_id, item_id, label, source, model, model_version, policy_version, resolved_at FROM labels;
DROP TABLE labels;
ALTER TABLE labels_new RENAME TO labels;
CREATE INDEX labels_project ON labels (project_id, cursor);
