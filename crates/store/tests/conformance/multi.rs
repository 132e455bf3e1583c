//! Multi-label projects (issue #17): the mode stored and read back; a `labels` answer
//! checked inside the store against its task's project (a refusal writes nothing), stored
//! as its canonical encoding, decided per label by core's plan, and fed to the label feed
//! and the events with its set.

use std::collections::HashMap;

use flywheel_core::LabelMode;
use flywheel_core::review::Judging;

use super::*;

fn set(v: &[&str]) -> Answer {
    Answer::Labels(v.iter().map(|s| s.to_string()).collect())
}

pub async fn multi_label_answers_are_checked_stored_and_decided_per_label(f: Fixture) {
    let s = &f.store;
    let names: Vec<String> = ["hate", "spam", "violence"].map(String::from).to_vec();
    let p = s
        .create_project(
            NewProject {
                name: "moderation".into(),
                labels: names.clone(),
                policy: json!({"rules": []}),
                answer_fields: json!([]),
                label_mode: LabelMode::Multi,
            },
            "admin",
            2,
        )
        .await
        .unwrap();
    assert_eq!(p.label_mode, LabelMode::Multi);
    assert_eq!(
        s.project("moderation").await.unwrap().unwrap().label_mode,
        LabelMode::Multi
    );
    assert_eq!(s.project("spam").await.unwrap().unwrap().label_mode, LabelMode::Single);

    let mut auto_item = auto("m0", r#"["spam"]"#, false);
    auto_item.prediction = None;
    s.submit_items(
        p.id,
        vec![review("m1", "q", 1, 0, 2), review("m2", "q", 1, 0, 2), auto_item],
        "service",
        10,
    )
    .await
    .unwrap();
    let mut voters = Vec::new();
    for name in ["ann", "bob"] {
        let r = s
            .create_reviewer(
                NewReviewer {
                    name: name.into(),
                    tiers: vec![1],
                    projects: vec!["moderation".into(), "spam".into()],
                    key_hash: format!("hash-{name}"),
                    password_hash: None,
                },
                "admin",
                1,
            )
            .await
            .unwrap();
        voters.push(r);
    }
    let judging: HashMap<i64, Judging> = [(
        p.id,
        Judging {
            multi: Some(names.clone().into()),
            ..Judging::default()
        },
    )]
    .into();
    let claim = |r: &Reviewer, project_id: i64, now: i64| {
        s.claim(
            ClaimRequest {
                project_id,
                reviewer_id: r.id,
                reviewer_name: r.name.clone(),
                tiers: r.tiers.clone(),
                queue: None,
                lease_ms: LEASE,
                gold: None,
            },
            now,
        )
    };
    let answer = |r: &Reviewer, t: &ClaimedTask, id: &str, answer: Answer, now: i64| {
        s.submit_review(
            NewReview {
                task_id: t.task_id,
                lease_id: t.lease_id,
                reviewer_id: r.id,
                reviewer_name: r.name.clone(),
                review_id: id.into(),
                answer,
                failure_category: None,
                note: None,
                fields: None,
                judging: judging.clone(),
            },
            now,
        )
    };
    s.submit_items(f.project.id, vec![review("s1", "q", 1, 0, 1)], "service", 11)
        .await
        .unwrap();
    let t = claim(&voters[0], p.id, 20).await.unwrap().unwrap();
    let single = claim(&voters[1], f.project.id, 21).await.unwrap().unwrap();
    let events_claimed = s.events(None, 0, 100_000).await.unwrap().len();
    // Each refusal names the field and writes nothing; the lease still answers after.
    for (bad, at) in [
        (label("hate"), "label"),
        (set(&["hate", "eggs"]), "labels[1]"),
        (set(&["spam", "spam"]), "labels[1]"),
    ] {
        match answer(&voters[0], &t, "a1", bad.clone(), 30).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, at, "{bad:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // `labels` in a single-label project is refused naming `labels`.
    match answer(&voters[1], &single, "s1", set(&["spam"]), 31).await {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "labels"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.events(None, 0, 100_000).await.unwrap().len(), events_claimed);
    assert!(s.item(p.id, &t.external_id).await.unwrap().unwrap().reviews.is_empty());

    // m1: the same set in two orders resolves to it, in project order.
    let first = t.external_id.clone();
    assert_eq!(
        answer(&voters[0], &t, "a1", set(&["violence", "hate"]), 40)
            .await
            .unwrap()
            .outcome,
        "waiting"
    );
    let t2 = claim(&voters[1], p.id, 41).await.unwrap().unwrap();
    assert_eq!(t2.external_id, first);
    let done = answer(&voters[1], &t2, "b1", set(&["hate", "violence"]), 42)
        .await
        .unwrap();
    assert_eq!(done.outcome, "resolved");
    let res = done.resolution.unwrap();
    assert_eq!(res.label, r#"["hate","violence"]"#);
    assert_eq!(res.labels, Some(vec!["hate".to_string(), "violence".to_string()]));

    // m2: agree on hate, disagree on violence: adjudication, no label.
    let t = claim(&voters[0], p.id, 50).await.unwrap().unwrap();
    answer(&voters[0], &t, "a2", set(&["hate"]), 51).await.unwrap();
    let t = claim(&voters[1], p.id, 52).await.unwrap().unwrap();
    let done = answer(&voters[1], &t, "b2", set(&["hate", "violence"]), 53)
        .await
        .unwrap();
    assert_eq!(done.outcome, "adjudicate");

    let feed = s.labels(p.id, 0, 100).await.unwrap();
    let fed: Vec<(&str, &str)> = feed
        .iter()
        .map(|l| (l.external_id.as_str(), l.label.as_str()))
        .collect();
    assert_eq!(
        fed,
        vec![("m0", r#"["spam"]"#), (first.as_str(), r#"["hate","violence"]"#)]
    );
    let item = s.item(p.id, &first).await.unwrap().unwrap();
    assert_eq!(item.reviews[0].label.as_deref(), Some(r#"["hate","violence"]"#));

    let events = s.events(Some(p.id), 0, 10_000).await.unwrap();
    let submitted: Vec<_> = events.iter().filter(|e| e.kind == "review.submitted").collect();
    assert_eq!(submitted[0].data["labels"], json!(["hate", "violence"]));
    let resolved: Vec<_> = events.iter().filter(|e| e.kind == "item.resolved").collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].data["labels"], json!(["hate", "violence"]));
    let escalated = events.iter().find(|e| e.kind == "task.escalated").unwrap();
    assert_eq!(escalated.data["reason"], "reviewers disagreed on 'violence'");
}
