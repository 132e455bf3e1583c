//! An admin's override of an item, decided once: resolve it with a label (and fields), or
//! re-route it to another queue and tier — always with a reason. The backends load the
//! item (its resolution, its open tasks), ask [`plan`], and write what it says: the open
//! tasks closed with their active leases cancelled, the resolution with its label-feed
//! entry (source `human`, method `override`), the new task, and the events.
//!
//! (The module is not named `override`: that word is reserved in Rust.)

use crate::event::{self as ev, Event};
use crate::fields::Fields;
use crate::policy::Route;
use crate::review::Resolution;
use crate::task::{Source, Stage};

/// The resolution method an override writes.
pub const METHOD: &str = "override";
/// The reason written on the tasks an override closes and the leases it cancels.
pub const CLOSED_REASON: &str = "the item was overridden";

/// What the admin asked for (already checked against the project: the label is one of
/// its labels, the fields fit its schema, the route is one its policy can hold).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `label` as stored: a label, or in a multi-label project the set's canonical
    /// encoding, with `labels` the set itself.
    Resolve {
        label: String,
        labels: Option<Vec<String>>,
        fields: Option<Fields>,
    },
    Reroute {
        route: Route,
    },
}

/// An open task of the item, as the backend read it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTask {
    pub task_id: i64,
    pub stage: Stage,
    pub queue: String,
    pub tier: u8,
}

/// Why an override is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A re-route of an item already resolved: resolve it again instead.
    Resolved,
    /// A re-route to where the item's only open task already is.
    AlreadyThere,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Resolved => "item_resolved",
            Refusal::AlreadyThere => "already_routed",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Refusal::Resolved => {
                "the item is resolved: a re-route needs an unresolved item (resolve it with another label instead)"
            }
            Refusal::AlreadyThere => "the item's open task is already in that queue and tier",
        }
    }
}

/// What an override writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Open tasks to close (`done`, reason [`CLOSED_REASON`]), each active lease on them
    /// cancelled with a `lease.cancelled` event.
    pub close: Vec<i64>,
    /// The item's new resolution, with a label-feed entry (and its fields).
    pub resolution: Option<Resolution>,
    pub feed_fields: Option<Fields>,
    /// A new open task: its stage and route.
    pub new_task: Option<(Stage, Route)>,
    /// `item.overridden`, then (for a resolution) `item.resolved`. The new task's id is
    /// filled into `item.overridden` by the backend once it has one.
    pub events: Vec<Event>,
}

