//! The SQL of every store operation on PostgreSQL, inside the caller's transaction.
//! The same model as `sqlite/ops.rs`; what differs is how rows are locked: claims use
//! `FOR UPDATE SKIP LOCKED`; an answer locks its task row first, and so does lease expiry,
//! so the two never take locks in opposite orders.

use std::collections::HashMap;

use flywheel_core::consensus::Scorer;
use flywheel_core::policy::ConsensusMethod;
use flywheel_core::quality;
use flywheel_core::task::{self, Next, Source};
use flywheel_core::{Answer, Decision, LabelSet, Outcome, Prediction, Route, Stage, ValidationError};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, PgConnection};

use super::{TxError, TxResult};
use crate::*;

#[allow(clippy::too_many_arguments)]
pub(super) async fn event(
    c: &mut PgConnection,
    project_id: Option<i64>,
    item_id: Option<i64>,
    task_id: Option<i64>,
    now: Millis,
    kind: &str,
    actor: &str,
    data: &Value,
) -> TxResult<()> {
    sqlx::query(
        "INSERT INTO events (project_id, item_id, task_id, at, kind, actor, data) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
    )
    .bind(project_id)
    .bind(item_id)
    .bind(task_id)
    .bind(now)
    .bind(kind)
    .bind(actor)
    .bind(data.to_string())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Sends a notice to every node; delivered only if the transaction commits.
async fn notify(c: &mut PgConnection, channel: &str, notice: &Notice) -> TxResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(serde_json::to_string(notice)?)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(s: &str) -> TxResult<T> {
    Ok(serde_json::from_str(s)?)
}

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
        "key.created",
        "system",
        &json!({"scope": "admin"}),
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
        "INSERT INTO projects (name, labels, policy, policy_version, created_at) VALUES ($1, $2::jsonb, $3::jsonb, 1, $4) RETURNING id",
    )
    .bind(&new.name)
    .bind(serde_json::to_string(&new.labels)?)
    .bind(&policy)
    .bind(now)
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
        "project.created",
        actor,
        &json!({"name": new.name, "labels": new.labels, "policy_version": 1, "policy": new.policy}),
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
    })
}

pub(super) async fn project(c: &mut PgConnection, name: &str) -> TxResult<Option<Project>> {
    let row: Option<(i64, String, String, String, i32, i64)> = sqlx::query_as(
        "SELECT id, name, labels::text, policy::text, policy_version, created_at FROM projects WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|(id, name, labels, policy, version, created_at)| {
        Ok(Project {
            id,
            name,
            labels: parse(&labels)?,
            policy: parse(&policy)?,
            policy_version: version as u32,
            created_at,
        })
    })
    .transpose()
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
        "policy.updated",
        actor,
        &json!({"policy_version": version, "policy": policy}),
    )
    .await?;
    notify(c, channel, &Notice::ProjectChanged { name: name.to_string() }).await?;
    Ok(version as u32)
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
    let data = json!({"reviewer_id": id, "name": new.name, "tiers": new.tiers, "projects": new.projects});
    event(c, None, None, None, now, "reviewer.created", actor, &data).await?;
    for p in &projects {
        event(c, Some(*p), None, None, now, "reviewer.granted", actor, &data).await?;
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
    let data = json!({"scope": "service", "projects": new.projects});
    event(c, None, None, None, now, "key.created", actor, &data).await?;
    for p in &projects {
        event(c, Some(*p), None, None, now, "key.created", actor, &data).await?;
    }
    Ok(())
}

/// An item with its JSON already serialised.
pub(super) struct PreparedItem {
    external_id: String,
    payload: String,
    attributes: String,
    prediction: Option<String>,
    model: Option<String>,
    model_version: Option<String>,
    decision: Decision,
    decision_json: String,
}

impl PreparedItem {
    pub(super) fn new(item: NewItem) -> Result<Self> {
        Ok(Self {
            payload: item.payload.to_string(),
            attributes: item.attributes.to_string(),
            prediction: item.prediction.as_ref().map(serde_json::to_string).transpose()?,
            model: item.prediction.as_ref().map(|p| p.model.clone()),
            model_version: item.prediction.as_ref().and_then(|p| p.version.clone()),
            decision_json: serde_json::to_string(&item.decision)?,
            decision: item.decision,
            external_id: item.external_id,
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_task(
    c: &mut PgConnection,
    project_id: i64,
    item_id: i64,
    stage: Stage,
    route: &Route,
    reason: Option<&str>,
    now: Millis,
) -> TxResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, reason, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 'open', $8, $9) RETURNING id",
    )
    .bind(project_id)
    .bind(item_id)
    .bind(stage.as_str())
    .bind(&route.queue)
    .bind(i16::from(route.tier))
    .bind(route.priority)
    .bind(i16::from(route.overlap))
    .bind(reason)
    .bind(now)
    .fetch_one(&mut *c)
    .await?)
}

#[allow(clippy::too_many_arguments)]
async fn insert_label(
    c: &mut PgConnection,
    project_id: i64,
    item_id: i64,
    label: &str,
    source: Source,
    model: Option<&str>,
    model_version: Option<&str>,
    policy_version: u32,
    now: Millis,
) -> TxResult<()> {
    sqlx::query(
        "INSERT INTO labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(project_id)
    .bind(item_id)
    .bind(label)
    .bind(source.as_str())
    .bind(model)
    .bind(model_version)
    .bind(policy_version as i32)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Every new item, its task (a review, or an auto decision's audit), its label (auto) and
/// its `item.decided` event, written by one statement: one round trip, atomic without a
/// transaction around it. (One statement per row cost ~6 round trips a decision, most of
/// the node's CPU; see BENCHMARKS.md.) Items are inserted in batch order, so ids, task
/// ids, label cursors and event sequence numbers follow it. The notice that tasks are
/// waiting is sent by the same statement, so it is delivered only if it commits.
const SUBMIT_ITEMS: &str = "
WITH input AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int4[],
                         $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::int2[],
                         $16::int4[], $17::int2[], $18::text[])
        WITH ORDINALITY AS u(external_id, payload, attributes, prediction, decision, outcome, policy_version,
                             model, model_version, resolved_label, resolution, stage, queue, tier,
                             priority, overlap, reason, n)
), ins AS (
    INSERT INTO items (project_id, external_id, payload, attributes, prediction, decision, outcome, policy_version,
                       model, model_version, created_at, resolved_label, resolution, resolved_at)
    SELECT $1, external_id, payload::jsonb, attributes::jsonb, prediction::jsonb, decision::jsonb, outcome,
           policy_version, model, model_version, $19, resolved_label, resolution::jsonb,
           CASE WHEN resolved_label IS NULL THEN NULL ELSE $19::int8 END
    FROM input ORDER BY n
    ON CONFLICT (project_id, external_id) DO NOTHING
    RETURNING id, external_id
), new AS (
    -- An external id twice in the batch: its first occurrence is the one inserted.
    SELECT DISTINCT ON (i.external_id) i.*, ins.id AS item_id
    FROM ins JOIN input i USING (external_id) ORDER BY i.external_id, i.n
), task AS (
    INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, reason, created_at)
    SELECT $1, item_id, stage, queue, tier, priority, overlap, overlap, 'open', reason, $19
    FROM new WHERE stage IS NOT NULL ORDER BY n
    RETURNING id, item_id
), label AS (
    INSERT INTO labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at)
    SELECT $1, item_id, resolved_label, 'auto', model, model_version, policy_version, $19
    FROM new WHERE resolved_label IS NOT NULL ORDER BY n
), event AS (
    INSERT INTO events (project_id, item_id, task_id, at, kind, actor, data)
    SELECT $1, new.item_id, task.id, $19, 'item.decided', $20,
           jsonb_build_object('decision', new.decision::jsonb,
                              'tasks', CASE WHEN task.id IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(task.id) END,
                              'resolved', new.resolved_label)
    FROM new LEFT JOIN task USING (item_id) ORDER BY new.n
)
SELECT n, item_id, (SELECT count(*) FROM (SELECT pg_notify($21, $22) FROM task LIMIT 1) notified) AS notified
FROM new";

