//! What every SQLite operation shares: [`event`], through which every change appends its
//! events in the same transaction as the change, and the readers of JSON columns. It owns
//! no operation of its own.

use flywheel_core::Event;
use rusqlite::{Connection, Row, params};
use serde_json::Value;

use crate::*;

/// Appends one event (its kind and data from core's [`Event`]). Every change calls this in
/// the same transaction as the change.
pub(super) fn event(
    c: &Connection,
    project_id: Option<i64>,
    item_id: Option<i64>,
    task_id: Option<i64>,
    now: Millis,
    actor: &str,
    e: &Event,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO events (project_id, item_id, task_id, at, kind, actor, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        project_id,
        item_id,
        task_id,
        now,
        e.kind(),
        actor,
        e.data_json()?
    ])?;
    super::counts::event(project_id, e.kind());
    Ok(())
}

pub(super) fn json_col(r: &Row<'_>, idx: usize) -> rusqlite::Result<Value> {
    let s: String = r.get(idx)?;
    serde_json::from_str(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

/// A nullable JSON column, parsed from the text SQLite holds (borrowed, not copied first).
pub(super) fn opt_json<T: serde::de::DeserializeOwned>(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>> {
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e)
    };
    let text = r.get_ref(idx)?.as_str_or_null().map_err(|e| fail(Box::new(e)))?;
    text.map(|s| serde_json::from_str(s).map_err(|e| fail(Box::new(e))))
        .transpose()
}

/// Project `project_id`'s labels in its mode: what gold and imported labels are checked
/// against before they are written.
pub(super) fn project_labels(c: &Connection, project_id: i64) -> Result<flywheel_core::LabelSet> {
    let (names, mode): (String, String) = c
        .prepare_cached("SELECT labels, label_mode FROM projects WHERE id = ?1")?
        .query_row([project_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let names: Vec<String> = serde_json::from_str(&names)?;
    Ok(flywheel_core::LabelSet::parse(&names)?.with_mode(flywheel_core::LabelMode::parse(&mode)?))
}
