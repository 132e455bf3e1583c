//! What an answer does, decided once for every backend.
//!
//! A backend loads what an answer needs (the task, its earlier answers, the reviewers'
//! gold records when the method weighs them, the item's current label when the answer
//! resolves it), asks this module for a [`Plan`], and writes the plan in the transaction
//! that stores the answer. Consensus, escalation, audits, gold scoring and holds live here
//! and in [`crate::task`]; a backend never decides them. Nothing here reads the clock or a
//! database: `now` and every loaded row are arguments, so each outcome is unit-tested
//! without one.
//!
//! The flow for a regular task: [`judge`] (which next step the answers call for), then —
//! with the item's state if that step resolves the item — [`plan`]. For a gold task:
//! [`gold_plan`], and after the backend has counted the answer in the reviewer's record,
//! [`gold_scored`] (the `gold.answered` event and, below the bar, a hold).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::consensus::{DsModel, Scorer};
use crate::event::{self, Event};
use crate::fields::{FieldSchema, Fields};
use crate::policy::{ConsensusMethod, ConsensusSpec, PacingSpec, QualitySpec};
use crate::task::{self, Answer, Next, Source, Stage};
use crate::{LabelSet, Route, ValidationError, quality};

/// How an answer is judged: the consensus rule, the fitted Dawid–Skene model when the
/// method uses one (majority until the first fit), and the quality bar for gold answers.
#[derive(Debug, Clone, Default)]
pub struct Judging {
    pub consensus: ConsensusSpec,
    pub ds_model: Option<Arc<DsModel>>,
    pub quality: Option<QualitySpec>,
    /// Pacing: which answers are too fast, and whether they weigh nothing in consensus.
    pub pacing: Option<PacingSpec>,
    /// The project's SLAs: an adjudication task gets its queue's deadline.
    pub slas: Arc<crate::sla::Slas>,
    /// The project's answer fields (none: an answer carries no fields).
    pub fields: Arc<FieldSchema>,
    /// A multi-label project's labels, in order (`None`: single-label). Answers are then
    /// label sets, decided per label ([`task::Rule::multi`]); Dawid–Skene falls back to
    /// per-label majority there (its fit is over single labels).
    pub multi: Option<Arc<[String]>>,
}

impl Judging {
    /// Whether `answer`, given `time_on_task_ms` after its lease was granted, is faster
    /// than pacing's `min_seconds_per_task` (only labels count: a quick skip is no harm).
    pub fn too_fast(&self, answer: &Answer, time_on_task_ms: i64) -> bool {
        matches!(answer, Answer::Label(_) | Answer::Labels(_))
            && self
                .pacing
                .and_then(|p| p.min_seconds_per_task)
                .is_some_and(|s| (time_on_task_ms as f64) < s * 1000.0)
    }

    /// Whether too-fast answers weigh nothing in consensus.
    pub fn discounts_too_fast(&self) -> bool {
        self.pacing.is_some_and(|p| p.discount_too_fast)
    }

    /// The method a single answer would be resolved by under this rule: Dawid–Skene falls
    /// back to majority until its first fit (as `Scorer` does).
    pub fn method(&self) -> &'static str {
        match self.consensus.method {
            ConsensusMethod::Majority => "majority",
            ConsensusMethod::Weighted => "weighted",
            ConsensusMethod::DawidSkene if self.ds_model.is_some() && self.multi.is_none() => "dawid_skene",
            ConsensusMethod::DawidSkene => "majority",
        }
    }

    /// Whether [`judge`] needs the voters' gold records (reliability-weighted votes).
    pub fn weighs_reviewers(&self) -> bool {
        self.consensus.method == ConsensusMethod::Weighted
    }

    /// The scorer for a task's votes; `gold_records` maps a voter to (gold answers, gold
    /// correct) — a voter missing there has no gold record.
    pub fn scorer(&self, gold_records: &HashMap<i64, (u64, u64)>, voters: &[i64]) -> Scorer {
        match self.consensus.method {
            ConsensusMethod::Majority => Scorer::Majority,
            ConsensusMethod::DawidSkene if self.multi.is_some() => Scorer::Majority,
            ConsensusMethod::DawidSkene => self
                .ds_model
                .clone()
                .map(Scorer::DawidSkene)
                .unwrap_or(Scorer::Majority),
            ConsensusMethod::Weighted => Scorer::Weighted(
                voters
                    .iter()
                    .map(|v| {
                        let (answered, correct) = gold_records.get(v).copied().unwrap_or((0, 0));
                        (*v, quality::reliability(correct, answered))
                    })
                    .collect(),
            ),
        }
    }
}

/// An item's final label and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// The label; in a multi-label project the set's canonical encoding (see
    /// [`crate::label`]).
    pub label: String,
    /// A multi-label project's resolution by its reviewers: the set of present labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    pub source: Source,
    pub method: String,
    pub confidence: f64,
    pub reviewers: Vec<String>,
    pub resolved_at: i64,
}

