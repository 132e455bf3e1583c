//! Policy: the ordered rules that decide, for each item, `auto` or `review` (with a route).
//!
//! A policy arrives as JSON ([`PolicySpec`]), is checked and compiled once ([`Policy::compile`])
//! and is then evaluated for every item ([`Policy::decide`]). Conditions are CEL
//! expressions (the `cel` crate): not Turing-complete, so a rule cannot loop or reach out.
//! The first rule that holds decides; when none holds the item goes to review in queue
//! `default`, tier 1, with reason "no rule matched" — never silently auto. A rule whose
//! expression fails on an item (a missing attribute, say) does not hold for that item, and
//! the failure is one of the decision's reasons.

use std::sync::Arc;

use cel::{Context, Env, Program, Value};
use serde::{Deserialize, Serialize};

use crate::{LabelSet, Prediction, ValidationError};

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
];

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
    /// Per queue, how long a task may wait before it breaches its service level.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sla_seconds: std::collections::BTreeMap<String, u32>,
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
}

/// Checks an origin: `http(s)://host[:port]`, nothing after.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("an origin starts with https:// or http://, got '{s}'"))?;
    let ok = !rest.is_empty()
        && rest.len() <= 253
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !ok {
        return Err(format!(
            "an origin is scheme://host[:port] with nothing after, got '{s}'"
        ));
    }
    Ok(s.to_ascii_lowercase())
}

/// Monitor thresholds; a monitor without one is computed and shown but never fires.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
    /// Items per window (disagreement and drift).
    #[serde(default = "default_monitor_window")]
    pub window: u32,
}

fn default_monitor_window() -> u32 {
    500
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// 2^bits hashed feature slots.
    #[serde(default = "default_bits")]
    pub bits: u32,
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
}

/// Where a piece of human work goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub queue: String,
    pub tier: u8,
    pub priority: i32,
    pub overlap: u8,
}

impl Route {
    pub fn default_review() -> Self {
        Self {
            queue: DEFAULT_QUEUE.into(),
            tier: 1,
            priority: 0,
            overlap: 1,
        }
    }
}

/// Checks a queue name: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
pub fn parse_queue(s: &str) -> Result<String, String> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "a queue name has 1 to 64 characters of a-z, 0-9, '_' and '-', got '{s}'"
        ));
    }
    Ok(s.to_string())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Auto { label: String },
    Review { route: Route },
}

/// What the policy said for one item, and why. Never rewritten once stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub rule: String,
    pub reasons: Vec<String>,
    pub policy_version: u32,
    /// For a sampled auto decision: where its audit task goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Route>,
}

/// What the rules can see of an item.
#[derive(Debug, Clone, Copy)]
pub struct ItemView<'a> {
    pub payload: &'a serde_json::Value,
    pub attributes: &'a serde_json::Value,
    pub prediction: Option<&'a Prediction>,
    /// The project's calibrated thresholds per label (none yet: an empty map).
    pub thresholds: Option<&'a std::collections::HashMap<String, f64>>,
}

#[derive(Debug)]
struct Rule {
    name: String,
    program: Program,
    action: RuleAction,
}

#[derive(Debug)]
enum RuleAction {
    Auto { label: Option<String> },
    Review(Route),
}

/// A checked, compiled policy. Cheap to share (`Arc`), evaluated for every item.
pub struct Policy {
    spec: PolicySpec,
    rules: Vec<Rule>,
    audit_route: Route,
    env: Arc<Env>,
    /// The variables some rule refers to (bit `i`: `VARIABLES[i]`): only those are built
    /// for each item — converting the payload to CEL values was most of a decision's
    /// policy time when no rule looked at it.
    used: u64,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Parses and checks a policy for a project with `labels`. Errors name the field
    /// (`rules[1].when`) and say what is wrong.
    pub fn from_json(value: &serde_json::Value, labels: &LabelSet) -> Result<Self, ValidationError> {
        let spec: PolicySpec = serde_json::from_value(value.clone())
            .map_err(|e| ValidationError::new("", format!("not a policy: {e}")))?;
        Self::compile(spec, labels)
    }

