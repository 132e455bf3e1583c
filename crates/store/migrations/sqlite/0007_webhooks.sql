-- Webhook endpoints and their outbox. An endpoint's `cursor` is the event-log position
-- it has dealt with (delivered, passed over as not wanted, or given up on); the event
-- after it is tried `attempts` times so far, next at `next_attempt_at`. A replay moves the
-- cursor back; `generation` counts the API's changes so that a delivery round that read
-- the endpoint before a change does not write over it. The secret is kept (the server
-- signs with it); `previous_secret` signs too until `previous_until` after a rotation.
CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    url             TEXT    NOT NULL,
    events          TEXT    NOT NULL,
    enabled         INTEGER NOT NULL,
    secret          TEXT    NOT NULL,
    previous_secret TEXT,
    previous_until  INTEGER,
    cursor          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    failing         INTEGER NOT NULL DEFAULT 0,
    generation      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX webhooks_project ON webhooks (project_id);

-- One row per attempt; the newest 1,000 per endpoint are kept.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_seq       INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    attempt         INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    status          INTEGER,
    latency_ms      INTEGER NOT NULL,
    response        TEXT    NOT NULL,
    outcome         TEXT    NOT NULL CHECK (outcome = 'delivered' OR outcome = 'failed' OR outcome = 'gone' OR outcome = 'given_up'),
    next_attempt_at INTEGER
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
