//! Accounts: keys (made and hashed here), reviewers and their grants, passwords, holds,
//! browser sign-in and sessions. Who may call these is checked by the caller (`http`,
//! `ui`); this module checks what is asked (names, tiers, passwords) and does it.

use flywheel_store::{
    KeyRecord, NewReviewer, NewServiceKey, Principal, Reviewer, ReviewerAccount, SessionOwner, StoreError,
};
use sha2::{Digest, Sha256};

use super::error::text_field;
use super::{AppError, AppState, ProjectRuntime};

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;

const PREFIX: &str = "fw_";

/// A new random key.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!("{PREFIX}{}", hex::encode(bytes))
}

/// What the store keeps of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Makes sure an admin key exists. With `wanted` (from `FLYWHEEL_ADMIN_KEY`) that key is
/// the admin key of a new database. Returns the key when this call created it.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn bootstrap_admin(state: &AppState, wanted: Option<&str>) -> Result<Option<String>, StoreError> {
    let key = wanted.map(str::to_string).unwrap_or_else(generate_key);
    if state.store.bootstrap_admin(&hash_key(&key), state.now()).await? {
        return Ok(Some(key));
    }
    if let Some(w) = wanted
        && state.store.principal(&hash_key(w)).await? != Some(Principal::Admin)
    {
        tracing::warn!(
            "FLYWHEEL_ADMIN_KEY is set but the database already has a different admin key; it was not changed"
        );
    }
    Ok(None)
}

/// Reviewer `r` may work in project `p` only when granted it.
pub fn require_granted(r: &Reviewer, p: &ProjectRuntime) -> Result<(), AppError> {
    if r.projects.contains(&p.id) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "reviewer '{}' is not granted project '{}'",
            r.name, p.name
        )))
    }
}

/// Answers reviewer `r` has given since midnight UTC.
#[tracing::instrument(level = "debug", skip_all, fields(reviewer = %r.name))]
pub async fn answers_today(s: &AppState, r: &Reviewer) -> Result<i64, AppError> {
    let today = s.now().div_euclid(flywheel_store::DAY_MS);
    Ok(s.store.answers_on_day(r.id, today).await?)
}

/// Every reviewer with their grants.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn reviewers(s: &AppState) -> Result<Vec<ReviewerAccount>, AppError> {
    Ok(s.store.reviewers().await?)
}

/// Reviewer `name`'s account, or not found.
#[tracing::instrument(level = "debug", skip(s))]
pub async fn account(s: &AppState, name: &str) -> Result<ReviewerAccount, AppError> {
    s.store
        .reviewers()
        .await?
        .into_iter()
        .find(|a| a.reviewer.name == name)
        .ok_or_else(|| AppError::NotFound(format!("reviewer '{name}' not found")))
}

/// Every key, revoked ones too.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn keys(s: &AppState) -> Result<Vec<KeyRecord>, AppError> {
    Ok(s.store.keys().await?)
}

