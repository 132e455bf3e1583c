//! Who is calling: the `Caller` extractor (a bearer key, or a browser session's cookie with
//! its CSRF token) and the checks handlers authorise with. A key is 32 random bytes shown
//! once; the store keeps only its SHA-256 (`app::accounts` makes and hashes keys), which is
//! also how a key is looked up (a high-entropy key needs no slow hash). Scopes: the admin
//! key, service keys (per project), reviewer keys.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use flywheel_store::{Principal, Reviewer};
use sha2::{Digest, Sha256};

pub use crate::app::accounts::{generate_key, hash_key};
use crate::app::{AppState, ProjectRuntime};
use crate::error::ApiError;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// How the caller appears in the event log.
    pub fn actor(&self) -> String {
        match &self.0 {
            Principal::Admin => "admin".into(),
            Principal::Service { .. } => "service".into(),
            Principal::Reviewer(r) => format!("reviewer:{}", r.name),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.0 {
            Principal::Admin => Ok(()),
            _ => Err(ApiError::forbidden("this needs the admin key")),
        }
    }

    /// Whether the caller may know that project `p` exists: the admin, a service key
    /// granted it, a reviewer granted it. To anyone else it answers exactly as a project
    /// that does not exist (404 `not_found`), so no key learns which projects there are.
    pub fn sees(&self, p: &ProjectRuntime) -> bool {
        match &self.0 {
            Principal::Admin => true,
            Principal::Service { projects } => projects.contains(&p.id),
            Principal::Reviewer(r) => r.projects.contains(&p.id),
        }
    }

    /// Anyone who may see project `p` (else the 404 of a project that does not exist).
    pub fn require_seen(&self, p: &ProjectRuntime) -> Result<(), ApiError> {
        if self.sees(p) {
            Ok(())
        } else {
            Err(ApiError::not_found(crate::app::project_not_found(&p.name)))
        }
    }

    /// Admin, or a service key granted this project (a caller who cannot see it: 404).
    pub fn require_service(&self, p: &ProjectRuntime) -> Result<(), ApiError> {
        self.require_seen(p)?;
        match &self.0 {
            Principal::Reviewer(_) => Err(ApiError::forbidden("this needs a service key")),
            _ => Ok(()),
        }
    }

    /// A reviewer granted this project (a caller who cannot see it: 404).
    pub fn require_reviewer(&self, p: &ProjectRuntime) -> Result<&Reviewer, ApiError> {
        self.require_seen(p)?;
        let r = self.reviewer()?;
        crate::app::accounts::require_granted(r, p)?;
        Ok(r)
    }

    pub fn reviewer(&self) -> Result<&Reviewer, ApiError> {
        match &self.0 {
            Principal::Reviewer(r) => Ok(r),
            _ => Err(ApiError::forbidden("this needs a reviewer key")),
        }
    }
}

/// The cookie that holds a browser session's token.
pub const SESSION_COOKIE: &str = "fw_session";
/// The header a browser session's unsafe requests carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A session's CSRF token: derived from the session token, so it needs no storage and
/// cannot be computed without the (HttpOnly, SameSite=Strict) cookie.
pub fn csrf_token(session_token: &str) -> String {
    hex::encode(&Sha256::digest(format!("flywheel-csrf:{session_token}").as_bytes())[..16])
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a request, if any.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        // Found already by the role matrix's check (`http::access::authorize`).
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            // A browser: its session cookie, and for anything that changes state the
            // session's CSRF token in a header (a cross-site form cannot set one).
            let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
                return Err(ApiError::unauthorized("missing Authorization: Bearer <key>"));
            };
            if !parts.method.is_safe() {
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !same_token(sent, &csrf_token(&token)) {
                    return Err(ApiError::forbidden("missing or wrong CSRF token").with_code("csrf"));
                }
            }
            let hash = hash_key(&token);
            return match state.session(&hash).await? {
                Some(p) => limited(state, p, &hash),
                None => Err(ApiError::unauthorized("the session has ended; sign in again")),
            };
        };
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be 'Bearer <key>'"))?;
        let hash = hash_key(key);
        match state.principal(&hash).await? {
            Some(p) => limited(state, p, &hash),
            None => Err(ApiError::unauthorized("unknown or revoked API key")),
        }
    }
}

/// The caller, if their key (or session) has a request left in its rate limit; else 429
/// `rate_limited` with `Retry-After`.
fn limited(state: &AppState, p: Principal, key_hash: &str) -> Result<Caller, ApiError> {
    match state.rate_limits.check(&p, key_hash) {
        Ok(()) => Ok(Caller(p)),
        Err(seconds) => Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("this key has made more requests than its role's rate limit allows; retry in {seconds} s"),
        )
        .retry_after(seconds)),
    }
}
