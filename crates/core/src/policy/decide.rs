//! A compiled [`Policy`] applied to one item: the first rule that holds decides `auto`
//! (with a label, maybe sampled for audit) or `review` (with a [`Route`]); no rule holding
//! is review in `default`. Builds only the CEL variables some rule reads. Never fails: a
//! rule that cannot be evaluated on an item does not hold, and says why in the reasons.
//!
//! A [`Budget`] bounds one item's evaluation at run time, where the static cost
//! (`cost.rs`) cannot see: every read of the item's `payload` or `attributes` — inside a
//! comprehension, once per element — is a step, and before each the caller's deadline is
//! asked. A rule that runs out fails closed: the item goes to review with the decision's
//! rule [`RULE_BUDGET_EXCEEDED`], naming the rule in its reasons, never an auto decision
//! from a rule that did not finish. Core reads no clock: the deadline is the caller's
//! closure.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::extractors::Arguments;
use cel::{Context, Value};
use serde::{Deserialize, Serialize};

use super::compile::{Policy, Rule, RuleAction};
use super::spec::{DEFAULT_QUEUE, VARIABLES};
use crate::Prediction;

/// Where a piece of human work goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub queue: String,
    pub tier: u8,
    pub priority: i32,
    pub overlap: u8,
    /// The deadline of a task on this route, from its creation (none: no deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_seconds: Option<u32>,
    /// How long before that deadline `sla.warning` is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_before_seconds: Option<u32>,
}

impl Route {
    pub fn default_review() -> Self {
        Self {
            queue: DEFAULT_QUEUE.into(),
            tier: 1,
            priority: 0,
            overlap: 1,
            sla_seconds: None,
            warn_before_seconds: None,
        }
    }

    /// This route with the deadline `slas` gives its queue (a rule's own SLA is
    /// `rule_seconds`, which wins).
    pub fn with_sla(mut self, slas: &crate::sla::Slas, rule_seconds: Option<u32>) -> Self {
        (self.sla_seconds, self.warn_before_seconds) = slas.for_route(&self.queue, rule_seconds);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Auto { label: String },
    Review { route: Route },
}

/// What the policy said for one item, and why. Never rewritten once stored.
///
/// Read back through [`StoredDecision`]: the same JSON, without the buffering serde's
/// `flatten` of an internally tagged enum costs (exports read one decision per row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredDecision")]
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

/// A [`Decision`] as its JSON reads: the outcome's tag and its fields side by side.
#[derive(Deserialize)]
struct StoredDecision {
    outcome: OutcomeTag,
    label: Option<String>,
    route: Option<Route>,
    rule: String,
    reasons: Vec<String>,
    policy_version: u32,
    #[serde(default)]
    audit: Option<Route>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum OutcomeTag {
    Auto,
    Review,
}

impl TryFrom<StoredDecision> for Decision {
    type Error = &'static str;

