//! Projects, policies, reviewers and keys: the admin's side (`app::projects`,
//! `app::accounts`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::dto::*;
use super::{ApiJson, ts};
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
    let fields = body.answer_fields.unwrap_or(serde_json::Value::Null);
    let mode = body.label_mode.into();
    let created = projects::create_with_fields(
        &s,
        &body.name,
        &body.labels,
        mode,
        body.policy,
        &fields,
        &caller.actor(),
    )
    .await?;
    let out = ProjectCreated {
        name: created.name,
        labels: created.labels,
        label_mode: mode.into(),
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
        label_mode: p.labels.mode().into(),
        policy: p.policy_json.clone(),
        policy_version: p.policy_version,
        answer_fields: p.fields.to_json(),
    }))
}

/// Stores a new version of the project's policy after checking it: expressions compile,
/// variables and labels exist, numbers are in range. A refused policy is a 422 naming the
/// rule and the problem; the current policy stays.
#[utoipa::path(put, path = "/v1/projects/{project}/policy", params(("project" = String, Path)),
    request_body(content = Object, description = "the policy: {rules: [{name, when, action, queue, tier, priority, overlap, sla_seconds, ...}], audit_rate, lease_seconds, show_suggestion, ...}. Reviewer fatigue: fatigue: {session_gap_seconds (900), window (30), alpha (0.05), speedup (0.4), on_fatigue: notify|break, break_minutes (15)}; pacing: {min_seconds_per_task, max_tasks_per_session, discount_too_fast}. SLA deadlines: a review rule's `sla_seconds` (wins), or per queue `sla_seconds: {queue: seconds}`; `sla_action: {queue: \"none\" | \"escalate\" | \"auto\"}` (default none: only the sla.breached event; escalate: one tier up, priority + 10, a new deadline; auto: the model's label, source auto, method sla_expired); `warn_before_seconds: {queue: seconds}` (default 20% of the SLA) before the deadline sla.warning is written"),
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

/// Every stored version of the project's policy, newest first, with who stored it and when.
#[utoipa::path(get, path = "/v1/projects/{project}/policy/versions", params(("project" = String, Path)),
    responses((status = 200, body = PolicyVersions), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn policy_versions(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<PolicyVersions>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let versions = projects::policy_versions(&s, &p).await?;
    Ok(Json(PolicyVersions {
        current: p.policy_version,
        versions: versions
            .into_iter()
            .map(|v| PolicyVersionOut {
                version: v.version,
                policy: v.policy,
                created_at: ts(v.created_at),
                created_by: v.created_by,
            })
            .collect(),
    }))
}

/// The line diff between two stored versions of the project's policy (each pretty-printed).
#[utoipa::path(get, path = "/v1/projects/{project}/policy/diff",
    params(("project" = String, Path), ("from" = u32, Query), ("to" = u32, Query)),
    responses((status = 200, body = PolicyDiff), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn policy_diff(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<PolicyDiff>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let version = |name: &str| -> Result<u32, ApiError> {
        let raw = params
            .get(name)
            .ok_or_else(|| ApiError::bad_request(name, format!("{name} is required (a policy version)")))?;
        raw.parse()
            .map_err(|_| ApiError::bad_request(name, format!("{name} must be a policy version, not '{raw}'")))
    };
    let (from, to) = (version("from")?, version("to")?);
    let versions = projects::policy_versions(&s, &p).await?;
    let find = |v: u32| {
        versions
            .iter()
            .find(|x| x.version == v)
            .ok_or_else(|| ApiError::not_found(format!("policy version {v} of project '{}'", p.name)))
    };
    let lines = projects::policy_diff(&find(from)?.policy, &find(to)?.policy);
    Ok(Json(PolicyDiff { from, to, lines }))
}

/// Rolls the policy back: stores a new version equal to `version` (checked against today's
/// labels like any policy; history is kept).
#[utoipa::path(post, path = "/v1/projects/{project}/policy/rollback", params(("project" = String, Path)), request_body = RollbackIn,
    responses((status = 200, body = PolicyStored), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rollback_policy(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    ApiJson(body): ApiJson<RollbackIn>,
) -> Result<Json<PolicyStored>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let version = projects::rollback(&s, &p, body.version, &caller.actor()).await?;
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
