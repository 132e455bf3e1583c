-- Flywheel's PostgreSQL schema, version 1 (the same model as migrations/sqlite/0001_init.sql).
-- Migrations are append-only. Times are epoch milliseconds (BIGINT).
--
-- Feeds: events and labels get their feed position (`seq`, `cursor`) after commit, from a
-- sequencer that runs under an advisory lock (see ops.rs `sequence_feeds`). Sequence
-- values drawn inside concurrent transactions commit out of order, so they cannot be
-- cursors; positions handed out to committed rows in one place can.

CREATE TABLE projects (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    labels         JSONB   NOT NULL,
    policy         JSONB   NOT NULL,
    policy_version INTEGER NOT NULL,
    created_at     BIGINT  NOT NULL
);

CREATE TABLE policies (
    project_id BIGINT  NOT NULL REFERENCES projects(id),
    version    INTEGER NOT NULL,
    policy     JSONB   NOT NULL,
    created_at BIGINT  NOT NULL,
    created_by TEXT    NOT NULL,
    PRIMARY KEY (project_id, version)
);

CREATE TABLE reviewers (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    tiers      JSONB  NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE reviewer_projects (
    reviewer_id BIGINT NOT NULL REFERENCES reviewers(id),
    project_id  BIGINT NOT NULL REFERENCES projects(id),
    PRIMARY KEY (reviewer_id, project_id)
);

CREATE TABLE api_keys (
    hash        TEXT   PRIMARY KEY,
    kind        TEXT   NOT NULL CHECK (kind IN ('admin', 'service', 'reviewer')),
    reviewer_id BIGINT REFERENCES reviewers(id),
    projects    JSONB,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE items (
    id             BIGSERIAL PRIMARY KEY,
    project_id     BIGINT  NOT NULL REFERENCES projects(id),
    external_id    TEXT    NOT NULL,
    payload        JSONB   NOT NULL,
    attributes     JSONB   NOT NULL,
    prediction     JSONB,
    decision       JSONB   NOT NULL,
    outcome        TEXT    NOT NULL CHECK (outcome IN ('auto', 'review')),
    policy_version INTEGER NOT NULL,
    model          TEXT,
    model_version  TEXT,
    created_at     BIGINT  NOT NULL,
    resolved_label TEXT,
    resolution     JSONB,
    resolved_at    BIGINT,
    UNIQUE (project_id, external_id)
);

CREATE TABLE tasks (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT   NOT NULL REFERENCES projects(id),
    item_id     BIGINT   NOT NULL REFERENCES items(id),
    stage       TEXT     NOT NULL CHECK (stage IN ('review', 'adjudicate', 'audit')),
    queue       TEXT     NOT NULL,
    tier        SMALLINT NOT NULL,
    priority    INTEGER  NOT NULL,
    overlap     SMALLINT NOT NULL,
    -- Invariant: available = overlap - answered - (active leases), while state = 'open'.
    available   SMALLINT NOT NULL,
    answered    SMALLINT NOT NULL DEFAULT 0,
    state       TEXT     NOT NULL CHECK (state IN ('open', 'done')),
    reason      TEXT,
    created_at  BIGINT   NOT NULL,
    closed_at   BIGINT
);
CREATE INDEX tasks_claim       ON tasks (project_id, priority DESC, item_id, id) WHERE available > 0;
CREATE INDEX tasks_claim_queue ON tasks (project_id, queue, priority DESC, item_id, id) WHERE available > 0;
CREATE INDEX tasks_open        ON tasks (project_id, queue, created_at) WHERE state = 'open';
CREATE INDEX tasks_item        ON tasks (item_id);

CREATE TABLE leases (
    id          BIGSERIAL PRIMARY KEY,
    task_id     BIGINT NOT NULL REFERENCES tasks(id),
    item_id     BIGINT NOT NULL REFERENCES items(id),
    reviewer_id BIGINT NOT NULL REFERENCES reviewers(id),
    granted_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    lease_ms    BIGINT NOT NULL,
    state       TEXT   NOT NULL CHECK (state IN ('active', 'answered', 'skipped', 'expired', 'cancelled')),
    ended_at    BIGINT
);
CREATE INDEX leases_active ON leases (expires_at) WHERE state = 'active';
CREATE INDEX leases_task   ON leases (task_id);

CREATE TABLE item_reviewers (
    item_id     BIGINT NOT NULL,
    reviewer_id BIGINT NOT NULL,
    PRIMARY KEY (item_id, reviewer_id)
);

CREATE TABLE reviews (
    id               BIGSERIAL PRIMARY KEY,
    review_id        TEXT   NOT NULL,
    reviewer_id      BIGINT NOT NULL REFERENCES reviewers(id),
    task_id          BIGINT NOT NULL REFERENCES tasks(id),
    item_id          BIGINT NOT NULL REFERENCES items(id),
    lease_id         BIGINT NOT NULL REFERENCES leases(id),
    kind             TEXT   NOT NULL CHECK (kind IN ('label', 'escalate', 'skip')),
    label            TEXT,
    reason           TEXT,
    failure_category TEXT,
    note             TEXT,
    claimed_at       BIGINT NOT NULL,
    answered_at      BIGINT NOT NULL,
    result           JSONB  NOT NULL,
    UNIQUE (reviewer_id, review_id)
);
CREATE INDEX reviews_task ON reviews (task_id);
CREATE INDEX reviews_item ON reviews (item_id);

CREATE TABLE labels (
    id             BIGSERIAL PRIMARY KEY,
    cursor         BIGINT UNIQUE,              -- feed position, set by the sequencer
    project_id     BIGINT  NOT NULL REFERENCES projects(id),
    item_id        BIGINT  NOT NULL REFERENCES items(id),
    label          TEXT    NOT NULL,
    source         TEXT    NOT NULL CHECK (source IN ('auto', 'human', 'adjudicated')),
    model          TEXT,
    model_version  TEXT,
    policy_version INTEGER NOT NULL,
    resolved_at    BIGINT  NOT NULL
);
CREATE INDEX labels_project     ON labels (project_id, cursor);
CREATE INDEX labels_unsequenced ON labels (id) WHERE cursor IS NULL;

CREATE TABLE events (
    id         BIGSERIAL PRIMARY KEY,
    seq        BIGINT UNIQUE,                  -- feed position, set by the sequencer
    project_id BIGINT,
    item_id    BIGINT,
    task_id    BIGINT,
    at         BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    actor      TEXT   NOT NULL,
    data       JSONB  NOT NULL
);
CREATE INDEX events_project     ON events (project_id, seq);
CREATE INDEX events_item        ON events (item_id) WHERE item_id IS NOT NULL;
CREATE INDEX events_unsequenced ON events (id) WHERE seq IS NULL;
