//! What the console's dashboard and `/stats` read on SQLite: a project's counts and queues,
//! its activity over time, its latest events and SLA figures, a reviewer's answers in a
//! day. Read-only; it was the read half of `console.rs`, kept apart from the concepts
//! because it reads all of them and writes none.

use rusqlite::{Connection, params};

use super::feeds::{event_columns, event_row};
use crate::*;
use flywheel_core::Event;

pub(super) fn stats(c: &Connection, project_id: i64, now: Millis) -> Result<Stats> {
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
    // Tasks with a deadline closed in the last day (the `tasks_closed_sla` index range).
    let closed = c
        .prepare_cached(
            "SELECT queue, coalesce(sum(closed_at >= ?3), 0), coalesce(sum(closed_at >= ?3 AND closed_at <= due_at), 0),
                    count(*), coalesce(sum(closed_at <= due_at), 0)
             FROM tasks WHERE project_id = ?1 AND due_at IS NOT NULL AND closed_at IS NOT NULL AND closed_at >= ?2
             GROUP BY queue",
        )?
        .query_map(params![project_id, now - DAY_MS, now - 3_600_000], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
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
