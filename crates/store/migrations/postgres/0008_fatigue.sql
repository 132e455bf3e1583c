-- Reviewer fatigue and pacing (see the SQLite migration 0009 for why). A reviewer's
-- answers are read newest first through reviews_reviewer_time, which PostgreSQL kept
-- (0004): only SQLite dropped it (its 0006), and its 0009 brings it back.
ALTER TABLE reviews ADD COLUMN too_fast BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE reviewer_fatigue (
    project_id         BIGINT NOT NULL REFERENCES projects(id),
    reviewer_id        BIGINT NOT NULL REFERENCES reviewers(id),
    session_started_at BIGINT NOT NULL,
    fatigued_at        BIGINT NOT NULL,
    break_until        BIGINT,
    PRIMARY KEY (project_id, reviewer_id)
);
