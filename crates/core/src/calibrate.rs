//! The arithmetic of trusting a model: the confidence threshold above which its decisions
//! are precise enough to automate ([`threshold`]), the precision of automated decisions as
//! audits see it ([`audit_precision`]), drift of its scores ([`psi`]), and which items a
//! human label would teach it most ([`informativeness`]).
//!
//! Intervals are 95% Wilson score intervals ([`crate::quality::wilson95`]), so a handful
//! of lucky audits never passes for evidence; a threshold is certified by the one-sided
//! 95% lower confidence bound ([`lower_bound95`]).

use crate::quality::{wilson_interval, wilson95};

/// z of a one-sided 95% bound.
pub const Z_ONE_SIDED_95: f64 = 1.644_853_626_951_472_2;

/// The one-sided 95% lower confidence bound (Wilson score) of a proportion: with 95%
/// confidence the true share is at least this. `None` with no trials.
pub fn lower_bound95(successes: u64, trials: u64) -> Option<f64> {
    wilson_interval(successes, trials, Z_ONE_SIDED_95).map(|w| w.lower)
}

/// For one label: given human-verified `(confidence of the model's top label, was the
/// model right)` pairs for items the model labelled with this label, the lowest confidence
/// threshold `t` such that among the pairs with confidence `≥ t` there are at least
/// `min_evidence` pairs and the one-sided 95% lower confidence bound of their precision
/// (share right, [`lower_bound95`]) is `≥ target_precision` — the claim "precision is at
/// least the target", made with 95% confidence.
///
/// Candidate thresholds are the confidences that occur in `pairs` (pairs whose confidence
/// is not a finite number are ignored). `None` when no threshold qualifies: not enough
/// evidence, or a target the model does not reach. Since a higher target qualifies a
/// subset of the thresholds a lower one does, raising `target_precision` never lowers the
/// threshold. The qualifying thresholds need not be contiguous (precision is not monotone
/// in `t`); the lowest one is returned, since the rule "auto when confidence ≥ t" is what
/// it certifies.
pub fn threshold(pairs: &[(f64, bool)], target_precision: f64, min_evidence: usize) -> Option<f64> {
    threshold_noisy(&NoisyCheck::exact_all(pairs), target_precision, min_evidence)
}

/// A human-verified prediction whose human label may itself be wrong.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoisyCheck {
    /// The model's confidence in its top label.
    pub confidence: f64,
    /// Whether the human label is the model's top label.
    pub agrees: bool,
    /// The probability that the human label is wrong.
    pub label_error: f64,
}

impl NoisyCheck {
    /// `(confidence, agrees)` pairs whose human labels are taken as exact.
    pub fn exact_all(pairs: &[(f64, bool)]) -> Vec<Self> {
        pairs
            .iter()
            .map(|&(confidence, agrees)| Self {
                confidence,
                agrees,
                label_error: 0.0,
            })
            .collect()
    }
}

/// [`threshold`] when human labels err: at each candidate `t`, the one-sided 95% lower
/// bound `L` of the share of checks at or above `t` that agree with their label is
/// corrected for the labels' mean error `ē` there by Rogan–Gladen, `(L − ē) / (1 − 2ē)`
/// (the model's precision `p` and the agreement share `a` are tied by
/// `a = p(1 − ē) + (1 − p)ē` when label errors are independent of the model's and a wrong
/// label on two labels is the other one; `p` increases with `a`, so `L` maps to a lower
/// bound of `p`). The correction adds at most about `ē`. With every `label_error` 0 this
/// is [`threshold`]. Checks with a non-finite confidence are ignored; errors are clamped
/// into [0, 0.49].
pub fn threshold_noisy(checks: &[NoisyCheck], target_precision: f64, min_evidence: usize) -> Option<f64> {
    let mut v: Vec<NoisyCheck> = checks.iter().copied().filter(|c| c.confidence.is_finite()).collect();
    v.sort_unstable_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let min_evidence = min_evidence.max(1) as u64;
    let (mut n, mut agree, mut error_sum) = (0u64, 0u64, 0.0f64);
    let mut best = None;
    let mut i = 0;
    while i < v.len() {
        let c = v[i].confidence;
        // Every check tied at this confidence is on the same side of `t = c`.
        while i < v.len() && v[i].confidence == c {
            n += 1;
            agree += u64::from(v[i].agrees);
            error_sum += v[i].label_error.clamp(0.0, 0.49);
            i += 1;
        }
        if n < min_evidence {
            continue;
        }
        let Some(lower) = lower_bound95(agree, n) else { continue };
        let e = error_sum / n as f64;
        let precision_lower = if e > 0.0 { (lower - e) / (1.0 - 2.0 * e) } else { lower };
        if precision_lower >= target_precision {
            best = Some(c);
        }
    }
    best
}

