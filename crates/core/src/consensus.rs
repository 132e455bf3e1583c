//! Consensus: turning a task's independent answers into one label, or into a disagreement
//! that a more senior reviewer must settle.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::aggregate::DsParams;

#[derive(Debug, Clone, PartialEq)]
pub enum Majority {
    /// One label has more votes than any other.
    Winner {
        label: String,
        votes: usize,
        confidence: f64,
    },
    /// Two or more labels share the most votes (or there were no votes).
    Tie,
}

/// Plain majority over `votes`. Order does not matter.
pub fn majority<'a>(votes: impl IntoIterator<Item = &'a str>) -> Majority {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut total = 0usize;
    for v in votes {
        *counts.entry(v).or_default() += 1;
        total += 1;
    }
    let Some(best) = counts.values().copied().max() else {
        return Majority::Tie;
    };
    let mut winners = counts.iter().filter(|(_, c)| **c == best);
    let (label, _) = winners.next().expect("max exists");
    if winners.next().is_some() {
        return Majority::Tie;
    }
    Majority::Winner {
        label: label.to_string(),
        votes: best,
        confidence: best as f64 / total as f64,
    }
}

/// One reviewer's label for a task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vote<'a> {
    pub reviewer: i64,
    pub label: &'a str,
}

/// A consensus: the winning label and how sure the method is of it (vote share, weight
/// share or posterior probability).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub label: String,
    pub confidence: f64,
    /// The method that decided (`dawid_skene` falls back to `majority` for votes its fit
    /// cannot weigh).
    pub method: &'static str,
}

/// A fitted Dawid–Skene model, for scoring one task's votes online: the reviewers' store
/// ids map to the fit's worker indices; labels are the fit's.
#[derive(Debug, Clone, PartialEq)]
pub struct DsModel {
    pub labels: Vec<String>,
    pub reviewers: HashMap<i64, usize>,
    pub params: DsParams,
}

/// How a task's votes are weighed.
#[derive(Debug, Clone, Default)]
pub enum Scorer {
    #[default]
    Majority,
    /// Each reviewer's reliability (a reviewer without one counts 0.5).
    Weighted(HashMap<i64, f64>),
    DawidSkene(Arc<DsModel>),
}