/// Submits items in one statement (see [`SUBMIT_ITEMS`]); an external id stored before,
/// or earlier in the batch, is answered with its stored decision.
pub(super) async fn submit_items(
    c: &mut PgConnection,
    channel: &str,
    project_id: i64,
    items: &[PreparedItem],
    actor: &str,
    now: Millis,
) -> TxResult<Vec<Submitted>> {
    let n = items.len();
    let mut cols = SubmitColumns::with_capacity(n);
    for it in items {
        cols.push(it, now)?;
    }
    let notice = serde_json::to_string(&Notice::TasksAvailable { project_id })?;
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(SUBMIT_ITEMS)
        .bind(project_id)
        .bind(items.iter().map(|it| it.external_id.as_str()).collect::<Vec<_>>())
        .bind(items.iter().map(|it| it.payload.as_str()).collect::<Vec<_>>())
        .bind(items.iter().map(|it| it.attributes.as_str()).collect::<Vec<_>>())
        .bind(items.iter().map(|it| it.prediction.as_deref()).collect::<Vec<_>>())
        .bind(items.iter().map(|it| it.decision_json.as_str()).collect::<Vec<_>>())
        .bind(cols.outcome)
        .bind(
            items
                .iter()
                .map(|it| it.decision.policy_version as i32)
                .collect::<Vec<_>>(),
        )
        .bind(items.iter().map(|it| it.model.as_deref()).collect::<Vec<_>>())
        .bind(items.iter().map(|it| it.model_version.as_deref()).collect::<Vec<_>>())
        .bind(cols.resolved_label)
        .bind(cols.resolution)
        .bind(cols.stage)
        .bind(cols.queue)
        .bind(cols.tier)
        .bind(cols.priority)
        .bind(cols.overlap)
        .bind(cols.reason)
        .bind(now)
        .bind(actor)
        .bind(channel)
        .bind(notice)
        .fetch_all(&mut *c)
        .await?;
    let mut item_ids: Vec<Option<i64>> = vec![None; n];
    for (ordinal, item_id, _) in rows {
        item_ids[(ordinal - 1) as usize] = Some(item_id);
    }
    // Duplicates: of an item earlier in this batch, or of one stored before (read now, so
    // one inserted meanwhile by a concurrent request, which our insert waited for, is seen).
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut stored_before = Vec::new();
    for (i, it) in items.iter().enumerate() {
        match item_ids[i] {
            Some(_) => {
                first.insert(&it.external_id, i);
            }
            None if first.contains_key(it.external_id.as_str()) => {}
            None => stored_before.push(it.external_id.as_str()),
        }
    }
    let stored: HashMap<String, (i64, String)> = if stored_before.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (String, i64, String)>(
            "SELECT external_id, id, decision::text FROM items WHERE project_id = $1 AND external_id = ANY($2)",
        )
        .bind(project_id)
        .bind(&stored_before)
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|(e, id, d)| (e, (id, d)))
        .collect()
    };
    let mut out = Vec::with_capacity(n);
    for (i, it) in items.iter().enumerate() {
        let submitted = match (item_ids[i], first.get(it.external_id.as_str())) {
            (Some(item_id), _) => Submitted {
                external_id: it.external_id.clone(),
                item_id,
                decision: it.decision.clone(),
                duplicate: false,
            },
            (None, Some(&j)) => Submitted {
                external_id: it.external_id.clone(),
                item_id: item_ids[j].expect("inserted"),
                decision: items[j].decision.clone(),
                duplicate: true,
            },
            (None, None) => {
                let (item_id, decision) = stored.get(&it.external_id).ok_or_else(|| {
                    StoreError::Backend(format!("item '{}' was neither inserted nor found", it.external_id))
                })?;
                Submitted {
                    external_id: it.external_id.clone(),
                    item_id: *item_id,
                    decision: parse(decision)?,
                    duplicate: true,
                }
            }
        };
        out.push(submitted);
    }
    Ok(out)
}

/// The columns of [`SUBMIT_ITEMS`] that are worked out from each item's decision.
struct SubmitColumns {
    outcome: Vec<&'static str>,
    resolved_label: Vec<Option<String>>,
    resolution: Vec<Option<String>>,
    stage: Vec<Option<&'static str>>,
    queue: Vec<Option<String>>,
    tier: Vec<Option<i16>>,
    priority: Vec<Option<i32>>,
    overlap: Vec<Option<i16>>,
    reason: Vec<Option<&'static str>>,
}

impl SubmitColumns {
    fn with_capacity(n: usize) -> Self {
        Self {
            outcome: Vec::with_capacity(n),
            resolved_label: Vec::with_capacity(n),
            resolution: Vec::with_capacity(n),
            stage: Vec::with_capacity(n),
            queue: Vec::with_capacity(n),
            tier: Vec::with_capacity(n),
            priority: Vec::with_capacity(n),
            overlap: Vec::with_capacity(n),
            reason: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, it: &PreparedItem, now: Millis) -> TxResult<()> {
        let d = &it.decision;
        let (outcome, auto_label, task) = match &d.outcome {
            Outcome::Auto { label } => ("auto", Some(label), d.audit.as_ref().map(|r| (Stage::Audit, r))),
            Outcome::Review { route } => ("review", None, Some((Stage::Review, route))),
        };
        let resolution = auto_label
            .map(|l| {
                serde_json::to_string(&Resolution {
                    label: l.clone(),
                    source: Source::Auto,
                    method: format!("rule:{}", d.rule),
                    confidence: 1.0,
                    reviewers: vec![],
                    resolved_at: now,
                })
            })
            .transpose()?;
        self.outcome.push(outcome);
        self.resolved_label.push(auto_label.cloned());
        self.resolution.push(resolution);
        self.stage.push(task.map(|(s, _)| s.as_str()));
        self.queue.push(task.map(|(_, r)| r.queue.clone()));
        self.tier.push(task.map(|(_, r)| i16::from(r.tier)));
        self.priority.push(task.map(|(_, r)| r.priority));
        self.overlap.push(task.map(|(_, r)| i16::from(r.overlap)));
        self.reason
            .push(task.and_then(|(s, _)| (s == Stage::Audit).then_some("audit sample")));
        Ok(())
    }
}

/// A claim without gold, in one statement (one round trip instead of seven): the held
/// check, the pick (`FOR UPDATE SKIP LOCKED`), the slot taken, the lease, the reviewer
/// marked as having seen the item, the event, and the item read back. `{queue}` is the
/// queue filter, written into the SQL so that the planner walks the right index.
const CLAIM: &str = "
WITH held AS (
    SELECT held_reason FROM reviewer_quality WHERE project_id = $1 AND reviewer_id = $2 AND held_at IS NOT NULL
), pick AS (
    SELECT t.id, t.item_id, t.stage, t.queue, t.tier FROM tasks t
    WHERE t.project_id = $1 AND t.available > 0 AND NOT t.gold AND t.tier = ANY($3) {queue}
      AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = t.item_id AND r.reviewer_id = $2)
      AND NOT EXISTS (SELECT 1 FROM held)
    ORDER BY t.priority DESC, t.item_id, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED
), taken AS (
    UPDATE tasks SET available = available - 1 FROM pick WHERE tasks.id = pick.id
), lease AS (
    INSERT INTO leases (task_id, item_id, reviewer_id, granted_at, expires_at, lease_ms, state)
    SELECT id, item_id, $2, $5, $6, $7, 'active' FROM pick
    RETURNING id, task_id, item_id
), seen AS (
    INSERT INTO item_reviewers (item_id, reviewer_id) SELECT item_id, $2 FROM pick ON CONFLICT DO NOTHING
), event AS (
    INSERT INTO events (project_id, item_id, task_id, at, kind, actor, data)
    SELECT $1, lease.item_id, lease.task_id, $5, 'lease.granted', $8,
           jsonb_build_object('lease_id', lease.id, 'reviewer_id', $2::int8, 'expires_at', $6::int8, 'stage', pick.stage)
    FROM lease JOIN pick ON pick.id = lease.task_id
)
SELECT EXISTS (SELECT 1 FROM held), (SELECT held_reason FROM held),
       p.id, p.stage, p.queue, p.tier, lease.id, i.external_id, i.payload::text, i.attributes::text, i.prediction::text
