//! The role matrix: who may call each route of the API, one row per route and method. The
//! handlers' checks (`Caller::require_*`) follow it, and the authorization-matrix test
//! (`tests/api/access.rs`) reads it, calls every route of the OpenAPI document as each
//! kind of caller and holds the answers to it — a route missing here fails that test.
//!
//! The reads that say how a project runs — the full policy (`GET …/{project}`, its
//! versions and diffs), `stats`, `monitors`, `workload`, the model — are the admin's and
//! the project's service key's; reviewers' records and agreement, events and everything
//! that changes a project, the admin's alone. A reviewer (held or not) reads none of them:
//! they claim, heartbeat, answer and amend their own work, and read how many tasks each
//! queue holds (`…/queues`, their workbench's count). A caller who may not see the
//! project gets the same 404 as for a project that does not exist; one who may see it but
//! not do this gets 403.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a key.
    Public,
    /// Any key or console session (what it answers is the caller's own).
    AnyKey,
    /// The admin key alone.
    Admin,
    /// The admin, or a service key granted the route's project.
    Service,
    /// Anyone who may see the route's project: the admin, its service key, a reviewer
    /// granted it (held or not).
    Member,
    /// A reviewer granted the route's project (a held one is refused claims: 403).
    Reviewer,
    /// Any reviewer: the task or review the route names must be theirs, which the use case
    /// checks.
    OwnWork,
}

use Access::*;

/// Every route of the API (its OpenAPI path) with its method and who may call it.
pub const MATRIX: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Public),
    ("GET", "/v1/openapi.json", Public),
    ("GET", "/v1/me", AnyKey),
    ("GET", "/v1/projects", Admin),
    ("POST", "/v1/projects", Admin),
    ("GET", "/v1/projects/{project}", Service),
    ("PUT", "/v1/projects/{project}/policy", Admin),
    ("GET", "/v1/projects/{project}/policy/versions", Admin),
    ("GET", "/v1/projects/{project}/policy/diff", Admin),
    ("POST", "/v1/projects/{project}/policy/rollback", Admin),
    ("POST", "/v1/projects/{project}/policy/check", Admin),
    ("POST", "/v1/projects/{project}/policy/backtest", Admin),
    ("GET", "/v1/reviewers", Admin),
    ("POST", "/v1/reviewers", Admin),
    ("PATCH", "/v1/reviewers/{name}", Admin),
    ("POST", "/v1/reviewers/{name}/keys", Admin),
    ("GET", "/v1/keys", Admin),
    ("POST", "/v1/keys", Admin),
    ("POST", "/v1/keys/{hash}/revoke", Admin),
    ("POST", "/v1/projects/{project}/reviewers/{name}/hold", Admin),
    ("POST", "/v1/projects/{project}/reviewers/{name}/release", Admin),
    ("GET", "/v1/projects/{project}/reviewers", Admin),
    ("GET", "/v1/projects/{project}/agreement", Admin),
    ("POST", "/v1/projects/{project}/gold", Admin),
    ("POST", "/v1/projects/{project}/items", Service),
    ("GET", "/v1/projects/{project}/items", Service),
    ("POST", "/v1/projects/{project}/items/{external_id}/override", Admin),
    ("GET", "/v1/projects/{project}/items/{external_id}", Service),
    ("GET", "/v1/projects/{project}/export", Service),
    ("POST", "/v1/projects/{project}/import", Service),
    ("GET", "/v1/projects/{project}/labels", Service),
    ("GET", "/v1/projects/{project}/events", Admin),
    ("GET", "/v1/events", Admin),
    ("GET", "/v1/projects/{project}/stats", Service),
    ("GET", "/v1/projects/{project}/queues", Member),
    ("GET", "/v1/projects/{project}/monitors", Service),
    ("GET", "/v1/projects/{project}/workload", Service),
    ("GET", "/v1/projects/{project}/model", Service),
    ("POST", "/v1/projects/{project}/model/predict", Service),
    ("POST", "/v1/projects/{project}/model/train", Admin),
    ("POST", "/v1/projects/{project}/model/retrain", Admin),
    ("POST", "/v1/projects/{project}/claim", Reviewer),
    ("POST", "/v1/tasks/{task_id}/heartbeat", OwnWork),
    ("POST", "/v1/tasks/{task_id}/reviews", OwnWork),
    ("POST", "/v1/reviews/{review_id}/amend", OwnWork),
    ("GET", "/v1/projects/{project}/webhooks", Admin),
    ("POST", "/v1/projects/{project}/webhooks", Admin),
    ("GET", "/v1/projects/{project}/webhooks/{id}", Admin),
    ("PATCH", "/v1/projects/{project}/webhooks/{id}", Admin),
    ("DELETE", "/v1/projects/{project}/webhooks/{id}", Admin),
    ("POST", "/v1/projects/{project}/webhooks/{id}/rotate", Admin),
    ("POST", "/v1/projects/{project}/webhooks/{id}/replay", Admin),
    ("GET", "/v1/projects/{project}/webhooks/{id}/deliveries", Admin),
];

