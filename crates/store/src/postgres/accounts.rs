//! Accounts and projects on PostgreSQL (the same model as `sqlite/accounts.rs`): the admin
//! key, projects and their policies, reviewers, service keys, and the console's passwords
//! and browser sessions (formerly `console.rs`). Each runs inside the caller's transaction.

use flywheel_core::ValidationError;
use serde_json::Value;
use sqlx::PgConnection;

use super::common::{event, notify, parse};
use super::{TxError, TxResult};
use crate::*;
use flywheel_core::{Event, event as ev};

pub(super) async fn bootstrap_admin(c: &mut PgConnection, key_hash: &str, now: Millis) -> TxResult<bool> {
    // One node bootstraps; the others wait here and then see the key.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.bootstrap'))")
        .execute(&mut *c)
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api_keys WHERE kind = 'admin' AND revoked_at IS NULL)")
            .fetch_one(&mut *c)
            .await?;
    if exists {
        return Ok(false);
    }
    sqlx::query("INSERT INTO api_keys (hash, kind, created_at) VALUES ($1, 'admin', $2)")
        .bind(key_hash)
        .bind(now)
        .execute(&mut *c)
        .await?;
    event(
        c,
        None,
        None,
        None,
        now,
        "system",
        &Event::KeyCreated(ev::KeyCreated {
            scope: "admin".into(),
            projects: None,
            reviewer: None,
        }),
    )
    .await?;
    Ok(true)
}

pub(super) async fn principal(c: &mut PgConnection, key_hash: &str) -> TxResult<Option<Principal>> {
    let row: Option<(String, Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT kind, reviewer_id, projects::text FROM api_keys WHERE hash = $1 AND revoked_at IS NULL")
            .bind(key_hash)
            .fetch_optional(&mut *c)
            .await?;
    let Some((kind, reviewer_id, projects)) = row else {
        return Ok(None);
    };
    Ok(Some(match kind.as_str() {
        "admin" => Principal::Admin,
        "service" => Principal::Service {
            projects: parse(projects.as_deref().unwrap_or("[]"))?,
        },
        _ => {
            let id = reviewer_id.ok_or_else(|| StoreError::Backend("reviewer key without reviewer".into()))?;
            Principal::Reviewer(reviewer(c, id).await?)
        }
    }))
}

pub(super) async fn reviewer(c: &mut PgConnection, id: i64) -> TxResult<Reviewer> {
    let (name, tiers): (String, String) = sqlx::query_as("SELECT name, tiers::text FROM reviewers WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
    let granted: Vec<(i64, String)> = sqlx::query_as(
        "SELECT p.id, p.name FROM reviewer_projects rp JOIN projects p ON p.id = rp.project_id
         WHERE rp.reviewer_id = $1 ORDER BY p.id",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await?;
    let (projects, project_names) = granted.into_iter().unzip();
    Ok(Reviewer {
        id,
        name,
        tiers: parse(&tiers)?,
        projects,
        project_names,
    })
}

pub(super) async fn project_ids(c: &mut PgConnection, names: &[String]) -> TxResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE name = $1")
            .bind(n)
            .fetch_optional(&mut *c)
            .await?;
        match id {
            Some(id) if !ids.contains(&id) => ids.push(id),
            Some(_) => {}
            None => {
                return Err(ValidationError::new(format!("projects[{i}]"), format!("no project named '{n}'")).into());
            }
        }
    }
    Ok(ids)
}

pub(super) async fn create_project(
    c: &mut PgConnection,
    channel: &str,
    new: NewProject,
    actor: &str,
    now: Millis,
) -> TxResult<Project> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM projects WHERE name = $1)")
        .bind(&new.name)
        .fetch_one(&mut *c)
        .await?;
    if exists {
        return Err(StoreError::conflict("project_exists", format!("a project named '{}' exists", new.name)).into());
    }
    let policy = new.policy.to_string();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO projects (name, labels, policy, policy_version, created_at, answer_fields, label_mode)
         VALUES ($1, $2::jsonb, $3::jsonb, 1, $4, $5::jsonb, $6) RETURNING id",
    )
    .bind(&new.name)
    .bind(serde_json::to_string(&new.labels)?)
    .bind(&policy)
    .bind(now)
    .bind(new.answer_fields.to_string())
    .bind(new.label_mode.as_str())
    .fetch_one(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO policies (project_id, version, policy, created_at, created_by) VALUES ($1, 1, $2::jsonb, $3, $4)",
    )
    .bind(id)
    .bind(&policy)
    .bind(now)
    .bind(actor)
    .execute(&mut *c)
    .await?;
    event(
        c,
        Some(id),
        None,
        None,
        now,
        actor,
        &Event::ProjectCreated(ev::ProjectCreated {
            name: new.name.clone(),
            labels: new.labels.clone(),
            policy_version: 1,
            policy: new.policy.clone(),
            label_mode: new.label_mode,
        }),
    )
    .await?;
    notify(c, channel, &Notice::ProjectChanged { name: new.name.clone() }).await?;
    Ok(Project {
        id,
        name: new.name,
        labels: new.labels,
        policy: new.policy,
        policy_version: 1,
        created_at: now,
        answer_fields: new.answer_fields,
        label_mode: new.label_mode,
    })
}

