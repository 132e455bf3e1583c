//! The label feed, the event log and the counters: cursor-paged and replayable from the
//! start.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use flywheel_store::EventRecord;

use super::dto::*;
use super::{page, ts};
use crate::app::{AppState, feeds};
use crate::auth::Caller;
use crate::error::ApiError;

/// Resolutions in the order they happened. A later entry for an item supersedes an
/// earlier one (an audit that corrected an auto decision).
#[utoipa::path(get, path = "/v1/projects/{project}/labels",
    params(("project" = String, Path), ("after" = Option<i64>, Query), ("limit" = Option<usize>, Query, description = "at most 1000")),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = LabelPage)), security(("bearer" = [])))]
pub async fn labels(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<LabelPage>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_service(&p)?;
    let (after, limit) = page(&params)?;
    let rows = feeds::labels(&s, &p, after, limit).await?;
    let next_cursor = rows.last().map_or(after, |r| r.cursor);
    Ok(Json(LabelPage {
        labels: rows
            .into_iter()
            .map(|l| LabelOut {
                cursor: l.cursor,
                external_id: l.external_id,
                label: (!p.labels.is_multi()).then(|| l.label.clone()),
                labels: p.labels.is_multi().then(|| label_set(&l.label)),
                source: l.source,
                model: l.model,
                model_version: l.model_version,
                policy_version: l.policy_version,
                resolved_at: ts(l.resolved_at),
                // In a project with answer fields every row carries them (`{}` for an
                // auto decision, which no reviewer filled in).
                fields: (!p.fields.is_empty()).then(|| l.fields.unwrap_or_else(|| serde_json::json!({}))),
            })
            .collect(),
        next_cursor,
    }))
}

/// A multi-label project's stored answer (its canonical encoding) as the list of its
/// labels; the store writes only encodings core made, so one that does not decode is a
/// bug shown as an empty set rather than a failed page.
pub(super) fn label_set(stored: &str) -> Vec<String> {
    flywheel_core::label::decode_set(stored).unwrap_or_default()
}

pub(super) fn event_out(e: EventRecord) -> EventOut {
    EventOut {
        seq: e.seq,
        at: ts(e.at),
        kind: e.kind,
        actor: e.actor,
        external_id: e.external_id,
        task_id: e.task_id,
        data: e.data,
    }
}

async fn event_page(
    s: &AppState,
    project: Option<i64>,
    params: &HashMap<String, String>,
) -> Result<Json<EventPage>, ApiError> {
    let (after, limit) = page(params)?;
    let rows = feeds::events(s, project, after, limit).await?;
    let next_cursor = rows.last().map_or(after, |r| r.seq);
    Ok(Json(EventPage {
        events: rows.into_iter().map(event_out).collect(),
        next_cursor,
    }))
}

/// The project's event log: every change, in order.
#[utoipa::path(get, path = "/v1/projects/{project}/events",
    params(("project" = String, Path), ("after" = Option<i64>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = EventPage)), security(("bearer" = [])))]
pub async fn project_events(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EventPage>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    event_page(&s, Some(p.id), &params).await
}

/// Every event of every project, and those of no project (reviewers, keys).
#[utoipa::path(get, path = "/v1/events", params(("after" = Option<i64>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = EventPage)), security(("bearer" = [])))]
pub async fn all_events(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EventPage>, ApiError> {
    caller.require_admin()?;
    event_page(&s, None, &params).await
}

#[utoipa::path(get, path = "/v1/projects/{project}/stats", params(("project" = String, Path)),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = StatsOut)), security(("bearer" = [])))]
pub async fn stats(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<StatsOut>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_any(&p)?;
    let st = feeds::stats(&s, &p).await?;
    Ok(Json(StatsOut {
        automation_rate: st.automation_rate(),
        items: st.counts.items,
        auto: st.counts.auto,
        review: st.counts.review,
        resolved: st.counts.resolved,
        open_tasks: st.counts.open_tasks,
        audits: st.audits,
        auto_precision_from_audits: st.audit.value,
        auto_precision_interval: st.audit.interval.map(|(lo, hi)| [lo, hi]),
        thresholds: st.thresholds.iter().map(|(l, t)| (l.clone(), *t)).collect(),
        queues: st
            .counts
            .queues
            .into_iter()
            .map(|q| {
                (
                    q.name,
                    QueueOut {
                        open: q.open,
                        oldest_age_s: q.oldest_age_ms as f64 / 1000.0,
                        due_soon: q.due_soon,
                        overdue: q.overdue,
                        breached_total: q.breached_total,
                        answered_within_sla_1h: q.within_sla_1h,
                        answered_within_sla_24h: q.within_sla_24h,
                    },
                )
            })
            .collect(),
    }))
}
