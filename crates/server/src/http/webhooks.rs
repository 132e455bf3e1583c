//! Webhook endpoints, the admin's side (`app::webhooks`): create (the secret shown
//! once), list, read, change, delete, rotate the secret, replay from an event, and each
//! endpoint's attempts. Responses that carry a secret are `Cache-Control: no-store`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dto::ErrorBody;
use super::{ApiJson, ApiPath, page, ts};
use crate::app::AppState;
use crate::app::webhooks::{self, EndpointPatch, EndpointSpec};
use crate::auth::Caller;
use crate::error::ApiError;

/// An endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// Every attempt at some event failed since the last delivery that succeeded.
    pub failing: bool,
    /// The event-log position served: the next event sent is the first after it.
    pub cursor: i64,
    /// Attempts so far at the next event.
    pub attempts: u32,
    /// When the next event is tried again after a failure (RFC 3339), if it waits.
    pub next_attempt_at: Option<String>,
    /// Until when the previous secret signs beside the current one, after a rotation.
    pub previous_secret_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl WebhookOut {
    pub(crate) fn from(h: flywheel_store::Webhook, now: i64) -> Self {
        Self {
            id: h.id,
            url: h.url,
            events: h.events,
            enabled: h.enabled,
            failing: h.failing,
            cursor: h.cursor,
            attempts: h.attempts,
            next_attempt_at: (h.next_attempt_at > 0 && h.attempts > 0).then(|| ts(h.next_attempt_at)),
            previous_secret_until: h.previous_until.filter(|u| *u > now).map(ts),
            created_at: ts(h.created_at),
            updated_at: ts(h.updated_at),
        }
    }
}

/// An endpoint with its signing secret: shown at creation and rotation only.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookOut,
    /// `whsec_` and the base64 of the key: verify `webhook-signature` with it.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookOut>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// The first event position (`seq` in the event log) to send again.
    pub from_seq: i64,
}

/// One attempt to deliver one event.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    pub event_seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    /// The `webhook-id` header sent (the same on every attempt at this event).
    pub message_id: String,
    pub attempt: u32,
    pub at: String,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// The start of the answer's body, or what went wrong.
    pub response: String,
    /// `delivered`, `failed` (tried again at `next_attempt_at`), `gone` (410: the
    /// endpoint was disabled) or `given_up` (the last attempt).
    pub outcome: String,
    pub next_attempt_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryOut>,
}

type WithSecret = (
    StatusCode,
    [(header::HeaderName, &'static str); 1],
    Json<WebhookWithSecret>,
);

fn with_secret(status: StatusCode, h: flywheel_store::Webhook, secret: String, now: i64) -> WithSecret {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(WebhookWithSecret {
            webhook: WebhookOut::from(h, now),
            secret,
        }),
    )
}

/// Creates an endpoint. Its secret is in this response only.
#[utoipa::path(post, path = "/v1/projects/{project}/webhooks", params(("project" = String, Path)),
    request_body = EndpointSpec,
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 201, body = WebhookWithSecret), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    ApiJson(body): ApiJson<EndpointSpec>,
) -> Result<WithSecret, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let (hook, secret) = webhooks::create(&s, &p, body, &caller.actor()).await?;
    Ok(with_secret(StatusCode::CREATED, hook, secret, s.now()))
}

#[utoipa::path(get, path = "/v1/projects/{project}/webhooks", params(("project" = String, Path)),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = WebhookList)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<WebhookList>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let now = s.now();
    let webhooks = webhooks::list(&s, &p).await?;
    Ok(Json(WebhookList {
        webhooks: webhooks.into_iter().map(|h| WebhookOut::from(h, now)).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/projects/{project}/webhooks/{id}", params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 400, body = ErrorBody, description = "`id` is not a whole number"), (status = 200, body = WebhookOut), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((project, id)): ApiPath<(String, i64)>,
) -> Result<Json<WebhookOut>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    Ok(Json(WebhookOut::from(webhooks::get(&s, &p, id).await?, s.now())))
}

/// Changes an endpoint's URL, patterns or `enabled`. Re-enabling tries the next event at
/// once.
#[utoipa::path(patch, path = "/v1/projects/{project}/webhooks/{id}", params(("project" = String, Path), ("id" = i64, Path)),
    request_body = EndpointPatch,
    responses((status = 400, body = ErrorBody, description = "`id` is not a whole number"), (status = 200, body = WebhookOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((project, id)): ApiPath<(String, i64)>,
    ApiJson(body): ApiJson<EndpointPatch>,
) -> Result<Json<WebhookOut>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let hook = webhooks::update(&s, &p, id, body, &caller.actor()).await?;
    Ok(Json(WebhookOut::from(hook, s.now())))
}

#[utoipa::path(delete, path = "/v1/projects/{project}/webhooks/{id}", params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 400, body = ErrorBody, description = "`id` is not a whole number"), (status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((project, id)): ApiPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    webhooks::delete(&s, &p, id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives the endpoint a new secret (in this response only); for 24 hours requests are
/// signed with both, space-separated in `webhook-signature`.
#[utoipa::path(post, path = "/v1/projects/{project}/webhooks/{id}/rotate", params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 400, body = ErrorBody, description = "`id` is not a whole number"), (status = 200, body = WebhookWithSecret), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn rotate(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((project, id)): ApiPath<(String, i64)>,
) -> Result<WithSecret, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let (hook, secret) = webhooks::rotate(&s, &p, id, &caller.actor()).await?;
    Ok(with_secret(StatusCode::OK, hook, secret, s.now()))
}

/// Sends the project's events from `from_seq` on again (same `webhook-id`s: receivers
/// that deduplicate skip what they have).
#[utoipa::path(post, path = "/v1/projects/{project}/webhooks/{id}/replay", params(("project" = String, Path), ("id" = i64, Path)),
    request_body = ReplayIn,
    responses((status = 400, body = ErrorBody, description = "`id` is not a whole number"), (status = 200, body = WebhookOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn replay(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((project, id)): ApiPath<(String, i64)>,
    ApiJson(body): ApiJson<ReplayIn>,
) -> Result<Json<WebhookOut>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let hook = webhooks::replay(&s, &p, id, body.from_seq, &caller.actor()).await?;
    Ok(Json(WebhookOut::from(hook, s.now())))
}

/// The endpoint's attempts, newest first (the newest 1,000 are kept).
#[utoipa::path(get, path = "/v1/projects/{project}/webhooks/{id}/deliveries",
    params(("project" = String, Path), ("id" = i64, Path), ("limit" = Option<usize>, Query)),
    responses((status = 400, body = ErrorBody, description = "`id` is not a whole number"), (status = 200, body = DeliveryList), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn deliveries(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((project, id)): ApiPath<(String, i64)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<DeliveryList>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let (_, limit) = page(&params)?;
    let records = webhooks::deliveries(&s, &p, id, limit).await?;
    Ok(Json(DeliveryList {
        deliveries: records.into_iter().map(delivery_out).collect(),
    }))
}

pub(crate) fn delivery_out(r: flywheel_store::DeliveryRecord) -> DeliveryOut {
    let a = r.attempt;
    DeliveryOut {
        id: r.id,
        event_seq: a.event_seq,
        kind: a.kind,
        message_id: a.message_id,
        attempt: a.attempt,
        at: ts(a.at),
        status: a.status,
        latency_ms: a.latency_ms,
        response: a.response,
        outcome: a.outcome.as_str().to_string(),
        next_attempt_at: a.next_attempt_at.map(ts),
    }
}