/// Decides what an override of an item does. `resolution` is the item's current one,
/// `open` its open tasks; `actor` the admin, `reason` their words (checked non-empty by
/// the caller).
pub fn plan(
    action: Action,
    resolution: Option<&Resolution>,
    open: &[OpenTask],
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<Plan, Refusal> {
    let close: Vec<i64> = open.iter().map(|t| t.task_id).collect();
    let previous = resolution.map(|r| r.label.clone());
    match action {
        Action::Resolve { label, labels, fields } => {
            let resolution = Resolution {
                label: label.clone(),
                labels: labels.clone(),
                source: Source::Human,
                method: METHOD.into(),
                confidence: 1.0,
                reviewers: vec![actor.to_string()],
                resolved_at: now,
            };
            let events = vec![
                Event::ItemOverridden(ev::ItemOverridden {
                    action: "resolve".into(),
                    reason: reason.to_string(),
                    label: Some(label),
                    previous: previous.clone(),
                    queue: None,
                    tier: None,
                    closed_tasks: close.clone(),
                    task_id: None,
                }),
                Event::ItemResolved(ev::ItemResolved {
                    label: resolution.label.clone(),
                    labels,
                    previous,
                    source: resolution.source,
                    method: resolution.method.clone(),
                    confidence: resolution.confidence,
                    reviewers: resolution.reviewers.clone(),
                }),
            ];
            Ok(Plan {
                close,
                resolution: Some(resolution),
                feed_fields: fields,
                new_task: None,
                events,
            })
        }
        Action::Reroute { route } => {
            if resolution.is_some() {
                return Err(Refusal::Resolved);
            }
            if let [only] = open
                && only.queue == route.queue
                && only.tier == route.tier
            {
                return Err(Refusal::AlreadyThere);
            }
            // The new task keeps the work's stage: an adjudication stays one.
            let stage = open
                .iter()
                .map(|t| t.stage)
                .max_by_key(|s| matches!(s, Stage::Adjudicate))
                .unwrap_or(Stage::Review);
            let events = vec![Event::ItemOverridden(ev::ItemOverridden {
                action: "reroute".into(),
                reason: reason.to_string(),
                label: None,
                previous: None,
                queue: Some(route.queue.clone()),
                tier: Some(route.tier),
                closed_tasks: close.clone(),
                task_id: None,
            })];
            Ok(Plan {
                close,
                resolution: None,
                feed_fields: None,
                new_task: Some((stage, route)),
                events,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: i64, stage: Stage, queue: &str, tier: u8) -> OpenTask {
        OpenTask {
            task_id: id,
            stage,
            queue: queue.into(),
            tier,
        }
    }

    fn route(queue: &str, tier: u8) -> Route {
        Route {
            queue: queue.into(),
            tier,
            ..Route::default_review()
        }
    }

    fn resolved(label: &str) -> Resolution {
        Resolution {
            label: label.into(),
            labels: None,
            source: Source::Auto,
            method: "policy".into(),
            confidence: 0.9,
            reviewers: vec![],
            resolved_at: 1,
        }
    }

    #[test]
    fn a_resolution_closes_every_open_task_and_enters_the_feed_as_an_override() {
        let open = [task(7, Stage::Review, "hate", 1), task(9, Stage::Adjudicate, "hate", 3)];
        let resolve = || Action::Resolve {
            label: "offensive".into(),
            labels: None,
            fields: None,
        };
        let p = plan(resolve(), None, &open, "admin", "policy call", 50).unwrap();
        assert_eq!(p.close, [7, 9]);
        assert!(p.new_task.is_none());
        let r = p.resolution.unwrap();
        assert_eq!(
            (
                r.label.as_str(),
                r.source,
                r.method.as_str(),
                r.reviewers,
                r.resolved_at
            ),
            ("offensive", Source::Human, METHOD, vec!["admin".to_string()], 50)
        );
        let kinds: Vec<_> = p.events.iter().map(Event::kind).collect();
        assert_eq!(kinds, [Event::ITEM_OVERRIDDEN, Event::ITEM_RESOLVED]);
        match &p.events[0] {
            Event::ItemOverridden(o) => {
                assert_eq!(
                    (o.action.as_str(), o.reason.as_str(), o.closed_tasks.clone()),
                    ("resolve", "policy call", vec![7, 9])
                );
            }
            other => panic!("{other:?}"),
        }

        // A resolved item may be resolved again: the previous label is told.
        let again = plan(resolve(), Some(&resolved("neither")), &[], "admin", "wrong", 60).unwrap();
        assert!(again.close.is_empty());
        match &again.events[1] {
            Event::ItemResolved(r) => assert_eq!(r.previous.as_deref(), Some("neither")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_reroute_replaces_the_open_tasks_keeping_their_stage() {
        let open = [task(9, Stage::Adjudicate, "hate", 3)];
        let p = plan(
            Action::Reroute {
                route: route("hate", 2),
            },
            None,
            &open,
            "admin",
            "no tier 3",
            5,
        )
        .unwrap();
        assert_eq!(p.close, [9]);
        assert!(p.resolution.is_none());
        assert_eq!(p.new_task, Some((Stage::Adjudicate, route("hate", 2))));
        let p = plan(
            Action::Reroute {
                route: route("other", 1),
            },
            None,
            &[],
            "admin",
            "stuck",
            5,
        )
        .unwrap();
        assert_eq!(p.new_task, Some((Stage::Review, route("other", 1))));
        assert_eq!(p.events.len(), 1);
    }

    #[test]
    fn a_reroute_is_refused_on_a_resolved_item_or_to_where_it_is() {
        let open = [task(9, Stage::Review, "hate", 3)];
        assert_eq!(
            plan(
                Action::Reroute {
                    route: route("hate", 1)
                },
                Some(&resolved("x")),
                &[],
                "a",
                "r",
                1
            ),
            Err(Refusal::Resolved)
        );
        assert_eq!(
            plan(
                Action::Reroute {
                    route: route("hate", 3)
                },
                None,
                &open,
                "a",
                "r",
                1
            ),
            Err(Refusal::AlreadyThere)
        );
    }
}
