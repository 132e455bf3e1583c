//! The one error type of the HTTP layer: every failure becomes
//! `{"error": {"code", "message", "field"?}}` with one status, mapped here and nowhere else
//! (an `AppError` from a use case, a `StoreError`, a `ValidationError`). 5xx are logged
//! with their cause; 4xx are the client's to fix.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flywheel_core::ValidationError;
use flywheel_store::StoreError;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::app::AppError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    /// The line of an imported file at fault.
    pub line: Option<usize>,
    /// Seconds to wait before trying again, sent as `Retry-After` and as the body's
    /// `retry_after_s` (429 `break_due`, 503 `storage_full`).
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            field: None,
            line: None,
            retry_after_s: None,
        }
    }

    /// The same error, telling the caller to retry after `seconds` (`Retry-After`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let f = field.into();
        self.field = (!f.is_empty()).then_some(f);
        self
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = code.to_string();
        self
    }

    /// 422: the request is well-formed JSON but a field's value does not fit.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message).with_field(field)
    }

    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message).with_field(field)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The body's `error` object, for errors reported inside a 2xx reply.
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code.clone(),
            message: self.message.clone(),
            field: self.field.clone(),
            line: self.line,
            retry_after_s: self.retry_after_s,
        }
    }
}

/// The `error` object of an error body (here rather than in `http::dto` because
/// [`ApiError::detail`] builds it; `dto` re-exports it).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `invalid`, `bad_request`, `malformed_json`, `unauthorized`,
    /// `forbidden`, `not_found`, `lease_lost`, `project_exists`, `reviewer_exists`,
    /// `break_due` (429: the reviewer must rest), `payload_too_large`, `storage_full` (503,
    /// with `Retry-After`), `internal`.
    pub code: String,
    pub message: String,
    /// The request field at fault, as a path (`items[3].prediction.scores.spam`).
    pub field: Option<String>,
    /// An import's row at fault: its line in the file, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// `break_due`: seconds until claims are taken again (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(m) => ApiError::not_found(m),
            AppError::Forbidden(m) => ApiError::forbidden(m),
            AppError::Invalid(v) => v.into(),
            AppError::Store(s) => s.into(),
            AppError::Internal(m) => ApiError::internal(m),
            AppError::BreakDue { retry_after_s, message } => ApiError {
                retry_after_s: Some(retry_after_s),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "break_due", message)
            },
            AppError::At { field, source } => ApiError::from(*source).with_field(field),
            AppError::Row { line, error } => ApiError {
                line: Some(line),
                ..error.into()
            },
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::invalid(e.field, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            StoreError::Forbidden { code, message } => ApiError::new(StatusCode::FORBIDDEN, code, message),
            StoreError::Invalid(v) => v.into(),
            StoreError::StorageFull(cause) => {
                tracing::error!(%cause, "storage full");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_full",
                    "the database's disk is full; nothing was written, retry later",
                )
                .retry_after(STORAGE_FULL_RETRY_S)
            }
            StoreError::Backend(cause) => {
                tracing::error!(%cause, "store failed");
                ApiError::internal("the database failed; nothing was written")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = %self.code, message = %self.message, "request failed");
        }
        let mut err = json!({"code": self.code, "message": self.message});
        if let Some(f) = self.field {
            err["field"] = json!(f);
        }
        if let Some(line) = self.line {
            err["line"] = json!(line);
        }
        if let Some(secs) = self.retry_after_s {
            err["retry_after_s"] = json!(secs);
            let mut r = (self.status, Json(json!({ "error": err }))).into_response();
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
            return r;
        }
        (self.status, Json(json!({ "error": err }))).into_response()
    }
}

/// How long a caller is told to wait when the disk is full (`Retry-After`, seconds).
pub const STORAGE_FULL_RETRY_S: u64 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_disk_is_503_storage_full_with_retry_after() {
        let resp = ApiError::from(StoreError::StorageFull("database or disk is full".into())).into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[axum::http::header::RETRY_AFTER], "30");
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "storage_full");
    }
}
