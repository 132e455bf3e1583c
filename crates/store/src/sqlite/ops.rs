//! The SQL of every store operation, on one connection. Write operations run inside the
//! writer's transaction (see `writer.rs`); each appends its events with [`event`].

use std::collections::HashMap;

use flywheel_core::consensus::Scorer;
use flywheel_core::policy::ConsensusMethod;
use flywheel_core::quality;
use flywheel_core::task::{self, Next, Source};
use flywheel_core::{Answer, Decision, LabelSet, Outcome, Prediction, Route, Stage, ValidationError};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};

use crate::*;

/// Appends one event. Every change calls this in the same transaction as the change.
#[allow(clippy::too_many_arguments)]
pub(super) fn event(
    c: &Connection,
    project_id: Option<i64>,
    item_id: Option<i64>,
    task_id: Option<i64>,
    now: Millis,
    kind: &str,
    actor: &str,
    data: &Value,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO events (project_id, item_id, task_id, at, kind, actor, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        project_id,
        item_id,
        task_id,
        now,
        kind,
        actor,
        data.to_string()
    ])?;
    Ok(())
}

pub(super) fn json_col(r: &Row<'_>, idx: usize) -> rusqlite::Result<Value> {
    let s: String = r.get(idx)?;
    serde_json::from_str(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

fn opt_json<T: serde::de::DeserializeOwned>(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = r.get(idx)?;
    s.map(|s| {
        serde_json::from_str(&s)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
    })
    .transpose()
}

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
        "key.created",
        "system",
        &json!({"scope": "admin"}),
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
        "INSERT INTO projects (name, labels, policy, policy_version, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
        params![new.name, labels, policy, now],
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
        "project.created",
        actor,
        &json!({"name": new.name, "labels": new.labels, "policy_version": 1, "policy": new.policy}),
    )?;
    Ok(Project {
        id,
        name: new.name,
        labels: new.labels,
        policy: new.policy,
        policy_version: 1,
        created_at: now,
    })
}

pub(super) fn project(c: &Connection, name: &str) -> Result<Option<Project>> {
    c.prepare_cached("SELECT id, name, labels, policy, policy_version, created_at FROM projects WHERE name = ?1")?
        .query_row([name], |r| {
            Ok(Project {
                id: r.get(0)?,
                name: r.get(1)?,
                labels: serde_json::from_value(json_col(r, 2)?).unwrap_or_default(),
                policy: json_col(r, 3)?,
                policy_version: r.get(4)?,
                created_at: r.get(5)?,
            })
        })
        .optional()
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
        "policy.updated",
        actor,
        &json!({"policy_version": version, "policy": policy}),
    )?;
    Ok(version)
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
    let data = json!({"reviewer_id": id, "name": new.name, "tiers": new.tiers, "projects": new.projects});
    event(c, None, None, None, now, "reviewer.created", actor, &data)?;
    for p in &projects {
        event(c, Some(*p), None, None, now, "reviewer.granted", actor, &data)?;
    }
    reviewer(c, id)
}

pub(super) fn create_service_key(c: &Connection, new: NewServiceKey, actor: &str, now: Millis) -> Result<()> {
    let projects = project_ids(c, &new.projects)?;
    c.execute(
        "INSERT INTO api_keys (hash, kind, projects, created_at) VALUES (?1, 'service', ?2, ?3)",
        params![new.key_hash, serde_json::to_string(&projects)?, now],
    )?;
    let data = json!({"scope": "service", "projects": new.projects});
    event(c, None, None, None, now, "key.created", actor, &data)?;
    for p in &projects {
        event(c, Some(*p), None, None, now, "key.created", actor, &data)?;
    }
    Ok(())
}

/// An item made ready for the writer: its JSON already serialised.
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

fn insert_task(
    c: &Connection,
    project_id: i64,
    item_id: i64,
    stage: Stage,
    route: &Route,
    reason: Option<&str>,
    now: Millis,
) -> Result<i64> {
    c.prepare_cached(
        "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 'open', ?8, ?9)",
    )?
    .execute(params![project_id, item_id, stage.as_str(), route.queue, route.tier, route.priority, route.overlap, reason, now])?;
    Ok(c.last_insert_rowid())
}

#[allow(clippy::too_many_arguments)]
fn insert_label(
    c: &Connection,
    project_id: i64,
    item_id: i64,
    label: &str,
    source: Source,
    model: Option<&str>,
    model_version: Option<&str>,
    policy_version: u32,
    now: Millis,
) -> Result<i64> {
    c.prepare_cached(
        "INSERT INTO labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        project_id,
        item_id,
        label,
        source.as_str(),
        model,
        model_version,
        policy_version,
        now
    ])?;
    Ok(c.last_insert_rowid())
}

/// Most rows one multi-row `INSERT` takes.
const ROWS_PER_INSERT: usize = 64;

/// Inserts `values` (rows of `width` values each, in order) as `INSERT INTO {head} VALUES
/// (..), (..) {tail}`, in pieces of 64, 32, ..., 1 rows — few statement shapes, so the
/// statement cache keeps every one. One statement per piece instead of one per row: each
/// statement's start and end (cursors opened and closed on the table and every index) cost
/// as much as a row. With `key`, returns each inserted row's `(value of column key, rowid)`
/// (a row that `tail` made a no-op returns nothing).
///
/// The rowids are worked out, not returned: SQLite gives a new row the largest rowid + 1,
/// and this connection is the only writer, so a piece's new rows are the last `changed`
/// rowids, in order. (A `RETURNING` clause fills a temporary table per statement: without
/// it the writer spends 3.7 instead of 4.4 µs per imported item.) A piece in which `tail`
/// skipped a row reads its new rows' keys back by rowid.
fn insert_rows(
    c: &Connection,
    head: &'static str,
    width: usize,
    tail: &'static str,
    values: &[rusqlite::types::Value],
    key: Option<(usize, &'static str)>,
) -> Result<Vec<(rusqlite::types::Value, i64)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < values.len() {
        let left = (values.len() - at) / width;
        let n = if left >= ROWS_PER_INSERT {
            ROWS_PER_INSERT
        } else {
            1 << left.ilog2()
        };
        let piece = &values[at..at + n * width];
        let changed = c
            .prepare_cached(&insert_sql(head, width, n, tail))?
            .execute(rusqlite::params_from_iter(piece))?;
        if let Some((col, name)) = key
            && changed > 0
        {
            let last = c.last_insert_rowid();
            let first = last - changed as i64 + 1;
            if changed == n {
                out.extend(piece.chunks(width).zip(first..).map(|(row, id)| (row[col].clone(), id)));
            } else {
                let table = head.split_whitespace().next().unwrap_or(head);
                let sql = format!("SELECT {name}, rowid FROM {table} WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid");
                let mut stmt = c.prepare_cached(&sql)?;
                let mut rows = stmt.query([first, last])?;
                while let Some(r) = rows.next()? {
                    out.push((r.get(0)?, r.get(1)?));
                }
            }
        }
        at += n * width;
    }
    Ok(out)
}

