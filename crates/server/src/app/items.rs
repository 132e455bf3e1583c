//! Items in, decisions out: each submitted item is checked, scored by the project's
//! built-in model when it has no prediction of its own, decided by the policy (with the
//! calibrated thresholds), possibly sent to review for active learning, and stored with
//! its decision. Also an item's whole story.
//!
//! The batch is checked whole before the store sees it: an item that does not parse
//! refuses the batch with the field at fault (`items[3].payload`), and nothing is written.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use flywheel_core::calibrate;
use flywheel_core::policy::{Budget, DEFAULT_STEPS};
use flywheel_core::{ItemView, LabelSet, Outcome, Prediction, ValidationError};
use flywheel_store::{ItemDetail, NewItem, Submitted};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::text_field;
use super::learning::ProjectModel;
use super::{AppError, AppState, ProjectRuntime, learning};

/// An item as submitted (the request's `items[i]`; the wire format re-exports it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    /// The client's id: the idempotency key (1 to 256 characters).
    pub external_id: String,
    /// A JSON object; `text`, when present, is what reviewers see first.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// A JSON object that rules may read as `attributes`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
    #[serde(default)]
    pub prediction: Option<PredictionIn>,
}

/// A prediction as submitted, before it is checked against the project's labels.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictionIn {
    pub model: String,
    #[serde(default)]
    pub version: Option<String>,
    /// A probability in [0, 1] for every label of the project.
    pub scores: BTreeMap<String, f64>,
    /// How unlike the model's training data the item is, in [0, 1] (rules read it as
    /// `novelty`). Optional; the built-in model gives its own.
    #[serde(default)]
    pub novelty: Option<f64>,
}

/// Whether a string or an object key anywhere in `v` contains a NUL character.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Checks the parts every submitted item shares — external id, payload (an object),
/// attributes (an object, `{}` when absent) and prediction (against the project's labels)
/// — naming `items[i].…` in any error. Returns the attributes and the prediction.
pub fn item_parts(
    i: usize,
    external_id: &str,
    payload: &Value,
    attributes: Option<Value>,
    prediction: Option<PredictionIn>,
    labels: &LabelSet,
) -> Result<(Value, Option<Prediction>), ValidationError> {
    let at = |f: &str| format!("items[{i}].{f}");
    text_field(&at("external_id"), external_id, 1, 256)?;
    if !payload.is_object() {
        return Err(ValidationError::new(at("payload"), "payload is a JSON object"));
    }
    let attributes = match attributes {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(ValidationError::new(at("attributes"), "attributes is a JSON object")),
    };
    // PostgreSQL cannot store a NUL character in text or JSON; refuse it on every backend
    // alike, naming the field, rather than fail at the database.
    for (field, v) in [("payload", payload), ("attributes", &attributes)] {
        if has_nul(v) {
            return Err(ValidationError::new(
                at(field),
                format!("{field} contains a NUL character (\\u0000), which cannot be stored"),
            ));
        }
    }
    let prediction = prediction
        .map(|r| {
            let raw = flywheel_core::prediction::RawPrediction {
                model: r.model,
                version: r.version,
                scores: r.scores,
                novelty: r.novelty,
            };
            Prediction::parse(raw, labels).map_err(|e| e.within(&at("prediction")))
        })
        .transpose()?;
    Ok((attributes, prediction))
}

/// How long the policy may take to decide one item (its rules' run-time budget, beside
/// [`flywheel_core::policy::DEFAULT_STEPS`] reads of the item): a rule still running then
/// fails closed, the item goes to review with rule `rule_budget_exceeded`.
pub const DEFAULT_RULE_BUDGET: Duration = Duration::from_millis(100);

/// Batches of more items than this are decided on a blocking thread
/// (`tokio::task::spawn_blocking`), not on an async worker: a large batch's rules may take
/// up to the rule budget per item. Smaller ones are decided in place, which saves the
/// hand-off. Set by measurement (BENCHMARKS.md, "the blocking hand-off"):
/// `FLYWHEEL_BLOCKING_BATCH=0|10000 flywheel bench import --batch N --concurrency 8` for N
/// of 1, 4, 8, 16, 64, 256 — handing off cost 15–28% of the throughput at 1 and 4 items
/// (40–100 µs of CPU per request), nothing beyond the noise from 8 up; at the old 64 a
/// batch could hold an async worker for 64 rule budgets.
pub const DEFAULT_BLOCKING_BATCH: usize = 8;

/// The run-time limits of deciding items.
#[derive(Debug, Clone, Copy)]
pub struct RuleBudget {
    /// The longest the policy may take on one item, by the wall clock; `None`: no time
    /// limit, the step budget alone (the demos' in-process servers, whose decisions must
    /// depend on nothing but their seed, however loaded the machine).
    pub per_item: Option<Duration>,
    /// Batches above this many items are decided off the async workers.
    pub blocking_batch: usize,
}

