//! Items in, decisions out; and an item's whole story (`app::items` decides).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use flywheel_core::{Decision, Outcome, Route};
use flywheel_store::Resolution;
use serde_json::Value;

use super::dto::*;
use super::{ApiJson, MAX_BATCH, ts};
use crate::app::{AppState, items};
use crate::auth::Caller;
use crate::error::ApiError;

/// Submits items; each gets its decision at once. The whole batch is checked before
/// anything is written: one bad item refuses the batch with a 422 naming it. An
/// `external_id` already stored returns its first decision with `duplicate: true`.
#[utoipa::path(post, path = "/v1/projects/{project}/items", params(("project" = String, Path)), request_body = SubmitItems,
    responses((status = 413, body = ErrorBody, description = "an item has more than 1 MiB of JSON (`field`: `items[i].member`)"), (status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = SubmitResponse), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn submit(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    ApiJson(body): ApiJson<SubmitItems>,
) -> Result<Json<SubmitResponse>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_service(&p)?;
    if body.items.is_empty() || body.items.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "items",
            format!("send 1 to {MAX_BATCH} items, got {}", body.items.len()),
        ));
    }
    let out = items::submit(&s, &p, &caller.actor(), body.items).await?;
    Ok(Json(SubmitResponse {
        decisions: out
            .into_iter()
            .map(|d| decision_out(d.external_id, d.item_id, d.decision, d.duplicate, p.labels.is_multi()))
            .collect(),
    }))
}

fn route_out(r: Route) -> RouteOut {
    RouteOut {
        queue: r.queue,
        tier: r.tier,
        priority: r.priority,
        overlap: r.overlap,
        sla_seconds: r.sla_seconds,
        warn_before_seconds: r.warn_before_seconds,
    }
}

pub(super) fn decision_out(
    external_id: String,
    item_id: i64,
    d: Decision,
    duplicate: bool,
    multi: bool,
) -> DecisionOut {
    let (outcome, label, route) = match d.outcome {
        Outcome::Auto { label } => ("auto", Some(label), None),
        Outcome::Review { route } => ("review", None, Some(route_out(route))),
    };
    DecisionOut {
        external_id,
        item_id,
        outcome: outcome.into(),
        labels: label.as_deref().filter(|_| multi).map(super::feeds::label_set),
        label,
        route,
        audit: d.audit.map(route_out),
        rule: d.rule,
        reasons: d.reasons,
        policy_version: d.policy_version,
        duplicate,
    }
}

/// A resolution as the API shows it; `multi`: the project is multi-label (a reviewer's
/// resolution says so itself, by carrying its set).
pub(super) fn resolution_out(r: Resolution, multi: bool) -> ResolutionOut {
    ResolutionOut {
        labels: r.labels.or_else(|| multi.then(|| super::feeds::label_set(&r.label))),
        label: r.label,
        source: r.source.as_str().into(),
        method: r.method,
        confidence: r.confidence,
        reviewers: r.reviewers,
        resolved_at: ts(r.resolved_at),
    }
}

/// Everything about one item: its decision, tasks, reviews, resolution and events.
#[utoipa::path(get, path = "/v1/projects/{project}/items/{external_id}",
    params(("project" = String, Path), ("external_id" = String, Path)),
    responses((status = 200, body = ItemDetailOut), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn detail(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path((project, external_id)): Path<(String, String)>,
) -> Result<Json<ItemDetailOut>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_service(&p)?;
    let d = items::detail(&s, &p, &external_id).await?;
    Ok(Json(ItemDetailOut {
        item: ItemOut {
            item_id: d.item_id,
            external_id: d.external_id.clone(),
            payload: d.payload,
            attributes: d.attributes,
            prediction: d.prediction.map(|p| serde_json::to_value(p).unwrap_or(Value::Null)),
            created_at: ts(d.created_at),
        },
        decisions: vec![decision_out(
            d.external_id,
            d.item_id,
            d.decision,
            false,
            p.labels.is_multi(),
        )],
        tasks: d
            .tasks
            .into_iter()
            .map(|t| TaskOut {
                task_id: t.task_id,
                stage: t.stage.as_str().into(),
                queue: t.queue,
                tier: t.tier,
                priority: t.priority,
                overlap: t.overlap,
                answered: t.answered,
                state: t.state,
                reason: t.reason,
                created_at: ts(t.created_at),
                closed_at: t.closed_at.map(ts),
                due_at: t.due_at.map(ts),
            })
            .collect(),
        reviews: d.reviews.into_iter().map(review_record_out).collect(),
        resolution: d.resolution.map(|r| resolution_out(r, p.labels.is_multi())),
        events: d.events.into_iter().map(super::feeds::event_out).collect(),
    }))
}

/// An answer as an item's story (and an adjudicator's context) shows it.
pub fn review_record_out(r: flywheel_store::ReviewRecord) -> ReviewRecordOut {
    ReviewRecordOut {
        review_id: r.review_id,
        task_id: r.task_id,
        reviewer: r.reviewer,
        answer: r.answer,
        label: r.label,
        reason: r.reason,
        failure_category: r.failure_category,
        note: r.note,
        claimed_at: ts(r.claimed_at),
        answered_at: ts(r.answered_at),
        time_on_task_ms: r.answered_at - r.claimed_at,
        fields: r.fields,
    }
}
