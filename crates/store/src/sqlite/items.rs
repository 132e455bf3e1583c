//! Items on SQLite: a batch of decided items written with multi-row `INSERT`s (the writer
//! merges every submission to one project by one caller in a group commit into one call of
//! [`submit_items`]), and one item's whole record. Writes run inside the writer's
//! transaction. What happens to an item's tasks after that is `work.rs`'s and
//! `answers.rs`'s.

use std::collections::HashMap;

use flywheel_core::task::Source;
use flywheel_core::{Decision, Outcome, Prediction, Stage};
use rusqlite::{Connection, OptionalExtension, params};

use super::common::{json_col, opt_json};
use super::feeds::{event_columns, event_row};
use crate::*;
use flywheel_core::{Event, event as ev};

/// An item made ready for the writer: its JSON already serialised.
pub(super) struct PreparedItem {
    external_id: String,
    payload: String,
    attributes: String,
    prediction: Option<String>,
    model: Option<String>,
    model_version: Option<String>,
    decision: Decision,
    decision_json: String,
}

impl PreparedItem {
    pub(super) fn new(item: NewItem) -> Result<Self> {
        Ok(Self {
            payload: item.payload.to_string(),
            attributes: item.attributes.to_string(),
            prediction: item.prediction.as_ref().map(serde_json::to_string).transpose()?,
            model: item.prediction.as_ref().map(|p| p.model.clone()),
            model_version: item.prediction.as_ref().and_then(|p| p.version.clone()),
            decision_json: serde_json::to_string(&item.decision)?,
            decision: item.decision,
            external_id: item.external_id,
        })
    }
}

/// Most rows one multi-row `INSERT` takes.
const ROWS_PER_INSERT: usize = 64;

/// Inserts `values` (rows of `width` values each, in order) as `INSERT INTO {head} VALUES
/// (..), (..) {tail}`, in pieces of 64, 32, ..., 1 rows — few statement shapes, so the
/// statement cache keeps every one. One statement per piece instead of one per row: each
/// statement's start and end (cursors opened and closed on the table and every index) cost
/// as much as a row. With `key`, returns each inserted row's `(value of column key, rowid)`
/// (a row that `tail` made a no-op returns nothing).
///
/// The rowids are worked out, not returned: SQLite gives a new row the largest rowid + 1,
/// and this connection is the only writer, so a piece's new rows are the last `changed`
/// rowids, in order. (A `RETURNING` clause fills a temporary table per statement: without
/// it the writer spends 3.7 instead of 4.4 µs per imported item.) A piece in which `tail`
/// skipped a row reads its new rows' keys back by rowid.
fn insert_rows(
    c: &Connection,
    head: &'static str,
    width: usize,
    tail: &'static str,
    values: &[rusqlite::types::Value],
    key: Option<(usize, &'static str)>,
) -> Result<Vec<(rusqlite::types::Value, i64)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < values.len() {
        let left = (values.len() - at) / width;
        let n = if left >= ROWS_PER_INSERT {
            ROWS_PER_INSERT
        } else {
            1 << left.ilog2()
        };
        let piece = &values[at..at + n * width];
        let changed = c
            .prepare_cached(&insert_sql(head, width, n, tail))?
            .execute(rusqlite::params_from_iter(piece))?;
        if let Some((col, name)) = key
            && changed > 0
        {
            let last = c.last_insert_rowid();
            let first = last - changed as i64 + 1;
            if changed == n {
                out.extend(piece.chunks(width).zip(first..).map(|(row, id)| (row[col].clone(), id)));
            } else {
                let table = head.split_whitespace().next().unwrap_or(head);
                let sql = format!("SELECT {name}, rowid FROM {table} WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid");
                let mut stmt = c.prepare_cached(&sql)?;
                let mut rows = stmt.query([first, last])?;
                while let Some(r) = rows.next()? {
                    out.push((r.get(0)?, r.get(1)?));
                }
            }
        }
        at += n * width;
    }
    Ok(out)
}

/// The text of one multi-row `INSERT`, built once per shape (building it took 4% of the
/// writer's time in single-item decisions).
fn insert_sql(head: &'static str, width: usize, rows: usize, tail: &'static str) -> std::rc::Rc<str> {
    type Shape = (usize, usize, usize);
    thread_local! {
        static SQL: std::cell::RefCell<HashMap<Shape, std::rc::Rc<str>>> =
            Default::default();
    }
    // `head` and `tail` are literals: their addresses identify the statement.
    let shape = (head.as_ptr() as usize, tail.as_ptr() as usize, rows);
    SQL.with_borrow_mut(|cache| {
        cache
            .entry(shape)
            .or_insert_with(|| {
                let row = format!("({})", vec!["?"; width].join(","));
                let values = vec![row.as_str(); rows].join(",");
                format!("INSERT INTO {head} VALUES {values} {tail}").into()
            })
            .clone()
    })
}

