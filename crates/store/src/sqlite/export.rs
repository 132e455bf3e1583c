//! Exports on SQLite: a project's items read page by page by a keyset cursor (the item id)
//! on a read connection, with their answers; and labels given elsewhere written as human
//! resolutions (in the writer's transaction). The formats (JSON lines, CSV, Label Studio)
//! are the server's.

use std::collections::HashMap;

use flywheel_core::Stage;
use flywheel_core::task::Source;
use rusqlite::{Connection, OptionalExtension, params};

use super::answers::insert_label;
use super::common::{event, opt_json};
use crate::*;
use flywheel_core::{Event, event as ev};

/// `+project_id` keeps SQLite off the `(project_id, external_id)` index, which would
/// read every item of the project and sort them for each page: the rowid range `id > ?`
/// walks the items in id order and stops after `limit` rows.
const PAGE: &str = "SELECT id, external_id, payload, attributes, prediction, decision, resolution, created_at
     FROM items
     WHERE +project_id = ?1 AND id > ?2 AND gold_label IS NULL
       AND (?3 IS NULL OR created_at >= ?3) AND (?4 IS NULL OR created_at < ?4)
       AND (?5 IS NULL OR (?5 = '' AND resolution IS NULL) OR json_extract(resolution, '$.source') = ?5)
     ORDER BY id LIMIT ?6";

pub(super) fn export_items(
    c: &Connection,
    project_id: i64,
    filter: &ExportFilter,
    after: i64,
    limit: usize,
) -> Result<Vec<ExportRow>> {
    let source = filter.source.map(|s| match s {
        SourceFilter::Resolved(s) => s.as_str(),
        SourceFilter::Unresolved => "",
    });
    let mut rows = c
        .prepare_cached(PAGE)?
        .query_map(
            params![project_id, after, filter.since, filter.until, source, limit as i64],
            |r| {
                Ok(ExportRow {
                    item_id: r.get(0)?,
                    external_id: r.get(1)?,
                    payload: r.get(2)?,
                    attributes: r.get(3)?,
                    prediction_json: r.get(4)?,
                    decision_json: r.get(5)?,
                    resolution_json: r.get(6)?,
                    reviews: Vec::new(),
                    created_at: r.get(7)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(rows);
    };
    let at: HashMap<i64, usize> = rows.iter().enumerate().map(|(i, r)| (r.item_id, i)).collect();
    // One range read of `reviews_item` for the whole page; answers on items outside it
    // (another project's, a gold item's) are dropped here.
    let reviews = c
        .prepare_cached(
            "SELECT w.item_id, v.name, t.stage, w.kind, w.label, w.claimed_at, w.answered_at
             FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id JOIN tasks t ON t.id = w.task_id
             WHERE w.item_id BETWEEN ?1 AND ?2 ORDER BY w.id",
        )?
        .query_map(params![first.item_id, last.item_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                ExportReview {
                    reviewer: r.get(1)?,
                    stage: Stage::parse(&r.get::<_, String>(2)?).unwrap_or(Stage::Review),
                    answer: r.get(3)?,
                    label: r.get(4)?,
                    claimed_at: r.get(5)?,
                    answered_at: r.get(6)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (item_id, review) in reviews {
        if let Some(&i) = at.get(&item_id) {
            rows[i].reviews.push(review);
        }
    }
    Ok(rows)
}

/// The stored item an imported label is for.
struct Target {
    id: i64,
    resolution: Option<Resolution>,
    model: Option<String>,
    model_version: Option<String>,
    policy_version: u32,
}

pub(super) fn import_labels(
    c: &Connection,
    project_id: i64,
    labels: Vec<ImportedLabel>,
    actor: &str,
    now: Millis,
) -> Result<usize> {
    // Everything is checked before anything is written: a refused job leaves no trace.
    let set = super::common::project_labels(c, project_id)?;
    let mut targets = Vec::with_capacity(labels.len());
    for (i, l) in labels.iter().enumerate() {
        set.check_stored(&format!("labels[{i}].label"), &l.label)?;
        let target = c
            .prepare_cached(
                "SELECT id, resolution, model, model_version, policy_version FROM items
                 WHERE project_id = ?1 AND external_id = ?2 AND gold_label IS NULL",
            )?
            .query_row(params![project_id, l.external_id], |r| {
                Ok(Target {
                    id: r.get(0)?,
                    resolution: opt_json(r, 1)?,
                    model: r.get(2)?,
                    model_version: r.get(3)?,
                    policy_version: r.get(4)?,
                })
            })
            .optional()?
            .ok_or_else(|| {
                flywheel_core::ValidationError::new(
                    format!("labels[{i}].external_id"),
                    format!("no item '{}' in this project", l.external_id),
                )
            })?;
        targets.push(target);
    }
    let mut resolved = 0;
    for (l, t) in labels.into_iter().zip(targets) {
        let previous = match &t.resolution {
            Some(r) if r.source != Source::Auto => continue,
            Some(r) => Some(r.label.clone()),
            None => None,
        };
        let resolution = l.resolution(now);
        // Holds only while no person resolved the item: an external id given twice in one
        // batch is resolved once.
        let updated = c
            .prepare_cached(
                "UPDATE items SET resolved_label = ?2, resolution = ?3, resolved_at = ?4
                 WHERE id = ?1 AND (resolution IS NULL OR json_extract(resolution, '$.source') = 'auto')",
            )?
            .execute(params![t.id, l.label, serde_json::to_string(&resolution)?, now])?;
        if updated == 0 {
            continue;
        }
        if t.resolution.is_none() {
            super::counts::resolved(project_id);
        }
        let closed = c
            .prepare_cached(
                "UPDATE tasks SET state = 'done', available = 0, closed_at = ?2, reason = 'imported'
                 WHERE item_id = ?1 AND state = 'open' RETURNING queue, gold",
            )?
            .query_map(params![t.id, now], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(String, bool)>>>()?;
        for (queue, _) in closed.iter().filter(|(_, gold)| !gold) {
            super::counts::open(project_id, queue, -1);
        }
        c.prepare_cached(
            "UPDATE leases SET state = 'cancelled', ended_at = ?2 WHERE item_id = ?1 AND state = 'active'",
        )?
        .execute(params![t.id, now])?;
        insert_label(
            c,
            project_id,
            t.id,
            &l.label,
            Source::Human,
            t.model.as_deref(),
            t.model_version.as_deref(),
            t.policy_version,
            now,
        )?;
        event(
            c,
            Some(project_id),
            Some(t.id),
            None,
            now,
            actor,
            &Event::ItemResolved(ev::ItemResolved {
                labels: None,
                label: resolution.label,
                previous,
                source: resolution.source,
                method: resolution.method,
                confidence: resolution.confidence,
                reviewers: resolution.reviewers,
            }),
        )?;
        resolved += 1;
    }
    Ok(resolved)
}
