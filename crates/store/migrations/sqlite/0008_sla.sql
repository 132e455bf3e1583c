-- SLA deadlines (issue #16). A task's deadline is set when it is created, from its route
-- (a rule's `sla_seconds`, or the policy's for its queue); NULL means no deadline.
-- `warn_at` is when `sla.warning` is due; `warned_at` and `breached_at` are the SLA
-- worker's once-per-task marks (each event is written only while its mark is NULL).
ALTER TABLE tasks ADD COLUMN due_at INTEGER;
ALTER TABLE tasks ADD COLUMN warn_at INTEGER;
ALTER TABLE tasks ADD COLUMN warned_at INTEGER;
ALTER TABLE tasks ADD COLUMN breached_at INTEGER;

-- Claim order: priority DESC, then the deadline (earliest first, none last), then age.
-- SQLite sorts NULLs first and an index column cannot say NULLS LAST, so the indexes key
-- on `ifnull(due_at, 9223372036854775807)` (i64::MAX: no deadline sorts after every
-- deadline) and the claim orders by the same expression: the claim walks the index in
-- order with no sort step, and `due_at` itself keeps NULL meaning "none" for every reader.
DROP INDEX tasks_claim;
DROP INDEX tasks_claim_queue;
CREATE INDEX tasks_claim       ON tasks (project_id, priority DESC, ifnull(due_at, 9223372036854775807), item_id, id)
    WHERE available > 0;
CREATE INDEX tasks_claim_queue ON tasks (project_id, queue, priority DESC, ifnull(due_at, 9223372036854775807), item_id, id)
    WHERE available > 0;

-- The SLA worker's scan: open tasks not yet breached whose warning time has passed.
CREATE INDEX tasks_sla_pending ON tasks (warn_at) WHERE state = 'open' AND breached_at IS NULL AND warn_at IS NOT NULL;
-- /stats: breaches so far per queue, and the tasks with a deadline closed in a window.
CREATE INDEX tasks_breached    ON tasks (project_id, queue) WHERE breached_at IS NOT NULL;
CREATE INDEX tasks_closed_sla  ON tasks (project_id, closed_at) WHERE due_at IS NOT NULL AND closed_at IS NOT NULL;
