//! The task state machine: what happens to a task when a reviewer answers it.
//!
//! A task needs `overlap` independent answers. At that many, a `review` task resolves by
//! majority; a tie, or any escalation, opens an `adjudicate` task one tier up whose answer
//! is final. An `audit` task (a sampled auto decision) resolves with its one answer. A skip
//! puts the reviewer's slot back in the queue without that reviewer.
//!
//! In a multi-label project ([`Rule::multi`]) each answer is a set of labels (its canonical
//! encoding, see [`crate::label`]); a `review` task's answers are decided per label: each
//! label is present or absent by the rule's scorer applied to that label's yes/no votes,
//! and the resolution is the set of present labels, as sure as its least sure label. A
//! label whose vote ties, or is below `min_confidence`, is a disagreement like a
//! single-label one (one more reviewer under `max_overlap`, else adjudication).

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
    /// A multi-label answer as the reviewer sent it, before its project's labels checked
    /// it ([`crate::review::check_answer`] turns it into the canonical `Label`). Never
    /// judged or stored as such.
    Labels(Vec<String>),
    Escalate {
        reason: String,
    },
    Skip {
        reason: String,
    },
}

impl Answer {
    pub fn kind(&self) -> &'static str {
        match self {
            Answer::Label(_) | Answer::Labels(_) => "label",
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
    /// A multi-label project's labels, in order: votes are label sets, decided per label.
    pub multi: Option<&'a [String]>,
}

impl Rule<'_> {
    /// Plain majority, no dynamic overlap.
    pub const MAJORITY: Rule<'static> = Rule {
        scorer: &Scorer::Majority,
        min_confidence: 0.0,
        max_overlap: 1,
        discounted: &[],
        multi: None,
    };
}

/// Why a multi-label consensus failed: the first label (in project order) whose vote
/// tied (`None`) or was too weak (its verdict).
struct LabelDisagreement {
    label: String,
    verdict: Option<crate::consensus::Verdict>,
}

