//! What every PostgreSQL operation shares: [`event`], through which every change appends
//! its events in the same transaction as the change, [`notify`] (a notice sent with
//! `pg_notify`, delivered only if the transaction commits) and [`parse`] for JSON read as
//! text. It owns no operation of its own.

use flywheel_core::Event;
use sqlx::PgConnection;

use super::TxResult;
use crate::*;

/// Appends one event (its kind and data from core's [`Event`]) in the caller's transaction.
pub(super) async fn event(
    c: &mut PgConnection,
    project_id: Option<i64>,
    item_id: Option<i64>,
    task_id: Option<i64>,
    now: Millis,
    actor: &str,
    e: &Event,
) -> TxResult<()> {
    sqlx::query(
        "INSERT INTO events (project_id, item_id, task_id, at, kind, actor, data) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
    )
    .bind(project_id)
    .bind(item_id)
    .bind(task_id)
    .bind(now)
    .bind(e.kind())
    .bind(actor)
    .bind(e.data_json()?)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Sends a notice to every node; delivered only if the transaction commits.
pub(super) async fn notify(c: &mut PgConnection, channel: &str, notice: &Notice) -> TxResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(serde_json::to_string(notice)?)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(s: &str) -> TxResult<T> {
    Ok(serde_json::from_str(s)?)
}

/// Project `project_id`'s labels in its mode: what gold and imported labels are checked
/// against before they are written.
pub(super) async fn project_labels(c: &mut PgConnection, project_id: i64) -> TxResult<flywheel_core::LabelSet> {
    let (names, mode): (String, String) = sqlx::query_as("SELECT labels::text, label_mode FROM projects WHERE id = $1")
        .bind(project_id)
        .fetch_one(&mut *c)
        .await?;
    let names: Vec<String> = parse(&names)?;
    Ok(flywheel_core::LabelSet::parse(&names)?.with_mode(flywheel_core::LabelMode::parse(&mode)?))
}