FROM (SELECT 1) one
LEFT JOIN (pick p JOIN lease ON lease.task_id = p.id JOIN items i ON i.id = p.item_id) ON true";

type ClaimRow = (
    bool,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i16>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn claim_without_gold(c: &mut PgConnection, req: &ClaimRequest, now: Millis) -> TxResult<Option<ClaimedTask>> {
    let queue = if req.queue.is_some() {
        "AND t.queue = $4"
    } else {
        "AND $4::text IS NULL"
    };
    let sql = CLAIM.replace("{queue}", queue);
    let tiers: Vec<i16> = req.tiers.iter().map(|t| i16::from(*t)).collect();
    let expires = now + req.lease_ms;
    let row: ClaimRow = sqlx::query_as(AssertSqlSafe(sql))
        .bind(req.project_id)
        .bind(req.reviewer_id)
        .bind(&tiers)
        .bind(&req.queue)
        .bind(now)
        .bind(expires)
        .bind(req.lease_ms)
        .bind(format!("reviewer:{}", req.reviewer_name))
        .fetch_one(&mut *c)
        .await?;
    let (held, reason, task_id, stage, queue, tier, lease_id, external_id, payload, attributes, prediction) = row;
    if held {
        return Err(StoreError::held(&req.reviewer_name, reason.as_deref()).into());
    }
    let (
        Some(task_id),
        Some(stage),
        Some(queue),
        Some(tier),
        Some(lease_id),
        Some(external_id),
        Some(payload),
        Some(attributes),
    ) = (task_id, stage, queue, tier, lease_id, external_id, payload, attributes)
    else {
        return Ok(None);
    };
    Ok(Some(ClaimedTask {
        task_id,
        lease_id,
        lease_expires_at: expires,
        stage: Stage::parse(&stage).ok_or_else(|| StoreError::Backend(format!("unknown stage {stage}")))?,
        queue,
        tier: tier as u8,
        external_id,
        payload: parse(&payload)?,
        attributes: parse(&attributes)?,
        prediction: prediction.as_deref().map(parse::<Prediction>).transpose()?,
    }))
}

pub(super) async fn claim(c: &mut PgConnection, req: &ClaimRequest, now: Millis) -> TxResult<Option<ClaimedTask>> {
    if req.tiers.is_empty() {
        return Ok(None);
    }
    if !req.gold {
        return claim_without_gold(c, req, now).await;
    }
    let held: Option<Option<String>> = sqlx::query_scalar(
        "SELECT held_reason FROM reviewer_quality WHERE project_id = $1 AND reviewer_id = $2 AND held_at IS NOT NULL",
    )
    .bind(req.project_id)
    .bind(req.reviewer_id)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(reason) = held {
        return Err(StoreError::held(&req.reviewer_name, reason.as_deref()).into());
    }
    let tiers: Vec<i16> = req.tiers.iter().map(|t| i16::from(*t)).collect();
    let sql = if req.queue.is_some() {
        "SELECT t.id, t.item_id, t.stage, t.queue, t.tier, t.priority, t.overlap FROM tasks t
         WHERE t.project_id = $1 AND t.available > 0 AND NOT t.gold AND t.tier = ANY($3) AND t.queue = $4
           AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = t.item_id AND r.reviewer_id = $2)
         ORDER BY t.priority DESC, t.item_id, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED"
    } else {
        "SELECT t.id, t.item_id, t.stage, t.queue, t.tier, t.priority, t.overlap FROM tasks t
         WHERE t.project_id = $1 AND t.available > 0 AND NOT t.gold AND t.tier = ANY($3) AND $4::text IS NULL
           AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = t.item_id AND r.reviewer_id = $2)
         ORDER BY t.priority DESC, t.item_id, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED"
    };
    let row: Option<(i64, i64, String, String, i16, i32, i16)> = sqlx::query_as(sql)
        .bind(req.project_id)
        .bind(req.reviewer_id)
        .bind(&tiers)
        .bind(&req.queue)
        .fetch_optional(&mut *c)
        .await?;
    let Some((mut task_id, mut item_id, stage, queue, tier, priority, overlap)) = row else {
        return Ok(None);
    };
    let stage = Stage::parse(&stage).ok_or_else(|| StoreError::Backend(format!("unknown stage {stage}")))?;
    // Gold passes for the regular task it replaces (see the SQLite backend).
    let gold_item: Option<i64> = if req.gold && stage == Stage::Review {
        sqlx::query_scalar(
            "SELECT i.id FROM items i WHERE i.project_id = $1 AND i.gold_label IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = i.id AND r.reviewer_id = $2)
             ORDER BY random() LIMIT 1",
        )
        .bind(req.project_id)
        .bind(req.reviewer_id)
        .fetch_optional(&mut *c)
        .await?
    } else {
        None
    };
    let expires = now + req.lease_ms;
    match gold_item {
        Some(gold) => {
            task_id = sqlx::query_scalar(
                "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, created_at, gold)
                 VALUES ($1, $2, 'review', $3, $4, $5, $6, 0, 'open', $7, true) RETURNING id",
            )
            .bind(req.project_id)
            .bind(gold)
            .bind(&queue)
            .bind(tier)
            .bind(priority)
            .bind(overlap)
            .bind(now)
            .fetch_one(&mut *c)
            .await?;
            item_id = gold;
        }
        None => {
            sqlx::query("UPDATE tasks SET available = available - 1 WHERE id = $1")
                .bind(task_id)
                .execute(&mut *c)
                .await?;
        }
    }
    let lease_id: i64 = sqlx::query_scalar(
        "INSERT INTO leases (task_id, item_id, reviewer_id, granted_at, expires_at, lease_ms, state)
         VALUES ($1, $2, $3, $4, $5, $6, 'active') RETURNING id",
    )
    .bind(task_id)
    .bind(item_id)
    .bind(req.reviewer_id)
    .bind(now)
    .bind(expires)
    .bind(req.lease_ms)
    .fetch_one(&mut *c)
    .await?;
    sqlx::query("INSERT INTO item_reviewers (item_id, reviewer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(item_id)
        .bind(req.reviewer_id)
        .execute(&mut *c)
        .await?;
    let (external_id, payload, attributes, prediction): (String, String, String, Option<String>) = sqlx::query_as(
        "SELECT external_id, payload::text, attributes::text, prediction::text FROM items WHERE id = $1",
    )
    .bind(item_id)
    .fetch_one(&mut *c)
    .await?;
    event(
        c,
        Some(req.project_id),
        Some(item_id),
        Some(task_id),
        now,
        "lease.granted",
        &format!("reviewer:{}", req.reviewer_name),
        &json!({"lease_id": lease_id, "reviewer_id": req.reviewer_id, "expires_at": expires, "stage": stage}),
    )
    .await?;
    Ok(Some(ClaimedTask {
        task_id,
        lease_id,
        lease_expires_at: expires,
        stage,
        queue,
        tier: tier as u8,
        external_id,
        payload: parse(&payload)?,
        attributes: parse(&attributes)?,
        prediction: prediction.as_deref().map(parse::<Prediction>).transpose()?,
    }))
}