/// What a reviewer is told about their answer (and told again for a retried `review_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewResult {
    pub review_id: String,
    /// What the answer did: `waiting` (more answers needed), `resolved`, `adjudicate`
    /// (a new task one tier up), `requeued` (a skip), `confirmed` or `corrected` (an audit
    /// that agreed or disagreed with the auto label).
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// The answer left too little agreement and the task asked for one more reviewer
    /// (the reviewer sees `waiting`, as for any answer that does not resolve).
    #[serde(skip)]
    pub more_reviewers: bool,
    /// The answer this call stored (its task's tier, its time on task), for the server's
    /// metrics; `None` when a retried `review_id` returns the stored result, so that a
    /// retry is not counted twice. Never on the wire or in the stored result.
    #[serde(skip)]
    pub stored: Option<StoredAnswer>,
}

/// What an answer's metrics need to know of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredAnswer {
    pub tier: u8,
    /// From the lease's grant to the answer, by the server's clock.
    pub time_on_task_ms: i64,
    /// Faster than pacing's minimum (stored with the review).
    pub too_fast: bool,
    /// The task's project.
    pub project_id: i64,
}

impl ReviewResult {
    /// Whether this answer put claimable work in a queue (a skip, an escalation, a slot
    /// for one more reviewer).
    pub fn freed_work(&self) -> bool {
        self.more_reviewers || matches!(self.outcome.as_str(), "requeued" | "adjudicate")
    }
}

/// A task as the backend loaded it.
#[derive(Debug, Clone)]
pub struct TaskState {
    pub id: i64,
    pub project_id: i64,
    pub stage: Stage,
    pub queue: String,
    pub tier: u8,
    pub priority: i32,
    pub overlap: u8,
    pub gold: bool,
}

/// An earlier answer on the task that was not a skip, in the order given.
#[derive(Debug, Clone)]
pub struct Prior {
    pub reviewer_id: i64,
    pub reviewer: String,
    pub answer: Answer,
    /// It was stored `too_fast`.
    pub too_fast: bool,
    /// Its checked answer fields (empty when none were given).
    pub fields: Fields,
}

/// The answer being stored.
#[derive(Debug, Clone, Copy)]
pub struct Answering<'a> {
    pub review_id: &'a str,
    pub lease_id: i64,
    pub reviewer_id: i64,
    pub reviewer: &'a str,
    pub answer: &'a Answer,
    pub failure_category: Option<&'a str>,
    /// When the lease was granted: time on task is measured from it.
    pub granted_at: i64,
    pub now: i64,
    /// Faster than pacing allows ([`Judging::too_fast`]).
    pub too_fast: bool,
    /// The answer's fields, checked by [`check_fields`].
    pub fields: &'a Fields,
}

/// The item, as it stands, when an answer resolves it.
#[derive(Debug, Clone)]
pub struct ItemState {
    pub resolved_label: Option<String>,
    /// The item was decided `auto` (so its tasks are audits, or adjudications of one).
    pub was_auto: bool,
}

/// How the answering lease ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEnd {
    Answered,
    Skipped,
}

impl LeaseEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseEnd::Answered => "answered",
            LeaseEnd::Skipped => "skipped",
        }
    }
}

/// What happens to the answered task's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskChange {
    /// The answer is counted; the task stays open (`answered + 1`).
    Counted,
    /// A skip: the reviewer's slot goes back to the queue (`available + 1`).
    SlotBack,
    /// Too little agreement: the answer is counted and the task takes one more reviewer
    /// (`answered + 1`, `overlap + 1`, `available + 1`).
    MoreReviewers,
    /// The task closes (`state = done`, `available = 0`); `counted`: the answer is counted
    /// by the same write. With `others_may_hold`, other reviewers' active leases on it end
    /// (`lease.cancelled` each); with an overlap of 1 the answering lease was the only one.
    Close { counted: bool, others_may_hold: bool },
}

/// An `adjudicate` task to open, with the event written on it.
#[derive(Debug, Clone)]
pub struct Escalation {
    pub route: Route,
    pub reason: String,
    pub event: Event,
}

/// Everything an answer changes, for the backend to write in order: the lease, the task,
/// the escalation, the item and its label-feed entry, `events` (on the answered task), and
/// last the answer itself with its `review.submitted` event ([`Plan::submitted`]).
#[derive(Debug, Clone)]
pub struct Plan {
    pub result: ReviewResult,
    pub lease: LeaseEnd,
    pub task: TaskChange,
    pub escalation: Option<Escalation>,
    /// The item's new resolution (`resolved_label`, `resolution`, `resolved_at`).
    pub resolve_item: Option<Resolution>,
    /// A label-feed entry: the label and its source.
    pub feed: Option<(String, Source)>,
    /// The project is multi-label: events carry the answer's and the resolution's set.
    pub multi: bool,
    /// The label-feed entry's resolved fields, when the project declares answer fields
    /// ([`FieldSchema::resolve`] over the resolving task's label answers).
    pub feed_fields: Option<Fields>,
    pub events: Vec<Event>,
}

/// Checks a label answer against the project's labels and mode, and returns it as it is
/// judged and stored: a multi-label answer (`labels`) becomes its canonical encoding.
/// `label` in a multi-label project is refused naming `label`, `labels` in a single-label
/// one naming `labels`; an unknown or repeated label names `labels[i]`.
pub fn check_answer(labels: &[String], judging: &Judging, answer: Answer) -> Result<Answer, ValidationError> {
    match (answer, judging.multi.is_some()) {
        (Answer::Label(l), false) => {
            LabelSet::parse(labels)?.answer("label", &l)?;
            Ok(Answer::Label(l))
        }
        (Answer::Labels(set), true) => Ok(Answer::Label(LabelSet::parse(labels)?.answer_set("labels", &set)?)),
        (Answer::Label(_), true) => Err(ValidationError::new(
            "label",
            "this project is multi-label: answer with labels: [..] (an empty list is none of these)",
        )),
        (Answer::Labels(_), false) => Err(ValidationError::new(
            "labels",
            "this project is single-label: answer with label",
        )),
        (other, _) => Ok(other),
    }
}

