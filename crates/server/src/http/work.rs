//! The reviewer's loop: claim, heartbeat, answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flywheel_core::Answer;
use flywheel_core::policy::parse_queue;
use flywheel_store::{ClaimRequest, ClaimedTask, NewReview, Notice, Reviewer};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

use super::dto::*;
use super::{ApiJson, text_field, ts};
use crate::app::{AppState, ProjectRuntime};
use crate::auth::Caller;
use crate::error::ApiError;

/// Leases the next task (priority, then age) from the reviewer's tiers, or 204 when there
/// is nothing to do (after waiting up to `wait_ms` for work to arrive).
#[utoipa::path(post, path = "/v1/projects/{project}/claim", params(("project" = String, Path)), request_body = ClaimIn,
    responses((status = 200, body = ClaimOut), (status = 204, description = "nothing to do"), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn claim(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    ApiJson(body): ApiJson<ClaimIn>,
) -> Result<Response, ApiError> {
    let p = s.project(&project).await?;
    let r = caller.require_reviewer(&p)?;
    let queue = body
        .queue
        .map(|q| parse_queue(&q).map_err(|m| ApiError::invalid("queue", m)))
        .transpose()?;
    let wait_ms = body.wait_ms.unwrap_or(0);
    if wait_ms > MAX_WAIT_MS {
        return Err(ApiError::invalid(
            "wait_ms",
            format!("wait_ms is at most {MAX_WAIT_MS}"),
        ));
    }
    let req = claim_request(&p, r, queue);
    // Subscribe before the first attempt, so work that arrives in between is not missed.
    let mut notices = s.store.subscribe();
    let mut stopping = s.stopping.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let t = loop {
        if let Some(t) = s.store.claim(req.clone(), s.now()).await? {
            break t;
        }
        if !wait_for_work(&mut notices, &mut stopping, p.id, deadline).await {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    };
    Ok(Json(claim_out(&p, t)).into_response())
}

/// What a claim by `r` in `p` asks the store for.
fn claim_request(p: &ProjectRuntime, r: &Reviewer, queue: Option<String>) -> ClaimRequest {
    ClaimRequest {
        project_id: p.id,
        reviewer_id: r.id,
        reviewer_name: r.name.clone(),
        tiers: r.tiers.clone(),
        queue,
        lease_ms: i64::from(p.policy.lease_seconds()) * 1000,
        gold: p.policy.quality().is_some_and(|q| rand::random::<f64>() < q.gold_rate),
    }
}

/// A leased task as the reviewer sees it (the suggestion only where the policy shows it).
fn claim_out(p: &ProjectRuntime, t: ClaimedTask) -> ClaimOut {
    let suggestion = t.prediction.filter(|_| p.policy.show_suggestion()).map(|pr| {
        let (label, confidence) = pr.top();
        Suggestion {
            label: label.to_string(),
            confidence,
            scores: pr.scores.iter().cloned().collect(),
            model: pr.model.clone(),
        }
    });
    ClaimOut {
        task_id: t.task_id,
        lease_id: t.lease_id,
        lease_expires_at: ts(t.lease_expires_at),
        stage: t.stage.as_str().into(),
        queue: t.queue,
        tier: t.tier,
        labels: p.labels.names(),
        item: ClaimItem {
            external_id: t.external_id,
            payload: t.payload,
            attributes: t.attributes,
        },
        suggestion,
    }
}

/// Longest a claim may wait for work.
pub const MAX_WAIT_MS: u64 = 30_000;

/// Waits until the store says `project_id` has new work (true) or the deadline passes or
/// the server is stopping (false).
async fn wait_for_work(
    notices: &mut tokio::sync::broadcast::Receiver<Notice>,
    stopping: &mut tokio::sync::watch::Receiver<bool>,
    project_id: i64,
    deadline: tokio::time::Instant,
) -> bool {
    loop {
        if *stopping.borrow() {
            return false;
        }
        tokio::select! {
            n = notices.recv() => match n {
                Ok(Notice::TasksAvailable { project_id: p }) if p == project_id => return true,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return true,
                Err(RecvError::Closed) => return false,
            },
            _ = stopping.changed() => return false,
            _ = tokio::time::sleep_until(deadline) => return false,
        }
    }
}

/// Extends the lease by the project's lease length. 409 `lease_lost` when it is gone.
#[utoipa::path(post, path = "/v1/tasks/{task_id}/heartbeat", params(("task_id" = i64, Path)), request_body = HeartbeatIn,
    responses((status = 200, body = HeartbeatOut), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn heartbeat(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(task_id): Path<i64>,
    ApiJson(body): ApiJson<HeartbeatIn>,
) -> Result<Json<HeartbeatOut>, ApiError> {
    let r = caller.reviewer()?;
    let expires = s.store.heartbeat(task_id, body.lease_id, r.id, s.now()).await?;
    Ok(Json(HeartbeatOut {
        lease_expires_at: ts(expires),
    }))
}

/// Answers a leased task: a label, an escalation or a skip (each with a reason). A
/// `review_id` already stored for this task and reviewer returns the stored result and
/// changes nothing.
#[utoipa::path(post, path = "/v1/tasks/{task_id}/reviews", params(("task_id" = i64, Path)), request_body = ReviewIn,
    responses((status = 200, body = ReviewOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn review(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(task_id): Path<i64>,
    ApiJson(body): ApiJson<ReviewIn>,
) -> Result<Json<ReviewOut>, ApiError> {
    let r = caller.reviewer()?;
    text_field("review_id", &body.review_id, 1, 128)?;
    // The task's project is known only to the store: judge by each granted project's rule.
    let mut judging = HashMap::new();
    let mut taxonomy = Vec::new();
    for name in &r.project_names {
        let p = s.project(name).await?;
        judging.insert(p.id, s.judging(&p));
        taxonomy.extend(p.policy.workbench().failure_categories);
    }
    let answer = match (body.label, body.escalate, body.skip) {
        (Some(l), None, None) => Answer::Label(l),
        (None, Some(e), None) => {
            text_field("escalate.reason", &e.reason, 1, 2000)?;
            Answer::Escalate { reason: e.reason }
        }
        (None, None, Some(k)) => {
            text_field("skip.reason", &k.reason, 0, 2000)?;
            Answer::Skip { reason: k.reason }
        }
        _ => {
            return Err(ApiError::invalid(
                "label",
                "give exactly one of label, escalate or skip",
            ));
        }
    };
    if let Some(c) = &body.failure_category {
        text_field("failure_category", c, 1, 128)?;
        // Where projects define a taxonomy, a category is one of theirs.
        if !taxonomy.is_empty() && !taxonomy.contains(c) {
            return Err(ApiError::invalid(
                "failure_category",
                format!(
                    "'{c}' is not a failure category of your projects: {}",
                    taxonomy.join(", ")
                ),
            ));
        }
    }
    if let Some(n) = &body.note {
        text_field("note", n, 0, 10_000)?;
    }
    // "Submit and next": the next task's project is checked (a grant, a queue name)
    // before anything is written.
    let next = match body.next {
        Some(n) => {
            let p = s.project(&n.project).await.map_err(|e| e.with_field("next.project"))?;
            caller.require_reviewer(&p).map_err(|e| e.with_field("next.project"))?;
            let queue = n
                .queue
                .map(|q| parse_queue(&q).map_err(|m| ApiError::invalid("next.queue", m)))
                .transpose()?;
            let req = claim_request(&p, r, queue);
            Some((p, req))
        }
        None => None,
    };
    let review = NewReview {
        task_id,
        lease_id: body.lease_id,
        reviewer_id: r.id,
        reviewer_name: r.name.clone(),
        review_id: body.review_id,
        answer,
        failure_category: body.failure_category,
        note: body.note,
        judging,
    };
    let (out, next) = match next {
        None => (s.store.submit_review(review, s.now()).await?, None),
        Some((p, req)) => {
            let (out, claimed) = s.store.submit_review_and_claim(review, req, s.now()).await?;
            (out, Some((p, claimed)))
        }
    };
    let (next, next_error) = match next {
        None => (None, None),
        Some((p, Ok(t))) => (Some(t.map(|t| claim_out(&p, t))), None),
        Some((_, Err(e))) => (Some(None), Some(ApiError::from(e).detail())),
    };
    Ok(Json(ReviewOut {
        review_id: out.review_id,
        outcome: out.outcome,
        resolution: out.resolution.map(super::items::resolution_out),
        next,
        next_error,
    }))
}