/// Checks tiers: at least one, each 1..=9; returns them sorted without repeats.
pub fn check_tiers(tiers: &[u8]) -> Result<Vec<u8>, AppError> {
    use flywheel_core::policy::MAX_TIER;
    if tiers.is_empty() {
        return Err(AppError::invalid("tiers", "grant at least one tier"));
    }
    for (i, t) in tiers.iter().enumerate() {
        if !(1..=MAX_TIER).contains(t) {
            return Err(AppError::invalid(
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
pub async fn hash_password(field: &str, password: String) -> Result<String, AppError> {
    text_field(field, &password, MIN_PASSWORD, 256)?;
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::PasswordHasher;
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(format!("hashing the password failed: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(format!("hashing the password failed: {e}")))?
}

/// A new reviewer with a key of their own (returned once) and, optionally, a password.
#[tracing::instrument(level = "debug", skip(s, password, projects, actor), fields(reviewer = %name))]
pub async fn create_reviewer(
    s: &AppState,
    name: &str,
    tiers: &[u8],
    projects: Vec<String>,
    password: Option<String>,
    actor: &str,
) -> Result<(Reviewer, String), AppError> {
    let name = name.trim().to_string();
    text_field("name", &name, 1, 64)?;
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '/' | '\\' | '?' | '#' | '%'))
        || name.chars().all(|c| c == '.')
    {
        return Err(AppError::invalid(
            "name",
            "a reviewer name has no control characters and none of / \\ ? # %, and is not only dots",
        ));
    }
    let tiers = check_tiers(tiers)?;
    let password = match password {
        Some(p) => Some(hash_password("password", p).await?),
        None => None,
    };
    let api_key = generate_key();
    let r = s
        .store
        .create_reviewer(
            NewReviewer {
                name,
                tiers,
                projects,
                key_hash: hash_key(&api_key),
                password_hash: password,
            },
            actor,
            s.now(),
        )
        .await?;
    Ok((r, api_key))
}

/// A new service key granted `projects` (returned once).
#[tracing::instrument(level = "debug", skip(s, actor))]
pub async fn create_service_key(s: &AppState, projects: Vec<String>, actor: &str) -> Result<String, AppError> {
    if projects.is_empty() {
        return Err(AppError::invalid("projects", "grant at least one project"));
    }
    let api_key = generate_key();
    s.store
        .create_service_key(
            NewServiceKey {
                projects,
                key_hash: hash_key(&api_key),
            },
            actor,
            s.now(),
        )
        .await?;
    Ok(api_key)
}

/// Changes a reviewer's tiers, projects (`None` keeps them) or password (`Some("")`
/// removes it), and forgets cached key holders so this node sees the change at once.
#[tracing::instrument(level = "debug", skip(s, password, actor))]
pub async fn update_reviewer(
    s: &AppState,
    name: &str,
    tiers: Option<Vec<u8>>,
    projects: Option<Vec<String>>,
    password: Option<String>,
    actor: &str,
) -> Result<ReviewerAccount, AppError> {
    let current = account(s, name).await?;
    let password = match password {
        None => None,
        Some(p) if p.is_empty() => Some(None),
        Some(p) => Some(Some(hash_password("password", p).await?)),
    };
    if tiers.is_some() || projects.is_some() {
        let tiers = match &tiers {
            Some(t) => check_tiers(t)?,
            None => current.reviewer.tiers.clone(),
        };
        let projects = projects.unwrap_or(current.reviewer.project_names.clone());
        s.store.update_reviewer(name, tiers, projects, actor, s.now()).await?;
    }
    if let Some(hash) = password {
        s.store.set_password(name, hash.as_deref(), actor, s.now()).await?;
    }
    s.forget_principals();
    account(s, name).await
}

/// Another key for reviewer `name`: the key (shown once) and its hash.
#[tracing::instrument(level = "debug", skip(s, actor))]
pub async fn add_key(s: &AppState, name: &str, actor: &str) -> Result<(String, String), AppError> {
    let api_key = generate_key();
    let hash = hash_key(&api_key);
    s.store.add_reviewer_key(name, &hash, actor, s.now()).await?;
    Ok((api_key, hash))
}

/// Revokes a key by its hash (sessions opened with it end too).
#[tracing::instrument(level = "debug", skip(s, actor))]
pub async fn revoke(s: &AppState, hash: &str, actor: &str) -> Result<(), AppError> {
    s.store.revoke_key(hash, actor, s.now()).await?;
    s.forget_principals();
    Ok(())
}

/// Stops reviewer `name` claiming in project `p` until released.
#[tracing::instrument(level = "debug", skip(s, p, reason, actor), fields(project = %p.name))]
pub async fn hold(s: &AppState, p: &ProjectRuntime, name: &str, reason: &str, actor: &str) -> Result<(), AppError> {
    let reason = reason.trim().to_string();
    text_field("reason", &reason, 1, 500)?;
    s.store.hold_reviewer(p.id, name, &reason, actor, s.now()).await?;
    Ok(())
}

/// Failed sign-ins allowed per name within [`LOGIN_WINDOW`] before the name is refused
/// until the window passes: a brake on password guessing.
pub const MAX_LOGIN_FAILURES: u32 = 10;
pub const LOGIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// Failed sign-ins per name on this node.
#[derive(Default)]
pub struct LoginGuard(std::sync::Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>);

impl LoginGuard {
    fn blocked(&self, name: &str) -> bool {
        let mut m = self.0.lock().expect("login guard");
        m.retain(|_, (_, since)| since.elapsed() < LOGIN_WINDOW);
        m.get(name).is_some_and(|(n, _)| *n >= MAX_LOGIN_FAILURES)
    }

    fn failed(&self, name: &str) {
        let mut m = self.0.lock().expect("login guard");
        if m.len() > 100_000 {
            m.clear();
        }
        m.entry(name.to_string()).or_insert((0, std::time::Instant::now())).0 += 1;
    }
}

/// A hash to verify against when the name is unknown, so that a wrong name takes as long
/// as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        use argon2::password_hash::PasswordHasher;
        argon2::Argon2::default()
            .hash_password(generate_key().as_bytes())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// What a sign-in attempt came to.
pub enum SignIn {
    /// Who the new session will belong to.
    Owner(SessionOwner),
    /// Refused, with the reason to show.
    Refused(&'static str),
    /// Too many failures for this name lately: wait [`LOGIN_WINDOW`].
    Blocked,
}

/// Signs in with a key (admin or reviewer; a service key cannot), or else with a
/// reviewer's name and password (verified off the async threads; [`MAX_LOGIN_FAILURES`]
/// failures per name block it for [`LOGIN_WINDOW`]).
#[tracing::instrument(level = "debug", skip(s, password, key))]
pub async fn sign_in(s: &AppState, name: &str, password: &str, key: &str) -> Result<SignIn, AppError> {
    if !key.trim().is_empty() {
        let key_hash = hash_key(key.trim());
        return Ok(match s.store.principal(&key_hash).await? {
            Some(Principal::Admin | Principal::Reviewer(_)) => SignIn::Owner(SessionOwner::Key(key_hash)),
            Some(Principal::Service { .. }) => {
                SignIn::Refused("a service key cannot sign in; use an admin or reviewer key")
            }
            None => SignIn::Refused("unknown or revoked key"),
        });
    }
    let name = name.trim().to_string();
    if s.login_guard.blocked(&name) {
        return Ok(SignIn::Blocked);
    }
    let found = s.store.password_hash(&name).await?;
    let stored = found
        .as_ref()
        .map_or_else(|| decoy_hash().to_string(), |(_, h)| h.clone());
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordVerifier, phc::PasswordHash};
        PasswordHash::new(&stored)
            .map(|h| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    Ok(match found {
        Some((id, _)) if ok => SignIn::Owner(SessionOwner::Reviewer(id)),
        _ => {
            s.login_guard.failed(&name);
            SignIn::Refused("wrong name or password")
        }
    })
}

/// Opens a session for `owner` lasting `lasts_ms`; returns its token (the cookie's value).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn open_session(s: &AppState, owner: SessionOwner, lasts_ms: i64) -> Result<String, AppError> {
    let token = generate_key();
    let now = s.now();
    s.store
        .create_session(&hash_key(&token), owner, now + lasts_ms, now)
        .await?;
    Ok(token)
}

/// Ends the session with this token, and forgets cached session holders.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn sign_out(s: &AppState, token: &str) -> Result<(), AppError> {
    s.store.end_session(&hash_key(token)).await?;
    s.forget_principals();
    Ok(())
}
