//! Reviewer deactivation: a deactivated reviewer's keys, sessions and password stop
//! working, their active leases in every project are cancelled in the same write, and
//! they hold no tier for the stranded-work alert; reactivation gives all but the ended
//! sessions back.

use super::*;

fn lease_lost<T: std::fmt::Debug>(r: Result<T>) {
    assert!(
        matches!(r, Err(StoreError::Conflict { code: "lease_lost", .. })),
        "{r:?}"
    );
}

async fn kinds(s: &Arc<dyn Store>) -> Vec<String> {
    s.events(None, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .filter(|k| k.starts_with("reviewer.deactivated") || k.starts_with("reviewer.reactivated"))
        .collect()
}

pub async fn deactivation_ends_leases_and_access_and_the_tier_it_held(f: Fixture) {
    let s = &f.store;
    f.submit(vec![review("x", "q", 1, 0, 1), review("z", "hate", 3, 0, 1)])
        .await;
    let a = s
        .create_reviewer(
            NewReviewer {
                name: "a".into(),
                tiers: vec![1, 3],
                projects: vec!["spam".into()],
                key_hash: "hash-a".into(),
                password_hash: Some("$argon2id$stub".into()),
            },
            "admin",
            1,
        )
        .await
        .unwrap();
    let b = f.reviewer("b", &[1]).await;
    assert_eq!(s.active_tiers(f.project.id).await.unwrap(), [1, 3]);
    s.create_session("s-a", SessionOwner::Reviewer(a.id), 10_000, 5)
        .await
        .unwrap();
    s.create_session("s-a-key", SessionOwner::Key("hash-a".into()), 10_000, 5)
        .await
        .unwrap();
    let t = f.claim(&a, Some("q"), 100).await.unwrap();
    assert!(f.claim(&b, None, 110).await.is_none(), "x's only slot is a's");

    s.set_reviewer_active("a", false, "admin", 120).await.unwrap();
    assert_eq!(s.principal("hash-a").await.unwrap(), None, "a deactivated key");
    assert_eq!(s.session("s-a", 130).await.unwrap(), None);
    assert_eq!(s.session("s-a-key", 130).await.unwrap(), None);
    assert_eq!(s.password_hash("a").await.unwrap(), None, "no sign-in");
    lease_lost(s.heartbeat(t.task_id, t.lease_id, a.id, 130).await);
    lease_lost(f.answer(&a, &t, "late", label("ham"), 130).await);
    let tb = f.claim(&b, None, 140).await.expect("the slot came back");
    assert_eq!(tb.task_id, t.task_id);
    let cancelled: Vec<_> = f
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.kind == "lease.cancelled")
        .map(|e| {
            (
                e.data["lease_id"].as_i64().unwrap(),
                e.data["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(cancelled, [(t.lease_id, "the reviewer was deactivated".to_string())]);
    let listed = s.reviewers().await.unwrap();
    let active: Vec<_> = listed.iter().map(|r| (r.reviewer.name.as_str(), r.active)).collect();
    assert_eq!(active, [("a", false), ("b", true)]);
    // Only b (tier 1) is left: the tier-3 task is stranded.
    assert_eq!(s.active_tiers(f.project.id).await.unwrap(), [1]);
    // Asking again changes nothing and writes nothing.
    s.set_reviewer_active("a", false, "admin", 150).await.unwrap();
    assert_eq!(kinds(s).await, ["reviewer.deactivated"]);

    // A hold takes a reviewer's tiers out too; deactivated and held, nobody is left.
    s.hold_reviewer(f.project.id, "b", "careless", "admin", 160)
        .await
        .unwrap();
    assert!(s.active_tiers(f.project.id).await.unwrap().is_empty());

    s.set_reviewer_active("a", true, "admin", 170).await.unwrap();
    assert_eq!(kinds(s).await, ["reviewer.deactivated", "reviewer.reactivated"]);
    assert!(matches!(s.principal("hash-a").await.unwrap(), Some(Principal::Reviewer(r)) if r.name == "a"));
    assert!(s.password_hash("a").await.unwrap().is_some());
    assert_eq!(s.session("s-a", 180).await.unwrap(), None, "ended sessions stay ended");
    assert_eq!(s.active_tiers(f.project.id).await.unwrap(), [1, 3]);
    assert!(f.claim(&a, Some("hate"), 190).await.is_some(), "a works again");
    assert!(matches!(
        s.set_reviewer_active("nobody", false, "admin", 200).await,
        Err(StoreError::NotFound { .. })
    ));
}
