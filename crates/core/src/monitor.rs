//! Monitors, the "detect" part, computed from figures the server reads: model–human
//! disagreement, the error of auto decisions from audits, drift of the model's scores,
//! backlog, the oldest open task, and the share of decisions made by distress rules. Each has a level in the policy ([`MonitorSpec`]); a
//! monitor above its level is firing. Pure: the caller loads the inputs and writes the
//! `monitor` events when one starts or stops firing.

use serde::Serialize;

use crate::calibrate::psi;
use crate::policy::MonitorSpec;

/// One monitor's value against its level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Monitor {
    pub name: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub firing: bool,
    /// What the value was computed from (items, audits, queue).
    pub basis: String,
}

/// What the monitors are computed from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Recent human-verified items (at most the spec's window) and how many of them the
    /// model's top label got wrong.
    pub verified: usize,
    pub disagreements: usize,
    pub audits_confirmed: i64,
    pub audits_corrected: i64,
    /// The model's top score on the project's most recent items, newest first (up to two
    /// windows).
    pub recent_top_scores: Vec<f64>,
    /// Per queue: open tasks and the age of the oldest, in milliseconds.
    pub queues: Vec<(i64, i64)>,
    /// The rule of each of the project's most recent decisions (up to a window), newest
    /// first.
    pub recent_rules: Vec<String>,
}

/// The spec a project without `monitors` in its policy is shown against: every monitor
/// computed, none with a level.
pub fn unset() -> MonitorSpec {
    MonitorSpec {
        disagreement_rate: None,
        audit_error_rate: None,
        psi: None,
        backlog: None,
        oldest_age_s: None,
        distress_rate: None,
        distress_rules: vec!["distress".into()],
        window: 500,
    }
}

/// Every monitor of `spec` over `inputs`, in a fixed order.
pub fn evaluate(spec: &MonitorSpec, inputs: &Inputs) -> Vec<Monitor> {
    let window = spec.window as usize;
    let audited = inputs.audits_confirmed + inputs.audits_corrected;
    let top = &inputs.recent_top_scores;
    let drift = (top.len() >= 2 * window).then(|| psi(&top[window..], &top[..window], 10));
    let backlog = inputs.queues.iter().map(|q| q.0).max();
    let oldest = inputs
        .queues
        .iter()
        .map(|q| q.1 as f64 / 1000.0)
        .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
    let make = |name: &str, value: Option<f64>, threshold: Option<f64>, basis: String| Monitor {
        name: name.into(),
        firing: matches!((value, threshold), (Some(v), Some(t)) if v > t),
        value,
        threshold,
        basis,
    };
    vec![
        make(
            "disagreement_rate",
            (inputs.verified > 0).then(|| inputs.disagreements as f64 / inputs.verified as f64),
            spec.disagreement_rate,
            format!("{} recent human-verified items", inputs.verified),
        ),
        make(
            "audit_error_rate",
            (audited > 0).then(|| inputs.audits_corrected as f64 / audited as f64),
            spec.audit_error_rate,
            format!("{audited} audits"),
        ),
        make(
            "psi",
            drift,
            spec.psi,
            format!("top score of the last {window} items vs the {window} before"),
        ),
        make(
            "backlog",
            backlog.map(|b| b as f64),
            spec.backlog.map(|b| b as f64),
            "open tasks in the fullest queue".into(),
        ),
        make(
            "oldest_age_s",
            oldest,
            spec.oldest_age_s,
            "oldest open task in any queue".into(),
        ),
        make(
            "distress_rate",
            distress_rate(spec, &inputs.recent_rules),
            spec.distress_rate,
            format!(
                "{} recent decisions, rules {}",
                inputs.recent_rules.len().min(window),
                spec.distress_rules.join(", ")
            ),
        ),
    ]
}

/// The share of the window's most recent decisions made by one of the distress rules.
fn distress_rate(spec: &MonitorSpec, recent_rules: &[String]) -> Option<f64> {
    let recent = &recent_rules[..recent_rules.len().min(spec.window as usize)];
    let hits = recent.iter().filter(|r| spec.distress_rules.contains(r)).count();
    (!recent.is_empty()).then(|| hits as f64 / recent.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name<'a>(ms: &'a [Monitor], name: &str) -> &'a Monitor {
        ms.iter().find(|m| m.name == name).unwrap()
    }

    #[test]
    fn a_monitor_fires_above_its_level_and_never_without_one() {
        let spec = MonitorSpec {
            disagreement_rate: Some(0.2),
            audit_error_rate: Some(0.05),
            backlog: Some(10),
            window: 2,
            ..unset()
        };
        let inputs = Inputs {
            verified: 10,
            disagreements: 3,
            audits_confirmed: 19,
            audits_corrected: 1,
            recent_top_scores: vec![0.9, 0.8],
            queues: vec![(4, 1_000), (12, 90_000)],
            recent_rules: Vec::new(),
        };
        let ms = evaluate(&spec, &inputs);
        let d = by_name(&ms, "disagreement_rate");
        assert_eq!((d.value, d.firing), (Some(0.3), true));
        let a = by_name(&ms, "audit_error_rate");
        assert_eq!((a.value, a.firing), (Some(0.05), false), "at the level is not above it");
        let b = by_name(&ms, "backlog");
        assert_eq!((b.value, b.firing), (Some(12.0), true));
        let o = by_name(&ms, "oldest_age_s");
        assert_eq!((o.value, o.threshold, o.firing), (Some(90.0), None, false));
        let p = by_name(&ms, "psi");
        assert_eq!(p.value, None, "drift needs two full windows");
    }

    #[test]
    fn the_distress_rate_counts_the_window_s_distress_decisions() {
        let spec = MonitorSpec {
            distress_rate: Some(0.2),
            distress_rules: vec!["distress".into(), "vitals_red".into()],
            window: 10,
            ..unset()
        };
        let mut rules: Vec<String> = ["distress", "calibrated", "vitals_red", "review"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Older decisions past the window do not count.
        rules.extend(std::iter::repeat_n("distress".to_string(), 20));
        let rules: Vec<String> = rules.into_iter().take(10).collect::<Vec<_>>();
        let inputs = Inputs {
            recent_rules: rules,
            ..Inputs::default()
        };
        let d = evaluate(&spec, &inputs)
            .into_iter()
            .find(|m| m.name == "distress_rate")
            .unwrap();
        // 2 of the first 4 and 6 more distress: 8 of 10.
        assert_eq!((d.value, d.firing), (Some(0.8), true));
        let calm = Inputs {
            recent_rules: vec!["review".into(); 9]
                .into_iter()
                .chain(["distress".into()])
                .collect(),
            ..Inputs::default()
        };
        let d = evaluate(&spec, &calm)
            .into_iter()
            .find(|m| m.name == "distress_rate")
            .unwrap();
        assert_eq!((d.value, d.firing), (Some(0.1), false));
    }

    #[test]
    fn nothing_to_read_gives_no_values() {
        let ms = evaluate(&unset(), &Inputs::default());
        assert_eq!(ms.len(), 6);
        assert!(ms.iter().all(|m| m.value.is_none() && !m.firing));
    }
}