/// The per-label consensus of `votes` (each a set's canonical encoding): the set of
/// labels each present by `scorer` on its yes/no votes, with the smallest per-label
/// confidence and the scorer's method. Fails on the first label that ties or falls below
/// `min_confidence`.
fn multi_verdict(
    scorer: &Scorer,
    votes: &[Vote<'_>],
    labels: &[String],
    min_confidence: f64,
) -> Result<crate::consensus::Verdict, LabelDisagreement> {
    let sets: Vec<(i64, Vec<String>)> = votes
        .iter()
        .map(|v| (v.reviewer, crate::label::decode_set(v.label).unwrap_or_default()))
        .collect();
    let mut present = Vec::new();
    let mut confidence = 1.0f64;
    let mut method = "majority";
    for label in labels {
        let yes_no: Vec<Vote<'_>> = sets
            .iter()
            .map(|(r, set)| Vote {
                reviewer: *r,
                label: if set.contains(label) { "yes" } else { "no" },
            })
            .collect();
        match scorer.verdict(&yes_no) {
            Some(v) if v.confidence >= min_confidence => {
                if v.label == "yes" {
                    present.push(label.as_str());
                }
                confidence = confidence.min(v.confidence);
                method = v.method;
            }
            verdict => {
                return Err(LabelDisagreement {
                    label: label.clone(),
                    verdict,
                });
            }
        }
    }
    Ok(crate::consensus::Verdict {
        label: serde_json::to_string(&present).expect("a list of strings serialises"),
        confidence,
        method,
    })
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
        Answer::Label(_) | Answer::Labels(_) => {}
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
            if votes.is_empty() && all.len() >= rule.max_overlap as usize {
                return Next::Adjudicate {
                    tier: up,
                    reason: "every answer was too fast to count".into(),
                };
            }
            if let Some(labels) = rule.multi {
                return match multi_verdict(rule.scorer, &votes, labels, rule.min_confidence) {
                    Ok(v) => Next::Resolve {
                        label: v.label,
                        source: Source::Human,
                        method: v.method,
                        confidence: v.confidence,
                    },
                    _ if all.len() < rule.max_overlap as usize => Next::MoreReviewers,
                    Err(d) => Next::Adjudicate {
                        tier: up,
                        reason: match d.verdict {
                            None => format!("reviewers disagreed on '{}'", d.label),
                            Some(v) => format!(
                                "'{}' {} only {:.2} confident (needs {:.2}) after {} reviewers",
                                d.label,
                                if v.label == "yes" { "present" } else { "absent" },
                                v.confidence,
                                rule.min_confidence,
                                all.len()
                            ),
                        },
                    },
                };
            }
            match rule.scorer.verdict(&votes) {
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
            multi: None,
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

    fn set(v: &[&str]) -> Answer {
        Answer::Label(serde_json::to_string(v).unwrap())
    }

    const LABELS: &[&str] = &["hate", "spam", "violence"];

    fn multi_rule<'a>(labels: &'a [String], scorer: &'a Scorer, min_confidence: f64, max_overlap: u8) -> Rule<'a> {
        Rule {
            scorer,
            min_confidence,
            max_overlap,
            discounted: &[],
            multi: Some(labels),
        }
    }

    #[test]
    fn multi_label_answers_are_decided_label_by_label() {
        let labels: Vec<String> = LABELS.iter().map(|s| s.to_string()).collect();
        let rule = multi_rule(&labels, &Scorer::Majority, 0.0, 2);
        let run = |earlier: &[(i64, Answer)], new: Answer| after_answer(Stage::Review, 1, 2, earlier, (9, &new), &rule);
        // Agreeing sets resolve to that set, in project order.
        assert_eq!(
            run(&[(1, set(&["hate", "violence"]))], set(&["hate", "violence"])),
            Next::Resolve {
                label: r#"["hate","violence"]"#.into(),
                source: Source::Human,
                method: "majority",
                confidence: 1.0
            }
        );
        // "None of these" twice is a resolution too: the empty set.
        assert!(matches!(run(&[(1, set(&[]))], set(&[])), Next::Resolve { label, .. } if label == "[]"));
        // Agree on hate, disagree on violence: adjudication naming violence.
        assert_eq!(
            run(&[(1, set(&["hate"]))], set(&["hate", "violence"])),
            Next::Adjudicate {
                tier: 2,
                reason: "reviewers disagreed on 'violence'".into()
            }
        );
        // With room under max_overlap, the same disagreement asks one more reviewer, whose
        // vote settles violence 2 to 1 (confidence 2/3, the least sure label's).
        let wide = multi_rule(&labels, &Scorer::Majority, 0.0, 3);
        let n = after_answer(
            Stage::Review,
            1,
            2,
            &[(1, set(&["hate"]))],
            (9, &set(&["hate", "violence"])),
            &wide,
        );
        assert_eq!(n, Next::MoreReviewers);
        let n = after_answer(
            Stage::Review,
            1,
            3,
            &[(1, set(&["hate"])), (2, set(&["hate", "violence"]))],
            (9, &set(&["hate", "violence"])),
            &wide,
        );
        assert!(
            matches!(&n, Next::Resolve { label, confidence, .. } if label == r#"["hate","violence"]"# && (confidence - 2.0 / 3.0).abs() < 1e-12),
            "{n:?}"
        );
        // A label below min_confidence at the cap is named with its side and share.
        let strict = multi_rule(&labels, &Scorer::Majority, 0.9, 3);
        let n = after_answer(
            Stage::Review,
            1,
            3,
            &[(1, set(&["hate"])), (2, set(&["hate", "spam"]))],
            (9, &set(&["hate"])),
            &strict,
        );
        assert!(
            matches!(&n, Next::Adjudicate { reason, .. } if reason.starts_with("'spam' absent only 0.67 confident")),
            "{n:?}"
        );
    }

    #[test]
    fn weighted_multi_label_votes_follow_each_reviewers_weight_per_label() {
        let labels: Vec<String> = LABELS.iter().map(|s| s.to_string()).collect();
        // Reviewer 1 is reliable (0.9), 9 is not (0.2): 1's set wins every label they
        // disagree on.
        let scorer = Scorer::Weighted([(1, 0.9), (9, 0.2)].into());
        let rule = multi_rule(&labels, &scorer, 0.0, 2);
        let n = after_answer(
            Stage::Review,
            1,
            2,
            &[(1, set(&["spam"]))],
            (9, &set(&["hate", "spam"])),
            &rule,
        );
        assert!(
            matches!(&n, Next::Resolve { label, method: "weighted", confidence, .. } if label == r#"["spam"]"# && (confidence - 0.9 / 1.1).abs() < 1e-12),
            "{n:?}"
        );
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
