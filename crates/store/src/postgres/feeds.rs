//! The feeds on PostgreSQL: feed positions handed out after commit by [`sequence_feeds`]
//! (one transaction at a time, before every feed read that finds rows waiting for one), the label feed and the event log
//! read by cursor, and the events the server appends of its own.

use sqlx::PgConnection;

use super::TxResult;
use super::common::{event, parse};
use crate::*;

/// Gives committed, unsequenced events and labels their feed positions, in one place at
/// a time, so that a position is never handed out below one a reader has already seen.
///
/// When no committed row waits for a position (a read-mostly moment), it takes no lock
/// and writes nothing: the check reads the two partial indexes of unsequenced rows. A
/// row committed after the check has no position yet, so the read that follows cannot
/// see it (`seq > cursor` is not true of NULL) and the next sequencer run places it after
/// every position handed out, as before; a row committed before it is sequenced here.
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
