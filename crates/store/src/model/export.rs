//! Exports: a project's items as an export writes them, and labels given elsewhere.

use flywheel_core::{Decision, Prediction, Stage};

use super::Resolution;
use crate::Millis;

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
