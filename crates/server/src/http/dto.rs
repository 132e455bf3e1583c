//! The wire format: request and response bodies, with their OpenAPI schemas. Field names
//! here are the API contract: add fields freely, rename none. Request bodies a use case
//! takes whole (items, gold, answers) are defined beside it in `app` and re-exported here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub use crate::app::amend::AmendIn;
pub use crate::app::items::{ItemIn, PredictionIn};
pub use crate::app::overrides::OverrideIn;
pub use crate::app::quality::GoldIn;
pub use crate::app::work::{NextIn, ReasonIn, ReviewIn};
pub use crate::error::ErrorDetail;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// 1 to 64 of `a-z`, `0-9`, `_`, `-`.
    pub name: String,
    /// 2 to 100 labels; their order is the order of the reviewer's buttons.
    pub labels: Vec<String>,
    /// `single` (default): an answer is one label, scores a distribution. `multi`: an
    /// answer is a set of labels (`labels: [..]`, possibly empty), scores independent per
    /// label, consensus and auto decisions per label.
    #[serde(default)]
    #[schema(inline)]
    pub label_mode: LabelModeDto,
    /// The policy (see `PUT /v1/projects/{project}/policy`).
    #[schema(value_type = Object)]
    pub policy: Value,
    /// Typed fields an answer carries beside its label (none when absent); checked at
    /// creation, a refusal naming e.g. `answer_fields[1].values`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<AnswerFieldSpec>>)]
    pub answer_fields: Option<Value>,
}

/// One declared answer field. An answer's `fields` holds `{name: value}`: a string listed
/// in `values` (enum), a number in `[min, max]` (number), `true`/`false` (bool), a string
/// of at most `max_length` characters (text; 2,000 by default, 10,000 at most).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnswerFieldSpec {
    /// 1 to 64 of `A-Z a-z 0-9 _ -`; unique in the project.
    pub name: String,
    /// `enum`, `number`, `bool` or `text`.
    #[serde(rename = "type")]
    pub r#type: String,
    /// enum: its values, in the workbench's order (a tie in the resolved fields goes to
    /// the first listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// number: the lowest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// number: the highest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// text: the most characters allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// An answer with a label must give it (default false).
    #[serde(default)]
    pub required: bool,
    /// With `required`: required only when the answer's label is one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_labels: Option<Vec<String>>,
}

/// Whether an answer is one label or a set of labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LabelModeDto {
    #[default]
    Single,
    Multi,
}

impl From<LabelModeDto> for flywheel_core::LabelMode {
    fn from(m: LabelModeDto) -> Self {
        match m {
            LabelModeDto::Single => Self::Single,
            LabelModeDto::Multi => Self::Multi,
        }
    }
}

