//! What an admin writes: the policy as serde types (rules, audit, consensus, quality,
//! model, active learning, thresholds, monitors, workbench, SLAs) with their defaults, and
//! the limits of the language. Nothing here is checked or compiled — that is `compile`.

use serde::{Deserialize, Serialize};

/// The variables a rule's `when` may read.
pub const VARIABLES: &[&str] = &[
    "thresholds",
    "label",
    "confidence",
    "margin",
    "entropy",
    "scores",
    "payload",
    "attributes",
    "model",
    "has_prediction",
    "novelty",
    "max_score",
    "min_margin",
];

/// The variables a multi-label project's rules may not read (one label with a
/// distribution's confidence makes no sense for independent scores), and what to read
/// instead.
pub const SINGLE_ONLY: &[&str] = &["label", "confidence", "margin", "entropy"];

/// The variables and functions only a multi-label project's rules read.
pub const MULTI_ONLY: &[&str] = &["max_score", "min_margin", "labels_above"];

pub const MAX_RULES: usize = 200;
pub const MAX_TIER: u8 = 9;
pub const MAX_OVERLAP: u8 = 10;
pub const DEFAULT_QUEUE: &str = "default";
pub const AUDIT_QUEUE: &str = "audit";

/// A policy as an admin writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub rules: Vec<RuleSpec>,
    /// The fraction of auto decisions that also get an `audit` task.
    #[serde(default)]
    pub audit_rate: f64,
    /// Where audit tasks go (default: queue `audit`, tier 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditSpec>,
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u32,
    /// Whether a reviewer sees the model's suggestion (showing it anchors reviewers).
    #[serde(default = "default_true")]
    pub show_suggestion: bool,
    /// How a task's answers become one label, and when to ask for more answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consensus: Option<ConsensusSpec>,
    /// Gold tasks and the bar reviewers must clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualitySpec>,
    /// The built-in model scores items that arrive without a prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// Send the most informative auto-eligible items to review, within a budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_learning: Option<ActiveLearningSpec>,
    /// Per-label confidence thresholds calibrated to a target precision; rules read them
    /// as `thresholds[label]` (a label without enough evidence has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdSpec>,
    /// What to watch, and the level at which each monitor fires (writes a `monitor` event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitors: Option<MonitorSpec>,
    /// What the reviewer workbench offers and may show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workbench: Option<WorkbenchSpec>,
    /// Per queue, how long a task may wait before it breaches its service level (a
    /// rule's own `sla_seconds` wins for the tasks it routes).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sla_seconds: std::collections::BTreeMap<String, u32>,
    /// Watch each reviewer's work sessions for fatigue (accuracy falling, speed rising).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatigue: Option<FatigueSpec>,
    /// Limits on how fast and how long a reviewer works in one session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<PacingSpec>,
    /// Per queue, what happens when a task breaches its deadline (default `none`: only the
    /// `sla.breached` event).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sla_action: std::collections::BTreeMap<String, crate::sla::SlaAction>,
    /// Per queue, how long before the deadline `sla.warning` is written (default 20% of
    /// the task's SLA).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub warn_before_seconds: std::collections::BTreeMap<String, u32>,
}

/// What the fatigue monitor does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFatigue {
    /// Write `reviewer.fatigued` and show it; nothing else.
    Notify,
    /// Also refuse the reviewer's claims (429 `break_due`) for `break_minutes`.
    Break,
}

/// The fatigue monitor: a work session is a run of answers with no gap over
/// `session_gap_seconds`; its recent `window` answers are compared with the reviewer's
/// baseline (their earlier sessions, or the session's first window).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FatigueSpec {
    #[serde(default = "default_session_gap")]
    pub session_gap_seconds: u32,
    /// Answers with a correctness signal per window.
    #[serde(default = "default_fatigue_window")]
    pub window: u32,
    /// The one-sided test's level for a drop in accuracy.
    #[serde(default = "default_fatigue_alpha")]
    pub alpha: f64,
    /// The fall in median time on task (a fraction) that fires when accuracy does not rise.
    #[serde(default = "default_speedup")]
    pub speedup: f64,
    #[serde(default = "default_on_fatigue")]
    pub on_fatigue: OnFatigue,
    #[serde(default = "default_break_minutes")]
    pub break_minutes: u32,
}

impl Default for FatigueSpec {
    fn default() -> Self {
        Self {
            session_gap_seconds: default_session_gap(),
            window: default_fatigue_window(),
            alpha: default_fatigue_alpha(),
            speedup: default_speedup(),
            on_fatigue: default_on_fatigue(),
            break_minutes: default_break_minutes(),
        }
    }
}

fn default_session_gap() -> u32 {
    900
}
fn default_fatigue_window() -> u32 {
    30
}
fn default_fatigue_alpha() -> f64 {
    0.05
}
fn default_speedup() -> f64 {
    0.4
}
fn default_on_fatigue() -> OnFatigue {
    OnFatigue::Notify
}
fn default_break_minutes() -> u32 {
    15
}

