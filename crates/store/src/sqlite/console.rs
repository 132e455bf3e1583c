//! The SQL behind the browser console: passwords, sessions, accounts and keys, and the
//! dashboard's time series. Write operations run inside the writer's transaction.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::ops::{EVENT_COLUMNS, event, event_row, json_col, project_ids, reviewer};
use crate::*;

fn reviewer_id(c: &Connection, name: &str) -> Result<i64> {
    c.prepare_cached("SELECT id FROM reviewers WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::not_found(format!("reviewer '{name}'")))
}

pub(super) fn set_password(c: &Connection, name: &str, hash: Option<&str>, actor: &str, now: Millis) -> Result<()> {
    let id = reviewer_id(c, name)?;
    c.execute(
        "UPDATE reviewers SET password_hash = ?1 WHERE id = ?2",
        params![hash, id],
    )?;
    // A changed (or removed) password ends the sessions it opened.
    c.execute("DELETE FROM web_sessions WHERE reviewer_id = ?1", [id])?;
    let data = json!({"reviewer_id": id, "reviewer": name, "password": hash.is_some()});
    event(c, None, None, None, now, "reviewer.password", actor, &data)
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
        Some((Some(key), _)) => super::ops::principal(c, &key),
        Some((None, Some(id))) => Ok(Some(Principal::Reviewer(reviewer(c, id)?))),
        Some((None, None)) => Err(StoreError::Backend("a session with no owner".into())),
    }
}

pub(super) fn end_session(c: &Connection, token_hash: &str) -> Result<()> {
    c.execute("DELETE FROM web_sessions WHERE hash = ?1", [token_hash])?;
    Ok(())
}

pub(super) fn projects(c: &Connection) -> Result<Vec<Project>> {
    let names = c
        .prepare_cached("SELECT name FROM projects ORDER BY name")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    names
        .iter()
        .map(|n| super::ops::project(c, n)?.ok_or_else(|| StoreError::Backend(format!("project '{n}' vanished"))))
        .collect()
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
) -> Result<Reviewer> {
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
    let data = json!({"reviewer_id": id, "name": name, "tiers": tiers, "projects": projects});
    event(c, None, None, None, now, "reviewer.updated", actor, &data)?;
    for p in &ids {
        event(c, Some(*p), None, None, now, "reviewer.granted", actor, &data)?;
    }
    reviewer(c, id)
}

pub(super) fn hold_reviewer(
    c: &Connection,
    project_id: i64,
    name: &str,
    reason: &str,
    actor: &str,
    now: Millis,
) -> Result<()> {
    let id = super::ops::reviewer_in_project(c, name, project_id)?;
    c.prepare_cached(
        "INSERT INTO reviewer_quality (project_id, reviewer_id, held_at, held_reason) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, reviewer_id) DO UPDATE SET held_at = excluded.held_at, held_reason = excluded.held_reason",
    )?
    .execute(params![project_id, id, now, reason])?;
    let data = json!({"reviewer_id": id, "reviewer": name, "reason": reason});
    event(c, Some(project_id), None, None, now, "reviewer.held", actor, &data)
}

pub(super) fn add_reviewer_key(c: &Connection, name: &str, key_hash: &str, actor: &str, now: Millis) -> Result<()> {
    let id = reviewer_id(c, name)?;
    c.execute(
        "INSERT INTO api_keys (hash, kind, reviewer_id, created_at) VALUES (?1, 'reviewer', ?2, ?3)",
        params![key_hash, id, now],
    )?;
    let data = json!({"scope": "reviewer", "reviewer": name});
    event(c, None, None, None, now, "key.created", actor, &data)
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
    let data = json!({"scope": kind, "key": &key_hash[..key_hash.len().min(12)]});
    event(c, None, None, None, now, "key.revoked", actor, &data)
}

pub(super) fn answers_on_day(c: &Connection, reviewer_id: i64, day: i64) -> Result<i64> {
    c.prepare_cached("SELECT coalesce(sum(answers), 0) FROM reviewer_days WHERE day = ?1 AND reviewer_id = ?2")?
        .query_row(params![day, reviewer_id], |r| r.get(0))
        .map_err(Into::into)
}

pub(super) fn activity(c: &Connection, project_id: i64, since: Millis, bucket_ms: i64) -> Result<Vec<ActivityBucket>> {
    let decided = c
        .prepare_cached(
            "SELECT (created_at / ?3) * ?3, coalesce(sum(outcome = 'auto'), 0), coalesce(sum(outcome = 'review'), 0)
             FROM items WHERE project_id = ?1 AND created_at >= ?2 AND gold_label IS NULL GROUP BY 1",
        )?
        .query_map(params![project_id, since, bucket_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let answered = c
        .prepare_cached(
            "SELECT (w.answered_at / ?3) * ?3, count(*) FROM reviews w JOIN tasks t ON t.id = w.task_id
             WHERE t.project_id = ?1 AND w.answered_at >= ?2 GROUP BY 1",
        )?
        .query_map(params![project_id, since, bucket_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ActivityBucket::merge(decided, answered))
}

pub(super) fn latest_events(c: &Connection, project_id: i64, limit: usize) -> Result<Vec<EventRecord>> {
    let sql = format!("SELECT {EVENT_COLUMNS} WHERE e.project_id = ?1 ORDER BY e.seq DESC LIMIT ?2");
    c.prepare_cached(&sql)?
        .query_map(params![project_id, limit as i64], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Into::into)
}

pub(super) fn overdue_tasks(c: &Connection, project_id: i64, cutoffs: &[(String, Millis)]) -> Result<Vec<i64>> {
    cutoffs
        .iter()
        .map(|(queue, before)| {
            c.prepare_cached(
                "SELECT count(*) FROM tasks WHERE project_id = ?1 AND queue = ?2 AND state = 'open' AND gold = 0
                 AND created_at < ?3",
            )?
            .query_row(params![project_id, queue, before], |r| r.get(0))
            .map_err(Into::into)
        })
        .collect()
}
