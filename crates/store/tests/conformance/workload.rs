//! `workload_answers`: one row per answer in `[since, until)` with what core's workload
//! report needs — gold answers left out, the item's final label, escalations, and whether
//! the task's label answers disagreed (counting answers outside the window).

use flywheel_core::workload::Answer as Row;

use super::*;

async fn answer_with(
    f: &Fixture,
    r: &Reviewer,
    t: &ClaimedTask,
    answer: Answer,
    category: Option<&str>,
    now: i64,
) -> ReviewResult {
    f.store
        .submit_review(
            NewReview {
                task_id: t.task_id,
                lease_id: t.lease_id,
                reviewer_id: r.id,
                reviewer_name: r.name.clone(),
                review_id: format!("w{now}"),
                answer,
                failure_category: category.map(Into::into),
                note: None,
                fields: None,
                judging: Default::default(),
            },
            now,
        )
        .await
        .unwrap()
}

pub async fn workload_answers_are_read_by_window(f: Fixture) {
    let s = &f.store;
    let gold = vec![NewGold {
        external_id: "g0".into(),
        payload: json!({"text": "gold"}),
        attributes: json!({}),
        label: "spam".into(),
        prediction: None,
    }];
    s.add_gold(f.project.id, gold, "admin", 5).await.unwrap();
    f.submit(vec![
        review("r0", "q", 1, 0, 2),
        review("r1", "q", 1, 0, 1),
        review("r2", "q", 1, 0, 1),
    ])
    .await;
    let a = f.reviewer("a", &[1]).await;
    let b = f.reviewer("b", &[1]).await;

    // r0: a spam (1 s, sarcasm), b ham (3 s): a tie, adjudication pending.
    let t = f.claim(&a, None, 100).await.unwrap();
    assert_eq!(t.external_id, "r0");
    answer_with(&f, &a, &t, label("spam"), Some("sarcasm"), 1_100).await;
    let t = f.claim(&b, None, 1_200).await.unwrap();
    assert_eq!(t.external_id, "r0");
    assert_eq!(
        answer_with(&f, &b, &t, label("ham"), None, 4_200).await.outcome,
        "adjudicate"
    );
    // r1: a escalates after 0.5 s. r2: b answers spam (2 s) and resolves it.
    let t = f.claim(&a, None, 5_000).await.unwrap();
    assert_eq!(t.external_id, "r1");
    let esc = Answer::Escalate {
        reason: "unsure".into(),
    };
    answer_with(&f, &a, &t, esc, None, 5_500).await;
    let t = f.claim(&b, None, 6_000).await.unwrap();
    assert_eq!(t.external_id, "r2");
    answer_with(&f, &b, &t, label("spam"), None, 8_000).await;
    // A gold task, answered: reviewer time, but gold is never counted.
    let gold_claim = ClaimRequest {
        project_id: f.project.id,
        reviewer_id: a.id,
        reviewer_name: "a".into(),
        tiers: vec![1],
        queue: None,
        lease_ms: LEASE,
        gold: Some(0.0),
    };
    s.submit_items(f.project.id, vec![review("r3", "q", 1, 0, 1)], "service", 8_500)
        .await
        .unwrap();
    let t = s.claim(gold_claim, 9_000).await.unwrap().unwrap();
    assert_eq!(t.external_id, "g0", "the gold copy of r3");
    answer_with(&f, &a, &t, label("spam"), None, 9_900).await;

    let row = |reviewer: &str, label: Option<&str>, category: Option<&str>, escalated, disagreed, ms| Row {
        reviewer: reviewer.into(),
        queue: "q".into(),
        tier: 1,
        failure_category: category.map(Into::into),
        label: label.map(Into::into),
        escalated,
        disagreed,
        ms,
    };
    let all = s.workload_answers(f.project.id, 0, 100_000).await.unwrap();
    assert_eq!(
        all,
        vec![
            row("a", None, Some("sarcasm"), false, true, 1_000),
            row("b", None, None, false, true, 3_000),
            row("a", None, None, true, false, 500),
            row("b", Some("spam"), None, false, false, 2_000),
        ]
    );
    // `since` inclusive, `until` not; b's answer (outside) still makes a's disagree.
    let window = s.workload_answers(f.project.id, 1_100, 4_200).await.unwrap();
    assert_eq!(window, vec![row("a", None, Some("sarcasm"), false, true, 1_000)]);
    assert!(
        s.workload_answers(f.project.id, 9_000, 100_000)
            .await
            .unwrap()
            .is_empty()
    );
}