/// The text of one multi-row `INSERT`, built once per shape (building it took 4% of the
/// writer's time in single-item decisions).
fn insert_sql(head: &'static str, width: usize, rows: usize, tail: &'static str) -> std::rc::Rc<str> {
    type Shape = (usize, usize, usize);
    thread_local! {
        static SQL: std::cell::RefCell<HashMap<Shape, std::rc::Rc<str>>> =
            Default::default();
    }
    // `head` and `tail` are literals: their addresses identify the statement.
    let shape = (head.as_ptr() as usize, tail.as_ptr() as usize, rows);
    SQL.with_borrow_mut(|cache| {
        cache
            .entry(shape)
            .or_insert_with(|| {
                let row = format!("({})", vec!["?"; width].join(","));
                let values = vec![row.as_str(); rows].join(",");
                format!("INSERT INTO {head} VALUES {values} {tail}").into()
            })
            .clone()
    })
}

pub(super) fn submit_items(
    c: &Connection,
    project_id: i64,
    items: Vec<PreparedItem>,
    actor: &str,
    now: Millis,
) -> Result<Vec<Submitted>> {
    use rusqlite::types::Value as V;
    let text = |s: String| V::Text(s);
    let opt = |s: Option<String>| s.map_or(V::Null, V::Text);
    // Items first, all of them; an external id stored before (or twice in this batch)
    // inserts nothing and is answered with the stored decision.
    let mut rows = Vec::with_capacity(items.len() * 14);
    let mut kept = Vec::with_capacity(items.len());
    for it in items {
        let d = &it.decision;
        let auto_label = match &d.outcome {
            Outcome::Auto { label } => Some(label.clone()),
            Outcome::Review { .. } => None,
        };
        let resolution = auto_label
            .as_ref()
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
        rows.extend([
            V::Integer(project_id),
            text(it.external_id.clone()),
            text(it.payload),
            text(it.attributes),
            opt(it.prediction),
            text(it.decision_json),
            text(if auto_label.is_some() { "auto" } else { "review" }.into()),
            V::Integer(i64::from(d.policy_version)),
            opt(it.model.clone()),
            opt(it.model_version.clone()),
            V::Integer(now),
            opt(auto_label.clone()),
            opt(resolution),
            if auto_label.is_some() { V::Integer(now) } else { V::Null },
        ]);
        kept.push((it.external_id, it.decision, it.model, it.model_version, auto_label));
    }
    let mut inserted: HashMap<String, i64> = insert_rows(
        c,
        "items (project_id, external_id, payload, attributes, prediction, decision, outcome, policy_version,
                model, model_version, created_at, resolved_label, resolution, resolved_at)",
        14,
        "ON CONFLICT (project_id, external_id) DO NOTHING",
        &rows,
        Some((1, "external_id")),
    )?
    .into_iter()
    .filter_map(|(k, id)| match k {
        V::Text(external_id) => Some((external_id, id)),
        _ => None,
    })
    .collect();
    // Then each new item's task (a review, or an auto decision's audit) and, for auto
    // decisions, its label.
    let mut tasks = Vec::new();
    let mut labels = Vec::new();
    let mut out = Vec::with_capacity(kept.len());
    let mut new_items = Vec::new();
    for (external_id, decision, model, model_version, auto_label) in kept {
        let Some(item_id) = inserted.remove(&external_id) else {
            // Stored before (idempotency): the first decision stands, nothing is created.
            let (item_id, stored): (i64, String) = c
                .prepare_cached("SELECT id, decision FROM items WHERE project_id = ?1 AND external_id = ?2")?
                .query_row(params![project_id, external_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            out.push(Submitted {
                external_id,
                item_id,
                decision: serde_json::from_str(&stored)?,
                duplicate: true,
            });
            continue;
        };
        let task = match (&decision.outcome, &decision.audit) {
            (Outcome::Review { route }, _) => Some((Stage::Review, route, V::Null)),
            (Outcome::Auto { .. }, Some(route)) => Some((Stage::Audit, route, text("audit sample".into()))),
            (Outcome::Auto { .. }, None) => None,
        };
        if let Some((stage, route, reason)) = task {
            tasks.extend([
                V::Integer(project_id),
                V::Integer(item_id),
                text(stage.as_str().into()),
                text(route.queue.clone()),
                V::Integer(i64::from(route.tier)),
                V::Integer(i64::from(route.priority)),
                V::Integer(i64::from(route.overlap)),
                V::Integer(i64::from(route.overlap)),
                reason,
                V::Integer(now),
                text("open".into()),
            ]);
        }
        if let Some(label) = &auto_label {
            labels.extend([
                V::Integer(project_id),
                V::Integer(item_id),
                text(label.clone()),
                text(Source::Auto.as_str().into()),
                opt(model),
                opt(model_version),
                V::Integer(i64::from(decision.policy_version)),
                V::Integer(now),
            ]);
        }
        new_items.push((item_id, auto_label));
        out.push(Submitted {
            external_id,
            item_id,
            decision,
            duplicate: false,
        });
    }
    let task_of: HashMap<i64, i64> = insert_rows(
        c,
        "tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, reason, created_at, state)",
        11,
        "",
        &tasks,
        Some((1, "item_id")),
    )?
    .into_iter()
    .filter_map(|(k, id)| match k {
        V::Integer(item_id) => Some((item_id, id)),
        _ => None,
    })
    .collect();
    insert_rows(
        c,
        "labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at)",
        8,
        "",
        &labels,
        None,
    )?;
    // One event per item, for the item, its decision, its task and (auto) its resolution.
    // The decision is not copied into the event: it is the item's, never rewritten, and
    // `event_row` puts it back (about half of each event's bytes otherwise; see `DECIDED`).
    let mut events = Vec::with_capacity(new_items.len() * 7);
    for (item_id, auto_label) in new_items {
        let task = task_of.get(&item_id).copied();
        let data = format!(
            r#"{{"tasks":{},"resolved":{}}}"#,
            serde_json::to_string(&task.into_iter().collect::<Vec<_>>())?,
            serde_json::to_string(&auto_label)?
        );
        events.extend([
            V::Integer(project_id),
            V::Integer(item_id),
            task.map_or(V::Null, V::Integer),
            V::Integer(now),
            text(actor.to_string()),
            text(data),
            text(DECIDED.into()),
        ]);
    }
    insert_rows(
        c,
        "events (project_id, item_id, task_id, at, actor, data, kind)",
        7,
        "",
        &events,
        None,
    )?;
    Ok(out)
}

pub(super) fn claim(c: &Connection, req: &ClaimRequest, now: Millis) -> Result<Option<ClaimedTask>> {
    if req.tiers.is_empty() {
        return Ok(None);
    }
    let held: Option<Option<String>> = c
        .prepare_cached(
            "SELECT held_reason FROM reviewer_quality WHERE project_id = ?1 AND reviewer_id = ?2 AND held_at IS NOT NULL",
        )?
        .query_row(params![req.project_id, req.reviewer_id], |r| r.get(0))
        .optional()?;
    if let Some(reason) = held {
        return Err(StoreError::held(&req.reviewer_name, reason.as_deref()));
    }
    // Tiers are small integers (u8), so writing them into the SQL is safe, and it lets
    // the planner walk the claim index in order.
    let tiers = req.tiers.iter().map(u8::to_string).collect::<Vec<_>>().join(",");
    let queue_filter = if req.queue.is_some() {
        "AND t.queue = ?3"
    } else {
        "AND ?3 IS NULL"
    };
    let sql = format!(
        "SELECT t.id, t.item_id, t.stage, t.queue, t.tier, t.priority, t.overlap FROM tasks t
         WHERE t.project_id = ?1 AND t.available > 0 AND t.gold = 0 {queue_filter} AND t.tier IN ({tiers})
           AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = t.item_id AND r.reviewer_id = ?2)
         ORDER BY t.priority DESC, t.item_id, t.id LIMIT 1"
    );
    let row: Option<(i64, i64, String, String, u8, i32, u8)> = c
        .prepare_cached(&sql)?
        .query_row(params![req.project_id, req.reviewer_id, req.queue], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .optional()?;
    let Some((mut task_id, mut item_id, stage, queue, tier, priority, overlap)) = row else {
        return Ok(None);
    };
    let stage = Stage::parse(&stage).ok_or_else(|| StoreError::Backend(format!("unknown stage {stage}")))?;
    // Gold passes for the regular task it replaces: same queue, tier and stage, and it is
    // handed out only when such a task exists.
    let gold_item: Option<i64> = if req.gold && stage == Stage::Review {
        c.prepare_cached(
            "SELECT i.id FROM items i WHERE i.project_id = ?1 AND i.gold_label IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = i.id AND r.reviewer_id = ?2)
             ORDER BY random() LIMIT 1",
        )?
        .query_row(params![req.project_id, req.reviewer_id], |r| r.get(0))
        .optional()?
    } else {
        None
    };
    // Everything that can fail on the stored data is read before anything is written, so
    // that a claim that fails has written nothing ("submit and next" keeps the answer then).
    let (external_id, payload, attributes, prediction) = c
        .prepare_cached("SELECT external_id, payload, attributes, prediction FROM items WHERE id = ?1")?
        .query_row([gold_item.unwrap_or(item_id)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                json_col(r, 1)?,
                json_col(r, 2)?,
                opt_json::<Prediction>(r, 3)?,
            ))
        })?;
    let expires = now + req.lease_ms;
    match gold_item {
        Some(gold) => {
            c.prepare_cached(
                "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, created_at, gold)
                 VALUES (?1, ?2, 'review', ?3, ?4, ?5, ?6, 0, 'open', ?7, 1)",
            )?
            .execute(params![req.project_id, gold, queue, tier, priority, overlap, now])?;
            task_id = c.last_insert_rowid();
            item_id = gold;
        }
        None => {
            c.prepare_cached("UPDATE tasks SET available = available - 1 WHERE id = ?1")?
                .execute([task_id])?;
        }
    }
    c.prepare_cached(
        "INSERT INTO leases (task_id, item_id, reviewer_id, granted_at, expires_at, lease_ms, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active')",
    )?
    .execute(params![task_id, item_id, req.reviewer_id, now, expires, req.lease_ms])?;
    let lease_id = c.last_insert_rowid();
    c.prepare_cached("INSERT OR IGNORE INTO item_reviewers (item_id, reviewer_id) VALUES (?1, ?2)")?
        .execute(params![item_id, req.reviewer_id])?;
    event(
        c,
        Some(req.project_id),
        Some(item_id),
        Some(task_id),
        now,
        "lease.granted",
        &format!("reviewer:{}", req.reviewer_name),
        &json!({"lease_id": lease_id, "reviewer_id": req.reviewer_id, "expires_at": expires, "stage": stage}),
    )?;
    Ok(Some(ClaimedTask {
        task_id,
        lease_id,
        lease_expires_at: expires,
        stage,
        queue,
        tier,
        external_id,
        payload,
        attributes,
        prediction,
    }))
}

