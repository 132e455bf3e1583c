//! Projects, policies, reviewers and keys: the admin's side.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use flywheel_core::policy::parse_queue;
use flywheel_core::{LabelSet, Policy};
use flywheel_store::{NewProject, NewReviewer, NewServiceKey};

use super::dto::*;
use super::{ApiJson, text_field};
use crate::app::{AppState, ProjectRuntime};
use crate::auth::{Caller, generate_key, hash_key};
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
    let name =
        parse_queue(&body.name).map_err(|m| ApiError::invalid("name", m.replace("queue name", "project name")))?;
    let labels = LabelSet::parse(&body.labels)?;
    Policy::from_json(&body.policy, &labels).map_err(|e| ApiError::from(e.within("policy")))?;
    let project = s
        .store
        .create_project(
            NewProject {
                name,
                labels: labels.names(),
                policy: body.policy,
            },
            &caller.actor(),
            s.now(),
        )
        .await?;
    let out = ProjectCreated {
        name: project.name.clone(),
        labels: project.labels.clone(),
        policy_version: project.policy_version,
    };
    s.remember(Arc::new(ProjectRuntime::from_project(project)?));
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
    responses((status = 200, body = PolicyStored), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn put_policy(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    ApiJson(policy): ApiJson<serde_json::Value>,
) -> Result<Json<PolicyStored>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    Policy::from_json(&policy, &p.labels)?;
    let version = s.store.set_policy(&project, policy, &caller.actor(), s.now()).await?;
    if let Some(fresh) = s.store.project(&project).await? {
        s.remember(Arc::new(ProjectRuntime::from_project(fresh)?));
    }
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
    let name = body.name.trim().to_string();
    text_field("name", &name, 1, 64)?;
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '/' | '\\' | '?' | '#' | '%'))
        || name.chars().all(|c| c == '.')
    {
        return Err(ApiError::invalid(
            "name",
            "a reviewer name has no control characters and none of / \\ ? # %, and is not only dots",
        ));
    }
    let tiers = super::accounts::check_tiers(&body.tiers)?;
    let password = match body.password.clone() {
        Some(p) => Some(super::accounts::hash_password("password", p).await?),
        None => None,
    };
    let api_key = generate_key();
    let r = s
        .store
        .create_reviewer(
            NewReviewer {
                name,
                tiers,
                projects: body.projects.clone(),
                key_hash: hash_key(&api_key),
                password_hash: password,
            },
            &caller.actor(),
            s.now(),
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
    if body.projects.is_empty() {
        return Err(ApiError::invalid("projects", "grant at least one project"));
    }
    let api_key = generate_key();
    s.store
        .create_service_key(
            NewServiceKey {
                projects: body.projects.clone(),
                key_hash: hash_key(&api_key),
            },
            &caller.actor(),
            s.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            api_key,
            scope: body.scope,
            projects: body.projects,
        }),
    ))
}
