//! The task state machine: what happens to a task when a reviewer answers it.
//!
//! A task needs `overlap` independent answers. At that many, a `review` task resolves by
//! majority; a tie, or any escalation, opens an `adjudicate` task one tier up whose answer
//! is final. An `audit` task (a sampled auto decision) resolves with its one answer. A skip
//! puts the reviewer's slot back in the queue without that reviewer.

use serde::{Deserialize, Serialize};

use crate::consensus::{Scorer, Vote};
use crate::policy::MAX_TIER;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Review,
    Adjudicate,
    Audit,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Review => "review",
            Stage::Adjudicate => "adjudicate",
            Stage::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "review" => Some(Stage::Review),
            "adjudicate" => Some(Stage::Adjudicate),
            "audit" => Some(Stage::Audit),
            _ => None,
        }
    }
}

/// A reviewer's answer to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    Label(String),
    Escalate { reason: String },
    Skip { reason: String },
}

impl Answer {
    pub fn kind(&self) -> &'static str {
        match self {
            Answer::Label(_) => "label",
            Answer::Escalate { .. } => "escalate",
            Answer::Skip { .. } => "skip",
        }
    }

    pub fn label(&self) -> Option<&str> {
        match self {
            Answer::Label(l) => Some(l),
            _ => None,
        }
    }
}

/// Where a resolution came from, as the label feed reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Auto,
    Human,
    Adjudicated,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Auto => "auto",
            Source::Human => "human",
            Source::Adjudicated => "adjudicated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Source::Auto),
            "human" => Some(Source::Human),
            "adjudicated" => Some(Source::Adjudicated),
            _ => None,
        }
    }
}

/// What a task does after an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Fewer than `overlap` answers so far: keep waiting.
    Wait,
    /// A skip: the slot returns to the queue; the skipping reviewer will not get it again.
    Requeue,
    /// Too little agreement, and room for more: the task asks for one more reviewer.
    MoreReviewers,
    /// The item is resolved.
    Resolve {
        label: String,
        source: Source,
        method: &'static str,
        confidence: f64,
    },
    /// Disagreement or escalation: a new `adjudicate` task at `tier`.
    Adjudicate { tier: u8, reason: String },
}

/// How a `review` task's answers are judged: the scorer, the confidence a consensus
/// needs, and how many reviewers may be asked before adjudication (dynamic overlap).
#[derive(Debug, Clone, Copy)]
pub struct Rule<'a> {
    pub scorer: &'a Scorer,
    pub min_confidence: f64,
    pub max_overlap: u8,
    /// Reviewers whose votes weigh nothing (answers too fast to count, under pacing's
    /// `discount_too_fast`): their answers fill the overlap but decide nothing.
    pub discounted: &'a [i64],
}

impl Rule<'_> {
    /// Plain majority, no dynamic overlap.
    pub const MAJORITY: Rule<'static> = Rule {
        scorer: &Scorer::Majority,
        min_confidence: 0.0,
        max_overlap: 1,
        discounted: &[],
    };
}

