//! HTTP: thin handlers grouped by resource. Each parses at the edge (`ApiJson`, `Path`,
//! `Query`, the `Caller`), authorises, calls a use case in `app`, and maps the result to
//! the wire types of `dto` (errors through `crate::error`, once).
//!
//! Must not: hold a use case's logic (deciding, claiming, judging, statistics), or be
//! imported by `app`, `ui` or `workers` for anything but its wire types.

pub mod access;
pub(crate) mod accounts;
mod admin;
pub mod dto;
mod export;
pub(crate) mod feeds;
mod items;
pub mod limits;
pub(crate) mod model;
pub mod openapi;
#[cfg(test)]
mod props;
pub(crate) mod quality;
pub(crate) mod webhooks;
mod work;
mod workload;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{get, patch, post, put};
use serde::de::DeserializeOwned;

use crate::app::AppState;
pub use crate::app::text_field;
use crate::error::ApiError;

/// Largest request body: a batch of 10,000 items with room for their payloads.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
pub const MAX_BATCH: usize = 10_000;
/// Largest page of a feed.
pub const MAX_PAGE: usize = 1000;
pub const DEFAULT_PAGE: usize = 100;

/// The API's routes, with `console` (the browser console's pages) merged in, behind the
/// fallbacks and layers both share.
pub fn router(state: Arc<AppState>, console: Router<Arc<AppState>>) -> Router {
    Router::new()
        .route("/healthz", get(admin::healthz))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/me", get(accounts::me))
        .route("/v1/projects", post(admin::create_project).get(accounts::projects))
        .route("/v1/projects/{project}", get(admin::get_project))
        .route("/v1/projects/{project}/policy", put(admin::put_policy))
        .route("/v1/projects/{project}/policy/versions", get(admin::policy_versions))
        .route("/v1/projects/{project}/policy/diff", get(admin::policy_diff))
        .route("/v1/projects/{project}/policy/rollback", post(admin::rollback_policy))
        .route("/v1/reviewers", post(admin::create_reviewer).get(accounts::accounts))
        .route("/v1/reviewers/{name}", patch(accounts::update_reviewer))
        .route("/v1/reviewers/{name}/keys", post(accounts::add_key))
        .route("/v1/keys", post(admin::create_key).get(accounts::keys))
        .route("/v1/keys/{hash}/revoke", post(accounts::revoke))
        .route("/v1/projects/{project}/policy/check", post(accounts::check_policy))
        .route("/v1/projects/{project}/reviewers/{name}/hold", post(accounts::hold))
        .route("/v1/projects/{project}/items", post(items::submit).get(items::search))
        .route("/v1/projects/{project}/items/{external_id}", get(items::detail))
        .route(
            "/v1/projects/{project}/items/{external_id}/override",
            post(items::override_item),
        )
        .route("/v1/projects/{project}/export", get(export::export))
        .route(
            "/v1/projects/{project}/import",
            post(export::import).layer(axum::extract::DefaultBodyLimit::max(export::MAX_IMPORT_BYTES)),
        )
        .route("/v1/projects/{project}/claim", post(work::claim))
        .route("/v1/tasks/{task_id}/heartbeat", post(work::heartbeat))
        .route("/v1/tasks/{task_id}/reviews", post(work::review))
        .route("/v1/reviews/{review_id}/amend", post(work::amend))
        .route("/v1/projects/{project}/labels", get(feeds::labels))
        .route("/v1/projects/{project}/events", get(feeds::project_events))
        .route("/v1/events", get(feeds::all_events))
        .route("/v1/projects/{project}/stats", get(feeds::stats))
        .route("/v1/projects/{project}/queues", get(feeds::queues))
        .route("/v1/projects/{project}/workload", get(workload::workload))
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
        .route(
            "/v1/projects/{project}/webhooks",
            post(webhooks::create).get(webhooks::list),
        )
        .route(
            "/v1/projects/{project}/webhooks/{id}",
            get(webhooks::get).patch(webhooks::update).delete(webhooks::delete),
        )
        .route("/v1/projects/{project}/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/v1/projects/{project}/webhooks/{id}/replay", post(webhooks::replay))
        .route(
            "/v1/projects/{project}/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), access::authorize))
        .merge(console)
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn(no_store))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::internal("the server hit a bug; nothing was written"))
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}