/// The set a multi-label project's event carries for `label` (`None` when single-label).
fn event_labels(multi: bool, label: &str) -> Option<Vec<String>> {
    multi.then(|| crate::label::decode_set(label).unwrap_or_default())
}

/// Checks an answer's `fields` (the JSON object sent, if any) against the project's
/// schema in `judging`: only a label answer carries fields, and a required field must be
/// there. Errors name `fields.<name>`; nothing has been written when they are returned.
pub fn check_fields(
    judging: &Judging,
    answer: &Answer,
    fields: Option<&serde_json::Value>,
) -> Result<Fields, ValidationError> {
    match answer {
        Answer::Label(l) => {
            let named = crate::label::named(l, judging.multi.is_some());
            judging
                .fields
                .check(fields, &named.iter().map(String::as_str).collect::<Vec<_>>())
        }
        _ if fields.is_some_and(|f| !f.is_null()) => Err(ValidationError::new(
            "fields",
            "fields go with a label answer, not an escalation or a skip",
        )),
        _ => Ok(Fields::new()),
    }
}

/// The fields an item resolved by this answer gets: `None` when the project declares no
/// fields, else [`FieldSchema::resolve`] over the task's label answers (earlier, then
/// this one).
fn resolved_fields(earlier: &[Prior], a: &Answering<'_>, judging: &Judging) -> Option<Fields> {
    if judging.fields.is_empty() {
        return None;
    }
    let answers: Vec<&Fields> = earlier
        .iter()
        .filter(|p| matches!(p.answer, Answer::Label(_)))
        .map(|p| &p.fields)
        .chain(matches!(a.answer, Answer::Label(_)).then_some(a.fields))
        .collect();
    Some(judging.fields.resolve(&answers))
}

/// The next step for a regular task after this answer. `gold_records` is read only when
/// [`Judging::weighs_reviewers`].
pub fn judge(
    task: &TaskState,
    earlier: &[Prior],
    a: &Answering<'_>,
    judging: &Judging,
    gold_records: &HashMap<i64, (u64, u64)>,
) -> Next {
    let prior: Vec<(i64, Answer)> = earlier.iter().map(|p| (p.reviewer_id, p.answer.clone())).collect();
    let voters: Vec<i64> = prior.iter().map(|(v, _)| *v).chain([a.reviewer_id]).collect();
    let scorer = judging.scorer(gold_records, &voters);
    let discounted: Vec<i64> = if judging.discounts_too_fast() {
        earlier
            .iter()
            .filter(|p| p.too_fast)
            .map(|p| p.reviewer_id)
            .chain(a.too_fast.then_some(a.reviewer_id))
            .collect()
    } else {
        Vec::new()
    };
    let rule = task::Rule {
        scorer: &scorer,
        min_confidence: judging.consensus.min_confidence,
        max_overlap: judging.consensus.max_overlap,
        discounted: &discounted,
        multi: judging.multi.as_deref(),
    };
    task::after_answer(
        task.stage,
        task.tier,
        task.overlap,
        &prior,
        (a.reviewer_id, a.answer),
        &rule,
    )
}

/// Whether `next` resolves the item, so that [`plan`] needs its [`ItemState`].
pub fn resolves(next: &Next) -> bool {
    matches!(next, Next::Resolve { .. })
}

