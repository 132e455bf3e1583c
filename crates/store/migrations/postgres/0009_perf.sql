-- GET …/stats from counters kept with each write (issue #22, "reads that scale"), not a
-- scan of the project's items, open tasks and audit events (see the SQLite migration 0010).
-- Triggers keep them, so every path that writes items, tasks or events counts without
-- knowing it. Unlike SQLite's single writer, concurrent transactions here would queue on
-- one counter row until each commits, so a write appends a delta row instead (one per
-- statement for inserts, through a transition table; one per row that changes a figure
-- for updates) and never updates a shared row. A read sums the project's deltas and, past
-- a few hundred, folds them into one row per queue in one statement (`DELETE … RETURNING`
-- then `INSERT`): concurrent writers' new rows are not touched, so nothing is lost or
-- counted twice. `queue` is NULL on the project's own figures.
CREATE TABLE stat_deltas (
    project_id       BIGINT NOT NULL,
    queue            TEXT,
    items            BIGINT NOT NULL DEFAULT 0,
    auto             BIGINT NOT NULL DEFAULT 0,
    review           BIGINT NOT NULL DEFAULT 0,
    resolved         BIGINT NOT NULL DEFAULT 0,
    audits_confirmed BIGINT NOT NULL DEFAULT 0,
    audits_corrected BIGINT NOT NULL DEFAULT 0,
    open             BIGINT NOT NULL DEFAULT 0,
    breached         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX stat_deltas_project ON stat_deltas (project_id);

INSERT INTO stat_deltas (project_id, items, auto, review, resolved)
    SELECT project_id, count(*), count(*) FILTER (WHERE outcome = 'auto'), count(*) FILTER (WHERE outcome = 'review'),
           count(*) FILTER (WHERE resolved_label IS NOT NULL)
    FROM items WHERE gold_label IS NULL GROUP BY project_id;
INSERT INTO stat_deltas (project_id, audits_confirmed, audits_corrected)
    SELECT project_id, count(*) FILTER (WHERE kind = 'audit.confirmed'), count(*) FILTER (WHERE kind = 'item.corrected')
    FROM events WHERE project_id IS NOT NULL AND kind IN ('audit.confirmed', 'item.corrected') GROUP BY project_id;
INSERT INTO stat_deltas (project_id, queue, open, breached)
    SELECT project_id, queue, count(*) FILTER (WHERE state = 'open' AND NOT gold), count(*) FILTER (WHERE breached_at IS NOT NULL)
    FROM tasks GROUP BY project_id, queue;

CREATE FUNCTION stat_items_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_deltas (project_id, items, auto, review, resolved)
        SELECT project_id, count(*), count(*) FILTER (WHERE outcome = 'auto'), count(*) FILTER (WHERE outcome = 'review'),
               count(*) FILTER (WHERE resolved_label IS NOT NULL)
        FROM stat_new WHERE gold_label IS NULL GROUP BY project_id;
    RETURN NULL;
END $$;
CREATE TRIGGER items_count AFTER INSERT ON items REFERENCING NEW TABLE AS stat_new
    FOR EACH STATEMENT EXECUTE FUNCTION stat_items_inserted();

CREATE FUNCTION stat_item_resolved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_deltas (project_id, resolved)
        VALUES (new.project_id, CASE WHEN new.resolved_label IS NULL THEN -1 ELSE 1 END);
    RETURN NULL;
END $$;
CREATE TRIGGER items_count_resolved AFTER UPDATE OF resolved_label ON items FOR EACH ROW
    WHEN (new.gold_label IS NULL AND (old.resolved_label IS NULL) <> (new.resolved_label IS NULL))
    EXECUTE FUNCTION stat_item_resolved();

CREATE FUNCTION stat_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_deltas (project_id, audits_confirmed, audits_corrected)
        VALUES (new.project_id, (new.kind = 'audit.confirmed')::int, (new.kind = 'item.corrected')::int);
    RETURN NULL;
END $$;
CREATE TRIGGER events_count_audits AFTER INSERT ON events FOR EACH ROW
    WHEN (new.project_id IS NOT NULL AND new.kind IN ('audit.confirmed', 'item.corrected'))
    EXECUTE FUNCTION stat_audit();

CREATE FUNCTION stat_tasks_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_deltas (project_id, queue, open, breached)
        SELECT project_id, queue, count(*) FILTER (WHERE state = 'open' AND NOT gold),
               count(*) FILTER (WHERE breached_at IS NOT NULL)
        FROM stat_new GROUP BY project_id, queue
        HAVING count(*) FILTER (WHERE (state = 'open' AND NOT gold) OR breached_at IS NOT NULL) > 0;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_count AFTER INSERT ON tasks REFERENCING NEW TABLE AS stat_new
    FOR EACH STATEMENT EXECUTE FUNCTION stat_tasks_inserted();

CREATE FUNCTION stat_task_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_deltas (project_id, queue, open, breached)
        VALUES (old.project_id, old.queue, -(old.state = 'open' AND NOT old.gold)::int, -(old.breached_at IS NOT NULL)::int),
               (new.project_id, new.queue, (new.state = 'open' AND NOT new.gold)::int, (new.breached_at IS NOT NULL)::int);
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_count_changed AFTER UPDATE OF state, breached_at, queue ON tasks FOR EACH ROW
    WHEN (old.queue <> new.queue OR (old.state = 'open') <> (new.state = 'open')
          OR (old.breached_at IS NULL) <> (new.breached_at IS NULL))
    EXECUTE FUNCTION stat_task_changed();

-- Open tasks past their deadline, per queue, as an index range (see SQLite's 0010).
CREATE INDEX tasks_open_due ON tasks (project_id, due_at, queue) WHERE state = 'open' AND due_at IS NOT NULL;