/// The next step for a task at `stage` and `tier` that needs `overlap` answers, after
/// reviewer `new.0` answered `new.1`; `answers` are the task's earlier answers with their
/// reviewers (skips excluded).
pub fn after_answer(
    stage: Stage,
    tier: u8,
    overlap: u8,
    answers: &[(i64, Answer)],
    new: (i64, &Answer),
    rule: &Rule<'_>,
) -> Next {
    let up = tier.saturating_add(1).min(MAX_TIER);
    match new.1 {
        Answer::Skip { .. } => return Next::Requeue,
        Answer::Escalate { reason } => {
            return Next::Adjudicate {
                tier: up,
                reason: format!("escalated: {reason}"),
            };
        }
        Answer::Label(_) => {}
    }
    let label = new.1.label().unwrap_or_default().to_string();
    match stage {
        Stage::Adjudicate => Next::Resolve {
            label,
            source: Source::Adjudicated,
            method: "adjudication",
            confidence: 1.0,
        },
        Stage::Audit => {
            // An audit with overlap k waits for k answers; the majority decides, a tie
            // goes to adjudication.
            let all: Vec<&Answer> = answers.iter().map(|(_, a)| a).chain(std::iter::once(new.1)).collect();
            if all.len() < overlap as usize {
                return Next::Wait;
            }
            match crate::consensus::majority(all.iter().filter_map(|a| a.label())) {
                crate::consensus::Majority::Winner { label, confidence, .. } => Next::Resolve {
                    label,
                    source: Source::Human,
                    method: "audit",
                    confidence,
                },
                crate::consensus::Majority::Tie => Next::Adjudicate {
                    tier: up,
                    reason: "auditors disagreed".into(),
                },
            }
        }
        Stage::Review => {
            let all: Vec<(i64, &Answer)> = answers
                .iter()
                .map(|(r, a)| (*r, a))
                .chain(std::iter::once(new))
                .collect();
            if all.len() < overlap as usize {
                return Next::Wait;
            }
            if all.iter().any(|(_, a)| matches!(a, Answer::Escalate { .. })) {
                return Next::Adjudicate {
                    tier: up,
                    reason: "escalated".into(),
                };
            }
            let votes: Vec<Vote<'_>> = all
                .iter()
                .filter(|(r, _)| !rule.discounted.contains(r))
                .filter_map(|(r, a)| a.label().map(|l| Vote { reviewer: *r, label: l }))
                .collect();
            let verdict = rule.scorer.verdict(&votes);
            if votes.is_empty() && all.len() >= rule.max_overlap as usize {
                return Next::Adjudicate {
                    tier: up,
                    reason: "every answer was too fast to count".into(),
                };
            }
            match verdict {
                Some(v) if v.confidence >= rule.min_confidence => Next::Resolve {
                    label: v.label,
                    source: Source::Human,
                    method: v.method,
                    confidence: v.confidence,
                },
                _ if all.len() < rule.max_overlap as usize => Next::MoreReviewers,
                None => Next::Adjudicate {
                    tier: up,
                    reason: "reviewers disagreed".into(),
                },
                Some(v) => Next::Adjudicate {
                    tier: up,
                    reason: format!(
                        "consensus on '{}' only {:.2} confident (needs {:.2}) after {} reviewers",
                        v.label,
                        v.confidence,
                        rule.min_confidence,
                        all.len()
                    ),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Answer {
        Answer::Label(s.into())
    }

    fn next(stage: Stage, tier: u8, overlap: u8, earlier: &[(i64, Answer)], new: Answer) -> Next {
        after_answer(stage, tier, overlap, earlier, (99, &new), &Rule::MAJORITY)
    }

    #[test]
    fn review_waits_for_overlap_then_resolves_by_majority() {
        assert_eq!(next(Stage::Review, 1, 2, &[], l("a")), Next::Wait);
        assert_eq!(
            next(Stage::Review, 1, 2, &[(1, l("a"))], l("a")),
            Next::Resolve {
                label: "a".into(),
                source: Source::Human,
                method: "majority",
                confidence: 1.0
            }
        );
        assert!(matches!(
            next(Stage::Review, 1, 2, &[(1, l("a"))], l("b")),
            Next::Adjudicate { tier: 2, .. }
        ));
        assert!(matches!(
            next(Stage::Review, 1, 3, &[(1, l("a")), (2, l("b"))], l("b")),
            Next::Resolve { confidence, .. } if (confidence - 2.0 / 3.0).abs() < 1e-12
        ));
    }

    #[test]
    fn discounted_votes_fill_the_overlap_but_decide_nothing() {
        let rule = Rule {
            discounted: &[1],
            ..Rule::MAJORITY
        };
        // Reviewer 1's "a" weighs nothing: 99's "b" alone decides.
        let n = after_answer(Stage::Review, 1, 2, &[(1, l("a"))], (99, &l("b")), &rule);
        assert!(matches!(n, Next::Resolve { ref label, .. } if label == "b"), "{n:?}");
        // Nothing left to count and no more reviewers to ask: a senior reviewer decides.
        let n = after_answer(Stage::Review, 1, 1, &[], (1, &l("a")), &rule);
        assert!(
            matches!(n, Next::Adjudicate { tier: 2, ref reason } if reason.contains("too fast")),
            "{n:?}"
        );
        // With room under max_overlap, one more reviewer is asked.
        let more = Rule { max_overlap: 3, ..rule };
        let n = after_answer(Stage::Review, 1, 1, &[], (1, &l("a")), &more);
        assert_eq!(n, Next::MoreReviewers);
    }

    #[test]
    fn dynamic_overlap_asks_for_more_until_confident_or_the_cap() {
        let rule = Rule {
            scorer: &Scorer::Majority,
            min_confidence: 0.7,
            max_overlap: 4,
            discounted: &[],
        };
        let run = |earlier: &[(i64, Answer)], new: Answer| after_answer(Stage::Review, 1, 2, earlier, (9, &new), &rule);
        assert_eq!(
            run(&[(1, l("a"))], l("b")),
            Next::MoreReviewers,
            "a 1-1 tie asks a third reviewer"
        );
        assert_eq!(
            run(&[(1, l("a")), (2, l("b"))], l("a")),
            Next::MoreReviewers,
            "2 of 3 is below 0.7"
        );
        assert!(
            matches!(run(&[(1, l("a")), (2, l("b")), (3, l("a"))], l("a")), Next::Resolve { confidence, .. } if confidence == 0.75)
        );
        assert!(
            matches!(
                run(&[(1, l("a")), (2, l("b")), (3, l("a"))], l("b")),
                Next::Adjudicate { tier: 2, .. }
            ),
            "at max_overlap without confidence: adjudicate"
        );
        assert!(matches!(run(&[(1, l("a"))], l("a")), Next::Resolve { .. }));
    }

    #[test]
    fn escalation_goes_one_tier_up_at_once_and_stops_at_the_top() {
        let esc = || Answer::Escalate {
            reason: "unsure".into(),
        };
        assert!(matches!(
            next(Stage::Review, 1, 3, &[], esc()),
            Next::Adjudicate { tier: 2, .. }
        ));
        assert!(matches!(
            next(Stage::Adjudicate, 2, 1, &[], esc()),
            Next::Adjudicate { tier: 3, .. }
        ));
        assert!(
            matches!(next(Stage::Adjudicate, MAX_TIER, 1, &[], esc()), Next::Adjudicate { tier, .. } if tier == MAX_TIER)
        );
    }

    #[test]
    fn skip_requeues_and_final_stages_resolve() {
        assert_eq!(
            next(Stage::Review, 1, 1, &[], Answer::Skip { reason: "x".into() }),
            Next::Requeue
        );
        assert!(matches!(
            next(Stage::Adjudicate, 2, 1, &[], l("b")),
            Next::Resolve {
                source: Source::Adjudicated,
                ..
            }
        ));
        assert!(matches!(
            next(Stage::Audit, 1, 1, &[], l("b")),
            Next::Resolve { method: "audit", .. }
        ));
    }
}