/// A `projects` row: id, name, labels, policy, policy version, created at, answer fields,
/// label mode.
type ProjectRow = (i64, String, String, String, i32, i64, String, String);

pub(super) async fn project(c: &mut PgConnection, name: &str) -> TxResult<Option<Project>> {
    let row: Option<ProjectRow> = sqlx::query_as(
        "SELECT id, name, labels::text, policy::text, policy_version, created_at, answer_fields::text, label_mode
         FROM projects WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|(id, name, labels, policy, version, created_at, answer_fields, mode)| {
        Ok(Project {
            id,
            name,
            labels: parse(&labels)?,
            policy: parse(&policy)?,
            policy_version: version as u32,
            created_at,
            answer_fields: parse(&answer_fields)?,
            label_mode: flywheel_core::LabelMode::parse(&mode).map_err(|e| StoreError::Backend(e.message))?,
        })
    })
    .transpose()
}

pub(super) async fn policy_versions(c: &mut PgConnection, project_id: i64) -> TxResult<Vec<PolicyVersion>> {
    let rows: Vec<(i32, String, i64, String)> = sqlx::query_as(
        "SELECT version, policy::text, created_at, created_by FROM policies WHERE project_id = $1 ORDER BY version DESC",
    )
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(|(version, policy, created_at, created_by)| {
            Ok(PolicyVersion {
                version: version as u32,
                policy: parse(&policy)?,
                created_at,
                created_by,
            })
        })
        .collect()
}

pub(super) async fn set_policy(
    c: &mut PgConnection,
    channel: &str,
    name: &str,
    policy: &Value,
    actor: &str,
    now: Millis,
) -> TxResult<u32> {
    let text = policy.to_string();
    let row: Option<(i64, i32)> = sqlx::query_as(
        "UPDATE projects SET policy = $2::jsonb, policy_version = policy_version + 1 WHERE name = $1 RETURNING id, policy_version",
    )
    .bind(name)
    .bind(&text)
    .fetch_optional(&mut *c)
    .await?;
    let (id, version) = row.ok_or_else(|| StoreError::not_found(format!("project '{name}'")))?;
    sqlx::query(
        "INSERT INTO policies (project_id, version, policy, created_at, created_by) VALUES ($1, $2, $3::jsonb, $4, $5)",
    )
    .bind(id)
    .bind(version)
    .bind(&text)
    .bind(now)
    .bind(actor)
    .execute(&mut *c)
    .await?;
    event(
        c,
        Some(id),
        None,
        None,
        now,
        actor,
        &Event::PolicyUpdated(ev::PolicyUpdated {
            policy_version: version as u32,
            policy: policy.clone(),
        }),
    )
    .await?;
    notify(c, channel, &Notice::ProjectChanged { name: name.to_string() }).await?;
    Ok(version as u32)
}

pub(super) async fn projects(c: &mut PgConnection) -> TxResult<Vec<Project>> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM projects ORDER BY name")
        .fetch_all(&mut *c)
        .await?;
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        match project(c, &n).await? {
            Some(p) => out.push(p),
            None => return Err(StoreError::Backend(format!("project '{n}' vanished")).into()),
        }
    }
    Ok(out)
}

pub(super) async fn create_reviewer(
    c: &mut PgConnection,
    new: NewReviewer,
    actor: &str,
    now: Millis,
) -> TxResult<Reviewer> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM reviewers WHERE name = $1)")
        .bind(&new.name)
        .fetch_one(&mut *c)
        .await?;
    if exists {
        return Err(StoreError::conflict("reviewer_exists", format!("a reviewer named '{}' exists", new.name)).into());
    }
    let projects = project_ids(c, &new.projects).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO reviewers (name, tiers, created_at, password_hash) VALUES ($1, $2::jsonb, $3, $4) RETURNING id",
    )
    .bind(&new.name)
    .bind(serde_json::to_string(&new.tiers)?)
    .bind(now)
    .bind(&new.password_hash)
    .fetch_one(&mut *c)
    .await?;
    for p in &projects {
        sqlx::query("INSERT INTO reviewer_projects (reviewer_id, project_id) VALUES ($1, $2)")
            .bind(id)
            .bind(p)
            .execute(&mut *c)
            .await?;
    }
    sqlx::query("INSERT INTO api_keys (hash, kind, reviewer_id, created_at) VALUES ($1, 'reviewer', $2, $3)")
        .bind(&new.key_hash)
        .bind(id)
        .bind(now)
        .execute(&mut *c)
        .await?;
    let grant = ev::ReviewerGrant {
        reviewer_id: id,
        name: new.name,
        tiers: new.tiers,
        projects: new.projects,
    };
    event(c, None, None, None, now, actor, &Event::ReviewerCreated(grant.clone())).await?;
    let granted = Event::ReviewerGranted(grant);
    for p in &projects {
        event(c, Some(*p), None, None, now, actor, &granted).await?;
    }
    reviewer(c, id).await
}

