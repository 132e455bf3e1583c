//! Answer fields (issue #17): the project's schema stored and read back; an answer's
//! fields checked inside the store against its task's project (a refusal writes nothing),
//! stored with the review and the `review.submitted` event, and resolved (core's plan)
//! into the label-feed row.

use std::collections::HashMap;

use flywheel_core::fields::FieldSchema;
use flywheel_core::review::Judging;

use super::*;

fn schema() -> serde_json::Value {
    json!([
        {"name": "severity", "type": "enum", "values": ["low", "medium", "high"], "required": true,
         "when_labels": ["spam"]},
        {"name": "score", "type": "number", "min": 0, "max": 10},
        {"name": "note", "type": "text", "max_length": 10}
    ])
}

pub async fn answer_fields_are_checked_stored_and_resolved(f: Fixture) {
    let s = &f.store;
    let labels = flywheel_core::LabelSet::parse(&["ham".into(), "spam".into()]).unwrap();
    let fields = FieldSchema::parse(&schema(), &labels).unwrap();
    let p = s
        .create_project(
            NewProject {
                name: "moderation".into(),
                labels: labels.names(),
                policy: json!({"rules": []}),
                answer_fields: fields.to_json(),
                label_mode: Default::default(),
            },
            "admin",
            2,
        )
        .await
        .unwrap();
    assert_eq!(p.answer_fields, fields.to_json());
    let back = s.project("moderation").await.unwrap().unwrap();
    assert_eq!(FieldSchema::parse(&back.answer_fields, &labels).unwrap(), fields);
    assert_eq!(s.project("spam").await.unwrap().unwrap().answer_fields, json!([]));

    s.submit_items(p.id, vec![review("m1", "q", 1, 0, 3)], "service", 10)
        .await
        .unwrap();
    let mut voters = Vec::new();
    for name in ["ann", "bob", "cy"] {
        let r = s
            .create_reviewer(
                NewReviewer {
                    name: name.into(),
                    tiers: vec![1],
                    projects: vec!["moderation".into()],
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
            fields: std::sync::Arc::new(fields),
            ..Judging::default()
        },
    )]
    .into();
    let claim = |r: &Reviewer, now: i64| {
        s.claim(
            ClaimRequest {
                project_id: p.id,
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
    let answer = |r: &Reviewer, t: &ClaimedTask, id: &str, fields: serde_json::Value, now: i64| {
        s.submit_review(
            NewReview {
                task_id: t.task_id,
                lease_id: t.lease_id,
                reviewer_id: r.id,
                reviewer_name: r.name.clone(),
                review_id: id.into(),
                answer: label("spam"),
                failure_category: None,
                note: None,
                fields: Some(fields),
                judging: judging.clone(),
            },
            now,
        )
    };
    let events_before = s.events(Some(p.id), 0, 10_000).await.unwrap().len();
    let t = claim(&voters[0], 20).await.unwrap().unwrap();
    let events_claimed = s.events(Some(p.id), 0, 10_000).await.unwrap().len();
    assert!(events_claimed > events_before);
    // Each refusal names the field and writes nothing; the lease still answers after.
    for (bad, at) in [
        (json!({"severity": "extreme"}), "fields.severity"),
        (json!({"score": 3}), "fields.severity"),
        (json!({"severity": "low", "score": 11}), "fields.score"),
        (json!({"severity": "low", "note": "far too long"}), "fields.note"),
        (json!({"severity": "low", "colour": "red"}), "fields.colour"),
    ] {
        match answer(&voters[0], &t, "a1", bad.clone(), 30).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, at, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert_eq!(s.events(Some(p.id), 0, 10_000).await.unwrap().len(), events_claimed);
    assert!(s.item(p.id, "m1").await.unwrap().unwrap().reviews.is_empty());

    let given = [
        json!({"severity": "high", "score": 2, "note": "first"}),
        json!({"severity": "low", "score": 9}),
        json!({"severity": "high", "score": 4, "note": "last"}),
    ];
    for (i, (r, fields)) in voters.iter().zip(given).enumerate() {
        let t = if i == 0 {
            t.clone()
        } else {
            claim(r, 40 + i as i64).await.unwrap().unwrap()
        };
        let done = answer(r, &t, &format!("a{i}"), fields, 50 + i as i64).await.unwrap();
        assert_eq!(done.outcome, if i < 2 { "waiting" } else { "resolved" });
    }
    let item = s.item(p.id, "m1").await.unwrap().unwrap();
    assert_eq!(item.reviews[1].fields, Some(json!({"severity": "low", "score": 9.0})));
    let feed = s.labels(p.id, 0, 100).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(
        feed[0].fields,
        Some(json!({"severity": "high", "score": 4.0, "note": "last"}))
    );
    let submitted: Vec<_> = s
        .events(Some(p.id), 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "review.submitted")
        .collect();
    assert_eq!(submitted.len(), 3);
    assert_eq!(submitted[0].data["fields"]["note"], "first");
}
