//! Every kind of event Flywheel writes, with its typed data: one [`Event`] type, serialised
//! in one place.
//!
//! The event log is the audit trail, the change feed and (next) the source of webhooks, so
//! its shapes are part of the API. Both backends write an event as its kind
//! ([`Event::kind`]) and its data ([`Event::data_json`]) in two columns, and read it back
//! with [`Event::parse`]; nothing else spells a kind. Statements that build an event in SQL
//! (PostgreSQL's one-statement submission and claim) bind the kind from the constants here
//! (`Event::ITEM_DECIDED`), and the conformance suite parses every event both backends
//! wrote, so a shape that drifts fails a test.
//!
//! This module owns shapes only: which event a change writes is decided where the change
//! is (`review.rs` for answers, the store for the rest).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::task::{Source, Stage};

macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident($data:ty) = $kind:literal as $konst:ident,)*) => {
        /// One entry of the event log: its kind and its data. Serialised as
        /// `{"kind": "...", "data": {...}}`; stored as the two parts.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "data")]
        pub enum Event {
            $($(#[$doc])* #[serde(rename = $kind)] $variant($data),)*
        }

        impl Event {
            $(pub const $konst: &'static str = $kind;)*

            /// Every kind, in the order declared here.
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            /// The event's kind, as stored and served (`item.decided`).
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => $kind,)*
                }
            }

            /// The event's data as JSON text, as stored.
            pub fn data_json(&self) -> Result<String, serde_json::Error> {
                match self {
                    $(Event::$variant(d) => serde_json::to_string(d),)*
                }
            }

            /// The event's data as a JSON value.
            pub fn data(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $(Event::$variant(d) => serde_json::to_value(d),)*
                }
            }
        }
    };
}

