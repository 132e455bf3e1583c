//! From spec to [`Policy`]: every field checked (an error names the field, `rules[1].when`,
//! and says what is wrong), every rule's `when` compiled to a CEL program once, and a dry
//! run on a sample item so that type errors surface when the policy is stored. Also the
//! compiled policy's read side: its settings and the queues work can reach.
//! Deciding an item is `decide`'s.

use std::sync::Arc;

use cel::{Env, Program};

use super::decide::{ItemView, Route, RuleError, eval_rule};
use super::spec::*;
use crate::{LabelSet, Prediction, ValidationError};

/// Refuses a multi-label project's rule that reads a single-label variable (naming what to
/// read instead), and a single-label project's rule that reads a multi-label one.
fn check_mode_variables(program: &Program, multi: bool) -> Result<(), String> {
    let refs = program.references();
    let reads = |v: &str| refs.has_variable(v) || refs.has_function(v);
    if multi {
        if let Some(v) = SINGLE_ONLY.iter().find(|v| reads(v)) {
            return Err(format!(
                "'{v}' is a single-label variable; in a multi-label project rules read scores, \
                 labels_above(t), max_score and min_margin instead"
            ));
        }
    } else if let Some(v) = MULTI_ONLY.iter().find(|v| reads(v)) {
        return Err(format!(
            "'{v}' is read only in a multi-label project (label_mode 'multi'); here rules read label, \
             confidence, margin and entropy"
        ));
    }
    Ok(())
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

/// A rule, compiled.
#[derive(Debug)]
pub(super) struct Rule {
    pub(super) name: String,
    pub(super) program: Program,
    pub(super) action: RuleAction,
}

#[derive(Debug)]
pub(super) enum RuleAction {
    Auto { label: Option<String> },
    Review(Route),
}

/// A checked, compiled policy. Cheap to share (`Arc`), evaluated for every item.
pub struct Policy {
    pub(super) spec: PolicySpec,
    pub(super) rules: Vec<Rule>,
    pub(super) audit_route: Route,
    /// The SLA settings per queue (`sla_seconds`, `sla_action`, `warn_before_seconds`).
    pub(super) slas: Arc<crate::sla::Slas>,
    pub(super) env: Arc<Env>,
    /// The project is multi-label: auto decides the set of labels at or above their
    /// thresholds, and rules read `max_score`, `min_margin`, `labels_above(t)`.
    pub(super) multi: bool,
    /// Some rule calls `labels_above` (the function is registered per item only then).
    pub(super) uses_labels_above: bool,
    /// The variables some rule refers to (bit `i`: `VARIABLES[i]`): only those are built
    /// for each item — converting the payload to CEL values was most of a decision's
    /// policy time when no rule looked at it.
    pub(super) used: u64,
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
        let spec: PolicySpec = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            ValidationError::new(field, format!("not a policy: {}", e.into_inner()))
        })?;
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
        let slas = Arc::new(crate::sla::Slas::from_spec(&spec));
        let audit_route = match &spec.audit {
            None => Route {
                queue: AUDIT_QUEUE.into(),
                tier: 1,
                priority: 0,
                overlap: 1,
                sla_seconds: None,
                warn_before_seconds: None,
            },
            Some(a) => Route {
                queue: parse_queue(&a.queue).map_err(|m| ValidationError::new("audit.queue", m))?,
                tier: check_tier(a.tier).map_err(|m| ValidationError::new("audit.tier", m))?,
                priority: 0,
                overlap: check_overlap(a.overlap).map_err(|m| ValidationError::new("audit.overlap", m))?,
                sla_seconds: None,
                warn_before_seconds: None,
            },
        }
        .with_sla(&slas, None);
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
        if let Some(m) = &spec.monitors {
            if !(10..=100_000).contains(&m.window) {
                return Err(ValidationError::new(
                    "monitors.window",
                    "window is between 10 and 100000 items",
                ));
            }
            if let Some(r) = m.distress_rate
                && (!r.is_finite() || !(0.0..=1.0).contains(&r))
            {
                return Err(ValidationError::new(
                    "monitors.distress_rate",
                    "distress_rate is a fraction in [0, 1]",
                ));
            }
            // The distress rules are named only when the monitor has a level: its default
            // list names a rule most policies do not have.
            if m.distress_rate.is_some() {
                for (i, name) in m.distress_rules.iter().enumerate() {
                    if !spec.rules.iter().any(|r| r.name == *name) {
                        return Err(ValidationError::new(
                            format!("monitors.distress_rules[{i}]"),
                            format!("'{name}' is not the name of a rule of this policy"),
                        ));
                    }
                }
            }
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
            check_workbench_texts(w)?;
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
        check_fatigue(spec.fatigue.as_ref(), spec.pacing.as_ref())?;
        for (q, action) in &spec.sla_action {
            parse_queue(q).map_err(|m| ValidationError::new(format!("sla_action.{q}"), m))?;
            if labels.is_multi() && *action == crate::sla::SlaAction::Auto {
                return Err(ValidationError::new(
                    format!("sla_action.{q}"),
                    "sla_action 'auto' applies the model's top label; a multi-label project's SLA \
                     escalates or does nothing",
                ));
            }
        }
        for q in spec.warn_before_seconds.keys() {
            parse_queue(q).map_err(|m| ValidationError::new(format!("warn_before_seconds.{q}"), m))?;
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
            check_mode_variables(&program, labels.is_multi())
                .map_err(|m| ValidationError::new(at("when"), format!("rule '{name}': {m}")))?;
            let action = match r.action {
                Action::Auto => {
                    for (f, set) in [
                        ("queue", r.queue.is_some()),
                        ("tier", r.tier.is_some()),
                        ("priority", r.priority.is_some()),
                        ("overlap", r.overlap.is_some()),
                        ("sla_seconds", r.sla_seconds.is_some()),
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
                        Some(_) if labels.is_multi() => {
                            return Err(ValidationError::new(
                                at("label"),
                                format!(
                                    "rule '{name}': an auto rule of a multi-label project has no label: it decides \
                                     the labels whose scores are at or above their thresholds"
                                ),
                            ));
                        }
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
                    if r.sla_seconds == Some(0) {
                        return Err(ValidationError::new(
                            at("sla_seconds"),
                            format!("rule '{name}': an SLA is at least 1 second"),
                        ));
                    }
                    RuleAction::Review(
                        Route {
                            queue,
                            tier,
                            priority,
                            overlap,
                            sla_seconds: None,
                            warn_before_seconds: None,
                        }
                        .with_sla(&slas, r.sla_seconds),
                    )
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
        let uses_labels_above = rules
            .iter()
            .any(|r| r.program.references().has_function("labels_above"));
        let policy = Self {
            spec,
            rules,
            audit_route,
            slas,
            env,
            multi: labels.is_multi(),
            uses_labels_above,
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
            novelty: Some(0.5),
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
        self.spec.monitors.clone()
    }

    pub fn fatigue(&self) -> Option<FatigueSpec> {
        self.spec.fatigue
    }

    pub fn pacing(&self) -> Option<PacingSpec> {
        self.spec.pacing
    }

    /// The gap that ends a work session: the fatigue spec's, else its default (900 s).
    pub fn session_gap_ms(&self) -> i64 {
        i64::from(self.spec.fatigue.unwrap_or_default().session_gap_seconds) * 1000
    }

    /// The SLA settings per queue.
    pub fn slas(&self) -> &Arc<crate::sla::Slas> {
        &self.slas
    }

    /// The queues some route gives a deadline: the policy's `sla_seconds` and the queues
    /// of rules with their own. Sorted.
    pub fn sla_queues(&self) -> Vec<String> {
        let mut qs: Vec<String> = self.slas.seconds.keys().cloned().collect();
        for r in &self.rules {
            if let RuleAction::Review(route) = &r.action
                && route.sla_seconds.is_some()
            {
                qs.push(route.queue.clone());
            }
        }
        qs.sort();
        qs.dedup();
        qs
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
    let cost = super::cost::cost(program.expression());
    if cost > super::cost::MAX_RULE_COST {
        return Err(format!(
            "is too costly to run on every item: about {cost:.0} steps, at most {:.0} (nested comprehensions multiply; a list not written out counts as {:.0} elements)",
            super::cost::MAX_RULE_COST,
            super::cost::UNKNOWN_RANGE
        ));
    }
    for v in program.references().variables() {
        // Names bound by a comprehension (`tags.exists(t, …)`) are references too.
        let bound = when.contains(&format!("({v},")) || when.contains(&format!("({v} ,"));
        if !VARIABLES.contains(&v) && !bound {
            return Err(format!("unknown variable '{v}' (known: {})", VARIABLES.join(", ")));
        }
    }
    Ok(program)
}

/// Checks the workbench's undo window, guidelines and highlighted words.
fn check_workbench_texts(w: &WorkbenchSpec) -> Result<(), ValidationError> {
    if w.undo_seconds.is_some_and(|s| s > 86_400) {
        return Err(ValidationError::new(
            "workbench.undo_seconds",
            "the undo window is at most 86400 seconds (a day)",
        ));
    }
    if w.guidelines.as_ref().is_some_and(|g| g.len() > 100_000) {
        return Err(ValidationError::new(
            "workbench.guidelines",
            "guidelines are at most 100,000 bytes",
        ));
    }
    if w.highlight.len() > 200 {
        return Err(ValidationError::new(
            "workbench.highlight",
            "at most 200 words or phrases are highlighted",
        ));
    }
    for (i, h) in w.highlight.iter().enumerate() {
        if h.trim().is_empty() || h.chars().count() > 100 {
            return Err(ValidationError::new(
                format!("workbench.highlight[{i}]"),
                "a highlighted word or phrase has 1 to 100 characters",
            ));
        }
    }
    Ok(())
}

/// Checks the fatigue monitor's and pacing's settings, naming the field at fault.
fn check_fatigue(fatigue: Option<&FatigueSpec>, pacing: Option<&PacingSpec>) -> Result<(), ValidationError> {
    if let Some(f) = fatigue {
        if !(60..=86_400).contains(&f.session_gap_seconds) {
            return Err(ValidationError::new(
                "fatigue.session_gap_seconds",
                "session_gap_seconds is between 60 and 86400",
            ));
        }
        if !(5..=1000).contains(&f.window) {
            return Err(ValidationError::new(
                "fatigue.window",
                "window is between 5 and 1000 answers",
            ));
        }
        if !(f.alpha > 0.0 && f.alpha < 0.5) {
            return Err(ValidationError::new("fatigue.alpha", "alpha is in (0, 0.5)"));
        }
        if !(f.speedup > 0.0 && f.speedup < 1.0) {
            return Err(ValidationError::new(
                "fatigue.speedup",
                "speedup is a fraction in (0, 1)",
            ));
        }
        if !(1..=1440).contains(&f.break_minutes) {
            return Err(ValidationError::new(
                "fatigue.break_minutes",
                "break_minutes is between 1 and 1440",
            ));
        }
    }
    if let Some(p) = pacing {
        if let Some(s) = p.min_seconds_per_task
            && (!s.is_finite() || !(0.0..=3600.0).contains(&s))
        {
            return Err(ValidationError::new(
                "pacing.min_seconds_per_task",
                "min_seconds_per_task is between 0 and 3600",
            ));
        }
        if let Some(n) = p.max_tasks_per_session
            && !(1..=100_000).contains(&n)
        {
            return Err(ValidationError::new(
                "pacing.max_tasks_per_session",
                "max_tasks_per_session is between 1 and 100000",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::ItemView;
    use super::super::fixtures::{example, labels, pred};
    use super::*;

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
            (json!({"workbench": {"undo_seconds": 86_401}}), "workbench.undo_seconds"),
            (
                json!({"workbench": {"highlight": ["ok", ""]}}),
                "workbench.highlight[1]",
            ),
            (json!({"sla_seconds": {"Bad Queue": 10}}), "sla_seconds.Bad Queue"),
            (json!({"sla_seconds": {"default": 0}}), "sla_seconds.default"),
            (json!({"sla_action": {"Bad Queue": "none"}}), "sla_action.Bad Queue"),
            (json!({"sla_action": {"default": "later"}}), "sla_action.default"),
            (
                json!({"warn_before_seconds": {"Bad Queue": 1}}),
                "warn_before_seconds.Bad Queue",
            ),
        ] {
            assert_eq!(base(bad.clone()).unwrap_err().field, field, "{bad}");
        }
    }

    #[test]
    fn routes_carry_their_deadline_a_rules_own_first() {
        let p = Policy::from_json(
            &json!({"rules": [
                {"name": "fast", "when": "scores['spam'] > 0.9", "action": "review", "queue": "q", "sla_seconds": 60},
                {"name": "slow", "when": "scores['spam'] > 0.6", "action": "review", "queue": "q"},
                {"name": "other", "when": "scores['spam'] > 0.3", "action": "review", "queue": "r"}],
              "audit_rate": 1.0,
              "sla_seconds": {"q": 600, "default": 100, "audit": 50},
              "warn_before_seconds": {"q": 30}}),
            &labels(),
        )
        .unwrap();
        let route = |spam: f64| match p
            .decide(
                &ItemView {
                    payload: &json!({}),
                    attributes: &json!({}),
                    prediction: Some(&pred(spam)),
                    thresholds: None,
                },
                1,
                0.0,
            )
            .outcome
        {
            super::super::Outcome::Review { route } => (route.sla_seconds, route.warn_before_seconds),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            route(0.95),
            (Some(60), Some(30)),
            "the rule's SLA wins; the queue's warning"
        );
        assert_eq!(route(0.7), (Some(600), Some(30)));
        assert_eq!(route(0.4), (None, None), "queue r has no SLA");
        assert_eq!(p.sla_queues(), vec!["audit", "default", "q"]);
        let none = p.decide(
            &ItemView {
                payload: &json!({}),
                attributes: &json!({}),
                prediction: None,
                thresholds: None,
            },
            1,
            0.0,
        );
        match none.outcome {
            super::super::Outcome::Review { route } => {
                assert_eq!(route.sla_seconds, Some(100), "no rule matched: default's SLA")
            }
            other => panic!("{other:?}"),
        }
        let auto = Policy::from_json(
            &json!({"rules": [{"name": "a", "when": "true", "action": "auto", "label": "ham"}],
                    "audit_rate": 1.0, "sla_seconds": {"audit": 50}}),
            &labels(),
        )
        .unwrap()
        .decide(
            &ItemView {
                payload: &json!({}),
                attributes: &json!({}),
                prediction: None,
                thresholds: None,
            },
            1,
            0.0,
        );
        assert_eq!(
            auto.audit.unwrap().sla_seconds,
            Some(50),
            "an audit gets its queue's SLA"
        );
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
            (json!({"rules": [], "bogus": 1}), "bogus", "unknown field"),
            (
                json!({"rules": [], "lease_seconds": 1e12}),
                "lease_seconds",
                "expected u32",
            ),
            (
                json!({"rules": [{"name": "a", "when": "true", "action": "maybe"}]}),
                "rules[0].action",
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
}