    fn try_from(d: StoredDecision) -> Result<Self, Self::Error> {
        let outcome = match (d.outcome, d.label, d.route) {
            (OutcomeTag::Auto, Some(label), _) => Outcome::Auto { label },
            (OutcomeTag::Review, _, Some(route)) => Outcome::Review { route },
            (OutcomeTag::Auto, None, _) => return Err("an auto decision has a label"),
            (OutcomeTag::Review, _, None) => return Err("a review decision has a route"),
        };
        Ok(Decision {
            outcome,
            rule: d.rule,
            reasons: d.reasons,
            policy_version: d.policy_version,
            audit: d.audit,
        })
    }
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

/// The decision's rule when a rule ran out of its [`Budget`].
pub const RULE_BUDGET_EXCEEDED: &str = "rule_budget_exceeded";

/// The most reads of an item's payload or attributes one item's rules may make under
/// [`Budget::steps_only`] (and the server's default): far above what any rule the static
/// cost admits needs, so it only stops the runaway ones.
pub const DEFAULT_STEPS: u64 = 10_000_000;

/// What evaluating the policy for one item may spend.
#[derive(Clone, Copy)]
pub struct Budget<'a> {
    /// The most reads of the item's `payload` or `attributes`, over all rules.
    pub steps: u64,
    /// Whether the item's time is up, asked before each read and each rule (the server
    /// passes its deadline; core reads no clock).
    pub expired: &'a (dyn Fn() -> bool + Sync),
}

impl Budget<'static> {
    /// [`DEFAULT_STEPS`] reads and no deadline: for offline replays (backtests, simulations).
    pub fn steps_only() -> Self {
        Budget {
            steps: DEFAULT_STEPS,
            expired: &|| false,
        }
    }
}

/// The item's large variables, handed to CEL on each read, each read counted against the
/// budget. Once the budget is spent every read fails (an undeclared variable), so the
/// rule in progress ends with an error at its next read of the item.
pub(super) struct Metered<'a> {
    payload: Option<Box<dyn Val>>,
    attributes: Option<Box<dyn Val>>,
    budget: Budget<'a>,
    used: AtomicU64,
    exceeded: AtomicBool,
}

impl Metered<'_> {
    /// Takes one step if the budget allows it.
    fn step(&self) -> bool {
        if self.exceeded.load(Ordering::Relaxed) {
            return false;
        }
        let used = self.used.fetch_add(1, Ordering::Relaxed);
        if used >= self.budget.steps || (self.budget.expired)() {
            self.exceeded.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether the budget ran out (also when the deadline passed between reads).
    fn spent(&self) -> bool {
        if !self.exceeded.load(Ordering::Relaxed) && (self.budget.expired)() {
            self.exceeded.store(true, Ordering::Relaxed);
        }
        self.exceeded.load(Ordering::Relaxed)
    }
}

impl VariableResolver for Metered<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let value = match variable {
            "payload" => self.payload.as_deref()?,
            "attributes" => self.attributes.as_deref()?,
            _ => return None,
        };
        self.step().then_some(CowVal::Borrowed(value))
    }
}

