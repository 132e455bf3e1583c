//! Models: the built-in model's training data, snapshots and verified predictions.

use flywheel_core::Prediction;

use crate::Millis;

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