/// Who may call `method` `path` (an OpenAPI path such as `/v1/projects/{project}`);
/// `None` for a route the matrix does not list. A scan of the rows: in a profile of the
/// `decisions` bench it took 0.09% of the server's CPU, no more than a hash lookup of the
/// two strings (BENCHMARKS.md, issue #22's per-request costs).
pub fn access(method: &str, path: &str) -> Option<Access> {
    MATRIX
        .iter()
        .find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path)
        .map(|(_, _, a)| *a)
}

/// Holds each request of a route in [`MATRIX`] to its row before the handler reads the
/// request (its body, its parameters): who is calling (401 without a key), then whether
/// that role may call the route (403), and for a project's route whether the caller may
/// see the project (the 404 of a project that does not exist). The caller found is left in
/// the request's extensions, so the handler's [`Caller`] is not looked up, nor counted
/// against the key's rate limit, twice. Handlers keep their own checks of what they do.
pub async fn authorize(
    State(s): State<Arc<AppState>>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let Some(access) = matched.and_then(|m| access(req.method().as_str(), m.as_str())) else {
        return next.run(req).await;
    };
    if access == Public {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    match check(&s, access, &mut parts).await {
        Ok(caller) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => e.into_response(),
    }
}

async fn check(s: &Arc<AppState>, access: Access, parts: &mut Parts) -> Result<Caller, ApiError> {
    let caller = Caller::from_request_parts(parts, s).await?;
    let project = RawPathParams::from_request_parts(parts, s)
        .await
        .ok()
        .and_then(|params| params.iter().find(|(k, _)| *k == "project").map(|(_, v)| v.to_string()))
        // A name that cannot be stored is the handler's to refuse, naming the field.
        .filter(|name| !name.contains('\0'));
    let project = match (access, project) {
        (Service | Member | Reviewer, Some(name)) => Some(s.project(&name).await?),
        _ => None,
    };
    match (access, &project) {
        (Public | AnyKey, _) => {}
        (Admin, _) => caller.require_admin()?,
        (Service, Some(p)) => caller.require_service(p)?,
        (Reviewer, Some(p)) => {
            caller.require_reviewer(p)?;
        }
        (Member, Some(p)) => caller.require_seen(p)?,
        (Service | Member | Reviewer, None) => {}
        (OwnWork, _) => {
            caller.reviewer()?;
        }
    }
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_found_by_its_method_and_path_and_nothing_else() {
        for &(method, path, want) in MATRIX {
            assert_eq!(access(method, path), Some(want), "{method} {path}");
            assert_eq!(access(&method.to_lowercase(), path), Some(want), "{method} {path}");
        }
        assert_eq!(access("GET", "/v1/projects/{project}/nothing"), None);
        assert_eq!(access("DELETE", "/healthz"), None);
    }
}
