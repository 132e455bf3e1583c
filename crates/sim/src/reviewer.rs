//! Simulated reviewers: who they are (accuracy, speed) and what they have done so far.
//! An answer is a draw from the scenario's seeded [`Rng`], its duration simulated time,
//! so a reviewer behaves the same in every run of a seed.
//!
//! A reviewer may tire ([`Fatigue`]): after `onset` tasks in a work session, accuracy
//! decays toward a floor and time per review falls, each linearly over `ramp` tasks; a
//! break ([`Reviewer::rest`]) starts a fresh session. Nothing here talks to a server;
//! scenarios do.

use crate::rng::Rng;

/// How a reviewer works.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// The chance that an answer is the true label.
    pub accuracy: f64,
    /// Simulated time one review takes, in milliseconds.
    pub ms_per_review: i64,
}

/// How a reviewer tires within a work session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fatigue {
    /// Tasks in a session before fatigue sets in.
    pub onset: u64,
    /// Tasks over which accuracy and speed move from the profile's to the tired values.
    pub ramp: u64,
    /// The accuracy fatigue decays toward.
    pub floor: f64,
    /// The fraction by which time per review falls (0.4: 40% faster).
    pub speedup: f64,
}

impl Fatigue {
    /// How tired (0 to 1) a reviewer is at their `n`-th task of a session (from 0).
    pub fn level(&self, n: u64) -> f64 {
        if n < self.onset {
            0.0
        } else {
            ((n - self.onset + 1) as f64 / self.ramp.max(1) as f64).min(1.0)
        }
    }
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
    /// How they tire, if they do.
    pub fatigue: Option<Fatigue>,
    /// Answers in the current work session.
    pub session_answered: u64,
}

impl Reviewer {
    pub fn new(name: impl Into<String>, key: impl Into<String>, profile: Profile) -> Self {
        Self {
            name: name.into(),
            key: key.into(),
            profile,
            answered: 0,
            busy_ms: 0,
            fatigue: None,
            session_answered: 0,
        }
    }

    /// The same reviewer, tiring as `f` says.
    pub fn with_fatigue(mut self, f: Fatigue) -> Self {
        self.fatigue = Some(f);
        self
    }

    /// A break: the next answer starts a fresh session.
    pub fn rest(&mut self) {
        self.session_answered = 0;
    }

    /// The accuracy and time per review of the next answer.
    pub fn current(&self) -> Profile {
        match self.fatigue {
            None => self.profile,
            Some(f) => {
                let k = f.level(self.session_answered);
                Profile {
                    accuracy: self.profile.accuracy + (f.floor - self.profile.accuracy) * k,
                    ms_per_review: (self.profile.ms_per_review as f64 * (1.0 - f.speedup * k)).round() as i64,
                }
            }
        }
    }

    /// The answer to an item whose true label is `truth`, among `labels`: the truth with
    /// the reviewer's accuracy (one draw), otherwise another label — the other one of
    /// two without a further draw, else one drawn uniformly.
    pub fn answer(&mut self, truth: &str, labels: &[String], rng: &mut Rng) -> Answer {
        let now = self.current();
        let label = if rng.chance(now.accuracy) {
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
        self.session_answered += 1;
        self.busy_ms += now.ms_per_review;
        Answer {
            label,
            took_ms: now.ms_per_review,
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

    #[test]
    fn a_tiring_reviewer_slows_down_in_accuracy_and_speeds_up_after_the_onset() {
        let f = Fatigue {
            onset: 60,
            ramp: 20,
            floor: 0.70,
            speedup: 0.4,
        };
        let mut r = Reviewer::new(
            "r",
            "k",
            Profile {
                accuracy: 0.95,
                ms_per_review: 20_000,
            },
        )
        .with_fatigue(f);
        assert_eq!(
            (f.level(59), f.level(60), f.level(69), f.level(79), f.level(500)),
            (0.0, 0.05, 0.5, 1.0, 1.0)
        );
        let ls = labels(&["ham", "spam"]);
        let mut rng = Rng::new(11);
        let took: Vec<i64> = (0..100).map(|_| r.answer("spam", &ls, &mut rng).took_ms).collect();
        assert!(took[..60].iter().all(|t| *t == 20_000));
        assert_eq!((took[69], took[79], took[99]), (16_000, 12_000, 12_000));
        // Tired: right at the floor's rate.
        let right = (0..20_000)
            .filter(|_| r.answer("spam", &ls, &mut rng).label == "spam")
            .count();
        assert!((13_700..14_300).contains(&right), "{right}");
        // A break resets it.
        r.rest();
        assert_eq!(r.current().accuracy, 0.95);
        assert_eq!(r.answer("spam", &ls, &mut rng).took_ms, 20_000);
    }

    #[test]
    fn an_untiring_reviewer_keeps_their_profile() {
        let mut r = Reviewer::new(
            "r",
            "k",
            Profile {
                accuracy: 0.9,
                ms_per_review: 1_000,
            },
        );
        let mut rng = Rng::new(2);
        let ls = labels(&["ham", "spam"]);
        for _ in 0..1_000 {
            r.answer("ham", &ls, &mut rng);
        }
        assert_eq!(r.current(), r.profile);
        assert_eq!(r.session_answered, 1_000);
    }
}
