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
        // As if it did not exist: a caller learns no project it may not see.
        Err(AppError::NotFound(super::project_not_found(&p.name)))
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
        super::signin::argon2()
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
    text_field("name", name, 1, 64)?;
    // NFKC, no invisible or bidi controls: `r1\u{200b}` is refused, `ｒ１` is `r1`.
    let name = flywheel_core::name::normalise("name", name.trim())?;
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
pub async fn create_service_key(
    s: &AppState,
    projects: Vec<String>,
    name: Option<&str>,
    actor: &str,
) -> Result<String, AppError> {
    if projects.is_empty() {
        return Err(AppError::invalid("projects", "grant at least one project"));
    }
    let name = key_name(name)?;
    let api_key = generate_key();
    s.store
        .create_service_key(
            NewServiceKey {
                projects,
                key_hash: hash_key(&api_key),
                name,
            },
            actor,
            s.now(),
        )
        .await?;
    Ok(api_key)
}

/// What an admin may change about a reviewer; `None` keeps it.
#[derive(Debug, Default)]
pub struct ReviewerChange {
    pub tiers: Option<Vec<u8>>,
    pub projects: Option<Vec<String>>,
    /// `Some("")` removes the password.
    pub password: Option<String>,
    /// `Some(false)` deactivates the reviewer (keys, sessions and password stop working,
    /// active leases cancelled); `Some(true)` reactivates them.
    pub active: Option<bool>,
}

/// Changes a reviewer's tiers, projects, password or whether they are active, and
/// forgets cached key holders so this node sees the change at once.
#[tracing::instrument(level = "debug", skip(s, change, actor))]
pub async fn update_reviewer(
    s: &AppState,
    name: &str,
    change: ReviewerChange,
    actor: &str,
) -> Result<ReviewerAccount, AppError> {
    let ReviewerChange {
        tiers,
        projects,
        password,
        active,
    } = change;
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
    if let Some(active) = active {
        s.store.set_reviewer_active(name, active, actor, s.now()).await?;
    }
    s.forget_principals();
    account(s, name).await
}

/// Another key for reviewer `name`: the key (shown once) and its hash.
#[tracing::instrument(level = "debug", skip(s, actor))]
pub async fn add_key(
    s: &AppState,
    name: &str,
    key_name: Option<&str>,
    actor: &str,
) -> Result<(String, String), AppError> {
    let key_name = self::key_name(key_name)?;
    let api_key = generate_key();
    let hash = hash_key(&api_key);
    s.store
        .add_reviewer_key(name, &hash, key_name.as_deref(), actor, s.now())
        .await?;
    Ok((api_key, hash))
}

/// A key's name as stored: trimmed, NFKC, 1 to 64 characters with no invisible, bidi or
/// control characters; blank or absent is no name.
pub fn key_name(name: Option<&str>) -> Result<Option<String>, AppError> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    text_field("name", name, 1, 64)?;
    let name = flywheel_core::name::normalise("name", name)?;
    text_field("name", &name, 1, 64)?;
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid("name", "a key name has no control characters"));
    }
    Ok(Some(name))
}

/// How often a key's `last_used_at` is written at most: the console shows it to the
/// minute, and a write per request would put the store on the hot path.
pub const KEY_TOUCH_EVERY_MS: i64 = 60_000;

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

/// A hash to verify against when the name is unknown, so that a wrong name takes as long
/// as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        use argon2::password_hash::PasswordHasher;
        super::signin::argon2()
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
    /// Braked (too many failures for this name or address lately, or every hashing slot
    /// busy): try again after this many seconds.
    Blocked { retry_after_s: i64 },
}

/// Signs in with a key (admin or reviewer; a service key cannot), or else with a
/// reviewer's name and password, the attempt reserved with the brake before the hash runs
/// and the hash run in a bounded number of slots off the async threads (`super::signin`).
/// `ip` is the client's address, when known.
#[tracing::instrument(level = "debug", skip(s, password, key))]
pub async fn sign_in(
    s: &AppState,
    name: &str,
    password: &str,
    key: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<SignIn, AppError> {
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
    // The name as stored (NFKC), so look-alike spellings share one brake.
    let name = flywheel_core::name::normalise("name", name.trim()).unwrap_or_else(|_| name.trim().to_string());
    let now = s.now();
    let attempt = match s.sign_in_brake.begin(&name, ip, now) {
        Ok(a) => a,
        Err(until) => {
            tracing::info!(reviewer = %name, ?ip, "sign-in braked");
            return Ok(SignIn::Blocked {
                retry_after_s: ((until - now + 999) / 1000).max(1),
            });
        }
    };
    let outcome = verify(s, &name, password).await;
    let ok = match &outcome {
        Ok(Some(Some(_))) => Some(true),
        Ok(Some(None)) => Some(false),
        Ok(None) | Err(_) => None,
    };
    s.sign_in_brake.finish(attempt, ok, s.now());
    Ok(match outcome? {
        Some(Some(id)) => SignIn::Owner(SessionOwner::Reviewer(id)),
        Some(None) => {
            tracing::info!(reviewer = %name, ?ip, "sign-in failed");
            SignIn::Refused("wrong name or password")
        }
        None => SignIn::Blocked { retry_after_s: 1 },
    })
}

/// The reviewer `name` signs in as if `password` is theirs (`Some(Some(id))`), or
/// `Some(None)` if not; `None` if no hashing slot came free in time.
async fn verify(s: &AppState, name: &str, password: &str) -> Result<Option<Option<i64>>, AppError> {
    // A name holding a NUL is no reviewer's (and PostgreSQL cannot compare it): the decoy
    // hash runs as for any unknown name.
    let found = match name.contains('\0') {
        true => None,
        false => s.store.password_hash(name).await?,
    };
    let stored = found
        .as_ref()
        .map_or_else(|| decoy_hash().to_string(), |(_, h)| h.clone());
    let Some(ok) = s.hash_gate.verify(password.to_string(), stored).await else {
        return Ok(None);
    };
    Ok(Some(found.filter(|_| ok).map(|(id, _)| id)))
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
