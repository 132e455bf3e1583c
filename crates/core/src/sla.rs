//! Service-level deadlines, pure: a task's deadline from its route, and what the SLA
//! worker does to an open task at `now` — write `sla.warning` once `warn_at` has passed,
//! `sla.breached` once `due_at` has, and apply the queue's `sla_action` with the breach.
//! The store loads the tasks ([`SlaTask`]) and writes the [`SlaStep`]s in one transaction
//! each; it decides nothing.
//!
//! Each task gets at most one warning and one breach in its life (the store writes a step
//! only while its flags are unset): an escalated task keeps its breach, so its new
//! deadline orders claims and counts as overdue but is not breached again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Prediction;
use crate::event::{self, Event};
use crate::policy::{MAX_TIER, PolicySpec, Route};
use crate::review::Resolution;
use crate::task::Source;

/// How much an `escalate` action raises a task's priority.
pub const ESCALATE_PRIORITY_STEP: i32 = 10;

/// What happens when an open task passes its deadline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlaAction {
    /// Only the `sla.breached` event.
    #[default]
    None,
    /// The task moves one tier up with its priority raised and a new deadline.
    Escalate,
    /// The item is resolved with the model's label (source `auto`, method `sla_expired`).
    Auto,
}

/// A policy's SLA settings per queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slas {
    pub seconds: BTreeMap<String, u32>,
    pub action: BTreeMap<String, SlaAction>,
    pub warn_before_seconds: BTreeMap<String, u32>,
}

impl Slas {
    pub fn from_spec(spec: &PolicySpec) -> Self {
        Self {
            seconds: spec.sla_seconds.clone(),
            action: spec.sla_action.clone(),
            warn_before_seconds: spec.warn_before_seconds.clone(),
        }
    }

    /// The queue's own SLA, if the policy sets one.
    pub fn queue_seconds(&self, queue: &str) -> Option<u32> {
        self.seconds.get(queue).copied()
    }

    pub fn action(&self, queue: &str) -> SlaAction {
        self.action.get(queue).copied().unwrap_or_default()
    }

    /// How long before a deadline of `sla_seconds` in `queue` the warning fires: the
    /// queue's `warn_before_seconds` (at most the SLA), or 20% of the SLA.
    pub fn warn_before(&self, queue: &str, sla_seconds: u32) -> u32 {
        self.warn_before_seconds
            .get(queue)
            .map_or(sla_seconds / 5, |w| (*w).min(sla_seconds))
    }

    /// A route into `queue` with `rule_seconds` (a rule's own SLA, which wins) gets
    /// `(sla_seconds, warn_before_seconds)`.
    pub fn for_route(&self, queue: &str, rule_seconds: Option<u32>) -> (Option<u32>, Option<u32>) {
        match rule_seconds.or_else(|| self.queue_seconds(queue)) {
            Some(s) => (Some(s), Some(self.warn_before(queue, s))),
            None => (None, None),
        }
    }
}

/// A task's `(warn_at, due_at)` when it is created at `now` on `route` (none without an SLA).
pub fn deadlines(route: &Route, now: i64) -> (Option<i64>, Option<i64>) {
    match route.sla_seconds {
        None => (None, None),
        Some(s) => {
            let due = now + i64::from(s) * 1000;
            let warn = due - i64::from(route.warn_before_seconds.unwrap_or(s / 5).min(s)) * 1000;
            (Some(warn), Some(due))
        }
    }
}

/// An open task whose warning or deadline has passed, as the store loaded it.
#[derive(Debug, Clone)]
pub struct SlaTask {
    pub task_id: i64,
    pub project_id: i64,
    pub item_id: i64,
    pub queue: String,
    pub tier: u8,
    pub priority: i32,
    pub created_at: i64,
    pub warn_at: i64,
    pub due_at: i64,
    pub warned: bool,
    /// The item already has a resolution (an auto decision under audit, say).
    pub resolved: bool,
    pub prediction: Option<Prediction>,
}

/// What a breach does to the task.
#[derive(Debug, Clone, PartialEq)]
pub enum SlaChange {
    None,
    /// Move the task to `tier` with `priority`, due again at `due_at` (warned and
    /// breached stay set: once per task).
    Escalate {
        tier: u8,
        priority: i32,
        due_at: i64,
    },
    /// Resolve the item (its open tasks close, their active leases are cancelled).
    Resolve {
        resolution: Resolution,
        model: String,
        model_version: Option<String>,
    },
}