pub(super) async fn heartbeat(
    c: &mut PgConnection,
    task_id: i64,
    lease_id: i64,
    reviewer_id: i64,
    now: Millis,
) -> TxResult<Millis> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "UPDATE leases SET expires_at = $4 + lease_ms
         WHERE id = $1 AND task_id = $2 AND reviewer_id = $3 AND state = 'active' AND expires_at > $4
         RETURNING expires_at, item_id, (SELECT project_id FROM tasks WHERE tasks.id = leases.task_id)",
    )
    .bind(lease_id)
    .bind(task_id)
    .bind(reviewer_id)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    let (expires, item_id, project_id) = row.ok_or_else(StoreError::lease_lost)?;
    event(
        c,
        Some(project_id),
        Some(item_id),
        Some(task_id),
        now,
        "lease.extended",
        &format!("reviewer_id:{reviewer_id}"),
        &json!({"lease_id": lease_id, "expires_at": expires}),
    )
    .await?;
    Ok(expires)
}

/// The stored result of this reviewer's `review_id` on this task, if any.
async fn stored_review(c: &mut PgConnection, r: &NewReview) -> TxResult<Option<ReviewResult>> {
    let row: Option<String> = sqlx::query_scalar(
        "SELECT result::text FROM reviews WHERE task_id = $1 AND reviewer_id = $2 AND review_id = $3",
    )
    .bind(r.task_id)
    .bind(r.reviewer_id)
    .bind(&r.review_id)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|s| parse(&s)).transpose()
}

pub(super) async fn submit_review(
    c: &mut PgConnection,
    channel: &str,
    r: &NewReview,
    now: Millis,
) -> TxResult<ReviewResult> {
    if let Some(done) = stored_review(c, r).await? {
        return Ok(done);
    }
    // Lock the task first: answers to one task (and lease expiry) take their turn here.
    let task: Option<(i64, String, String, i16, i32, i16, bool)> = sqlx::query_as(
        "SELECT project_id, stage, queue, tier, priority, overlap, gold FROM tasks WHERE id = $1 FOR UPDATE",
    )
    .bind(r.task_id)
    .fetch_optional(&mut *c)
    .await?;
    let (project_id, stage, queue, tier, priority, overlap, gold) = task.ok_or_else(StoreError::lease_lost)?;
    if let Some(done) = stored_review(c, r).await? {
        return Ok(done);
    }
    let stage = Stage::parse(&stage).unwrap_or(Stage::Review);
    let (tier, overlap) = (tier as u8, overlap as u8);
    let lease: Option<(i64, i64)> = sqlx::query_as(
        "SELECT item_id, granted_at FROM leases
         WHERE id = $1 AND task_id = $2 AND reviewer_id = $3 AND state = 'active' AND expires_at > $4 FOR UPDATE",
    )
    .bind(r.lease_id)
    .bind(r.task_id)
    .bind(r.reviewer_id)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    let (item_id, granted_at) = lease.ok_or_else(StoreError::lease_lost)?;
    let judging = r.judging.get(&project_id).cloned().unwrap_or_default();
    if let Answer::Label(l) = &r.answer {
        let labels: String = sqlx::query_scalar("SELECT labels::text FROM projects WHERE id = $1")
            .bind(project_id)
            .fetch_one(&mut *c)
            .await?;
        let names: Vec<String> = parse(&labels)?;
        LabelSet::parse(&names)?.answer("label", l)?;
    }
    if gold {
        return gold_answer(c, r, &judging, overlap, project_id, item_id, granted_at, now).await;
    }
    let earlier: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT reviewer_id, kind, label, reason FROM reviews WHERE task_id = $1 AND kind <> 'skip' ORDER BY id",
    )
    .bind(r.task_id)
    .fetch_all(&mut *c)
    .await?;
    let earlier: Vec<(i64, Answer)> = earlier
        .into_iter()
        .map(|(reviewer, kind, label, reason)| {
            let answer = match kind.as_str() {
                "label" => Answer::Label(label.unwrap_or_default()),
                _ => Answer::Escalate {
                    reason: reason.unwrap_or_default(),
                },
            };
            (reviewer, answer)
        })
        .collect();
    let mut voters: Vec<i64> = earlier.iter().map(|(v, _)| *v).collect();
    voters.push(r.reviewer_id);
    let scorer = scorer_for(c, project_id, &voters, &judging).await?;
    let rule = task::Rule {
        scorer: &scorer,
        min_confidence: judging.consensus.min_confidence,
        max_overlap: judging.consensus.max_overlap,
    };
    let next = task::after_answer(stage, tier, overlap, &earlier, (r.reviewer_id, &r.answer), &rule);
    let actor = format!("reviewer:{}", r.reviewer_name);
    let skip = matches!(r.answer, Answer::Skip { .. });
    sqlx::query("UPDATE leases SET state = $2, ended_at = $3 WHERE id = $1")
        .bind(r.lease_id)
        .bind(if skip { "skipped" } else { "answered" })
        .bind(now)
        .execute(&mut *c)
        .await?;
    let counter = if skip {
        "UPDATE tasks SET available = available + 1 WHERE id = $1"
    } else {
        "UPDATE tasks SET answered = answered + 1 WHERE id = $1"
    };
    sqlx::query(counter).bind(r.task_id).execute(&mut *c).await?;

    let mut resolution = None;
    let mut more_reviewers = false;
    let outcome = match &next {
        Next::Wait => "waiting",
        Next::Requeue => "requeued",
        Next::MoreReviewers => {
            sqlx::query("UPDATE tasks SET overlap = overlap + 1, available = available + 1 WHERE id = $1")
                .bind(r.task_id)
                .execute(&mut *c)
                .await?;
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(r.task_id),
                now,
                "task.overlap_increased",
                &actor,
                &json!({"overlap": overlap + 1, "reason": "consensus below min_confidence"}),
            )
            .await?;
            more_reviewers = true;
            "waiting"
        }
        Next::Adjudicate { tier, reason } => {
            close_task(c, r.task_id, now).await?;
            let route = Route {
                queue: queue.clone(),
                tier: *tier,
                priority,
                overlap: 1,
            };
            let new_task = insert_task(c, project_id, item_id, Stage::Adjudicate, &route, Some(reason), now).await?;
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(new_task),
                now,
                "task.escalated",
                &actor,
                &json!({"from_task": r.task_id, "tier": tier, "reason": reason}),
            )
            .await?;
            "adjudicate"
        }
        Next::Resolve {
            label,
            source,
            method,
            confidence,
        } => {
            close_task(c, r.task_id, now).await?;
            let mut reviewers: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT v.name FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id
                 WHERE w.task_id = $1 AND w.kind = 'label' ORDER BY v.name",
            )
            .bind(r.task_id)
            .fetch_all(&mut *c)
            .await?;
            if !reviewers.contains(&r.reviewer_name) {
                reviewers.push(r.reviewer_name.clone());
            }
            let res = Resolution {
                label: label.clone(),
                source: *source,
                method: method.to_string(),
                confidence: *confidence,
                reviewers,
                resolved_at: now,
            };
            let (current, policy_version, was_auto): (Option<String>, i32, bool) =
                sqlx::query_as("SELECT resolved_label, policy_version, outcome = 'auto' FROM items WHERE id = $1")
                    .bind(item_id)
                    .fetch_one(&mut *c)
                    .await?;
            // An audit, or the adjudication of a contested audit: it confirms or corrects.
            let audit = stage == Stage::Audit || (stage == Stage::Adjudicate && was_auto);
            if audit && current.as_deref() == Some(label.as_str()) {
                event(
                    c,
                    Some(project_id),
                    Some(item_id),
                    Some(r.task_id),
                    now,
                    "audit.confirmed",
                    &actor,
                    &json!({"label": label}),
                )
                .await?;
                insert_label(
                    c,
                    project_id,
                    item_id,
                    label,
                    Source::Human,
                    None,
                    None,
                    policy_version as u32,
                    now,
                )
                .await?;
                resolution = Some(res);
                "confirmed"
            } else {
                sqlx::query(
                    "UPDATE items SET resolved_label = $2, resolution = $3::jsonb, resolved_at = $4 WHERE id = $1",
                )
                .bind(item_id)
                .bind(label)
                .bind(serde_json::to_string(&res)?)
                .bind(now)
                .execute(&mut *c)
                .await?;
                insert_label(
                    c,
                    project_id,
                    item_id,
                    label,
                    *source,
                    None,
                    None,
                    policy_version as u32,
                    now,
                )
                .await?;
                event(
                    c,
                    Some(project_id),
                    Some(item_id),
                    Some(r.task_id),
                    now,
                    if audit { "item.corrected" } else { "item.resolved" },
                    &actor,
                    &json!({"label": label, "previous": current, "source": source, "method": method,
                            "confidence": confidence, "reviewers": res.reviewers}),
                )
                .await?;
                resolution = Some(res);
                if audit { "corrected" } else { "resolved" }
            }
        }
    };
    let result = ReviewResult {
        review_id: r.review_id.clone(),
        outcome: outcome.to_string(),
        resolution,
        more_reviewers,
    };
    record_review(c, r, project_id, item_id, granted_at, &result, now).await?;
    if result.freed_work() {
        notify(c, channel, &Notice::TasksAvailable { project_id }).await?;
    }
    Ok(result)
}

