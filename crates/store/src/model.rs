//! The records the store takes and gives. Times are epoch milliseconds.

use flywheel_core::{Answer, Decision, LabelMode, Prediction, Stage};
use serde::Serialize;

use crate::Millis;

// Decided in core (`flywheel_core::review`), stored and served by the store.
pub use flywheel_core::amend::{AmendResult, AmendRules};
pub use flywheel_core::fatigue::SessionAnswer;
pub use flywheel_core::review::{Judging, Resolution, ReviewResult, StoredAnswer};

/// Who is calling, as their key says.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    Admin,
    /// A model's service: may submit items to and read labels of `projects` (ids).
    Service {
        projects: Vec<i64>,
    },
    Reviewer(Reviewer),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reviewer {
    pub id: i64,
    pub name: String,
    pub tiers: Vec<u8>,
    /// Project ids granted.
    pub projects: Vec<i64>,
    /// The same projects' names.
    pub project_names: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewProject {
    pub name: String,
    pub labels: Vec<String>,
    pub policy: serde_json::Value,
    /// The answer fields' schema as checked by `flywheel_core::fields::FieldSchema`
    /// (a JSON array; `[]` for none).
    pub answer_fields: serde_json::Value,
    /// One label per answer, or a set of labels (stored as its canonical encoding, see
    /// `flywheel_core::label`).
    pub label_mode: LabelMode,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub labels: Vec<String>,
    pub policy: serde_json::Value,
    pub policy_version: u32,
    pub created_at: Millis,
    /// The answer fields' schema (a JSON array; `[]` for none).
    pub answer_fields: serde_json::Value,
    pub label_mode: LabelMode,
}

/// One stored version of a project's policy: what it said, who stored it and when.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyVersion {
    pub version: u32,
    pub policy: serde_json::Value,
    pub created_at: Millis,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct NewReviewer {
    pub name: String,
    pub tiers: Vec<u8>,
    /// Project names.
    pub projects: Vec<String>,
    pub key_hash: String,
    /// An Argon2id PHC string, when the reviewer may sign in with a password.
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewServiceKey {
    /// Project names.
    pub projects: Vec<String>,
    pub key_hash: String,
    /// What the admin calls the key (checked by the server), if anything.
    pub name: Option<String>,
}

/// An item with the decision the policy made for it.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub external_id: String,
    pub payload: serde_json::Value,
    pub attributes: serde_json::Value,
    pub prediction: Option<Prediction>,
    pub decision: Decision,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub external_id: String,
    pub item_id: i64,
    pub decision: Decision,
    pub duplicate: bool,
}

impl Submitted {
    /// Whether this submission put new work in a queue.
    pub fn created_task(&self) -> bool {
        !self.duplicate
            && (matches!(self.decision.outcome, flywheel_core::Outcome::Review { .. }) || self.decision.audit.is_some())
    }
}

#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub project_id: i64,
    pub reviewer_id: i64,
    pub reviewer_name: String,
    pub tiers: Vec<u8>,
    pub queue: Option<String>,
    pub lease_ms: i64,
    /// `Some(pick)`: hand out a gold item (one this reviewer has not seen) instead, if
    /// there is one and there is regular work it can pass for. The caller draws this at
    /// the gold rate; `pick`, uniform in [0, 1), chooses which of the unseen gold items
    /// (in id order: [`gold_pick_offset`]), so that a caller with seeded draws gets the
    /// same gold items on every run.
    pub gold: Option<f64>,
}

/// Which of `unseen` gold items (ordered by id) the draw `pick` in [0, 1) chooses.
pub fn gold_pick_offset(pick: f64, unseen: i64) -> i64 {
    ((pick.clamp(0.0, 1.0) * unseen as f64) as i64).clamp(0, (unseen - 1).max(0))
}

/// A gold item: its known label is the answer reviewers are scored against.
#[derive(Debug, Clone)]
pub struct NewGold {
    pub external_id: String,
    pub payload: serde_json::Value,
    pub attributes: serde_json::Value,
    pub label: String,
    /// The model's scores, as regular items carry them (a gold item without them would
    /// stand out where suggestions are shown).
    pub prediction: Option<Prediction>,
}

/// One reviewer's record in a project.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewerStats {
    pub reviewer_id: i64,
    pub name: String,
    /// Label answers on regular (not gold) items.
    pub answers: i64,
    pub gold_answers: i64,
    pub gold_correct: i64,
    /// Of the reviewer's answers on resolved items, how many match the resolution.
    pub agree_with_resolution: i64,
    pub compared_with_resolution: i64,
    pub median_time_on_task_ms: Option<i64>,
    pub held: bool,
    pub held_reason: Option<String>,
}

