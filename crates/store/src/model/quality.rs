//! Quality: gold items, reviewers' records and the label answers agreement is computed
//! from.

use flywheel_core::Prediction;
use serde::Serialize;

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