/// What the worker writes for one task at `now`, in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaStep {
    pub task_id: i64,
    pub project_id: i64,
    pub item_id: i64,
    /// `sla.warning`, if it has not been written yet.
    pub warning: Option<Event>,
    /// `sla.breached` and the action, once the deadline has passed.
    pub breach: Option<(Event, SlaChange)>,
}

/// The step for `task` at `now` under `slas`; `None` when nothing is due.
pub fn step(task: &SlaTask, slas: &Slas, now: i64) -> Option<SlaStep> {
    let warning = (!task.warned && task.warn_at <= now).then(|| {
        Event::SlaWarning(event::SlaWarning {
            queue: task.queue.clone(),
            tier: task.tier,
            due_at: task.due_at,
        })
    });
    let breach = (task.due_at <= now).then(|| breach(task, slas, now));
    if warning.is_none() && breach.is_none() {
        return None;
    }
    Some(SlaStep {
        task_id: task.task_id,
        project_id: task.project_id,
        item_id: task.item_id,
        warning,
        breach,
    })
}

fn breach(task: &SlaTask, slas: &Slas, now: i64) -> (Event, SlaChange) {
    let action = slas.action(&task.queue);
    let mut data = event::SlaBreached {
        queue: task.queue.clone(),
        tier: task.tier,
        due_at: task.due_at,
        action,
        applied: SlaAction::None,
        note: None,
        to_tier: None,
        priority: None,
        new_due_at: None,
        label: None,
    };
    let change = match action {
        SlaAction::None => SlaChange::None,
        SlaAction::Escalate if task.tier >= MAX_TIER => {
            data.note = Some(format!("already at the last tier ({MAX_TIER})"));
            SlaChange::None
        }
        SlaAction::Escalate => {
            // The queue's SLA, or this task's own (a rule's) when the queue sets none.
            let secs = slas
                .queue_seconds(&task.queue)
                .map_or(task.due_at - task.created_at, |s| i64::from(s) * 1000);
            let (tier, priority, due_at) = (
                task.tier + 1,
                task.priority.saturating_add(ESCALATE_PRIORITY_STEP),
                now + secs,
            );
            data.applied = SlaAction::Escalate;
            data.to_tier = Some(tier);
            data.priority = Some(priority);
            data.new_due_at = Some(due_at);
            SlaChange::Escalate { tier, priority, due_at }
        }
        SlaAction::Auto => match (&task.prediction, task.resolved) {
            (_, true) => {
                data.note = Some("the item is already resolved".into());
                SlaChange::None
            }
            (None, false) => {
                data.note = Some("the item has no model label".into());
                SlaChange::None
            }
            (Some(p), false) => {
                let (label, confidence) = p.top();
                data.applied = SlaAction::Auto;
                data.label = Some(label.to_string());
                SlaChange::Resolve {
                    resolution: Resolution {
                        labels: None,
                        label: label.to_string(),
                        source: Source::Auto,
                        method: "sla_expired".into(),
                        confidence,
                        reviewers: Vec::new(),
                        resolved_at: now,
                    },
                    model: p.model.clone(),
                    model_version: p.version.clone(),
                }
            }
        },
    };
    (Event::SlaBreached(data), change)
}