/// Reviewers' per-answer error rate from how often two independent answers on an item
/// split: with symmetric errors at rate `r` between two labels, a pair splits with
/// probability `2r(1 − r)`. Taken at the one-sided 95% lower bound of the split share, so
/// that the rate — and any correction built on it — is on the low side. `None` without
/// pairs; a split share of ½ or more (reviewers no better than chance) gives 0.5.
pub fn reviewer_error_from_splits(split: u64, pairs: u64) -> Option<f64> {
    let s = lower_bound95(split.min(pairs), pairs)?.min(0.5);
    Some((1.0 - (1.0 - 2.0 * s).sqrt()) / 2.0)
}

/// An estimated proportion: `value` of `n` trials with its 95% Wilson interval; both
/// `None` when there is nothing to estimate from.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    pub n: u64,
    pub value: Option<f64>,
    pub interval: Option<(f64, f64)>,
}

/// Precision of auto decisions estimated from audits: `confirmed` of `audited` audits
/// agreed with the automatic label. With no audits (or the impossible `confirmed >
/// audited`) there is no estimate: `value` and `interval` are `None`.
pub fn audit_precision(confirmed: u64, audited: u64) -> Estimate {
    match wilson95(confirmed, audited) {
        Some(w) => Estimate {
            n: audited,
            value: Some(confirmed as f64 / audited as f64),
            interval: Some((w.lower, w.upper)),
        },
        None => Estimate {
            n: audited,
            value: None,
            interval: None,
        },
    }
}

/// The share used in [`psi`] in place of an empty bin's 0 (which would make `ln(c/r)`
/// infinite): 10⁻⁴, the customary value. Shares are not renormalised after it.
pub const PSI_EPSILON: f64 = 1e-4;

/// Population stability index between a `reference` and a `current` sample of scores in
/// [0, 1]: `Σ (c_i − r_i) · ln(c_i / r_i)` over `bins` equal-width bins of [0, 1], where
/// `r_i` and `c_i` are the shares of each sample in bin `i` and an empty bin's share is
/// [`PSI_EPSILON`]. Scores outside [0, 1] are clamped into it (1 falls in the last bin);
/// non-finite scores are ignored. `bins = 0` is taken as 1.
///
/// PSI is symmetric in its two samples and 0 for identical shares. Customary reading:
/// below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a significant one.
/// When either sample has no finite score there is nothing to compare and the result is 0.
pub fn psi(reference: &[f64], current: &[f64], bins: usize) -> f64 {
    let bins = bins.max(1);
    let (r, nr) = histogram(reference, bins);
    let (c, nc) = histogram(current, bins);
    if nr == 0 || nc == 0 {
        return 0.0;
    }
    r.iter()
        .zip(&c)
        .map(|(&r, &c)| {
            let r = share(r, nr);
            let c = share(c, nc);
            (c - r) * (c / r).ln()
        })
        .sum()
}

fn share(count: u64, total: u64) -> f64 {
    if count == 0 {
        PSI_EPSILON
    } else {
        count as f64 / total as f64
    }
}