impl Policy {
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
                sla_seconds: None,
                warn_before_seconds: None,
            }
            .with_sla(&self.slas, None),
        };
        d.audit = None;
        d.reasons.push(format!(
            "active_learning: chosen by {} within {} per 1000",
            al.strategy, al.budget_per_1000
        ));
        d
    }

    pub(super) fn context<'a>(&self, item: &ItemView<'_>) -> Context<'a, 'a> {
        let mut ctx = Context::with_env(self.env.clone());
        let uses = |name: &str| self.uses(name);
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
        if uses("novelty") {
            // Unknown novelty (no prediction, or a model that gave none) reads as 0: not
            // known to be new, so a rule routing novel content never fires on it.
            ctx.add_variable_from_value("novelty", p.and_then(|p| p.novelty).unwrap_or(0.0));
        }
        if uses("max_score") {
            let max = p.map_or(0.0, |p| p.scores.iter().map(|(_, s)| *s).fold(0.0, f64::max));
            ctx.add_variable_from_value("max_score", max);
        }
        if uses("min_margin") {
            ctx.add_variable_from_value("min_margin", p.map_or(0.0, |p| min_margin(p, item.thresholds)));
        }
        if self.multi && self.uses_labels_above {
            let scores = p.map(|p| p.scores.clone()).unwrap_or_default();
            // Registering cannot fail: `labels_above` is no overload of the standard library.
            let _ = ctx.add_function("labels_above", move |Arguments(args): Arguments| {
                labels_above(&scores, &args)
            });
        }
        if uses("has_prediction") {
            ctx.add_variable_from_value("has_prediction", p.is_some());
        }
        if uses("scores") {
            let scores: std::collections::HashMap<String, f64> =
                p.map(|p| p.scores.iter().cloned().collect()).unwrap_or_default();
            ctx.add_variable_from_value("scores", scores);
        }
        if uses("thresholds") {
            ctx.add_variable_from_value("thresholds", item.thresholds.cloned().unwrap_or_default());
        }
        ctx
    }

    /// Whether some rule reads variable `name`.
    fn uses(&self, name: &str) -> bool {
        VARIABLES
            .iter()
            .position(|v| *v == name)
            .is_some_and(|i| self.used & (1 << i) != 0)
    }

    /// The item's payload and attributes, converted once if some rule reads them, read
    /// through the budget.
    pub(super) fn metered<'b>(&self, item: &ItemView<'_>, budget: Budget<'b>) -> Metered<'b> {
        let convert = |name: &str, v: &serde_json::Value| {
            // A JSON value always converts; were one not to, reads of it fail and the
            // rules reading it do not hold.
            self.uses(name)
                .then(|| Box::<dyn Val>::try_from(json_to_cel(v)).ok())
                .flatten()
        };
        Metered {
            payload: convert("payload", item.payload),
            attributes: convert("attributes", item.attributes),
            budget,
            used: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
        }
    }

    /// Decides one item within [`Budget::steps_only`]. `version` is this policy's stored
    /// version; `audit_draw` is a uniform draw in [0, 1) that samples auto decisions for
    /// audit.
    pub fn decide(&self, item: &ItemView<'_>, version: u32, audit_draw: f64) -> Decision {
        self.decide_within(item, version, audit_draw, Budget::steps_only())
    }

    /// Decides one item within `budget`: a rule that runs out of it sends the item to
    /// review (rule [`RULE_BUDGET_EXCEEDED`]), whatever it or the rules after it say.
    pub fn decide_within(&self, item: &ItemView<'_>, version: u32, audit_draw: f64, budget: Budget<'_>) -> Decision {
        let data = self.metered(item, budget);
        let mut ctx = self.context(item);
        ctx.set_variable_resolver(&data);
        let mut reasons = Vec::new();
        for rule in &self.rules {
            let held = eval_rule(rule, &ctx);
            if data.spent() {
                reasons.push(format!(
                    "{RULE_BUDGET_EXCEEDED}: rule '{}' did not finish within the evaluation budget ({} reads of the item, or its time); review, not a decision from an unfinished rule",
                    rule.name, data.budget.steps
                ));
                return Decision {
                    outcome: Outcome::Review {
                        route: Route::default_review().with_sla(&self.slas, None),
                    },
                    rule: RULE_BUDGET_EXCEEDED.into(),
                    reasons,
                    policy_version: version,
                    audit: None,
                };
            }
            match held {
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
                        (None, Some(p)) if self.multi => auto_set(p, item.thresholds),
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
                route: Route::default_review().with_sla(&self.slas, None),
            },
            rule: DEFAULT_QUEUE.into(),
            reasons,
            policy_version: version,
            audit: None,
        }
    }
}

/// A label's threshold in a multi-label project: its calibrated one when there is one,
/// else 0.5.
pub fn label_threshold(thresholds: Option<&std::collections::HashMap<String, f64>>, label: &str) -> f64 {
    thresholds.and_then(|t| t.get(label)).copied().unwrap_or(0.5)
}

/// A multi-label auto decision: the set of labels whose score is at or above the label's
/// threshold, canonically encoded (see [`crate::label`]).
fn auto_set(p: &Prediction, thresholds: Option<&std::collections::HashMap<String, f64>>) -> String {
    let set: Vec<&str> = p
        .scores
        .iter()
        .filter(|(l, s)| *s >= label_threshold(thresholds, l))
        .map(|(l, _)| l.as_str())
        .collect();
    serde_json::to_string(&set).expect("a list of strings serialises")
}

/// `min_margin`: the smallest distance of a label's score to its threshold (the
/// calibrated one, else 0.5) — how close the least clear label is to flipping.
fn min_margin(p: &Prediction, thresholds: Option<&std::collections::HashMap<String, f64>>) -> f64 {
    p.scores
        .iter()
        .map(|(l, s)| (s - label_threshold(thresholds, l)).abs())
        .fold(f64::INFINITY, f64::min)
}

