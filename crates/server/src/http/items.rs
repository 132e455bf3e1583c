//! Items in, decisions out; and an item's whole story.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use flywheel_core::{Decision, ItemView, Outcome, Route};
use flywheel_store::{NewItem, Resolution};
use serde_json::Value;

use super::dto::*;
use super::{ApiJson, MAX_BATCH, ts};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Submits items; each gets its decision at once. The whole batch is checked before
/// anything is written: one bad item refuses the batch with a 422 naming it. An
/// `external_id` already stored returns its first decision with `duplicate: true`.
#[utoipa::path(post, path = "/v1/projects/{project}/items", params(("project" = String, Path)), request_body = SubmitItems,
    responses((status = 200, body = SubmitResponse), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
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
    let model = s.learning.model(s.store.as_ref(), &p).await?;
    let thresholds = s.learning.thresholds(p.id);
    let learning = p
        .policy
        .active_learning()
        .map(|a| (crate::learning::strategy(&a.strategy), a.budget_per_1000));
    let mut new = Vec::with_capacity(body.items.len());
    for (i, it) in body.items.into_iter().enumerate() {
        let (attributes, given) =
            super::item_parts(i, &it.external_id, &it.payload, it.attributes, it.prediction, &p.labels)?;
        // Without a prediction of its own, the project's built-in model scores the item.
        let prediction = match (given, &model) {
            (Some(p), _) => Some(p),
            (None, Some(m)) => Some(m.read().expect("model").predict(&it.payload, &attributes)),
            (None, None) => None,
        };
        let mut decision = p.policy.decide(
            &ItemView {
                payload: &it.payload,
                attributes: &attributes,
                prediction: prediction.as_ref(),
                thresholds: Some(&thresholds),
            },
            p.policy_version,
            flywheel_core::learn::keyed_draw(&format!("audit/{}/{}", p.name, it.external_id)),
        );
        if let (Some((strategy, budget)), Outcome::Auto { .. }) = (learning, &decision.outcome) {
            let probs: Option<Vec<f64>> = prediction.as_ref().map(|p| p.scores.iter().map(|(_, x)| *x).collect());
            if s.learning.choose_for_learning(
                p.id,
                strategy,
                budget,
                probs.as_deref(),
                flywheel_core::learn::keyed_draw(&format!("learn/{}/{}", p.name, it.external_id)),
            ) {
                decision = p.policy.send_to_learning(decision);
            }
        } else if let Some((strategy, budget)) = learning {
            // Reviews count toward the window of 1,000, never toward the budget.
            s.learning.choose_for_learning(p.id, strategy, budget, None, 0.0);
        }
        new.push(NewItem {
            external_id: it.external_id,
            payload: it.payload,
            attributes,
            prediction,
            decision,
        });
    }
    let out = s.store.submit_items(p.id, new, &caller.actor(), s.now()).await?;
    Ok(Json(SubmitResponse {
        decisions: out
            .into_iter()
            .map(|d| decision_out(d.external_id, d.item_id, d.decision, d.duplicate))
            .collect(),
    }))
}

fn route_out(r: Route) -> RouteOut {
    RouteOut {
        queue: r.queue,
        tier: r.tier,
        priority: r.priority,
        overlap: r.overlap,
    }
}

pub(super) fn decision_out(external_id: String, item_id: i64, d: Decision, duplicate: bool) -> DecisionOut {
    let (outcome, label, route) = match d.outcome {
        Outcome::Auto { label } => ("auto", Some(label), None),
        Outcome::Review { route } => ("review", None, Some(route_out(route))),
    };
    DecisionOut {
        external_id,
        item_id,
        outcome: outcome.into(),
        label,
        route,
        audit: d.audit.map(route_out),
        rule: d.rule,
        reasons: d.reasons,
        policy_version: d.policy_version,
        duplicate,
    }
}

pub(super) fn resolution_out(r: Resolution) -> ResolutionOut {
    ResolutionOut {
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
    let d = s
        .store
        .item(p.id, &external_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("item '{external_id}' not found in project '{project}'")))?;
    Ok(Json(ItemDetailOut {
        item: ItemOut {
            item_id: d.item_id,
            external_id: d.external_id.clone(),
            payload: d.payload,
            attributes: d.attributes,
            prediction: d.prediction.map(|p| serde_json::to_value(p).unwrap_or(Value::Null)),
            created_at: ts(d.created_at),
        },
        decisions: vec![decision_out(d.external_id, d.item_id, d.decision, false)],
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
            })
            .collect(),
        reviews: d
            .reviews
            .into_iter()
            .map(|r| ReviewRecordOut {
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
            })
            .collect(),
        resolution: d.resolution.map(resolution_out),
        events: d.events.into_iter().map(super::feeds::event_out).collect(),
    }))
}
