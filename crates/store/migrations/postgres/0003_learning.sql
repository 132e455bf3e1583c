-- The built-in model: versioned snapshots (see the SQLite migration).
CREATE TABLE model_snapshots (
    project_id      BIGINT  NOT NULL,
    version         INTEGER NOT NULL,
    model           BYTEA   NOT NULL,
    examples_seen   BIGINT  NOT NULL,
    trained_through BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (project_id, version)
);

-- Audit outcomes, counted for the unbiased precision estimate of auto decisions.
CREATE INDEX events_audits ON events (project_id, kind) WHERE kind IN ('audit.confirmed', 'item.corrected');
