//! The SQL behind the browser console on PostgreSQL (the same model as
//! `sqlite/console.rs`), inside the caller's transaction.

use serde_json::json;
use sqlx::PgConnection;

use super::ops::{EVENT_COLUMNS, EventRow, event, event_record, parse, project_ids, reviewer};
use super::{TxError, TxResult};
use crate::*;

async fn reviewer_id(c: &mut PgConnection, name: &str) -> TxResult<i64> {
    sqlx::query_scalar("SELECT id FROM reviewers WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("reviewer '{name}'")).into())
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
    let data = json!({"reviewer_id": id, "reviewer": name, "password": hash.is_some()});
    event(c, None, None, None, now, "reviewer.password", actor, &data).await
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
        Some((Some(key), _)) => super::ops::principal(c, &key).await,
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

pub(super) async fn projects(c: &mut PgConnection) -> TxResult<Vec<Project>> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM projects ORDER BY name")
        .fetch_all(&mut *c)
        .await?;
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        match super::ops::project(c, &n).await? {
            Some(p) => out.push(p),
            None => return Err(StoreError::Backend(format!("project '{n}' vanished")).into()),
        }
    }
    Ok(out)
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
    let data = json!({"reviewer_id": id, "name": name, "tiers": tiers, "projects": projects});
    event(c, None, None, None, now, "reviewer.updated", actor, &data).await?;
    for p in &ids {
        event(c, Some(*p), None, None, now, "reviewer.granted", actor, &data).await?;
    }
    reviewer(c, id).await
}

pub(super) async fn hold_reviewer(
    c: &mut PgConnection,
    project_id: i64,
    name: &str,
    reason: &str,
    actor: &str,
    now: Millis,
) -> TxResult<()> {
    let id = super::ops::reviewer_in_project(c, name, project_id).await?;
    sqlx::query(
        "INSERT INTO reviewer_quality (project_id, reviewer_id, held_at, held_reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (project_id, reviewer_id) DO UPDATE SET held_at = excluded.held_at, held_reason = excluded.held_reason",
    )
    .bind(project_id)
    .bind(id)
    .bind(now)
    .bind(reason)
    .execute(&mut *c)
    .await?;
    let data = json!({"reviewer_id": id, "reviewer": name, "reason": reason});
    event(c, Some(project_id), None, None, now, "reviewer.held", actor, &data).await
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
    let data = json!({"scope": "reviewer", "reviewer": name});
    event(c, None, None, None, now, "key.created", actor, &data).await
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
    let data = json!({"scope": kind, "key": &key_hash[..key_hash.len().min(12)]});
    event(c, None, None, None, now, "key.revoked", actor, &data).await
}

pub(super) async fn answers_on_day(c: &mut PgConnection, reviewer_id: i64, day: i64) -> TxResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM reviews WHERE reviewer_id = $1 AND answered_at >= $2 AND answered_at < $2 + $3",
    )
    .bind(reviewer_id)
    .bind(day * DAY_MS)
    .bind(DAY_MS)
    .fetch_one(&mut *c)
    .await?)
}

pub(super) async fn activity(
    c: &mut PgConnection,
    project_id: i64,
    since: Millis,
    bucket_ms: i64,
) -> TxResult<Vec<ActivityBucket>> {
    let decided: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT (created_at / $3) * $3, count(*) FILTER (WHERE outcome = 'auto'), count(*) FILTER (WHERE outcome = 'review')
         FROM items WHERE project_id = $1 AND created_at >= $2 AND gold_label IS NULL GROUP BY 1",
    )
    .bind(project_id)
    .bind(since)
    .bind(bucket_ms)
    .fetch_all(&mut *c)
    .await?;
    let answered: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT (w.answered_at / $3) * $3, count(*) FROM reviews w JOIN tasks t ON t.id = w.task_id
         WHERE t.project_id = $1 AND w.answered_at >= $2 GROUP BY 1",
    )
    .bind(project_id)
    .bind(since)
    .bind(bucket_ms)
    .fetch_all(&mut *c)
    .await?;
    Ok(ActivityBucket::merge(decided, answered))
}

pub(super) async fn latest_events(c: &mut PgConnection, project_id: i64, limit: usize) -> TxResult<Vec<EventRecord>> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} WHERE e.project_id = $1 AND e.seq IS NOT NULL ORDER BY e.seq DESC LIMIT $2");
    let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .bind(limit as i64)
        .fetch_all(&mut *c)
        .await?;
    rows.into_iter().map(event_record).collect()
}

pub(super) async fn overdue_tasks(
    c: &mut PgConnection,
    project_id: i64,
    cutoffs: &[(String, Millis)],
) -> TxResult<Vec<i64>> {
    let mut out = Vec::with_capacity(cutoffs.len());
    for (queue, before) in cutoffs {
        out.push(
            sqlx::query_scalar(
                "SELECT count(*) FROM tasks WHERE project_id = $1 AND queue = $2 AND state = 'open' AND NOT gold
                 AND created_at < $3",
            )
            .bind(project_id)
            .bind(queue)
            .bind(before)
            .fetch_one(&mut *c)
            .await?,
        );
    }
    Ok(out)
}
