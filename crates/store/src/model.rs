//! The records the store takes and gives. Times are epoch milliseconds.

use flywheel_core::{Answer, Decision, Prediction, Stage};
use serde::Serialize;

use crate::Millis;

// Decided in core (`flywheel_core::review`), stored and served by the store.
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
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub labels: Vec<String>,
    pub policy: serde_json::Value,
    pub policy_version: u32,
    pub created_at: Millis,
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
    /// Hand out a gold item (one this reviewer has not seen) instead, if there is one and
    /// there is regular work it can pass for. The caller draws this at the gold rate.
    pub gold: bool,
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
    /// How answers are judged in each of the reviewer's projects (the task's project is
    /// known only inside the store); a project missing here is judged by plain majority.
    pub judging: std::collections::HashMap<i64, Judging>,
}

impl NewReview {
    /// The answer as core's planner sees it, on a lease granted at `granted_at`.
    pub fn answering(&self, granted_at: Millis, now: Millis) -> flywheel_core::review::Answering<'_> {
        flywheel_core::review::Answering {
            review_id: &self.review_id,
            lease_id: self.lease_id,
            reviewer_id: self.reviewer_id,
            reviewer: &self.reviewer_name,
            answer: &self.answer,
            failure_category: self.failure_category.as_deref(),
            granted_at,
            now,
        }
    }
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueStats {
    pub name: String,
    pub open: i64,
    pub oldest_age_ms: i64,
}

/// Open tasks of one queue and tier (see `Store::queue_depths`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDepth {
    pub queue: String,
    pub tier: u8,
    pub open: i64,
    pub oldest_age_ms: i64,
    /// Open tasks past the queue's SLA; `None` when no cutoff was given for the queue.
    pub breaches: Option<i64>,
}

impl QueueDepth {
    /// Both backends' rows put together: `open` is `(queue, tier, open, oldest created_at)`,
    /// `overdue` is `(queue, tier, count)` for the queues in `cutoffs`.
    pub(crate) fn assemble(
        open: Vec<(String, u8, i64, Millis)>,
        overdue: &[(String, u8, i64)],
        cutoffs: &[(String, Millis)],
        now: Millis,
    ) -> Vec<QueueDepth> {
        open.into_iter()
            .map(|(queue, tier, n, oldest)| {
                let breaches = cutoffs.iter().any(|(q, _)| *q == queue).then(|| {
                    overdue
                        .iter()
                        .filter(|(q, t, _)| *q == queue && *t == tier)
                        .map(|(_, _, n)| n)
                        .sum()
                });
                QueueDepth {
                    queue,
                    tier,
                    open: n,
                    oldest_age_ms: (now - oldest).max(0),
                    breaches,
                }
            })
            .collect()
    }
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
}

impl ActivityBucket {
    /// Buckets in time order from `(start, auto, review)` and `(start, answers)` rows.
    pub fn merge(decided: Vec<(Millis, i64, i64)>, answered: Vec<(Millis, i64)>) -> Vec<ActivityBucket> {
        let mut out = std::collections::BTreeMap::<Millis, ActivityBucket>::new();
        for (start, auto, review) in decided {
            let b = out.entry(start).or_insert(ActivityBucket::empty(start));
            b.auto += auto;
            b.review += review;
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
        }
    }
}
