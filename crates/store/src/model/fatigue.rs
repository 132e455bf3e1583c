//! Fatigue and pacing: what the fatigue monitor writes and reads back.

use crate::Millis;

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