/// The scorer for a task's voters: weights come from the reviewers' gold records.
async fn scorer_for(c: &mut PgConnection, project_id: i64, voters: &[i64], judging: &Judging) -> TxResult<Scorer> {
    Ok(match judging.consensus.method {
        ConsensusMethod::Majority => Scorer::Majority,
        ConsensusMethod::DawidSkene => judging
            .ds_model
            .clone()
            .map(Scorer::DawidSkene)
            .unwrap_or(Scorer::Majority),
        ConsensusMethod::Weighted => {
            let mut weights = HashMap::new();
            for v in voters {
                let row: Option<(i32, i32)> = sqlx::query_as(
                    "SELECT gold_answers, gold_correct FROM reviewer_quality WHERE project_id = $1 AND reviewer_id = $2",
                )
                .bind(project_id)
                .bind(v)
                .fetch_optional(&mut *c)
                .await?;
                let (answered, correct) = row.unwrap_or((0, 0));
                weights.insert(*v, quality::reliability(correct as u64, answered as u64));
            }
            Scorer::Weighted(weights)
        }
    })
}

/// An answer to a gold task (see the SQLite backend's `gold_answer`).
#[allow(clippy::too_many_arguments)]
async fn gold_answer(
    c: &mut PgConnection,
    r: &NewReview,
    judging: &Judging,
    overlap: u8,
    project_id: i64,
    item_id: i64,
    granted_at: Millis,
    now: Millis,
) -> TxResult<ReviewResult> {
    let actor = format!("reviewer:{}", r.reviewer_name);
    let skip = matches!(r.answer, Answer::Skip { .. });
    sqlx::query("UPDATE leases SET state = $2, ended_at = $3 WHERE id = $1")
        .bind(r.lease_id)
        .bind(if skip { "skipped" } else { "answered" })
        .bind(now)
        .execute(&mut *c)
        .await?;
    close_task(c, r.task_id, now).await?;
    let (outcome, resolution) = match &r.answer {
        Answer::Skip { .. } => ("requeued", None),
        Answer::Escalate { .. } => ("adjudicate", None),
        Answer::Label(l) => {
            let gold: String = sqlx::query_scalar("SELECT gold_label FROM items WHERE id = $1")
                .bind(item_id)
                .fetch_one(&mut *c)
                .await?;
            let correct = *l == gold;
            let (answered, right, held): (i32, i32, Option<i64>) = sqlx::query_as(
                "INSERT INTO reviewer_quality (project_id, reviewer_id, gold_answers, gold_correct) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (project_id, reviewer_id) DO UPDATE SET gold_answers = reviewer_quality.gold_answers + 1,
                     gold_correct = reviewer_quality.gold_correct + excluded.gold_correct
                 RETURNING gold_answers, gold_correct, held_at",
            )
            .bind(project_id)
            .bind(r.reviewer_id)
            .bind(i32::from(correct))
            .fetch_one(&mut *c)
            .await?;
            event(c, Some(project_id), Some(item_id), Some(r.task_id), now, "gold.answered", &actor,
                &json!({"reviewer_id": r.reviewer_id, "correct": correct, "gold_answers": answered, "gold_correct": right}))
            .await?;
            if let Some(q) = judging.quality
                && held.is_none()
                && quality::should_hold(right as u64, answered as u64, q.min_accuracy, u64::from(q.min_gold))
            {
                let reason = format!(
                    "gold accuracy {right}/{answered}: its 95% upper bound is below {}",
                    q.min_accuracy
                );
                sqlx::query(
                    "UPDATE reviewer_quality SET held_at = $3, held_reason = $4 WHERE project_id = $1 AND reviewer_id = $2",
                )
                .bind(project_id)
                .bind(r.reviewer_id)
                .bind(now)
                .bind(&reason)
                .execute(&mut *c)
                .await?;
                event(
                    c,
                    Some(project_id),
                    None,
                    None,
                    now,
                    "reviewer.held",
                    "system",
                    &json!({"reviewer_id": r.reviewer_id, "reviewer": r.reviewer_name, "reason": reason}),
                )
                .await?;
            }
            if overlap > 1 {
                ("waiting", None)
            } else {
                let method = judging.method();
                let res = Resolution {
                    label: l.clone(),
                    source: Source::Human,
                    method: method.to_string(),
                    confidence: 1.0,
                    reviewers: vec![r.reviewer_name.clone()],
                    resolved_at: now,
                };
                ("resolved", Some(res))
            }
        }
    };
    let result = ReviewResult {
        review_id: r.review_id.clone(),
        outcome: outcome.to_string(),
        resolution,
        more_reviewers: false,
    };
    record_review(c, r, project_id, item_id, granted_at, &result, now).await?;
    Ok(result)
}