/// Pacing: answers faster than `min_seconds_per_task` are `too_fast` (weighing nothing in
/// consensus with `discount_too_fast`); past `max_tasks_per_session` answers in a session,
/// claims are refused until a gap of the fatigue spec's `session_gap_seconds` (900 s
/// without one) starts a new session.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacingSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_seconds_per_task: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks_per_session: Option<u32>,
    #[serde(default)]
    pub discount_too_fast: bool,
}

/// The reviewer workbench's settings for a project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkbenchSpec {
    /// The taxonomy of model failures a reviewer may tag an answer with.
    #[serde(default)]
    pub failure_categories: Vec<String>,
    /// Origins (`https://host[:port]`) images may be shown from; others are shown as text.
    #[serde(default)]
    pub image_origins: Vec<String>,
    /// How long after an answer its reviewer may undo it while its task is open (default
    /// 60 s, at most a day); after its task closes a change is an amendment instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_seconds: Option<u32>,
    /// The project's guidelines for reviewers, in Markdown (raw HTML is shown as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidelines: Option<String>,
    /// Words and phrases the workbench highlights in an item's text (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub highlight: Vec<String>,
}

impl WorkbenchSpec {
    /// The undo window, in seconds.
    pub fn undo_seconds(&self) -> u32 {
        self.undo_seconds.unwrap_or(crate::amend::DEFAULT_UNDO_SECONDS)
    }
}

/// Monitor thresholds; a monitor without one is computed and shown but never fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    /// Share of recent human-verified items whose label differs from the model's.
    #[serde(default)]
    pub disagreement_rate: Option<f64>,
    /// Share of audits that corrected the auto label.
    #[serde(default)]
    pub audit_error_rate: Option<f64>,
    /// Population stability index of the model's top score, recent window vs the one before.
    #[serde(default)]
    pub psi: Option<f64>,
    /// Open tasks in any queue.
    #[serde(default)]
    pub backlog: Option<u64>,
    /// Age of the oldest open task in any queue.
    #[serde(default)]
    pub oldest_age_s: Option<f64>,
    /// Share of the window's most recent decisions made by a distress rule
    /// (`distress_rules`): a rise means more patients in distress, or a keyword list
    /// catching what it should not.
    #[serde(default)]
    pub distress_rate: Option<f64>,
    /// The rules whose decisions count as distress escalations.
    #[serde(default = "default_distress_rules")]
    pub distress_rules: Vec<String>,
    /// Items per window (disagreement and drift).
    #[serde(default = "default_monitor_window")]
    pub window: u32,
}

fn default_monitor_window() -> u32 {
    500
}

fn default_distress_rules() -> Vec<String> {
    vec!["distress".to_string()]
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// 2^bits hashed feature slots.
    #[serde(default = "default_bits")]
    pub bits: u32,
    /// When the model takes in new labels: as they come, or on a schedule.
    #[serde(default)]
    pub retrain: Retrain,
}

/// When the built-in model trains. `continuous`: on every new human label (the learner's
/// pace, and every `POST …/model/train`). On a schedule — `hourly`, `daily`, `weekly` —
/// the model and its thresholds change only at the first training after a period
/// boundary on the server's clock (hours and days in UTC; weeks start on Monday 00:00
/// UTC), so that between two scheduled times every decision sees the same model: the
/// change a clinical team reviews and signs off is one version a week, not a drift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retrain {
    #[default]
    Continuous,
    Hourly,
    Daily,
    Weekly,
}

impl Retrain {
    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * Self::HOUR_MS;
    /// Unix time 0 was a Thursday; the first Monday 00:00 UTC was four days later.
    const MONDAY_MS: i64 = 4 * Self::DAY_MS;

    /// The number of the schedule's period that holds `now_ms` (`None`: continuous).
    pub fn period(self, now_ms: i64) -> Option<i64> {
        match self {
            Self::Continuous => None,
            Self::Hourly => Some(now_ms.div_euclid(Self::HOUR_MS)),
            Self::Daily => Some(now_ms.div_euclid(Self::DAY_MS)),
            Self::Weekly => Some((now_ms - Self::MONDAY_MS).div_euclid(7 * Self::DAY_MS)),
        }
    }

    /// Whether a training at `now_ms` may take in new labels, when the last one that did
    /// ran in period `last` (`None`: none has yet on this node). A node that has not
    /// trained yet waits for the next boundary, so that a restart does not change the
    /// model between scheduled times.
    pub fn due(self, last: Option<i64>, now_ms: i64) -> bool {
        match (self.period(now_ms), last) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(p), Some(l)) => p > l,
        }
    }
}