    pub fn compile(spec: PolicySpec, labels: &LabelSet) -> Result<Self, ValidationError> {
        if spec.rules.len() > MAX_RULES {
            return Err(ValidationError::new(
                "rules",
                format!("a policy has at most {MAX_RULES} rules"),
            ));
        }
        if !spec.audit_rate.is_finite() || !(0.0..=1.0).contains(&spec.audit_rate) {
            return Err(ValidationError::new("audit_rate", "audit_rate is a fraction in [0, 1]"));
        }
        if !(10..=86_400).contains(&spec.lease_seconds) {
            return Err(ValidationError::new(
                "lease_seconds",
                "lease_seconds is between 10 and 86400",
            ));
        }
        let audit_route = match &spec.audit {
            None => Route {
                queue: AUDIT_QUEUE.into(),
                tier: 1,
                priority: 0,
                overlap: 1,
            },
            Some(a) => Route {
                queue: parse_queue(&a.queue).map_err(|m| ValidationError::new("audit.queue", m))?,
                tier: check_tier(a.tier).map_err(|m| ValidationError::new("audit.tier", m))?,
                priority: 0,
                overlap: check_overlap(a.overlap).map_err(|m| ValidationError::new("audit.overlap", m))?,
            },
        };
        if let Some(c) = &spec.consensus {
            if !c.min_confidence.is_finite() || !(0.0..=1.0).contains(&c.min_confidence) {
                return Err(ValidationError::new(
                    "consensus.min_confidence",
                    "min_confidence is in [0, 1]",
                ));
            }
            if !(1..=MAX_OVERLAP).contains(&c.max_overlap) {
                return Err(ValidationError::new(
                    "consensus.max_overlap",
                    format!("max_overlap is between 1 and {MAX_OVERLAP}"),
                ));
            }
        }
        if let Some(q) = &spec.quality {
            if !q.gold_rate.is_finite() || !(0.0..=1.0).contains(&q.gold_rate) {
                return Err(ValidationError::new(
                    "quality.gold_rate",
                    "gold_rate is a fraction in [0, 1]",
                ));
            }
            if !q.min_accuracy.is_finite() || !(0.0..=1.0).contains(&q.min_accuracy) {
                return Err(ValidationError::new(
                    "quality.min_accuracy",
                    "min_accuracy is in [0, 1]",
                ));
            }
            if q.min_gold == 0 || q.min_gold > 100_000 {
                return Err(ValidationError::new(
                    "quality.min_gold",
                    "min_gold is between 1 and 100000",
                ));
            }
        }
        if let Some(m) = &spec.model
            && !(10..=24).contains(&m.bits)
        {
            return Err(ValidationError::new("model.bits", "bits is between 10 and 24"));
        }
        if let Some(a) = &spec.active_learning {
            if !["least_confidence", "margin", "entropy", "random"].contains(&a.strategy.as_str()) {
                return Err(ValidationError::new(
                    "active_learning.strategy",
                    "strategy is least_confidence, margin, entropy or random",
                ));
            }
            if a.budget_per_1000 > 1000 {
                return Err(ValidationError::new(
                    "active_learning.budget_per_1000",
                    "budget_per_1000 is at most 1000",
                ));
            }
            parse_queue(&a.queue).map_err(|m| ValidationError::new("active_learning.queue", m))?;
            check_tier(a.tier).map_err(|m| ValidationError::new("active_learning.tier", m))?;
            check_overlap(a.overlap).map_err(|m| ValidationError::new("active_learning.overlap", m))?;
        }
        if let Some(m) = &spec.monitors
            && !(10..=100_000).contains(&m.window)
        {
            return Err(ValidationError::new(
                "monitors.window",
                "window is between 10 and 100000 items",
            ));
        }
        if let Some(t) = &spec.thresholds {
            if !t.target_precision.is_finite() || !(0.5..1.0).contains(&t.target_precision) {
                return Err(ValidationError::new(
                    "thresholds.target_precision",
                    "target_precision is in [0.5, 1)",
                ));
            }
            if t.min_evidence == 0 {
                return Err(ValidationError::new(
                    "thresholds.min_evidence",
                    "min_evidence is at least 1",
                ));
            }
        }
        if let Some(w) = &spec.workbench {
            for (i, c) in w.failure_categories.iter().enumerate() {
                if c.trim().is_empty() || c.chars().count() > 128 {
                    return Err(ValidationError::new(
                        format!("workbench.failure_categories[{i}]"),
                        "a failure category has 1 to 128 characters",
                    ));
                }
            }
            for (i, o) in w.image_origins.iter().enumerate() {
                parse_origin(o).map_err(|m| ValidationError::new(format!("workbench.image_origins[{i}]"), m))?;
            }
        }
        for (q, secs) in &spec.sla_seconds {
            parse_queue(q).map_err(|m| ValidationError::new(format!("sla_seconds.{q}"), m))?;
            if *secs == 0 {
                return Err(ValidationError::new(
                    format!("sla_seconds.{q}"),
                    "an SLA is at least 1 second",
                ));
            }
        }
        let env = Arc::new(Env::stdlib());
        let mut rules = Vec::with_capacity(spec.rules.len());
        for (i, r) in spec.rules.iter().enumerate() {
            let at = |f: &str| format!("rules[{i}].{f}");
            let name = r.name.trim();
            if name.is_empty() || name.len() > 64 {
                return Err(ValidationError::new(at("name"), "a rule name has 1 to 64 characters"));
            }
            if rules.iter().any(|x: &Rule| x.name == name) {
                return Err(ValidationError::new(
                    at("name"),
                    format!("rule '{name}': two rules have this name"),
                ));
            }
            let program = compile_when(&env, &r.when)
                .map_err(|m| ValidationError::new(at("when"), format!("rule '{name}': {m}")))?;
            let action = match r.action {
                Action::Auto => {
                    for (f, set) in [
                        ("queue", r.queue.is_some()),
                        ("tier", r.tier.is_some()),
                        ("priority", r.priority.is_some()),
                        ("overlap", r.overlap.is_some()),
                    ] {
                        if set {
                            return Err(ValidationError::new(
                                at(f),
                                format!("rule '{name}': an auto rule has no {f}"),
                            ));
                        }
                    }
                    let label = match &r.label {
                        None => None,
                        Some(l) => Some(
                            labels
                                .answer(&at("label"), l)
                                .map_err(|e| ValidationError::new(e.field, format!("rule '{name}': {}", e.message)))?
                                .as_str()
                                .to_string(),
                        ),
                    };
                    RuleAction::Auto { label }
                }
                Action::Review => {
                    if r.label.is_some() {
                        return Err(ValidationError::new(
                            at("label"),
                            format!("rule '{name}': a review rule has no label"),
                        ));
                    }
                    let queue = match &r.queue {
                        Some(q) => parse_queue(q)
                            .map_err(|m| ValidationError::new(at("queue"), format!("rule '{name}': {m}")))?,
                        None => DEFAULT_QUEUE.to_string(),
                    };
                    let tier = check_tier(r.tier.unwrap_or(1))
                        .map_err(|m| ValidationError::new(at("tier"), format!("rule '{name}': {m}")))?;
                    let overlap = r.overlap.unwrap_or(1);
                    if !(1..=MAX_OVERLAP).contains(&overlap) {
                        return Err(ValidationError::new(
                            at("overlap"),
                            format!("rule '{name}': overlap is between 1 and {MAX_OVERLAP}"),
                        ));
                    }
                    let priority = r.priority.unwrap_or(0);
                    if !(-1_000_000..=1_000_000).contains(&priority) {
                        return Err(ValidationError::new(
                            at("priority"),
                            format!("rule '{name}': priority is between -1000000 and 1000000"),
                        ));
                    }
                    RuleAction::Review(Route {
                        queue,
                        tier,
                        priority,
                        overlap,
                    })
                }
            };
            rules.push(Rule {
                name: name.to_string(),
                program,
                action,
            });
        }
        let used = rules.iter().fold(0u64, |bits, r| {
            let refs = r.program.references();
            VARIABLES
                .iter()
                .enumerate()
                .filter(|(_, v)| refs.has_variable(v))
                .fold(bits, |bits, (i, _)| bits | 1 << i)
        });
        let policy = Self {
            spec,
            rules,
            audit_route,
            env,
            used,
        };
        policy.dry_run(labels)?;
        Ok(policy)
    }