/// Stores an answer and its `review.submitted` event (see the SQLite backend).
async fn record_review(
    c: &mut PgConnection,
    r: &NewReview,
    project_id: i64,
    item_id: i64,
    granted_at: Millis,
    result: &ReviewResult,
    now: Millis,
) -> TxResult<()> {
    let (label, reason) = match &r.answer {
        Answer::Label(l) => (Some(l.as_str()), None),
        Answer::Escalate { reason } | Answer::Skip { reason } => (None, Some(reason.as_str())),
    };
    sqlx::query(
        "INSERT INTO reviews (review_id, reviewer_id, task_id, item_id, lease_id, kind, label, reason, failure_category, note,
                              claimed_at, answered_at, result)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)",
    )
    .bind(&r.review_id)
    .bind(r.reviewer_id)
    .bind(r.task_id)
    .bind(item_id)
    .bind(r.lease_id)
    .bind(r.answer.kind())
    .bind(label)
    .bind(reason)
    .bind(&r.failure_category)
    .bind(&r.note)
    .bind(granted_at)
    .bind(now)
    .bind(serde_json::to_string(result)?)
    .execute(&mut *c)
    .await?;
    event(
        c,
        Some(project_id),
        Some(item_id),
        Some(r.task_id),
        now,
        "review.submitted",
        &format!("reviewer:{}", r.reviewer_name),
        &json!({"review_id": r.review_id, "lease_id": r.lease_id, "answer": r.answer.kind(), "label": label,
                "reason": reason, "failure_category": r.failure_category, "outcome": result.outcome,
                "time_on_task_ms": now - granted_at}),
    )
    .await
}

async fn close_task(c: &mut PgConnection, task_id: i64, now: Millis) -> TxResult<()> {
    sqlx::query("UPDATE tasks SET state = 'done', available = 0, closed_at = $2 WHERE id = $1")
        .bind(task_id)
        .bind(now)
        .execute(&mut *c)
        .await?;
    let cancelled: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "UPDATE leases SET state = 'cancelled', ended_at = $2 WHERE task_id = $1 AND state = 'active'
         RETURNING id, item_id, reviewer_id, (SELECT project_id FROM tasks WHERE id = $1)",
    )
    .bind(task_id)
    .bind(now)
    .fetch_all(&mut *c)
    .await?;
    for (lease_id, item_id, reviewer_id, project_id) in cancelled {
        event(
            c,
            Some(project_id),
            Some(item_id),
            Some(task_id),
            now,
            "lease.cancelled",
            "system",
            &json!({"lease_id": lease_id, "reviewer_id": reviewer_id, "reason": "the task closed"}),
        )
        .await?;
    }
    Ok(())
}

/// Runs on one node at a time (a transaction-scoped advisory lock: if the node holding it
/// dies, its transaction ends and the next node's attempt takes over).
pub(super) async fn expire_leases(c: &mut PgConnection, channel: &str, now: Millis, limit: usize) -> TxResult<usize> {
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.expire'))")
        .fetch_one(&mut *c)
        .await?;
    if !got {
        return Ok(0);
    }
    let due: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT l.id, l.task_id, l.item_id, l.reviewer_id, t.project_id FROM leases l JOIN tasks t ON t.id = l.task_id
         WHERE l.state = 'active' AND l.expires_at <= $1 ORDER BY l.expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    let mut projects = Vec::new();
    let mut count = 0;
    for (lease_id, task_id, item_id, reviewer_id, project_id) in due {
        // Task first, then lease: the same order as an answer takes them.
        sqlx::query("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE")
            .bind(task_id)
            .execute(&mut *c)
            .await?;
        let expired = sqlx::query(
            "UPDATE leases SET state = 'expired', ended_at = $2 WHERE id = $1 AND state = 'active' AND expires_at <= $2",
        )
        .bind(lease_id)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected();
        if expired == 0 {
            continue; // answered or extended meanwhile
        }
        count += 1;
        // A gold task exists only for the reviewer it was made for: it closes.
        sqlx::query(
            "UPDATE tasks SET available = CASE WHEN gold THEN 0 ELSE available + 1 END,
                              state = CASE WHEN gold THEN 'done' ELSE state END,
                              closed_at = CASE WHEN gold THEN $2 ELSE closed_at END
             WHERE id = $1 AND state = 'open'",
        )
        .bind(task_id)
        .bind(now)
        .execute(&mut *c)
        .await?;
        sqlx::query("DELETE FROM item_reviewers WHERE item_id = $1 AND reviewer_id = $2")
            .bind(item_id)
            .bind(reviewer_id)
            .execute(&mut *c)
            .await?;
        event(
            c,
            Some(project_id),
            Some(item_id),
            Some(task_id),
            now,
            "lease.expired",
            "system",
            &json!({"lease_id": lease_id, "reviewer_id": reviewer_id}),
        )
        .await?;
        if !projects.contains(&project_id) {
            projects.push(project_id);
        }
    }
    for project_id in &projects {
        notify(
            c,
            channel,
            &Notice::TasksAvailable {
                project_id: *project_id,
            },
        )
        .await?;
    }
    Ok(count)
}

/// Gives committed, unsequenced events and labels their feed positions, in one place at
/// a time, so that a position is never handed out below one a reader has already seen.
pub(super) async fn sequence_feeds(c: &mut PgConnection) -> TxResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.sequencer'))")
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "WITH todo AS (SELECT id, row_number() OVER (ORDER BY id) AS rn
                       FROM (SELECT id FROM events WHERE seq IS NULL ORDER BY id LIMIT 100000) s),
              base AS (SELECT coalesce(max(seq), 0) AS b FROM events)
         UPDATE events e SET seq = base.b + todo.rn FROM todo, base WHERE e.id = todo.id",
    )
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "WITH todo AS (SELECT id, row_number() OVER (ORDER BY id) AS rn
                       FROM (SELECT id FROM labels WHERE cursor IS NULL ORDER BY id LIMIT 100000) s),
              base AS (SELECT coalesce(max(cursor), 0) AS b FROM labels)
         UPDATE labels l SET cursor = base.b + todo.rn FROM todo, base WHERE l.id = todo.id",
    )
    .execute(&mut *c)
    .await?;
    Ok(())
}

type LabelRow = (i64, String, String, String, Option<String>, Option<String>, i32, i64);

pub(super) async fn labels(
    c: &mut PgConnection,
    project_id: i64,
    after: i64,
    limit: usize,
) -> TxResult<Vec<LabelRecord>> {
    let rows: Vec<LabelRow> = sqlx::query_as(
        "SELECT l.cursor, i.external_id, l.label, l.source, l.model, l.model_version, l.policy_version, l.resolved_at
         FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = $1 AND l.cursor > $2 ORDER BY l.cursor LIMIT $3",
    )
    .bind(project_id)
    .bind(after)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(cursor, external_id, label, source, model, model_version, policy_version, resolved_at)| LabelRecord {
                cursor,
                external_id,
                label,
                source,
                model,
                model_version,
                policy_version: policy_version as u32,
                resolved_at,
            },
        )
        .collect())
}

pub(super) type EventRow = (
    i64,
    i64,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
    String,
);

pub(super) const EVENT_COLUMNS: &str =
    "coalesce(e.seq, 0), e.at, e.kind, e.actor, e.project_id, i.external_id, e.task_id, e.data::text
     FROM events e LEFT JOIN items i ON i.id = e.item_id";

pub(super) fn event_record(r: EventRow) -> TxResult<EventRecord> {
    Ok(EventRecord {
        seq: r.0,
        at: r.1,
        kind: r.2,
        actor: r.3,
        project_id: r.4,
        external_id: r.5,
        task_id: r.6,
        data: parse(&r.7)?,
    })
}