fn default_bits() -> u32 {
    18
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveLearningSpec {
    /// `least_confidence`, `margin`, `entropy` or `random`.
    pub strategy: String,
    /// At most this many of every 1,000 items go to review for learning.
    pub budget_per_1000: u32,
    #[serde(default = "default_learning_queue")]
    pub queue: String,
    #[serde(default = "default_tier")]
    pub tier: u8,
    /// Independent answers per chosen item (labels for learning should be reliable).
    #[serde(default = "default_overlap")]
    pub overlap: u8,
}

fn default_learning_queue() -> String {
    "learning".to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    pub target_precision: f64,
    #[serde(default = "default_min_evidence")]
    pub min_evidence: u32,
    /// Count a disagreement between the model and a human label by how likely the label
    /// itself was wrong (estimated from how often reviewers split), assuming reviewers'
    /// errors are independent of the model's. Off: every disagreement is a model error.
    #[serde(default)]
    pub account_for_label_noise: bool,
}

fn default_min_evidence() -> u32 {
    200
}

/// How answers are aggregated: `majority`, `weighted` (by each reviewer's reliability:
/// gold accuracy, smoothed) or `dawid_skene` (per-reviewer confusion matrices fitted over
/// the project's answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsensusMethod {
    Majority,
    Weighted,
    DawidSkene,
}

/// Dynamic overlap: after a route's `overlap` answers, a consensus below `min_confidence`
/// asks one more reviewer, up to `max_overlap`; then the task goes to adjudication.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusSpec {
    #[serde(default = "default_method")]
    pub method: ConsensusMethod,
    #[serde(default)]
    pub min_confidence: f64,
    #[serde(default = "default_max_overlap")]
    pub max_overlap: u8,
}

fn default_method() -> ConsensusMethod {
    ConsensusMethod::Majority
}
fn default_max_overlap() -> u8 {
    5
}

impl Default for ConsensusSpec {
    fn default() -> Self {
        Self {
            method: ConsensusMethod::Majority,
            min_confidence: 0.0,
            max_overlap: 1,
        }
    }
}

/// That fraction of claims hands out a gold task; a reviewer whose gold accuracy's 95%
/// Wilson upper bound falls below `min_accuracy` after `min_gold` gold answers is held.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySpec {
    #[serde(default)]
    pub gold_rate: f64,
    #[serde(default = "default_min_accuracy")]
    pub min_accuracy: f64,
    #[serde(default = "default_min_gold")]
    pub min_gold: u32,
}

fn default_min_accuracy() -> f64 {
    0.85
}
fn default_min_gold() -> u32 {
    20
}

fn default_lease_seconds() -> u32 {
    300
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSpec {
    #[serde(default = "default_audit_queue")]
    pub queue: String,
    #[serde(default = "default_tier")]
    pub tier: u8,
    /// Independent answers per audit (majority decides; a tie goes to adjudication).
    #[serde(default = "default_overlap")]
    pub overlap: u8,
}

fn default_overlap() -> u8 {
    1
}

fn default_audit_queue() -> String {
    AUDIT_QUEUE.to_string()
}
fn default_tier() -> u8 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Auto,
    Review,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    pub when: String,
    pub action: Action,
    /// For `auto`: a fixed label instead of the model's top label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<u8>,
    /// This route's deadline; wins over the policy's `sla_seconds` for the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_seconds: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_is_due_once_per_period_and_never_on_first_sight() {
        // 2025-01-06 was a Monday.
        let monday = 1_736_121_600_000;
        let w = Retrain::Weekly;
        assert_eq!(w.period(monday), Some(w.period(monday - 1).unwrap() + 1));
        assert_eq!(w.period(monday + 7 * Retrain::DAY_MS - 1), w.period(monday));
        assert!(!w.due(None, monday), "a node that has not trained waits for a boundary");
        assert!(!w.due(w.period(monday), monday + 6 * Retrain::DAY_MS));
        assert!(w.due(w.period(monday), monday + 7 * Retrain::DAY_MS));
        let d = Retrain::Daily;
        assert!(d.due(d.period(monday), monday + Retrain::DAY_MS));
        assert!(!d.due(d.period(monday), monday + Retrain::DAY_MS - 1));
        let h = Retrain::Hourly;
        assert!(h.due(h.period(monday), monday + Retrain::HOUR_MS));
        assert!(Retrain::Continuous.due(None, monday));
        assert_eq!(Retrain::Continuous.period(monday), None);
    }

    #[test]
    fn retrain_reads_as_written() {
        let m: ModelSpec = serde_json::from_value(serde_json::json!({"retrain": "weekly"})).unwrap();
        assert_eq!((m.retrain, m.enabled, m.bits), (Retrain::Weekly, true, 18));
        let m: ModelSpec = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(m.retrain, Retrain::Continuous);
        assert!(serde_json::from_value::<ModelSpec>(serde_json::json!({"retrain": "monthly"})).is_err());
    }
}
