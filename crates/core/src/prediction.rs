//! A model's prediction for one item: its scores per label, checked against the project's
//! labels, and the summary figures that policy rules read (top label, confidence, margin,
//! entropy; in a multi-label project, the labels at their thresholds and the smallest
//! margin to one).

use std::collections::{BTreeMap, HashMap};

use crate::{LabelSet, ValidationError};

/// A prediction as a client sends it, before it is checked.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrediction {
    pub model: String,
    #[serde(default)]
    pub version: Option<String>,
    pub scores: BTreeMap<String, f64>,
    /// How unlike the model's training data the item is, in [0, 1] (see
    /// [`crate::novelty`]); optional.
    #[serde(default)]
    pub novelty: Option<f64>,
}

/// A checked prediction: every score is in [0, 1] and every label of the project has one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prediction {
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Scores in the order of the project's labels.
    pub scores: Vec<(String, f64)>,
    /// How unlike the model's training data the item is, in [0, 1]: the model's own
    /// measure (the built-in model's is [`crate::novelty`]); none when it gave none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub novelty: Option<f64>,
}

/// A label's threshold in a multi-label project: its calibrated one in `thresholds` when
/// there is one, else 0.5.
pub fn label_threshold(thresholds: Option<&HashMap<String, f64>>, label: &str) -> f64 {
    thresholds.and_then(|t| t.get(label)).copied().unwrap_or(0.5)
}

impl Prediction {
    /// Checks `raw` against `labels`. Errors name the field below the prediction
    /// (`scores.spam`); the caller adds the prefix.
    pub fn parse(raw: RawPrediction, labels: &LabelSet) -> Result<Self, ValidationError> {
        let model = raw.model.trim();
        if model.is_empty() || model.len() > 200 {
            return Err(ValidationError::new("model", "model is a name of 1 to 200 characters"));
        }
        if let Some(v) = &raw.version
            && v.len() > 200
        {
            return Err(ValidationError::new("version", "version has at most 200 characters"));
        }
        for (name, p) in &raw.scores {
            if !labels.contains(name) {
                return Err(ValidationError::new(
                    format!("scores.{name}"),
                    format!(
                        "'{name}' is not a label of this project (labels: {})",
                        labels.names().join(", ")
                    ),
                ));
            }
            if !p.is_finite() || !(0.0..=1.0).contains(p) {
                return Err(ValidationError::new(
                    format!("scores.{name}"),
                    format!("a score is a probability in [0, 1], got {p}"),
                ));
            }
        }
        if let Some(n) = raw.novelty
            && (!n.is_finite() || !(0.0..=1.0).contains(&n))
        {
            return Err(ValidationError::new(
                "novelty",
                format!("novelty is a number in [0, 1], got {n}"),
            ));
        }
        let mut scores = Vec::with_capacity(labels.len());
        for l in labels.iter() {
            match raw.scores.get(l.as_str()) {
                Some(p) => scores.push((l.as_str().to_string(), *p)),
                None => {
                    return Err(ValidationError::new(
                        "scores",
                        format!("scores must cover every label of the project; '{l}' is missing"),
                    ));
                }
            }
        }
        Ok(Self {
            model: model.to_string(),
            version: raw.version,
            scores,
            novelty: raw.novelty,
        })
    }

    /// The label with the highest score (the first of the project's order on a tie) and
    /// that score.
    pub fn top(&self) -> (&str, f64) {
        let mut best = (self.scores[0].0.as_str(), self.scores[0].1);
        for (l, p) in &self.scores[1..] {
            if *p > best.1 {
                best = (l.as_str(), *p);
            }
        }
        best
    }

    /// Top score minus the second-highest score.
    pub fn margin(&self) -> f64 {
        let mut v: Vec<f64> = self.scores.iter().map(|(_, p)| *p).collect();
        v.sort_by(|a, b| b.total_cmp(a));
        v[0] - v.get(1).copied().unwrap_or(0.0)
    }