/// The plan for a regular task's answer, after [`judge`] chose `next`. `item` is required
/// when `next` resolves (see [`resolves`]); an adjudication task gets the deadline of its
/// queue in `judging`'s SLAs.
pub fn plan(
    task: &TaskState,
    earlier: &[Prior],
    a: &Answering<'_>,
    next: Next,
    item: Option<&ItemState>,
    judging: &Judging,
) -> Plan {
    let skip = matches!(a.answer, Answer::Skip { .. });
    let close = TaskChange::Close {
        counted: !skip,
        others_may_hold: task.overlap > 1,
    };
    let mut p = Plan {
        result: result(task, a, "waiting", None),
        lease: if skip { LeaseEnd::Skipped } else { LeaseEnd::Answered },
        task: if skip {
            TaskChange::SlotBack
        } else {
            TaskChange::Counted
        },
        escalation: None,
        resolve_item: None,
        feed: None,
        multi: judging.multi.is_some(),
        feed_fields: None,
        events: Vec::new(),
    };
    match next {
        Next::Wait => {}
        Next::Requeue => p.result.outcome = "requeued".into(),
        Next::MoreReviewers => {
            p.task = TaskChange::MoreReviewers;
            p.result.more_reviewers = true;
            p.events.push(Event::TaskOverlapIncreased(event::TaskOverlapIncreased {
                overlap: task.overlap + 1,
                reason: "consensus below min_confidence".into(),
            }));
        }
        Next::Adjudicate { tier, reason } => {
            p.task = close;
            p.result.outcome = "adjudicate".into();
            p.escalation = Some(Escalation {
                route: Route {
                    queue: task.queue.clone(),
                    tier,
                    priority: task.priority,
                    overlap: 1,
                    sla_seconds: None,
                    warn_before_seconds: None,
                }
                .with_sla(&judging.slas, None),
                event: Event::TaskEscalated(event::TaskEscalated {
                    from_task: task.id,
                    tier,
                    reason: reason.clone(),
                }),
                reason,
            });
        }
        Next::Resolve {
            label,
            source,
            method,
            confidence,
        } => {
            p.task = close;
            let res = Resolution {
                labels: event_labels(p.multi, &label),
                label: label.clone(),
                source,
                method: method.to_string(),
                confidence,
                reviewers: resolvers(earlier, a.reviewer),
                resolved_at: a.now,
            };
            let (current, was_auto) = item.map_or((None, false), |i| (i.resolved_label.clone(), i.was_auto));
            // An audit, or the adjudication of a contested audit (only an auto decision's
            // audit has tasks on an auto item): it confirms or corrects the auto label.
            let audit = task.stage == Stage::Audit || (task.stage == Stage::Adjudicate && was_auto);
            if audit && current.as_deref() == Some(label.as_str()) {
                p.result.outcome = "confirmed".into();
                p.events
                    .push(Event::AuditConfirmed(event::AuditConfirmed { label: label.clone() }));
                // A human has now verified the label: the feed says so (and the model may
                // learn from it).
                p.feed = Some((label, Source::Human));
                p.feed_fields = resolved_fields(earlier, a, judging);
            } else {
                p.result.outcome = if audit { "corrected" } else { "resolved" }.into();
                let resolved = event::ItemResolved {
                    labels: event_labels(p.multi, &label),
                    label: label.clone(),
                    previous: current,
                    source,
                    method: method.to_string(),
                    confidence,
                    reviewers: res.reviewers.clone(),
                };
                p.events.push(if audit {
                    Event::ItemCorrected(resolved)
                } else {
                    Event::ItemResolved(resolved)
                });
                p.feed = Some((label, source));
                p.feed_fields = resolved_fields(earlier, a, judging);
                p.resolve_item = Some(res.clone());
            }
            p.result.resolution = Some(res);
        }
    }
    p
}

/// The plan for an answer to a gold task: scored against the known label (by
/// [`gold_scored`], once the backend has counted it), never resolved or fed to the label
/// feed, and answered exactly as a regular task of the same overlap would be. Returns the
/// plan and, for a label, whether it was right.
pub fn gold_plan(task: &TaskState, a: &Answering<'_>, gold_label: &str, judging: &Judging) -> (Plan, Option<bool>) {
    let skip = matches!(a.answer, Answer::Skip { .. });
    let (outcome, resolution, correct) = match a.answer {
        Answer::Skip { .. } => ("requeued", None, None),
        Answer::Escalate { .. } => ("adjudicate", None, None),
        Answer::Labels(_) => unreachable!("check_answer turns a set of labels into its encoding before judging"),
        Answer::Label(l) if task.overlap > 1 => ("waiting", None, Some(l == gold_label)),
        Answer::Label(l) => (
            "resolved",
            Some(Resolution {
                labels: event_labels(judging.multi.is_some(), l),
                label: l.clone(),
                source: Source::Human,
                method: judging.method().to_string(),
                confidence: 1.0,
                reviewers: vec![a.reviewer.to_string()],
                resolved_at: a.now,
            }),
            Some(l == gold_label),
        ),
    };
    let p = Plan {
        result: result(task, a, outcome, resolution),
        lease: if skip { LeaseEnd::Skipped } else { LeaseEnd::Answered },
        // A gold task exists for one reviewer: any answer closes it.
        task: TaskChange::Close {
            counted: false,
            others_may_hold: task.overlap > 1,
        },
        escalation: None,
        resolve_item: None,
        feed: None,
        multi: judging.multi.is_some(),
        feed_fields: None,
        events: Vec::new(),
    };
    (p, correct)
}

/// A reviewer's gold record in a project, as counted with the current answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoldRecord {
    pub answers: u64,
    pub correct: u64,
    pub held: bool,
}

/// What a scored gold answer writes: its `gold.answered` event and, when the record falls
/// below the project's bar (and the reviewer is not held already), the hold's reason and
/// its `reviewer.held` event.
pub fn gold_scored(
    a: &Answering<'_>,
    correct: bool,
    record: GoldRecord,
    quality: Option<&QualitySpec>,
) -> (Event, Option<(String, Event)>) {
    let answered = Event::GoldAnswered(event::GoldAnswered {
        reviewer_id: a.reviewer_id,
        correct,
        gold_answers: record.answers,
        gold_correct: record.correct,
    });
    let hold = quality
        .filter(|q| {
            !record.held && quality::should_hold(record.correct, record.answers, q.min_accuracy, u64::from(q.min_gold))
        })
        .map(|q| {
            let reason = format!(
                "gold accuracy {}/{}: its 95% upper bound is below {}",
                record.correct, record.answers, q.min_accuracy
            );
            let held = Event::ReviewerHeld(event::ReviewerHeld {
                reviewer_id: a.reviewer_id,
                reviewer: a.reviewer.to_string(),
                reason: reason.clone(),
            });
            (reason, held)
        });
    (answered, hold)
}