pub(super) fn submit_items(
    c: &Connection,
    project_id: i64,
    items: Vec<PreparedItem>,
    actor: &str,
    now: Millis,
) -> Result<Vec<Submitted>> {
    use rusqlite::types::Value as V;
    let text = |s: String| V::Text(s);
    let opt = |s: Option<String>| s.map_or(V::Null, V::Text);
    // Items first, all of them; an external id stored before (or twice in this batch)
    // inserts nothing and is answered with the stored decision.
    let mut rows = Vec::with_capacity(items.len() * 14);
    let mut kept = Vec::with_capacity(items.len());
    for it in items {
        let d = &it.decision;
        let auto_label = match &d.outcome {
            Outcome::Auto { label } => Some(label.clone()),
            Outcome::Review { .. } => None,
        };
        let resolution = auto_label
            .as_ref()
            .map(|l| {
                serde_json::to_string(&Resolution {
                    labels: None,
                    label: l.clone(),
                    source: Source::Auto,
                    method: format!("rule:{}", d.rule),
                    confidence: 1.0,
                    reviewers: vec![],
                    resolved_at: now,
                })
            })
            .transpose()?;
        rows.extend([
            V::Integer(project_id),
            text(it.external_id.clone()),
            text(it.payload),
            text(it.attributes),
            opt(it.prediction),
            text(it.decision_json),
            text(if auto_label.is_some() { "auto" } else { "review" }.into()),
            V::Integer(i64::from(d.policy_version)),
            opt(it.model.clone()),
            opt(it.model_version.clone()),
            V::Integer(now),
            opt(auto_label.clone()),
            opt(resolution),
            if auto_label.is_some() { V::Integer(now) } else { V::Null },
        ]);
        kept.push((it.external_id, it.decision, it.model, it.model_version, auto_label));
    }
    let mut inserted: HashMap<String, i64> = insert_rows(
        c,
        "items (project_id, external_id, payload, attributes, prediction, decision, outcome, policy_version,
                model, model_version, created_at, resolved_label, resolution, resolved_at)",
        14,
        "ON CONFLICT (project_id, external_id) DO NOTHING",
        &rows,
        Some((1, "external_id")),
    )?
    .into_iter()
    .filter_map(|(k, id)| match k {
        V::Text(external_id) => Some((external_id, id)),
        _ => None,
    })
    .collect();
    // Then each new item's task (a review, or an auto decision's audit) and, for auto
    // decisions, its label.
    let mut tasks = Vec::new();
    let mut labels = Vec::new();
    let mut out = Vec::with_capacity(kept.len());
    let mut new_items = Vec::new();
    for (external_id, decision, model, model_version, auto_label) in kept {
        let Some(item_id) = inserted.remove(&external_id) else {
            // Stored before (idempotency): the first decision stands, nothing is created.
            let (item_id, stored): (i64, String) = c
                .prepare_cached("SELECT id, decision FROM items WHERE project_id = ?1 AND external_id = ?2")?
                .query_row(params![project_id, external_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            out.push(Submitted {
                external_id,
                item_id,
                decision: serde_json::from_str(&stored)?,
                duplicate: true,
            });
            continue;
        };
        let task = match (&decision.outcome, &decision.audit) {
            (Outcome::Review { route }, _) => Some((Stage::Review, route, V::Null)),
            (Outcome::Auto { .. }, Some(route)) => Some((Stage::Audit, route, text("audit sample".into()))),
            (Outcome::Auto { .. }, None) => None,
        };
        super::counts::item(project_id, auto_label.is_some(), auto_label.is_some());
        if let Some((stage, route, reason)) = task {
            super::counts::open(project_id, &route.queue, 1);
            let (warn_at, due_at) = flywheel_core::sla::deadlines(route, now);
            tasks.extend([
                V::Integer(project_id),
                V::Integer(item_id),
                text(stage.as_str().into()),
                text(route.queue.clone()),
                V::Integer(i64::from(route.tier)),
                V::Integer(i64::from(route.priority)),
                V::Integer(i64::from(route.overlap)),
                V::Integer(i64::from(route.overlap)),
                reason,
                V::Integer(now),
                text("open".into()),
                warn_at.map_or(V::Null, V::Integer),
                due_at.map_or(V::Null, V::Integer),
            ]);
        }
        if let Some(label) = &auto_label {
            labels.extend([
                V::Integer(project_id),
                V::Integer(item_id),
                text(label.clone()),
                text(Source::Auto.as_str().into()),
                opt(model),
                opt(model_version),
                V::Integer(i64::from(decision.policy_version)),
                V::Integer(now),
            ]);
        }
        new_items.push((item_id, auto_label));
        out.push(Submitted {
            external_id,
            item_id,
            decision,
            duplicate: false,
        });
    }
    let task_of: HashMap<i64, i64> = insert_rows(
        c,
        "tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, reason, created_at, state, warn_at, due_at)",
        13,
        "",
        &tasks,
        Some((1, "item_id")),
    )?
    .into_iter()
    .filter_map(|(k, id)| match k {
        V::Integer(item_id) => Some((item_id, id)),
        _ => None,
    })
    .collect();
    insert_rows(
        c,
        "labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at)",
        8,
        "",
        &labels,
        None,
    )?;
    // One event per item, for the item, its decision, its task and (auto) its resolution.
    // The decision is not copied into the event: it is the item's, never rewritten, and
    // `event_row` puts it back (about half of each event's bytes otherwise; see `feeds::event_row`).
    let mut events = Vec::with_capacity(new_items.len() * 7);
    for (item_id, auto_label) in new_items {
        let task = task_of.get(&item_id).copied();
        let data = Event::ItemDecided(ev::ItemDecided {
            decision: None,
            tasks: task.into_iter().collect(),
            resolved: auto_label.map(|l| l.to_string()),
        })
        .data_json()?;
        events.extend([
            V::Integer(project_id),
            V::Integer(item_id),
            task.map_or(V::Null, V::Integer),
            V::Integer(now),
            text(actor.to_string()),
            text(data),
            text(Event::ITEM_DECIDED.into()),
        ]);
    }
    insert_rows(
        c,
        "events (project_id, item_id, task_id, at, actor, data, kind)",
        7,
        "",
        &events,
        None,
    )?;
    Ok(out)
}

pub(super) fn item(c: &Connection, project_id: i64, external_id: &str) -> Result<Option<ItemDetail>> {
    let row = c
        .prepare_cached(
            "SELECT id, payload, attributes, prediction, created_at, decision, resolution FROM items WHERE project_id = ?1 AND external_id = ?2",
        )?
        .query_row(params![project_id, external_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                json_col(r, 1)?,
                json_col(r, 2)?,
                opt_json::<Prediction>(r, 3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                opt_json::<Resolution>(r, 6)?,
            ))
        })
        .optional()?;
    let Some((item_id, payload, attributes, prediction, created_at, decision, resolution)) = row else {
        return Ok(None);
    };
    let tasks = c
        .prepare_cached(
            "SELECT id, stage, queue, tier, priority, overlap, answered, state, reason, created_at, closed_at, due_at
             FROM tasks WHERE item_id = ?1 ORDER BY id",
        )?
        .query_map([item_id], |r| {
            Ok(TaskRecord {
                task_id: r.get(0)?,
                stage: Stage::parse(&r.get::<_, String>(1)?).unwrap_or(Stage::Review),
                queue: r.get(2)?,
                tier: r.get(3)?,
                priority: r.get(4)?,
                overlap: r.get(5)?,
                answered: r.get(6)?,
                state: r.get(7)?,
                reason: r.get(8)?,
                created_at: r.get(9)?,
                closed_at: r.get(10)?,
                due_at: r.get(11)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let reviews = c
        .prepare_cached(
            "SELECT w.review_id, w.task_id, v.name, w.kind, w.label, w.reason, w.failure_category, w.note, w.claimed_at, w.answered_at,
                    w.fields
             FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id WHERE w.item_id = ?1 ORDER BY w.id",
        )?
        .query_map([item_id], |r| {
            Ok(ReviewRecord {
                review_id: r.get(0)?,
                task_id: r.get(1)?,
                reviewer: r.get(2)?,
                answer: r.get(3)?,
                label: r.get(4)?,
                reason: r.get(5)?,
                failure_category: r.get(6)?,
                note: r.get(7)?,
                claimed_at: r.get(8)?,
                answered_at: r.get(9)?,
                fields: opt_json(r, 10)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let events = c
        .prepare_cached(&format!(
            "SELECT {} WHERE e.item_id = ?1 ORDER BY e.seq",
            event_columns()
        ))?
        .query_map([item_id], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(ItemDetail {
        item_id,
        external_id: external_id.to_string(),
        payload,
        attributes,
        prediction,
        created_at,
        decision: serde_json::from_str(&decision)?,
        tasks,
        reviews,
        resolution,
        events,
    }))
}
