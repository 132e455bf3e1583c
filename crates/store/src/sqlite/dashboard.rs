//! What the console's dashboard and `/stats` read on SQLite: a project's counts and queues,
//! its activity over time, its latest events and SLA figures, a reviewer's answers in a
//! day. Read-only; it was the read half of `console.rs`, kept apart from the concepts
//! because it reads all of them and writes none.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::feeds::{event_columns, event_row};
use crate::*;
use flywheel_core::Event;

/// The project's figures from the counters the writer keeps with each group commit
/// (`stat_counts`, see `counts.rs`), plus what depends on `now`, each an index range over
/// recent or due tasks only: a queue's oldest open task (`tasks_open`), tasks due soon
/// (`tasks_sla_pending`, whose warning time has passed), overdue ones (`tasks_open_due`)
/// and those with a deadline closed in the last day (`tasks_closed_sla`). Nothing here
/// reads the project's history.
pub(super) fn stats(c: &Connection, project_id: i64, now: Millis) -> Result<Stats> {
    let rows: Vec<(String, [i64; 8])> = c
        .prepare_cached(
            "SELECT queue, items, auto, review, resolved, audits_confirmed, audits_corrected, open, breached
             FROM stat_counts WHERE project_id = ?1 ORDER BY queue",
        )?
        .query_map([project_id], |r| {
            Ok((
                r.get(0)?,
                [
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ],
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut own = [0; 6];
    let mut counted: Vec<(String, i64, i64)> = Vec::new();
    for (queue, v) in rows {
        if queue.is_empty() {
            own.copy_from_slice(&v[..6]);
        } else {
            counted.push((queue, v[6], v[7]));
        }
    }
    let [items, auto, review, resolved, audits_confirmed, audits_corrected] = own;
    let due_soon: HashMap<String, i64> = c
        .prepare_cached(
            "SELECT queue, count(*) FROM tasks INDEXED BY tasks_sla_pending
             WHERE state = 'open' AND breached_at IS NULL AND warn_at IS NOT NULL AND warn_at <= ?2
               AND project_id = ?1 AND gold = 0 AND warned_at IS NOT NULL AND due_at > ?2
             GROUP BY queue",
        )?
        .query_map(params![project_id, now], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let overdue: HashMap<String, i64> = c
        .prepare_cached(
            "SELECT queue, count(*) FROM tasks INDEXED BY tasks_open_due
             WHERE project_id = ?1 AND state = 'open' AND due_at IS NOT NULL AND due_at <= ?2 AND gold = 0
             GROUP BY queue",
        )?
        .query_map(params![project_id, now], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut oldest = c.prepare_cached(
        "SELECT created_at FROM tasks INDEXED BY tasks_open
         WHERE project_id = ?1 AND queue = ?2 AND state = 'open' AND gold = 0 ORDER BY created_at LIMIT 1",
    )?;
    let mut open = Vec::new();
    let mut breached = Vec::new();
    for (queue, n, b) in counted {
        if n > 0 {
            let first: Millis = oldest
                .query_row(params![project_id, queue], |r| r.get(0))
                .optional()?
                .unwrap_or(now);
            let soon = due_soon.get(&queue).copied().unwrap_or(0);
            let late = overdue.get(&queue).copied().unwrap_or(0);
            open.push((queue.clone(), n, first, soon, late));
        }
        if b > 0 {
            breached.push((queue, b));
        }
    }
    let closed = closed_with_deadline(c, project_id, now)?;
    let queues = QueueStats::assemble(open, breached, closed, now);
    Ok(Stats {
        audits_confirmed,
        audits_corrected,
        items,
        auto,
        review,
        resolved,
        open_tasks: queues.iter().map(|q| q.open).sum(),
        queues,
    })
}

/// A queue's tasks with a deadline closed: in the last hour, of which in time, in the last
/// day, of which in time.
type Closed = (String, i64, i64, i64, i64);

/// Tasks with a deadline closed in the last day, per queue (the `tasks_closed_sla` index
/// range): closed in the last hour, of which in time, in the last day, of which in time.
fn closed_with_deadline(c: &Connection, project_id: i64, now: Millis) -> Result<Vec<Closed>> {
    Ok(c.prepare_cached(
        "SELECT queue, coalesce(sum(closed_at >= ?3), 0), coalesce(sum(closed_at >= ?3 AND closed_at <= due_at), 0),
                    count(*), coalesce(sum(closed_at <= due_at), 0)
             FROM tasks WHERE project_id = ?1 AND due_at IS NOT NULL AND closed_at IS NOT NULL AND closed_at >= ?2
             GROUP BY queue",
    )?
    .query_map(params![project_id, now - DAY_MS, now - 3_600_000], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The figures of [`stats`] recounted from the rows themselves — every item, open task and
/// audit event of the project — as `/stats` read them before the counters: a check of the
/// counters (the conformance suite compares the two), O(the project's history).
pub(super) fn stats_recount(c: &Connection, project_id: i64, now: Millis) -> Result<Stats> {
    let (items, auto, review, resolved): (i64, i64, i64, i64) = c
        .prepare_cached(
            "SELECT count(*), coalesce(sum(outcome = 'auto'), 0), coalesce(sum(outcome = 'review'), 0),
                coalesce(sum(resolved_label IS NOT NULL), 0) FROM items WHERE project_id = ?1 AND gold_label IS NULL",
        )?
        .query_row([project_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let open = c
        .prepare_cached(
            "SELECT queue, count(*), min(created_at),
                    coalesce(sum(warned_at IS NOT NULL AND breached_at IS NULL AND due_at > ?2), 0),
                    coalesce(sum(due_at <= ?2), 0)
             FROM tasks WHERE project_id = ?1 AND state = 'open' AND gold = 0
             GROUP BY queue ORDER BY queue",
        )?
        .query_map(params![project_id, now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let breached = c
        .prepare_cached(
            "SELECT queue, count(*) FROM tasks WHERE project_id = ?1 AND breached_at IS NOT NULL GROUP BY queue",
        )?
        .query_map([project_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let closed = closed_with_deadline(c, project_id, now)?;
    let queues = QueueStats::assemble(open, breached, closed, now);
    let (audits_confirmed, audits_corrected): (i64, i64) = c
        .prepare_cached(
            "SELECT coalesce(sum(kind = ?2), 0), coalesce(sum(kind = ?3), 0) FROM events
             WHERE project_id = ?1 AND kind IN (?2, ?3)",
        )?
        .query_row(
            params![project_id, Event::AUDIT_CONFIRMED, Event::ITEM_CORRECTED],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    Ok(Stats {
        audits_confirmed,
        audits_corrected,
        items,
        auto,
        review,
        resolved,
        open_tasks: queues.iter().map(|q| q.open).sum(),
        queues,
    })
}

pub(super) fn answers_on_day(c: &Connection, reviewer_id: i64, day: i64) -> Result<i64> {
    c.prepare_cached("SELECT coalesce(sum(answers), 0) FROM reviewer_days WHERE day = ?1 AND reviewer_id = ?2")?
        .query_row(params![day, reviewer_id], |r| r.get(0))
        .map_err(Into::into)
}

pub(super) fn activity(c: &Connection, project_id: i64, since: Millis, bucket_ms: i64) -> Result<Vec<ActivityBucket>> {
    let decided = c
        .prepare_cached(
            "SELECT (created_at / ?3) * ?3, coalesce(sum(outcome = 'auto'), 0), coalesce(sum(outcome = 'review'), 0),
                    avg(json_extract(prediction, '$.novelty'))
             FROM items WHERE project_id = ?1 AND created_at >= ?2 AND gold_label IS NULL GROUP BY 1",
        )?
        .query_map(params![project_id, since, bucket_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let answered = c
        .prepare_cached(
            "SELECT (w.answered_at / ?3) * ?3, count(*) FROM reviews w JOIN tasks t ON t.id = w.task_id
             WHERE t.project_id = ?1 AND w.answered_at >= ?2 GROUP BY 1",
        )?
        .query_map(params![project_id, since, bucket_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ActivityBucket::merge(decided, answered))
}

pub(super) fn latest_events(c: &Connection, project_id: i64, limit: usize) -> Result<Vec<EventRecord>> {
    let cols = event_columns();
    let sql = format!("SELECT {cols} WHERE e.project_id = ?1 ORDER BY e.seq DESC LIMIT ?2");
    c.prepare_cached(&sql)?
        .query_map(params![project_id, limit as i64], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Into::into)
}

pub(super) fn queue_depths(
    c: &Connection,
    project_id: i64,
    now: Millis,
    sla_queues: &[String],
) -> Result<Vec<QueueDepth>> {
    let open = c
        .prepare_cached(
            "SELECT queue, tier, count(*), min(created_at), coalesce(sum(due_at <= ?2), 0)
             FROM tasks WHERE project_id = ?1 AND state = 'open' AND gold = 0
             GROUP BY queue, tier ORDER BY queue, tier",
        )?
        .query_map(params![project_id, now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(QueueDepth::assemble(open, sla_queues, now))
}
