//! HTTP: thin handlers that parse at the edge, call the store and core, and answer JSON.

pub(crate) mod accounts;
mod admin;
pub mod dto;
pub(crate) mod feeds;
mod items;
pub(crate) mod model;
pub mod openapi;
pub(crate) mod quality;
mod work;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{get, patch, post, put};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::ApiError;

/// Largest request body: a batch of 10,000 items with room for their payloads.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
pub const MAX_BATCH: usize = 10_000;
/// Largest page of a feed.
pub const MAX_PAGE: usize = 1000;
pub const DEFAULT_PAGE: usize = 100;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(admin::healthz))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/me", get(accounts::me))
        .route("/v1/projects", post(admin::create_project).get(accounts::projects))
        .route("/v1/projects/{project}", get(admin::get_project))
        .route("/v1/projects/{project}/policy", put(admin::put_policy))
        .route("/v1/reviewers", post(admin::create_reviewer).get(accounts::accounts))
        .route("/v1/reviewers/{name}", patch(accounts::update_reviewer))
        .route("/v1/reviewers/{name}/keys", post(accounts::add_key))
        .route("/v1/keys", post(admin::create_key).get(accounts::keys))
        .route("/v1/keys/{hash}/revoke", post(accounts::revoke))
        .route("/v1/projects/{project}/policy/check", post(accounts::check_policy))
        .route("/v1/projects/{project}/reviewers/{name}/hold", post(accounts::hold))
        .route("/v1/projects/{project}/items", post(items::submit))
        .route("/v1/projects/{project}/items/{external_id}", get(items::detail))
        .route("/v1/projects/{project}/claim", post(work::claim))
        .route("/v1/tasks/{task_id}/heartbeat", post(work::heartbeat))
        .route("/v1/tasks/{task_id}/reviews", post(work::review))
        .route("/v1/projects/{project}/labels", get(feeds::labels))
        .route("/v1/projects/{project}/events", get(feeds::project_events))
        .route("/v1/events", get(feeds::all_events))
        .route("/v1/projects/{project}/stats", get(feeds::stats))
        .route("/v1/projects/{project}/gold", post(quality::add_gold))
        .route("/v1/projects/{project}/reviewers", get(quality::reviewers))
        .route(
            "/v1/projects/{project}/reviewers/{name}/release",
            post(quality::release),
        )
        .route("/v1/projects/{project}/agreement", get(quality::agreement))
        .route("/v1/projects/{project}/model", get(model::get))
        .route("/v1/projects/{project}/model/train", post(model::train))
        .route("/v1/projects/{project}/model/retrain", post(model::retrain))
        .route("/v1/projects/{project}/model/predict", post(model::predict))
        .route("/v1/projects/{project}/policy/backtest", post(model::backtest))
        .route("/v1/projects/{project}/monitors", get(model::monitors))
        .merge(crate::ui::router())
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::internal("the server hit a bug; nothing was written"))
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// A JSON body whose errors name the field at fault: malformed JSON is a 400
/// (`malformed_json`), a well-formed body of the wrong shape a 422 with `field`. An
/// empty body reads as `{}`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE)
            && !ct.to_str().unwrap_or("").starts_with("application/json")
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "bad_request", e.body_text()))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    format!("the body is not valid JSON: {inner}"),
                )
            } else {
                let field = if field == "." { String::new() } else { field };
                ApiError::invalid(field, inner.to_string())
            }
        })?;
        de.end().map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        Ok(ApiJson(value))
    }
}

/// RFC 3339 for epoch milliseconds.
pub fn ts(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// `after` and `limit` of a feed request.
pub fn page(params: &HashMap<String, String>) -> Result<(i64, usize), ApiError> {
    let after = match params.get("after") {
        None => 0,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::bad_request("after", "after is a cursor: a whole number >= 0"))?,
    };
    let limit = match params.get("limit") {
        None => DEFAULT_PAGE,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::bad_request("limit", "limit is a whole number >= 1"))?
            .min(MAX_PAGE),
    };
    Ok((after, limit))
}

/// Checks a free-text field's length.
pub fn text_field(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::invalid(field, format!("{field} contains a NUL character")));
    }
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} has {min} to {max} characters, got {n}"),
        ));
    }
    Ok(())
}

/// Whether a string or an object key anywhere in `v` contains a NUL character.
fn has_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Checks the parts every submitted item shares — external id, payload (an object),
/// attributes (an object, `{}` when absent) and prediction (against the project's labels)
/// — naming `items[i].…` in any error. Returns the attributes and the prediction.
pub fn item_parts(
    i: usize,
    external_id: &str,
    payload: &serde_json::Value,
    attributes: Option<serde_json::Value>,
    prediction: Option<dto::PredictionIn>,
    labels: &flywheel_core::LabelSet,
) -> Result<(serde_json::Value, Option<flywheel_core::Prediction>), ApiError> {
    use serde_json::Value;
    let at = |f: &str| format!("items[{i}].{f}");
    text_field(&at("external_id"), external_id, 1, 256)?;
    if !payload.is_object() {
        return Err(ApiError::invalid(at("payload"), "payload is a JSON object"));
    }
    let attributes = match attributes {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(ApiError::invalid(at("attributes"), "attributes is a JSON object")),
    };
    // PostgreSQL cannot store a NUL character in text or JSON; refuse it on every backend
    // alike, naming the field, rather than fail at the database.
    for (field, v) in [("payload", payload), ("attributes", &attributes)] {
        if has_nul(v) {
            return Err(ApiError::invalid(
                at(field),
                format!("{field} contains a NUL character (\\u0000), which cannot be stored"),
            ));
        }
    }
    let prediction = prediction
        .map(|r| {
            let raw = flywheel_core::prediction::RawPrediction {
                model: r.model,
                version: r.version,
                scores: r.scores,
            };
            flywheel_core::Prediction::parse(raw, labels).map_err(|e| e.within(&at("prediction")))
        })
        .transpose()?;
    Ok((attributes, prediction))
}
