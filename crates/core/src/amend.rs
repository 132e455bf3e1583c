//! Undo and amend: what a reviewer's change of mind does to an answer already stored,
//! decided once for every backend.
//!
//! A reviewer may replace their own answer's label. Two cases, and a refusal:
//!
//! * **Undo** — within the policy's undo window (`workbench.undo_seconds`, default 60)
//!   and while the answer's task is still open (it waits for other reviewers), the new
//!   label simply takes the old one's place: nothing was decided from it yet, so consensus
//!   will count the new label. `review.undone`.
//! * **Amend** — once the task has closed (resolved, or escalated), what was decided from
//!   the answer stands, and the item goes back to adjudication: a new `adjudicate` task
//!   one tier up, with the reason, unless the item already has an adjudication open.
//!   `review.amended` (and `task.escalated` on the new task).
//! * Past the window with the task still open, a skip (it gave the task back: there is
//!   no answer to change), or a gold answer (scored as given) is refused.
//!
//! A change may carry the answer's `fields` too ([`check_fields`] checks them as an
//! answer's are checked, for the new label): they replace the stored fields, and a change
//! that sends fields is a change even when the label stays. Without `fields` the answer
//! keeps the fields it had.
//!
//! The backend loads the stored answer ([`Stored`]) and the item's open adjudication,
//! asks [`plan`], and writes the [`AmendPlan`]: the review's new label, the amendment
//! record with its result (a retried `amend_id` gets it again), the events, the task.

use serde::{Deserialize, Serialize};

use crate::event::{self, Event};
use crate::fields::{FieldSchema, Fields};
use crate::policy::MAX_TIER;
use crate::review::{Escalation, TaskState};
use crate::sla::Slas;
use crate::task::Answer;
use crate::{LabelSet, Route, ValidationError};

/// The undo window when the policy sets none.
pub const DEFAULT_UNDO_SECONDS: u32 = 60;

/// A project's rules for changes of mind: the undo window and, for an amendment's
/// adjudication task, the queues' SLAs.
#[derive(Debug, Clone, Default)]
pub struct AmendRules {
    pub undo_seconds: u32,
    pub slas: std::sync::Arc<Slas>,
    /// The project is multi-label: the new answer is a set (`labels`).
    pub multi: bool,
    /// The project's answer fields, which a change's `fields` are checked against.
    pub fields: std::sync::Arc<FieldSchema>,
}

/// The answer being changed, as the backend loaded it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub review_id: String,
    pub reviewer_id: i64,
    pub answer: Answer,
    pub answered_at: i64,
    /// Its task (queue, tier and priority are the amendment's adjudication's).
    pub task: TaskState,
    /// The task still waits for answers (not closed).
    pub task_open: bool,
    /// The item has an `adjudicate` task open already (which will see the new label).
    pub adjudication_open: bool,
}

/// The change the reviewer asks for.
#[derive(Debug, Clone, Copy)]
pub struct Amending<'a> {
    /// The change's idempotency key.
    pub amend_id: &'a str,
    pub label: &'a str,
    /// The reviewer's reason, if they gave one.
    pub reason: Option<&'a str>,
    /// The answer's new fields, checked ([`check_fields`]); `None`: keep the stored ones.
    pub fields: Option<&'a Fields>,
    pub now: i64,
}

/// What a change of mind did, as the reviewer is told (and told again for a retried
/// `amend_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmendResult {
    pub review_id: String,
    pub amend_id: String,
    /// `undone` (the label replaced in an open task), `amended` (the item re-opened for
    /// adjudication) or `unchanged` (the answer already had this label).
    pub outcome: String,
    pub previous: Option<String>,
    pub label: String,
    /// The answer's new fields, when the change sent some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Fields>,
    /// The adjudication task an amendment opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjudication_task_id: Option<i64>,
}

/// Everything a change writes, in order: the review's new label (unless `unchanged`), the
/// escalation (its task id goes into `result`), `events` on the answer's task, and the
/// amendment record holding `result`.
#[derive(Debug, Clone)]
pub struct AmendPlan {
    pub result: AmendResult,
    /// The review's label changes (false: `unchanged`, nothing is written).
    pub relabel: bool,
    pub escalation: Option<Escalation>,
    pub events: Vec<Event>,
}