    /// Runs every rule on a sample item, so that type errors (`confidence < 'x'`, a
    /// condition that is not true or false) are found when the policy is stored, not when
    /// the first item arrives. Errors that depend on the item (a missing key) are fine.
    fn dry_run(&self, labels: &LabelSet) -> Result<(), ValidationError> {
        let first = labels.iter().next().map(|l| l.as_str().to_string()).unwrap_or_default();
        let prediction = Prediction {
            model: "sample".into(),
            version: None,
            scores: labels
                .iter()
                .map(|l| (l.as_str().to_string(), if l.as_str() == first { 0.9 } else { 0.1 }))
                .collect(),
        };
        let payload = serde_json::json!({"text": "sample"});
        let attributes = serde_json::json!({});
        for prediction in [Some(&prediction), None] {
            let item = ItemView {
                payload: &payload,
                attributes: &attributes,
                prediction,
                thresholds: None,
            };
            let ctx = self.context(&item);
            for (i, rule) in self.rules.iter().enumerate() {
                match eval_rule(rule, &ctx) {
                    Ok(_) => {}
                    Err(RuleError::Execution(cel::ExecutionError::NoSuchKey(_))) => {}
                    Err(e) => {
                        return Err(ValidationError::new(
                            format!("rules[{i}].when"),
                            format!("rule '{}': {e}", rule.name),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    pub fn lease_seconds(&self) -> u32 {
        self.spec.lease_seconds
    }

    pub fn show_suggestion(&self) -> bool {
        self.spec.show_suggestion
    }

    /// The consensus rule (plain majority, no dynamic overlap, when the policy has none).
    pub fn consensus(&self) -> ConsensusSpec {
        self.spec.consensus.unwrap_or_default()
    }

    pub fn quality(&self) -> Option<QualitySpec> {
        self.spec.quality
    }

    pub fn model(&self) -> Option<ModelSpec> {
        self.spec.model.filter(|m| m.enabled)
    }

    pub fn active_learning(&self) -> Option<&ActiveLearningSpec> {
        self.spec.active_learning.as_ref()
    }

    pub fn thresholds(&self) -> Option<ThresholdSpec> {
        self.spec.thresholds
    }

    pub fn monitors(&self) -> Option<MonitorSpec> {
        self.spec.monitors
    }

    pub fn workbench(&self) -> WorkbenchSpec {
        self.spec.workbench.clone().unwrap_or_default()
    }

    /// Every queue work can reach under this policy, with the tiers that work it: the
    /// rules' routes and the no-match default, audits, active learning, and every tier
    /// above each (adjudication and escalation climb). Sorted by queue, then tier.
    pub fn queues(&self) -> Vec<(String, u8)> {
        let mut routes = vec![(DEFAULT_QUEUE.to_string(), 1)];
        for r in &self.rules {
            if let RuleAction::Review(route) = &r.action {
                routes.push((route.queue.clone(), route.tier));
            }
        }
        routes.push((self.audit_route.queue.clone(), self.audit_route.tier));
        if let Some(a) = &self.spec.active_learning {
            routes.push((a.queue.clone(), a.tier));
        }
        // Adjudication goes one tier up, and an escalation one more, up to the last tier.
        let up: Vec<_> = routes
            .iter()
            .flat_map(|(q, t)| (t.saturating_add(1)..=MAX_TIER).map(move |u| (q.clone(), u)))
            .collect();
        routes.extend(up);
        routes.sort();
        routes.dedup();
        routes
    }

    /// Turns an auto decision into review for active learning (the caller chose the item
    /// within the budget). Other decisions pass unchanged.
    pub fn send_to_learning(&self, mut d: Decision) -> Decision {
        let (Some(al), Outcome::Auto { .. }) = (&self.spec.active_learning, &d.outcome) else {
            return d;
        };
        d.outcome = Outcome::Review {
            route: Route {
                queue: al.queue.clone(),
                tier: al.tier,
                priority: 0,
                overlap: al.overlap,
            },
        };
        d.audit = None;
        d.reasons.push(format!(
            "active_learning: chosen by {} within {} per 1000",
            al.strategy, al.budget_per_1000
        ));
        d
    }

    fn context<'a>(&self, item: &ItemView<'_>) -> Context<'a, 'a> {
        let mut ctx = Context::with_env(self.env.clone());
        let uses = |name: &str| {
            VARIABLES
                .iter()
                .position(|v| *v == name)
                .is_some_and(|i| self.used & (1 << i) != 0)
        };
        let p = item.prediction;
        if uses("label") {
            ctx.add_variable_from_value("label", p.map(|p| p.top().0.to_string()).unwrap_or_default());
        }
        if uses("confidence") {
            ctx.add_variable_from_value("confidence", p.map_or(0.0, |p| p.top().1));
        }
        if uses("margin") {
            ctx.add_variable_from_value("margin", p.map_or(0.0, Prediction::margin));
        }
        if uses("entropy") {
            ctx.add_variable_from_value("entropy", p.map_or(0.0, Prediction::entropy));
        }
        if uses("model") {
            ctx.add_variable_from_value("model", p.map(|p| p.model.clone()).unwrap_or_default());
        }
        if uses("has_prediction") {
            ctx.add_variable_from_value("has_prediction", p.is_some());
        }
        if uses("scores") {
            let scores: std::collections::HashMap<String, f64> =
                p.map(|p| p.scores.iter().cloned().collect()).unwrap_or_default();
            ctx.add_variable_from_value("scores", scores);
        }
        if uses("payload") {
            ctx.add_variable_from_value("payload", json_to_cel(item.payload));
        }
        if uses("attributes") {
            ctx.add_variable_from_value("attributes", json_to_cel(item.attributes));
        }
        if uses("thresholds") {
            ctx.add_variable_from_value("thresholds", item.thresholds.cloned().unwrap_or_default());
        }
        ctx
    }

    /// Decides one item. `version` is this policy's stored version; `audit_draw` is a
    /// uniform draw in [0, 1) that samples auto decisions for audit.
    pub fn decide(&self, item: &ItemView<'_>, version: u32, audit_draw: f64) -> Decision {
        let ctx = self.context(item);
        let mut reasons = Vec::new();
        for rule in &self.rules {
            match eval_rule(rule, &ctx) {
                Ok(false) => continue,
                Err(e) => {
                    reasons.push(format!("rule '{}' could not be evaluated: {e}", rule.name));
                    continue;
                }
                Ok(true) => {}
            }
            match &rule.action {
                RuleAction::Review(route) => {
                    reasons.push(format!("rule '{}' matched", rule.name));
                    return Decision {
                        outcome: Outcome::Review { route: route.clone() },
                        rule: rule.name.clone(),
                        reasons,
                        policy_version: version,
                        audit: None,
                    };
                }
                RuleAction::Auto { label } => {
                    let label = match (label, item.prediction) {
                        (Some(l), _) => l.clone(),
                        (None, Some(p)) => p.top().0.to_string(),
                        (None, None) => {
                            reasons.push(format!(
                                "rule '{}' matched but the item has no prediction to act on",
                                rule.name
                            ));
                            break;
                        }
                    };
                    reasons.push(format!("rule '{}' matched", rule.name));
                    let audit = (audit_draw < self.spec.audit_rate).then(|| {
                        reasons.push(format!("sampled for audit (rate {})", self.spec.audit_rate));
                        self.audit_route.clone()
                    });
                    return Decision {
                        outcome: Outcome::Auto { label },
                        rule: rule.name.clone(),
                        reasons,
                        policy_version: version,
                        audit,
                    };
                }
            }
        }
        reasons.push("no rule matched".into());
        Decision {
            outcome: Outcome::Review {
                route: Route::default_review(),
            },
            rule: DEFAULT_QUEUE.into(),
            reasons,
            policy_version: version,
            audit: None,
        }
    }
}

fn check_overlap(o: u8) -> Result<u8, String> {
    if (1..=MAX_OVERLAP).contains(&o) {
        Ok(o)
    } else {
        Err(format!("overlap is between 1 and {MAX_OVERLAP}, got {o}"))
    }
}

fn check_tier(t: u8) -> Result<u8, String> {
    if (1..=MAX_TIER).contains(&t) {
        Ok(t)
    } else {
        Err(format!("a tier is between 1 and {MAX_TIER}, got {t}"))
    }
}

fn compile_when(env: &Env, when: &str) -> Result<Program, String> {
    if when.trim().is_empty() {
        return Err("'when' is empty; write \"true\" for a rule that always holds".into());
    }
    if when.len() > 4096 {
        return Err("'when' has at most 4096 characters".into());
    }
    let program = env.compile(when).map_err(|e| format!("does not compile: {e}"))?;
    for v in program.references().variables() {
        // Names bound by a comprehension (`tags.exists(t, …)`) are references too.
        let bound = when.contains(&format!("({v},")) || when.contains(&format!("({v} ,"));
        if !VARIABLES.contains(&v) && !bound {
            return Err(format!("unknown variable '{v}' (known: {})", VARIABLES.join(", ")));
        }
    }
    Ok(program)
}

#[derive(Debug, thiserror::Error)]
enum RuleError {
    #[error("{0}")]
    Execution(cel::ExecutionError),
    #[error("the condition must be true or false, got {0}")]
    NotBool(String),
}

fn eval_rule(rule: &Rule, ctx: &Context<'_, '_>) -> Result<bool, RuleError> {
    match rule.program.execute(ctx).map_err(RuleError::Execution)? {
        Value::Bool(b) => Ok(b),
        other => Err(RuleError::NotBool(format!("{other:?}"))),
    }
}

fn json_to_cel(v: &serde_json::Value) -> Value {
    // Serialising a `serde_json::Value` cannot fail: it has no maps with non-string keys.
    cel::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels() -> LabelSet {
        LabelSet::parse(&["ham".into(), "spam".into()]).unwrap()
    }

    fn example() -> Policy {
        Policy::from_json(
            &json!({"rules": [
                {"name": "distress", "when": "payload.text.matches('(?i)hurt myself')", "action": "review", "queue": "urgent", "tier": 2, "priority": 100},
                {"name": "vip", "when": "has(attributes.vip) && attributes.vip", "action": "auto", "label": "ham"},
                {"name": "confident", "when": "confidence >= 0.95", "action": "auto"},
                {"name": "uncertain", "when": "has_prediction", "action": "review", "queue": "standard", "tier": 1, "overlap": 2}],
              "audit_rate": 0.1, "lease_seconds": 300, "show_suggestion": true}),
            &labels(),
        )
        .unwrap()
    }

    fn pred(spam: f64) -> Prediction {
        Prediction {
            model: "m".into(),
            version: None,
            scores: vec![("ham".into(), 1.0 - spam), ("spam".into(), spam)],
        }
    }

    #[test]
    fn queues_list_every_route_and_its_adjudication_tier() {
        let q = example().queues();
        let has = |name: &str, tier: u8| q.contains(&(name.to_string(), tier));
        assert!(has("urgent", 2) && has("urgent", 3), "{q:?}");
        assert!(has("standard", 1) && has("standard", 2));
        assert!(has("default", 1) && has("audit", 1));
        assert!(!has("urgent", 1), "a tier-1 reviewer has no way into 'urgent'");
    }

    #[test]
    fn workbench_and_sla_settings_are_checked() {
        let base = |extra: serde_json::Value| {
            let mut p = json!({"rules": []});
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            Policy::from_json(&p, &labels())
        };
        let ok = base(
            json!({"workbench": {"failure_categories": ["sarcasm"], "image_origins": ["https://img.example.com"]},
                             "sla_seconds": {"default": 3600}}),
        )
        .unwrap();
        assert_eq!(ok.workbench().failure_categories, vec!["sarcasm"]);
        for (bad, field) in [
            (
                json!({"workbench": {"image_origins": ["javascript:alert(1)"]}}),
                "workbench.image_origins[0]",
            ),
            (
                json!({"workbench": {"image_origins": ["https://x.com/path"]}}),
                "workbench.image_origins[0]",
            ),
            (
                json!({"workbench": {"failure_categories": [" "]}}),
                "workbench.failure_categories[0]",
            ),
            (json!({"sla_seconds": {"Bad Queue": 10}}), "sla_seconds.Bad Queue"),
            (json!({"sla_seconds": {"default": 0}}), "sla_seconds.default"),
        ] {
            assert_eq!(base(bad.clone()).unwrap_err().field, field, "{bad}");
        }
    }

    #[test]
    fn routing_table() {
        let p = example();
        type Case = (
            serde_json::Value,
            serde_json::Value,
            Option<f64>,
            f64,
            &'static str,
            Outcome,
        );
        let cases: &[Case] = &[
            (
                json!({"text": "I want to hurt myself"}),
                json!({}),
                Some(0.99),
                0.5,
                "distress",
                Outcome::Review {
                    route: Route {
                        queue: "urgent".into(),
                        tier: 2,
                        priority: 100,
                        overlap: 1,
                    },
                },
            ),
            (
                json!({"text": "hi"}),
                json!({"vip": true}),
                Some(0.5),
                0.5,
                "vip",
                Outcome::Auto { label: "ham".into() },
            ),
            (
                json!({"text": "win money"}),
                json!({}),
                Some(0.97),
                0.5,
                "confident",
                Outcome::Auto { label: "spam".into() },
            ),
            (
                json!({"text": "hello"}),
                json!({}),
                Some(0.02),
                0.5,
                "confident",
                Outcome::Auto { label: "ham".into() },
            ),
            (
                json!({"text": "hello"}),
                json!({}),
                Some(0.5),
                0.5,
                "uncertain",
                Outcome::Review {
                    route: Route {
                        queue: "standard".into(),
                        tier: 1,
                        priority: 0,
                        overlap: 2,
                    },
                },
            ),
            (
                json!({"text": "hello"}),
                json!({}),
                None,
                0.5,
                "default",
                Outcome::Review {
                    route: Route::default_review(),
                },
            ),
        ];
        for (payload, attributes, spam, draw, rule, outcome) in cases {
            let pr = spam.map(pred);
            let d = p.decide(
                &ItemView {
                    payload,
                    attributes,
                    prediction: pr.as_ref(),
                    thresholds: None,
                },
                7,
                *draw,
            );
            assert_eq!(&d.rule, rule, "{payload}");
            assert_eq!(&d.outcome, outcome, "{payload}");
            assert_eq!(d.policy_version, 7);
        }
    }

    #[test]
    fn no_match_is_review_in_default_with_reason() {
        let p = Policy::from_json(
            &json!({"rules": [{"name": "never", "when": "false", "action": "auto"}]}),
            &labels(),
        )
        .unwrap();
        let d = p.decide(
            &ItemView {
                payload: &json!({}),
                attributes: &json!({}),
                prediction: Some(&pred(0.99)),
                thresholds: None,
            },
            1,
            0.0,
        );
        assert_eq!(
            d.outcome,
            Outcome::Review {
                route: Route::default_review()
            }
        );
        assert_eq!(d.reasons, vec!["no rule matched".to_string()]);
    }

    #[test]
    fn a_rule_that_fails_on_an_item_does_not_hold() {
        let p = example();
        // No payload.text: the distress rule cannot be evaluated; the item is still decided.
        let d = p.decide(
            &ItemView {
                payload: &json!({}),
                attributes: &json!({}),
                prediction: Some(&pred(0.99)),
                thresholds: None,
            },
            1,
            0.5,
        );
        assert_eq!(d.rule, "confident");
        assert!(d.reasons[0].contains("distress"), "{:?}", d.reasons);
    }

    #[test]
    fn auto_without_a_prediction_never_autos() {
        let p = Policy::from_json(
            &json!({"rules": [{"name": "all", "when": "true", "action": "auto"}]}),
            &labels(),
        )
        .unwrap();
        let d = p.decide(
            &ItemView {
                payload: &json!({}),
                attributes: &json!({}),
                prediction: None,
                thresholds: None,
            },
            1,
            0.0,
        );
        assert!(matches!(d.outcome, Outcome::Review { .. }));
    }

    #[test]
    fn audit_sampling_follows_the_draw() {
        let p = example();
        let item = |pr: &Prediction| {
            p.decide(
                &ItemView {
                    payload: &json!({"text": "x"}),
                    attributes: &json!({}),
                    prediction: Some(pr),
                    thresholds: None,
                },
                1,
                0.05,
            )
            .audit
        };
        assert_eq!(item(&pred(0.99)).unwrap().queue, "audit");
        let d = p.decide(
            &ItemView {
                payload: &json!({"text": "x"}),
                attributes: &json!({}),
                prediction: Some(&pred(0.99)),
                thresholds: None,
            },
            1,
            0.5,
        );
        assert!(d.audit.is_none());
        // Reviews are never audited.
        assert!(item(&pred(0.5)).is_none());
    }

    #[test]
    fn invalid_policies_name_the_rule_and_the_problem() {
        let l = labels();
        let cases = [
            (
                json!({"rules": [{"name": "a", "when": "confidence >=", "action": "auto"}]}),
                "rules[0].when",
                "does not compile",
            ),
            (
                json!({"rules": [{"name": "a", "when": "score > 1", "action": "auto"}]}),
                "rules[0].when",
                "unknown variable 'score'",
            ),
            (
                json!({"rules": [{"name": "a", "when": "confidence + 1.0", "action": "auto"}]}),
                "rules[0].when",
                "true or false",
            ),
            (
                json!({"rules": [{"name": "a", "when": "confidence < 'x'", "action": "auto"}]}),
                "rules[0].when",
                "rule 'a'",
            ),
            (
                json!({"rules": [{"name": "a", "when": "true", "action": "auto", "label": "eggs"}]}),
                "rules[0].label",
                "not a label",
            ),
            (
                json!({"rules": [{"name": "a", "when": "true", "action": "review", "tier": 0}]}),
                "rules[0].tier",
                "tier",
            ),
            (
                json!({"rules": [{"name": "a", "when": "true", "action": "review", "overlap": 11}]}),
                "rules[0].overlap",
                "overlap",
            ),
            (
                json!({"rules": [{"name": "a", "when": "true", "action": "review", "queue": "Bad Queue"}]}),
                "rules[0].queue",
                "queue",
            ),
            (
                json!({"rules": [{"name": "a", "when": "true", "action": "auto", "queue": "x"}]}),
                "rules[0].queue",
                "auto rule",
            ),
            (
                json!({"rules": [{"name": "a", "when": "true", "action": "auto"}, {"name": "a", "when": "true", "action": "auto"}]}),
                "rules[1].name",
                "two rules",
            ),
            (json!({"rules": [], "audit_rate": 1.5}), "audit_rate", "[0, 1]"),
            (json!({"rules": [], "lease_seconds": 1}), "lease_seconds", "10"),
            (json!({"rules": [], "bogus": 1}), "", "unknown field"),
            (
                json!({"rules": [{"name": "a", "when": "true", "action": "maybe"}]}),
                "",
                "unknown variant",
            ),
        ];
        for (policy, field, msg) in cases {
            let e = Policy::from_json(&policy, &l).unwrap_err();
            assert_eq!(e.field, field, "{policy}: {e}");
            assert!(e.message.contains(msg), "{policy}: {e}");
        }
    }

    #[test]
    fn comprehension_variables_are_allowed() {
        let p = Policy::from_json(
            &json!({"rules": [{"name": "t", "when": "has(attributes.tags) && attributes.tags.exists(t, t == 'refund')", "action": "review"}]}),
            &labels(),
        )
        .unwrap();
        let d = p.decide(
            &ItemView {
                payload: &json!({}),
                attributes: &json!({"tags": ["vip", "refund"]}),
                prediction: None,
                thresholds: None,
            },
            1,
            0.0,
        );
        assert_eq!(d.rule, "t");
    }

    #[test]
    fn decisions_round_trip_as_json() {
        let p = example();
        let d = p.decide(
            &ItemView {
                payload: &json!({"text": "x"}),
                attributes: &json!({}),
                prediction: Some(&pred(0.99)),
                thresholds: None,
            },
            3,
            0.01,
        );
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["outcome"], "auto");
        assert_eq!(v["label"], "spam");
        assert_eq!(v["audit"]["queue"], "audit");
        let back: Decision = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
    }
}
