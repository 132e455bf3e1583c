//! The feeds on PostgreSQL: feed positions handed out after commit, in committed
//! contiguous blocks, by [`settle`] (before a feed read, without queueing) or
//! [`sequence_feeds`] (inside a caller's transaction, waiting for the lock); the label feed
//! and the event log read by cursor, and the events the server appends of its own.
//!
//! Invariant: positions (`events.seq`, `labels.cursor`) are written only by a sequencer
//! run, which holds the `.sequencer` advisory lock for its whole transaction, numbers the
//! committed rows without one `max+1, max+2, …` in id order and commits them at once. Runs
//! never overlap, and each run's commit is visible before the next run can take the lock
//! (so its `max` is the last run's). Any snapshot therefore holds the positions `1..P` with
//! no hole, and a feed read needs no lock: a run in progress commits a whole block after
//! the read's snapshot or not at all, so no position below one a reader returned can
//! appear later.

use std::time::{Duration, Instant};

use sqlx::PgConnection;

use super::TxResult;
use super::common::{event, parse};
use crate::*;

/// How long [`settle`] polls a sequencer run that another connection holds before it
/// queues for the lock itself.
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// Makes every event and label committed before the call hold its feed position, without
/// queueing behind another sequencer run when it can help it, so that concurrent feed
/// reads do not serialise on the lock ("a row is in the feed at once": an acknowledged
/// write is in every feed read that starts after it).
///
/// With no row waiting (the two partial indexes of unsequenced rows are empty) it takes
/// no lock and writes nothing. Otherwise it notes the highest waiting ids, then tries the
/// lock without waiting (`pg_try_advisory_xact_lock`): with it, it numbers every waiting
/// row in a short transaction of its own; without it, another run is in progress, which
/// may have taken its snapshot before this caller's rows committed, so it polls until no
/// row at or below those ids waits (that run, or a later one, numbered them) or it gets
/// the lock; after [`SETTLE_POLL`] it queues for the lock instead, so the wait is bounded
/// by one queued run.
pub(super) async fn settle(c: &mut PgConnection) -> TxResult<()> {
    let (events, labels): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT max(id) FROM events WHERE seq IS NULL), (SELECT max(id) FROM labels WHERE cursor IS NULL)",
    )
    .fetch_one(&mut *c)
    .await?;
    if events.is_none() && labels.is_none() {
        return Ok(());
    }
    let (events, labels) = (events.unwrap_or(0), labels.unwrap_or(0));
    let give_up = Instant::now() + SETTLE_POLL;
    let mut pause = Duration::from_micros(200);
    loop {
        let mut tx = sqlx::Connection::begin(&mut *c).await?;
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.sequencer'))")
                .fetch_one(&mut *tx)
                .await?;
        if got {
            number_waiting(&mut tx).await?;
            tx.commit().await?;
            return Ok(());
        }
        tx.rollback().await?;
        let done: bool = sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM events WHERE seq IS NULL AND id <= $1)
                AND NOT EXISTS (SELECT 1 FROM labels WHERE cursor IS NULL AND id <= $2)",
        )
        .bind(events)
        .bind(labels)
        .fetch_one(&mut *c)
        .await?;
        if done {
            return Ok(());
        }
        if Instant::now() >= give_up {
            let mut tx = sqlx::Connection::begin(&mut *c).await?;
            sequence_feeds(&mut tx).await?;
            tx.commit().await?;
            return Ok(());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Gives committed, unsequenced events and labels their feed positions inside the
/// caller's transaction, waiting for the sequencer's lock, which it holds until that
/// transaction ends — for a caller that must see every committed row numbered before it
/// writes (a new webhook's cursor). Feed reads use [`settle`], which does not queue.
///
/// When no committed row waits for a position it takes no lock and writes nothing. A row
/// committed after the check has no position yet, so the caller cannot see it
/// (`seq > cursor` is not true of NULL) and the next run places it after every position
/// handed out.
pub(super) async fn sequence_feeds(c: &mut PgConnection) -> TxResult<()> {
    let waiting: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE seq IS NULL) OR EXISTS (SELECT 1 FROM labels WHERE cursor IS NULL)",
    )
    .fetch_one(&mut *c)
    .await?;
    if !waiting {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.sequencer'))")
        .execute(&mut *c)
        .await?;
    number_waiting(c).await
}