/// Why a change is refused: the error code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

/// Checks the new answer against the project's labels and mode — `label` in a
/// single-label project, `labels` (a set, its canonical encoding returned) in a
/// multi-label one; the other is refused naming it.
pub fn check_label(
    labels: &[String],
    rules: &AmendRules,
    label: Option<&str>,
    set: Option<&[String]>,
) -> Result<String, ValidationError> {
    let names = LabelSet::parse(labels)?;
    match (label, set, rules.multi) {
        (Some(l), None, false) => names.answer("label", l).map(|l| l.as_str().to_string()),
        (None, Some(s), true) => names.answer_set("labels", s),
        (Some(_), None, true) => Err(ValidationError::new(
            "label",
            "this project is multi-label: amend with labels: [..]",
        )),
        (None, Some(_), false) => Err(ValidationError::new(
            "labels",
            "this project is single-label: amend with label",
        )),
        _ => Err(ValidationError::new("label", "give exactly one of label or labels")),
    }
}

/// Checks a change's `fields` (the JSON sent; `None`: none sent, the stored ones stay) as
/// an answer's are checked, against the new `label` as [`check_label`] returned it (in a
/// multi-label project the set's encoding, whose labels `when_labels` is read against):
/// errors name `fields.<name>`.
pub fn check_fields(
    rules: &AmendRules,
    label: &str,
    fields: Option<&serde_json::Value>,
) -> Result<Option<Fields>, ValidationError> {
    let Some(f) = fields else { return Ok(None) };
    let labels = crate::label::named(label, rules.multi);
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    rules.fields.check(Some(f), &labels).map(Some)
}

