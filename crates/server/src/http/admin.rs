//! Projects, policies, reviewers and keys: the admin's side (`app::projects`,
//! `app::accounts`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ApiJson;
use super::dto::*;
use crate::app::{AppState, accounts, projects};
use crate::auth::Caller;
use crate::error::ApiError;

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

#[utoipa::path(post, path = "/v1/projects", request_body = CreateProject,
    responses((status = 201, body = ProjectCreated), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_project(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<(StatusCode, Json<ProjectCreated>), ApiError> {
    caller.require_admin()?;
    let created = projects::create(&s, &body.name, &body.labels, body.policy, &caller.actor()).await?;
    let out = ProjectCreated {
        name: created.name,
        labels: created.labels,
        policy_version: created.policy_version,
    };
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/v1/projects/{project}", params(("project" = String, Path)),
    responses((status = 200, body = ProjectOut), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_project(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<ProjectOut>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_any(&p)?;
    Ok(Json(ProjectOut {
        name: p.name.clone(),
        labels: p.labels.names(),
        policy: p.policy_json.clone(),
        policy_version: p.policy_version,
    }))
}

/// Stores a new version of the project's policy after checking it: expressions compile,
/// variables and labels exist, numbers are in range. A refused policy is a 422 naming the
/// rule and the problem; the current policy stays.
#[utoipa::path(put, path = "/v1/projects/{project}/policy", params(("project" = String, Path)),
    request_body(content = Object, description = "the policy: {rules: [{name, when, action, ...}], audit_rate, lease_seconds, show_suggestion}"),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = PolicyStored), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn put_policy(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    ApiJson(policy): ApiJson<serde_json::Value>,
) -> Result<Json<PolicyStored>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let version = projects::set_policy(&s, &p, policy, &caller.actor()).await?;
    Ok(Json(PolicyStored {
        policy_version: version,
    }))
}

#[utoipa::path(post, path = "/v1/reviewers", request_body = CreateReviewer,
    responses((status = 201, body = ReviewerCreated), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_reviewer(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateReviewer>,
) -> Result<(StatusCode, Json<ReviewerCreated>), ApiError> {
    caller.require_admin()?;
    let (r, api_key) = accounts::create_reviewer(
        &s,
        &body.name,
        &body.tiers,
        body.projects.clone(),
        body.password,
        &caller.actor(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ReviewerCreated {
            id: r.id,
            name: r.name,
            tiers: r.tiers,
            projects: body.projects,
            api_key,
        }),
    ))
}

#[utoipa::path(post, path = "/v1/keys", request_body = CreateKey,
    responses((status = 201, body = KeyCreated), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_key(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    caller.require_admin()?;
    if body.scope != "service" {
        return Err(ApiError::invalid(
            "scope",
            "scope is 'service' (reviewer keys come with POST /v1/reviewers)",
        ));
    }
    let api_key = accounts::create_service_key(&s, body.projects.clone(), &caller.actor()).await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            api_key,
            scope: body.scope,
            projects: body.projects,
        }),
    ))
}
