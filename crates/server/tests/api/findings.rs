//! Findings reach the model: an investigator's structured answer on a flagged transaction
//! (`fraud`, the `pattern` field, a note) is in the label feed at once, and the next training step takes it in — its cursor at or below
//! the model's `trained_through`, and the model's score moved by it. What `flywheel demo
//! fraud` measures in simulated time (the step's time minus the answer's); here only the
//! inclusion is asserted, never a time.

use reqwest::StatusCode;
use serde_json::{Value, json};

use std::sync::Arc;

use flywheel_server::ManualClock;

use crate::helpers::*;

async fn a_finding_reaches_the_model_at_the_next_training_step(db: Db) {
    let options = flywheel_server::ServeOptions {
        background_learning: false,
        ..Default::default()
    };
    let app = spawn_with(&db, Arc::new(ManualClock::new(START_MS)), options).await;
    let policy = json!({
        "rules": [
            {"name": "gift_cards", "when": "attributes.mcc == 'gift_cards'", "action": "review", "queue": "investigations"},
            {"name": "approve", "when": "true", "action": "auto", "label": "legit"}],
        "consensus": {"method": "majority", "min_confidence": 0.0, "max_overlap": 1},
        "model": {"enabled": true, "bits": 16}});
    let (s, v) = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "cards", "labels": ["fraud", "legit"], "policy": policy, "answer_fields": [
                {"name": "pattern", "type": "enum", "values": ["card_testing", "new_pattern_unknown", "none"], "required": true},
                {"name": "note", "type": "text"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = app
        .post("/v1/keys", ADMIN, json!({"scope": "service", "projects": ["cards"]}))
        .await;
    let svc = v["api_key"].as_str().unwrap().to_string();
    let inv = app.reviewer("investigator", &[1], &["cards"]).await;
    let attributes =
        |i: usize| json!({"mcc": "gift_cards", "channel": "online", "amount": 150.0 + 50.0 * (i % 3) as f64});
    let score = async || {
        let (s, p) = app
            .post(
                "/v1/projects/cards/model/predict",
                &svc,
                json!({"items": [{"payload": {"text": "online gift_cards"}, "attributes": attributes(0)}]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        p["predictions"][0]["scores"]["fraud"].as_f64().unwrap()
    };
    let before = score().await;

    let items: Vec<Value> = (0..20)
        .map(|i| json!({"external_id": format!("tx-{i}"), "payload": {"text": "online gift_cards"}, "attributes": attributes(i)}))
        .collect();
    let d = app.submit("cards", &svc, Value::Array(items)).await;
    assert!(d.iter().all(|d| d["outcome"] == "review"), "{d:?}");
    let mut found = Vec::new();
    while let Some(t) = app.claim("cards", &inv, None).await {
        let (s, v) = app
            .answer(
                &inv,
                &t,
                &format!("f{}", t["task_id"]),
                json!({"label": "fraud", "fields": {"pattern": "new_pattern_unknown", "note": "gift cards bought online in round amounts"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        found.push(t["item"]["external_id"].as_str().unwrap().to_string());
    }
    assert_eq!(found.len(), 20);

    // Each finding is in the label feed as soon as it is acknowledged.
    let (_, page) = app.get("/v1/projects/cards/labels?after=0&limit=1000", &svc).await;
    let cursors: Vec<(String, i64)> = page["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["external_id"].as_str().unwrap().to_string(),
                r["cursor"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(cursors.len(), 20, "{page}");
    assert!(
        page["labels"].as_array().unwrap().iter().all(|r| r["source"] == "human"
            && r["label"] == "fraud"
            && r["fields"]["pattern"] == "new_pattern_unknown"),
        "structured findings: {page}"
    );
    let (_, m) = app.get("/v1/projects/cards/model", &svc).await;
    assert!(
        cursors.iter().all(|(_, c)| *c > m["trained_through"].as_i64().unwrap()),
        "nothing trains by itself: {m}"
    );

    // The next training step takes every one of them in.
    let (s, trained) = app.post("/v1/projects/cards/model/train", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{trained}");
    let through = trained["trained_through"].as_i64().unwrap();
    for (id, c) in &cursors {
        assert!(
            *c <= through,
            "finding {id} at cursor {c} is past the model's {through}"
        );
    }
    // A tenth is held back for evaluation; the rest moved the weights.
    assert!(trained["examples_seen"].as_u64().unwrap() >= 14, "{trained}");
    let after = score().await;
    assert!(
        after > before + 0.2,
        "the findings moved the score: {before} -> {after}"
    );
    app.stop().await;
}

on_both_backends!(a_finding_reaches_the_model_at_the_next_training_step);
