//! Active learning's pick: which auto-eligible items go to review because the model would
//! learn most from them, paced within a budget per 1,000 decisions. Pure: the server keeps
//! one [`Budget`] per project and asks it once per decision.

use std::collections::VecDeque;

#[cfg(doc)]
use crate::calibrate;

/// How far the bar moves per item, in ln units: up by `STEP × (1 − share)` when an item
/// reaches it, down by `STEP × share` when not (Robbins–Monro tracking of the quantile
/// that leaves `share` of items above it). Tracking, not a quantile of stored scores,
/// because scores drift down as the model learns, and a bar set from an older model's
/// scores is one new items rarely reach: the budget would go unspent.
pub const BAR_STEP: f64 = 0.25;
/// The lowest bar (and score) the tracker works with.
pub const BAR_FLOOR: f64 = 1e-12;

/// The last 1,000 decisions of a project — whether each was auto-eligible and whether it
/// went to review for learning — and the bar an item's informativeness must reach.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    decisions: VecDeque<(bool, bool)>,
    /// ln of the bar; `None` until the first auto-eligible item.
    log_bar: Option<f64>,
}

impl Budget {
    /// Whether an auto-eligible item this informative goes to review for learning: the
    /// most informative items, within `budget_per_1000` of the last 1,000 decisions.
    /// `score` is the item's informativeness in [0, 1] ([`calibrate::informativeness`], or
    /// [`calibrate::informativeness_multi`] in a multi-label project), `None` for items the
    /// policy already sends to review (they count toward the window, never toward the
    /// budget).
    pub fn choose(&mut self, budget_per_1000: u32, score: Option<f64>) -> bool {
        let pick = match score {
            None => false,
            Some(score) => {
                let used = self.decisions.iter().filter(|d| d.1).count() as u32;
                let eligible = self.decisions.iter().filter(|d| d.0).count() + 1;
                let eligible_share = (eligible as f64 / (self.decisions.len() + 1) as f64).min(1.0);
                // The share of auto-eligible items to pick: `budget / (1000 × eligible share)`.
                let want = (f64::from(budget_per_1000) / 1000.0 / eligible_share).min(1.0);
                // Compared in ln units, scores and bar both held to [1e-12, 1]: a run of zero
                // scores cannot drag the bar down without end.
                let log_score = score.clamp(BAR_FLOOR, 1.0).ln();
                let reached = self.log_bar.is_none_or(|l| log_score >= l);
                self.log_bar = Some(match self.log_bar {
                    None => log_score,
                    Some(l) => (l + BAR_STEP * (f64::from(u8::from(reached)) - want)).clamp(BAR_FLOOR.ln(), 0.0),
                });
                // Paced: never more than the budget's share of the decisions seen so far.
                let allowed = f64::from(budget_per_1000) * (self.decisions.len() + 1) as f64 / 1000.0;
                budget_per_1000 > 0 && reached && f64::from(used) < allowed.max(1.0)
            }
        };
        self.decisions.push_back((score.is_some(), pick));
        if self.decisions.len() > 1000 {
            self.decisions.pop_front();
        }
        pick
    }