impl Default for RuleBudget {
    fn default() -> Self {
        Self {
            per_item: Some(DEFAULT_RULE_BUDGET),
            blocking_batch: DEFAULT_BLOCKING_BATCH,
        }
    }
}

/// Checks, scores and decides each item of a batch (before active learning and storage),
/// each item within `per_item` of its own start.
fn decide_batch(
    p: &ProjectRuntime,
    model: Option<&Arc<RwLock<ProjectModel>>>,
    thresholds: &HashMap<String, f64>,
    items: Vec<ItemIn>,
    per_item: Option<Duration>,
) -> Result<Vec<NewItem>, ValidationError> {
    let mut new = Vec::with_capacity(items.len());
    for (i, it) in items.into_iter().enumerate() {
        let (attributes, given) = item_parts(i, &it.external_id, &it.payload, it.attributes, it.prediction, &p.labels)?;
        // Without a prediction of its own, the project's built-in model scores the item.
        let prediction = match (given, model) {
            (Some(p), _) => Some(p),
            (None, Some(m)) => Some(m.read().expect("model").predict(&it.payload, &attributes)),
            (None, None) => None,
        };
        let deadline = per_item.map(|d| Instant::now() + d);
        let expired = || deadline.is_some_and(|d| Instant::now() >= d);
        let decision = p.policy.decide_within(
            &ItemView {
                payload: &it.payload,
                attributes: &attributes,
                prediction: prediction.as_ref(),
                thresholds: Some(thresholds),
            },
            p.policy_version,
            flywheel_core::learn::keyed_draw(&format!("audit/{}/{}", p.name, it.external_id)),
            Budget {
                steps: DEFAULT_STEPS,
                expired: &expired,
            },
        );
        new.push(NewItem {
            external_id: it.external_id,
            payload: it.payload,
            attributes,
            prediction,
            decision,
        });
    }
    Ok(new)
}

/// Decides and stores a batch of items for project `p` (the caller checked the batch's
/// size and the caller's grant). Each item gets its decision; an `external_id` already
/// stored gets its first decision back, marked duplicate.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name, items = items.len()))]
pub async fn submit(
    s: &AppState,
    p: &Arc<ProjectRuntime>,
    actor: &str,
    items: Vec<ItemIn>,
) -> Result<Vec<Submitted>, AppError> {
    let model = s.learning.model(s.store.as_ref(), p).await?;
    let thresholds = s.learning.thresholds(p.id);
    let budget = s.rule_budget;
    let mut new = if items.len() > budget.blocking_batch {
        let (p, model, thresholds) = (p.clone(), model.clone(), thresholds.clone());
        tokio::task::spawn_blocking(move || decide_batch(&p, model.as_ref(), &thresholds, items, budget.per_item))
            .await
            .map_err(|e| AppError::Internal(format!("deciding a batch failed: {e}")))??
    } else {
        decide_batch(p, model.as_ref(), &thresholds, items, budget.per_item)?
    };
    if let Some(a) = p.policy.active_learning() {
        let (strategy, budget) = (learning::strategy(&a.strategy), a.budget_per_1000);
        for it in &mut new {
            if !matches!(it.decision.outcome, Outcome::Auto { .. }) {
                // Reviews count toward the window of 1,000, never toward the budget.
                s.learning.choose_for_learning(p.id, budget, None);
                continue;
            }
            let draw = flywheel_core::learn::keyed_draw(&format!("learn/{}/{}", p.name, it.external_id));
            // A multi-label item by its least clear label's margin to its threshold (the
            // policy's `min_margin`), a single-label one by its scores as a distribution.
            // An auto item without a prediction (a rule's fixed label) is never picked.
            let score = it.prediction.as_ref().map(|pr| {
                if p.labels.is_multi() {
                    calibrate::informativeness_multi(strategy, pr.min_margin(Some(&thresholds)), draw)
                } else {
                    let probs: Vec<f64> = pr.scores.iter().map(|(_, x)| *x).collect();
                    calibrate::informativeness(strategy, &probs, draw)
                }
            });
            if s.learning.choose_for_learning(p.id, budget, score) {
                it.decision = p.policy.send_to_learning(it.decision.clone());
            }
        }
    }
    let submitted = s.store.submit_items(p.id, new, actor, s.now()).await?;
    s.metrics
        .decided(&p.name, submitted.iter().filter(|d| !d.duplicate).map(|d| &d.decision));
    Ok(submitted)
}

