-- GET …/stats from counters kept with each write (issue #22, "reads that scale"), not a
-- scan of the project's items, open tasks and audit events (0.3–0.4 s at ~100k items).
-- One row per project and queue; queue '' holds the project's own figures (its items,
-- gold aside, by outcome, resolved, and audits answered), a queue's row its open tasks
-- (gold aside) and the tasks ever breached. The writer adds what each job changed in
-- memory and writes the sums once per group commit, just before COMMIT (`counts.rs`):
-- triggers kept them too, but cost ~10 µs of a claim-and-answer cycle's ~50 µs of writer
-- time (two trigger programs per answer), measured on a copy of the cycle's statements.
CREATE TABLE stat_counts (
    project_id       INTEGER NOT NULL,
    queue            TEXT    NOT NULL,
    items            INTEGER NOT NULL DEFAULT 0,
    auto             INTEGER NOT NULL DEFAULT 0,
    review           INTEGER NOT NULL DEFAULT 0,
    resolved         INTEGER NOT NULL DEFAULT 0,
    audits_confirmed INTEGER NOT NULL DEFAULT 0,
    audits_corrected INTEGER NOT NULL DEFAULT 0,
    open             INTEGER NOT NULL DEFAULT 0,
    breached         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, queue)
) WITHOUT ROWID;
INSERT INTO stat_counts (project_id, queue, items, auto, review, resolved, audits_confirmed, audits_corrected)
    SELECT p.id, '',
           (SELECT count(*) FROM items i WHERE i.project_id = p.id AND i.gold_label IS NULL),
           (SELECT count(*) FROM items i WHERE i.project_id = p.id AND i.gold_label IS NULL AND i.outcome = 'auto'),
           (SELECT count(*) FROM items i WHERE i.project_id = p.id AND i.gold_label IS NULL AND i.outcome = 'review'),
           (SELECT count(*) FROM items i WHERE i.project_id = p.id AND i.gold_label IS NULL AND i.resolved_label IS NOT NULL),
           (SELECT count(*) FROM events e WHERE e.project_id = p.id AND e.kind = 'audit.confirmed'),
           (SELECT count(*) FROM events e WHERE e.project_id = p.id AND e.kind = 'item.corrected')
    FROM projects p;
INSERT INTO stat_counts (project_id, queue, open, breached)
    SELECT project_id, queue, coalesce(sum(state = 'open' AND gold = 0), 0), coalesce(sum(breached_at IS NOT NULL), 0)
    FROM tasks GROUP BY project_id, queue;

-- Open tasks past their deadline, per queue, read as an index range (`due_at <= now`)
-- instead of a scan of every open task; tasks without a deadline are not in it, so it
-- costs nothing where no SLA is set.
CREATE INDEX tasks_open_due ON tasks (project_id, due_at, queue) WHERE state = 'open' AND due_at IS NOT NULL;
