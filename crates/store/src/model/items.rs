//! Items: decided items stored with their tasks, one item's whole record, the item search
//! and an admin's override.

use flywheel_core::{Decision, Prediction, Stage};
use serde::Serialize;

use super::{EventRecord, Resolution};
use crate::Millis;

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