impl From<flywheel_core::LabelMode> for LabelModeDto {
    fn from(m: flywheel_core::LabelMode) -> Self {
        match m {
            flywheel_core::LabelMode::Single => Self::Single,
            flywheel_core::LabelMode::Multi => Self::Multi,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectCreated {
    pub name: String,
    pub labels: Vec<String>,
    /// `single` or `multi`.
    #[schema(value_type = String, pattern = "^(single|multi)$")]
    pub label_mode: LabelModeDto,
    pub policy_version: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectOut {
    pub name: String,
    pub labels: Vec<String>,
    /// `single` or `multi`.
    #[schema(value_type = String, pattern = "^(single|multi)$")]
    pub label_mode: LabelModeDto,
    #[schema(value_type = Object)]
    pub policy: Value,
    pub policy_version: u32,
    /// The project's answer fields (`[]` for none).
    #[schema(value_type = Vec<AnswerFieldSpec>)]
    pub answer_fields: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyStored {
    pub policy_version: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyVersions {
    /// The version in force.
    pub current: u32,
    /// Newest first.
    pub versions: Vec<PolicyVersionOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyVersionOut {
    pub version: u32,
    #[schema(value_type = Object)]
    pub policy: Value,
    /// RFC 3339.
    pub created_at: String,
    /// Who stored it (`admin`, a key's name, a reviewer).
    pub created_by: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDiff {
    pub from: u32,
    pub to: u32,
    pub lines: Vec<crate::app::projects::DiffLine>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackIn {
    /// The stored version to bring back (as a new version).
    pub version: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReviewer {
    pub name: String,
    /// Tiers granted, 1 (L1) to 9.
    pub tiers: Vec<u8>,
    /// Project names granted.
    pub projects: Vec<String>,
    /// Optional: a password (at least 8 characters) to sign in to the workbench with.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewerCreated {
    pub id: i64,
    pub name: String,
    pub tiers: Vec<u8>,
    pub projects: Vec<String>,
    /// Shown once; only its hash is stored.
    pub api_key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// `service`: submits items to and reads labels of its projects.
    #[schema(pattern = "^service$")]
    pub scope: String,
    #[schema(min_items = 1)]
    pub projects: Vec<String>,
    /// What to call the key ("nightly import"): up to 64 characters, stored in NFKC
    /// form, no invisible, bidi or control characters; blank is no name.
    /// (Its length, counted after trimming, is in the document's pattern: `http::openapi`.)
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    /// Shown once; only its hash is stored.
    pub api_key: String,
    /// The key's SHA-256, hex: how `GET /v1/keys` lists it and `POST /v1/keys/{hash}/revoke`
    /// names it.
    pub hash: String,
    pub scope: String,
    pub projects: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitItems {
    /// 1 to 10,000 items.
    pub items: Vec<ItemIn>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitResponse {
    pub decisions: Vec<DecisionOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteOut {
    pub queue: String,
    pub tier: u8,
    pub priority: i32,
    pub overlap: u8,
    /// The task's deadline, in seconds from its creation (a rule's `sla_seconds`, or the
    /// policy's for the queue); absent: no deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_seconds: Option<u32>,
    /// How long before the deadline `sla.warning` is written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn_before_seconds: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionOut {
    pub external_id: String,
    pub item_id: i64,
    /// `auto` or `review`.
    pub outcome: String,
    /// An auto decision's label; in a multi-label project the set's canonical encoding
    /// (the JSON array of its labels in project order, as text): read `labels` there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A multi-label project's auto decision: the labels whose scores are at or above
    /// their thresholds (calibrated per label, else 0.5), in project order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteOut>,
    /// For a sampled auto decision: where its audit task went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<RouteOut>,
    pub rule: String,
    pub reasons: Vec<String>,
    pub policy_version: u32,
    pub duplicate: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimIn {
    /// Only this queue; any queue of the reviewer's tiers when absent.
    #[serde(default)]
    pub queue: Option<String>,
    /// Long poll: when there is nothing to do, wait up to this long (at most 30,000 ms) for
    /// work to arrive (on any node) before answering 204.
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimOut {
    pub task_id: i64,
    pub lease_id: i64,
    /// RFC 3339.
    pub lease_expires_at: String,
    /// `review`, `adjudicate` or `audit`.
    pub stage: String,
    pub queue: String,
    pub tier: u8,
    pub labels: Vec<String>,
    pub item: ClaimItem,
    /// The model's suggestion, when the policy shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Suggestion>,
    /// Only for `adjudicate` tasks: why the task is here and the item's earlier answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<AdjudicationOut>,
    /// Why the item is in review: the policy's rule that routed it and its reasons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<WhyOut>,
}

/// The rule that sent an item to review, and the reasons it gave.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhyOut {
    pub rule: String,
    pub reasons: Vec<String>,
}

/// What an adjudicator sees beside the item.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdjudicationOut {
    /// The task's reason: an escalation's words, or why the answers went to adjudication.
    pub reason: Option<String>,
    /// The item's earlier answers (reviewers, labels, reasons, notes), oldest first.
    pub answers: Vec<ReviewRecordOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimItem {
    pub external_id: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    #[schema(value_type = Object)]
    pub attributes: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestion {
    /// The top label (in a multi-label project, the label the model is surest of).
    pub label: String,
    pub confidence: f64,
    pub scores: BTreeMap<String, f64>,
    pub model: String,
    /// Only in a multi-label project: the labels whose score is at or above the label's
    /// threshold (calibrated, else 0.5), in the project's order — the set the model
    /// suggests, empty for none of these.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatIn {
    pub lease_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatOut {
    pub lease_expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewOut {
    pub review_id: String,
    /// `waiting`, `resolved`, `adjudicate`, `requeued`, `confirmed` or `corrected`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<ResolutionOut>,
    /// Present when the request asked for `next`: the task leased in the same commit, or
    /// `null` (nothing to do now, or the claim was refused: see `next_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable)]
    pub next: Option<Option<ClaimOut>>,
    /// Why the next claim was refused (a reviewer held for low gold accuracy); the answer
    /// itself was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_error: Option<ErrorDetail>,
}

/// What a change of mind did.
#[derive(Debug, Serialize, ToSchema)]
pub struct AmendOut {
    pub review_id: String,
    pub amend_id: String,
    /// `undone` (the label replaced while the task was open), `amended` (the item went
    /// back to adjudication) or `unchanged` (the answer had this label already).
    pub outcome: String,
    /// The answer's label before (`null`: it was an escalation).
    pub previous: Option<String>,
    pub label: String,
    /// The answer's new fields, when the change sent some.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
    /// The `adjudicate` task an amendment opened (none when one was open already).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjudication_task_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResolutionOut {
    /// The label; in a multi-label project the set's canonical encoding (the JSON array
    /// of its labels in project order, as text): read `labels` there.
    pub label: String,
    /// A multi-label project's resolution: the labels present, in project order (`[]`:
    /// none of these); absent in a single-label project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// `auto`, `human` or `adjudicated`.
    pub source: String,
    pub method: String,
    pub confidence: f64,
    pub reviewers: Vec<String>,
    pub resolved_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LabelOut {
    pub cursor: i64,
    pub external_id: String,
    /// A single-label project's label (absent in a multi-label project).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A multi-label project's resolution: the labels present, in project order (`[]`:
    /// none of these); absent in a single-label project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// `auto`, `human` or `adjudicated`.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    pub policy_version: u32,
    pub resolved_at: String,
    /// In a project with answer fields: the item's resolved fields — over the answers of
    /// the task that resolved it, an enum's majority (a tie goes to the value listed
    /// first), a number's median, a bool's majority (a tie is false), the last text (an
    /// adjudicator's on an adjudication); `{}` on an auto decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LabelPage {
    pub labels: Vec<LabelOut>,
    /// Pass as `after` for the next page; the same value when nothing new has arrived.
    pub next_cursor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<i64>,
    #[schema(value_type = Object)]
    pub data: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventOut>,
    pub next_cursor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueOut {
    pub open: i64,
    pub oldest_age_s: f64,
    /// Open tasks whose `sla.warning` was written and whose deadline has not passed.
    pub due_soon: i64,
    /// Open tasks past their deadline.
    pub overdue: i64,
    /// Tasks breached so far (`sla.breached` written), open or closed.
    pub breached_total: i64,
    /// Of the tasks with a deadline closed in the last hour, the share closed by their
    /// deadline; null when none closed.
    pub answered_within_sla_1h: Option<f64>,
    /// The same over the last 24 hours.
    pub answered_within_sla_24h: Option<f64>,
}

/// Open tasks per queue: what a reviewer's workbench counts down (`GET …/queues`).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuesOut {
    pub queues: BTreeMap<String, QueueOpen>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueOpen {
    /// Open tasks in the queue.
    #[schema(minimum = 0)]
    pub open: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsOut {
    pub items: i64,
    pub auto: i64,
    pub review: i64,
    pub resolved: i64,
    pub open_tasks: i64,
    /// auto / items (0 when there are no items).
    pub automation_rate: f64,
    /// Audit answers so far (confirmed + corrected).
    pub audits: u64,
    /// Precision of auto decisions estimated from audits — the unbiased estimate — with
    /// its 95% Wilson interval.
    pub auto_precision_from_audits: Option<f64>,
    pub auto_precision_interval: Option<[f64; 2]>,
    /// The calibrated confidence thresholds per label (labels without enough evidence have none).
    pub thresholds: BTreeMap<String, f64>,
    pub queues: BTreeMap<String, QueueOut>,
    /// Open tasks whose tier no active reviewer of the project holds (granted the project,
    /// not deactivated, not held): nobody can claim them. By queue, then tier; empty when
    /// every open task can be claimed.
    pub stranded: Vec<StrandedOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StrandedOut {
    pub queue: String,
    #[schema(minimum = 1, maximum = 255)]
    pub tier: u8,
    /// Open tasks of this queue and tier.
    #[schema(minimum = 1)]
    pub open: i64,
    /// Age of the oldest of them, in seconds.
    #[schema(minimum = 0)]
    pub oldest_age_s: f64,
    /// The alert as the console says it ("no active reviewer holds tier 3: …").
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemOut {
    pub item_id: i64,
    pub external_id: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    #[schema(value_type = Object)]
    pub attributes: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub prediction: Option<Value>,
    pub created_at: String,
}

/// What an override did.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverrideOut {
    pub item_id: i64,
    pub external_id: String,
    /// `resolve` or `reroute`.
    #[schema(pattern = "^(resolve|reroute)$")]
    pub action: String,
    /// The open tasks closed, and the active leases on them cancelled.
    pub closed_tasks: Vec<i64>,
    pub cancelled_leases: Vec<i64>,
    /// `reroute`: the new task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<i64>,
    /// `resolve`: the item's resolution (source `human`, method `override`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<ResolutionOut>,
}

/// One item an item search found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemHitOut {
    pub item_id: i64,
    pub external_id: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    /// `auto` or `review`.
    #[schema(pattern = "^(auto|review)$")]
    pub outcome: String,
    /// The rule that decided it.
    pub rule: String,
    /// The resolved label; absent while unresolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_label: Option<String>,
    /// Open tasks of the item.
    #[schema(minimum = 0)]
    pub open_tasks: i64,
    pub created_at: String,
}

/// A page of an item search, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemSearchPage {
    pub items: Vec<ItemHitOut>,
    /// Pass as `cursor` for the next page; null when this page was the last. A page that
    /// read its 10,000 items before it was full has one even with fewer `items`, or none.
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskOut {
    pub task_id: i64,
    pub stage: String,
    pub queue: String,
    pub tier: u8,
    pub priority: i32,
    pub overlap: u8,
    pub answered: u8,
    /// `open` or `done`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    /// The task's SLA deadline; absent: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewRecordOut {
    pub review_id: String,
    pub task_id: i64,
    pub reviewer: String,
    /// `label`, `escalate` or `skip`.
    pub answer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub claimed_at: String,
    pub answered_at: String,
    pub time_on_task_ms: i64,
    /// The answer's fields, when it gave any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemDetailOut {
    pub item: ItemOut,
    pub decisions: Vec<DecisionOut>,
    pub tasks: Vec<TaskOut>,
    pub reviews: Vec<ReviewRecordOut>,
    pub resolution: Option<ResolutionOut>,
    pub events: Vec<EventOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddGold {
    pub items: Vec<GoldIn>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GoldAdded {
    pub added: usize,
}

pub use crate::app::quality::ReviewerQuality as ReviewerOut;

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewerPage {
    pub reviewers: Vec<ReviewerOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Released {
    pub released: String,
}

/// One key of a workload dimension (a failure category, a final label, a queue, a tier or
/// a reviewer) over the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkloadRow {
    /// `null` for answers without one (no failure category picked; item not resolved).
    pub key: Option<String>,
    pub answers: u64,
    /// Time on task (answered at − claimed at), summed.
    pub seconds: f64,
    /// `seconds` over the window's total.
    pub time_share: f64,
    pub median_seconds: f64,
    /// The 90th percentile, interpolated between ranks.
    pub p90_seconds: f64,
    /// Share of these answers on tasks whose label answers disagreed.
    pub disagreement_rate: f64,
    /// Share of these answers that escalated.
    pub escalation_rate: f64,
}

/// Something that stands out within a tier, with the sentence the dashboard shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkloadFinding {
    pub tier: u8,
    /// `failure_category` or `label`.
    pub dimension: String,
    pub key: String,
    /// Share of the tier's time on task.
    pub time_share: f64,
    /// Share of the tier's answers.
    pub answer_share: f64,
    pub median_seconds: f64,
    /// The median of the tier's other answers.
    pub rest_median_seconds: f64,
    /// e.g. "tier 2: 71% of time on `sarcasm` (failure category) for 38% of answers,
    /// median 48 s against 12 s for the rest".
    pub text: String,
}

/// Where reviewer time went in `[since, until)`: every answer on the project's tasks (gold
/// left out), grouped five ways, each dimension's rows by time share, highest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkloadOut {
    pub since: String,
    pub until: String,
    pub answers: u64,
    pub seconds: f64,
    pub failure_category: Vec<WorkloadRow>,
    /// By the item's final label.
    pub label: Vec<WorkloadRow>,
    pub queue: Vec<WorkloadRow>,
    pub tier: Vec<WorkloadRow>,
    pub reviewer: Vec<WorkloadRow>,
    /// The strongest first, at most five.
    pub findings: Vec<WorkloadFinding>,
}

impl WorkloadOut {
    pub fn new(w: crate::app::workload::Window, r: flywheel_core::workload::Report) -> Self {
        use flywheel_core::workload::Dimension;
        let rows = |d: Dimension| {
            r.rows(d)
                .iter()
                .map(|x| WorkloadRow {
                    key: x.key.clone(),
                    answers: x.answers,
                    seconds: x.seconds,
                    time_share: x.time_share,
                    median_seconds: x.median_seconds,
                    p90_seconds: x.p90_seconds,
                    disagreement_rate: x.disagreement_rate,
                    escalation_rate: x.escalation_rate,
                })
                .collect()
        };
        WorkloadOut {
            since: super::ts(w.since),
            until: super::ts(w.until),
            answers: r.answers,
            seconds: r.seconds,
            failure_category: rows(Dimension::FailureCategory),
            label: rows(Dimension::Label),
            queue: rows(Dimension::Queue),
            tier: rows(Dimension::Tier),
            reviewer: rows(Dimension::Reviewer),
            findings: r
                .findings
                .into_iter()
                .map(|f| WorkloadFinding {
                    tier: f.tier,
                    dimension: f.dimension.name().into(),
                    key: f.key,
                    time_share: f.time_share,
                    answer_share: f.answer_share,
                    median_seconds: f.median_seconds,
                    rest_median_seconds: f.rest_median_seconds,
                    text: f.text,
                })
                .collect(),
        }
    }
}

/// `GET /v1/projects/{project}/agreement`: a single-label project's report or a multi-label
/// one's, told apart by `label_mode`. Figures that are undefined (0/0) are null.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AgreementOut {
    Single(SingleLabelAgreement),
    Multi(MultiLabelAgreement),
}

/// Agreement over a single-label project's answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SingleLabelAgreement {
    /// Always `single`.
    #[schema(pattern = "^single$")]
    pub label_mode: String,
    pub answers: usize,
    pub tasks: usize,
    pub workers: usize,
    /// The labels answered, in label order (the project's labels before any answer).
    pub labels: Vec<String>,
    /// Over the items with the most common number of answers (Fleiss needs equal counts).
    pub fleiss_kappa: Option<f64>,
    pub randolph_kappa: Option<f64>,
    pub fleiss_tasks_used: usize,
    pub fleiss_raters_per_task: Option<u64>,
    /// Nominal, every reviewer and item, missing answers allowed.
    pub krippendorff_alpha: Option<f64>,
    /// Cohen's κ of the reviewer pairs sharing the most items.
    pub cohen_kappa_pairs: Vec<PairAgreement>,
    /// Each label against the rest (only with more than two labels answered).
    pub per_label: BTreeMap<String, LabelAgreementOut>,
}

/// Agreement over a multi-label project's answers (a set of labels per answer).
#[derive(Debug, Serialize, ToSchema)]
pub struct MultiLabelAgreement {
    /// Always `multi`.
    #[schema(pattern = "^multi$")]
    pub label_mode: String,
    pub answers: usize,
    pub tasks: usize,
    pub workers: usize,
    /// The project's labels in its order, then any other label answered, sorted.
    pub labels: Vec<String>,
    /// The set distance of `krippendorff_alpha`: `masi` (Passonneau 2006) or `jaccard`.
    #[schema(pattern = "^(masi|jaccard)$")]
    pub distance: String,
    /// Krippendorff's α over the answered sets with `distance`, missing answers allowed.
    pub krippendorff_alpha: Option<f64>,
    /// Per label, Fleiss' κ and Krippendorff's α (nominal) of its yes/no: did the reviewer
    /// include it.
    pub per_label: BTreeMap<String, LabelAgreementOut>,
}

/// Agreement on one label: Fleiss' κ and Krippendorff's α of its yes/no.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelAgreementOut {
    pub fleiss_kappa: Option<f64>,
    pub krippendorff_alpha: Option<f64>,
}

/// Cohen's κ of two reviewers over the items both answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairAgreement {
    pub worker_a: String,
    pub worker_b: String,
    pub shared_tasks: usize,
    pub kappa: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    pub observed_agreement: Option<f64>,
}

impl AgreementOut {
    /// The report of `agreement`, or for a project without answers (`None`) its empty one:
    /// zero counts, null figures, the project's `labels`.
    pub fn new(agreement: Option<crate::app::quality::Agreement>, multi: bool, labels: Vec<String>) -> Self {
        use crate::app::quality::{Agreement, SET_DISTANCE};
        let per_label = |m: BTreeMap<String, flywheel_core::agreement::LabelAgreement>| {
            m.into_iter()
                .map(|(k, v)| {
                    let v = LabelAgreementOut {
                        fleiss_kappa: v.fleiss_kappa,
                        krippendorff_alpha: v.krippendorff_alpha,
                    };
                    (k, v)
                })
                .collect()
        };
        match agreement {
            Some(Agreement::Single(r)) => AgreementOut::Single(SingleLabelAgreement {
                label_mode: "single".into(),
                answers: r.answers,
                tasks: r.tasks,
                workers: r.workers,
                labels: r.labels,
                fleiss_kappa: r.fleiss_kappa,
                randolph_kappa: r.randolph_kappa,
                fleiss_tasks_used: r.fleiss_tasks_used,
                fleiss_raters_per_task: r.fleiss_raters_per_task,
                krippendorff_alpha: r.krippendorff_alpha,
                cohen_kappa_pairs: r
                    .cohen_kappa_pairs
                    .into_iter()
                    .map(|p| PairAgreement {
                        worker_a: p.worker_a,
                        worker_b: p.worker_b,
                        shared_tasks: p.shared_tasks,
                        kappa: p.kappa,
                        observed_agreement: p.observed_agreement,
                    })
                    .collect(),
                per_label: per_label(r.per_label),
            }),
            Some(Agreement::Multi(r)) => AgreementOut::Multi(MultiLabelAgreement {
                label_mode: r.label_mode.into(),
                answers: r.answers,
                tasks: r.tasks,
                workers: r.workers,
                labels: r.labels,
                distance: r.distance.into(),
                krippendorff_alpha: r.krippendorff_alpha,
                per_label: per_label(r.per_label),
            }),
            None if multi => AgreementOut::Multi(MultiLabelAgreement {
                label_mode: "multi".into(),
                answers: 0,
                tasks: 0,
                workers: 0,
                labels,
                distance: SET_DISTANCE.name().into(),
                krippendorff_alpha: None,
                per_label: BTreeMap::new(),
            }),
            None => AgreementOut::Single(SingleLabelAgreement {
                label_mode: "single".into(),
                answers: 0,
                tasks: 0,
                workers: 0,
                labels,
                fleiss_kappa: None,
                randolph_kappa: None,
                fleiss_tasks_used: 0,
                fleiss_raters_per_task: None,
                krippendorff_alpha: None,
                cohen_kappa_pairs: Vec::new(),
                per_label: BTreeMap::new(),
            }),
        }
    }
}
