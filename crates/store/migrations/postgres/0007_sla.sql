-- SLA deadlines (see the SQLite migration 0008 for the columns). PostgreSQL sorts NULLs
-- last in an ascending key by default, so the claim indexes key on `due_at` itself:
-- `ORDER BY priority DESC, due_at, item_id, id` walks them with no sort step.
ALTER TABLE tasks ADD COLUMN due_at BIGINT,
                  ADD COLUMN warn_at BIGINT,
                  ADD COLUMN warned_at BIGINT,
                  ADD COLUMN breached_at BIGINT;

DROP INDEX tasks_claim;
DROP INDEX tasks_claim_queue;
CREATE INDEX tasks_claim       ON tasks (project_id, priority DESC, due_at, item_id, id) WHERE available > 0;
CREATE INDEX tasks_claim_queue ON tasks (project_id, queue, priority DESC, due_at, item_id, id) WHERE available > 0;

CREATE INDEX tasks_sla_pending ON tasks (warn_at) WHERE state = 'open' AND breached_at IS NULL AND warn_at IS NOT NULL;
CREATE INDEX tasks_breached    ON tasks (project_id, queue) WHERE breached_at IS NOT NULL;
CREATE INDEX tasks_closed_sla  ON tasks (project_id, closed_at) WHERE due_at IS NOT NULL AND closed_at IS NOT NULL;
