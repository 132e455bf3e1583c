//! What the console's dashboard and `/stats` read on PostgreSQL (the same model as
//! `sqlite/dashboard.rs`): a project's counts and queues, its activity over time, its
//! latest events and SLA figures, a reviewer's answers in a day. Read-only.

use sqlx::PgConnection;

use super::TxResult;
use super::feeds::{EVENT_COLUMNS, EventRow, event_record};
use crate::*;
use flywheel_core::Event;

/// Deltas summed by a `/stats` read past which it folds them (see migration 0009).
const FOLD_AFTER: i64 = 256;

type Counted = (Option<String>, i64, i64, i64, i64, i64, i64, i64, i64, i64);

/// The project's figures from the deltas the triggers of migration 0009 append
/// (`stat_deltas`), plus what depends on `now`, each an index range over recent or due
/// tasks only: a queue's oldest open task (`tasks_open`), tasks due soon
/// (`tasks_sla_pending`), overdue ones (`tasks_open_due`) and those with a deadline closed
/// in the last day (`tasks_closed_sla`). Nothing here reads the project's history.
pub(super) async fn stats(c: &mut PgConnection, project_id: i64, now: Millis) -> TxResult<Stats> {
    let counted: Vec<Counted> = sqlx::query_as(
        "SELECT queue, sum(items)::bigint, sum(auto)::bigint, sum(review)::bigint, sum(resolved)::bigint,
                sum(audits_confirmed)::bigint, sum(audits_corrected)::bigint, sum(open)::bigint, sum(breached)::bigint,
                count(*)
         FROM stat_deltas WHERE project_id = $1 GROUP BY queue ORDER BY queue",
    )
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    if counted.iter().map(|r| r.9).sum::<i64>() > FOLD_AFTER {
        // One statement: the rows it deletes are the ones it sums, so a delta committed
        // meanwhile stays for the next read.
        sqlx::query(
            "WITH gone AS (DELETE FROM stat_deltas WHERE project_id = $1 RETURNING *)
             INSERT INTO stat_deltas (project_id, queue, items, auto, review, resolved, audits_confirmed,
                                      audits_corrected, open, breached)
             SELECT project_id, queue, sum(items), sum(auto), sum(review), sum(resolved), sum(audits_confirmed),
                    sum(audits_corrected), sum(open), sum(breached)
             FROM gone GROUP BY project_id, queue",
        )
        .bind(project_id)
        .execute(&mut *c)
        .await?;
    }
    let (mut items, mut auto, mut review, mut resolved, mut audits_confirmed, mut audits_corrected) =
        (0, 0, 0, 0, 0, 0);
    let mut queue_counts = Vec::new();
    for (queue, i, a, r, res, ac, acor, open, breached, _) in counted {
        items += i;
        auto += a;
        review += r;
        resolved += res;
        audits_confirmed += ac;
        audits_corrected += acor;
        if let Some(q) = queue {
            queue_counts.push((q, open, breached));
        }
    }
    let due: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
        "WITH soon AS (SELECT queue, count(*) AS n FROM tasks
                       WHERE state = 'open' AND breached_at IS NULL AND warn_at IS NOT NULL AND warn_at <= $2
                         AND project_id = $1 AND NOT gold AND warned_at IS NOT NULL AND due_at > $2
                       GROUP BY queue),
              late AS (SELECT queue, count(*) AS n FROM tasks
                       WHERE project_id = $1 AND state = 'open' AND due_at IS NOT NULL AND due_at <= $2 AND NOT gold
                       GROUP BY queue),
              queues AS (SELECT unnest($3::text[]) AS queue)
         SELECT q.queue, coalesce(soon.n, 0), coalesce(late.n, 0),
                (SELECT created_at FROM tasks t WHERE t.project_id = $1 AND t.queue = q.queue AND t.state = 'open'
                   AND NOT t.gold ORDER BY t.created_at LIMIT 1)
         FROM queues q LEFT JOIN soon USING (queue) LEFT JOIN late USING (queue)",
    )
    .bind(project_id)
    .bind(now)
    .bind(
        queue_counts
            .iter()
            .filter(|(_, open, _)| *open > 0)
            .map(|(q, _, _)| q.clone())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *c)
    .await?;
    let mut open = Vec::new();
    for (queue, soon, late, oldest) in due {
        let n = queue_counts.iter().find(|(q, _, _)| *q == queue).map_or(0, |x| x.1);
        open.push((queue, n, oldest.unwrap_or(now), soon, late));
    }
    let breached = queue_counts
        .into_iter()
        .filter(|(_, _, b)| *b > 0)
        .map(|(q, _, b)| (q, b))
        .collect();
    let closed = closed_with_deadline(c, project_id, now).await?;
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
async fn closed_with_deadline(c: &mut PgConnection, project_id: i64, now: Millis) -> TxResult<Vec<Closed>> {
    Ok(sqlx::query_as(
        "SELECT queue, count(*) FILTER (WHERE closed_at >= $3),
                count(*) FILTER (WHERE closed_at >= $3 AND closed_at <= due_at),
                count(*), count(*) FILTER (WHERE closed_at <= due_at)
         FROM tasks WHERE project_id = $1 AND due_at IS NOT NULL AND closed_at IS NOT NULL AND closed_at >= $2
         GROUP BY queue",
    )
    .bind(project_id)
    .bind(now - DAY_MS)
    .bind(now - 3_600_000)
    .fetch_all(&mut *c)
    .await?)
}

