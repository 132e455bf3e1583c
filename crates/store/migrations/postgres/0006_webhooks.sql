-- Webhook endpoints and their outbox (see the SQLite migration 0007 for the columns).
-- A cursor reads `events.seq`, which the sequencer hands out after commit, so a cursor
-- never skips an event committed late.
CREATE TABLE webhooks (
    id              BIGSERIAL PRIMARY KEY,
    project_id      BIGINT  NOT NULL REFERENCES projects(id),
    url             TEXT    NOT NULL,
    events          JSONB   NOT NULL,
    enabled         BOOLEAN NOT NULL,
    secret          TEXT    NOT NULL,
    previous_secret TEXT,
    previous_until  BIGINT,
    cursor          BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL DEFAULT 0,
    failing         BOOLEAN NOT NULL DEFAULT false,
    generation      BIGINT  NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX webhooks_project ON webhooks (project_id);

CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    webhook_id      BIGINT  NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_seq       BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    attempt         INTEGER NOT NULL,
    at              BIGINT  NOT NULL,
    status          INTEGER,
    latency_ms      BIGINT  NOT NULL,
    response        TEXT    NOT NULL,
    outcome         TEXT    NOT NULL CHECK (outcome IN ('delivered', 'failed', 'gone', 'given_up')),
    next_attempt_at BIGINT
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
