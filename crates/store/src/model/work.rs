//! Work: claims, leases and answers (and their amendment), and what a run of the SLA worker
//! wrote.

use flywheel_core::{Answer, Prediction, Stage};

use super::{AmendRules, Judging};
use crate::Millis;

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

/// What one run of the SLA worker wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlaRun {
    pub warnings: usize,
    pub breaches: usize,
}
