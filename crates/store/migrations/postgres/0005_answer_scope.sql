-- An answer's idempotency key is scoped to its task (see the SQLite migration 0006): a
-- retry is sent to the same task, and the index fills in task order instead of at one
-- place per reviewer. It also serves lookups by task, so reviews_task goes.
ALTER TABLE reviews DROP CONSTRAINT reviews_reviewer_id_review_id_key;
ALTER TABLE reviews ADD CONSTRAINT reviews_task_reviewer_review UNIQUE (task_id, reviewer_id, review_id);
DROP INDEX reviews_task;
