-- The built-in model: versioned snapshots, so every node (and a restart) serves the same
-- model and training resumes where it stopped.
CREATE TABLE model_snapshots (
    project_id     INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    model          BLOB    NOT NULL,
    examples_seen  INTEGER NOT NULL,
    trained_through INTEGER NOT NULL,          -- label feed cursor of the last example used
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (project_id, version)
) WITHOUT ROWID;

-- Audit outcomes, counted for the unbiased precision estimate of auto decisions.
CREATE INDEX events_audits ON events (project_id, kind) WHERE kind IN ('audit.confirmed', 'item.corrected');