/// One sequencer run's writes; the caller holds the `.sequencer` lock for its transaction.
/// Each statement takes its snapshot after the lock was granted, so it sees the previous
/// run's commit and starts after its last position.
async fn number_waiting(c: &mut PgConnection) -> TxResult<()> {
    sqlx::query(
        "WITH todo AS (SELECT id, row_number() OVER (ORDER BY id) AS rn
                       FROM (SELECT id FROM events WHERE seq IS NULL ORDER BY id LIMIT 100000) s),
              base AS (SELECT coalesce(max(seq), 0) AS b FROM events)
         UPDATE events e SET seq = base.b + todo.rn FROM todo, base WHERE e.id = todo.id",
    )
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "WITH todo AS (SELECT id, row_number() OVER (ORDER BY id) AS rn
                       FROM (SELECT id FROM labels WHERE cursor IS NULL ORDER BY id LIMIT 100000) s),
              base AS (SELECT coalesce(max(cursor), 0) AS b FROM labels)
         UPDATE labels l SET cursor = base.b + todo.rn FROM todo, base WHERE l.id = todo.id",
    )
    .execute(&mut *c)
    .await?;
    Ok(())
}

type LabelRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i32,
    i64,
    Option<String>,
);

pub(super) async fn labels(
    c: &mut PgConnection,
    project_id: i64,
    after: i64,
    limit: usize,
) -> TxResult<Vec<LabelRecord>> {
    let rows: Vec<LabelRow> = sqlx::query_as(
        "SELECT l.cursor, i.external_id, l.label, l.source, l.model, l.model_version, l.policy_version, l.resolved_at,
                l.fields::text
         FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = $1 AND l.cursor > $2 ORDER BY l.cursor LIMIT $3",
    )
    .bind(project_id)
    .bind(after)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(cursor, external_id, label, source, model, model_version, policy_version, resolved_at, fields)| {
                LabelRecord {
                    cursor,
                    external_id,
                    label,
                    source,
                    model,
                    model_version,
                    policy_version: policy_version as u32,
                    resolved_at,
                    fields: fields.and_then(|f| serde_json::from_str(&f).ok()),
                }
            },
        )
        .collect())
}

pub(super) type EventRow = (
    i64,
    i64,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
    String,
);

pub(super) const EVENT_COLUMNS: &str =
    "coalesce(e.seq, 0), e.at, e.kind, e.actor, e.project_id, i.external_id, e.task_id, e.data::text
     FROM events e LEFT JOIN items i ON i.id = e.item_id";

pub(super) fn event_record(r: EventRow) -> TxResult<EventRecord> {
    Ok(EventRecord {
        seq: r.0,
        at: r.1,
        kind: r.2,
        actor: r.3,
        project_id: r.4,
        external_id: r.5,
        task_id: r.6,
        data: parse(&r.7)?,
    })
}

pub(super) async fn events(
    c: &mut PgConnection,
    project_id: Option<i64>,
    after: i64,
    limit: usize,
) -> TxResult<Vec<EventRecord>> {
    let sql = match project_id {
        Some(_) => format!("SELECT {EVENT_COLUMNS} WHERE e.project_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3"),
        None => format!("SELECT {EVENT_COLUMNS} WHERE $1::bigint IS NULL AND e.seq > $2 ORDER BY e.seq LIMIT $3"),
    };
    let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&mut *c)
        .await?;
    rows.into_iter().map(event_record).collect()
}

pub(super) async fn append_event(
    c: &mut PgConnection,
    project_id: i64,
    e: &flywheel_core::Event,
    actor: &str,
    now: Millis,
) -> TxResult<()> {
    event(c, Some(project_id), None, None, now, actor, e).await
}
