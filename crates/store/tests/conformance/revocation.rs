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
                answer_fields: json!([]),
                label_mode: Default::default(),
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
        gold: None,
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
        gold: None,
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

/// The automatic hold a gold answer places ends the reviewer's other leases in the project
/// in the same write, as an admin's hold does: heartbeat and answer get `lease_lost`, the
/// slot goes to another reviewer, and a `lease.cancelled` event says why.
pub async fn a_gold_hold_cancels_the_reviewers_other_leases(f: Fixture) {
    use flywheel_core::policy::QualitySpec;
    let s = &f.store;
    let gold = (0..3)
        .map(|i| NewGold {
            external_id: format!("g{i}"),
            payload: json!({"text": "gold"}),
            attributes: json!({}),
            label: "spam".into(),
            prediction: None,
        })
        .collect();
    s.add_gold(f.project.id, gold, "admin", 5).await.unwrap();
    f.submit((0..4).map(|i| review(&format!("r{i}"), "q", 1, 0, 1)).collect())
        .await;
    let a = f.reviewer("a", &[1]).await;
    let b = f.reviewer("b", &[1]).await;
    let judging: std::collections::HashMap<i64, Judging> = [(
        f.project.id,
        Judging {
            quality: Some(QualitySpec {
                gold_rate: 1.0,
                min_accuracy: 0.9,
                min_gold: 2,
            }),
            ..Default::default()
        },
    )]
    .into();
    let request = |gold: bool| ClaimRequest {
        project_id: f.project.id,
        reviewer_id: a.id,
        reviewer_name: "a".into(),
        tiers: vec![1],
        queue: None,
        lease_ms: LEASE,
        gold: gold.then_some(0.0),
    };
    // a holds a regular task, then answers gold wrongly until held.
    let kept = s.claim(request(false), 100).await.unwrap().unwrap();
    assert!(!kept.external_id.starts_with('g'));
    for n in 0..2 {
        let t = s.claim(request(true), 110 + n).await.unwrap().unwrap();
        assert!(t.external_id.starts_with('g'), "gold was asked for");
        let answer = NewReview {
            task_id: t.task_id,
            lease_id: t.lease_id,
            reviewer_id: a.id,
            reviewer_name: "a".into(),
            review_id: format!("g{n}"),
            answer: label("ham"),
            failure_category: None,
            note: None,
            fields: None,
            judging: judging.clone(),
        };
        s.submit_review(answer, 120 + n).await.unwrap();
    }
    assert!(
        s.reviewer_stats(f.project.id).await.unwrap()[0].held,
        "held after two wrong gold answers"
    );
    lease_lost(s.heartbeat(kept.task_id, kept.lease_id, a.id, 130).await);
    lease_lost(f.answer(&a, &kept, "late", label("ham"), 130).await);
    assert_eq!(
        cancellations(&f, f.project.id).await,
        [(kept.lease_id, "the reviewer was held for low gold accuracy".to_string())]
    );
    // The slot came back: b can be handed the task a held.
    let mut handed = Vec::new();
    while let Some(t) = f.claim(&b, None, 140).await {
        handed.push(t.task_id);
    }
    assert!(handed.contains(&kept.task_id), "{handed:?}");
}

/// What "never the same item twice" means: a reviewer is never handed an item they
/// answered or skipped (in any task of it, adjudication included); an item whose lease
/// expired or was cancelled before they answered may come back to them, since they gave
/// no answer on it.
pub async fn an_item_answered_or_skipped_never_comes_back(f: Fixture) {
    f.submit(vec![review("x", "q", 1, 0, 2), review("y", "q", 1, 0, 1)])
        .await;
    let a = f.reviewer("a", &[1]).await;
    let b = f.reviewer("b", &[1]).await;
    let tx = f.claim(&a, None, 100).await.unwrap();
    assert_eq!(tx.external_id, "x");
    let ty = f.claim(&a, None, 100).await.unwrap();
    assert_eq!(ty.external_id, "y");
    // a answers x (which waits for a second reviewer) and skips y.
    let r = f.answer(&a, &tx, "ax", label("ham"), 110).await.unwrap();
    assert_eq!(r.outcome, "waiting");
    let r = f
        .answer(&a, &ty, "ay", Answer::Skip { reason: "later".into() }, 110)
        .await
        .unwrap();
    assert_eq!(r.outcome, "requeued");
    assert!(
        f.claim(&a, None, 120).await.is_none(),
        "x (answered, a slot open) and y (skipped) are not a's again"
    );
    // b leases both and lets the leases expire: b gave no answer, so both may be b's again.
    let (f, b) = (&f, &b);
    let claims = |now: i64| async move {
        let mut got = Vec::new();
        while let Some(t) = f.claim(b, None, now).await {
            got.push(t.external_id);
        }
        got.sort();
        got
    };
    assert_eq!(claims(130).await, ["x", "y"]);
    assert_eq!(f.store.expire_leases(130 + LEASE, 100).await.unwrap(), 2);
    assert_eq!(
        claims(140 + LEASE).await,
        ["x", "y"],
        "an expired lease's item may come back"
    );
    assert!(f.claim(&a, None, 150 + LEASE).await.is_none(), "still nothing for a");
}