/// One label answer on a regular review task, for agreement statistics and fits.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectAnswer {
    pub reviewer_id: i64,
    pub reviewer: String,
    pub external_id: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTask {
    pub task_id: i64,
    pub lease_id: i64,
    pub lease_expires_at: Millis,
    pub stage: Stage,
    pub queue: String,
    pub tier: u8,
    pub external_id: String,
    pub payload: serde_json::Value,
    pub attributes: serde_json::Value,
    pub prediction: Option<Prediction>,
    /// Why the item is in review: the rule that routed it and its reasons (for a gold
    /// task, those of the task it stands in for, so that it looks like any other).
    pub why: Option<Why>,
}

/// The part of an item's stored decision a reviewer is shown: the rule and its reasons.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Why {
    pub rule: String,
    #[serde(default)]
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewReview {
    pub task_id: i64,
    pub lease_id: i64,
    pub reviewer_id: i64,
    pub reviewer_name: String,
    pub review_id: String,
    pub answer: Answer,
    pub failure_category: Option<String>,
    pub note: Option<String>,
    /// The answer's fields as sent (a JSON object), checked inside the store against the
    /// task's project's schema (`review::check_fields`) before anything is written.
    pub fields: Option<serde_json::Value>,
    /// How answers are judged in each of the reviewer's projects (the task's project is
    /// known only inside the store); a project missing here is judged by plain majority.
    pub judging: std::collections::HashMap<i64, Judging>,
}

impl NewReview {
    /// The answer as core's planner sees it, on a lease granted at `granted_at`, judged by
    /// `judging` (which says whether it was too fast), with its checked `fields`.
    pub fn answering<'a>(
        &'a self,
        granted_at: Millis,
        now: Millis,
        judging: &Judging,
        fields: &'a flywheel_core::fields::Fields,
    ) -> flywheel_core::review::Answering<'a> {
        flywheel_core::review::Answering {
            review_id: &self.review_id,
            lease_id: self.lease_id,
            reviewer_id: self.reviewer_id,
            reviewer: &self.reviewer_name,
            answer: &self.answer,
            failure_category: self.failure_category.as_deref(),
            granted_at,
            now,
            too_fast: judging.too_fast(&self.answer, now - granted_at),
            fields,
        }
    }
}