    /// The labels at or above their threshold, with their scores, in the project's order:
    /// a multi-label project's predicted set (see [`label_threshold`]).
    pub fn labels_at_threshold(&self, thresholds: Option<&HashMap<String, f64>>) -> Vec<(&str, f64)> {
        self.scores
            .iter()
            .filter(|(l, s)| *s >= label_threshold(thresholds, l))
            .map(|(l, s)| (l.as_str(), *s))
            .collect()
    }

    /// A multi-label project's `min_margin`: the smallest distance of a label's score to
    /// its threshold — how close the least clear label is to flipping.
    pub fn min_margin(&self, thresholds: Option<&HashMap<String, f64>>) -> f64 {
        self.scores
            .iter()
            .map(|(l, s)| (s - label_threshold(thresholds, l)).abs())
            .fold(f64::INFINITY, f64::min)
    }

    /// Shannon entropy (nats) of the scores, normalised to sum to one.
    pub fn entropy(&self) -> f64 {
        let total: f64 = self.scores.iter().map(|(_, p)| *p).sum();
        if total <= 0.0 {
            return 0.0;
        }
        -self
            .scores
            .iter()
            .map(|(_, p)| p / total)
            .filter(|q| *q > 0.0)
            .map(|q| q * q.ln())
            .sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> LabelSet {
        LabelSet::parse(&["ham".into(), "spam".into()]).unwrap()
    }

    fn raw(scores: &[(&str, f64)]) -> RawPrediction {
        RawPrediction {
            model: "m".into(),
            version: None,
            scores: scores.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            novelty: None,
        }
    }

    #[test]
    fn summary_figures() {
        let p = Prediction::parse(raw(&[("ham", 0.2), ("spam", 0.8)]), &labels()).unwrap();
        assert_eq!(p.top(), ("spam", 0.8));
        assert!((p.margin() - 0.6).abs() < 1e-12);
        let expect = -(0.2f64 * 0.2f64.ln() + 0.8 * 0.8f64.ln());
        assert!((p.entropy() - expect).abs() < 1e-12);
    }

    #[test]
    fn ties_go_to_the_first_label() {
        let p = Prediction::parse(raw(&[("ham", 0.5), ("spam", 0.5)]), &labels()).unwrap();
        assert_eq!(p.top().0, "ham");
    }

    #[test]
    fn bad_scores_are_named() {
        let l = labels();
        let cases: &[(&[(&str, f64)], &str)] = &[
            (&[("ham", 0.2), ("spam", 1.5)], "scores.spam"),
            (&[("ham", -0.1), ("spam", 0.5)], "scores.ham"),
            (&[("ham", 0.2)], "scores"),
            (&[("ham", 0.2), ("spam", 0.8), ("eggs", 0.1)], "scores.eggs"),
        ];
        for (s, field) in cases {
            assert_eq!(&Prediction::parse(raw(s), &l).unwrap_err().field, field);
        }
        let mut r = raw(&[("ham", 0.2), ("spam", 0.8)]);
        r.model = " ".into();
        assert_eq!(Prediction::parse(r, &l).unwrap_err().field, "model");
        assert_eq!(
            Prediction::parse(raw(&[("ham", f64::NAN), ("spam", 0.8)]), &l)
                .unwrap_err()
                .field,
            "scores.ham"
        );
        for bad in [-0.1, 1.5, f64::NAN] {
            let mut r = raw(&[("ham", 0.2), ("spam", 0.8)]);
            r.novelty = Some(bad);
            assert_eq!(Prediction::parse(r, &l).unwrap_err().field, "novelty");
        }
        let mut r = raw(&[("ham", 0.2), ("spam", 0.8)]);
        r.novelty = Some(0.7);
        assert_eq!(Prediction::parse(r, &l).unwrap().novelty, Some(0.7));
    }
}