/// A JSON body whose errors name the field at fault: malformed JSON is a 400
/// (`malformed_json`), a well-formed body of the wrong shape a 422 with `field` (`body`
/// when it is not an object at all). An empty body reads as `{}`. A whole number written
/// with a fraction (`218.0`) is read as the whole number where one is wanted.
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
        // One item of an `items` array cannot make the parser build a huge value.
        limits::check_items(bytes, limits::ITEM_LIMITS)?;
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let value = match serde_path_to_error::deserialize(&mut *de) {
            Ok(value) => {
                de.end().map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_json",
                        format!("the body is not valid JSON: {e}"),
                    )
                })?;
                value
            }
            Err(e) if integral_float(e.inner()) => with_integral_floats(bytes)?,
            Err(e) => return Err(body_error(e)),
        };
        // serde reads a struct from an array of its fields too (`[null, null]`); a body is
        // an object.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::invalid("body", "the body is a JSON object"));
        }
        // JSON spells a NUL inside a string only as an escape: look for one in the bytes
        // (cheap), and only then find which field holds it.
        if bytes
            .split(|b| *b == b'\\')
            .skip(1)
            .any(|rest| rest.get(..5).is_some_and(|u| u.eq_ignore_ascii_case(b"u0000")))
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes)
            && let Some(field) = crate::app::nul_at(&v)
        {
            return Err(ApiError::invalid(
                field,
                "a NUL character (\\u0000) cannot be stored; remove it",
            ));
        }
        Ok(ApiJson(value))
    }
}

/// A body's deserialisation error as the JSON error body: malformed JSON is a 400, a
/// value of the wrong shape a 422 naming the field (at the top level, the member missing
/// or unknown — `""` for an empty key — else `body`).
fn body_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let field = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {inner}"),
        );
    }
    let field = if field == "." || field.is_empty() {
        // serde names the member in its message: "missing field `policy`", "unknown field `x`".
        let message = inner.to_string();
        match message.split('`').nth(1) {
            Some("") if message.starts_with("unknown field") => "\"\"".to_string(),
            Some(name) if message.starts_with("missing field") || message.starts_with("unknown field") => {
                name.to_string()
            }
            _ => "body".to_string(),
        }
    } else {
        field
    };
    ApiError::invalid(field, inner.to_string())
}

/// Whether serde refused a number with a fractional part where it wanted a whole number:
/// JSON has one number type, and `218.0` is the whole number 218 (JSON Schema's
/// `integer` says so too), so such a body is read again by [`with_integral_floats`].
fn integral_float(e: &serde_json::Error) -> bool {
    e.classify() == serde_json::error::Category::Data && e.to_string().starts_with("invalid type: floating point `")
}

/// Deserialises `bytes` as a `T`, turning each number written with a fraction (`218.0`)
/// into the whole number it is wherever `T` wants a whole number — and nowhere else, so a
/// payload's numbers are kept as they were sent. A fraction that is not zero (`1.5`), or
/// a number beyond 2⁵³, is refused as before, naming the field.
fn with_integral_floats<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    use serde_path_to_error::Segment;
    let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    // Each round fixes one number and reads the body again, so the rounds are few: a body
    // with more such numbers than that is refused, naming the next one.
    for _ in 0..MAX_INTEGRAL_FLOATS {
        let e = match serde_path_to_error::deserialize::<_, T>(&v) {
            Ok(t) => return Ok(t),
            Err(e) => e,
        };
        let mut at = Some(&mut v);
        for seg in e.path().iter() {
            at = match (seg, at) {
                (Segment::Seq { index }, Some(serde_json::Value::Array(a))) => a.get_mut(*index),
                (Segment::Map { key }, Some(serde_json::Value::Object(o))) => o.get_mut(key.as_str()),
                _ => None,
            };
        }
        let whole = at
            .as_ref()
            .and_then(|n| n.as_f64())
            .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 && integral_float(e.inner()));
        match (whole, at) {
            (Some(f), Some(n)) => *n = serde_json::Value::from(f as i64),
            _ => return Err(body_error(e)),
        }
    }
    let field = match serde_path_to_error::deserialize::<_, T>(&v) {
        Ok(t) => return Ok(t),
        Err(e) => e.path().to_string(),
    };
    Err(ApiError::invalid(
        field,
        format!("write whole numbers without a fraction (at most {MAX_INTEGRAL_FLOATS} in one body are read as whole)"),
    ))
}