events! {
    /// An API key was issued: the admin key at first start, a service key, a reviewer key.
    KeyCreated(KeyCreated) = "key.created" as KEY_CREATED,
    /// A key was revoked (its first 12 hex digits name it).
    KeyRevoked(KeyRevoked) = "key.revoked" as KEY_REVOKED,
    ProjectCreated(ProjectCreated) = "project.created" as PROJECT_CREATED,
    PolicyUpdated(PolicyUpdated) = "policy.updated" as POLICY_UPDATED,
    ReviewerCreated(ReviewerGrant) = "reviewer.created" as REVIEWER_CREATED,
    /// Written once per project a reviewer is granted (on creation and on update).
    ReviewerGranted(ReviewerGrant) = "reviewer.granted" as REVIEWER_GRANTED,
    ReviewerUpdated(ReviewerGrant) = "reviewer.updated" as REVIEWER_UPDATED,
    ReviewerPassword(ReviewerPassword) = "reviewer.password" as REVIEWER_PASSWORD,
    ReviewerHeld(ReviewerHeld) = "reviewer.held" as REVIEWER_HELD,
    ReviewerReleased(ReviewerReleased) = "reviewer.released" as REVIEWER_RELEASED,
    /// The fatigue monitor fired on a reviewer's work session (once per session).
    ReviewerFatigued(ReviewerFatigued) = "reviewer.fatigued" as REVIEWER_FATIGUED,
    /// An item was stored with its decision, its task (if reviewed) and its auto label.
    ItemDecided(ItemDecided) = "item.decided" as ITEM_DECIDED,
    LeaseGranted(LeaseGranted) = "lease.granted" as LEASE_GRANTED,
    LeaseExtended(LeaseExtended) = "lease.extended" as LEASE_EXTENDED,
    LeaseCancelled(LeaseCancelled) = "lease.cancelled" as LEASE_CANCELLED,
    LeaseExpired(LeaseExpired) = "lease.expired" as LEASE_EXPIRED,
    ReviewSubmitted(ReviewSubmitted) = "review.submitted" as REVIEW_SUBMITTED,
    /// A reviewer took back an answer within the undo window, while its task was still
    /// open, and gave another label in its place (`amend.rs`).
    ReviewUndone(ReviewChanged) = "review.undone" as REVIEW_UNDONE,
    /// A reviewer amended an answer after its task closed: the item goes back to
    /// adjudication one tier up (`amend.rs`).
    ReviewAmended(ReviewChanged) = "review.amended" as REVIEW_AMENDED,
    TaskOverlapIncreased(TaskOverlapIncreased) = "task.overlap_increased" as TASK_OVERLAP_INCREASED,
    /// An `adjudicate` task was opened (the event is on the new task).
    TaskEscalated(TaskEscalated) = "task.escalated" as TASK_ESCALATED,
    /// An audit agreed with the auto label.
    AuditConfirmed(AuditConfirmed) = "audit.confirmed" as AUDIT_CONFIRMED,
    ItemResolved(ItemResolved) = "item.resolved" as ITEM_RESOLVED,
    /// An audit (or its adjudication) disagreed with the auto label and replaced it.
    ItemCorrected(ItemResolved) = "item.corrected" as ITEM_CORRECTED,
    GoldAnswered(GoldAnswered) = "gold.answered" as GOLD_ANSWERED,
    GoldAdded(GoldAdded) = "gold.added" as GOLD_ADDED,
    ModelSnapshot(ModelSnapshot) = "model.snapshot" as MODEL_SNAPSHOT,
    ThresholdsChanged(ThresholdsChanged) = "thresholds.changed" as THRESHOLDS_CHANGED,
    /// A monitor crossed its level (or came back under it).
    Monitor(Monitor) = "monitor" as MONITOR,
    /// A webhook endpoint was created (its secret is never in the log).
    WebhookCreated(WebhookChanged) = "webhook.created" as WEBHOOK_CREATED,
    /// An endpoint's URL, patterns or `enabled` changed.
    WebhookUpdated(WebhookChanged) = "webhook.updated" as WEBHOOK_UPDATED,
    WebhookDeleted(WebhookDeleted) = "webhook.deleted" as WEBHOOK_DELETED,
    /// An endpoint got a new secret; the previous one signs too until `previous_until`.
    WebhookRotated(WebhookRotated) = "webhook.rotated" as WEBHOOK_ROTATED,
    /// An endpoint's cursor was moved back: events from `from_seq` on are sent again.
    WebhookReplayed(WebhookReplayed) = "webhook.replayed" as WEBHOOK_REPLAYED,
    /// Every attempt to deliver an event failed: the endpoint is marked failing and the
    /// event passed over (a replay sends it again).
    WebhookFailing(WebhookFailing) = "webhook.failing" as WEBHOOK_FAILING,
    /// The receiver answered 410 Gone: the endpoint is disabled until re-enabled.
    WebhookDisabled(WebhookDisabled) = "webhook.disabled" as WEBHOOK_DISABLED,
    /// An open task's deadline is near (`warn_before_seconds` ahead): once per task.
    SlaWarning(SlaWarning) = "sla.warning" as SLA_WARNING,
    /// An open task passed its deadline: once per task, with the queue's `sla_action`
    /// applied in the same transaction.
    SlaBreached(SlaBreached) = "sla.breached" as SLA_BREACHED,
}