/// What changing `stored` to `a.label` does under `rules`.
pub fn plan(stored: &Stored, a: &Amending<'_>, rules: &AmendRules) -> Result<AmendPlan, Refused> {
    let previous = match &stored.answer {
        Answer::Label(l) => Some(l.clone()),
        Answer::Escalate { .. } => None,
        Answer::Labels(_) => unreachable!("a stored answer is a label, its set's encoding in a multi-label project"),
        Answer::Skip { .. } => {
            return Err(Refused {
                code: "not_amendable",
                message: "a skip gave the task back: there is no answer to change".into(),
            });
        }
    };
    if stored.task.gold {
        return Err(Refused {
            code: "not_amendable",
            message: "this answer was scored as given and cannot be changed".into(),
        });
    }
    let mut p = AmendPlan {
        result: AmendResult {
            review_id: stored.review_id.clone(),
            amend_id: a.amend_id.to_string(),
            outcome: "unchanged".into(),
            previous: previous.clone(),
            label: a.label.to_string(),
            fields: a.fields.cloned(),
            adjudication_task_id: None,
        },
        relabel: false,
        escalation: None,
        events: Vec::new(),
    };
    if previous.as_deref() == Some(a.label) && a.fields.is_none() {
        return Ok(p);
    }
    p.relabel = true;
    let change = |reason: String, adjudication_tier| event::ReviewChanged {
        review_id: stored.review_id.clone(),
        amend_id: a.amend_id.to_string(),
        reviewer_id: stored.reviewer_id,
        previous: previous.clone(),
        label: a.label.to_string(),
        fields: a.fields.cloned(),
        reason,
        adjudication_tier,
    };
    if stored.task_open {
        let window_ms = i64::from(rules.undo_seconds) * 1000;
        if a.now - stored.answered_at > window_ms {
            return Err(Refused {
                code: "undo_expired",
                message: format!(
                    "the {} s undo window has passed and the task is still open: once it closes the answer can be amended",
                    rules.undo_seconds
                ),
            });
        }
        p.result.outcome = "undone".into();
        let reason = a.reason.unwrap_or("undone within the undo window").to_string();
        p.events.push(Event::ReviewUndone(change(reason, None)));
        return Ok(p);
    }
    p.result.outcome = "amended".into();
    let reason = match a.reason {
        Some(r) => format!(
            "amended {} → {}: {r}",
            previous.as_deref().unwrap_or("escalation"),
            a.label
        ),
        None => format!("amended {} → {}", previous.as_deref().unwrap_or("escalation"), a.label),
    };
    if stored.adjudication_open {
        p.events.push(Event::ReviewAmended(change(reason, None)));
        return Ok(p);
    }
    let tier = stored.task.tier.saturating_add(1).min(MAX_TIER);
    p.escalation = Some(Escalation {
        route: Route {
            queue: stored.task.queue.clone(),
            tier,
            priority: stored.task.priority,
            overlap: 1,
            sla_seconds: None,
            warn_before_seconds: None,
        }
        .with_sla(&rules.slas, None),
        event: Event::TaskEscalated(event::TaskEscalated {
            from_task: stored.task.id,
            tier,
            reason: reason.clone(),
        }),
        reason: reason.clone(),
    });
    p.events.push(Event::ReviewAmended(change(reason, Some(tier))));
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stage;

    fn stored(answer: Answer, task_open: bool) -> Stored {
        Stored {
            review_id: "r1".into(),
            reviewer_id: 7,
            answer,
            answered_at: 1_000,
            task: TaskState {
                id: 11,
                project_id: 1,
                stage: Stage::Review,
                queue: "default".into(),
                tier: 1,
                priority: 3,
                overlap: 2,
                gold: false,
            },
            task_open,
            adjudication_open: false,
        }
    }

    fn amending(label: &str, now: i64) -> Amending<'_> {
        Amending {
            amend_id: "a1",
            label,
            reason: None,
            fields: None,
            now,
        }
    }

    fn rules() -> AmendRules {
        AmendRules {
            undo_seconds: 60,
            slas: Default::default(),
            multi: false,
            fields: Default::default(),
        }
    }

    fn spam() -> Answer {
        Answer::Label("spam".into())
    }

    #[test]
    fn within_the_window_an_open_task_s_answer_is_replaced() {
        let p = plan(&stored(spam(), true), &amending("ham", 61_000), &rules()).unwrap();
        assert_eq!(p.result.outcome, "undone");
        assert!(p.relabel && p.escalation.is_none());
        assert_eq!(p.result.previous.as_deref(), Some("spam"));
        assert!(
            matches!(&p.events[..], [Event::ReviewUndone(c)] if c.label == "ham" && c.previous.as_deref() == Some("spam"))
        );
    }

    #[test]
    fn past_the_window_an_open_task_s_answer_is_refused() {
        let e = plan(&stored(spam(), true), &amending("ham", 61_001), &rules()).unwrap_err();
        assert_eq!(e.code, "undo_expired");
    }

    #[test]
    fn after_the_task_closed_an_amendment_reopens_adjudication_one_tier_up() {
        // The window does not matter once the task has closed.
        let mut a = amending("ham", 10_000_000);
        a.reason = Some("misread the sender");
        let p = plan(&stored(spam(), false), &a, &rules()).unwrap();
        assert_eq!(p.result.outcome, "amended");
        let e = p.escalation.expect("an adjudication");
        assert_eq!(
            (e.route.queue.as_str(), e.route.tier, e.route.priority, e.route.overlap),
            ("default", 2, 3, 1)
        );
        assert_eq!(e.reason, "amended spam → ham: misread the sender");
        assert!(matches!(e.event, Event::TaskEscalated(t) if t.from_task == 11 && t.tier == 2));
        assert!(matches!(&p.events[..], [Event::ReviewAmended(c)] if c.adjudication_tier == Some(2)));
    }

    #[test]
    fn an_open_adjudication_is_not_doubled_and_the_last_tier_is_kept() {
        let mut s = stored(
            Answer::Escalate {
                reason: "unsure".into(),
            },
            false,
        );
        s.adjudication_open = true;
        let p = plan(&s, &amending("ham", 2_000), &rules()).unwrap();
        assert_eq!(p.result.outcome, "amended");
        assert!(p.escalation.is_none() && p.relabel);
        assert!(
            matches!(&p.events[..], [Event::ReviewAmended(c)] if c.previous.is_none() && c.adjudication_tier.is_none())
        );
        let mut s = stored(spam(), false);
        s.task.tier = MAX_TIER;
        let p = plan(&s, &amending("ham", 2_000), &rules()).unwrap();
        assert_eq!(p.escalation.unwrap().route.tier, MAX_TIER);
    }

    #[test]
    fn the_same_label_changes_nothing_and_skips_and_gold_are_refused() {
        let p = plan(&stored(spam(), false), &amending("spam", 2_000), &rules()).unwrap();
        assert_eq!(p.result.outcome, "unchanged");
        assert!(!p.relabel && p.events.is_empty() && p.escalation.is_none());
        let skip = stored(Answer::Skip { reason: String::new() }, true);
        assert_eq!(
            plan(&skip, &amending("ham", 2_000), &rules()).unwrap_err().code,
            "not_amendable"
        );
        let mut gold = stored(spam(), false);
        gold.task.gold = true;
        assert_eq!(
            plan(&gold, &amending("ham", 2_000), &rules()).unwrap_err().code,
            "not_amendable"
        );
    }

    #[test]
    fn fields_are_checked_for_the_new_label_and_make_a_change_of_their_own() {
        let labels = LabelSet::parse(&["ham".to_string(), "spam".to_string()]).unwrap();
        let schema = FieldSchema::parse(
            &serde_json::json!([{"name": "severity", "type": "enum", "values": ["low", "high"],
                "required": true, "when_labels": ["spam"]}]),
            &labels,
        )
        .unwrap();
        let r = AmendRules {
            fields: std::sync::Arc::new(schema),
            ..rules()
        };
        assert_eq!(check_fields(&r, "spam", None).unwrap(), None, "none sent: kept");
        let e = check_fields(&r, "spam", Some(&serde_json::json!({"severity": "huge"}))).unwrap_err();
        assert_eq!(e.field, "fields.severity");
        let e = check_fields(&r, "spam", Some(&serde_json::json!({}))).unwrap_err();
        assert_eq!(e.field, "fields.severity", "required for spam");
        assert!(check_fields(&r, "ham", Some(&serde_json::json!({}))).is_ok());
        let f = check_fields(&r, "spam", Some(&serde_json::json!({"severity": "high"})))
            .unwrap()
            .unwrap();
        // The same label with new fields is a change (an undo here), carrying them.
        let mut a = amending("spam", 2_000);
        a.fields = Some(&f);
        let p = plan(&stored(spam(), true), &a, &r).unwrap();
        assert_eq!(p.result.outcome, "undone");
        assert!(p.relabel && p.result.fields.as_ref() == Some(&f));
        assert!(matches!(&p.events[..], [Event::ReviewUndone(c)] if c.fields.as_ref() == Some(&f)));
    }

    #[test]
    fn a_label_outside_the_project_is_refused_on_the_label_field() {
        let labels = vec!["ham".to_string(), "spam".to_string()];
        let single = AmendRules::default();
        assert_eq!(check_label(&labels, &single, Some("spam"), None).unwrap(), "spam");
        assert_eq!(
            check_label(&labels, &single, Some("eggs"), None).unwrap_err().field,
            "label"
        );
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let both = set(&["spam", "ham"]);
        assert_eq!(
            check_label(&labels, &single, None, Some(&both)).unwrap_err().field,
            "labels"
        );
        let multi = AmendRules {
            multi: true,
            ..AmendRules::default()
        };
        assert_eq!(
            check_label(&labels, &multi, None, Some(&both)).unwrap(),
            r#"["ham","spam"]"#
        );
        assert_eq!(check_label(&labels, &multi, None, Some(&set(&[]))).unwrap(), "[]");
        let bad = set(&["ham", "eggs"]);
        assert_eq!(
            check_label(&labels, &multi, None, Some(&bad)).unwrap_err().field,
            "labels[1]"
        );
        assert_eq!(
            check_label(&labels, &multi, Some("ham"), None).unwrap_err().field,
            "label"
        );
    }
}