fn result(task: &TaskState, a: &Answering<'_>, outcome: &str, resolution: Option<Resolution>) -> ReviewResult {
    ReviewResult {
        review_id: a.review_id.to_string(),
        outcome: outcome.to_string(),
        resolution,
        more_reviewers: false,
        stored: Some(StoredAnswer {
            tier: task.tier,
            time_on_task_ms: a.now - a.granted_at,
            too_fast: a.too_fast,
            project_id: task.project_id,
        }),
    }
}

/// The reviewers a resolution names: those who gave a label earlier, by name, then the
/// answering reviewer if not among them.
fn resolvers(earlier: &[Prior], me: &str) -> Vec<String> {
    let mut names: Vec<String> = earlier
        .iter()
        .filter(|p| matches!(p.answer, Answer::Label(_)))
        .map(|p| p.reviewer.clone())
        .collect();
    names.sort_unstable();
    names.dedup();
    if !names.iter().any(|n| n == me) {
        names.push(me.to_string());
    }
    names
}

impl Plan {
    /// The answer's own `review.submitted` event, which reports the outcome; written last.
    pub fn submitted(&self, a: &Answering<'_>) -> Event {
        let (label, reason) = match a.answer {
            Answer::Label(l) => (Some(l.clone()), None),
            Answer::Labels(set) => (
                Some(serde_json::to_string(set).expect("a list of strings serialises")),
                None,
            ),
            Answer::Escalate { reason } | Answer::Skip { reason } => (None, Some(reason.clone())),
        };
        Event::ReviewSubmitted(event::ReviewSubmitted {
            review_id: a.review_id.to_string(),
            lease_id: a.lease_id,
            answer: a.answer.kind().to_string(),
            labels: label.as_deref().and_then(|l| event_labels(self.multi, l)),
            label,
            reason,
            failure_category: a.failure_category.map(str::to_string),
            outcome: self.result.outcome.clone(),
            time_on_task_ms: a.now - a.granted_at,
            fields: (!a.fields.is_empty()).then(|| a.fields.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Answer {
        Answer::Label(s.into())
    }

    fn task(stage: Stage, overlap: u8) -> TaskState {
        TaskState {
            id: 7,
            project_id: 1,
            stage,
            queue: "standard".into(),
            tier: 1,
            priority: 5,
            overlap,
            gold: false,
        }
    }

    fn prior(id: i64, name: &str, answer: Answer) -> Prior {
        Prior {
            reviewer_id: id,
            reviewer: name.into(),
            answer,
            too_fast: false,
            fields: Fields::new(),
        }
    }

    fn answering(answer: &Answer) -> Answering<'_> {
        Answering {
            review_id: "r9",
            lease_id: 40,
            reviewer_id: 9,
            reviewer: "bea",
            answer,
            failure_category: None,
            granted_at: 1_000,
            now: 4_000,
            too_fast: false,
            fields: &crate::fields::NO_FIELDS,
        }
    }

    /// judge, then plan with the item an auto or a reviewed one.
    fn answer(t: &TaskState, earlier: &[Prior], ans: Answer, judging: &Judging, item: Option<ItemState>) -> Plan {
        let a = answering(&ans);
        let next = judge(t, earlier, &a, judging, &HashMap::new());
        let item = resolves(&next).then(|| {
            item.unwrap_or(ItemState {
                resolved_label: None,
                was_auto: false,
            })
        });
        plan(t, earlier, &a, next, item.as_ref(), judging)
    }

    fn kinds(p: &Plan) -> Vec<&'static str> {
        p.events.iter().map(Event::kind).collect()
    }

    #[test]
    fn two_reviewers_who_agree_resolve_the_item() {
        let t = task(Stage::Review, 2);
        let p = answer(&t, &[prior(3, "ann", l("spam"))], l("spam"), &Judging::default(), None);
        assert_eq!(p.result.outcome, "resolved");
        assert_eq!(
            p.task,
            TaskChange::Close {
                counted: true,
                others_may_hold: true
            }
        );
        let res = p.resolve_item.clone().expect("the item is resolved");
        assert_eq!(res.reviewers, vec!["ann", "bea"]);
        assert_eq!(
            (res.method.as_str(), res.confidence, res.resolved_at),
            ("majority", 1.0, 4_000)
        );
        assert_eq!(p.feed, Some(("spam".into(), Source::Human)));
        assert_eq!(kinds(&p), vec![Event::ITEM_RESOLVED]);
        match p.submitted(&answering(&l("spam"))) {
            Event::ReviewSubmitted(s) => {
                assert_eq!((s.outcome.as_str(), s.time_on_task_ms), ("resolved", 3_000));
                assert_eq!(s.label.as_deref(), Some("spam"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_resolution_feeds_the_answers_resolved_fields() {
        use crate::fields::FieldValue;
        use serde_json::json;
        let labels = LabelSet::parse(&["ham".into(), "spam".into()]).unwrap();
        let schema = FieldSchema::parse(
            &json!([{"name": "severity", "type": "enum", "values": ["low", "high"], "required": true,
                     "when_labels": ["spam"]},
                    {"name": "score", "type": "number"},
                    {"name": "note", "type": "text"}]),
            &labels,
        )
        .unwrap();
        let judging = Judging {
            fields: Arc::new(schema),
            ..Judging::default()
        };
        let check = |v: serde_json::Value, label: &str| check_fields(&judging, &l(label), Some(&v)).unwrap();
        // A required field missing for its label, and fields on a skip, are refused.
        let e = check_fields(&judging, &l("spam"), Some(&json!({"score": 1}))).unwrap_err();
        assert_eq!(e.field, "fields.severity");
        let skip = Answer::Skip { reason: String::new() };
        assert_eq!(
            check_fields(&judging, &skip, Some(&json!({}))).unwrap_err().field,
            "fields"
        );
        assert!(check_fields(&judging, &skip, None).unwrap().is_empty());
        let mut earlier = vec![prior(3, "ann", l("spam")), prior(4, "cal", l("spam"))];
        earlier[0].fields = check(json!({"severity": "high", "score": 2, "note": "first"}), "spam");
        earlier[1].fields = check(json!({"severity": "low", "score": 8}), "spam");
        let mine = check(json!({"severity": "high", "score": 3, "note": "last"}), "spam");
        let ans = l("spam");
        let a = Answering {
            fields: &mine,
            ..answering(&ans)
        };
        let t = task(Stage::Review, 3);
        let next = judge(&t, &earlier, &a, &judging, &HashMap::new());
        let item = ItemState {
            resolved_label: None,
            was_auto: false,
        };
        let p = plan(&t, &earlier, &a, next, Some(&item), &judging);
        assert_eq!(p.result.outcome, "resolved");
        let fed = p.feed_fields.clone().expect("the project has fields");
        assert_eq!(fed["severity"], FieldValue::Text("high".into()));
        assert_eq!(fed["score"], FieldValue::Number(3.0));
        assert_eq!(fed["note"], FieldValue::Text("last".into()));
        match p.submitted(&a) {
            Event::ReviewSubmitted(s) => assert_eq!(s.fields, Some(mine.clone())),
            other => panic!("{other:?}"),
        }
        // A project without fields feeds none.
        let p = answer(&task(Stage::Review, 1), &[], l("spam"), &Judging::default(), None);
        assert_eq!((p.result.outcome.as_str(), p.feed_fields), ("resolved", None));
    }

    #[test]
    fn the_first_of_two_answers_waits_and_is_counted() {
        let p = answer(&task(Stage::Review, 2), &[], l("spam"), &Judging::default(), None);
        assert_eq!(p.result.outcome, "waiting");
        assert_eq!(p.task, TaskChange::Counted);
        assert!(p.events.is_empty() && p.resolve_item.is_none() && p.feed.is_none());
    }

    #[test]
    fn a_tie_opens_an_adjudication_one_tier_up() {
        let t = task(Stage::Review, 2);
        let p = answer(&t, &[prior(3, "ann", l("ham"))], l("spam"), &Judging::default(), None);
        assert_eq!(p.result.outcome, "adjudicate");
        assert!(p.result.freed_work());
        let e = p.escalation.expect("an adjudicate task");
        assert_eq!(
            (e.route.tier, e.route.overlap, e.route.queue.as_str(), e.route.priority),
            (2, 1, "standard", 5)
        );
        assert_eq!(e.reason, "reviewers disagreed");
        assert_eq!(
            e.event,
            Event::TaskEscalated(event::TaskEscalated {
                from_task: 7,
                tier: 2,
                reason: "reviewers disagreed".into()
            })
        );
        assert!(p.resolve_item.is_none() && p.feed.is_none());
        assert_eq!(e.route.sla_seconds, None);
        // With an SLA on the queue, the adjudication task gets its deadline.
        let judging = Judging {
            slas: Arc::new(crate::sla::Slas {
                seconds: [("standard".to_string(), 600)].into(),
                ..Default::default()
            }),
            ..Judging::default()
        };
        let p = answer(&t, &[prior(3, "ann", l("ham"))], l("spam"), &judging, None);
        let route = p.escalation.expect("an adjudicate task").route;
        assert_eq!((route.sla_seconds, route.warn_before_seconds), (Some(600), Some(120)));
    }

    #[test]
    fn an_escalation_goes_up_at_once_with_its_reason() {
        let esc = Answer::Escalate {
            reason: "self-harm?".into(),
        };
        let p = answer(&task(Stage::Review, 3), &[], esc.clone(), &Judging::default(), None);
        assert_eq!(p.result.outcome, "adjudicate");
        assert_eq!(p.escalation.clone().unwrap().reason, "escalated: self-harm?");
        match p.submitted(&answering(&esc)) {
            Event::ReviewSubmitted(s) => assert_eq!(
                (s.answer.as_str(), s.reason.as_deref(), s.label.as_deref()),
                ("escalate", Some("self-harm?"), None)
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_skip_gives_the_slot_back() {
        let skip = Answer::Skip { reason: "busy".into() };
        let p = answer(&task(Stage::Review, 1), &[], skip, &Judging::default(), None);
        assert_eq!(p.result.outcome, "requeued");
        assert_eq!((p.lease, p.task), (LeaseEnd::Skipped, TaskChange::SlotBack));
        assert!(p.result.freed_work());
    }

    #[test]
    fn low_confidence_asks_one_more_reviewer() {
        let judging = Judging {
            consensus: ConsensusSpec {
                method: ConsensusMethod::Majority,
                min_confidence: 0.9,
                max_overlap: 3,
            },
            ..Judging::default()
        };
        let p = answer(
            &task(Stage::Review, 2),
            &[prior(3, "ann", l("ham"))],
            l("spam"),
            &judging,
            None,
        );
        assert_eq!(
            (p.result.outcome.as_str(), p.task),
            ("waiting", TaskChange::MoreReviewers)
        );
        assert!(p.result.more_reviewers && p.result.freed_work());
        assert_eq!(kinds(&p), vec![Event::TASK_OVERLAP_INCREASED]);
    }

    #[test]
    fn weighted_votes_follow_the_reviewers_gold_records() {
        let judging = Judging {
            consensus: ConsensusSpec {
                method: ConsensusMethod::Weighted,
                min_confidence: 0.0,
                max_overlap: 2,
            },
            ..Judging::default()
        };
        assert!(judging.weighs_reviewers());
        let t = task(Stage::Review, 2);
        let earlier = [prior(3, "ann", l("ham"))];
        let spam = l("spam");
        let a = answering(&spam);
        // ann is a poor reviewer on gold, bea (9) a good one: bea's label wins.
        let records = HashMap::from([(3, (20, 8)), (9, (20, 20))]);
        match judge(&t, &earlier, &a, &judging, &records) {
            Next::Resolve { label, method, .. } => assert_eq!((label.as_str(), method), ("spam", "weighted")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_audit_that_agrees_confirms_and_one_that_disagrees_corrects() {
        let t = task(Stage::Audit, 1);
        let auto = |label: &str| {
            Some(ItemState {
                resolved_label: Some(label.into()),
                was_auto: true,
            })
        };
        let p = answer(&t, &[], l("ham"), &Judging::default(), auto("ham"));
        assert_eq!(p.result.outcome, "confirmed");
        assert_eq!(kinds(&p), vec![Event::AUDIT_CONFIRMED]);
        assert_eq!(p.feed, Some(("ham".into(), Source::Human)));
        assert!(p.resolve_item.is_none(), "a confirmed label is not rewritten");
        assert!(p.result.resolution.is_some());

        let p = answer(&t, &[], l("spam"), &Judging::default(), auto("ham"));
        assert_eq!(p.result.outcome, "corrected");
        assert_eq!(kinds(&p), vec![Event::ITEM_CORRECTED]);
        match &p.events[0] {
            Event::ItemCorrected(c) => assert_eq!((c.label.as_str(), c.previous.as_deref()), ("spam", Some("ham"))),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.resolve_item.unwrap().label, "spam");

        // The adjudication of a contested audit also corrects.
        let p = answer(
            &task(Stage::Adjudicate, 1),
            &[],
            l("spam"),
            &Judging::default(),
            auto("ham"),
        );
        assert_eq!(p.result.outcome, "corrected");
        assert_eq!(p.feed, Some(("spam".into(), Source::Adjudicated)));
    }

    #[test]
    fn gold_answers_are_scored_never_resolved_and_a_careless_reviewer_is_held() {
        let mut t = task(Stage::Review, 1);
        t.gold = true;
        let quality = QualitySpec {
            gold_rate: 0.1,
            min_accuracy: 0.85,
            min_gold: 5,
        };
        let judging = Judging {
            quality: Some(quality),
            ..Judging::default()
        };
        let right = l("spam");
        let (p, correct) = gold_plan(&t, &answering(&right), "spam", &judging);
        assert_eq!(correct, Some(true));
        assert_eq!(p.result.outcome, "resolved", "shaped like a regular answer");
        assert!(p.resolve_item.is_none() && p.feed.is_none() && p.events.is_empty());
        assert_eq!(
            p.task,
            TaskChange::Close {
                counted: false,
                others_may_hold: false
            }
        );

        let wrong = l("ham");
        let a = answering(&wrong);
        let (_, correct) = gold_plan(&t, &a, "spam", &judging);
        assert_eq!(correct, Some(false));
        let good = GoldRecord {
            answers: 5,
            correct: 5,
            held: false,
        };
        assert!(gold_scored(&a, true, good, Some(&quality)).1.is_none());
        let bad = GoldRecord {
            answers: 6,
            correct: 1,
            held: false,
        };
        let (scored, hold) = gold_scored(&a, false, bad, Some(&quality));
        assert_eq!(
            scored,
            Event::GoldAnswered(event::GoldAnswered {
                reviewer_id: 9,
                correct: false,
                gold_answers: 6,
                gold_correct: 1
            })
        );
        let (reason, held) = hold.expect("held");
        assert!(reason.starts_with("gold accuracy 1/6"), "{reason}");
        assert_eq!(held.kind(), Event::REVIEWER_HELD);
        assert!(
            gold_scored(&a, false, GoldRecord { held: true, ..bad }, Some(&quality))
                .1
                .is_none(),
            "held once"
        );
        assert!(gold_scored(&a, false, bad, None).1.is_none(), "no bar, no hold");

        // With an overlap of two a gold answer waits like a regular one; skips requeue.
        t.overlap = 2;
        assert_eq!(gold_plan(&t, &a, "spam", &judging).0.result.outcome, "waiting");
        let skip = Answer::Skip { reason: "x".into() };
        let (p, correct) = gold_plan(&t, &answering(&skip), "spam", &judging);
        assert_eq!(
            (p.result.outcome.as_str(), correct, p.lease),
            ("requeued", None, LeaseEnd::Skipped)
        );
    }

    #[test]
    fn a_label_outside_the_project_is_refused() {
        let labels = vec!["ham".to_string(), "spam".to_string()];
        let single = Judging::default();
        assert_eq!(check_answer(&labels, &single, l("spam")).unwrap(), l("spam"));
        assert_eq!(check_answer(&labels, &single, l("eggs")).unwrap_err().field, "label");
        assert!(check_answer(&labels, &single, Answer::Skip { reason: String::new() }).is_ok());
        let set = |v: &[&str]| Answer::Labels(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            check_answer(&labels, &single, set(&["spam"])).unwrap_err().field,
            "labels"
        );
    }

    fn multi_judging() -> Judging {
        Judging {
            multi: Some(vec!["hate".to_string(), "spam".to_string(), "violence".to_string()].into()),
            ..Judging::default()
        }
    }

    #[test]
    fn multi_label_answers_are_checked_canonical_and_resolved_as_sets() {
        let labels: Vec<String> = ["hate", "spam", "violence"].map(String::from).to_vec();
        let judging = multi_judging();
        let set = |v: &[&str]| Answer::Labels(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            check_answer(&labels, &judging, set(&["violence", "hate"])).unwrap(),
            l(r#"["hate","violence"]"#)
        );
        assert_eq!(check_answer(&labels, &judging, set(&[])).unwrap(), l("[]"));
        for (answer, field) in [
            (l("hate"), "label"),
            (set(&["hate", "eggs"]), "labels[1]"),
            (set(&["spam", "spam"]), "labels[1]"),
        ] {
            assert_eq!(check_answer(&labels, &judging, answer).unwrap_err().field, field);
        }
        // Overlap 2, the same set twice: resolved to the set; the events carry it.
        let t = task(Stage::Review, 2);
        let both = l(r#"["hate","violence"]"#);
        let p = answer(&t, &[prior(3, "ann", both.clone())], both.clone(), &judging, None);
        assert_eq!(p.result.outcome, "resolved");
        let res = p.resolve_item.clone().unwrap();
        assert_eq!(res.labels, Some(vec!["hate".to_string(), "violence".to_string()]));
        match &p.events[0] {
            Event::ItemResolved(r) => assert_eq!(r.labels, res.labels),
            other => panic!("{other:?}"),
        }
        match p.submitted(&answering(&both)) {
            Event::ReviewSubmitted(s) => assert_eq!(s.labels, res.labels),
            other => panic!("{other:?}"),
        }
        // Agree on hate, disagree on violence: adjudication, nothing resolved.
        let p = answer(&t, &[prior(3, "ann", l(r#"["hate"]"#))], both.clone(), &judging, None);
        assert_eq!(p.result.outcome, "adjudicate");
        assert_eq!(p.escalation.unwrap().reason, "reviewers disagreed on 'violence'");
        assert!(p.resolve_item.is_none() && p.feed.is_none());
        // Gold: right only when the set equals the gold set.
        let mut g = task(Stage::Review, 1);
        g.gold = true;
        let (_, right) = gold_plan(&g, &answering(&both), r#"["hate","violence"]"#, &judging);
        let partial = l(r#"["hate"]"#);
        let (_, wrong) = gold_plan(&g, &answering(&partial), r#"["hate","violence"]"#, &judging);
        assert_eq!((right, wrong), (Some(true), Some(false)));
    }

    #[test]
    fn too_fast_answers_weigh_nothing_when_pacing_discounts_them() {
        let pacing = |discount| PacingSpec {
            min_seconds_per_task: Some(5.0),
            max_tasks_per_session: None,
            discount_too_fast: discount,
        };
        let judging = Judging {
            pacing: Some(pacing(true)),
            ..Judging::default()
        };
        assert!(judging.too_fast(&l("spam"), 4_999) && !judging.too_fast(&l("spam"), 5_000));
        assert!(!judging.too_fast(&Answer::Skip { reason: String::new() }, 10));
        let t = task(Stage::Review, 2);
        let mut hasty = prior(3, "ann", l("ham"));
        hasty.too_fast = true;
        // ann's "ham" weighs nothing: bea's "spam" decides alone.
        let p = answer(&t, &[hasty.clone()], l("spam"), &judging, None);
        assert_eq!(p.result.resolution.map(|r| r.label).as_deref(), Some("spam"));
        // Counted only as a disagreement without the discount.
        let counted = Judging {
            pacing: Some(pacing(false)),
            ..Judging::default()
        };
        assert_eq!(
            answer(&t, &[hasty], l("spam"), &counted, None).result.outcome,
            "adjudicate"
        );
        // The flag the backend stores comes back in the result.
        let ans = l("spam");
        let mut a = answering(&ans);
        a.too_fast = true;
        let next = judge(&t, &[prior(3, "ann", l("spam"))], &a, &judging, &HashMap::new());
        let p = plan(
            &t,
            &[],
            &a,
            next,
            Some(&ItemState {
                resolved_label: None,
                was_auto: false,
            }),
            &judging,
        );
        assert_eq!(p.result.stored.map(|s| s.too_fast), Some(true));
        assert_eq!(p.result.outcome, "resolved");
    }
}