/// A reviewer's change of mind about one of their answers (`Store::amend_review`).
#[derive(Debug, Clone)]
pub struct NewAmendment {
    pub reviewer_id: i64,
    pub reviewer_name: String,
    /// The answer's `review_id` (the reviewer's newest answer with it).
    pub review_id: String,
    /// The change's idempotency key.
    pub amend_id: String,
    /// A single-label project's new label.
    pub label: Option<String>,
    /// A multi-label project's new set of labels.
    pub labels: Option<Vec<String>>,
    pub reason: Option<String>,
    /// The answer's new fields as sent (checked here against the answer's project, by
    /// `amend::check_fields`); `None`: the answer keeps its fields.
    pub fields: Option<serde_json::Value>,
    /// Each of the reviewer's projects' rules (the answer's project is known only inside
    /// the store); a project missing here gets the defaults.
    pub rules: std::collections::HashMap<i64, AmendRules>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelRecord {
    pub cursor: i64,
    pub external_id: String,
    pub label: String,
    pub source: String,
    pub model: Option<String>,
    pub model_version: Option<String>,
    pub policy_version: u32,
    pub resolved_at: Millis,
    /// The item's resolved answer fields, on a human resolution in a project with fields.
    pub fields: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    pub seq: i64,
    pub at: Millis,
    pub kind: String,
    pub actor: String,
    pub project_id: Option<i64>,
    pub external_id: Option<String>,
    pub task_id: Option<i64>,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueStats {
    pub name: String,
    pub open: i64,
    pub oldest_age_ms: i64,
    /// Open tasks whose `sla.warning` was written and whose deadline has not passed.
    pub due_soon: i64,
    /// Open tasks past their deadline (`due_at <= now`).
    pub overdue: i64,
    /// Tasks ever breached (`sla.breached` written), open or not.
    pub breached_total: i64,
    /// Of the tasks with a deadline closed in the last hour / day, the share closed by it
    /// (`None` when none closed).
    pub within_sla_1h: Option<f64>,
    pub within_sla_24h: Option<f64>,
}

impl QueueStats {
    /// Both backends' rows put together, by queue name: `open` is `(queue, open, oldest
    /// created_at, due_soon, overdue)`, `breached` `(queue, count)`, `closed` `(queue,
    /// closed in the last hour, of which in time, closed in the last day, of which in time)`.
    pub(crate) fn assemble(
        open: Vec<(String, i64, Millis, i64, i64)>,
        breached: Vec<(String, i64)>,
        closed: Vec<(String, i64, i64, i64, i64)>,
        now: Millis,
    ) -> Vec<QueueStats> {
        let mut by: std::collections::BTreeMap<String, QueueStats> = std::collections::BTreeMap::new();
        for (q, n, oldest, due_soon, overdue) in open {
            let e = by.entry(q.clone()).or_insert_with(|| QueueStats {
                name: q,
                ..QueueStats::default()
            });
            e.open = n;
            e.oldest_age_ms = (now - oldest).max(0);
            e.due_soon = due_soon;
            e.overdue = overdue;
        }
        for (q, n) in breached {
            by.entry(q.clone())
                .or_insert_with(|| QueueStats {
                    name: q,
                    ..QueueStats::default()
                })
                .breached_total = n;
        }
        let share = |ok: i64, n: i64| (n > 0).then(|| ok as f64 / n as f64);
        for (q, n1, ok1, n24, ok24) in closed {
            let e = by.entry(q.clone()).or_insert_with(|| QueueStats {
                name: q,
                ..QueueStats::default()
            });
            e.within_sla_1h = share(ok1, n1);
            e.within_sla_24h = share(ok24, n24);
        }
        by.into_values().collect()
    }
}

/// Open tasks of one queue and tier (see `Store::queue_depths`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDepth {
    pub queue: String,
    pub tier: u8,
    pub open: i64,
    pub oldest_age_ms: i64,
    /// Open tasks past their deadline (`due_at <= now`); `None` for a queue not named in
    /// the call's `sla_queues`.
    pub breaches: Option<i64>,
}

impl QueueDepth {
    /// Both backends' rows put together: `open` is `(queue, tier, open, oldest created_at,
    /// past their deadline)`.
    pub(crate) fn assemble(
        open: Vec<(String, u8, i64, Millis, i64)>,
        sla_queues: &[String],
        now: Millis,
    ) -> Vec<QueueDepth> {
        open.into_iter()
            .map(|(queue, tier, n, oldest, overdue)| QueueDepth {
                breaches: sla_queues.contains(&queue).then_some(overdue),
                queue,
                tier,
                open: n,
                oldest_age_ms: (now - oldest).max(0),
            })
            .collect()
    }
}

/// What one run of the SLA worker wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlaRun {
    pub warnings: usize,
    pub breaches: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub items: i64,
    pub auto: i64,
    pub review: i64,
    pub resolved: i64,
    pub open_tasks: i64,
    pub queues: Vec<QueueStats>,
    /// Audits answered: agreeing with the auto label, and correcting it.
    pub audits_confirmed: i64,
    pub audits_corrected: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRecord {
    pub task_id: i64,
    pub stage: Stage,
    pub queue: String,
    pub tier: u8,
    pub priority: i32,
    pub overlap: u8,
    pub answered: u8,
    pub state: String,
    pub reason: Option<String>,
    pub created_at: Millis,
    pub closed_at: Option<Millis>,
    /// The task's deadline (none: no SLA).
    pub due_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewRecord {
    pub review_id: String,
    pub task_id: i64,
    pub reviewer: String,
    pub answer: String,
    pub label: Option<String>,
    pub reason: Option<String>,
    pub failure_category: Option<String>,
    pub note: Option<String>,
    pub claimed_at: Millis,
    pub answered_at: Millis,
    /// The answer's fields, when it gave any.
    pub fields: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemDetail {
    pub item_id: i64,
    pub external_id: String,
    pub payload: serde_json::Value,
    pub attributes: serde_json::Value,
    pub prediction: Option<Prediction>,
    pub created_at: Millis,
    pub decision: Decision,
    pub tasks: Vec<TaskRecord>,
    pub reviews: Vec<ReviewRecord>,
    pub resolution: Option<Resolution>,
    pub events: Vec<EventRecord>,
}

/// A human label with what the model saw, for training (label feed order).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingExample {
    pub cursor: i64,
    pub external_id: String,
    pub payload: serde_json::Value,
    pub attributes: serde_json::Value,
    pub label: String,
}

/// A stored model snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSnapshot {
    pub version: u32,
    pub model: Vec<u8>,
    pub examples_seen: u64,
    /// The label feed cursor of the last example the model was trained on.
    pub trained_through: i64,
    pub created_at: Millis,
}

/// An item's prediction next to the label a human gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedPrediction {
    pub external_id: String,
    pub prediction: Prediction,
    pub human_label: String,
    /// Whether the item was decided auto (so the human label came from an audit).
    pub auto: bool,
    /// Whether active learning chose the item for review (a sample of the auto band that
    /// is not uniform unless the strategy is `random`).
    pub chosen_for_learning: bool,
    /// Label answers the item received (over all its tasks).
    pub votes: u32,
    /// Whether the label came from adjudication (the reviewers split).
    pub adjudicated: bool,
    pub resolved_at: Millis,
}