pub(super) async fn create_service_key(
    c: &mut PgConnection,
    new: NewServiceKey,
    actor: &str,
    now: Millis,
) -> TxResult<()> {
    let projects = project_ids(c, &new.projects).await?;
    sqlx::query("INSERT INTO api_keys (hash, kind, projects, created_at) VALUES ($1, 'service', $2::jsonb, $3)")
        .bind(&new.key_hash)
        .bind(serde_json::to_string(&projects)?)
        .bind(now)
        .execute(&mut *c)
        .await?;
    let data = Event::KeyCreated(ev::KeyCreated {
        scope: "service".into(),
        projects: Some(new.projects),
        reviewer: None,
    });
    event(c, None, None, None, now, actor, &data).await?;
    for p in &projects {
        event(c, Some(*p), None, None, now, actor, &data).await?;
    }
    Ok(())
}

async fn reviewer_id(c: &mut PgConnection, name: &str) -> TxResult<i64> {
    sqlx::query_scalar("SELECT id FROM reviewers WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("reviewer '{name}'")).into())
}

pub(super) async fn reviewers(c: &mut PgConnection) -> TxResult<Vec<ReviewerAccount>> {
    let rows: Vec<(i64, bool, i64, i64)> = sqlx::query_as(
        "SELECT v.id, v.password_hash IS NOT NULL, v.created_at,
            (SELECT count(*) FROM api_keys k WHERE k.reviewer_id = v.id AND k.revoked_at IS NULL)
         FROM reviewers v ORDER BY v.name",
    )
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, has_password, created_at, active_keys) in rows {
        out.push(ReviewerAccount {
            reviewer: reviewer(c, id).await?,
            has_password,
            active_keys,
            created_at,
        });
    }
    Ok(out)
}

pub(super) async fn update_reviewer(
    c: &mut PgConnection,
    channel: &str,
    name: &str,
    tiers: &[u8],
    projects: &[String],
    actor: &str,
    now: Millis,
) -> TxResult<Reviewer> {
    let id = reviewer_id(c, name).await?;
    let ids = project_ids(c, projects).await?;
    sqlx::query("UPDATE reviewers SET tiers = $1::jsonb WHERE id = $2")
        .bind(serde_json::to_string(tiers)?)
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM reviewer_projects WHERE reviewer_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    for p in &ids {
        sqlx::query("INSERT INTO reviewer_projects (reviewer_id, project_id) VALUES ($1, $2)")
            .bind(id)
            .bind(p)
            .execute(&mut *c)
            .await?;
    }
    let grant = ev::ReviewerGrant {
        reviewer_id: id,
        name: name.to_string(),
        tiers: tiers.to_vec(),
        projects: projects.to_vec(),
    };
    event(c, None, None, None, now, actor, &Event::ReviewerUpdated(grant.clone())).await?;
    let granted = Event::ReviewerGranted(grant);
    for p in &ids {
        event(c, Some(*p), None, None, now, actor, &granted).await?;
    }
    // A grant withdrawn ends the reviewer's leases on that project now, not at expiry.
    let reason = "the reviewer's grant was withdrawn";
    super::work::cancel_reviewer_leases(c, channel, id, |p| !ids.contains(&p), reason, now).await?;
    reviewer(c, id).await
}

pub(super) async fn add_reviewer_key(
    c: &mut PgConnection,
    name: &str,
    key_hash: &str,
    actor: &str,
    now: Millis,
) -> TxResult<()> {
    let id = reviewer_id(c, name).await?;
    sqlx::query("INSERT INTO api_keys (hash, kind, reviewer_id, created_at) VALUES ($1, 'reviewer', $2, $3)")
        .bind(key_hash)
        .bind(id)
        .bind(now)
        .execute(&mut *c)
        .await?;
    let data = Event::KeyCreated(ev::KeyCreated {
        scope: "reviewer".into(),
        projects: None,
        reviewer: Some(name.to_string()),
    });
    event(c, None, None, None, now, actor, &data).await
}