/// `labels_above(t)`: the labels whose score is at least `t` (a number), in project order.
fn labels_above(scores: &[(String, f64)], args: &[Value]) -> Result<Value, cel::ExecutionError> {
    let t = match args {
        [Value::Float(t)] => *t,
        [Value::Int(t)] => *t as f64,
        [Value::UInt(t)] => *t as f64,
        _ => {
            return Err(cel::ExecutionError::function_error(
                "labels_above",
                "labels_above takes one number, the score threshold",
            ));
        }
    };
    Ok(scores
        .iter()
        .filter(|(_, s)| *s >= t)
        .map(|(l, _)| l.clone())
        .collect::<Vec<String>>()
        .into())
}

#[derive(Debug, thiserror::Error)]
pub(super) enum RuleError {
    #[error("{0}")]
    Execution(cel::ExecutionError),
    #[error("the condition must be true or false, got {0}")]
    NotBool(String),
}

pub(super) fn eval_rule(rule: &Rule, ctx: &Context<'_, '_>) -> Result<bool, RuleError> {
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
    use serde_json::json;

    use super::super::fixtures::{example, labels, pred};
    use super::*;

    fn multi_labels() -> crate::LabelSet {
        crate::LabelSet::parse(&["hate".into(), "spam".into(), "violence".into()])
            .unwrap()
            .with_mode(crate::LabelMode::Multi)
    }

    fn multi_pred(hate: f64, spam: f64, violence: f64) -> Prediction {
        Prediction {
            model: "m".into(),
            version: None,
            scores: vec![
                ("hate".into(), hate),
                ("spam".into(), spam),
                ("violence".into(), violence),
            ],
            novelty: None,
        }
    }

    fn multi_decide(
        policy: &Policy,
        p: Prediction,
        thresholds: Option<&std::collections::HashMap<String, f64>>,
    ) -> Decision {
        let (payload, attributes) = (json!({}), json!({}));
        policy.decide(
            &ItemView {
                payload: &payload,
                attributes: &attributes,
                prediction: Some(&p),
                thresholds,
            },
            1,
            0.99,
        )
    }

    #[test]
    fn multi_label_rules_read_labels_above_max_score_and_min_margin() {
        let policy = Policy::from_json(
            &json!({"rules": [
                {"name": "two", "when": "size(labels_above(0.5)) >= 2", "action": "review", "queue": "multi", "overlap": 2},
                {"name": "violent", "when": "'violence' in labels_above(0.7) && scores.violence < 0.9", "action": "review", "queue": "violence"},
                {"name": "clear", "when": "min_margin >= 0.4", "action": "auto"},
                {"name": "quiet", "when": "max_score < 0.2", "action": "auto"}]}),
            &multi_labels(),
        )
        .unwrap();
        let rule = |p| multi_decide(&policy, p, None).rule;
        assert_eq!(
            rule(multi_pred(0.9, 0.8, 0.1)),
            "two",
            "independent scores, two above 0.5"
        );
        assert_eq!(rule(multi_pred(0.05, 0.05, 0.75)), "violent");
        // Every score at least 0.4 from 0.5: auto, the set of labels at or above 0.5.
        let d = multi_decide(&policy, multi_pred(0.95, 0.05, 0.02), None);
        assert_eq!(
            (d.rule.as_str(), &d.outcome),
            (
                "clear",
                &Outcome::Auto {
                    label: r#"["hate"]"#.into()
                }
            )
        );
        // Nothing scores: auto with the empty set (0.35 from 0.5 is not clear).
        let d = multi_decide(&policy, multi_pred(0.15, 0.1, 0.12), None);
        assert_eq!(
            (d.rule.as_str(), &d.outcome),
            ("quiet", &Outcome::Auto { label: "[]".into() })
        );
        // With a calibrated threshold of 0.97 for hate, 0.95 is 0.02 from flipping.
        let t = std::collections::HashMap::from([("hate".to_string(), 0.97)]);
        assert_eq!(
            multi_decide(&policy, multi_pred(0.95, 0.05, 0.02), Some(&t)).rule,
            "default"
        );
    }

    #[test]
    fn per_label_thresholds_decide_the_auto_set() {
        let policy = Policy::from_json(
            &json!({"rules": [{"name": "all", "when": "true", "action": "auto"}]}),
            &multi_labels(),
        )
        .unwrap();
        // hate 0.92 clears its 0.9, spam 0.6 misses its 0.7, violence 0.55 clears the default 0.5.
        let t = std::collections::HashMap::from([("hate".to_string(), 0.9), ("spam".to_string(), 0.7)]);
        assert_eq!(
            multi_decide(&policy, multi_pred(0.92, 0.6, 0.55), Some(&t)).outcome,
            Outcome::Auto {
                label: r#"["hate","violence"]"#.into()
            }
        );
        assert_eq!(
            multi_decide(&policy, multi_pred(0.92, 0.6, 0.55), None).outcome,
            Outcome::Auto {
                label: r#"["hate","spam","violence"]"#.into()
            }
        );
    }

    #[test]
    fn single_and_multi_label_variables_are_kept_apart() {
        let err = |labels: &crate::LabelSet, rule: serde_json::Value| {
            Policy::from_json(&json!({"rules": [rule]}), labels).unwrap_err()
        };
        let e = err(
            &multi_labels(),
            json!({"name": "c", "when": "confidence >= 0.9", "action": "auto"}),
        );
        assert_eq!(e.field, "rules[0].when");
        assert!(
            e.message.contains("'confidence'") && e.message.contains("max_score"),
            "{}",
            e.message
        );
        let e = err(
            &multi_labels(),
            json!({"name": "m", "when": "margin > 0.1", "action": "auto"}),
        );
        assert_eq!(e.field, "rules[0].when");
        let e = err(
            &labels(),
            json!({"name": "a", "when": "size(labels_above(0.5)) > 0", "action": "auto"}),
        );
        assert_eq!(e.field, "rules[0].when");
        assert!(e.message.contains("multi-label"), "{}", e.message);
        let e = err(
            &labels(),
            json!({"name": "a", "when": "max_score > 0.5", "action": "auto"}),
        );
        assert_eq!(e.field, "rules[0].when");
        // An auto rule's fixed label has no meaning when the answer is a set.
        let e = err(
            &multi_labels(),
            json!({"name": "a", "when": "true", "action": "auto", "label": "hate"}),
        );
        assert_eq!(e.field, "rules[0].label");
        // labels_above takes a number.
        let e = err(
            &multi_labels(),
            json!({"name": "a", "when": "size(labels_above('x')) > 0", "action": "auto"}),
        );
        assert_eq!(e.field, "rules[0].when");
        // The SLA's auto action (the top label) is refused too.
        let e = Policy::from_json(
            &json!({"rules": [], "sla_seconds": {"default": 60}, "sla_action": {"default": "auto"}}),
            &multi_labels(),
        )
        .unwrap_err();
        assert_eq!(e.field, "sla_action.default");
    }

    #[test]
    fn decisions_read_back_as_written() {
        let route = |queue: &str| Route {
            queue: queue.into(),
            tier: 2,
            priority: -3,
            overlap: 3,
            ..Route::default_review()
        };
        let auto = Decision {
            outcome: Outcome::Auto { label: "spam".into() },
            rule: "confident".into(),
            reasons: vec!["p(spam) = 0.99".into()],
            policy_version: 4,
            audit: Some(route("audit")),
        };
        let review = Decision {
            outcome: Outcome::Review {
                route: route("experts"),
            },
            rule: "default".into(),
            reasons: vec![],
            policy_version: 1,
            audit: None,
        };
        for d in [auto, review] {
            let text = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<Decision>(&text).unwrap(), d, "{text}");
        }
        // The stored shape, as earlier versions wrote it.
        let stored = json!({"outcome": "review", "route": {"queue": "q", "tier": 1, "priority": 0,
            "overlap": 1}, "rule": "r", "reasons": ["x"], "policy_version": 2});
        let d: Decision = serde_json::from_value(stored).unwrap();
        assert_eq!(
            d.outcome,
            Outcome::Review {
                route: Route {
                    queue: "q".into(),
                    ..Route::default_review()
                }
            }
        );
        for bad in [
            json!({"outcome": "auto", "rule": "r", "reasons": [], "policy_version": 1}),
            json!({"outcome": "review", "label": "x", "rule": "r", "reasons": [], "policy_version": 1}),
            json!({"outcome": "maybe", "label": "x", "rule": "r", "reasons": [], "policy_version": 1}),
        ] {
            assert!(serde_json::from_value::<Decision>(bad.clone()).is_err(), "{bad}");
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
                        ..Route::default_review()
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
                        ..Route::default_review()
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

    /// A rule the static cost admits (one comprehension over a payload list) that is
    /// quadratic at run time (`in` scans the list): it runs out of its budget and the item
    /// goes to review naming the rule, never auto.
    #[test]
    fn a_rule_over_its_budget_fails_closed() {
        let p = Policy::from_json(
            &json!({"rules": [
                {"name": "cheap", "when": "payload.xs.size() == 0", "action": "review", "queue": "q"},
                {"name": "quadratic", "when": "payload.xs.all(x, x in payload.xs)", "action": "auto", "label": "ham"},
                {"name": "after", "when": "true", "action": "auto", "label": "spam"}]}),
            &labels(),
        )
        .unwrap();
        let xs: Vec<i64> = (0..2_000).collect();
        let payload = json!({ "xs": xs });
        let view = ItemView {
            payload: &payload,
            attributes: &json!({}),
            prediction: Some(&pred(0.99)),
            thresholds: None,
        };
        // Within a budget large enough, the rule finishes and decides.
        let d = p.decide_within(
            &view,
            1,
            0.9,
            Budget {
                steps: 10_000,
                expired: &|| false,
            },
        );
        assert_eq!(d.rule, "quadratic");
        assert_eq!(d.outcome, Outcome::Auto { label: "ham".into() });
        // Out of steps: review, naming the rule.
        let d = p.decide_within(
            &view,
            1,
            0.9,
            Budget {
                steps: 500,
                expired: &|| false,
            },
        );
        assert_eq!(d.rule, RULE_BUDGET_EXCEEDED);
        assert!(matches!(d.outcome, Outcome::Review { .. }), "{d:?}");
        assert!(
            d.reasons
                .last()
                .unwrap()
                .starts_with("rule_budget_exceeded: rule 'quadratic'"),
            "{:?}",
            d.reasons
        );
        // Out of time (the caller's deadline, asked before each read): the same.
        let reads = AtomicU64::new(0);
        let expired = || reads.fetch_add(1, Ordering::Relaxed) >= 100;
        let d = p.decide_within(
            &view,
            1,
            0.9,
            Budget {
                steps: DEFAULT_STEPS,
                expired: &expired,
            },
        );
        assert_eq!(d.rule, RULE_BUDGET_EXCEEDED);
        assert!(d.reasons.last().unwrap().contains("'quadratic'"), "{:?}", d.reasons);
        // A deadline already past stops a rule that reads no item data too.
        let d = p.decide_within(
            &view,
            1,
            0.9,
            Budget {
                steps: DEFAULT_STEPS,
                expired: &|| true,
            },
        );
        assert_eq!(d.rule, RULE_BUDGET_EXCEEDED);
        assert!(d.reasons.last().unwrap().contains("'cheap'"), "{:?}", d.reasons);
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