/// Whom a browser session acts as.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOwner {
    /// The holder of the key (by its hash) it was opened with; revoking the key ends it.
    Key(String),
    /// A reviewer who signed in with a password.
    Reviewer(i64),
}

/// A reviewer as the admin console lists them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewerAccount {
    #[serde(flatten)]
    pub reviewer: Reviewer,
    pub has_password: bool,
    /// Keys not revoked.
    pub active_keys: i64,
    pub created_at: Millis,
    /// Not deactivated: the reviewer's keys, sessions and password work.
    pub active: bool,
}

/// An API key as the admin console lists it: never the key, only its hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    pub hash: String,
    /// `admin`, `service` or `reviewer`.
    pub kind: String,
    pub reviewer: Option<String>,
    /// Service keys: the projects granted (names).
    pub projects: Vec<String>,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    /// What the admin calls the key, if they named it.
    pub name: Option<String>,
    /// When a request last authenticated with it, to the minute (written at most once a
    /// minute per key: see `Store::touch_key`).
    pub last_used_at: Option<Millis>,
}

/// A project's traffic in one slice of time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ActivityBucket {
    pub start: Millis,
    /// Items decided auto and sent to review in this slice.
    pub auto: i64,
    pub review: i64,
    /// Answers given by reviewers (labels, escalations, skips).
    pub answers: i64,
    /// The mean novelty of the slice's items whose prediction carried one (none: no such
    /// item). A rising line is a new kind of content.
    pub novelty: Option<f64>,
}

impl ActivityBucket {
    /// Buckets in time order from `(start, auto, review, mean novelty)` and
    /// `(start, answers)` rows.
    pub fn merge(decided: Vec<(Millis, i64, i64, Option<f64>)>, answered: Vec<(Millis, i64)>) -> Vec<ActivityBucket> {
        let mut out = std::collections::BTreeMap::<Millis, ActivityBucket>::new();
        for (start, auto, review, novelty) in decided {
            let b = out.entry(start).or_insert(ActivityBucket::empty(start));
            b.auto += auto;
            b.review += review;
            b.novelty = novelty;
        }
        for (start, answers) in answered {
            out.entry(start).or_insert(ActivityBucket::empty(start)).answers += answers;
        }
        out.into_values().collect()
    }

    fn empty(start: Millis) -> Self {
        ActivityBucket {
            start,
            auto: 0,
            review: 0,
            answers: 0,
            novelty: None,
        }
    }
}

// Webhooks: endpoints, their outbox cursors and delivery attempts.

/// A webhook endpoint as the API shows it: never its secrets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub project_id: i64,
    pub url: String,
    /// Event-kind patterns (`item.resolved`, `task.*`, `*`), checked by the caller.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Every attempt at some event failed since the last delivery that succeeded.
    pub failing: bool,
    /// The event-log position dealt with: the next event sent is the first after it.
    pub cursor: i64,
    /// Attempts so far at the event after the cursor.
    pub attempts: u32,
    /// When that event is tried next (0: as soon as it exists).
    pub next_attempt_at: Millis,
    /// Until when a rotated-out secret still signs, if one does.
    pub previous_until: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// `whsec_` and the base64 of the key; kept, since the server signs with it.
    pub secret: String,
}

/// A change to an endpoint: each field given replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An endpoint as a delivery round needs it: with the secrets that sign now.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub hook: Webhook,
    /// The current secret, then the previous one while it still signs.
    pub secrets: Vec<String>,
    /// The endpoint's version when the round read it; a round does not write over a
    /// change the API made meanwhile (a replay, a new URL).
    pub generation: i64,
}

