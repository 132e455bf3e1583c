-- Flywheel's SQLite schema, version 1. Migrations are append-only: never edit a file
-- that has shipped; add the next one.
-- Times are epoch milliseconds (INTEGER). JSON documents are TEXT.

CREATE TABLE projects (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    labels         TEXT    NOT NULL,           -- JSON array of label names, in order
    policy         TEXT    NOT NULL,           -- the current policy (JSON)
    policy_version INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);

-- Every policy ever stored: decisions name the version that made them.
CREATE TABLE policies (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    version    INTEGER NOT NULL,
    policy     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    PRIMARY KEY (project_id, version)
);

CREATE TABLE reviewers (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    tiers      TEXT    NOT NULL,               -- JSON array of tiers granted
    created_at INTEGER NOT NULL
);

CREATE TABLE reviewer_projects (
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    PRIMARY KEY (reviewer_id, project_id)
) WITHOUT ROWID;

-- API keys, stored as the SHA-256 of the key; the key itself is shown once.
CREATE TABLE api_keys (
    hash        TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('admin', 'service', 'reviewer')),
    reviewer_id INTEGER REFERENCES reviewers(id),
    projects    TEXT,                          -- service keys: JSON array of project ids
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) WITHOUT ROWID;

CREATE TABLE items (
    id             INTEGER PRIMARY KEY,
    project_id     INTEGER NOT NULL REFERENCES projects(id),
    external_id    TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    attributes     TEXT    NOT NULL,
    prediction     TEXT,
    decision       TEXT    NOT NULL,           -- never rewritten
    outcome        TEXT    NOT NULL CHECK (outcome IN ('auto', 'review')),
    policy_version INTEGER NOT NULL,
    model          TEXT,
    model_version  TEXT,
    created_at     INTEGER NOT NULL,
    resolved_label TEXT,
    resolution     TEXT,                       -- JSON: source, method, confidence, reviewers
    resolved_at    INTEGER,
    UNIQUE (project_id, external_id)
);

CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    item_id     INTEGER NOT NULL REFERENCES items(id),
    stage       TEXT    NOT NULL CHECK (stage IN ('review', 'adjudicate', 'audit')),
    queue       TEXT    NOT NULL,
    tier        INTEGER NOT NULL,
    priority    INTEGER NOT NULL,
    overlap     INTEGER NOT NULL,
    -- Invariant: available = overlap - answered - (active leases), while state = 'open'.
    available   INTEGER NOT NULL,
    answered    INTEGER NOT NULL DEFAULT 0,
    state       TEXT    NOT NULL CHECK (state IN ('open', 'done')),
    reason      TEXT,
    created_at  INTEGER NOT NULL,
    closed_at   INTEGER
);
CREATE INDEX tasks_claim       ON tasks (project_id, priority DESC, item_id, id) WHERE available > 0;
CREATE INDEX tasks_claim_queue ON tasks (project_id, queue, priority DESC, item_id, id) WHERE available > 0;
CREATE INDEX tasks_open        ON tasks (project_id, queue, created_at) WHERE state = 'open';
CREATE INDEX tasks_item        ON tasks (item_id);

CREATE TABLE leases (
    id          INTEGER PRIMARY KEY,
    task_id     INTEGER NOT NULL REFERENCES tasks(id),
    item_id     INTEGER NOT NULL REFERENCES items(id),
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
    granted_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    lease_ms    INTEGER NOT NULL,              -- a heartbeat extends the lease by this much
    state       TEXT    NOT NULL CHECK (state IN ('active', 'answered', 'skipped', 'expired', 'cancelled')),
    ended_at    INTEGER
);
CREATE INDEX leases_active ON leases (expires_at) WHERE state = 'active';
CREATE INDEX leases_task   ON leases (task_id);

-- Which reviewers have held an item: a reviewer never reviews the same item twice.
CREATE TABLE item_reviewers (
    item_id     INTEGER NOT NULL,
    reviewer_id INTEGER NOT NULL,
    PRIMARY KEY (item_id, reviewer_id)
) WITHOUT ROWID;

CREATE TABLE reviews (
    id               INTEGER PRIMARY KEY,
    review_id        TEXT    NOT NULL,         -- the client's idempotency key
    reviewer_id      INTEGER NOT NULL REFERENCES reviewers(id),
    task_id          INTEGER NOT NULL REFERENCES tasks(id),
    item_id          INTEGER NOT NULL REFERENCES items(id),
    lease_id         INTEGER NOT NULL REFERENCES leases(id),
    kind             TEXT    NOT NULL CHECK (kind IN ('label', 'escalate', 'skip')),
    label            TEXT,
    reason           TEXT,
    failure_category TEXT,
    note             TEXT,
    claimed_at       INTEGER NOT NULL,
    answered_at      INTEGER NOT NULL,
    result           TEXT    NOT NULL,         -- the answer given to the client (JSON)
    UNIQUE (reviewer_id, review_id)
);
CREATE INDEX reviews_task ON reviews (task_id);
CREATE INDEX reviews_item ON reviews (item_id);

-- The label feed: one row per resolution (a later row for an item supersedes earlier ones).
CREATE TABLE labels (
    cursor         INTEGER PRIMARY KEY,
    project_id     INTEGER NOT NULL REFERENCES projects(id),
    item_id        INTEGER NOT NULL REFERENCES items(id),
    label          TEXT    NOT NULL,
    source         TEXT    NOT NULL CHECK (source IN ('auto', 'human', 'adjudicated')),
    model          TEXT,
    model_version  TEXT,
    policy_version INTEGER NOT NULL,
    resolved_at    INTEGER NOT NULL
);
CREATE INDEX labels_project ON labels (project_id, cursor);

-- The event log: appended in the same transaction as every change. Never updated.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    project_id INTEGER,
    item_id    INTEGER,
    task_id    INTEGER,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX events_project ON events (project_id, seq);
CREATE INDEX events_item    ON events (item_id) WHERE item_id IS NOT NULL;