impl SlaChange {
    /// The `item.resolved` event an `auto` action writes.
    pub fn resolved_event(&self) -> Option<Event> {
        match self {
            SlaChange::Resolve { resolution: r, .. } => Some(Event::ItemResolved(event::ItemResolved {
                labels: None,
                label: r.label.clone(),
                previous: None,
                source: r.source,
                method: r.method.clone(),
                confidence: r.confidence,
                reviewers: r.reviewers.clone(),
            })),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slas(action: SlaAction) -> Slas {
        Slas {
            seconds: [("q".to_string(), 100)].into(),
            action: [("q".to_string(), action)].into(),
            warn_before_seconds: BTreeMap::new(),
        }
    }

    fn task(prediction: Option<Prediction>) -> SlaTask {
        SlaTask {
            task_id: 1,
            project_id: 2,
            item_id: 3,
            queue: "q".into(),
            tier: 1,
            priority: 5,
            created_at: 0,
            warn_at: 80_000,
            due_at: 100_000,
            warned: false,
            resolved: false,
            prediction,
        }
    }

    #[test]
    fn deadlines_follow_the_route_and_default_to_a_fifth_for_the_warning() {
        let s = slas(SlaAction::None);
        assert_eq!(s.for_route("q", None), (Some(100), Some(20)));
        assert_eq!(s.for_route("q", Some(50)), (Some(50), Some(10)));
        assert_eq!(s.for_route("other", None), (None, None));
        let mut warned = s.clone();
        warned.warn_before_seconds.insert("q".into(), 500);
        assert_eq!(warned.for_route("q", None), (Some(100), Some(100)));
        let route = Route {
            sla_seconds: Some(100),
            warn_before_seconds: Some(30),
            ..Route::default_review()
        };
        assert_eq!(deadlines(&route, 1_000), (Some(71_000), Some(101_000)));
        assert_eq!(deadlines(&Route::default_review(), 1_000), (None, None));
    }

    #[test]
    fn a_task_warns_then_breaches() {
        let s = slas(SlaAction::None);
        assert_eq!(step(&task(None), &s, 79_999), None);
        let w = step(&task(None), &s, 80_000).unwrap();
        assert!(w.warning.is_some() && w.breach.is_none());
        let mut t = task(None);
        t.warned = true;
        assert_eq!(step(&t, &s, 99_999), None);
        let b = step(&t, &s, 100_000).unwrap();
        assert!(b.warning.is_none());
        assert_eq!(b.breach.unwrap().1, SlaChange::None);
        // A late worker writes both at once, the warning first.
        let both = step(&task(None), &s, 200_000).unwrap();
        assert!(both.warning.is_some() && both.breach.is_some());
    }

    #[test]
    fn escalation_climbs_a_tier_with_more_priority_and_a_new_deadline() {
        let (e, change) = step(&task(None), &slas(SlaAction::Escalate), 150_000)
            .unwrap()
            .breach
            .unwrap();
        assert_eq!(
            change,
            SlaChange::Escalate {
                tier: 2,
                priority: 5 + ESCALATE_PRIORITY_STEP,
                due_at: 250_000
            }
        );
        let Event::SlaBreached(d) = e else { panic!() };
        assert_eq!((d.applied, d.to_tier), (SlaAction::Escalate, Some(2)));
        let mut top = task(None);
        top.tier = MAX_TIER;
        let (e, change) = step(&top, &slas(SlaAction::Escalate), 150_000).unwrap().breach.unwrap();
        assert_eq!(change, SlaChange::None);
        let Event::SlaBreached(d) = e else { panic!() };
        assert_eq!(d.applied, SlaAction::None);
        assert!(d.note.is_some());
    }

    #[test]
    fn auto_takes_the_model_label_or_does_nothing_without_one() {
        let p = Prediction {
            model: "m".into(),
            version: None,
            scores: vec![("ham".into(), 0.3), ("spam".into(), 0.7)],
            novelty: None,
        };
        let (e, change) = step(&task(Some(p)), &slas(SlaAction::Auto), 100_000)
            .unwrap()
            .breach
            .unwrap();
        let SlaChange::Resolve { resolution, .. } = &change else {
            panic!()
        };
        assert_eq!((resolution.label.as_str(), resolution.source), ("spam", Source::Auto));
        assert_eq!(resolution.method, "sla_expired");
        assert!(change.resolved_event().is_some());
        let Event::SlaBreached(d) = e else { panic!() };
        assert_eq!((d.applied, d.label.as_deref()), (SlaAction::Auto, Some("spam")));
        let (e, change) = step(&task(None), &slas(SlaAction::Auto), 100_000)
            .unwrap()
            .breach
            .unwrap();
        assert_eq!(change, SlaChange::None);
        let Event::SlaBreached(d) = e else { panic!() };
        assert_eq!((d.action, d.applied), (SlaAction::Auto, SlaAction::None));
        assert_eq!(d.note.as_deref(), Some("the item has no model label"));
    }
}