struct ActiveLease {
    project_id: i64,
    item_id: i64,
    granted_at: Millis,
    lease_ms: i64,
}

/// The lease if it is active, unexpired, and held by this reviewer on this task.
fn active_lease(c: &Connection, task_id: i64, lease_id: i64, reviewer_id: i64, now: Millis) -> Result<ActiveLease> {
    c.prepare_cached(
        "SELECT t.project_id, l.item_id, l.granted_at, l.lease_ms FROM leases l JOIN tasks t ON t.id = l.task_id
         WHERE l.id = ?1 AND l.task_id = ?2 AND l.reviewer_id = ?3 AND l.state = 'active' AND l.expires_at > ?4",
    )?
    .query_row(params![lease_id, task_id, reviewer_id, now], |r| {
        Ok(ActiveLease {
            project_id: r.get(0)?,
            item_id: r.get(1)?,
            granted_at: r.get(2)?,
            lease_ms: r.get(3)?,
        })
    })
    .optional()?
    .ok_or_else(StoreError::lease_lost)
}

pub(super) fn heartbeat(c: &Connection, task_id: i64, lease_id: i64, reviewer_id: i64, now: Millis) -> Result<Millis> {
    let lease = active_lease(c, task_id, lease_id, reviewer_id, now)?;
    let expires = now + lease.lease_ms;
    c.prepare_cached("UPDATE leases SET expires_at = ?2 WHERE id = ?1")?
        .execute(params![lease_id, expires])?;
    event(
        c,
        Some(lease.project_id),
        Some(lease.item_id),
        Some(task_id),
        now,
        "lease.extended",
        &format!("reviewer_id:{reviewer_id}"),
        &json!({"lease_id": lease_id, "expires_at": expires}),
    )?;
    Ok(expires)
}

