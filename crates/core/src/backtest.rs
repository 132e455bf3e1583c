//! Back-testing a policy: "had this been the policy, what would the automation rate, the
//! error of auto decisions and the human load have been?" — over items whose right label
//! a human has since given.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::Prediction;
use crate::policy::{ItemView, Outcome, Policy};
use crate::quality::wilson95;

/// An item as it was decided, with the label a human later gave it.
#[derive(Debug, Clone)]
pub struct HistoryItem {
    pub payload: serde_json::Value,
    pub attributes: serde_json::Value,
    pub prediction: Option<Prediction>,
    pub human_label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueLoad {
    pub items: u64,
    /// Items × their route's overlap: the answers the queue would have needed.
    pub human_answers: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    pub items: u64,
    pub auto: u64,
    pub review: u64,
    pub automation_rate: Option<f64>,
    /// Auto decisions whose label differs from the human label.
    pub auto_errors: u64,
    pub auto_error_rate: Option<f64>,
    /// 95% Wilson interval of the auto error rate.
    pub auto_error_interval: Option<(f64, f64)>,
    pub load: BTreeMap<String, QueueLoad>,
    /// How many items each rule decided.
    pub rules: BTreeMap<String, u64>,
}

/// Replays `policy` (with `thresholds` as the rules' `thresholds`) over `history`. No audit
/// is sampled and active learning is not replayed: the figures are those of the rules.
pub fn backtest(policy: &Policy, thresholds: &HashMap<String, f64>, history: &[HistoryItem]) -> BacktestReport {
    let mut r = BacktestReport {
        items: history.len() as u64,
        auto: 0,
        review: 0,
        automation_rate: None,
        auto_errors: 0,
        auto_error_rate: None,
        auto_error_interval: None,
        load: BTreeMap::new(),
        rules: BTreeMap::new(),
    };
    for h in history {
        let view = ItemView {
            payload: &h.payload,
            attributes: &h.attributes,
            prediction: h.prediction.as_ref(),
            thresholds: Some(thresholds),
        };
        let d = policy.decide(&view, 0, 1.0);
        *r.rules.entry(d.rule.clone()).or_default() += 1;
        match &d.outcome {
            Outcome::Auto { label } => {
                r.auto += 1;
                r.auto_errors += u64::from(*label != h.human_label);
            }
            Outcome::Review { route } => {
                r.review += 1;
                let q = r.load.entry(route.queue.clone()).or_insert(QueueLoad {
                    items: 0,
                    human_answers: 0,
                });
                q.items += 1;
                q.human_answers += u64::from(route.overlap);
            }
        }
    }
    if r.items > 0 {
        r.automation_rate = Some(r.auto as f64 / r.items as f64);
    }
    if r.auto > 0 {
        r.auto_error_rate = Some(r.auto_errors as f64 / r.auto as f64);
        r.auto_error_interval = wilson95(r.auto_errors, r.auto).map(|i| (i.lower, i.upper));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LabelSet;
    use serde_json::json;

    fn item(spam: f64, human: &str) -> HistoryItem {
        HistoryItem {
            payload: json!({"text": "x"}),
            attributes: json!({}),
            prediction: Some(Prediction {
                model: "m".into(),
                version: None,
                scores: vec![("ham".into(), 1.0 - spam), ("spam".into(), spam)],
                novelty: None,
            }),
            human_label: human.into(),
        }
    }

    #[test]
    fn a_hand_checkable_history() {
        let labels = LabelSet::parse(&["ham".into(), "spam".into()]).unwrap();
        let policy = Policy::from_json(
            &json!({"rules": [
                {"name": "sure", "when": "confidence >= 0.9", "action": "auto"},
                {"name": "rest", "when": "true", "action": "review", "queue": "q", "overlap": 2}]}),
            &labels,
        )
        .unwrap();
        // Confident: 0.95 spam (right), 0.97 spam (wrong: human says ham), 0.02 spam = 0.98 ham (right).
        // Unsure: 0.5 and 0.6 go to review with overlap 2.
        let history = vec![
            item(0.95, "spam"),
            item(0.97, "ham"),
            item(0.02, "ham"),
            item(0.5, "spam"),
            item(0.6, "ham"),
        ];
        let r = backtest(&policy, &HashMap::new(), &history);
        assert_eq!((r.items, r.auto, r.review, r.auto_errors), (5, 3, 2, 1));
        assert_eq!(r.automation_rate, Some(0.6));
        assert!((r.auto_error_rate.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            r.load["q"],
            QueueLoad {
                items: 2,
                human_answers: 4
            }
        );
        assert_eq!(r.rules["sure"], 3);
        let (lo, hi) = r.auto_error_interval.unwrap();
        assert!(lo < 1.0 / 3.0 && hi > 1.0 / 3.0);
        // Thresholds reach the rules.
        let policy = Policy::from_json(
            &json!({"rules": [{"name": "t", "when": "label in thresholds && confidence >= thresholds[label]", "action": "auto"}]}),
            &labels,
        )
        .unwrap();
        let t: HashMap<String, f64> = [("ham".to_string(), 0.97)].into();
        let r = backtest(&policy, &t, &history);
        assert_eq!(r.auto, 1, "only the 0.98 ham clears its threshold; spam has none");
    }
}
