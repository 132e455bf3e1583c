//! Simulated reviewers: who they are (accuracy, speed) and what they have done so far.
//! An answer is a draw from the scenario's seeded [`Rng`], its duration simulated time,
//! so a reviewer behaves the same in every run of a seed.
//!
//! A reviewer's record (`answered`, `busy_ms`) is what a model of fatigue reads: accuracy
//! and speed that drift with the work done go in [`Reviewer::answer`], which has the whole
//! record at hand. Nothing here talks to a server; scenarios do.

use crate::rng::Rng;

/// How a reviewer works.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// The chance that an answer is the true label.
    pub accuracy: f64,
    /// Simulated time one review takes, in milliseconds.
    pub ms_per_review: i64,
}

/// A reviewer's answer to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub label: String,
    /// How long it took, in simulated milliseconds.
    pub took_ms: i64,
}

/// A simulated reviewer with an account on the server.
#[derive(Debug, Clone)]
pub struct Reviewer {
    pub name: String,
    /// The reviewer's API key.
    pub key: String,
    pub profile: Profile,
    /// Answers given so far.
    pub answered: u64,
    /// Simulated time spent reviewing so far, in milliseconds.
    pub busy_ms: i64,
}

impl Reviewer {
    pub fn new(name: impl Into<String>, key: impl Into<String>, profile: Profile) -> Self {
        Self {
            name: name.into(),
            key: key.into(),
            profile,
            answered: 0,
            busy_ms: 0,
        }
    }

    /// The answer to an item whose true label is `truth`, among `labels`: the truth with
    /// the reviewer's accuracy (one draw), otherwise another label — the other one of
    /// two without a further draw, else one drawn uniformly.
    pub fn answer(&mut self, truth: &str, labels: &[String], rng: &mut Rng) -> Answer {
        let label = if rng.chance(self.profile.accuracy) {
            truth.to_string()
        } else {
            let others: Vec<&String> = labels.iter().filter(|l| *l != truth).collect();
            match others.len() {
                0 => truth.to_string(),
                1 => others[0].clone(),
                n => others[rng.below(n)].clone(),
            }
        };
        self.answered += 1;
        self.busy_ms += self.profile.ms_per_review;
        Answer {
            label,
            took_ms: self.profile.ms_per_review,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn answers_are_right_at_the_reviewers_accuracy_and_take_their_time() {
        let mut r = Reviewer::new(
            "r",
            "key",
            Profile {
                accuracy: 0.9,
                ms_per_review: 20_000,
            },
        );
        let mut rng = Rng::new(3);
        let ls = labels(&["ham", "spam"]);
        let right = (0..10_000)
            .filter(|_| r.answer("spam", &ls, &mut rng).label == "spam")
            .count();
        assert!((8_850..9_150).contains(&right), "{right}");
        assert_eq!((r.answered, r.busy_ms), (10_000, 200_000_000));
    }

    #[test]
    fn a_wrong_answer_is_another_label() {
        let mut r = Reviewer::new(
            "r",
            "key",
            Profile {
                accuracy: 0.0,
                ms_per_review: 1,
            },
        );
        let mut rng = Rng::new(1);
        assert_eq!(r.answer("ham", &labels(&["ham", "spam"]), &mut rng).label, "spam");
        let three = labels(&["a", "b", "c"]);
        let got: std::collections::BTreeSet<String> = (0..200).map(|_| r.answer("a", &three, &mut rng).label).collect();
        assert_eq!(got, ["b".to_string(), "c".to_string()].into());
    }

    #[test]
    fn the_same_seed_gives_the_same_answers() {
        let ls = labels(&["ham", "spam"]);
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut r = Reviewer::new(
                "r",
                "k",
                Profile {
                    accuracy: 0.8,
                    ms_per_review: 1,
                },
            );
            (0..500)
                .map(|i| r.answer(if i % 3 == 0 { "spam" } else { "ham" }, &ls, &mut rng).label)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
