//! Exports on PostgreSQL (the same model as `sqlite/export.rs`): a project's items read
//! page by page by a keyset cursor (the item id) with their answers, and labels given
//! elsewhere written as human resolutions, in one transaction with their events.

use std::collections::HashMap;

use flywheel_core::Stage;
use flywheel_core::task::Source;
use sqlx::PgConnection;

use super::TxResult;
use super::answers::insert_label;
use super::common::{event, parse};
use crate::*;
use flywheel_core::{Event, event as ev};

type PageRow = (i64, String, String, String, Option<String>, String, Option<String>, i64);
type ReviewRow = (i64, String, String, String, Option<String>, i64, i64);

pub(super) async fn export_items(
    c: &mut PgConnection,
    project_id: i64,
    filter: &ExportFilter,
    after: i64,
    limit: usize,
) -> TxResult<Vec<ExportRow>> {
    let source = filter.source.map(|s| match s {
        SourceFilter::Resolved(s) => s.as_str(),
        SourceFilter::Unresolved => "",
    });
    let page: Vec<PageRow> = sqlx::query_as(
        "SELECT id, external_id, payload::text, attributes::text, prediction::text, decision::text, resolution::text,
                created_at
         FROM items
         WHERE project_id = $1 AND id > $2 AND gold_label IS NULL
           AND ($3::bigint IS NULL OR created_at >= $3) AND ($4::bigint IS NULL OR created_at < $4)
           AND ($5::text IS NULL OR ($5 = '' AND resolution IS NULL) OR resolution->>'source' = $5)
         ORDER BY id LIMIT $6",
    )
    .bind(project_id)
    .bind(after)
    .bind(filter.since)
    .bind(filter.until)
    .bind(source)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    let mut rows = Vec::with_capacity(page.len());
    for (item_id, external_id, payload, attributes, prediction, decision, resolution, created_at) in page {
        rows.push(ExportRow {
            item_id,
            external_id,
            payload,
            attributes,
            prediction_json: prediction,
            decision_json: decision,
            resolution_json: resolution,
            reviews: Vec::new(),
            created_at,
        });
    }
    if rows.is_empty() {
        return Ok(rows);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.item_id).collect();
    let at: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let reviews: Vec<ReviewRow> = sqlx::query_as(
        "SELECT w.item_id, v.name, t.stage, w.kind, w.label, w.claimed_at, w.answered_at
         FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id JOIN tasks t ON t.id = w.task_id
         WHERE w.item_id = ANY($1) ORDER BY w.id",
    )
    .bind(&ids)
    .fetch_all(&mut *c)
    .await?;
    for (item_id, reviewer, stage, answer, label, claimed_at, answered_at) in reviews {
        if let Some(&i) = at.get(&item_id) {
            rows[i].reviews.push(ExportReview {
                reviewer,
                stage: Stage::parse(&stage).unwrap_or(Stage::Review),
                answer,
                label,
                claimed_at,
                answered_at,
            });
        }
    }
    Ok(rows)
}

type TargetRow = (i64, Option<String>, Option<String>, Option<String>, i32);

pub(super) async fn import_labels(
    c: &mut PgConnection,
    project_id: i64,
    labels: &[ImportedLabel],
    actor: &str,
    now: Millis,
) -> TxResult<usize> {
    let set = super::common::project_labels(c, project_id).await?;
    let mut targets = Vec::with_capacity(labels.len());
    for (i, l) in labels.iter().enumerate() {
        set.check_stored(&format!("labels[{i}].label"), &l.label)?;
        let target: Option<TargetRow> = sqlx::query_as(
            "SELECT id, resolution::text, model, model_version, policy_version FROM items
             WHERE project_id = $1 AND external_id = $2 AND gold_label IS NULL",
        )
        .bind(project_id)
        .bind(&l.external_id)
        .fetch_optional(&mut *c)
        .await?;
        let target = target.ok_or_else(|| {
            StoreError::from(flywheel_core::ValidationError::new(
                format!("labels[{i}].external_id"),
                format!("no item '{}' in this project", l.external_id),
            ))
        })?;
        targets.push(target);
    }
    let mut resolved = 0;
    for (l, (item_id, resolution, model, model_version, policy_version)) in labels.iter().zip(targets) {
        let previous = match resolution.as_deref().map(parse::<Resolution>).transpose()? {
            Some(r) if r.source != Source::Auto => continue,
            Some(r) => Some(r.label),
            None => None,
        };
        // The item's open tasks first, as an answer locks its task before the item: the
        // two never deadlock. The update then holds only if no answer (or import)
        // resolved the item meanwhile.
        sqlx::query("SELECT id FROM tasks WHERE item_id = $1 AND state = 'open' ORDER BY id FOR UPDATE")
            .bind(item_id)
            .fetch_all(&mut *c)
            .await?;
        let resolution = l.resolution(now);
        let updated = sqlx::query(
            "UPDATE items SET resolved_label = $2, resolution = $3::jsonb, resolved_at = $4
             WHERE id = $1 AND (resolution IS NULL OR resolution->>'source' = 'auto')",
        )
        .bind(item_id)
        .bind(&l.label)
        .bind(serde_json::to_string(&resolution)?)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected();
        if updated == 0 {
            continue;
        }
        sqlx::query(
            "UPDATE tasks SET state = 'done', available = 0, closed_at = $2, reason = 'imported'
             WHERE item_id = $1 AND state = 'open'",
        )
        .bind(item_id)
        .bind(now)
        .execute(&mut *c)
        .await?;
        sqlx::query("UPDATE leases SET state = 'cancelled', ended_at = $2 WHERE item_id = $1 AND state = 'active'")
            .bind(item_id)
            .bind(now)
            .execute(&mut *c)
            .await?;
        insert_label(
            c,
            project_id,
            item_id,
            &l.label,
            Source::Human,
            model.as_deref(),
            model_version.as_deref(),
            policy_version as u32,
            now,
        )
        .await?;
        event(
            c,
            Some(project_id),
            Some(item_id),
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
        )
        .await?;
        resolved += 1;
    }
    Ok(resolved)
}