impl Event {
    /// An event as stored: its kind and its data.
    pub fn parse(kind: &str, data: Value) -> Result<Event, serde_json::Error> {
        let mut m = serde_json::Map::with_capacity(2);
        m.insert("kind".into(), Value::String(kind.to_string()));
        m.insert("data".into(), data);
        serde_json::from_value(Value::Object(m))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyCreated {
    /// `admin`, `service` or `reviewer`.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRevoked {
    pub scope: String,
    /// The first 12 hex digits of the key's hash.
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectCreated {
    pub name: String,
    pub labels: Vec<String>,
    pub policy_version: u32,
    pub policy: Value,
    /// `multi` for a multi-label project (absent: `single`).
    #[serde(default, skip_serializing_if = "is_single")]
    pub label_mode: crate::LabelMode,
}

fn is_single(m: &crate::LabelMode) -> bool {
    *m == crate::LabelMode::Single
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyUpdated {
    pub policy_version: u32,
    pub policy: Value,
}

/// A reviewer's grants, as created or updated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewerGrant {
    pub reviewer_id: i64,
    pub name: String,
    pub tiers: Vec<u8>,
    pub projects: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewerPassword {
    pub reviewer_id: i64,
    pub reviewer: String,
    /// Whether the reviewer now has a password (false: it was removed).
    pub password: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewerHeld {
    pub reviewer_id: i64,
    pub reviewer: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewerReleased {
    pub reviewer_id: i64,
    pub reviewer: String,
}

/// The evidence of `reviewer.fatigued`: the baseline and the session's recent window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewerFatigued {
    pub reviewer_id: i64,
    pub reviewer: String,
    /// When the work session began (its first answer).
    pub session_started_at: i64,
    /// Answers in the session so far.
    pub session_answers: u64,
    /// `accuracy` (a drop beyond noise) or `speed` (time on task fell, accuracy did not rise).
    pub reason: String,
    /// `session` (the session's first window) or `history` (earlier sessions).
    pub baseline_from: String,
    pub baseline: FatigueWindow,
    pub recent: FatigueWindow,
    /// The one-sided test's p-value for "recent accuracy is lower".
    pub p_value: Option<f64>,
    /// `notify` or `break`.
    pub on_fatigue: String,
    /// With `break`: when claims are taken again.
    pub break_until: Option<i64>,
}

/// One window of answers: correctness signals (right of answered) with a 95% Wilson
/// interval, and the median time on task of its answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FatigueWindow {
    /// Answers with a correctness signal.
    pub signals: u64,
    pub correct: u64,
    pub accuracy: Option<f64>,
    pub accuracy_lower: Option<f64>,
    pub accuracy_upper: Option<f64>,
    pub median_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemDecided {
    /// The item's decision. SQLite leaves it out when writing (the item keeps it, never
    /// rewritten) and puts it back when reading; read events always have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Value>,
    /// The task the decision opened, if any.
    pub tasks: Vec<i64>,
    /// The auto label, for an auto decision.
    pub resolved: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseGranted {
    pub lease_id: i64,
    pub reviewer_id: i64,
    pub expires_at: i64,
    pub stage: Stage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseExtended {
    pub lease_id: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseCancelled {
    pub lease_id: i64,
    pub reviewer_id: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseExpired {
    pub lease_id: i64,
    pub reviewer_id: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewSubmitted {
    pub review_id: String,
    pub lease_id: i64,
    /// `label`, `escalate` or `skip`.
    pub answer: String,
    /// The label; in a multi-label project the set's canonical encoding (see
    /// [`crate::label`]), decoded in `labels`.
    pub label: Option<String>,
    /// A multi-label project's answer: the set of labels, in project order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    pub reason: Option<String>,
    pub failure_category: Option<String>,
    /// What the answer did (`waiting`, `resolved`, …), as the reviewer was told.
    pub outcome: String,
    /// From the lease's grant to the answer, by the server's clock.
    pub time_on_task_ms: i64,
    /// The answer's checked fields, when the project declares answer fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<crate::fields::Fields>,
}

/// An answer replaced (`review.undone`) or amended (`review.amended`) by its reviewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewChanged {
    /// The answer's `review_id`.
    pub review_id: String,
    /// The change's own idempotency key.
    pub amend_id: String,
    pub reviewer_id: i64,
    /// The label the answer had (`None` for an escalation).
    pub previous: Option<String>,
    pub label: String,
    /// Why (the reviewer's words, or what the change did).
    pub reason: String,
    /// `review.amended`: the tier of the adjudication it opened (`None` when the item
    /// already had one open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjudication_tier: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOverlapIncreased {
    pub overlap: u8,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaWarning {
    pub queue: String,
    pub tier: u8,
    pub due_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaBreached {
    pub queue: String,
    pub tier: u8,
    pub due_at: i64,
    /// The queue's `sla_action`.
    pub action: crate::sla::SlaAction,
    /// What was done: `action`, or `none` when it could not apply (`note` says why).
    pub applied: crate::sla::SlaAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `escalate`: the task's new tier, priority and deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_tier: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_due_at: Option<i64>,
    /// `auto`: the model's label the item was resolved with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEscalated {
    pub from_task: i64,
    pub tier: u8,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditConfirmed {
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResolved {
    /// The label; in a multi-label project the set's canonical encoding (see
    /// [`crate::label`]), decoded in `labels`.
    pub label: String,
    /// A multi-label project's resolution: the set of present labels, in project order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// The label it had before (an auto label that an audit corrected), if any.
    pub previous: Option<String>,
    pub source: Source,
    pub method: String,
    pub confidence: f64,
    pub reviewers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldAnswered {
    pub reviewer_id: i64,
    pub correct: bool,
    /// The reviewer's gold record in the project, this answer included.
    pub gold_answers: u64,
    pub gold_correct: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldAdded {
    pub added: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSnapshot {
    pub version: u32,
    pub examples_seen: u64,
    pub trained_through: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdsChanged {
    pub from: BTreeMap<String, f64>,
    pub to: BTreeMap<String, f64>,
    pub target_precision: f64,
    pub min_evidence: u32,
    /// How many human-verified predictions the calibration read.
    pub verified: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    pub monitor: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub basis: String,
}

/// A webhook endpoint as created or updated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookChanged {
    pub webhook_id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDeleted {
    pub webhook_id: i64,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRotated {
    pub webhook_id: i64,
    /// Until when (epoch ms) the previous secret signs beside the new one.
    pub previous_until: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookReplayed {
    pub webhook_id: i64,
    pub from_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookFailing {
    pub webhook_id: i64,
    pub url: String,
    /// The event that could not be delivered.
    pub event_seq: i64,
    pub attempts: u32,
    /// The last attempt's HTTP status, if it got one.
    pub status: Option<u16>,
    /// The last attempt's error or the start of its response.
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDisabled {
    pub webhook_id: i64,
    pub url: String,
    /// The event whose delivery was answered 410; it is sent first when re-enabled.
    pub event_seq: i64,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn every_kind() -> Vec<Event> {
        let grant = ReviewerGrant {
            reviewer_id: 3,
            name: "ann".into(),
            tiers: vec![1, 2],
            projects: vec!["sms".into()],
        };
        let hook = WebhookChanged {
            webhook_id: 1,
            url: "https://example.com/hook".into(),
            events: vec!["item.*".into()],
            enabled: true,
        };
        let resolved = ItemResolved {
            labels: None,
            label: "spam".into(),
            previous: None,
            source: Source::Human,
            method: "majority".into(),
            confidence: 1.0,
            reviewers: vec!["ann".into()],
        };
        vec![
            Event::KeyCreated(KeyCreated {
                scope: "service".into(),
                projects: Some(vec!["sms".into()]),
                reviewer: None,
            }),
            Event::KeyRevoked(KeyRevoked {
                scope: "service".into(),
                key: "0123456789ab".into(),
            }),
            Event::ProjectCreated(ProjectCreated {
                label_mode: Default::default(),
                name: "sms".into(),
                labels: vec!["ham".into(), "spam".into()],
                policy_version: 1,
                policy: json!({"rules": []}),
            }),
            Event::PolicyUpdated(PolicyUpdated {
                policy_version: 2,
                policy: json!({"rules": []}),
            }),
            Event::ReviewerCreated(grant.clone()),
            Event::ReviewerGranted(grant.clone()),
            Event::ReviewerUpdated(grant),
            Event::ReviewerPassword(ReviewerPassword {
                reviewer_id: 3,
                reviewer: "ann".into(),
                password: true,
            }),
            Event::ReviewerHeld(ReviewerHeld {
                reviewer_id: 3,
                reviewer: "ann".into(),
                reason: "gold".into(),
            }),
            Event::ReviewerReleased(ReviewerReleased {
                reviewer_id: 3,
                reviewer: "ann".into(),
            }),
            Event::ReviewerFatigued(ReviewerFatigued {
                reviewer_id: 3,
                reviewer: "ann".into(),
                session_started_at: 1_000,
                session_answers: 90,
                reason: "accuracy".into(),
                baseline_from: "session".into(),
                baseline: FatigueWindow {
                    signals: 30,
                    correct: 29,
                    accuracy: Some(0.967),
                    accuracy_lower: Some(0.83),
                    accuracy_upper: Some(0.99),
                    median_seconds: Some(20.0),
                },
                recent: FatigueWindow {
                    signals: 30,
                    correct: 21,
                    accuracy: Some(0.7),
                    accuracy_lower: Some(0.52),
                    accuracy_upper: Some(0.83),
                    median_seconds: Some(12.0),
                },
                p_value: Some(0.01),
                on_fatigue: "break".into(),
                break_until: Some(900_000),
            }),
            Event::ItemDecided(ItemDecided {
                decision: Some(json!({"outcome": "review"})),
                tasks: vec![7],
                resolved: None,
            }),
            Event::LeaseGranted(LeaseGranted {
                lease_id: 1,
                reviewer_id: 3,
                expires_at: 10,
                stage: Stage::Review,
            }),
            Event::LeaseExtended(LeaseExtended {
                lease_id: 1,
                expires_at: 20,
            }),
            Event::LeaseCancelled(LeaseCancelled {
                lease_id: 1,
                reviewer_id: 3,
                reason: "the task closed".into(),
            }),
            Event::LeaseExpired(LeaseExpired {
                lease_id: 1,
                reviewer_id: 3,
            }),
            Event::ReviewSubmitted(ReviewSubmitted {
                labels: None,
                review_id: "r1".into(),
                lease_id: 1,
                answer: "label".into(),
                label: Some("spam".into()),
                reason: None,
                failure_category: None,
                outcome: "resolved".into(),
                time_on_task_ms: 1200,
                fields: Some([("severity".to_string(), crate::fields::FieldValue::Text("high".into()))].into()),
            }),
            Event::ReviewUndone(ReviewChanged {
                review_id: "r1".into(),
                amend_id: "a1".into(),
                reviewer_id: 3,
                previous: Some("spam".into()),
                label: "ham".into(),
                reason: "undone within the undo window".into(),
                adjudication_tier: None,
            }),
            Event::ReviewAmended(ReviewChanged {
                review_id: "r1".into(),
                amend_id: "a2".into(),
                reviewer_id: 3,
                previous: Some("spam".into()),
                label: "ham".into(),
                reason: "misread the sender".into(),
                adjudication_tier: Some(2),
            }),
            Event::TaskOverlapIncreased(TaskOverlapIncreased {
                overlap: 3,
                reason: "consensus below min_confidence".into(),
            }),
            Event::TaskEscalated(TaskEscalated {
                from_task: 7,
                tier: 2,
                reason: "reviewers disagreed".into(),
            }),
            Event::AuditConfirmed(AuditConfirmed { label: "ham".into() }),
            Event::ItemResolved(resolved.clone()),
            Event::ItemCorrected(resolved),
            Event::GoldAnswered(GoldAnswered {
                reviewer_id: 3,
                correct: true,
                gold_answers: 4,
                gold_correct: 3,
            }),
            Event::GoldAdded(GoldAdded { added: 5 }),
            Event::ModelSnapshot(ModelSnapshot {
                version: 2,
                examples_seen: 500,
                trained_through: 88,
            }),
            Event::ThresholdsChanged(ThresholdsChanged {
                from: BTreeMap::new(),
                to: BTreeMap::from([("spam".to_string(), 0.93)]),
                target_precision: 0.99,
                min_evidence: 200,
                verified: 640,
            }),
            Event::Monitor(Monitor {
                monitor: "backlog".into(),
                state: "firing".into(),
                value: Some(1200.0),
                threshold: Some(1000.0),
                basis: "open tasks".into(),
            }),
            Event::WebhookCreated(hook.clone()),
            Event::WebhookUpdated(hook),
            Event::WebhookDeleted(WebhookDeleted {
                webhook_id: 1,
                url: "https://example.com/hook".into(),
            }),
            Event::WebhookRotated(WebhookRotated {
                webhook_id: 1,
                previous_until: 86_400_000,
            }),
            Event::WebhookReplayed(WebhookReplayed {
                webhook_id: 1,
                from_seq: 10,
            }),
            Event::WebhookFailing(WebhookFailing {
                webhook_id: 1,
                url: "https://example.com/hook".into(),
                event_seq: 12,
                attempts: 10,
                status: Some(500),
                error: "boom".into(),
            }),
            Event::WebhookDisabled(WebhookDisabled {
                webhook_id: 1,
                url: "https://example.com/hook".into(),
                event_seq: 12,
                reason: "the receiver answered 410 Gone".into(),
            }),
            Event::SlaWarning(SlaWarning {
                queue: "urgent".into(),
                tier: 1,
                due_at: 60_000,
            }),
            Event::SlaBreached(SlaBreached {
                queue: "urgent".into(),
                tier: 1,
                due_at: 60_000,
                action: crate::sla::SlaAction::Escalate,
                applied: crate::sla::SlaAction::Escalate,
                note: None,
                to_tier: Some(2),
                priority: Some(10),
                new_due_at: Some(120_000),
                label: None,
            }),
        ]
    }

    #[test]
    fn every_kind_round_trips_through_its_two_columns() {
        let all = every_kind();
        assert_eq!(all.len(), Event::KINDS.len(), "a kind without a case here");
        for (e, kind) in all.iter().zip(Event::KINDS) {
            assert_eq!(e.kind(), *kind);
            let data: Value = serde_json::from_str(&e.data_json().unwrap()).unwrap();
            assert_eq!(data, e.data().unwrap());
            assert_eq!(&Event::parse(e.kind(), data).unwrap(), e);
            // The tag serde writes is the kind we store.
            assert_eq!(serde_json::to_value(e).unwrap()["kind"], *kind);
        }
    }

    #[test]
    fn shapes_are_the_ones_the_api_has_always_served() {
        let e = Event::ReviewSubmitted(ReviewSubmitted {
            labels: None,
            review_id: "r1".into(),
            lease_id: 1,
            answer: "skip".into(),
            label: None,
            reason: Some("busy".into()),
            failure_category: None,
            outcome: "requeued".into(),
            time_on_task_ms: 5,
            fields: None,
        });
        assert_eq!(
            e.data().unwrap(),
            json!({"review_id": "r1", "lease_id": 1, "answer": "skip", "label": null, "reason": "busy",
                   "failure_category": null, "outcome": "requeued", "time_on_task_ms": 5})
        );
        let admin = Event::KeyCreated(KeyCreated {
            scope: "admin".into(),
            projects: None,
            reviewer: None,
        });
        assert_eq!(admin.data().unwrap(), json!({"scope": "admin"}));
        let decided = Event::ItemDecided(ItemDecided {
            decision: None,
            tasks: vec![],
            resolved: Some("ham".into()),
        });
        assert_eq!(decided.data_json().unwrap(), r#"{"tasks":[],"resolved":"ham"}"#);
    }

    #[test]
    fn an_unknown_kind_or_a_wrong_shape_is_an_error() {
        assert!(Event::parse("item.noted", json!({})).is_err());
        assert!(Event::parse(Event::LEASE_EXPIRED, json!({"lease_id": "x"})).is_err());
    }
}