/// How many whole numbers written with a fraction (`218.0`) one body may hold where whole
/// numbers are wanted.
const MAX_INTEGRAL_FLOATS: usize = 16;

/// Every answer of the JSON API (`/v1/…`, but its OpenAPI document) and of the sign-in
/// and sign-out forms is `Cache-Control: no-store` unless it says otherwise: they are a
/// caller's own data, and some carry a secret (a new API key, a webhook secret, a session
/// cookie) that no cache may keep. Marking them all keeps a new route from forgetting.
///
/// The same layer refuses a NUL in the URI before any handler runs ([`nul_in_uri`]): one
/// `from_fn` layer for both, since each costs every request a boxed future and a clone of
/// the service below it.
pub async fn no_store(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let path = req.uri().path();
    let private = (path.starts_with("/v1/") && path != "/v1/openapi.json") || path == "/login" || path == "/logout";
    let mut resp = match nul_in_uri(&req) {
        Some(refused) => refused,
        None => next.run(req).await,
    };
    if private {
        resp.headers_mut()
            .entry(axum::http::header::CACHE_CONTROL)
            .or_insert(axum::http::HeaderValue::from_static("no-store"));
    }
    resp
}

/// A NUL (`%00`) in a path parameter or a query value is refused: a 422 naming the
/// parameter (PostgreSQL cannot compare or store text holding one).
fn nul_in_uri(req: &Request) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    let uri = req.uri();
    // "%00" has no letters, so no case to fold (and no string to allocate per request).
    let nul = |s: &str| s.contains("%00");
    if nul(uri.path()) {
        // The segment at fault, named by the route's template where there is one.
        let at = uri.path().split('/').position(nul).unwrap_or(0);
        let field = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .and_then(|m| m.as_str().split('/').nth(at).map(str::to_string))
            .map(|seg| seg.trim_start_matches('{').trim_end_matches('}').to_string())
            .unwrap_or_default();
        return Some(ApiError::invalid(field, "a NUL character (%00) is not allowed in a path").into_response());
    }
    if let Some(q) = uri.query()
        && nul(q)
    {
        let field = q
            .split('&')
            .find(|pair| nul(pair))
            .map(|pair| pair.split('=').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        return Some(ApiError::invalid(field, "a NUL character (%00) is not allowed in a query").into_response());
    }
    None
}

/// A path parameter whose parse errors are the JSON error body naming the parameter
/// (`axum::extract::Path` answers text/plain).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let nth = |i: usize| {
                    parts
                        .extensions
                        .get::<axum::extract::MatchedPath>()
                        .and_then(|m| m.as_str().split('{').nth(i + 1))
                        .and_then(|p| p.split('}').next())
                        .unwrap_or_default()
                        .to_string()
                };
                let field = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                    ErrorKind::ParseErrorAtIndex { index, .. } => nth(*index),
                    ErrorKind::ParseError { .. } => nth(0),
                    _ => String::new(),
                };
                Err(ApiError::bad_request(field, e.body_text()))
            }
            Err(e) => Err(ApiError::new(e.status(), "bad_request", e.body_text())),
        }
    }
}

/// Every error the router or an extractor answers as text/plain (a query that does not
/// parse, a form of the wrong type, a body too large) becomes the JSON error body, so
/// every 4xx/5xx is `{"error":{"code","message"}}`. Our own errors and the console's HTML
/// pages pass as they are.
pub async fn json_errors(resp: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = resp.status();
    let plain = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|ct| ct.to_str().unwrap_or("").starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = match String::from_utf8_lossy(&text).trim() {
        "" => status.canonical_reason().unwrap_or("error").to_string(),
        t => t.to_string(),
    };
    let mut out = ApiError::new(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out
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
    // Any whole number >= 1 is capped at `MAX_PAGE`, however many digits it has.
    let limit = match params.get("limit") {
        None => DEFAULT_PAGE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_PAGE),
            Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => MAX_PAGE,
            _ => return Err(ApiError::bad_request("limit", "limit is a whole number >= 1")),
        },
    };
    Ok((after, limit))
}