    /// ln of the current bar (`None` before the first auto-eligible item).
    pub fn log_bar(&self) -> Option<f64> {
        self.log_bar
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::{Strategy, informativeness, informativeness_multi};
    use crate::prediction::RawPrediction;
    use crate::{LabelSet, Prediction};

    /// Picks out of `n` auto-eligible decisions whose least-confidence scores come from
    /// `score(i)`.
    fn picks(budget: u32, n: usize, score: impl Fn(usize) -> f64) -> usize {
        let mut b = Budget::default();
        (0..n)
            .filter(|&i| {
                let top = 1.0 - score(i);
                b.choose(
                    budget,
                    Some(informativeness(Strategy::LeastConfidence, &[top, 1.0 - top], 0.5)),
                )
            })
            .count()
    }

    #[test]
    fn the_budget_is_spent_while_scores_drift_down() {
        // Uncertainty falls a hundredfold over the stream, as a model learning fast would
        // make it; the budget of 100 per 1,000 is still spent (the pacing caps it).
        let n = 5000;
        let got = picks(100, n, |i| {
            0.4 * (-(i as f64) / 1000.0).exp() * (1.0 + 0.5 * ((i * 7919) % 100) as f64 / 100.0)
        });
        assert!((440..=501).contains(&got), "{got} picks of 500 allowed");
    }

    #[test]
    fn the_most_uncertain_items_are_the_ones_picked() {
        let mut b = Budget::default();
        let (mut uncertain, mut sure) = (0, 0);
        for i in 0..4000 {
            let score = if i % 10 == 0 { 0.45 } else { 0.01 };
            let top = 1.0 - score;
            if b.choose(
                50,
                Some(informativeness(Strategy::LeastConfidence, &[top, 1.0 - top], 0.5)),
            ) {
                if score > 0.1 { uncertain += 1 } else { sure += 1 }
            }
        }
        assert!(
            uncertain >= 150 && sure <= uncertain / 4,
            "{uncertain} uncertain, {sure} sure"
        );
    }

    #[test]
    fn no_budget_no_picks_and_zero_scores_do_not_sink_the_bar() {
        assert_eq!(picks(0, 2000, |_| 0.3), 0);
        // A long run of certain items, then uncertain ones: the bar has not sunk so far
        // that it cannot tell them apart from the next certain ones.
        let mut b = Budget::default();
        for _ in 0..5000 {
            b.choose(50, Some(informativeness(Strategy::LeastConfidence, &[1.0, 0.0], 0.5)));
        }
        let bar = b.log_bar().unwrap();
        assert!(bar >= BAR_FLOOR.ln(), "{bar}");
    }

    fn multi(scores: &[(&str, f64)]) -> Prediction {
        let labels = LabelSet::parse(&["hate".into(), "spam".into(), "violence".into()]).unwrap();
        let raw = RawPrediction {
            model: "m".into(),
            version: None,
            scores: scores.iter().map(|(l, s)| (l.to_string(), *s)).collect(),
            novelty: None,
        };
        Prediction::parse(raw, &labels).unwrap()
    }

    /// A multi-label project ranks by the one-vs-rest scores' smallest margin to their
    /// thresholds: the item whose least clear label is nearest flipping comes first, however
    /// sure the model is of its other labels — and a top-label measure would rank them
    /// otherwise.
    #[test]
    fn multi_label_items_rank_by_their_smallest_margin() {
        let thresholds: std::collections::HashMap<String, f64> = [("spam".to_string(), 0.8)].into();
        let items = [
            // spam 0.78 is 0.02 under its calibrated 0.8: the nearest to flipping.
            (
                "spam_near_its_threshold",
                multi(&[("hate", 0.99), ("spam", 0.78), ("violence", 0.01)]),
            ),
            // violence 0.45 is 0.05 from the default 0.5.
            (
                "violence_near",
                multi(&[("hate", 0.02), ("spam", 0.1), ("violence", 0.45)]),
            ),
            // Two labels surely present, one surely absent: every label 0.4 or more from
            // its threshold.
            ("all_clear", multi(&[("hate", 0.95), ("spam", 0.05), ("violence", 0.9)])),
            ("sure_of_all", multi(&[("hate", 0.0), ("spam", 0.0), ("violence", 0.0)])),
        ];
        let score = |p: &Prediction| informativeness_multi(Strategy::Margin, p.min_margin(Some(&thresholds)), 0.5);
        let mut ranked: Vec<(&str, f64)> = items.iter().map(|(n, p)| (*n, score(p))).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let order: Vec<&str> = ranked.iter().map(|r| r.0).collect();
        assert_eq!(
            order,
            ["spam_near_its_threshold", "violence_near", "all_clear", "sure_of_all"],
            "{ranked:?}"
        );
        assert!(
            (ranked[0].1 - 0.96).abs() < 1e-9 && (ranked[2].1 - 0.2).abs() < 1e-9,
            "{ranked:?}"
        );
        assert_eq!(ranked[3].1, 0.0);
        // Least confidence over the same scores (made one distribution) would put the clear
        // `all_clear` (top 0.95 of 1.9) above `spam_near_its_threshold` (0.99 of 1.78).
        let lc = |p: &Prediction| {
            let probs: Vec<f64> = p.scores.iter().map(|s| s.1).collect();
            informativeness(Strategy::LeastConfidence, &probs, 0.5)
        };
        assert!(lc(&items[2].1) > lc(&items[0].1));

        // And the budget picks the near-threshold items: every tenth item is one.
        let mut b = Budget::default();
        let (mut near, mut clear) = (0, 0);
        for i in 0..4000 {
            let p = if i % 10 == 0 { &items[0].1 } else { &items[2].1 };
            if b.choose(50, Some(score(p))) {
                if i % 10 == 0 { near += 1 } else { clear += 1 }
            }
        }
        assert!(near >= 150 && clear <= near / 4, "{near} near, {clear} clear");
    }
}
