-- Reviewer deactivation (see the SQLite migration 0013): NULL is active.
ALTER TABLE reviewers ADD COLUMN deactivated_at BIGINT;