/// The figures of [`stats`] recounted from the rows themselves, as `/stats` read them
/// before the counters: a check of the counters, O(the project's history).
pub(super) async fn stats_recount(c: &mut PgConnection, project_id: i64, now: Millis) -> TxResult<Stats> {
    let (items, auto, review, resolved): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE outcome = 'auto'), count(*) FILTER (WHERE outcome = 'review'),
                count(*) FILTER (WHERE resolved_label IS NOT NULL) FROM items WHERE project_id = $1 AND gold_label IS NULL",
    )
    .bind(project_id)
    .fetch_one(&mut *c)
    .await?;
    let open: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT queue, count(*), min(created_at),
                count(*) FILTER (WHERE warned_at IS NOT NULL AND breached_at IS NULL AND due_at > $2),
                count(*) FILTER (WHERE due_at <= $2)
         FROM tasks WHERE project_id = $1 AND state = 'open' AND NOT gold
         GROUP BY queue ORDER BY queue",
    )
    .bind(project_id)
    .bind(now)
    .fetch_all(&mut *c)
    .await?;
    let breached: Vec<(String, i64)> = sqlx::query_as(
        "SELECT queue, count(*) FROM tasks WHERE project_id = $1 AND breached_at IS NOT NULL GROUP BY queue",
    )
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    let closed = closed_with_deadline(c, project_id, now).await?;
    let queues = QueueStats::assemble(open, breached, closed, now);
    let (audits_confirmed, audits_corrected): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE kind = $2), count(*) FILTER (WHERE kind = $3) FROM events
         WHERE project_id = $1 AND kind IN ($2, $3)",
    )
    .bind(project_id)
    .bind(Event::AUDIT_CONFIRMED)
    .bind(Event::ITEM_CORRECTED)
    .fetch_one(&mut *c)
    .await?;
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

pub(super) async fn answers_on_day(c: &mut PgConnection, reviewer_id: i64, day: i64) -> TxResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM reviews WHERE reviewer_id = $1 AND answered_at >= $2 AND answered_at < $2 + $3",
    )
    .bind(reviewer_id)
    .bind(day * DAY_MS)
    .bind(DAY_MS)
    .fetch_one(&mut *c)
    .await?)
}

pub(super) async fn activity(
    c: &mut PgConnection,
    project_id: i64,
    since: Millis,
    bucket_ms: i64,
) -> TxResult<Vec<ActivityBucket>> {
    let decided: Vec<(i64, i64, i64, Option<f64>)> = sqlx::query_as(
        "SELECT (created_at / $3) * $3, count(*) FILTER (WHERE outcome = 'auto'), count(*) FILTER (WHERE outcome = 'review'),
                avg((prediction->>'novelty')::float8)
         FROM items WHERE project_id = $1 AND created_at >= $2 AND gold_label IS NULL GROUP BY 1",
    )
    .bind(project_id)
    .bind(since)
    .bind(bucket_ms)
    .fetch_all(&mut *c)
    .await?;
    let answered: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT (w.answered_at / $3) * $3, count(*) FROM reviews w JOIN tasks t ON t.id = w.task_id
         WHERE t.project_id = $1 AND w.answered_at >= $2 GROUP BY 1",
    )
    .bind(project_id)
    .bind(since)
    .bind(bucket_ms)
    .fetch_all(&mut *c)
    .await?;
    Ok(ActivityBucket::merge(decided, answered))
}

pub(super) async fn latest_events(c: &mut PgConnection, project_id: i64, limit: usize) -> TxResult<Vec<EventRecord>> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} WHERE e.project_id = $1 AND e.seq IS NOT NULL ORDER BY e.seq DESC LIMIT $2");
    let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .bind(limit as i64)
        .fetch_all(&mut *c)
        .await?;
    rows.into_iter().map(event_record).collect()
}

pub(super) async fn queue_depths(
    c: &mut PgConnection,
    project_id: i64,
    now: Millis,
    sla_queues: &[String],
) -> TxResult<Vec<QueueDepth>> {
    let rows: Vec<(String, i16, i64, i64, i64)> = sqlx::query_as(
        "SELECT queue, tier, count(*), min(created_at), count(*) FILTER (WHERE due_at <= $2)
         FROM tasks WHERE project_id = $1 AND state = 'open' AND NOT gold
         GROUP BY queue, tier ORDER BY queue, tier",
    )
    .bind(project_id)
    .bind(now)
    .fetch_all(&mut *c)
    .await?;
    let tier = |t: i16| u8::try_from(t).unwrap_or(u8::MAX);
    let open = rows
        .into_iter()
        .map(|(q, t, n, oldest, overdue)| (q, tier(t), n, oldest, overdue))
        .collect();
    Ok(QueueDepth::assemble(open, sla_queues, now))
}
