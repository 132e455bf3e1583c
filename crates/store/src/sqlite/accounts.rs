//! Accounts and projects on SQLite: the admin key, projects and their policies, reviewers,
//! service keys, and the console's passwords and browser sessions (formerly `console.rs`: a
//! session is one more way to hold an account, so it lives with the accounts). Write
//! operations run inside the writer's transaction (see `writer.rs`); each appends its
//! events with [`event`]. Holding and releasing a reviewer is `quality.rs`'s.

use flywheel_core::ValidationError;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::common::{event, json_col};
use crate::*;
use flywheel_core::{Event, event as ev};

pub(super) fn bootstrap_admin(c: &Connection, key_hash: &str, now: Millis) -> Result<bool> {
    let exists: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM api_keys WHERE kind = 'admin' AND revoked_at IS NULL)",
        [],
        |r| r.get(0),
    )?;
    if exists {
        return Ok(false);
    }
    c.execute(
        "INSERT INTO api_keys (hash, kind, created_at) VALUES (?1, 'admin', ?2)",
        params![key_hash, now],
    )?;
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
    )?;
    Ok(true)
}

pub(super) fn principal(c: &Connection, key_hash: &str) -> Result<Option<Principal>> {
    let row: Option<(String, Option<i64>, Option<String>)> = c
        .prepare_cached("SELECT kind, reviewer_id, projects FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL")?
        .query_row([key_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((kind, reviewer_id, projects)) = row else {
        return Ok(None);
    };
    Ok(Some(match kind.as_str() {
        "admin" => Principal::Admin,
        "service" => Principal::Service {
            projects: serde_json::from_str(projects.as_deref().unwrap_or("[]"))?,
        },
        _ => {
            let id = reviewer_id.ok_or_else(|| StoreError::Backend("reviewer key without reviewer".into()))?;
            Principal::Reviewer(reviewer(c, id)?)
        }
    }))
}

pub(super) fn reviewer(c: &Connection, id: i64) -> Result<Reviewer> {
    let (name, tiers): (String, String) = c
        .prepare_cached("SELECT name, tiers FROM reviewers WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let granted = c
        .prepare_cached(
            "SELECT p.id, p.name FROM reviewer_projects rp JOIN projects p ON p.id = rp.project_id
             WHERE rp.reviewer_id = ?1 ORDER BY p.id",
        )?
        .query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (projects, project_names) = granted.into_iter().unzip();
    Ok(Reviewer {
        id,
        name,
        tiers: serde_json::from_str(&tiers)?,
        projects,
        project_names,
    })
}

pub(super) fn project_ids(c: &Connection, names: &[String]) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        let id: Option<i64> = c
            .prepare_cached("SELECT id FROM projects WHERE name = ?1")?
            .query_row([n], |r| r.get(0))
            .optional()?;
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

pub(super) fn create_project(c: &Connection, new: NewProject, actor: &str, now: Millis) -> Result<Project> {
    let exists: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM projects WHERE name = ?1)",
        [&new.name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(StoreError::conflict(
            "project_exists",
            format!("a project named '{}' exists", new.name),
        ));
    }
    let labels = serde_json::to_string(&new.labels)?;
    let policy = new.policy.to_string();
    c.execute(
        "INSERT INTO projects (name, labels, policy, policy_version, created_at, answer_fields, label_mode)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6)",
        params![
            new.name,
            labels,
            policy,
            now,
            new.answer_fields.to_string(),
            new.label_mode.as_str()
        ],
    )?;
    let id = c.last_insert_rowid();
    c.execute(
        "INSERT INTO policies (project_id, version, policy, created_at, created_by) VALUES (?1, 1, ?2, ?3, ?4)",
        params![id, policy, now, actor],
    )?;
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
    )?;
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

pub(super) fn project(c: &Connection, name: &str) -> Result<Option<Project>> {
    c.prepare_cached(
        "SELECT id, name, labels, policy, policy_version, created_at, answer_fields, label_mode FROM projects WHERE name = ?1",
    )?
    .query_row([name], |r| {
        Ok(Project {
            id: r.get(0)?,
            name: r.get(1)?,
            labels: serde_json::from_value(json_col(r, 2)?).unwrap_or_default(),
            policy: json_col(r, 3)?,
            policy_version: r.get(4)?,
            created_at: r.get(5)?,
            answer_fields: json_col(r, 6)?,
            label_mode: flywheel_core::LabelMode::parse(&r.get::<_, String>(7)?).unwrap_or_default(),
        })
    })
    .optional()
    .map_err(Into::into)
}

pub(super) fn policy_versions(c: &Connection, project_id: i64) -> Result<Vec<PolicyVersion>> {
    c.prepare_cached(
        "SELECT version, policy, created_at, created_by FROM policies WHERE project_id = ?1 ORDER BY version DESC",
    )?
    .query_map([project_id], |r| {
        Ok(PolicyVersion {
            version: r.get(0)?,
            policy: json_col(r, 1)?,
            created_at: r.get(2)?,
            created_by: r.get(3)?,
        })
    })?
    .collect::<rusqlite::Result<_>>()
    .map_err(Into::into)
}

pub(super) fn set_policy(c: &Connection, name: &str, policy: &Value, actor: &str, now: Millis) -> Result<u32> {
    let text = policy.to_string();
    let row: Option<(i64, u32)> = c
        .query_row(
            "UPDATE projects SET policy = ?2, policy_version = policy_version + 1 WHERE name = ?1 RETURNING id, policy_version",
            params![name, text],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (id, version) = row.ok_or_else(|| StoreError::not_found(format!("project '{name}'")))?;
    c.execute(
        "INSERT INTO policies (project_id, version, policy, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, version, text, now, actor],
    )?;
    event(
        c,
        Some(id),
        None,
        None,
        now,
        actor,
        &Event::PolicyUpdated(ev::PolicyUpdated {
            policy_version: version,
            policy: policy.clone(),
        }),
    )?;
    Ok(version)
}

pub(super) fn projects(c: &Connection) -> Result<Vec<Project>> {
    let names = c
        .prepare_cached("SELECT name FROM projects ORDER BY name")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    names
        .iter()
        .map(|n| project(c, n)?.ok_or_else(|| StoreError::Backend(format!("project '{n}' vanished"))))
        .collect()
}

pub(super) fn create_reviewer(c: &Connection, new: NewReviewer, actor: &str, now: Millis) -> Result<Reviewer> {
    let exists: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM reviewers WHERE name = ?1)",
        [&new.name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(StoreError::conflict(
            "reviewer_exists",
            format!("a reviewer named '{}' exists", new.name),
        ));
    }
    let projects = project_ids(c, &new.projects)?;
    c.execute(
        "INSERT INTO reviewers (name, tiers, created_at, password_hash) VALUES (?1, ?2, ?3, ?4)",
        params![new.name, serde_json::to_string(&new.tiers)?, now, new.password_hash],
    )?;
    let id = c.last_insert_rowid();
    for p in &projects {
        c.execute(
            "INSERT INTO reviewer_projects (reviewer_id, project_id) VALUES (?1, ?2)",
            params![id, p],
        )?;
    }
    c.execute(
        "INSERT INTO api_keys (hash, kind, reviewer_id, created_at) VALUES (?1, 'reviewer', ?2, ?3)",
        params![new.key_hash, id, now],
    )?;
    let grant = ev::ReviewerGrant {
        reviewer_id: id,
        name: new.name,
        tiers: new.tiers,
        projects: new.projects,
    };
    event(c, None, None, None, now, actor, &Event::ReviewerCreated(grant.clone()))?;
    let granted = Event::ReviewerGranted(grant);
    for p in &projects {
        event(c, Some(*p), None, None, now, actor, &granted)?;
    }
    reviewer(c, id)
}

pub(super) fn create_service_key(c: &Connection, new: NewServiceKey, actor: &str, now: Millis) -> Result<()> {
    let projects = project_ids(c, &new.projects)?;
    c.execute(
        "INSERT INTO api_keys (hash, kind, projects, created_at) VALUES (?1, 'service', ?2, ?3)",
        params![new.key_hash, serde_json::to_string(&projects)?, now],
    )?;
    let data = Event::KeyCreated(ev::KeyCreated {
        scope: "service".into(),
        projects: Some(new.projects),
        reviewer: None,
    });
    event(c, None, None, None, now, actor, &data)?;
    for p in &projects {
        event(c, Some(*p), None, None, now, actor, &data)?;
    }
    Ok(())
}

fn reviewer_id(c: &Connection, name: &str) -> Result<i64> {
    c.prepare_cached("SELECT id FROM reviewers WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::not_found(format!("reviewer '{name}'")))
}

pub(super) fn reviewers(c: &Connection) -> Result<Vec<ReviewerAccount>> {
    let rows = c
        .prepare_cached(
            "SELECT v.id, v.password_hash IS NOT NULL, v.created_at,
                (SELECT count(*) FROM api_keys k WHERE k.reviewer_id = v.id AND k.revoked_at IS NULL)
             FROM reviewers v ORDER BY v.name",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<Vec<(i64, bool, i64, i64)>>>()?;
    rows.into_iter()
        .map(|(id, has_password, created_at, active_keys)| {
            Ok(ReviewerAccount {
                reviewer: reviewer(c, id)?,
                has_password,
                active_keys,
                created_at,
            })
        })
        .collect()
}

pub(super) fn update_reviewer(
    c: &Connection,
    name: &str,
    tiers: &[u8],
    projects: &[String],
    actor: &str,
    now: Millis,
) -> Result<(Reviewer, Vec<i64>)> {
    let id = reviewer_id(c, name)?;
    let ids = project_ids(c, projects)?;
    c.execute(
        "UPDATE reviewers SET tiers = ?1 WHERE id = ?2",
        params![serde_json::to_string(tiers)?, id],
    )?;
    c.execute("DELETE FROM reviewer_projects WHERE reviewer_id = ?1", [id])?;
    for p in &ids {
        c.execute(
            "INSERT INTO reviewer_projects (reviewer_id, project_id) VALUES (?1, ?2)",
            params![id, p],
        )?;
    }
    let grant = ev::ReviewerGrant {
        reviewer_id: id,
        name: name.to_string(),
        tiers: tiers.to_vec(),
        projects: projects.to_vec(),
    };
    event(c, None, None, None, now, actor, &Event::ReviewerUpdated(grant.clone()))?;
    let granted = Event::ReviewerGranted(grant);
    for p in &ids {
        event(c, Some(*p), None, None, now, actor, &granted)?;
    }
    // A grant withdrawn ends the reviewer's leases on that project now, not at expiry.
    let freed =
        super::work::cancel_reviewer_leases(c, id, |p| !ids.contains(&p), "the reviewer's grant was withdrawn", now)?;
    Ok((reviewer(c, id)?, freed))
}

pub(super) fn add_reviewer_key(c: &Connection, name: &str, key_hash: &str, actor: &str, now: Millis) -> Result<()> {
    let id = reviewer_id(c, name)?;
    c.execute(
        "INSERT INTO api_keys (hash, kind, reviewer_id, created_at) VALUES (?1, 'reviewer', ?2, ?3)",
        params![key_hash, id, now],
    )?;
    let data = Event::KeyCreated(ev::KeyCreated {
        scope: "reviewer".into(),
        projects: None,
        reviewer: Some(name.to_string()),
    });
    event(c, None, None, None, now, actor, &data)
}

pub(super) fn keys(c: &Connection) -> Result<Vec<KeyRecord>> {
    let names: std::collections::HashMap<i64, String> = c
        .prepare_cached("SELECT id, name FROM projects")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    c.prepare_cached(
        "SELECT k.hash, k.kind, v.name, k.projects, k.created_at, k.revoked_at
         FROM api_keys k LEFT JOIN reviewers v ON v.id = k.reviewer_id ORDER BY k.created_at, k.hash",
    )?
    .query_map([], |r| {
        let ids: Vec<i64> = match r.get::<_, Option<String>>(3)? {
            Some(_) => serde_json::from_value(json_col(r, 3)?).unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(KeyRecord {
            hash: r.get(0)?,
            kind: r.get(1)?,
            reviewer: r.get(2)?,
            projects: ids.iter().filter_map(|id| names.get(id).cloned()).collect(),
            created_at: r.get(4)?,
            revoked_at: r.get(5)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

pub(super) fn revoke_key(c: &Connection, key_hash: &str, actor: &str, now: Millis) -> Result<()> {
    let kind: String = c
        .prepare_cached("SELECT kind FROM api_keys WHERE hash = ?1")?
        .query_row([key_hash], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::not_found("key"))?;
    let others: i64 = c.query_row(
        "SELECT count(*) FROM api_keys WHERE kind = 'admin' AND revoked_at IS NULL AND hash <> ?1",
        [key_hash],
        |r| r.get(0),
    )?;
    if kind == "admin" && others == 0 {
        return Err(StoreError::conflict(
            "last_admin_key",
            "this is the only admin key; revoking it would lock everyone out",
        ));
    }
    c.execute(
        "UPDATE api_keys SET revoked_at = ?1 WHERE hash = ?2 AND revoked_at IS NULL",
        params![now, key_hash],
    )?;
    c.execute("DELETE FROM web_sessions WHERE key_hash = ?1", [key_hash])?;
    let data = Event::KeyRevoked(ev::KeyRevoked {
        scope: kind.clone(),
        key: key_hash[..key_hash.len().min(12)].to_string(),
    });
    event(c, None, None, None, now, actor, &data)
}

pub(super) fn set_password(c: &Connection, name: &str, hash: Option<&str>, actor: &str, now: Millis) -> Result<()> {
    let id = reviewer_id(c, name)?;
    c.execute(
        "UPDATE reviewers SET password_hash = ?1 WHERE id = ?2",
        params![hash, id],
    )?;
    // A changed (or removed) password ends the sessions it opened.
    c.execute("DELETE FROM web_sessions WHERE reviewer_id = ?1", [id])?;
    let data = Event::ReviewerPassword(ev::ReviewerPassword {
        reviewer_id: id,
        reviewer: name.to_string(),
        password: hash.is_some(),
    });
    event(c, None, None, None, now, actor, &data)
}

pub(super) fn password_hash(c: &Connection, name: &str) -> Result<Option<(i64, String)>> {
    let row: Option<(i64, Option<String>)> = c
        .prepare_cached("SELECT id, password_hash FROM reviewers WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(id, h)| h.map(|h| (id, h))))
}

pub(super) fn create_session(
    c: &Connection,
    token_hash: &str,
    owner: &SessionOwner,
    expires_at: Millis,
    now: Millis,
) -> Result<()> {
    c.prepare_cached("DELETE FROM web_sessions WHERE expires_at <= ?1")?
        .execute([now])?;
    let (key_hash, reviewer_id) = match owner {
        SessionOwner::Key(h) => (Some(h.as_str()), None),
        SessionOwner::Reviewer(id) => (None, Some(*id)),
    };
    c.prepare_cached(
        "INSERT INTO web_sessions (hash, key_hash, reviewer_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![token_hash, key_hash, reviewer_id, now, expires_at])?;
    Ok(())
}

pub(super) fn session(c: &Connection, token_hash: &str, now: Millis) -> Result<Option<Principal>> {
    let row: Option<(Option<String>, Option<i64>)> = c
        .prepare_cached("SELECT key_hash, reviewer_id FROM web_sessions WHERE hash = ?1 AND expires_at > ?2")?
        .query_row(params![token_hash, now], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        None => Ok(None),
        Some((Some(key), _)) => principal(c, &key),
        Some((None, Some(id))) => Ok(Some(Principal::Reviewer(reviewer(c, id)?))),
        Some((None, None)) => Err(StoreError::Backend("a session with no owner".into())),
    }
}

pub(super) fn end_session(c: &Connection, token_hash: &str) -> Result<()> {
    c.execute("DELETE FROM web_sessions WHERE hash = ?1", [token_hash])?;
    Ok(())
}
