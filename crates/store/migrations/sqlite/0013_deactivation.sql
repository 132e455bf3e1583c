-- Reviewer deactivation (issue #21): set, the reviewer's keys and sessions no longer work,
-- their password no longer signs in, and they hold no tier for the stranded-work alert.
-- NULL: active. Their answers and history stay.
ALTER TABLE reviewers ADD COLUMN deactivated_at INTEGER;