impl Scorer {
    /// The consensus of `votes`, or `None` on a tie (or no votes). Invariant to the order
    /// of the votes.
    pub fn verdict(&self, votes: &[Vote<'_>]) -> Option<Verdict> {
        match self {
            Scorer::Majority => match majority(votes.iter().map(|v| v.label)) {
                Majority::Winner { label, confidence, .. } => Some(Verdict {
                    label,
                    confidence,
                    method: "majority",
                }),
                Majority::Tie => None,
            },
            Scorer::Weighted(weights) => {
                // Sum in a fixed order, so the float result does not depend on arrival order.
                let mut sorted = votes.to_vec();
                sorted.sort_by(|a, b| (a.label, a.reviewer).cmp(&(b.label, b.reviewer)));
                let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
                for v in &sorted {
                    *sums.entry(v.label).or_default() += weights.get(&v.reviewer).copied().unwrap_or(0.5).max(0.0);
                }
                best_share(&sums).map(|(label, confidence)| Verdict {
                    label,
                    confidence,
                    method: "weighted",
                })
            }
            Scorer::DawidSkene(model) => {
                // A fit made before these reviewers or labels appeared cannot weigh them.
                if !model.knows(votes) {
                    return Scorer::Majority.verdict(votes);
                }
                let posterior = model.posterior(votes);
                let total: f64 = posterior.iter().sum();
                let (i, p) = posterior
                    .iter()
                    .enumerate()
                    .fold((0, f64::MIN), |b, (i, p)| if *p > b.1 { (i, *p) } else { b });
                let tied = posterior
                    .iter()
                    .enumerate()
                    .any(|(j, q)| j != i && (q - p).abs() < 1e-12);
                (!tied && total > 0.0).then(|| Verdict {
                    label: model.labels[i].clone(),
                    confidence: p / total,
                    method: "dawid_skene",
                })
            }
        }
    }
}

fn best_share(sums: &BTreeMap<&str, f64>) -> Option<(String, f64)> {
    let total: f64 = sums.values().sum();
    let (label, top) = sums
        .iter()
        .fold(("", f64::MIN), |b, (l, w)| if *w > b.1 { (l, *w) } else { b });
    let tied = sums.iter().any(|(l, w)| *l != label && (w - top).abs() < 1e-9);
    if tied || total <= 0.0 {
        return None;
    }
    Some((label.to_string(), top / total))
}

impl DsModel {
    /// Whether the fit has seen every voter and every label of `votes`.
    pub fn knows(&self, votes: &[Vote<'_>]) -> bool {
        votes.iter().all(|v| {
            self.reviewers
                .get(&v.reviewer)
                .is_some_and(|w| *w < self.params.n_workers())
                && self.labels.iter().any(|l| l == v.label)
        })
    }

    /// P(true label | these votes) under the fitted model. Votes by reviewers the fit has
    /// not seen, or with labels it does not know, carry no information.
    pub fn posterior(&self, votes: &[Vote<'_>]) -> Vec<f64> {
        let k = self.labels.len();
        let mut log = self.params.priors.iter().map(|p| p.max(1e-10).ln()).collect::<Vec<_>>();
        for v in votes {
            let (Some(&w), Some(l)) = (
                self.reviewers.get(&v.reviewer),
                self.labels.iter().position(|x| x == v.label),
            ) else {
                continue;
            };
            if w >= self.params.n_workers() {
                continue;
            }
            for (truth, lp) in log.iter_mut().enumerate().take(k) {
                *lp += self.params.error(w, l, truth).max(1e-10).ln();
            }
        }
        let top = log.iter().copied().fold(f64::MIN, f64::max);
        let mut p: Vec<f64> = log.iter().map(|x| (x - top).exp()).collect();
        let sum: f64 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= sum);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cases() {
        assert_eq!(
            majority(["a", "b", "a"]),
            Majority::Winner {
                label: "a".into(),
                votes: 2,
                confidence: 2.0 / 3.0
            }
        );
        assert_eq!(majority(["a", "b"]), Majority::Tie);
        assert_eq!(majority(Vec::<&str>::new()), Majority::Tie);
        assert_eq!(
            majority(["b"]),
            Majority::Winner {
                label: "b".into(),
                votes: 1,
                confidence: 1.0
            }
        );
    }

    fn votes<'a>(v: &[(i64, &'a str)]) -> Vec<Vote<'a>> {
        v.iter().map(|(r, l)| Vote { reviewer: *r, label: l }).collect()
    }

    #[test]
    fn weighted_votes_follow_reliability() {
        let w: HashMap<i64, f64> = [(1, 0.95), (2, 0.55), (3, 0.5)].into();
        let s = Scorer::Weighted(w);
        let v = s.verdict(&votes(&[(1, "a"), (2, "b"), (3, "b")])).unwrap();
        assert_eq!(v.label, "b");
        let v = s.verdict(&votes(&[(1, "a"), (2, "b")])).unwrap();
        assert_eq!(v.label, "a");
        assert!((v.confidence - 0.95 / 1.5).abs() < 1e-12);
        assert_eq!(Scorer::Majority.verdict(&votes(&[(1, "a"), (2, "b")])), None);
    }

    #[test]
    fn dawid_skene_trusts_the_accurate_reviewer() {
        // Reviewer 1 is right 95% of the time, reviewers 2 and 3 are coin flips.
        let (good, coin) = (0.95, 0.5);
        let mut errors = vec![0.0; 3 * 4];
        for (w, acc) in [(0, good), (1, coin), (2, coin)] {
            for truth in 0..2 {
                for obs in 0..2 {
                    errors[(w * 2 + obs) * 2 + truth] = if obs == truth { acc } else { 1.0 - acc };
                }
            }
        }
        let model = DsModel {
            labels: vec!["a".into(), "b".into()],
            reviewers: [(10, 0), (20, 1), (30, 2)].into(),
            params: DsParams {
                n_labels: 2,
                priors: vec![0.5, 0.5],
                errors,
            },
        };
        let s = Scorer::DawidSkene(Arc::new(model));
        let v = s.verdict(&votes(&[(10, "a"), (20, "b"), (30, "b")])).unwrap();
        assert_eq!(v.label, "a");
        assert!((v.confidence - 0.95).abs() < 1e-9);
        assert_eq!(v.method, "dawid_skene");
        // A reviewer the fit has not seen: the votes go to plain majority.
        assert_eq!(s.verdict(&votes(&[(10, "b"), (99, "a")])), None);
        let v = s.verdict(&votes(&[(10, "b"), (99, "a"), (98, "a")])).unwrap();
        assert_eq!((v.label.as_str(), v.method), ("a", "majority"));
    }

    proptest! {
        #[test]
        fn weighted_verdicts_do_not_depend_on_vote_order(mut v in proptest::collection::vec((0i64..5, prop_oneof!["a", "b", "c"]), 1..8), seed in any::<u64>()) {
            let weights: HashMap<i64, f64> = (0..5).map(|r| (r, 0.3 + 0.13 * r as f64)).collect();
            let s = Scorer::Weighted(weights);
            let before = s.verdict(&v.iter().map(|(r, l)| Vote { reviewer: *r, label: l.as_str() }).collect::<Vec<_>>());
            let n = v.len();
            let mut x = seed;
            for i in (1..n).rev() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                v.swap(i, (x >> 33) as usize % (i + 1));
            }
            let after = s.verdict(&v.iter().map(|(r, l)| Vote { reviewer: *r, label: l.as_str() }).collect::<Vec<_>>());
            prop_assert_eq!(before, after);
        }
    }

    proptest! {
        #[test]
        fn order_does_not_matter(mut votes in proptest::collection::vec(prop_oneof!["a", "b", "c"], 0..9), seed in any::<u64>()) {
            let before = majority(votes.iter().map(String::as_str));
            // A deterministic shuffle from the seed.
            let n = votes.len();
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                votes.swap(i, (s >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(before, majority(votes.iter().map(String::as_str)));
        }
    }
}