/// Everything about one item of project `p`: decision, tasks, reviews, resolution, events.
#[tracing::instrument(level = "debug", skip(s, p), fields(project = %p.name))]
pub async fn detail(s: &AppState, p: &ProjectRuntime, external_id: &str) -> Result<ItemDetail, AppError> {
    s.store
        .item(p.id, external_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("item '{external_id}' not found in project '{}'", p.name)))
}

/// Largest page of an item search, and the page when the request names none.
pub const MAX_SEARCH_PAGE: usize = 200;
pub const DEFAULT_SEARCH_PAGE: usize = 50;

/// An item search as a request gives it (`GET …/items?q=&label=&reviewer=&state=&since=&
/// until=&cursor=&limit=`, and the console's search form), parsed: every value checked,
/// an empty one the same as none.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub search: flywheel_store::ItemSearch,
    /// Items with ids below this (the previous page's `next_cursor`).
    pub cursor: Option<i64>,
    pub limit: usize,
}

impl SearchRequest {
    /// Parses the query's parameters; a bad one is refused naming it.
    pub fn parse(
        p: &ProjectRuntime,
        params: &std::collections::HashMap<String, String>,
    ) -> Result<Self, ValidationError> {
        use flywheel_store::{ItemSearch, ItemState};
        let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let text = match get("q") {
            Some(q) if q.chars().count() > 200 => return Err(ValidationError::new("q", "q is at most 200 characters")),
            q => q.map(str::to_lowercase),
        };
        let label = match get("label") {
            Some(l) if !p.labels.contains(l) => {
                return Err(ValidationError::new(
                    "label",
                    format!("label is one of the project's labels: {}", p.labels.names().join(", ")),
                ));
            }
            l => l.map(str::to_string),
        };
        let reviewer = match get("reviewer") {
            Some(r) if r.chars().count() > 100 => {
                return Err(ValidationError::new(
                    "reviewer",
                    "reviewer is a name of at most 100 characters",
                ));
            }
            r => r.map(str::to_string),
        };
        let state = get("state")
            .map(|s| match s {
                "open" => Ok(ItemState::Open),
                "resolved" => Ok(ItemState::Resolved),
                "unresolved" => Ok(ItemState::Unresolved),
                _ => Err(ValidationError::new("state", "state is open, resolved or unresolved")),
            })
            .transpose()?;
        let since = get("since")
            .map(|v| super::export::parse_time("since", v))
            .transpose()?;
        let until = get("until")
            .map(|v| super::export::parse_time("until", v))
            .transpose()?;
        if let (Some(a), Some(b)) = (since, until)
            && a >= b
        {
            return Err(ValidationError::new("since", "since must be before until"));
        }
        let cursor = get("cursor")
            .map(|c| {
                c.parse::<i64>()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| ValidationError::new("cursor", "cursor is a next_cursor from an earlier page"))
            })
            .transpose()?;
        let limit = get("limit")
            .map(|l| {
                l.parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_SEARCH_PAGE).contains(l))
                    .ok_or_else(|| {
                        ValidationError::new("limit", format!("limit is a whole number from 1 to {MAX_SEARCH_PAGE}"))
                    })
            })
            .transpose()?
            .unwrap_or(DEFAULT_SEARCH_PAGE);
        Ok(SearchRequest {
            search: ItemSearch {
                text,
                label,
                reviewer,
                state,
                since,
                until,
            },
            cursor,
            limit,
        })
    }
}

/// How many items (of every project) one page of an item search reads at most, newest
/// first below its cursor: text is not indexed, and reading 100,000 items took 66 ms of
/// SQLite (182 ms of PostgreSQL) for one page of a search that matched nothing
/// (`flywheel bench search --items 100000 --concurrency 1`, BENCHMARKS.md). A page that
/// reaches the bound before it is full ends there, with a `next_cursor` to read on from.
pub const SEARCH_READ_LIMIT: usize = 10_000;

/// A page of an item search, and where the next starts (`None`: this was the last). A
/// page may hold fewer hits than asked, even none, and still have a next.
pub struct SearchPage {
    pub hits: Vec<flywheel_store::ItemHit>,
    pub next_cursor: Option<i64>,
}

/// Project `p`'s items that pass the search, newest first.
#[tracing::instrument(level = "debug", skip(s, p), fields(project = %p.name))]
pub async fn search(s: &AppState, p: &ProjectRuntime, req: SearchRequest) -> Result<SearchPage, AppError> {
    let found = s
        .store
        .search_items(p.id, req.search, req.cursor, req.limit, SEARCH_READ_LIMIT)
        .await?;
    let next_cursor = match found.hits.last() {
        Some(last) if found.hits.len() == req.limit => Some(last.item_id),
        _ => found.read_to,
    };
    Ok(SearchPage {
        hits: found.hits,
        next_cursor,
    })
}
