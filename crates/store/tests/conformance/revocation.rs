//! Revocation bites: a grant withdrawn or a hold ends the reviewer's active leases on the
//! project in the same write, giving the slots back with a `lease.cancelled` event each.

use super::*;

fn lease_lost<T: std::fmt::Debug>(r: Result<T>) {
    assert!(
        matches!(r, Err(StoreError::Conflict { code: "lease_lost", .. })),
        "{r:?}"
    );
}

/// The `lease.cancelled` events of the log, as (lease, reason).
async fn cancellations(f: &Fixture, project_id: i64) -> Vec<(i64, String)> {
    let events = f.store.events(Some(project_id), 0, 10_000).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.kind == "lease.cancelled")
        .map(|e| {
            (
                e.data["lease_id"].as_i64().unwrap(),
                e.data["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub async fn a_withdrawn_grant_cancels_that_projects_leases(f: Fixture) {
    let s = &f.store;
    let other = s
        .create_project(
            NewProject {
                name: "other".into(),
                labels: vec!["ham".into(), "spam".into()],
                policy: json!({"rules": []}),
            },
            "admin",
            2,
        )
        .await
        .unwrap();
    f.submit(vec![review("x", "q", 1, 0, 1)]).await;
    s.submit_items(other.id, vec![review("o", "q", 1, 0, 1)], "service", 10)
        .await
        .unwrap();
    let a = f.reviewer("a", &[1]).await;
    let b = f.reviewer("b", &[1]).await;
    s.update_reviewer("a", vec![1], vec!["spam".into(), "other".into()], "admin", 20)
        .await
        .unwrap();
    let ta = f.claim(&a, None, 100).await.unwrap();
    let in_other = ClaimRequest {
        project_id: other.id,
        reviewer_id: a.id,
        reviewer_name: "a".into(),
        tiers: vec![1],
        queue: None,
        lease_ms: LEASE,
        gold: false,
    };
    let to = s.claim(in_other, 100).await.unwrap().unwrap();
    assert!(f.claim(&b, None, 110).await.is_none(), "x's only slot is a's");

    s.update_reviewer("a", vec![1], vec!["other".into()], "admin", 120)
        .await
        .unwrap();
    lease_lost(s.heartbeat(ta.task_id, ta.lease_id, a.id, 130).await);
    lease_lost(f.answer(&a, &ta, "r1", label("ham"), 130).await);
    let tb = f.claim(&b, None, 140).await.expect("the slot came back");
    assert_eq!(tb.task_id, ta.task_id);
    assert_eq!(
        cancellations(&f, f.project.id).await,
        [(ta.lease_id, "the reviewer's grant was withdrawn".to_string())]
    );
    assert_eq!(
        f.answer(&b, &tb, "rb", label("ham"), 150).await.unwrap().outcome,
        "resolved"
    );

    // The lease in the project still granted lives on.
    assert!(s.heartbeat(to.task_id, to.lease_id, a.id, 150).await.is_ok());
    assert!(cancellations(&f, other.id).await.is_empty());
}

pub async fn a_hold_cancels_the_reviewers_leases_in_the_project(f: Fixture) {
    let s = &f.store;
    f.submit(vec![review("x", "q", 1, 0, 1), review("y", "q", 1, 0, 1)])
        .await;
    let a = f.reviewer("a", &[1]).await;
    let b = f.reviewer("b", &[1]).await;
    let t1 = f.claim(&a, None, 100).await.unwrap();
    let t2 = f.claim(&a, None, 100).await.unwrap();
    assert!(f.claim(&b, None, 110).await.is_none(), "a holds both");

    s.hold_reviewer(f.project.id, "a", "careless", "admin", 120)
        .await
        .unwrap();
    for t in [&t1, &t2] {
        lease_lost(s.heartbeat(t.task_id, t.lease_id, a.id, 130).await);
        lease_lost(f.answer(&a, t, &format!("r{}", t.task_id), label("ham"), 130).await);
    }
    let again = ClaimRequest {
        project_id: f.project.id,
        reviewer_id: a.id,
        reviewer_name: "a".into(),
        tiers: vec![1],
        queue: None,
        lease_ms: LEASE,
        gold: false,
    };
    let refused = s.claim(again, 140).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Forbidden {
                code: "reviewer_held",
                ..
            })
        ),
        "{refused:?}"
    );
    let mut freed = vec![
        f.claim(&b, None, 140).await.unwrap().task_id,
        f.claim(&b, None, 140).await.unwrap().task_id,
    ];
    freed.sort_unstable();
    assert_eq!(freed, [t1.task_id, t2.task_id]);
    let reasons: Vec<_> = cancellations(&f, f.project.id).await;
    assert_eq!(
        reasons,
        [
            (t1.lease_id, "the reviewer was held".to_string()),
            (t2.lease_id, "the reviewer was held".to_string())
        ]
    );
}
