//! The reviewer's loop: claim, heartbeat, answer (`app::work` does each).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};

use super::ApiPath;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flywheel_core::policy::parse_queue;
use flywheel_store::ClaimedTask;

use super::dto::*;
use super::{ApiJson, ts};
use crate::app::work::{self, MAX_WAIT_MS};
use crate::app::{AppState, ProjectRuntime};
use crate::auth::Caller;
use crate::error::ApiError;

/// Leases the next task (priority, then deadline — none last — then age) from the
/// reviewer's tiers, or 204 when there is nothing to do (after waiting up to `wait_ms` for
/// work to arrive). 429 `break_due` while the reviewer must rest: a break the fatigue
/// monitor called (`on_fatigue: break`), or pacing's `max_tasks_per_session` reached until a
/// gap of `session_gap_seconds`. A `queue` the policy routes only to tiers the reviewer does
/// not serve is 403 (`field: "queue"`).
#[utoipa::path(post, path = "/v1/projects/{project}/claim", params(("project" = String, Path)), request_body = ClaimIn,
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = ClaimOut), (status = 204, description = "nothing to do"),
        (status = 403, body = ErrorBody, description = "not a reviewer, held, or `queue` is routed only to tiers the reviewer does not serve"),
        (status = 429, body = ErrorBody, description = "break_due: error.retry_after_s seconds to wait",
            headers(("Retry-After" = u64, description = "seconds until claims are taken again")))),
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
    match work::claim(&s, &p, r, queue, Duration::from_millis(wait_ms)).await? {
        Some(t) => Ok(Json(claim_out(&s, &p, t).await).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// A leased task as the reviewer sees it (the suggestion only where the policy shows it;
/// an adjudication with its context).
/// The lease is already granted (and with "next", the answer stored), so a failed read of
/// the context leaves it out rather than failing the request.
async fn claim_out(s: &AppState, p: &ProjectRuntime, t: ClaimedTask) -> ClaimOut {
    let context = work::adjudication_context(s, p, &t).await;
    let context = context
        .unwrap_or_else(|e| {
            tracing::warn!(task_id = t.task_id, error = %e, "adjudication context unavailable");
            None
        })
        .map(|c| AdjudicationOut {
            reason: c.reason,
            answers: c.answers.into_iter().map(super::items::review_record_out).collect(),
        });
    let suggestion = t.prediction.filter(|_| p.policy.show_suggestion()).map(|pr| {
        let (label, confidence) = pr.top();
        let labels = p.labels.is_multi().then(|| {
            let thresholds = s.learning.thresholds(p.id);
            pr.labels_at_threshold(Some(&thresholds))
                .into_iter()
                .map(|(l, _)| l.to_string())
                .collect()
        });
        Suggestion {
            label: label.to_string(),
            confidence,
            scores: pr.scores.iter().cloned().collect(),
            model: pr.model.clone(),
            labels,
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
        context,
        why: t.why.map(|w| WhyOut {
            rule: w.rule,
            reasons: w.reasons,
        }),
    }
}

/// Extends the lease by the project's lease length. 409 `lease_lost` when it is gone.
#[utoipa::path(post, path = "/v1/tasks/{task_id}/heartbeat", params(("task_id" = i64, Path)), request_body = HeartbeatIn,
    responses((status = 200, body = HeartbeatOut), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn heartbeat(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(task_id): ApiPath<i64>,
    ApiJson(body): ApiJson<HeartbeatIn>,
) -> Result<Json<HeartbeatOut>, ApiError> {
    let r = caller.reviewer()?;
    let expires = work::heartbeat(&s, r, task_id, body.lease_id).await?;
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
    ApiPath(task_id): ApiPath<i64>,
    ApiJson(body): ApiJson<ReviewIn>,
) -> Result<Json<ReviewOut>, ApiError> {
    let r = caller.reviewer()?;
    let out = work::answer(&s, r, task_id, body).await?;
    let (next, next_error) = match out.next {
        None => (None, None),
        Some(work::NextClaim {
            project,
            claimed: Ok(Some(t)),
        }) => (Some(Some(claim_out(&s, &project, t).await)), None),
        Some(work::NextClaim { claimed: Ok(None), .. }) => (Some(None), None),
        Some(work::NextClaim { claimed: Err(e), .. }) => (Some(None), Some(ApiError::from(e).detail())),
    };
    Ok(Json(ReviewOut {
        review_id: out.result.review_id,
        outcome: out.result.outcome,
        resolution: out.result.resolution.map(|r| super::items::resolution_out(r, false)),
        next,
        next_error,
    }))
}

/// Changes the label of one of the caller's answers (`review_id` as they sent it). Within
/// the policy's undo window (`workbench.undo_seconds`, default 60) and while the task is
/// still open, the label is replaced (`undone`); once the task has closed the item goes
/// back to adjudication one tier up with the reason (`amended`). An `amend_id` already
/// stored returns the stored result. 409 `undo_expired` past the window with the task
/// open; 409 `not_amendable` for a skip.
#[utoipa::path(post, path = "/v1/reviews/{review_id}/amend", params(("review_id" = String, Path)), request_body = AmendIn,
    responses((status = 200, body = AmendOut), (status = 404, body = ErrorBody, description = "no answer of the caller's with this review_id"),
        (status = 409, body = ErrorBody, description = "undo_expired or not_amendable"), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn amend(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(review_id): ApiPath<String>,
    ApiJson(body): ApiJson<AmendIn>,
) -> Result<Json<AmendOut>, ApiError> {
    let r = caller.reviewer()?;
    let out = crate::app::amend::amend(&s, r, review_id, body).await?;
    Ok(Json(AmendOut {
        review_id: out.review_id,
        amend_id: out.amend_id,
        outcome: out.outcome,
        previous: out.previous,
        label: out.label,
        fields: out.fields.map(|f| serde_json::to_value(f).unwrap_or_default()),
        adjudication_task_id: out.adjudication_task_id,
    }))
}
