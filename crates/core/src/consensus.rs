//! Consensus: turning a task's independent answers into one label, or into a disagreement
//! that a more senior reviewer must settle.

use std::collections::BTreeMap;

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