struct TaskRow {
    stage: Stage,
    queue: String,
    tier: u8,
    priority: i32,
    overlap: u8,
    gold: bool,
}

/// The scorer for a task's voters: weights come from the reviewers' gold records.
fn scorer_for(c: &Connection, project_id: i64, voters: &[i64], judging: &Judging) -> Result<Scorer> {
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
                let (answered, correct): (u64, u64) = c
                    .prepare_cached(
                        "SELECT gold_answers, gold_correct FROM reviewer_quality WHERE project_id = ?1 AND reviewer_id = ?2",
                    )?
                    .query_row(params![project_id, v], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?
                    .unwrap_or((0, 0));
                weights.insert(*v, quality::reliability(correct, answered));
            }
            Scorer::Weighted(weights)
        }
    })
}

/// An answer to a gold task: scored against the known label, never resolved or fed to the
/// label feed, and answered exactly as a regular task of the same overlap would be.
#[allow(clippy::too_many_arguments)]
fn gold_answer(
    c: &Connection,
    r: &NewReview,
    judging: &Judging,
    t: &TaskRow,
    project_id: i64,
    item_id: i64,
    granted_at: Millis,
    now: Millis,
) -> Result<ReviewResult> {
    if let Answer::Label(l) = &r.answer {
        let labels: String = c
            .prepare_cached("SELECT labels FROM projects WHERE id = ?1")?
            .query_row([project_id], |row| row.get(0))?;
        let names: Vec<String> = serde_json::from_str(&labels)?;
        LabelSet::parse(&names).map_err(StoreError::from)?.answer("label", l)?;
    }
    let actor = format!("reviewer:{}", r.reviewer_name);
    let skip = matches!(r.answer, Answer::Skip { .. });
    c.prepare_cached("UPDATE leases SET state = ?2, ended_at = ?3 WHERE id = ?1")?
        .execute(params![r.lease_id, if skip { "skipped" } else { "answered" }, now])?;
    close_task(c, r.task_id, now, t.overlap > 1, false)?;
    let (outcome, resolution) = match &r.answer {
        Answer::Skip { .. } => ("requeued", None),
        Answer::Escalate { .. } => ("adjudicate", None),
        Answer::Label(l) => {
            let gold: String = c
                .prepare_cached("SELECT gold_label FROM items WHERE id = ?1")?
                .query_row([item_id], |row| row.get(0))?;
            let correct = *l == gold;
            c.prepare_cached(
                "INSERT INTO reviewer_quality (project_id, reviewer_id, gold_answers, gold_correct) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (project_id, reviewer_id) DO UPDATE SET gold_answers = gold_answers + 1,
                     gold_correct = gold_correct + excluded.gold_correct",
            )?
            .execute(params![project_id, r.reviewer_id, i64::from(correct)])?;
            let (answered, right, held): (u64, u64, Option<i64>) = c
                .prepare_cached(
                    "SELECT gold_answers, gold_correct, held_at FROM reviewer_quality WHERE project_id = ?1 AND reviewer_id = ?2",
                )?
                .query_row(params![project_id, r.reviewer_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(r.task_id),
                now,
                "gold.answered",
                &actor,
                &json!({"reviewer_id": r.reviewer_id, "correct": correct, "gold_answers": answered, "gold_correct": right}),
            )?;
            if let Some(q) = judging.quality
                && held.is_none()
                && quality::should_hold(right, answered, q.min_accuracy, u64::from(q.min_gold))
            {
                let reason = format!(
                    "gold accuracy {right}/{answered}: its 95% upper bound is below {}",
                    q.min_accuracy
                );
                c.prepare_cached(
                    "UPDATE reviewer_quality SET held_at = ?3, held_reason = ?4 WHERE project_id = ?1 AND reviewer_id = ?2",
                )?
                .execute(params![project_id, r.reviewer_id, now, reason])?;
                event(
                    c,
                    Some(project_id),
                    None,
                    None,
                    now,
                    "reviewer.held",
                    "system",
                    &json!({"reviewer_id": r.reviewer_id, "reviewer": r.reviewer_name, "reason": reason}),
                )?;
            }
            if t.overlap > 1 {
                ("waiting", None)
            } else {
                let method = judging.method();
                (
                    "resolved",
                    Some(Resolution {
                        label: l.clone(),
                        source: Source::Human,
                        method: method.to_string(),
                        confidence: 1.0,
                        reviewers: vec![r.reviewer_name.clone()],
                        resolved_at: now,
                    }),
                )
            }
        }
    };
    let result = ReviewResult {
        review_id: r.review_id.clone(),
        outcome: outcome.to_string(),
        resolution,
        more_reviewers: false,
    };
    record_review(c, r, project_id, item_id, granted_at, &result, now)?;
    Ok(result)
}

/// Returns the result and the task's project.
pub(super) fn submit_review(c: &Connection, r: NewReview, now: Millis) -> Result<(ReviewResult, i64)> {
    let stored: Option<(String, i64)> = c
        .prepare_cached(
            "SELECT w.result, t.project_id FROM reviews w JOIN tasks t ON t.id = w.task_id
             WHERE w.task_id = ?1 AND w.reviewer_id = ?2 AND w.review_id = ?3",
        )?
        .query_row(params![r.task_id, r.reviewer_id, r.review_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    if let Some((s, project_id)) = stored {
        return Ok((serde_json::from_str(&s)?, project_id));
    }
    let lease = active_lease(c, r.task_id, r.lease_id, r.reviewer_id, now)?;
    let (project_id, item_id) = (lease.project_id, lease.item_id);
    let judging = r.judging.get(&project_id).cloned().unwrap_or_default();
    let t = c
        .prepare_cached("SELECT stage, queue, tier, priority, overlap, gold FROM tasks WHERE id = ?1")?
        .query_row([r.task_id], |row| {
            let stage: String = row.get(0)?;
            Ok(TaskRow {
                stage: Stage::parse(&stage).unwrap_or(Stage::Review),
                queue: row.get(1)?,
                tier: row.get(2)?,
                priority: row.get(3)?,
                overlap: row.get(4)?,
                gold: row.get(5)?,
            })
        })?;
    if let Answer::Label(l) = &r.answer {
        let labels: String = c
            .prepare_cached("SELECT labels FROM projects WHERE id = ?1")?
            .query_row([project_id], |row| row.get(0))?;
        let names: Vec<String> = serde_json::from_str(&labels)?;
        LabelSet::parse(&names).map_err(StoreError::from)?.answer("label", l)?;
    }
    if t.gold {
        return gold_answer(c, &r, &judging, &t, project_id, item_id, lease.granted_at, now)
            .map(|res| (res, project_id));
    }
    // In the order given; sorted here, not by `ORDER BY id`: the task's index is
    // (task_id, reviewer_id, review_id), so SQLite would open a sorter for every answer.
    let mut earlier = c
        .prepare_cached(
            "SELECT reviewer_id, kind, label, reason, id FROM reviews WHERE task_id = ?1 AND kind != 'skip'",
        )?
        .query_map([r.task_id], |row| {
            let kind: String = row.get(1)?;
            let answer = match kind.as_str() {
                "label" => Answer::Label(row.get::<_, Option<String>>(2)?.unwrap_or_default()),
                _ => Answer::Escalate {
                    reason: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                },
            };
            Ok((row.get::<_, i64>(4)?, row.get::<_, i64>(0)?, answer))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    earlier.sort_unstable_by_key(|(id, _, _)| *id);
    let earlier: Vec<(i64, Answer)> = earlier.into_iter().map(|(_, v, a)| (v, a)).collect();
    let mut voters: Vec<i64> = earlier.iter().map(|(v, _)| *v).collect();
    voters.push(r.reviewer_id);
    let scorer = scorer_for(c, project_id, &voters, &judging)?;
    let rule = task::Rule {
        scorer: &scorer,
        min_confidence: judging.consensus.min_confidence,
        max_overlap: judging.consensus.max_overlap,
    };
    let next = task::after_answer(t.stage, t.tier, t.overlap, &earlier, (r.reviewer_id, &r.answer), &rule);
    let actor = format!("reviewer:{}", r.reviewer_name);
    let skip = matches!(r.answer, Answer::Skip { .. });
    let lease_state = if skip { "skipped" } else { "answered" };
    c.prepare_cached("UPDATE leases SET state = ?2, ended_at = ?3 WHERE id = ?1")?
        .execute(params![r.lease_id, lease_state, now])?;
    // An answer that closes the task is counted by the same UPDATE that closes it.
    let closes = matches!(next, Next::Adjudicate { .. } | Next::Resolve { .. });
    if skip {
        c.prepare_cached("UPDATE tasks SET available = available + 1 WHERE id = ?1")?
            .execute([r.task_id])?;
    } else if !closes {
        c.prepare_cached("UPDATE tasks SET answered = answered + 1 WHERE id = ?1")?
            .execute([r.task_id])?;
    }

    let mut resolution = None;
    let mut more_reviewers = false;
    let outcome = match &next {
        Next::Wait => "waiting",
        Next::Requeue => "requeued",
        Next::MoreReviewers => {
            c.prepare_cached("UPDATE tasks SET overlap = overlap + 1, available = available + 1 WHERE id = ?1")?
                .execute([r.task_id])?;
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(r.task_id),
                now,
                "task.overlap_increased",
                &actor,
                &json!({"overlap": t.overlap + 1, "reason": "consensus below min_confidence"}),
            )?;
            more_reviewers = true;
            "waiting"
        }
        Next::Adjudicate { tier, reason } => {
            close_task(c, r.task_id, now, t.overlap > 1, !skip)?;
            let route = Route {
                queue: t.queue.clone(),
                tier: *tier,
                priority: t.priority,
                overlap: 1,
            };
            let new_task = insert_task(c, project_id, item_id, Stage::Adjudicate, &route, Some(reason), now)?;
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(new_task),
                now,
                "task.escalated",
                &actor,
                &json!({"from_task": r.task_id, "tier": tier, "reason": reason}),
            )?;
            "adjudicate"
        }
        Next::Resolve {
            label,
            source,
            method,
            confidence,
        } => {
            close_task(c, r.task_id, now, t.overlap > 1, !skip)?;
            // The first label on a task (overlap 1, the common case) has no one to look up.
            let mut reviewers = if earlier.iter().any(|(_, a)| matches!(a, Answer::Label(_))) {
                c.prepare_cached(
                    "SELECT DISTINCT v.name FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id
                     WHERE w.task_id = ?1 AND w.kind = 'label' ORDER BY v.name",
                )?
                .query_map([r.task_id], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?
            } else {
                Vec::new()
            };
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
            let (current, policy_version, was_auto): (Option<String>, u32, bool) = c
                .prepare_cached("SELECT resolved_label, policy_version, outcome = 'auto' FROM items WHERE id = ?1")?
                .query_row([item_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            // An audit, or the adjudication of a contested audit (only audited items of an
            // auto decision have tasks): it confirms or corrects the auto label.
            let audit = t.stage == Stage::Audit || (t.stage == Stage::Adjudicate && was_auto);
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
                )?;
                // A human has now verified the label: the feed says so (and the model may
                // learn from it).
                insert_label(
                    c,
                    project_id,
                    item_id,
                    label,
                    Source::Human,
                    None,
                    None,
                    policy_version,
                    now,
                )?;
                resolution = Some(res);
                "confirmed"
            } else {
                c.prepare_cached(
                    "UPDATE items SET resolved_label = ?2, resolution = ?3, resolved_at = ?4 WHERE id = ?1",
                )?
                .execute(params![item_id, label, serde_json::to_string(&res)?, now])?;
                insert_label(c, project_id, item_id, label, *source, None, None, policy_version, now)?;
                let kind = if audit { "item.corrected" } else { "item.resolved" };
                event(
                    c,
                    Some(project_id),
                    Some(item_id),
                    Some(r.task_id),
                    now,
                    kind,
                    &actor,
                    &json!({"label": label, "previous": current, "source": source, "method": method, "confidence": confidence, "reviewers": res.reviewers}),
                )?;
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
    record_review(c, &r, project_id, item_id, lease.granted_at, &result, now)?;
    Ok((result, project_id))
}

/// Stores an answer, counts it in the reviewer's day, and writes its `review.submitted`
/// event; `result` is what the reviewer was told, kept so that a retry of the same
/// `review_id` gets it again.
fn record_review(
    c: &Connection,
    r: &NewReview,
    project_id: i64,
    item_id: i64,
    granted_at: Millis,
    result: &ReviewResult,
    now: Millis,
) -> Result<()> {
    let (label, reason) = match &r.answer {
        Answer::Label(l) => (Some(l.as_str()), None),
        Answer::Escalate { reason } | Answer::Skip { reason } => (None, Some(reason.as_str())),
    };
    c.prepare_cached(
        "INSERT INTO reviews (review_id, reviewer_id, task_id, item_id, lease_id, kind, label, reason, failure_category, note,
                              claimed_at, answered_at, result)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        r.review_id, r.reviewer_id, r.task_id, item_id, r.lease_id, r.answer.kind(), label, reason,
        r.failure_category, r.note, granted_at, now, serde_json::to_string(result)?
    ])?;
    c.prepare_cached(
        "INSERT INTO reviewer_days (day, reviewer_id, answers) VALUES (?1, ?2, 1)
         ON CONFLICT (day, reviewer_id) DO UPDATE SET answers = answers + 1",
    )?
    .execute(params![now.div_euclid(DAY_MS), r.reviewer_id])?;
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
}

/// Closes a task: no more slots, and any other reviewer's active lease on it ends (with an
/// event each). Called as an answer is stored: with an overlap of 1 that answer's lease was
/// the only one the task could have (`available` counts the rest), so `others_may_hold`
/// is false and the search for other leases (~4% of the writer's time in a claim-and-answer
/// loop, by `perf`) is skipped. With `answered`, the answer that closes it is counted too.
fn close_task(c: &Connection, task_id: i64, now: Millis, others_may_hold: bool, answered: bool) -> Result<()> {
    c.prepare_cached(
        "UPDATE tasks SET state = 'done', available = 0, closed_at = ?2, answered = answered + ?3 WHERE id = ?1",
    )?
    .execute(params![task_id, now, i64::from(answered)])?;
    if !others_may_hold {
        return Ok(());
    }
    let cancelled = c
        .prepare_cached(
            "UPDATE leases SET state = 'cancelled', ended_at = ?2 WHERE task_id = ?1 AND state = 'active'
             RETURNING id, item_id, reviewer_id, (SELECT project_id FROM tasks WHERE id = ?1)",
        )?
        .query_map(params![task_id, now], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
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
        )?;
    }
    Ok(())
}

/// Returns the project of each lease expired.
pub(super) fn expire_leases(c: &Connection, now: Millis, limit: usize) -> Result<Vec<i64>> {
    let expired = c
        .prepare_cached(
            "SELECT l.id, l.task_id, l.item_id, l.reviewer_id, t.project_id FROM leases l JOIN tasks t ON t.id = l.task_id
             WHERE l.state = 'active' AND l.expires_at <= ?1 ORDER BY l.expires_at LIMIT ?2",
        )?
        .query_map(params![now, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (lease_id, task_id, item_id, reviewer_id, project_id) in &expired {
        c.prepare_cached("UPDATE leases SET state = 'expired', ended_at = ?2 WHERE id = ?1")?
            .execute(params![lease_id, now])?;
        // A gold task exists only for the reviewer it was made for: it closes, it does not
        // go back to a queue.
        c.prepare_cached(
            "UPDATE tasks SET available = CASE WHEN gold = 1 THEN 0 ELSE available + 1 END,
                              state = CASE WHEN gold = 1 THEN 'done' ELSE state END,
                              closed_at = CASE WHEN gold = 1 THEN ?2 ELSE closed_at END
             WHERE id = ?1 AND state = 'open'",
        )?
        .execute(params![task_id, now])?;
        c.prepare_cached("DELETE FROM item_reviewers WHERE item_id = ?1 AND reviewer_id = ?2")?
            .execute(params![item_id, reviewer_id])?;
        event(
            c,
            Some(*project_id),
            Some(*item_id),
            Some(*task_id),
            now,
            "lease.expired",
            "system",
            &json!({"lease_id": lease_id, "reviewer_id": reviewer_id}),
        )?;
    }
    Ok(expired.into_iter().map(|e| e.4).collect())
}

pub(super) fn labels(c: &Connection, project_id: i64, after: i64, limit: usize) -> Result<Vec<LabelRecord>> {
    c.prepare_cached(
        "SELECT l.cursor, i.external_id, l.label, l.source, l.model, l.model_version, l.policy_version, l.resolved_at
         FROM labels l JOIN items i ON i.id = l.item_id WHERE l.project_id = ?1 AND l.cursor > ?2 ORDER BY l.cursor LIMIT ?3",
    )?
    .query_map(params![project_id, after, limit as i64], |r| {
        Ok(LabelRecord {
            cursor: r.get(0)?,
            external_id: r.get(1)?,
            label: r.get(2)?,
            source: r.get(3)?,
            model: r.get(4)?,
            model_version: r.get(5)?,
            policy_version: r.get(6)?,
            resolved_at: r.get(7)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

/// The kind of event whose `decision` (see `submit_items`) is read from its item.
const DECIDED: &str = "item.decided";

pub(super) fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRecord> {
    let mut data = json_col(r, 7)?;
    // Events stored before the decision was left out still carry it.
    if let Value::Object(fields) = &mut data
        && !fields.contains_key("decision")
        && r.get_ref(8)? != rusqlite::types::ValueRef::Null
    {
        fields.insert("decision".into(), json_col(r, 8)?);
    }
    Ok(EventRecord {
        seq: r.get(0)?,
        at: r.get(1)?,
        kind: r.get(2)?,
        actor: r.get(3)?,
        project_id: r.get(4)?,
        external_id: r.get(5)?,
        task_id: r.get(6)?,
        data,
    })
}

/// An event's columns, and its item's decision if it is an `item.decided` event.
pub(super) const EVENT_COLUMNS: &str = "e.seq, e.at, e.kind, e.actor, e.project_id, i.external_id, e.task_id, e.data,
     CASE WHEN e.kind = 'item.decided' THEN i.decision END
     FROM events e LEFT JOIN items i ON i.id = e.item_id";

pub(super) fn events(c: &Connection, project_id: Option<i64>, after: i64, limit: usize) -> Result<Vec<EventRecord>> {
    let sql = match project_id {
        Some(_) => format!("SELECT {EVENT_COLUMNS} WHERE e.project_id = ?1 AND e.seq > ?2 ORDER BY e.seq LIMIT ?3"),
        None => format!("SELECT {EVENT_COLUMNS} WHERE ?1 IS NULL AND e.seq > ?2 ORDER BY e.seq LIMIT ?3"),
    };
    c.prepare_cached(&sql)?
        .query_map(params![project_id, after, limit as i64], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Into::into)
}

pub(super) fn stats(c: &Connection, project_id: i64, now: Millis) -> Result<Stats> {
    let (items, auto, review, resolved): (i64, i64, i64, i64) = c
        .prepare_cached(
            "SELECT count(*), coalesce(sum(outcome = 'auto'), 0), coalesce(sum(outcome = 'review'), 0),
                coalesce(sum(resolved_label IS NOT NULL), 0) FROM items WHERE project_id = ?1 AND gold_label IS NULL",
        )?
        .query_row([project_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let queues = c
        .prepare_cached(
            "SELECT queue, count(*), min(created_at) FROM tasks WHERE project_id = ?1 AND state = 'open' AND gold = 0
             GROUP BY queue ORDER BY queue",
        )?
        .query_map([project_id], |r| {
            Ok(QueueStats {
                name: r.get(0)?,
                open: r.get(1)?,
                oldest_age_ms: (now - r.get::<_, i64>(2)?).max(0),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (audits_confirmed, audits_corrected): (i64, i64) = c
        .prepare_cached(
            "SELECT coalesce(sum(kind = 'audit.confirmed'), 0), coalesce(sum(kind = 'item.corrected'), 0) FROM events
             WHERE project_id = ?1 AND kind IN ('audit.confirmed', 'item.corrected')",
        )?
        .query_row([project_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
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

pub(super) fn item(c: &Connection, project_id: i64, external_id: &str) -> Result<Option<ItemDetail>> {
    let row = c
        .prepare_cached(
            "SELECT id, payload, attributes, prediction, created_at, decision, resolution FROM items WHERE project_id = ?1 AND external_id = ?2",
        )?
        .query_row(params![project_id, external_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                json_col(r, 1)?,
                json_col(r, 2)?,
                opt_json::<Prediction>(r, 3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                opt_json::<Resolution>(r, 6)?,
            ))
        })
        .optional()?;
    let Some((item_id, payload, attributes, prediction, created_at, decision, resolution)) = row else {
        return Ok(None);
    };
    let tasks = c
        .prepare_cached(
            "SELECT id, stage, queue, tier, priority, overlap, answered, state, reason, created_at, closed_at FROM tasks WHERE item_id = ?1 ORDER BY id",
        )?
        .query_map([item_id], |r| {
            Ok(TaskRecord {
                task_id: r.get(0)?,
                stage: Stage::parse(&r.get::<_, String>(1)?).unwrap_or(Stage::Review),
                queue: r.get(2)?,
                tier: r.get(3)?,
                priority: r.get(4)?,
                overlap: r.get(5)?,
                answered: r.get(6)?,
                state: r.get(7)?,
                reason: r.get(8)?,
                created_at: r.get(9)?,
                closed_at: r.get(10)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let reviews = c
        .prepare_cached(
            "SELECT w.review_id, w.task_id, v.name, w.kind, w.label, w.reason, w.failure_category, w.note, w.claimed_at, w.answered_at
             FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id WHERE w.item_id = ?1 ORDER BY w.id",
        )?
        .query_map([item_id], |r| {
            Ok(ReviewRecord {
                review_id: r.get(0)?,
                task_id: r.get(1)?,
                reviewer: r.get(2)?,
                answer: r.get(3)?,
                label: r.get(4)?,
                reason: r.get(5)?,
                failure_category: r.get(6)?,
                note: r.get(7)?,
                claimed_at: r.get(8)?,
                answered_at: r.get(9)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let events = c
        .prepare_cached(&format!("SELECT {EVENT_COLUMNS} WHERE e.item_id = ?1 ORDER BY e.seq"))?
        .query_map([item_id], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(ItemDetail {
        item_id,
        external_id: external_id.to_string(),
        payload,
        attributes,
        prediction,
        created_at,
        decision: serde_json::from_str(&decision)?,
        tasks,
        reviews,
        resolution,
        events,
    }))
}

pub(super) fn add_gold(
    c: &Connection,
    project_id: i64,
    items: Vec<NewGold>,
    actor: &str,
    now: Millis,
) -> Result<usize> {
    let labels: String = c
        .prepare_cached("SELECT labels FROM projects WHERE id = ?1")?
        .query_row([project_id], |row| row.get(0))?;
    let names: Vec<String> = serde_json::from_str(&labels)?;
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
        let n = c
            .prepare_cached(
                "INSERT INTO items (project_id, external_id, payload, attributes, decision, outcome, policy_version, created_at,
                                    gold_label, prediction)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'review', 0, ?6, ?7, ?8) ON CONFLICT (project_id, external_id) DO NOTHING",
            )?
            .execute(params![
                project_id,
                g.external_id,
                g.payload.to_string(),
                g.attributes.to_string(),
                decision,
                now,
                g.label,
                g.prediction.as_ref().map(serde_json::to_string).transpose()?
            ])?;
        added += n;
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
    )?;
    Ok(added)
}

pub(super) fn reviewer_stats(c: &Connection, project_id: i64) -> Result<Vec<ReviewerStats>> {
    let mut reviewers = c
        .prepare_cached(
            "SELECT v.id, v.name, coalesce(q.gold_answers, 0), coalesce(q.gold_correct, 0), q.held_at IS NOT NULL, q.held_reason
             FROM reviewer_projects p JOIN reviewers v ON v.id = p.reviewer_id
             LEFT JOIN reviewer_quality q ON q.project_id = p.project_id AND q.reviewer_id = v.id
             WHERE p.project_id = ?1 ORDER BY v.name",
        )?
        .query_map([project_id], |r| {
            Ok(ReviewerStats {
                reviewer_id: r.get(0)?,
                name: r.get(1)?,
                answers: 0,
                gold_answers: r.get(2)?,
                gold_correct: r.get(3)?,
                agree_with_resolution: 0,
                compared_with_resolution: 0,
                median_time_on_task_ms: None,
                held: r.get(4)?,
                held_reason: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // One pass over the project's answers (reviews has no index by reviewer: see
    // migration 0006), grouped here.
    let mut rows: HashMap<i64, Vec<AnswerRow>> = HashMap::new();
    let mut stmt = c.prepare_cached(
        "SELECT w.reviewer_id, w.label, i.resolved_label, w.answered_at - w.claimed_at FROM reviews w
         JOIN tasks t ON t.id = w.task_id JOIN items i ON i.id = w.item_id
         WHERE t.project_id = ?1 AND t.gold = 0 AND w.kind = 'label'",
    )?;
    let mut q = stmt.query([project_id])?;
    while let Some(r) = q.next()? {
        rows.entry(r.get(0)?)
            .or_default()
            .push((r.get(1)?, r.get(2)?, r.get(3)?));
    }
    for s in &mut reviewers {
        fill_answer_stats(s, rows.remove(&s.reviewer_id).unwrap_or_default());
    }
    Ok(reviewers)
}

/// An answer as reviewer statistics see it: (label, resolved label, time on task).
pub(crate) type AnswerRow = (Option<String>, Option<String>, i64);

/// Counts, agreement with resolutions and the median time on task from a reviewer's
/// (label, resolved label, time on task) rows.
pub(crate) fn fill_answer_stats(s: &mut ReviewerStats, rows: Vec<AnswerRow>) {
    s.answers = rows.len() as i64;
    for (label, resolved, _) in &rows {
        if let (Some(l), Some(r)) = (label, resolved) {
            s.compared_with_resolution += 1;
            s.agree_with_resolution += i64::from(l == r);
        }
    }
    let mut times: Vec<i64> = rows.iter().map(|r| r.2).collect();
    times.sort_unstable();
    s.median_time_on_task_ms = (!times.is_empty()).then(|| times[times.len() / 2]);
}

/// The id of reviewer `name` if granted the project; `NotFound` otherwise.
pub(super) fn reviewer_in_project(c: &Connection, name: &str, project_id: i64) -> Result<i64> {
    c.prepare_cached(
        "SELECT v.id FROM reviewers v JOIN reviewer_projects p ON p.reviewer_id = v.id WHERE v.name = ?1 AND p.project_id = ?2",
    )?
    .query_row(params![name, project_id], |r| r.get(0))
    .optional()?
    .ok_or_else(|| StoreError::not_found(format!("reviewer '{name}' in this project")))
}

pub(super) fn release_reviewer(
    c: &Connection,
    project_id: i64,
    reviewer: &str,
    actor: &str,
    now: Millis,
) -> Result<()> {
    let id = reviewer_in_project(c, reviewer, project_id)?;
    c.prepare_cached(
        "UPDATE reviewer_quality SET held_at = NULL, held_reason = NULL, gold_answers = 0, gold_correct = 0
         WHERE project_id = ?1 AND reviewer_id = ?2",
    )?
    .execute(params![project_id, id])?;
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        "reviewer.released",
        actor,
        &json!({"reviewer_id": id, "reviewer": reviewer}),
    )?;
    Ok(())
}

pub(super) fn project_answers(c: &Connection, project_id: i64) -> Result<Vec<ProjectAnswer>> {
    c.prepare_cached(
        "SELECT w.reviewer_id, v.name, i.external_id, w.label FROM reviews w
         JOIN tasks t ON t.id = w.task_id JOIN reviewers v ON v.id = w.reviewer_id JOIN items i ON i.id = w.item_id
         WHERE t.project_id = ?1 AND t.stage = 'review' AND t.gold = 0 AND w.kind = 'label' ORDER BY w.id",
    )?
    .query_map([project_id], |r| {
        Ok(ProjectAnswer {
            reviewer_id: r.get(0)?,
            reviewer: r.get(1)?,
            external_id: r.get(2)?,
            label: r.get(3)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

pub(super) fn training_examples(
    c: &Connection,
    project_id: i64,
    after: i64,
    limit: usize,
) -> Result<Vec<TrainingExample>> {
    c.prepare_cached(
        "SELECT l.cursor, i.external_id, i.payload, i.attributes, l.label FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = ?1 AND l.cursor > ?2 AND l.source IN ('human', 'adjudicated') ORDER BY l.cursor LIMIT ?3",
    )?
    .query_map(params![project_id, after, limit as i64], |r| {
        Ok(TrainingExample {
            cursor: r.get(0)?,
            external_id: r.get(1)?,
            payload: json_col(r, 2)?,
            attributes: json_col(r, 3)?,
            label: r.get(4)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

pub(super) fn save_model(c: &Connection, project_id: i64, m: ModelSnapshot, now: Millis) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO model_snapshots (project_id, version, model, examples_seen, trained_through, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (project_id, version) DO NOTHING",
    )?
    .execute(params![
        project_id,
        m.version,
        m.model,
        m.examples_seen as i64,
        m.trained_through,
        now
    ])?;
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
}

pub(super) fn latest_model(c: &Connection, project_id: i64) -> Result<Option<ModelSnapshot>> {
    c.prepare_cached(
        "SELECT version, model, examples_seen, trained_through, created_at FROM model_snapshots
         WHERE project_id = ?1 ORDER BY version DESC LIMIT 1",
    )?
    .query_row([project_id], |r| {
        Ok(ModelSnapshot {
            version: r.get(0)?,
            model: r.get(1)?,
            examples_seen: r.get::<_, i64>(2)? as u64,
            trained_through: r.get(3)?,
            created_at: r.get(4)?,
        })
    })
    .optional()
    .map_err(Into::into)
}

pub(super) fn verified_predictions(c: &Connection, project_id: i64, limit: usize) -> Result<Vec<VerifiedPrediction>> {
    let rows = c
        .prepare_cached(
            "SELECT i.external_id, i.prediction, l.label, i.outcome = 'auto', l.resolved_at,
                    instr(i.decision, 'active_learning: chosen') > 0, l.source = 'adjudicated',
                    (SELECT count(*) FROM reviews w WHERE w.item_id = i.id AND w.kind = 'label')
             FROM labels l JOIN items i ON i.id = l.item_id
             WHERE l.project_id = ?1 AND l.source IN ('human', 'adjudicated') AND i.prediction IS NOT NULL
             ORDER BY l.cursor DESC LIMIT ?2",
        )?
        .query_map(params![project_id, limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                opt_json::<Prediction>(r, 1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, bool>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(external_id, p, human_label, auto, resolved_at, chosen_for_learning, adjudicated, votes)| {
                p.map(|prediction| VerifiedPrediction {
                    external_id,
                    prediction,
                    human_label,
                    auto,
                    resolved_at,
                    chosen_for_learning,
                    votes: votes as u32,
                    adjudicated,
                })
            },
        )
        .collect())
}

pub(super) fn append_event(
    c: &Connection,
    project_id: i64,
    kind: &str,
    actor: &str,
    data: &Value,
    now: Millis,
) -> Result<()> {
    event(c, Some(project_id), None, None, now, kind, actor, data)
}

pub(super) fn history(
    c: &Connection,
    project_id: i64,
    limit: usize,
) -> Result<Vec<flywheel_core::backtest::HistoryItem>> {
    c.prepare_cached(
        "SELECT i.payload, i.attributes, i.prediction, l.label FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = ?1 AND l.source IN ('human', 'adjudicated') ORDER BY l.cursor DESC LIMIT ?2",
    )?
    .query_map(params![project_id, limit as i64], |r| {
        Ok(flywheel_core::backtest::HistoryItem {
            payload: json_col(r, 0)?,
            attributes: json_col(r, 1)?,
            prediction: opt_json::<Prediction>(r, 2)?,
            human_label: r.get(3)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

pub(super) fn recent_predictions(c: &Connection, project_id: i64, limit: usize) -> Result<Vec<Prediction>> {
    let rows = c
        .prepare_cached(
            "SELECT prediction FROM items WHERE project_id = ?1 AND prediction IS NOT NULL AND gold_label IS NULL
             ORDER BY id DESC LIMIT ?2",
        )?
        .query_map(params![project_id, limit as i64], |r| opt_json::<Prediction>(r, 0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().flatten().collect())
}