pub(super) async fn events(
    c: &mut PgConnection,
    project_id: Option<i64>,
    after: i64,
    limit: usize,
) -> TxResult<Vec<EventRecord>> {
    let sql = match project_id {
        Some(_) => format!("SELECT {EVENT_COLUMNS} WHERE e.project_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3"),
        None => format!("SELECT {EVENT_COLUMNS} WHERE $1::bigint IS NULL AND e.seq > $2 ORDER BY e.seq LIMIT $3"),
    };
    let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&mut *c)
        .await?;
    rows.into_iter().map(event_record).collect()
}

pub(super) async fn stats(c: &mut PgConnection, project_id: i64, now: Millis) -> TxResult<Stats> {
    let (items, auto, review, resolved): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE outcome = 'auto'), count(*) FILTER (WHERE outcome = 'review'),
                count(*) FILTER (WHERE resolved_label IS NOT NULL) FROM items WHERE project_id = $1 AND gold_label IS NULL",
    )
    .bind(project_id)
    .fetch_one(&mut *c)
    .await?;
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT queue, count(*), min(created_at) FROM tasks WHERE project_id = $1 AND state = 'open' AND NOT gold
         GROUP BY queue ORDER BY queue",
    )
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    let queues: Vec<QueueStats> = rows
        .into_iter()
        .map(|(name, open, oldest)| QueueStats {
            name,
            open,
            oldest_age_ms: (now - oldest).max(0),
        })
        .collect();
    let (audits_confirmed, audits_corrected): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE kind = 'audit.confirmed'), count(*) FILTER (WHERE kind = 'item.corrected') FROM events
         WHERE project_id = $1 AND kind IN ('audit.confirmed', 'item.corrected')",
    )
    .bind(project_id)
    .fetch_one(&mut *c)
    .await?;
    Ok(Stats {
        audits_confirmed,
        audits_corrected,
        items,
        auto,
        review,
        resolved,
        open_tasks: queues.iter().map(|q| q.open).sum(),
        queues,
    })
}

type ItemRow = (i64, String, String, Option<String>, i64, String, Option<String>);
type TaskRow = (
    i64,
    String,
    String,
    i16,
    i32,
    i16,
    i16,
    String,
    Option<String>,
    i64,
    Option<i64>,
);
type ReviewRow = (
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

pub(super) async fn item(c: &mut PgConnection, project_id: i64, external_id: &str) -> TxResult<Option<ItemDetail>> {
    let row: Option<ItemRow> = sqlx::query_as(
        "SELECT id, payload::text, attributes::text, prediction::text, created_at, decision::text, resolution::text
         FROM items WHERE project_id = $1 AND external_id = $2",
    )
    .bind(project_id)
    .bind(external_id)
    .fetch_optional(&mut *c)
    .await?;
    let Some((item_id, payload, attributes, prediction, created_at, decision, resolution)) = row else {
        return Ok(None);
    };
    let tasks: Vec<TaskRow> = sqlx::query_as(
        "SELECT id, stage, queue, tier, priority, overlap, answered, state, reason, created_at, closed_at
         FROM tasks WHERE item_id = $1 ORDER BY id",
    )
    .bind(item_id)
    .fetch_all(&mut *c)
    .await?;
    let reviews: Vec<ReviewRow> = sqlx::query_as(
        "SELECT w.review_id, w.task_id, v.name, w.kind, w.label, w.reason, w.failure_category, w.note, w.claimed_at, w.answered_at
         FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id WHERE w.item_id = $1 ORDER BY w.id",
    )
    .bind(item_id)
    .fetch_all(&mut *c)
    .await?;
    let events: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} WHERE e.item_id = $1 ORDER BY e.id"
    )))
    .bind(item_id)
    .fetch_all(&mut *c)
    .await?;
    Ok(Some(ItemDetail {
        item_id,
        external_id: external_id.to_string(),
        payload: parse(&payload)?,
        attributes: parse(&attributes)?,
        prediction: prediction.as_deref().map(parse::<Prediction>).transpose()?,
        created_at,
        decision: parse(&decision)?,
        tasks: tasks
            .into_iter()
            .map(|t| TaskRecord {
                task_id: t.0,
                stage: Stage::parse(&t.1).unwrap_or(Stage::Review),
                queue: t.2,
                tier: t.3 as u8,
                priority: t.4,
                overlap: t.5 as u8,
                answered: t.6 as u8,
                state: t.7,
                reason: t.8,
                created_at: t.9,
                closed_at: t.10,
            })
            .collect(),
        reviews: reviews
            .into_iter()
            .map(|r| ReviewRecord {
                review_id: r.0,
                task_id: r.1,
                reviewer: r.2,
                answer: r.3,
                label: r.4,
                reason: r.5,
                failure_category: r.6,
                note: r.7,
                claimed_at: r.8,
                answered_at: r.9,
            })
            .collect(),
        resolution: resolution.as_deref().map(parse::<Resolution>).transpose()?,
        events: events.into_iter().map(event_record).collect::<TxResult<Vec<_>>>()?,
    }))
}

impl From<TxError> for StoreError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Store(s) => s,
            TxError::Retry(e) => e.into(),
        }
    }
}

pub(super) async fn add_gold(
    c: &mut PgConnection,
    project_id: i64,
    items: &[NewGold],
    actor: &str,
    now: Millis,
) -> TxResult<usize> {
    let labels: String = sqlx::query_scalar("SELECT labels::text FROM projects WHERE id = $1")
        .bind(project_id)
        .fetch_one(&mut *c)
        .await?;
    let names: Vec<String> = parse(&labels)?;
    let set = LabelSet::parse(&names)?;
    for (i, g) in items.iter().enumerate() {
        set.answer(&format!("items[{i}].label"), &g.label)?;
    }
    let decision = serde_json::to_string(&Decision {
        outcome: Outcome::Review {
            route: Route::default_review(),
        },
        rule: "gold".into(),
        reasons: vec!["gold item".into()],
        policy_version: 0,
        audit: None,
    })?;
    let mut added = 0;
    for g in items {
        added += sqlx::query(
            "INSERT INTO items (project_id, external_id, payload, attributes, decision, outcome, policy_version, created_at,
                                gold_label, prediction)
             VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, 'review', 0, $6, $7, $8::jsonb)
             ON CONFLICT (project_id, external_id) DO NOTHING",
        )
        .bind(project_id)
        .bind(&g.external_id)
        .bind(g.payload.to_string())
        .bind(g.attributes.to_string())
        .bind(&decision)
        .bind(now)
        .bind(&g.label)
        .bind(g.prediction.as_ref().map(serde_json::to_string).transpose()?)
        .execute(&mut *c)
        .await?
        .rows_affected() as usize;
    }
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        "gold.added",
        actor,
        &json!({"added": added}),
    )
    .await?;
    Ok(added)
}

pub(super) async fn reviewer_stats(c: &mut PgConnection, project_id: i64) -> TxResult<Vec<ReviewerStats>> {
    let rows: Vec<(i64, String, i32, i32, bool, Option<String>)> = sqlx::query_as(
        "SELECT v.id, v.name, coalesce(q.gold_answers, 0), coalesce(q.gold_correct, 0), q.held_at IS NOT NULL, q.held_reason
         FROM reviewer_projects p JOIN reviewers v ON v.id = p.reviewer_id
         LEFT JOIN reviewer_quality q ON q.project_id = p.project_id AND q.reviewer_id = v.id
         WHERE p.project_id = $1 ORDER BY v.name",
    )
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, name, gold_answers, gold_correct, held, held_reason) in rows {
        let mut s = ReviewerStats {
            reviewer_id: id,
            name,
            answers: 0,
            gold_answers: gold_answers.into(),
            gold_correct: gold_correct.into(),
            agree_with_resolution: 0,
            compared_with_resolution: 0,
            median_time_on_task_ms: None,
            held,
            held_reason,
        };
        let answers: Vec<(Option<String>, Option<String>, i64)> = sqlx::query_as(
            "SELECT w.label, i.resolved_label, w.answered_at - w.claimed_at FROM reviews w
             JOIN tasks t ON t.id = w.task_id JOIN items i ON i.id = w.item_id
             WHERE w.reviewer_id = $1 AND t.project_id = $2 AND NOT t.gold AND w.kind = 'label'",
        )
        .bind(id)
        .bind(project_id)
        .fetch_all(&mut *c)
        .await?;
        crate::sqlite::fill_answer_stats(&mut s, answers);
        out.push(s);
    }
    Ok(out)
}

