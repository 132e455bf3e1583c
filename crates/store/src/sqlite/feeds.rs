//! The feeds on SQLite: the label feed and the event log, read by cursor, and the events
//! the server appends of its own. An `item.decided` event does not copy its decision:
//! [`event_row`] reads it back from the item.

use flywheel_core::Event;
use rusqlite::{Connection, Row, params};
use serde_json::Value;

use super::common::{event, json_col};
use crate::*;

pub(super) fn labels(c: &Connection, project_id: i64, after: i64, limit: usize) -> Result<Vec<LabelRecord>> {
    c.prepare_cached(
        "SELECT l.cursor, i.external_id, l.label, l.source, l.model, l.model_version, l.policy_version, l.resolved_at,
                l.fields
         FROM labels l JOIN items i ON i.id = l.item_id WHERE l.project_id = ?1 AND l.cursor > ?2 ORDER BY l.cursor LIMIT ?3",
    )?
    .query_map(params![project_id, after, limit as i64], |r| {
        Ok(LabelRecord {
            cursor: r.get(0)?,
            external_id: r.get(1)?,
            label: r.get(2)?,
            source: r.get(3)?,
            model: r.get(4)?,
            model_version: r.get(5)?,
            policy_version: r.get(6)?,
            resolved_at: r.get(7)?,
            fields: r
                .get::<_, Option<String>>(8)?
                .and_then(|f| serde_json::from_str(&f).ok()),
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

pub(super) fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRecord> {
    let mut data = json_col(r, 7)?;
    // Events stored before the decision was left out still carry it.
    if let Value::Object(fields) = &mut data
        && !fields.contains_key("decision")
        && r.get_ref(8)? != rusqlite::types::ValueRef::Null
    {
        fields.insert("decision".into(), json_col(r, 8)?);
    }
    Ok(EventRecord {
        seq: r.get(0)?,
        at: r.get(1)?,
        kind: r.get(2)?,
        actor: r.get(3)?,
        project_id: r.get(4)?,
        external_id: r.get(5)?,
        task_id: r.get(6)?,
        data,
    })
}

/// An event's columns, and its item's decision if it is an `item.decided` event (whose
/// `decision` `submit_items` leaves in the item).
pub(super) fn event_columns() -> &'static str {
    static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "e.seq, e.at, e.kind, e.actor, e.project_id, i.external_id, e.task_id, e.data,
             CASE WHEN e.kind = '{}' THEN i.decision END
             FROM events e LEFT JOIN items i ON i.id = e.item_id",
            Event::ITEM_DECIDED
        )
    });
    &COLUMNS
}

pub(super) fn events(c: &Connection, project_id: Option<i64>, after: i64, limit: usize) -> Result<Vec<EventRecord>> {
    let cols = event_columns();
    let sql = match project_id {
        Some(_) => format!("SELECT {cols} WHERE e.project_id = ?1 AND e.seq > ?2 ORDER BY e.seq LIMIT ?3"),
        None => format!("SELECT {cols} WHERE ?1 IS NULL AND e.seq > ?2 ORDER BY e.seq LIMIT ?3"),
    };
    c.prepare_cached(&sql)?
        .query_map(params![project_id, after, limit as i64], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Into::into)
}

pub(super) fn append_event(c: &Connection, project_id: i64, e: &Event, actor: &str, now: Millis) -> Result<()> {
    event(c, Some(project_id), None, None, now, actor, e)
}
