//! An admin's override: resolve an item (its open tasks closed, their leases cancelled, a
//! human resolution with method `override` in the label feed) or re-route it (a new task
//! where the admin said), with `item.overridden` naming who, what and why.

use flywheel_core::overrides::Action;
use flywheel_core::policy::Route;

use super::*;

fn o(external_id: &str, action: Action, reason: &str) -> NewOverride {
    NewOverride {
        external_id: external_id.into(),
        action,
        reason: reason.into(),
        actor: "admin".into(),
    }
}

fn resolve(label: &str) -> Action {
    Action::Resolve {
        label: label.into(),
        labels: None,
        fields: None,
    }
}

fn reroute(queue: &str, tier: u8) -> Action {
    Action::Reroute {
        route: Route {
            queue: queue.into(),
            tier,
            ..Route::default_review()
        },
    }
}

pub async fn an_override_resolves_or_reroutes_and_ends_the_leases(f: Fixture) {
    let s = &f.store;
    // x: overlap 2 at tier 1, one reviewer on it; y: stranded at tier 3.
    f.submit(vec![review("x", "q", 1, 0, 2), review("y", "hate", 3, 0, 1)])
        .await;
    let ann = f.reviewer("ann", &[1]).await;
    let bob = f.reviewer("bob", &[1, 2]).await;
    let t = f.claim(&ann, Some("q"), 100).await.unwrap();

    let done = s
        .override_item(f.project.id, o("x", resolve("spam"), "policy call"), 200)
        .await
        .unwrap();
    assert_eq!(done.closed_tasks, [t.task_id]);
    assert_eq!(done.cancelled_leases, [t.lease_id]);
    assert_eq!(done.task_id, None);
    let r = done.resolution.unwrap();
    assert_eq!(
        (r.label.as_str(), r.source, r.method.as_str(), r.reviewers.clone()),
        (
            "spam",
            flywheel_core::task::Source::Human,
            "override",
            vec!["admin".to_string()]
        )
    );
    // ann's late answer is refused; nobody is offered x again.
    let late = f.answer(&ann, &t, "late", label("ham"), 210).await;
    assert!(
        matches!(late, Err(StoreError::Conflict { code: "lease_lost", .. })),
        "{late:?}"
    );
    assert!(f.claim(&bob, Some("q"), 220).await.is_none());
    let x = s.item(f.project.id, "x").await.unwrap().unwrap();
    assert_eq!(x.resolution.as_ref().map(|r| r.method.as_str()), Some("override"));
    assert!(
        x.tasks
            .iter()
            .all(|t| t.state == "done" && t.reason.as_deref() == Some("the item was overridden"))
    );
    let feed = f.all_labels().await;
    assert_eq!(
        feed.iter()
            .map(|l| (l.external_id.as_str(), l.label.as_str()))
            .collect::<Vec<_>>(),
        [("x", "spam")]
    );
    let kinds: Vec<String> = x.events.iter().map(|e| e.kind.clone()).collect();
    for k in ["lease.cancelled", "item.overridden", "item.resolved"] {
        assert!(kinds.contains(&k.to_string()), "{k} in {kinds:?}");
    }
    let overridden = x.events.iter().find(|e| e.kind == "item.overridden").unwrap();
    assert_eq!(overridden.actor, "admin");
    assert_eq!(overridden.data["reason"], "policy call");
    assert_eq!(overridden.data["label"], "spam");

    // Resolved again with another label: the feed gets the new one, the event the old.
    s.override_item(f.project.id, o("x", resolve("ham"), "second look"), 230)
        .await
        .unwrap();
    assert_eq!(f.all_labels().await.len(), 2);
    let x = s.item(f.project.id, "x").await.unwrap().unwrap();
    assert_eq!(x.resolution.unwrap().label, "ham");

    // y's tier-3 task, re-routed to tier 2, is bob's to claim.
    let moved = s
        .override_item(f.project.id, o("y", reroute("hate", 2), "no tier-3 reviewer"), 300)
        .await
        .unwrap();
    let new_task = moved.task_id.expect("a new task");
    assert_eq!(moved.closed_tasks.len(), 1);
    assert!(moved.resolution.is_none());
    let claimed = f.claim(&bob, Some("hate"), 310).await.expect("tier 2 is bob's");
    assert_eq!(claimed.task_id, new_task);
    let refused = s
        .override_item(f.project.id, o("y", reroute("hate", 2), "again"), 320)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict {
                code: "already_routed",
                ..
            })
        ),
        "{refused:?}"
    );
    let refused = s
        .override_item(f.project.id, o("x", reroute("q", 1), "reopen"), 320)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict {
                code: "item_resolved",
                ..
            })
        ),
        "{refused:?}"
    );
    let missing = s.override_item(f.project.id, o("nope", resolve("ham"), "r"), 320).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
    let y = s.item(f.project.id, "y").await.unwrap().unwrap();
    let rerouted = y.events.iter().find(|e| e.kind == "item.overridden").unwrap();
    assert_eq!(
        (
            rerouted.data["queue"].clone(),
            rerouted.data["tier"].clone(),
            rerouted.data["task_id"].clone()
        ),
        (json!("hate"), json!(2), json!(new_task))
    );
}