/// The id of reviewer `name` if granted the project; `NotFound` otherwise.
pub(super) async fn reviewer_in_project(c: &mut PgConnection, name: &str, project_id: i64) -> TxResult<i64> {
    sqlx::query_scalar(
        "SELECT v.id FROM reviewers v JOIN reviewer_projects p ON p.reviewer_id = v.id WHERE v.name = $1 AND p.project_id = $2",
    )
    .bind(name)
    .bind(project_id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::not_found(format!("reviewer '{name}' in this project")).into())
}

pub(super) async fn release_reviewer(
    c: &mut PgConnection,
    project_id: i64,
    reviewer: &str,
    actor: &str,
    now: Millis,
) -> TxResult<()> {
    let id = reviewer_in_project(c, reviewer, project_id).await?;
    sqlx::query(
        "UPDATE reviewer_quality SET held_at = NULL, held_reason = NULL, gold_answers = 0, gold_correct = 0
         WHERE project_id = $1 AND reviewer_id = $2",
    )
    .bind(project_id)
    .bind(id)
    .execute(&mut *c)
    .await?;
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        "reviewer.released",
        actor,
        &json!({"reviewer_id": id, "reviewer": reviewer}),
    )
    .await?;
    Ok(())
}

pub(super) async fn project_answers(c: &mut PgConnection, project_id: i64) -> TxResult<Vec<ProjectAnswer>> {
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT w.reviewer_id, v.name, i.external_id, w.label FROM reviews w
         JOIN tasks t ON t.id = w.task_id JOIN reviewers v ON v.id = w.reviewer_id JOIN items i ON i.id = w.item_id
         WHERE t.project_id = $1 AND t.stage = 'review' AND NOT t.gold AND w.kind = 'label' ORDER BY w.id",
    )
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(reviewer_id, reviewer, external_id, label)| ProjectAnswer {
            reviewer_id,
            reviewer,
            external_id,
            label,
        })
        .collect())
}

pub(super) async fn training_examples(
    c: &mut PgConnection,
    project_id: i64,
    after: i64,
    limit: usize,
) -> TxResult<Vec<TrainingExample>> {
    let rows: Vec<(i64, String, String, String, String)> = sqlx::query_as(
        "SELECT l.cursor, i.external_id, i.payload::text, i.attributes::text, l.label FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = $1 AND l.cursor > $2 AND l.source IN ('human', 'adjudicated') ORDER BY l.cursor LIMIT $3",
    )
    .bind(project_id)
    .bind(after)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(|(cursor, external_id, payload, attributes, label)| {
            Ok(TrainingExample {
                cursor,
                external_id,
                payload: parse(&payload)?,
                attributes: parse(&attributes)?,
                label,
            })
        })
        .collect()
}

pub(super) async fn save_model(c: &mut PgConnection, project_id: i64, m: &ModelSnapshot, now: Millis) -> TxResult<()> {
    sqlx::query(
        "INSERT INTO model_snapshots (project_id, version, model, examples_seen, trained_through, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id, version) DO NOTHING",
    )
    .bind(project_id)
    .bind(m.version as i32)
    .bind(&m.model)
    .bind(m.examples_seen as i64)
    .bind(m.trained_through)
    .bind(now)
    .execute(&mut *c)
    .await?;
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        "model.snapshot",
        "system",
        &json!({"version": m.version, "examples_seen": m.examples_seen, "trained_through": m.trained_through}),
    )
    .await
}

pub(super) async fn latest_model(c: &mut PgConnection, project_id: i64) -> TxResult<Option<ModelSnapshot>> {
    let row: Option<(i32, Vec<u8>, i64, i64, i64)> = sqlx::query_as(
        "SELECT version, model, examples_seen, trained_through, created_at FROM model_snapshots
         WHERE project_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(project_id)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(
        |(version, model, examples_seen, trained_through, created_at)| ModelSnapshot {
            version: version as u32,
            model,
            examples_seen: examples_seen as u64,
            trained_through,
            created_at,
        },
    ))
}

/// external id, prediction, human label, auto, resolved at, chosen for learning,
/// adjudicated, label answers
type VerifiedRow = (String, String, String, bool, i64, bool, bool, i64);

pub(super) async fn verified_predictions(
    c: &mut PgConnection,
    project_id: i64,
    limit: usize,
) -> TxResult<Vec<VerifiedPrediction>> {
    let rows: Vec<VerifiedRow> = sqlx::query_as(
        "SELECT i.external_id, i.prediction::text, l.label, i.outcome = 'auto', l.resolved_at,
                position('active_learning: chosen' in i.decision::text) > 0, l.source = 'adjudicated',
                (SELECT count(*) FROM reviews w WHERE w.item_id = i.id AND w.kind = 'label')
         FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = $1 AND l.source IN ('human', 'adjudicated') AND i.prediction IS NOT NULL
         ORDER BY l.cursor DESC NULLS FIRST, l.id DESC LIMIT $2",
    )
    .bind(project_id)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(
            |(external_id, p, human_label, auto, resolved_at, chosen_for_learning, adjudicated, votes)| {
                Ok(VerifiedPrediction {
                    external_id,
                    prediction: parse(&p)?,
                    human_label,
                    auto,
                    resolved_at,
                    chosen_for_learning,
                    votes: votes as u32,
                    adjudicated,
                })
            },
        )
        .collect()
}

pub(super) async fn append_event(
    c: &mut PgConnection,
    project_id: i64,
    kind: &str,
    actor: &str,
    data: &Value,
    now: Millis,
) -> TxResult<()> {
    event(c, Some(project_id), None, None, now, kind, actor, data).await
}

pub(super) async fn history(
    c: &mut PgConnection,
    project_id: i64,
    limit: usize,
) -> TxResult<Vec<flywheel_core::backtest::HistoryItem>> {
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT i.payload::text, i.attributes::text, i.prediction::text, l.label FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = $1 AND l.source IN ('human', 'adjudicated') ORDER BY l.id DESC LIMIT $2",
    )
    .bind(project_id)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(|(payload, attributes, prediction, human_label)| {
            Ok(flywheel_core::backtest::HistoryItem {
                payload: parse(&payload)?,
                attributes: parse(&attributes)?,
                prediction: prediction.as_deref().map(parse::<Prediction>).transpose()?,
                human_label,
            })
        })
        .collect()
}

pub(super) async fn recent_predictions(
    c: &mut PgConnection,
    project_id: i64,
    limit: usize,
) -> TxResult<Vec<Prediction>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT prediction::text FROM items WHERE project_id = $1 AND prediction IS NOT NULL AND gold_label IS NULL
         ORDER BY id DESC LIMIT $2",
    )
    .bind(project_id)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(|p| parse::<Prediction>(p)).collect()
}
