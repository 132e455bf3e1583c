-- Reviewer fatigue and pacing (issue #16).
-- * reviews.too_fast: the answer came faster than pacing's min_seconds_per_task (core
--   decides; with discount_too_fast its vote weighs nothing).
-- * reviews_reviewer_time: a reviewer's work sessions are read from their answers, newest
--   first (the monitor after each answer, a claim under a session cap, GET …/reviewers).
--   0006 dropped an index of this shape for its WAL pages (~25 of a group commit's 116 with
--   64 reviewers answering); it is back because a session's correctness signals arrive
--   after its answers (the item's final resolution), which a running total kept in the
--   answer's transaction could not take in without rewriting every voter's row on each
--   resolution.
-- * reviewer_fatigue: per project and reviewer, the session the monitor last fired on,
--   when, and the break it imposed (once per session; `reviewer.fatigued` is the event).
ALTER TABLE reviews ADD COLUMN too_fast INTEGER NOT NULL DEFAULT 0;
CREATE INDEX reviews_reviewer_time ON reviews (reviewer_id, answered_at);

CREATE TABLE reviewer_fatigue (
    project_id         INTEGER NOT NULL REFERENCES projects(id),
    reviewer_id        INTEGER NOT NULL REFERENCES reviewers(id),
    session_started_at INTEGER NOT NULL,
    fatigued_at        INTEGER NOT NULL,
    break_until        INTEGER,
    PRIMARY KEY (project_id, reviewer_id)
) WITHOUT ROWID;