/// hash, kind, reviewer, projects (JSON), created_at, revoked_at
type KeyRow = (String, String, Option<String>, Option<String>, i64, Option<i64>);

pub(super) async fn keys(c: &mut PgConnection) -> TxResult<Vec<KeyRecord>> {
    let names: std::collections::HashMap<i64, String> = sqlx::query_as("SELECT id, name FROM projects")
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .collect();
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT k.hash, k.kind, v.name, k.projects::text, k.created_at, k.revoked_at
         FROM api_keys k LEFT JOIN reviewers v ON v.id = k.reviewer_id ORDER BY k.created_at, k.hash",
    )
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(|(hash, kind, reviewer, projects, created_at, revoked_at)| {
            let ids: Vec<i64> = match projects {
                Some(p) => parse(&p)?,
                None => Vec::new(),
            };
            Ok(KeyRecord {
                hash,
                kind,
                reviewer,
                projects: ids.iter().filter_map(|id| names.get(id).cloned()).collect(),
                created_at,
                revoked_at,
            })
        })
        .collect()
}

pub(super) async fn revoke_key(c: &mut PgConnection, key_hash: &str, actor: &str, now: Millis) -> TxResult<()> {
    let kind: String = sqlx::query_scalar("SELECT kind FROM api_keys WHERE hash = $1")
        .bind(key_hash)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| TxError::from(StoreError::not_found("key")))?;
    // Admin keys are locked together, so two revokes cannot each leave the other's key
    // as the last one and both go through.
    let admins: Vec<String> =
        sqlx::query_scalar("SELECT hash FROM api_keys WHERE kind = 'admin' AND revoked_at IS NULL FOR UPDATE")
            .fetch_all(&mut *c)
            .await?;
    if kind == "admin" && admins.iter().all(|h| h == key_hash) {
        return Err(StoreError::conflict(
            "last_admin_key",
            "this is the only admin key; revoking it would lock everyone out",
        )
        .into());
    }
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(key_hash)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM web_sessions WHERE key_hash = $1")
        .bind(key_hash)
        .execute(&mut *c)
        .await?;
    let data = Event::KeyRevoked(ev::KeyRevoked {
        scope: kind.clone(),
        key: key_hash[..key_hash.len().min(12)].to_string(),
    });
    event(c, None, None, None, now, actor, &data).await
}

pub(super) async fn set_password(
    c: &mut PgConnection,
    name: &str,
    hash: Option<&str>,
    actor: &str,
    now: Millis,
) -> TxResult<()> {
    let id = reviewer_id(c, name).await?;
    sqlx::query("UPDATE reviewers SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(&mut *c)
        .await?;
    // A changed (or removed) password ends the sessions it opened.
    sqlx::query("DELETE FROM web_sessions WHERE reviewer_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    let data = Event::ReviewerPassword(ev::ReviewerPassword {
        reviewer_id: id,
        reviewer: name.to_string(),
        password: hash.is_some(),
    });
    event(c, None, None, None, now, actor, &data).await
}

pub(super) async fn password_hash(c: &mut PgConnection, name: &str) -> TxResult<Option<(i64, String)>> {
    let row: Option<(i64, Option<String>)> = sqlx::query_as("SELECT id, password_hash FROM reviewers WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *c)
        .await?;
    Ok(row.and_then(|(id, h)| h.map(|h| (id, h))))
}

pub(super) async fn create_session(
    c: &mut PgConnection,
    token_hash: &str,
    owner: &SessionOwner,
    expires_at: Millis,
    now: Millis,
) -> TxResult<()> {
    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *c)
        .await?;
    let (key_hash, reviewer_id) = match owner {
        SessionOwner::Key(h) => (Some(h.as_str()), None),
        SessionOwner::Reviewer(id) => (None, Some(*id)),
    };
    sqlx::query(
        "INSERT INTO web_sessions (hash, key_hash, reviewer_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(key_hash)
    .bind(reviewer_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(super) async fn session(c: &mut PgConnection, token_hash: &str, now: Millis) -> TxResult<Option<Principal>> {
    let row: Option<(Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT key_hash, reviewer_id FROM web_sessions WHERE hash = $1 AND expires_at > $2")
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *c)
            .await?;
    match row {
        None => Ok(None),
        Some((Some(key), _)) => principal(c, &key).await,
        Some((None, Some(id))) => Ok(Some(Principal::Reviewer(reviewer(c, id).await?))),
        Some((None, None)) => Err(StoreError::Backend("a session with no owner".into()).into()),
    }
}

pub(super) async fn end_session(c: &mut PgConnection, token_hash: &str) -> TxResult<()> {
    sqlx::query("DELETE FROM web_sessions WHERE hash = $1")
        .bind(token_hash)
        .execute(&mut *c)
        .await?;
    Ok(())
}
