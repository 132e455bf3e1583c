//! Accounts: who am I, reviewers' grants and passwords, holds, keys — the admin console's
//! API, which the browser console calls like any other client.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use flywheel_core::Policy;
use flywheel_core::policy::MAX_TIER;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dto::ErrorBody;
use super::{ApiJson, text_field, ts};
use crate::app::AppState;
use crate::auth::{Caller, generate_key, hash_key};
use crate::error::ApiError;
use flywheel_store::Principal;

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;

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
        Principal::Reviewer(r) => {
            let today = s.now().div_euclid(flywheel_store::DAY_MS);
            Me {
                kind: "reviewer".into(),
                name: Some(r.name.clone()),
                tiers: r.tiers.clone(),
                projects: r.project_names.clone(),
                answers_today: s.store.answers_on_day(r.id, today).await?,
            }
        }
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
        s.store
            .projects()
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
        }
    }
}

/// Reviewer `name`'s account, or 404.
async fn account(s: &AppState, name: &str) -> Result<flywheel_store::ReviewerAccount, ApiError> {
    s.store
        .reviewers()
        .await?
        .into_iter()
        .find(|a| a.reviewer.name == name)
        .ok_or_else(|| ApiError::not_found(format!("reviewer '{name}' not found")))
}

/// Every reviewer with their grants (admin).
#[utoipa::path(get, path = "/v1/reviewers", responses((status = 200, body = [Account])), security(("bearer" = [])))]
pub async fn accounts(State(s): State<Arc<AppState>>, caller: Caller) -> Result<Json<Vec<Account>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(
        s.store.reviewers().await?.into_iter().map(Account::from).collect(),
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
}

/// Checks tiers: at least one, each 1..=9; returns them sorted without repeats.
pub fn check_tiers(tiers: &[u8]) -> Result<Vec<u8>, ApiError> {
    if tiers.is_empty() {
        return Err(ApiError::invalid("tiers", "grant at least one tier"));
    }
    for (i, t) in tiers.iter().enumerate() {
        if !(1..=MAX_TIER).contains(t) {
            return Err(ApiError::invalid(
                format!("tiers[{i}]"),
                format!("a tier is between 1 and {MAX_TIER}"),
            ));
        }
    }
    let mut tiers = tiers.to_vec();
    tiers.sort_unstable();
    tiers.dedup();
    Ok(tiers)
}

/// An Argon2id hash of a password (at least [`MIN_PASSWORD`] characters), computed off the
/// async threads.
pub async fn hash_password(field: &str, password: String) -> Result<String, ApiError> {
    text_field(field, &password, MIN_PASSWORD, 256)?;
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::PasswordHasher;
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(format!("hashing the password failed: {e}")))
    })
    .await
    .map_err(|e| ApiError::internal(format!("hashing the password failed: {e}")))?
}

/// Changes a reviewer's tiers, projects or password (admin). Takes effect on this node at
/// once, on others within 5 s.
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
    let current = account(&s, &name).await?;
    let password = match body.password {
        None => None,
        Some(p) if p.is_empty() => Some(None),
        Some(p) => Some(Some(hash_password("password", p).await?)),
    };
    if body.tiers.is_some() || body.projects.is_some() {
        let tiers = match &body.tiers {
            Some(t) => check_tiers(t)?,
            None => current.reviewer.tiers.clone(),
        };
        let projects = body.projects.unwrap_or(current.reviewer.project_names.clone());
        s.store
            .update_reviewer(&name, tiers, projects, &caller.actor(), s.now())
            .await?;
    }
    if let Some(hash) = password {
        s.store
            .set_password(&name, hash.as_deref(), &caller.actor(), s.now())
            .await?;
    }
    s.forget_principals();
    Ok(Json(account(&s, &name).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewKey {
    /// Shown once; only its hash is stored.
    pub api_key: String,
    pub hash: String,
}

/// Gives a reviewer another key (admin), for example after revoking a lost one.
#[utoipa::path(post, path = "/v1/reviewers/{name}/keys", params(("name" = String, Path)),
    responses((status = 201, body = NewKey), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn add_key(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    caller.require_admin()?;
    let api_key = generate_key();
    let hash = hash_key(&api_key);
    s.store.add_reviewer_key(&name, &hash, &caller.actor(), s.now()).await?;
    Ok((StatusCode::CREATED, Json(NewKey { api_key, hash })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldIn {
    pub reason: String,
}

/// Stops a reviewer claiming in this project until released (admin).
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
    let reason = body.reason.trim().to_string();
    text_field("reason", &reason, 1, 500)?;
    s.store
        .hold_reviewer(p.id, &name, &reason, &caller.actor(), s.now())
        .await?;
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
}

/// Every key, revoked ones too (admin).
#[utoipa::path(get, path = "/v1/keys", responses((status = 200, body = [KeyOut])), security(("bearer" = [])))]
pub async fn keys(State(s): State<Arc<AppState>>, caller: Caller) -> Result<Json<Vec<KeyOut>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(
        s.store
            .keys()
            .await?
            .into_iter()
            .map(|k| KeyOut {
                hash: k.hash,
                kind: k.kind,
                reviewer: k.reviewer,
                projects: k.projects,
                created_at: ts(k.created_at),
                revoked_at: k.revoked_at.map(ts),
            })
            .collect(),
    ))
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
    s.store.revoke_key(&hash, &caller.actor(), s.now()).await?;
    s.forget_principals();
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
    responses((status = 200, body = PolicyChecked), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn check_policy(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    ApiJson(policy): ApiJson<serde_json::Value>,
) -> Result<Json<PolicyChecked>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let compiled = Policy::from_json(&policy, &p.labels)?;
    Ok(Json(PolicyChecked {
        valid: true,
        queues: compiled
            .queues()
            .into_iter()
            .map(|(queue, tier)| QueueTier { queue, tier })
            .collect(),
    }))
}
