//! Items in, decisions out; and an item's whole story (`app::items` decides).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use flywheel_core::{Decision, Outcome, Route};
use flywheel_store::Resolution;
use serde_json::Value;

use super::dto::*;
use super::{ApiJson, MAX_BATCH, ts};
use crate::app::{AppState, items, overrides};
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

/// Finds a project's items (admin, or the project's service key), newest first: by text
/// (`q`, lowercased, found in the external id or anywhere in the payload's JSON text —
/// keys and values as stored; letters other than ASCII match case-insensitively on
/// PostgreSQL only), resolved label, a reviewer who answered, state, and the time received.
/// Every condition given must hold; an empty parameter is the same as none. Keyset-paged: pass `next_cursor` as `cursor` for the
/// next page. Text is not indexed: items are read newest first until a page is full or
/// 10,000 items (of every project) have been read; a page that stops there may hold fewer
/// items than `limit`, even none, and still have a `next_cursor` to read on from.
#[utoipa::path(get, path = "/v1/projects/{project}/items",
    params(("project" = String, Path),
        ("q" = Option<String>, Query, description = "text in the external id or the payload, case-insensitive; at most 200 characters", max_length = 200),
        ("label" = Option<String>, Query, description = "the resolved label (one of the project's labels)"),
        ("reviewer" = Option<String>, Query, description = "a reviewer (by name) who answered a task of the item", max_length = 100),
        ("state" = Option<String>, Query, description = "open (has an open task), resolved, unresolved", pattern = "^(open|resolved|unresolved)?$"),
        ("since" = Option<String>, Query, description = "items received at or after this time (RFC 3339 or epoch ms)"),
        ("until" = Option<String>, Query, description = "items received before this time (RFC 3339 or epoch ms); after since"),
        ("cursor" = Option<i64>, Query, description = "the next_cursor of the previous page", minimum = 1),
        ("limit" = Option<u32>, Query, description = "items per page, 1 to 200 (default 50)", minimum = 1, maximum = 200)),
    responses((status = 200, body = ItemSearchPage), (status = 400, body = ErrorBody, description = "a parameter does not parse (`field` names it)"),
        (status = 404, body = ErrorBody, description = "no such project, or not one the caller may see")),
    security(("bearer" = [])))]
pub async fn search(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<ItemSearchPage>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_service(&p)?;
    let req = items::SearchRequest::parse(&p, &params).map_err(|e| ApiError::bad_request(e.field, e.message))?;
    let page = items::search(&s, &p, req).await?;
    Ok(Json(ItemSearchPage {
        items: page
            .hits
            .into_iter()
            .map(|h| ItemHitOut {
                item_id: h.item_id,
                external_id: h.external_id,
                payload: h.payload,
                outcome: h.outcome,
                rule: h.rule,
                resolved_label: h.resolved_label,
                open_tasks: h.open_tasks,
                created_at: ts(h.created_at),
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Overrides an item (admin): `resolve` gives it a label (and fields) as a human
/// resolution with method `override`, entering the label feed; `reroute` sends its work to
/// another queue and tier. Either way, always with a reason: the item's open tasks are
/// closed and their active leases cancelled (`lease.cancelled`; a late answer gets 409
/// `lease_lost`), and `item.overridden` names who, what and why.
#[utoipa::path(post, path = "/v1/projects/{project}/items/{external_id}/override",
    params(("project" = String, Path), ("external_id" = String, Path)), request_body = OverrideIn,
    responses((status = 200, body = OverrideOut),
        (status = 400, body = ErrorBody, description = "the body is not valid JSON"),
        (status = 401, body = ErrorBody, description = "no key, or one not recognised"),
        (status = 403, body = ErrorBody, description = "not an admin"),
        (status = 404, body = ErrorBody, description = "no such project or item"),
        (status = 409, body = ErrorBody, description = "`item_resolved`: a re-route of a resolved item; `already_routed`: its open task is there already"),
        (status = 415, body = ErrorBody, description = "the body is not application/json"),
        (status = 422, body = ErrorBody, description = "a field is missing or wrong (`field` names it)")),
    security(("bearer" = [])))]
pub async fn override_item(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path((project, external_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<OverrideIn>,
) -> Result<Json<OverrideOut>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let action = body.action.clone();
    let multi = p.labels.is_multi();
    let out = overrides::override_item(&s, &p, &external_id, body, &caller.actor()).await?;
    Ok(Json(OverrideOut {
        item_id: out.item_id,
        external_id,
        action,
        closed_tasks: out.closed_tasks,
        cancelled_leases: out.cancelled_leases,
        task_id: out.task_id,
        resolution: out.resolution.map(|r| resolution_out(r, multi)),
    }))
}
