//! Feeds: the label feed's and the event log's rows.

use serde::Serialize;

use crate::Millis;

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
