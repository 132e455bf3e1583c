//! Items on PostgreSQL: a batch of decided items written by one statement
//! ([`SUBMIT_ITEMS`]; `merge.rs` merges concurrent submissions into it), and one item's
//! whole record.

use std::collections::HashMap;

use flywheel_core::task::Source;
use flywheel_core::{Decision, Outcome, Prediction, Stage};
use sqlx::PgConnection;

use super::TxResult;
use super::common::parse;
use super::feeds::{EVENT_COLUMNS, EventRow, event_record};
use crate::*;
use flywheel_core::Event;

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
                         $16::int4[], $17::int2[], $18::text[], $24::int8[], $25::int8[])
        WITH ORDINALITY AS u(external_id, payload, attributes, prediction, decision, outcome, policy_version,
                             model, model_version, resolved_label, resolution, stage, queue, tier,
                             priority, overlap, reason, warn_at, due_at, n)
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
    INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, reason, created_at,
                       warn_at, due_at)
    SELECT $1, item_id, stage, queue, tier, priority, overlap, overlap, 'open', reason, $19, warn_at, due_at
    FROM new WHERE stage IS NOT NULL ORDER BY n
    RETURNING id, item_id
), label AS (
    INSERT INTO labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at)
    SELECT $1, item_id, resolved_label, 'auto', model, model_version, policy_version, $19
    FROM new WHERE resolved_label IS NOT NULL ORDER BY n
), event AS (
    INSERT INTO events (project_id, item_id, task_id, at, kind, actor, data)
    SELECT $1, new.item_id, task.id, $19, $23, $20,
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
        .bind(Event::ITEM_DECIDED)
        .bind(cols.warn_at)
        .bind(cols.due_at)
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
    warn_at: Vec<Option<i64>>,
    due_at: Vec<Option<i64>>,
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
            warn_at: Vec::with_capacity(n),
            due_at: Vec::with_capacity(n),
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
                    labels: None,
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
        let (warn_at, due_at) = task.map_or((None, None), |(_, r)| flywheel_core::sla::deadlines(r, now));
        self.warn_at.push(warn_at);
        self.due_at.push(due_at);
        Ok(())
    }
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
    Option<String>,
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
        "SELECT id, stage, queue, tier, priority, overlap, answered, state, reason, created_at, closed_at, due_at
         FROM tasks WHERE item_id = $1 ORDER BY id",
    )
    .bind(item_id)
    .fetch_all(&mut *c)
    .await?;
    let reviews: Vec<ReviewRow> = sqlx::query_as(
        "SELECT w.review_id, w.task_id, v.name, w.kind, w.label, w.reason, w.failure_category, w.note, w.claimed_at, w.answered_at,
                w.fields::text
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
                due_at: t.11,
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
                fields: r.10.as_deref().and_then(|f| serde_json::from_str(f).ok()),
            })
            .collect(),
        resolution: resolution.as_deref().map(parse::<Resolution>).transpose()?,
        events: events.into_iter().map(event_record).collect::<TxResult<Vec<_>>>()?,
    }))
}
