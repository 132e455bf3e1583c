//! Reviewer quality: how often a worker's answers match a reference — gold labels, or an
//! aggregate such as the majority vote — and how sure we can be of that rate. The Wilson
//! score interval keeps a reviewer with 3 gold answers from being ranked like one with
//! 300. Pure arithmetic on [`CrowdData`]; deciding what to do about a weak reviewer is not
//! this module's business.

use crate::crowd::{CrowdData, Gold, GoldLabel};

/// The two-sided 95% normal quantile, Φ⁻¹(0.975) (as scipy and statsmodels use it).
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A closed interval within [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// The Wilson score interval for `successes` out of `trials` at normal quantile `z`;
/// `None` when there are no trials. The same as statsmodels
/// `proportion_confint(method="wilson")`.
pub fn wilson_interval(successes: u64, trials: u64, z: f64) -> Option<Interval> {
    if trials == 0 || successes > trials {
        return None;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // At 0 or n successes the interval touches the end exactly; elsewhere keep rounding
    // from stepping outside [0, 1].
    Some(Interval {
        lower: if successes == 0 { 0.0 } else { (center - half).max(0.0) },
        upper: if successes == trials {
            1.0
        } else {
            (center + half).min(1.0)
        },
    })
}

/// The 95% Wilson score interval of `successes` out of `trials`.
pub fn wilson95(successes: u64, trials: u64) -> Option<Interval> {
    wilson_interval(successes, trials, Z_95)
}

/// A worker's answers compared with a reference: `correct` of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerScore {
    pub n: usize,
    pub correct: usize,
}

impl WorkerScore {
    /// `correct / n`; `None` when the worker answered no task with a reference label.
    pub fn accuracy(&self) -> Option<f64> {
        (self.n > 0).then(|| self.correct as f64 / self.n as f64)
    }

    /// The 95% Wilson interval of the accuracy.
    pub fn wilson95(&self) -> Option<Interval> {
        wilson95(self.correct as u64, self.n as u64)
    }
}

/// Per worker (indexed like [`CrowdData::workers`]), how many of their answers fall on
/// tasks with a reference label and how many of those match it.
pub fn score_workers(data: &CrowdData, truth: &Gold) -> Vec<WorkerScore> {
    let mut scores = vec![WorkerScore::default(); data.n_workers()];
    let (workers, labels) = (data.answer_workers(), data.answer_labels());
    for t in 0..data.n_tasks() {
        let g = truth.labels[t];
        if !g.is_known() {
            continue;
        }
        for a in data.task_range(t) {
            let s = &mut scores[workers[a] as usize];
            s.n += 1;
            s.correct += usize::from(g == GoldLabel::Label(labels[a]));
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-7
    }

    #[test]
    fn wilson_matches_published_values() {
        // statsmodels proportion_confint(8, 10, method="wilson") = (0.4901625, 0.9433178)
        let i = wilson95(8, 10).unwrap();
        assert!(close(i.lower, 0.4901625) && close(i.upper, 0.9433178), "{i:?}");
        // 0 of 10 and 10 of 10 touch the ends.
        let i = wilson95(0, 10).unwrap();
        assert_eq!(i.lower, 0.0);
        assert!(close(i.upper, 0.2775328), "{i:?}");
        let i = wilson95(10, 10).unwrap();
        assert_eq!(i.upper, 1.0);
        assert!(close(i.lower, 0.7224672), "{i:?}");
        assert_eq!(wilson95(0, 0), None);
        assert_eq!(wilson95(3, 2), None);
    }

    #[test]
    fn wilson_narrows_with_more_trials() {
        let small = wilson95(3, 4).unwrap();
        let large = wilson95(300, 400).unwrap();
        assert!(small.lower < large.lower && large.upper < small.upper);
        assert!(large.lower < 0.75 && 0.75 < large.upper);
    }

    #[test]
    fn scores_against_gold() {
        let d =
            CrowdData::from_answers([("a", "t1", "1"), ("a", "t2", "0"), ("b", "t1", "0"), ("b", "t3", "1")]).unwrap();
        let g = d.gold([("t1", "1"), ("t2", "1")]);
        let s = score_workers(&d, &g);
        assert_eq!(s[0], WorkerScore { n: 2, correct: 1 });
        assert_eq!(s[1], WorkerScore { n: 1, correct: 0 });
        assert_eq!(s[1].accuracy(), Some(0.0));
        assert_eq!(WorkerScore::default().accuracy(), None);
        assert!(s[0].wilson95().is_some());
    }
}

/// Whether a reviewer with `correct` of `answered` gold answers is held: once `min_gold`
/// answers are in, the upper bound of the 95% Wilson interval is below `min_accuracy`.
pub fn should_hold(correct: u64, answered: u64, min_accuracy: f64, min_gold: u64) -> bool {
    answered >= min_gold.max(1) && wilson95(correct, answered).is_some_and(|i| i.upper < min_accuracy)
}

/// A reviewer's reliability as a vote weight: gold accuracy with one success and one
/// failure added (so a reviewer with no gold yet weighs 0.5).
pub fn reliability(correct: u64, answered: u64) -> f64 {
    (correct as f64 + 1.0) / (answered as f64 + 2.0)
}

#[cfg(test)]
mod hold_tests {
    use super::*;

    #[test]
    fn holds_only_with_enough_evidence_of_low_accuracy() {
        assert!(!should_hold(5, 10, 0.85, 20), "too few gold answers");
        assert!(should_hold(10, 20, 0.85, 20), "50% of 20: the upper bound is ~0.70");
        assert!(
            !should_hold(17, 20, 0.85, 20),
            "85% of 20: the upper bound is above the bar"
        );
        assert!(!should_hold(0, 0, 0.85, 0));
        assert_eq!(reliability(0, 0), 0.5);
    }
}
