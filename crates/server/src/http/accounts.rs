//! Accounts: who am I, reviewers' grants and passwords, holds, keys — the admin console's
//! API, which the browser console calls like any other client (`app::accounts` does them).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use flywheel_store::Principal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dto::ErrorBody;
use super::{ApiJson, ts};
use crate::app::{AppState, accounts, projects};
use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `admin`, `service` or `reviewer`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub tiers: Vec<u8>,
    pub projects: Vec<String>,
    /// Answers given since midnight UTC (reviewers).
    pub answers_today: i64,
}

/// Who the caller is, and (for a reviewer) today's count.
#[utoipa::path(get, path = "/v1/me", responses((status = 200, body = Me)), security(("bearer" = [])))]
pub async fn me(State(s): State<Arc<AppState>>, caller: Caller) -> Result<Json<Me>, ApiError> {
    Ok(Json(match &caller.0 {
        Principal::Admin => Me {
            kind: "admin".into(),
            name: None,
            tiers: vec![],
            projects: vec![],
            answers_today: 0,
        },
        Principal::Service { .. } => Me {
            kind: "service".into(),
            name: None,
            tiers: vec![],
            projects: vec![],
            answers_today: 0,
        },
        Principal::Reviewer(r) => Me {
            kind: "reviewer".into(),
            name: Some(r.name.clone()),
            tiers: r.tiers.clone(),
            projects: r.project_names.clone(),
            answers_today: accounts::answers_today(&s, r).await?,
        },
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectSummary {
    pub name: String,
    pub labels: Vec<String>,
    pub policy_version: u32,
    pub created_at: String,
}

/// Every project (admin).
#[utoipa::path(get, path = "/v1/projects", responses((status = 200, body = [ProjectSummary])), security(("bearer" = [])))]
pub async fn projects(State(s): State<Arc<AppState>>, caller: Caller) -> Result<Json<Vec<ProjectSummary>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(
        projects::list(&s)
            .await?
            .into_iter()
            .map(|p| ProjectSummary {
                name: p.name,
                labels: p.labels,
                policy_version: p.policy_version,
                created_at: ts(p.created_at),
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    pub name: String,
    pub tiers: Vec<u8>,
    pub projects: Vec<String>,
    pub has_password: bool,
    pub active_keys: i64,
    pub created_at: String,
    /// False once deactivated: the reviewer's keys and sessions are refused (401) and
    /// their password does not sign in.
    pub active: bool,
}

impl From<flywheel_store::ReviewerAccount> for Account {
    fn from(a: flywheel_store::ReviewerAccount) -> Self {
        Account {
            name: a.reviewer.name,
            tiers: a.reviewer.tiers,
            projects: a.reviewer.project_names,
            has_password: a.has_password,
            active_keys: a.active_keys,
            created_at: ts(a.created_at),
            active: a.active,
        }
    }
}

/// Every reviewer with their grants (admin).
#[utoipa::path(get, path = "/v1/reviewers", responses((status = 200, body = [Account])), security(("bearer" = [])))]
pub async fn accounts(State(s): State<Arc<AppState>>, caller: Caller) -> Result<Json<Vec<Account>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(
        accounts::reviewers(&s).await?.into_iter().map(Account::from).collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateReviewer {
    /// Replaces the tiers granted.
    #[serde(default)]
    pub tiers: Option<Vec<u8>>,
    /// Replaces the projects granted (names).
    #[serde(default)]
    pub projects: Option<Vec<String>>,
    /// Sets the password the reviewer signs in to the workbench with (at least 8
    /// characters); an empty string removes it.
    #[serde(default)]
    pub password: Option<String>,
    /// `false` deactivates the reviewer: their keys and sessions are refused (401), their
    /// password no longer signs in, and their active leases in every project are cancelled
    /// (`reviewer.deactivated`, `lease.cancelled`; a late answer gets 409 `lease_lost`).
    /// `true` reactivates them. Their answers and history stay.
    #[serde(default)]
    pub active: Option<bool>,
}

/// Changes a reviewer's tiers, projects, password or whether they are active (admin).
/// Takes effect on this node at once, on others within 5 s; the reviewer's active leases
/// on a project dropped from the grant, or all of them on deactivation, are cancelled at
/// once (`lease.cancelled`, the slots back in their queues).
#[utoipa::path(patch, path = "/v1/reviewers/{name}", params(("name" = String, Path)), request_body = UpdateReviewer,
    responses((status = 200, body = Account), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_reviewer(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateReviewer>,
) -> Result<Json<Account>, ApiError> {
    caller.require_admin()?;
    let change = accounts::ReviewerChange {
        tiers: body.tiers,
        projects: body.projects,
        password: body.password,
        active: body.active,
    };
    let account = accounts::update_reviewer(&s, &name, change, &caller.actor()).await?;
    Ok(Json(account.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewKey {
    /// Shown once; only its hash is stored.
    pub api_key: String,
    pub hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKeyIn {
    /// What to call the key ("laptop"): up to 64 characters, stored in NFKC form, no
    /// invisible, bidi or control characters; blank or absent is no name.
    /// (Its length, counted after trimming, is in the document's pattern: `http::openapi`.)
    #[serde(default)]
    pub name: Option<String>,
}

/// Gives a reviewer another key (admin), for example after revoking a lost one; the body
/// names it (an empty body, or `{}`, gives a key without a name).
#[utoipa::path(post, path = "/v1/reviewers/{name}/keys", params(("name" = String, Path)),
    request_body = AddKeyIn,
    responses((status = 201, body = NewKey), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_key(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<AddKeyIn>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    caller.require_admin()?;
    let key_name = accounts::key_name(body.name.as_deref())?;
    let (api_key, hash) = accounts::add_key(&s, &name, key_name.as_deref(), &caller.actor()).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKey {
            api_key,
            hash,
            name: key_name,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldIn {
    pub reason: String,
}

/// Stops a reviewer claiming in this project until released (admin), and cancels their
/// active leases in it (`lease.cancelled`, the slots back in their queues).
#[utoipa::path(post, path = "/v1/projects/{project}/reviewers/{name}/hold",
    params(("project" = String, Path), ("name" = String, Path)), request_body = HoldIn,
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn hold(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<HoldIn>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    accounts::hold(&s, &p, &name, &body.reason, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOut {
    /// The key's SHA-256 (the key itself is never stored).
    pub hash: String,
    /// `admin`, `service` or `reviewer`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    pub projects: Vec<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// What the admin called the key, if they named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When a request last authenticated with the key, to within a minute (written at
    /// most once a minute per key); absent: never used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

impl From<flywheel_store::KeyRecord> for KeyOut {
    fn from(k: flywheel_store::KeyRecord) -> Self {
        KeyOut {
            hash: k.hash,
            kind: k.kind,
            reviewer: k.reviewer,
            projects: k.projects,
            created_at: ts(k.created_at),
            revoked_at: k.revoked_at.map(ts),
            name: k.name,
            last_used_at: k.last_used_at.map(ts),
        }
    }
}

/// Every key, revoked ones too (admin).
#[utoipa::path(get, path = "/v1/keys", responses((status = 200, body = [KeyOut])), security(("bearer" = [])))]
pub async fn keys(State(s): State<Arc<AppState>>, caller: Caller) -> Result<Json<Vec<KeyOut>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(accounts::keys(&s).await?.into_iter().map(KeyOut::from).collect()))
}

/// Revokes a key by its hash (admin); sessions opened with it end too. Revoking the last
/// admin key is refused (409 `last_admin_key`).
#[utoipa::path(post, path = "/v1/keys/{hash}/revoke", params(("hash" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(hash): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    accounts::revoke(&s, &hash, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyChecked {
    pub valid: bool,
    /// Queues work can reach under this policy, with the tiers that work them.
    pub queues: Vec<QueueTier>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueTier {
    pub queue: String,
    pub tier: u8,
}

/// Checks a policy without storing it (admin): 200 with the queues it routes to, or 422
/// naming the field at fault (`rules[2].when`).
#[utoipa::path(post, path = "/v1/projects/{project}/policy/check", params(("project" = String, Path)),
    request_body(content = Object, description = "the policy"),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = PolicyChecked), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn check_policy(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    ApiJson(policy): ApiJson<serde_json::Value>,
) -> Result<Json<PolicyChecked>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let queues = projects::check_policy(&p, &policy)?;
    Ok(Json(PolicyChecked {
        valid: true,
        queues: queues
            .into_iter()
            .map(|(queue, tier)| QueueTier { queue, tier })
            .collect(),
    }))
}
