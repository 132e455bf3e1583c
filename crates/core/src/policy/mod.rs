//! Policy: the ordered rules that decide, for each item, `auto` or `review` (with a route).
//!
//! A policy arrives as JSON ([`PolicySpec`]), is checked and compiled once ([`Policy::compile`])
//! and is then evaluated for every item ([`Policy::decide`]). Conditions are CEL
//! expressions (the `cel` crate): not Turing-complete, so a rule cannot loop or reach out.
//! The first rule that holds decides; when none holds the item goes to review in queue
//! `default`, tier 1, with reason "no rule matched" — never silently auto. A rule whose
//! expression fails on an item (a missing attribute, say) does not hold for that item, and
//! the failure is one of the decision's reasons.
//!
//! The module is in three rooms: `spec` (what an admin writes: the serde types and the
//! limits of the language), `compile` (checking a spec and compiling its CEL once into a
//! [`Policy`]) and `decide` (a compiled policy applied to one item: [`Decision`]).

mod compile;
pub mod cost;
mod decide;
#[cfg(test)]
mod props;
mod spec;

pub use compile::{Policy, parse_origin, parse_queue};
pub use decide::{Budget, DEFAULT_STEPS, Decision, ItemView, Outcome, RULE_BUDGET_EXCEEDED, Route, label_threshold};
pub use spec::{
    AUDIT_QUEUE, Action, ActiveLearningSpec, AuditSpec, ConsensusMethod, ConsensusSpec, DEFAULT_QUEUE, FatigueSpec,
    MAX_OVERLAP, MAX_RULES, MAX_TIER, ModelSpec, MonitorSpec, OnFatigue, PacingSpec, PolicySpec, QualitySpec, Retrain,
    RuleSpec, ThresholdSpec, VARIABLES, WorkbenchSpec,
};

/// The policy and prediction the unit tests of `compile` and `decide` share.
#[cfg(test)]
mod fixtures {
    use serde_json::json;

    use super::Policy;
    use crate::{LabelSet, Prediction};

    pub(super) fn labels() -> LabelSet {
        LabelSet::parse(&["ham".into(), "spam".into()]).unwrap()
    }

    pub(super) fn example() -> Policy {
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

    pub(super) fn pred(spam: f64) -> Prediction {
        Prediction {
            model: "m".into(),
            version: None,
            scores: vec![("ham".into(), 1.0 - spam), ("spam".into(), spam)],
            novelty: None,
        }
    }
}