/// Counts per equal-width bin of [0, 1], and how many finite scores there were.
fn histogram(scores: &[f64], bins: usize) -> (Vec<u64>, u64) {
    let mut h = vec![0u64; bins];
    let mut n = 0;
    for &s in scores {
        if !s.is_finite() {
            continue;
        }
        let i = ((s.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        h[i] += 1;
        n += 1;
    }
    (h, n)
}

/// How to pick the items a human label helps most (active learning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    LeastConfidence,
    Margin,
    Entropy,
    Random,
}

/// How informative an item is for a human label, in [0, 1] (higher = more informative),
/// from the model's probabilities `probs` (normalised here to sum to one; negative or
/// non-finite entries count as 0):
///
/// - `LeastConfidence`: 1 − top probability;
/// - `Margin`: 1 − (top − second) (second is 0 with a single label);
/// - `Entropy`: Shannon entropy divided by ln(number of labels) (0 with one label);
/// - `Random`: `draw`, a caller-supplied uniform draw in [0, 1] (clamped into it).
///
/// Without probabilities (empty, or all zero) nothing is known about the item and every
/// strategy but `Random` gives 1.
pub fn informativeness(strategy: Strategy, probs: &[f64], draw: f64) -> f64 {
    if strategy == Strategy::Random {
        return if draw.is_finite() { draw.clamp(0.0, 1.0) } else { 0.0 };
    }
    let clean = |p: f64| if p.is_finite() && p > 0.0 { p } else { 0.0 };
    let total: f64 = probs.iter().map(|&p| clean(p)).sum();
    if total <= 0.0 || !total.is_finite() {
        return 1.0;
    }
    let (mut top, mut second) = (0.0f64, 0.0f64);
    for &p in probs {
        let p = clean(p) / total;
        if p > top {
            second = top;
            top = p;
        } else if p > second {
            second = p;
        }
    }
    let score = match strategy {
        Strategy::LeastConfidence => 1.0 - top,
        Strategy::Margin => 1.0 - (top - second),
        Strategy::Entropy => {
            if probs.len() < 2 {
                0.0
            } else {
                let h: f64 = probs
                    .iter()
                    .map(|&p| clean(p) / total)
                    .filter(|&q| q > 0.0)
                    .map(|q| -q * q.ln())
                    .sum();
                h / (probs.len() as f64).ln()
            }
        }
        Strategy::Random => unreachable!("handled above"),
    };
    score.clamp(0.0, 1.0)
}

/// A multi-label item's informativeness, from the one-vs-rest model's smallest distance of
/// a label's score to its threshold (`min_margin`, [`crate::Prediction::min_margin`]):
/// `1 − 2 × min_margin`, held to [0, 1] — 1 for a label on its threshold, 0 for labels
/// half a unit or more from theirs. Every uncertainty strategy ranks a multi-label item so
/// (the labels are independent questions, not one distribution); with one label and the
/// threshold 0.5 it is `Margin`'s score. `Random` gives `draw`, as for one label.
pub fn informativeness_multi(strategy: Strategy, min_margin: f64, draw: f64) -> f64 {
    if strategy == Strategy::Random {
        return informativeness(strategy, &[], draw);
    }
    if !min_margin.is_finite() {
        return 1.0;
    }
    (1.0 - 2.0 * min_margin).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use super::Strategy;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    /// 1,000 confidences evenly spaced over [0.5, 1): those ≥ 0.9 (200 of them) always
    /// right, those below right 7 times in 10.
    fn synthetic() -> Vec<(f64, bool)> {
        (0..1000)
            .map(|i| {
                let c = 0.5 + i as f64 * 0.0005;
                (c, c >= 0.9 || i % 10 < 7)
            })
            .collect()
    }

    /// The definition, checked naively at one threshold.
    fn qualifies(pairs: &[(f64, bool)], t: f64, target: f64, min_evidence: usize) -> bool {
        let above: Vec<bool> = pairs.iter().filter(|p| p.0 >= t).map(|p| p.1).collect();
        let right = above.iter().filter(|&&r| r).count() as u64;
        above.len() >= min_evidence.max(1) && lower_bound95(right, above.len() as u64).is_some_and(|l| l >= target)
    }

    #[test]
    fn threshold_finds_the_precise_region() {
        let pairs = synthetic();
        let t = threshold(&pairs, 0.95, 50).expect("200 right answers above 0.9 are enough");
        // A few 70% items just below 0.9 still fit under the bound; not many.
        assert!((0.885..1.0).contains(&t), "{t}");
        assert!(qualifies(&pairs, t, 0.95, 50));
        // Nothing lower qualifies.
        for &(c, _) in &pairs {
            if c < t {
                assert!(!qualifies(&pairs, c, 0.95, 50), "{c} < {t}");
            }
        }
        // 0.7 overall is reachable with everything in; 0.99 needs ~270 straight right
        // answers and there are 200.
        assert_eq!(threshold(&pairs, 0.6, 50), Some(0.5));
        assert_eq!(threshold(&pairs, 0.99, 50), None);
    }

    #[test]
    fn threshold_needs_evidence() {
        let pairs: Vec<(f64, bool)> = (0..20).map(|i| (0.9 + i as f64 * 0.001, true)).collect();
        assert_eq!(threshold(&pairs, 0.8, 50), None, "20 pairs, 50 needed");
        assert_eq!(threshold(&pairs, 0.89, 20), None, "20/20 has a lower bound of 0.881");
        assert_eq!(threshold(&pairs, 0.88, 20), Some(0.9));
        // n straight right answers have the lower bound n / (n + z²): 11 are the fewest
        // with a bound ≥ 0.8; the lowest threshold takes all 20.
        assert_eq!(threshold(&pairs, 0.8, 1), Some(0.9));
        assert_eq!(threshold(&pairs[..11], 0.8, 1), Some(0.9));
        assert_eq!(threshold(&pairs[..10], 0.8, 1), None);
        assert_eq!(threshold(&[], 0.5, 0), None);
        assert_eq!(threshold(&[(f64::NAN, true)], 0.0, 0), None);
        // Ties: a threshold takes every pair at its confidence.
        let tied = [(0.9, true), (0.9, false), (0.95, true)];
        assert!(qualifies(&tied, threshold(&tied, 0.0, 3).unwrap(), 0.0, 3));
        assert_eq!(threshold(&tied, 0.0, 2), Some(0.9), "0.95 alone is one pair");
    }

    #[test]
    fn raising_the_target_never_lowers_the_threshold() {
        let pairs = synthetic();
        let mut last = f64::NEG_INFINITY;
        for k in 0..=100 {
            let target = 0.5 + k as f64 * 0.005;
            let t = threshold(&pairs, target, 30).unwrap_or(f64::INFINITY);
            assert!(t >= last, "target {target}: {t} < {last}");
            last = t;
        }
    }

    proptest! {
        #[test]
        fn threshold_is_monotone_and_satisfies_its_definition(
            pairs in prop::collection::vec((0u32..100, any::<bool>()), 0..200),
            a in 0.0f64..1.0,
            b in 0.0f64..1.0,
            min in 0usize..40,
        ) {
            let pairs: Vec<(f64, bool)> = pairs.into_iter().map(|(c, r)| (f64::from(c) / 100.0, r)).collect();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let t_lo = threshold(&pairs, lo, min);
            let t_hi = threshold(&pairs, hi, min);
            if let Some(h) = t_hi {
                prop_assert!(t_lo.is_some_and(|l| l <= h));
            }
            if let Some(l) = t_lo {
                prop_assert!(qualifies(&pairs, l, lo, min));
                for &(c, _) in &pairs {
                    if c < l {
                        prop_assert!(!qualifies(&pairs, c, lo, min));
                    }
                }
            } else {
                for &(c, _) in &pairs {
                    prop_assert!(!qualifies(&pairs, c, lo, min));
                }
            }
        }
    }

    #[test]
    fn noisy_threshold_with_exact_labels_is_the_plain_one() {
        let pairs = synthetic();
        let checks = NoisyCheck::exact_all(&pairs);
        for target in [0.6, 0.8, 0.9, 0.95, 0.99] {
            assert_eq!(threshold(&pairs, target, 50), threshold_noisy(&checks, target, 50));
        }
    }

    #[test]
    fn reviewer_error_from_the_split_rate_errs_low() {
        // r = 0.03 splits pairs 5.82% of the time; the rate is read at the lower bound of
        // 582 splits in 10,000 pairs.
        let r = reviewer_error_from_splits(582, 10_000).unwrap();
        let s = lower_bound95(582, 10_000).unwrap();
        assert!((2.0 * r * (1.0 - r) - s).abs() < 1e-12, "{r}");
        assert!((0.027..0.03).contains(&r), "{r}");
        assert_eq!(reviewer_error_from_splits(0, 100), Some(0.0));
        assert_eq!(reviewer_error_from_splits(90, 100), Some(0.5));
        assert_eq!(reviewer_error_from_splits(0, 0), None);
    }

    #[test]
    fn label_noise_lowers_the_threshold_by_at_most_its_own_size() {
        // 600 checks, the model right on all of them; labels wrong 0.3% of the time, so
        // two disagreements at the top are the labels' doing.
        let mut checks: Vec<NoisyCheck> = (0..600)
            .map(|i| NoisyCheck {
                confidence: 0.9 + i as f64 * 1e-4,
                agrees: true,
                label_error: 0.003,
            })
            .collect();
        checks[599].agrees = false;
        checks[598].agrees = false;
        let plain: Vec<(f64, bool)> = checks.iter().map(|c| (c.confidence, c.agrees)).collect();
        assert_eq!(threshold(&plain, 0.99, 200), None, "598/600 has a lower bound of 0.989");
        assert_eq!(
            threshold_noisy(&checks, 0.99, 200),
            Some(0.9),
            "corrected for 0.3% label error"
        );
        // Real model errors at the bottom stay errors: twenty of them among 100 checks at
        // 0.55 keep the threshold above them, whatever the labels' error.
        let mut mixed: Vec<NoisyCheck> = (0..900)
            .map(|i| NoisyCheck {
                confidence: 0.99 + i as f64 * 1e-6,
                agrees: true,
                label_error: 0.003,
            })
            .collect();
        mixed.extend((0..100).map(|i| NoisyCheck {
            confidence: 0.55,
            agrees: i >= 20,
            label_error: 0.003,
        }));
        let t = threshold_noisy(&mixed, 0.99, 200).unwrap();
        assert!(t >= 0.99, "{t}");
    }

    #[test]
    fn the_one_sided_bound_is_the_wilson_lower_end_at_z_1_645() {
        // The Wilson lower end with z = 1.644854 (what statsmodels' proportion_confint(95, 100,
        // alpha=0.1, method="wilson") computes).
        assert!((lower_bound95(95, 100).unwrap() - 0.900_838_9).abs() < 1e-6);
        assert!((lower_bound95(20, 20).unwrap() - 20.0 / (20.0 + Z_ONE_SIDED_95 * Z_ONE_SIDED_95)).abs() < 1e-12);
        assert_eq!(lower_bound95(0, 0), None);
    }

    #[test]
    fn audit_precision_has_a_wilson_interval() {
        // 95 of 100: p = 0.95, Wilson 95% (0.8882495, 0.9784563), by the formula with
        // z = 1.959964 (statsmodels proportion_confint(95, 100, method="wilson")).
        let e = audit_precision(95, 100);
        assert_eq!(e.n, 100);
        assert_eq!(e.value, Some(0.95));
        let (lo, hi) = e.interval.unwrap();
        assert!(
            close(lo, 0.888_249_5, 1e-6) && close(hi, 0.978_456_3, 1e-6),
            "{lo} {hi}"
        );
        // 50 of 100: symmetric around one half.
        let (lo, hi) = audit_precision(50, 100).interval.unwrap();
        assert!(close(lo, 0.403_831_5, 1e-6) && close(hi, 0.596_168_5, 1e-6));
        // No audits: no estimate.
        assert_eq!(
            audit_precision(0, 0),
            Estimate {
                n: 0,
                value: None,
                interval: None
            }
        );
        assert_eq!(audit_precision(3, 2).value, None);
        // All confirmed: the interval touches 1.
        assert_eq!(audit_precision(10, 10).interval.unwrap().1, 1.0);
    }

    #[test]
    fn psi_of_identical_samples_is_zero() {
        let a: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.618_033_988_7) % 1.0).collect();
        assert!(psi(&a, &a, 10).abs() < 1e-12);
        // Same shares from different samples.
        let b: Vec<f64> = a.iter().chain(&a).copied().collect();
        assert!(psi(&a, &b, 10).abs() < 1e-12);
        // Nothing to compare.
        assert_eq!(psi(&[], &a, 10), 0.0);
        assert_eq!(psi(&a, &[f64::NAN], 10), 0.0);
    }

    #[test]
    fn psi_matches_the_formula_by_hand() {
        // Two bins: reference shares (0.5, 0.5), current (0.25, 0.75).
        // PSI = (0.25 − 0.5)·ln(0.25/0.5) + (0.75 − 0.5)·ln(0.75/0.5) = 0.2746531
        let r = [0.1, 0.2, 0.7, 1.0];
        let c = [0.4, 0.5, 0.9, 0.99];
        let expect = -0.25 * 0.5f64.ln() + 0.25 * 1.5f64.ln();
        assert!(close(psi(&r, &c, 2), expect, 1e-12));
        assert!(close(expect, 0.274_653_1, 1e-7));
        // Symmetric.
        assert!(close(psi(&c, &r, 2), psi(&r, &c, 2), 1e-12));
        // An empty bin uses the epsilon: reference all in bin 0, current half and half.
        let r = [0.1, 0.2];
        let c = [0.1, 0.9];
        let expect = (0.5 - 1.0) * (0.5f64 / 1.0).ln() + (0.5 - PSI_EPSILON) * (0.5 / PSI_EPSILON).ln();
        assert!(close(psi(&r, &c, 2), expect, 1e-12));
        // Out-of-range scores are clamped, not dropped.
        assert!(close(psi(&[-3.0, 0.2], &[0.0, 0.1], 2), 0.0, 1e-12));
    }

    #[test]
    fn psi_grows_with_the_shift() {
        let base: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 1000.0).collect();
        let mut last = 0.0;
        for shift in [0.05, 0.1, 0.2, 0.4] {
            let moved: Vec<f64> = base.iter().map(|x| (x * (1.0 - shift) + shift).min(1.0)).collect();
            let p = psi(&base, &moved, 10);
            assert!(p > last, "shift {shift}: {p} ≤ {last}");
            let back = psi(&moved, &base, 10);
            assert!(close(p, back, 1e-9), "symmetric: {p} vs {back}");
            last = p;
        }
        assert!(last > 0.25, "a 0.4 shift is significant: {last}");
    }

    #[test]
    fn uncertain_items_are_more_informative() {
        let unsure = [0.5, 0.5];
        let sure = [0.99, 0.01];
        for s in [Strategy::LeastConfidence, Strategy::Margin, Strategy::Entropy] {
            let (u, k) = (informativeness(s, &unsure, 0.0), informativeness(s, &sure, 0.0));
            assert!(u > k, "{s:?}: {u} vs {k}");
            assert!((0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&k));
        }
        assert!(close(
            informativeness(Strategy::LeastConfidence, &unsure, 0.0),
            0.5,
            1e-12
        ));
        assert!(close(informativeness(Strategy::Margin, &unsure, 0.0), 1.0, 1e-12));
        assert!(close(informativeness(Strategy::Entropy, &unsure, 0.0), 1.0, 1e-12));
        assert!(close(
            informativeness(Strategy::LeastConfidence, &sure, 0.0),
            0.01,
            1e-12
        ));
        assert!(close(informativeness(Strategy::Margin, &sure, 0.0), 0.02, 1e-12));
        let h = -(0.99f64 * 0.99f64.ln() + 0.01 * 0.01f64.ln()) / 2f64.ln();
        assert!(close(informativeness(Strategy::Entropy, &sure, 0.0), h, 1e-12));
        // Three labels: margin looks at the top two only.
        let p = [0.4, 0.4, 0.2];
        assert!(close(informativeness(Strategy::Margin, &p, 0.0), 1.0, 1e-12));
        assert!(close(informativeness(Strategy::LeastConfidence, &p, 0.0), 0.6, 1e-12));
        // Random is the draw.
        assert_eq!(informativeness(Strategy::Random, &sure, 0.25), 0.25);
        assert_eq!(informativeness(Strategy::Random, &sure, 7.0), 1.0);
        // Nothing known: maximal.
        assert_eq!(informativeness(Strategy::Entropy, &[], 0.0), 1.0);
        assert_eq!(informativeness(Strategy::Margin, &[0.0, 0.0], 0.0), 1.0);
        // Serialised names.
        assert_eq!(
            serde_json::to_string(&Strategy::LeastConfidence).unwrap(),
            "\"least_confidence\""
        );
    }
}
