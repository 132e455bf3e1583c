//! Webhooks: endpoints, their outbox cursors and delivery attempts.

use serde::Serialize;

use crate::Millis;

/// A webhook endpoint as the API shows it: never its secrets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub project_id: i64,
    pub url: String,
    /// Event-kind patterns (`item.resolved`, `task.*`, `*`), checked by the caller.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Every attempt at some event failed since the last delivery that succeeded.
    pub failing: bool,
    /// The event-log position dealt with: the next event sent is the first after it.
    pub cursor: i64,
    /// Attempts so far at the event after the cursor.
    pub attempts: u32,
    /// When that event is tried next (0: as soon as it exists).
    pub next_attempt_at: Millis,
    /// Until when a rotated-out secret still signs, if one does.
    pub previous_until: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// `whsec_` and the base64 of the key; kept, since the server signs with it.
    pub secret: String,
}

/// A change to an endpoint: each field given replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An endpoint as a delivery round needs it: with the secrets that sign now.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub hook: Webhook,
    /// The current secret, then the previous one while it still signs.
    pub secrets: Vec<String>,
    /// The endpoint's version when the round read it; a round does not write over a
    /// change the API made meanwhile (a replay, a new URL).
    pub generation: i64,
}

/// What came of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; tried again at `next_attempt_at`.
    Failed,
    /// Answered 410 Gone: the endpoint was disabled.
    Gone,
    /// The last attempt failed: the event was passed over and the endpoint marked failing.
    GivenUp,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Gone => "gone",
            AttemptOutcome::GivenUp => "given_up",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "delivered" => AttemptOutcome::Delivered,
            "failed" => AttemptOutcome::Failed,
            "gone" => AttemptOutcome::Gone,
            "given_up" => AttemptOutcome::GivenUp,
            _ => return None,
        })
    }
}

/// One attempt to deliver one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryAttempt {
    pub event_seq: i64,
    pub kind: String,
    /// The `webhook-id` header: the same for every attempt at this event and endpoint.
    pub message_id: String,
    /// 1 for the first attempt at this event.
    pub attempt: u32,
    pub at: Millis,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// The start of the answer's body, or what went wrong.
    pub response: String,
    pub outcome: AttemptOutcome,
    pub next_attempt_at: Option<Millis>,
}

/// A stored attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub webhook_id: i64,
    #[serde(flatten)]
    pub attempt: DeliveryAttempt,
}

/// What a delivery round did, written in one transaction when it finishes.
#[derive(Debug, Clone, Default)]
pub struct DeliveryRound {
    pub attempts: Vec<DeliveryAttempt>,
    /// The endpoint's state after the round.
    pub cursor: i64,
    pub head_attempts: u32,
    pub next_attempt_at: Millis,
    pub failing: bool,
    /// Answered 410: disable the endpoint.
    pub disable: bool,
    /// `webhook.failing` and `webhook.disabled` events to append.
    pub events: Vec<flywheel_core::Event>,
}

/// Attempts kept per endpoint (older ones are dropped as new ones are written).
pub const DELIVERIES_KEPT: i64 = 1000;

/// The message id of an event sent to an endpoint: stable, so receivers deduplicate.
pub fn message_id(webhook_id: i64, event_seq: i64) -> String {
    format!("msg_{event_seq}_{webhook_id}")
}