/// What came of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; tried again at `next_attempt_at`.
    Failed,
    /// Answered 410 Gone: the endpoint was disabled.
    Gone,
    /// The last attempt failed: the event was passed over and the endpoint marked failing.
    GivenUp,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Gone => "gone",
            AttemptOutcome::GivenUp => "given_up",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "delivered" => AttemptOutcome::Delivered,
            "failed" => AttemptOutcome::Failed,
            "gone" => AttemptOutcome::Gone,
            "given_up" => AttemptOutcome::GivenUp,
            _ => return None,
        })
    }
}

/// One attempt to deliver one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryAttempt {
    pub event_seq: i64,
    pub kind: String,
    /// The `webhook-id` header: the same for every attempt at this event and endpoint.
    pub message_id: String,
    /// 1 for the first attempt at this event.
    pub attempt: u32,
    pub at: Millis,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// The start of the answer's body, or what went wrong.
    pub response: String,
    pub outcome: AttemptOutcome,
    pub next_attempt_at: Option<Millis>,
}

/// A stored attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub webhook_id: i64,
    #[serde(flatten)]
    pub attempt: DeliveryAttempt,
}

/// What a delivery round did, written in one transaction when it finishes.
#[derive(Debug, Clone, Default)]
pub struct DeliveryRound {
    pub attempts: Vec<DeliveryAttempt>,
    /// The endpoint's state after the round.
    pub cursor: i64,
    pub head_attempts: u32,
    pub next_attempt_at: Millis,
    pub failing: bool,
    /// Answered 410: disable the endpoint.
    pub disable: bool,
    /// `webhook.failing` and `webhook.disabled` events to append.
    pub events: Vec<flywheel_core::Event>,
}

/// Attempts kept per endpoint (older ones are dropped as new ones are written).
pub const DELIVERIES_KEPT: i64 = 1000;

/// The message id of an event sent to an endpoint: stable, so receivers deduplicate.
pub fn message_id(webhook_id: i64, event_seq: i64) -> String {
    format!("msg_{event_seq}_{webhook_id}")
}

/// An admin's override of one item (see `Store::override_item`).
#[derive(Debug, Clone)]
pub struct NewOverride {
    pub external_id: String,
    /// Already checked against the project (label, fields, route).
    pub action: flywheel_core::overrides::Action,
    pub reason: String,
    pub actor: String,
}

/// What an override did.
#[derive(Debug, Clone, PartialEq)]
pub struct OverrideResult {
    pub item_id: i64,
    /// The open tasks it closed, and the active leases on them it cancelled.
    pub closed_tasks: Vec<i64>,
    pub cancelled_leases: Vec<i64>,
    /// A re-route's new task.
    pub task_id: Option<i64>,
    /// A resolution's.
    pub resolution: Option<Resolution>,
}

/// What an item search asks for: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemSearch {
    /// Lowercase text found in the external id or in the payload's JSON text (keys and
    /// values as stored; a quote or a newline in a value is stored escaped). Backends
    /// compare it with the lowercased column: every letter on PostgreSQL, ASCII letters
    /// only on SQLite (its `lower`).
    pub text: Option<String>,
    /// The resolved label.
    pub label: Option<String>,
    /// A reviewer (by name) who answered any task of the item.
    pub reviewer: Option<String>,
    pub state: Option<ItemState>,
    /// Items received at or after this time ...
    pub since: Option<Millis>,
    /// ... and before this one.
    pub until: Option<Millis>,
}

/// An item's state, as a search filters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    /// Has an open task.
    Open,
    /// Has a resolution (auto or human).
    Resolved,
    /// Has none yet.
    Unresolved,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Open => "open",
            ItemState::Resolved => "resolved",
            ItemState::Unresolved => "unresolved",
        }
    }
}

/// One item a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemHit {
    pub item_id: i64,
    pub external_id: String,
    pub payload: serde_json::Value,
    /// `auto` or `review`.
    pub outcome: String,
    /// The rule that decided it.
    pub rule: String,
    pub resolved_label: Option<String>,
    pub open_tasks: i64,
    pub created_at: Millis,
}

/// A page of an item search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchHits {
    /// The items found, newest first.
    pub hits: Vec<ItemHit>,
    /// When the read stopped at its bound with older items left: the page's lower end,
    /// below which the next page starts (`before`). `None`: nothing older is left.
    pub read_to: Option<i64>,
}

/// The ids one page of an item search reads: `from..before`, at most `read` of them (ids
/// of every project; fewer where ids were skipped), ending below the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadWindow {
    pub(crate) from: i64,
    pub(crate) before: i64,
    /// Where the next page starts when items older than `from` are left.
    pub(crate) read_to: Option<i64>,
}

