//! Multi-label projects (issue #17): `label_mode: "multi"` at creation; independent scores;
//! rules on `labels_above`, `max_score`, `min_margin`; the auto set; answers with
//! `labels: [..]` (each invalid answer a 422 naming the field, nothing written), decided
//! per label with adjudication on a label's disagreement; the label feed's `labels`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn policy() -> Value {
    json!({"rules": [
        {"name": "clear", "when": "min_margin >= 0.4", "action": "auto"},
        {"name": "two", "when": "size(labels_above(0.5)) >= 2", "action": "review", "queue": "multi", "overlap": 2},
        {"name": "rest", "when": "has_prediction", "action": "review", "queue": "rest", "overlap": 2}]})
}

/// Creates the multi-label project `mod` (hate, spam, violence) and a service key for it.
async fn multi_project(app: &TestApp) -> String {
    let (s, v) = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "mod", "labels": ["hate", "spam", "violence"], "label_mode": "multi", "policy": policy()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["label_mode"], "multi");
    let (s, v) = app
        .post("/v1/keys", ADMIN, json!({"scope": "service", "projects": ["mod"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["api_key"].as_str().unwrap().to_string()
}

fn scored(id: &str, hate: f64, spam: f64, violence: f64) -> Value {
    json!({"external_id": id, "payload": {"text": id},
           "prediction": {"model": "m", "scores": {"hate": hate, "spam": spam, "violence": violence}}})
}

async fn the_feed(app: &TestApp, key: &str) -> Vec<Value> {
    let (s, v) = app.get("/v1/projects/mod/labels?limit=1000", key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["labels"].as_array().unwrap().clone()
}

async fn a_multi_label_project_is_declared_and_its_rules_checked(db: Db) {
    let app = spawn_app(&db).await;
    let create = |mode: Value, rule: Value| json!({"name": "bad", "labels": ["hate", "spam"], "label_mode": mode, "policy": {"rules": [rule]}});
    let auto = |when: &str| json!({"name": "r", "when": when, "action": "auto"});
    for (body, field) in [
        (create(json!("many"), auto("true")), "label_mode"),
        (
            create(json!("multi"), auto("confidence >= 0.9")),
            "policy.rules[0].when",
        ),
        (create(json!("multi"), auto("label == 'hate'")), "policy.rules[0].when"),
        (
            create(json!("single"), auto("max_score >= 0.9")),
            "policy.rules[0].when",
        ),
        (
            create(
                json!("multi"),
                json!({"name": "r", "when": "true", "action": "auto", "label": "hate"}),
            ),
            "policy.rules[0].label",
        ),
    ] {
        let (s, v) = app.post("/v1/projects", ADMIN, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    multi_project(&app).await;
    let (s, v) = app.get("/v1/projects/mod", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["label_mode"], "multi");
    // Today's projects are single-label.
    app.project("plain", json!({"rules": []})).await;
    let (_, v) = app.get("/v1/projects/plain", ADMIN).await;
    assert_eq!(v["label_mode"], "single");
    // A policy update is checked against the mode too.
    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            "/v1/projects/mod/policy",
            ADMIN,
            Some(json!({"rules": [auto("margin > 0.5")]})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rules[0].when")),
        "{v}"
    );
    app.stop().await;
    db.cleanup().await;
}

async fn multi_label_items_are_routed_answered_and_fed_as_sets(db: Db) {
    let app = spawn_app(&db).await;
    let svc = multi_project(&app).await;
    // Scores are independent: 0.95 + 0.9 > 1 is a valid prediction.
    let decisions = app
        .submit(
            "mod",
            &svc,
            json!([
                scored("a", 0.95, 0.05, 0.9),
                scored("b", 0.8, 0.7, 0.3),
                scored("c", 0.6, 0.1, 0.1)
            ]),
        )
        .await;
    assert_eq!(decisions[0]["outcome"], "auto", "{decisions:?}");
    assert_eq!(decisions[0]["labels"], json!(["hate", "violence"]));
    assert_eq!(decisions[1]["rule"], "two");
    assert_eq!(decisions[1]["route"]["queue"], "multi");
    assert_eq!(decisions[2]["rule"], "rest");
    // A score out of [0, 1] is still refused.
    let (s, v) = app
        .post(
            "/v1/projects/mod/items",
            &svc,
            json!({"items": [scored("z", 1.2, 0.0, 0.0)]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    let plain = app
        .project(
            "plain",
            json!({"rules": [{"name": "all", "when": "true", "action": "review"}]}),
        )
        .await;
    let ann = app.reviewer("ann", &[1], &["mod", "plain"]).await;
    let bob = app.reviewer("bob", &[1], &["mod"]).await;
    let cy = app.reviewer("cy", &[2], &["mod"]).await;
    let t = app.claim("mod", &ann, Some("multi")).await.unwrap();
    assert_eq!(t["item"]["external_id"], "b");
    let before = app.events("mod").await.len();
    for (answer, field) in [
        (json!({"label": "hate"}), "label"),
        (json!({"labels": ["hate", "eggs"]}), "labels[1]"),
        (json!({"labels": ["spam", "spam"]}), "labels[1]"),
        (json!({"labels": "hate"}), "labels"),
        (json!({"labels": ["hate"], "label": "hate"}), "label"),
    ] {
        let (s, v) = app.answer(&ann, &t, "a1", answer.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{answer}: {v}");
        assert_eq!(v["error"]["field"], field, "{answer}: {v}");
    }
    assert_eq!(app.events("mod").await.len(), before, "a refused answer writes nothing");

    // b: both reviewers give {hate, spam} (in any order): resolved to the set.
    let (s, v) = app.answer(&ann, &t, "a1", json!({"labels": ["spam", "hate"]})).await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("waiting")), "{v}");
    let t = app.claim("mod", &bob, Some("multi")).await.unwrap();
    let (s, v) = app.answer(&bob, &t, "b1", json!({"labels": ["hate", "spam"]})).await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("resolved")), "{v}");
    assert_eq!(v["resolution"]["labels"], json!(["hate", "spam"]));

    // c: agree on hate, disagree on violence: adjudication, which cy settles.
    let t = app.claim("mod", &ann, Some("rest")).await.unwrap();
    app.answer(&ann, &t, "a2", json!({"labels": ["hate"]})).await;
    let t = app.claim("mod", &bob, Some("rest")).await.unwrap();
    let (_, v) = app
        .answer(&bob, &t, "b2", json!({"labels": ["hate", "violence"]}))
        .await;
    assert_eq!(v["outcome"], "adjudicate", "{v}");
    let t = app.claim("mod", &cy, None).await.unwrap();
    assert_eq!(
        (t["stage"].as_str(), t["item"]["external_id"].as_str()),
        (Some("adjudicate"), Some("c"))
    );
    assert_eq!(t["context"]["reason"], "reviewers disagreed on 'violence'");
    let (_, v) = app.answer(&cy, &t, "c1", json!({"labels": []})).await;
    assert_eq!(v["resolution"]["labels"], json!([]), "none of these: {v}");

    let feed = the_feed(&app, &svc).await;
    let rows: Vec<(&str, &Value, &str)> = feed
        .iter()
        .map(|r| {
            (
                r["external_id"].as_str().unwrap(),
                &r["labels"],
                r["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("a", &json!(["hate", "violence"]), "auto"),
            ("b", &json!(["hate", "spam"]), "human"),
            ("c", &json!([]), "adjudicated"),
        ]
    );
    assert!(feed.iter().all(|r| r.get("label").is_none()), "{feed:?}");
    let events = app.events("mod").await;
    let resolved = events.iter().find(|e| e["kind"] == "item.resolved").unwrap();
    assert_eq!(resolved["data"]["labels"], json!(["hate", "spam"]), "{resolved}");
    let (_, detail) = app.get("/v1/projects/mod/items/a", &svc).await;
    assert_eq!(detail["resolution"]["labels"], json!(["hate", "violence"]), "{detail}");

    // `labels` in a single-label project is refused naming `labels`.
    app.submit("plain", &plain, json!([item("p1", "one", Some(0.5))])).await;
    let t = app.claim("plain", &ann, None).await.unwrap();
    let (s, v) = app.answer(&ann, &t, "p1", json!({"labels": ["spam"]})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("labels")),
        "{v}"
    );
    app.stop().await;
    db.cleanup().await;
}

on_both_backends!(
    a_multi_label_project_is_declared_and_its_rules_checked,
    multi_label_items_are_routed_answered_and_fed_as_sets,
);