impl ReadWindow {
    /// The window below `before` (none: above the newest item) when item ids run from
    /// `lowest` to `highest`. Two reads of an end of the id index, never a walk: the bound
    /// costs a search nothing.
    pub(crate) fn below(before: Option<i64>, read: usize, lowest: i64, highest: i64) -> Self {
        let before = before.unwrap_or(i64::MAX).min(highest.saturating_add(1));
        let from = before.saturating_sub(i64::try_from(read).unwrap_or(i64::MAX));
        Self {
            from,
            before,
            read_to: (from > lowest).then_some(from),
        }
    }
}

/// Which of a project's items an export takes (every condition given must hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportFilter {
    /// Items created at or after this time.
    pub since: Option<Millis>,
    /// Items created before this time.
    pub until: Option<Millis>,
    /// Items whose resolution came from this source (`auto`, `human`, `adjudicated`), or
    /// with `Unresolved`, items not resolved yet.
    pub source: Option<SourceFilter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFilter {
    Resolved(flywheel_core::task::Source),
    Unresolved,
}

/// One item as an export writes it: what it is, what the policy said, how it was resolved
/// and every answer it was given. The JSON columns come as the text the database holds:
/// payload and attributes are copied out without parsing them, and the prediction,
/// decision and resolution are parsed by the export's writer ([`ExportRow::decision`]
/// and its siblings), not on the store's read thread, so reading the next page and
/// writing this one share the work about evenly.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub item_id: i64,
    pub external_id: String,
    /// JSON text of an object.
    pub payload: String,
    /// JSON text of an object.
    pub attributes: String,
    /// JSON text of a [`Prediction`].
    pub prediction_json: Option<String>,
    /// JSON text of a [`Decision`].
    pub decision_json: String,
    /// JSON text of a [`Resolution`].
    pub resolution_json: Option<String>,
    /// Every answer on the item's tasks (review, adjudication, audit), in answer order.
    pub reviews: Vec<ExportReview>,
    pub created_at: Millis,
}

impl ExportRow {
    pub fn prediction(&self) -> serde_json::Result<Option<Prediction>> {
        self.prediction_json.as_deref().map(serde_json::from_str).transpose()
    }

    pub fn decision(&self) -> serde_json::Result<Decision> {
        serde_json::from_str(&self.decision_json)
    }

    pub fn resolution(&self) -> serde_json::Result<Option<Resolution>> {
        self.resolution_json.as_deref().map(serde_json::from_str).transpose()
    }
}

/// One answer an item was given.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportReview {
    pub reviewer: String,
    pub stage: Stage,
    /// `label`, `escalate` or `skip`.
    pub answer: String,
    pub label: Option<String>,
    pub claimed_at: Millis,
    pub answered_at: Millis,
}

/// A label given to an item elsewhere (another tool's annotations), stored as the item's
/// human resolution with method `imported`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedLabel {
    pub external_id: String,
    pub label: String,
    /// Who gave it, as the other tool names them.
    pub reviewers: Vec<String>,
    /// The share of the annotators who gave this label.
    pub confidence: f64,
}

/// The resolution method of a label given elsewhere and imported.
pub const IMPORTED: &str = "imported";

impl ImportedLabel {
    /// The resolution this label stands as: human, method `imported`.
    pub fn resolution(&self, now: Millis) -> Resolution {
        Resolution {
            labels: None,
            label: self.label.clone(),
            source: flywheel_core::task::Source::Human,
            method: IMPORTED.into(),
            confidence: self.confidence,
            reviewers: self.reviewers.clone(),
            resolved_at: now,
        }
    }
}

/// The fatigue monitor fired on a reviewer's work session: what `record_fatigue` writes.
#[derive(Debug, Clone)]
pub struct NewFatigue {
    pub project_id: i64,
    pub reviewer_id: i64,
    /// The session's first answer: the monitor fires once per session.
    pub session_started_at: Millis,
    /// With `on_fatigue: break`, when the reviewer may claim again.
    pub break_until: Option<Millis>,
    /// The `reviewer.fatigued` event, written in the same transaction.
    pub event: flywheel_core::Event,
}

/// A reviewer's fatigue state in a project: the session the monitor last fired on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatigueState {
    pub reviewer_id: i64,
    pub session_started_at: Millis,
    pub fatigued_at: Millis,
    pub break_until: Option<Millis>,
}
