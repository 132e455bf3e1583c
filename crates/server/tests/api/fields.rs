//! Answer fields (issue #17): declared with the project, checked on every answer (a 422
//! naming `fields.<name>`, nothing written), stored with the review, shown in the item's
//! story and the `review.submitted` event, and resolved into the label feed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn schema() -> Value {
    json!([
        {"name": "severity", "type": "enum", "values": ["low", "medium", "high"], "required": true,
         "when_labels": ["spam"]},
        {"name": "score", "type": "number", "min": 0, "max": 10},
        {"name": "urgent", "type": "bool"},
        {"name": "note", "type": "text", "max_length": 20}
    ])
}

/// Creates project `spam` (labels ham, spam) with `schema()` and `policy`; a service key.
async fn project_with_fields(app: &TestApp, policy: Value) -> String {
    let (s, v) = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "spam", "labels": ["ham", "spam"], "policy": policy, "answer_fields": schema()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app
        .post("/v1/keys", ADMIN, json!({"scope": "service", "projects": ["spam"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["api_key"].as_str().unwrap().to_string()
}

fn review_policy(overlap: u8) -> Value {
    json!({"rules": [
        {"name": "sure", "when": "confidence >= 0.99", "action": "auto"},
        {"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": overlap}]})
}

async fn answer_fields_are_declared_and_shown(db: Db) {
    let app = spawn_app(&db).await;
    let refused = |fields: Value| json!({"name": "bad", "labels": ["ham", "spam"], "policy": {"rules": []}, "answer_fields": fields});
    for (fields, at) in [
        (
            json!([{"name": "a", "type": "bool"}, {"name": "s", "type": "enum", "values": []}]),
            "answer_fields[1].values",
        ),
        (json!([{"name": "s", "type": "colour"}]), "answer_fields[0].type"),
        (
            json!([{"name": "n", "type": "number", "min": 5, "max": 1}]),
            "answer_fields[0].max",
        ),
        (
            json!([{"name": "t", "type": "text", "max_length": 0}]),
            "answer_fields[0].max_length",
        ),
        (
            json!([{"name": "s", "type": "bool", "required": true, "when_labels": ["eggs"]}]),
            "answer_fields[0].when_labels[0]",
        ),
        (
            json!([{"name": "a", "type": "bool"}, {"name": "a", "type": "bool"}]),
            "answer_fields[1].name",
        ),
        (json!({"name": "a"}), "answer_fields"),
    ] {
        let (s, v) = app.post("/v1/projects", ADMIN, refused(fields)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["field"], at, "{v}");
    }
    let (_, list) = app.get("/v1/projects", ADMIN).await;
    assert!(
        !list.to_string().contains("\"bad\""),
        "a refused project is not stored: {list}"
    );
    project_with_fields(&app, review_policy(1)).await;
    let (s, v) = app.get("/v1/projects/spam", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["answer_fields"][0]["values"], json!(["low", "medium", "high"]));
    assert_eq!(v["answer_fields"][0]["when_labels"], json!(["spam"]));
    assert_eq!(v["answer_fields"][3]["max_length"], 20);
    // A project without fields declares none.
    app.project("plain", json!({"rules": []})).await;
    let (_, v) = app.get("/v1/projects/plain", ADMIN).await;
    assert_eq!(v["answer_fields"], json!([]));
    app.stop().await;
    db.cleanup().await;
}

async fn invalid_answer_fields_are_refused_and_nothing_is_written(db: Db) {
    let app = spawn_app(&db).await;
    let svc = project_with_fields(&app, review_policy(1)).await;
    app.submit("spam", &svc, json!([item("m1", "a message", Some(0.5))]))
        .await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    let t = app.claim("spam", &ann, None).await.unwrap();
    let before = app.events("spam").await.len();
    for (answer, at) in [
        (
            json!({"label": "spam", "fields": {"colour": "red", "severity": "low"}}),
            "fields.colour",
        ),
        (json!({"label": "spam", "fields": {"severity": 2}}), "fields.severity"),
        (
            json!({"label": "spam", "fields": {"severity": "extreme"}}),
            "fields.severity",
        ),
        (
            json!({"label": "spam", "fields": {"severity": "low", "score": 11}}),
            "fields.score",
        ),
        (
            json!({"label": "spam", "fields": {"severity": "low", "urgent": "yes"}}),
            "fields.urgent",
        ),
        (
            json!({"label": "spam", "fields": {"severity": "low", "note": "far more than twenty characters"}}),
            "fields.note",
        ),
        (json!({"label": "spam", "fields": {"score": 3}}), "fields.severity"),
        (json!({"label": "spam"}), "fields.severity"),
        (json!({"label": "ham", "fields": ["low"]}), "fields"),
        (json!({"skip": {"reason": "busy"}, "fields": {"score": 1}}), "fields"),
    ] {
        let (s, v) = app.answer(&ann, &t, "r1", answer.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{answer}: {v}");
        assert_eq!(v["error"]["field"], at, "{answer}: {v}");
    }
    // Nothing was written: no event, no review, and the lease still answers.
    assert_eq!(app.events("spam").await.len(), before);
    let (_, story) = app.get("/v1/projects/spam/items/m1", &svc).await;
    assert_eq!(story["reviews"], json!([]), "{story}");
    // The severity is required only for spam: ham without fields is an answer.
    let (s, v) = app.answer(&ann, &t, "r1", json!({"label": "ham"})).await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("resolved")), "{v}");
    let (_, story) = app.get("/v1/projects/spam/items/m1", &svc).await;
    assert!(story["reviews"][0].get("fields").is_none(), "{story}");
    app.stop().await;
    db.cleanup().await;
}

async fn answer_fields_are_resolved_into_the_label_feed(db: Db) {
    let app = spawn_app(&db).await;
    // Three answers; less than unanimity goes to adjudication.
    let mut policy = review_policy(3);
    policy["consensus"] = json!({"min_confidence": 0.9, "max_overlap": 3});
    let svc = project_with_fields(&app, policy).await;
    app.submit(
        "spam",
        &svc,
        json!([
            item("m1", "agreed", Some(0.5)),
            item("m2", "contested", Some(0.5)),
            item("auto", "sure", Some(0.999))
        ]),
    )
    .await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    let bob = app.reviewer("bob", &[1], &["spam"]).await;
    let cy = app.reviewer("cy", &[1], &["spam"]).await;
    let boss = app.reviewer("boss", &[2], &["spam"]).await;
    // m1: three spam answers — severity by majority, score by median, urgent by majority,
    // the last note.
    let m1 = [
        (
            &ann,
            json!({"severity": "high", "score": 2, "urgent": true, "note": "first"}),
        ),
        (&bob, json!({"severity": "low", "score": 9, "urgent": false})),
        (
            &cy,
            json!({"severity": "high", "score": 4, "urgent": true, "note": "last"}),
        ),
    ];
    for (i, (key, fields)) in m1.iter().enumerate() {
        let t = app.claim("spam", key, None).await.unwrap();
        assert_eq!(t["item"]["external_id"], "m1");
        let (s, v) = app
            .answer(key, &t, &format!("m1-{i}"), json!({"label": "spam", "fields": fields}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // m2: two spam, one ham — adjudicated; the adjudicator's fields are the item's.
    for (i, (key, label)) in [(&ann, "spam"), (&bob, "ham"), (&cy, "spam")].into_iter().enumerate() {
        let t = app.claim("spam", key, None).await.unwrap();
        assert_eq!(t["item"]["external_id"], "m2");
        let fields = if label == "spam" {
            json!({"severity": "medium", "note": "l1"})
        } else {
            json!({})
        };
        let (s, v) = app
            .answer(key, &t, &format!("m2-{i}"), json!({"label": label, "fields": fields}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let t = app.claim("spam", &boss, None).await.expect("m2 is adjudicated");
    assert_eq!(t["stage"], "adjudicate");
    let (s, v) = app
        .answer(
            &boss,
            &t,
            "m2-boss",
            json!({"label": "spam", "fields": {"severity": "low", "score": 7, "note": "boss"}}),
        )
        .await;
    assert_eq!(
        (s, v["resolution"]["source"].as_str()),
        (StatusCode::OK, Some("adjudicated")),
        "{v}"
    );
    let feed = app.all_labels(&svc).await;
    let row = |id: &str| feed.iter().find(|l| l["external_id"] == id).unwrap().clone();
    assert_eq!(
        row("m1")["fields"],
        json!({"severity": "high", "score": 4.0, "urgent": true, "note": "last"})
    );
    assert_eq!(
        row("m2")["fields"],
        json!({"severity": "low", "score": 7.0, "note": "boss"})
    );
    assert_eq!(row("auto")["source"], "auto");
    assert_eq!(row("auto")["fields"], json!({}));
    // The item's story and the event log carry each answer's fields.
    let (_, story) = app.get("/v1/projects/spam/items/m1", &svc).await;
    assert_eq!(
        story["reviews"][1]["fields"],
        json!({"severity": "low", "score": 9.0, "urgent": false})
    );
    let submitted: Vec<Value> = app
        .events("spam")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "review.submitted" && e["data"]["review_id"] == "m2-boss")
        .collect();
    assert_eq!(submitted[0]["data"]["fields"]["note"], "boss", "{submitted:?}");
    app.stop().await;
    db.cleanup().await;
}

async fn answer_and_next_carries_fields(db: Db) {
    let app = spawn_app(&db).await;
    let svc = project_with_fields(&app, review_policy(1)).await;
    app.submit(
        "spam",
        &svc,
        json!([item("a", "one", Some(0.5)), item("b", "two", Some(0.5))]),
    )
    .await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    let t = app.claim("spam", &ann, None).await.unwrap();
    // A refused field refuses the answer and the next claim with it.
    let (s, v) = app
        .answer(
            &ann,
            &t,
            "a1",
            json!({"label": "spam", "fields": {"severity": "none"}, "next": {"project": "spam"}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("fields.severity"))
    );
    let (s, v) = app
        .answer(
            &ann,
            &t,
            "a1",
            json!({"label": "spam", "fields": {"severity": "medium", "score": 1.5}, "next": {"project": "spam"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["next"]["item"]["external_id"], "b", "{v}");
    let feed = app.all_labels(&svc).await;
    assert_eq!(feed[0]["fields"], json!({"severity": "medium", "score": 1.5}));
    app.stop().await;
    db.cleanup().await;
}

async fn a_project_without_fields_refuses_them_and_feeds_none(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", review_policy(1)).await;
    app.submit("spam", &svc, json!([item("a", "one", Some(0.5))])).await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    let t = app.claim("spam", &ann, None).await.unwrap();
    let (s, v) = app
        .answer(&ann, &t, "a1", json!({"label": "spam", "fields": {"severity": "low"}}))
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("fields.severity"))
    );
    let (s, _) = app.answer(&ann, &t, "a1", json!({"label": "spam", "fields": {}})).await;
    assert_eq!(s, StatusCode::OK);
    let feed = app.all_labels(&svc).await;
    assert_eq!(feed.len(), 1);
    assert!(feed[0].get("fields").is_none(), "{}", feed[0]);
    app.stop().await;
    db.cleanup().await;
}

/// An amendment may carry fields: checked as an answer's are, for the new label (a 422
/// names `fields.<name>`, nothing changes), they replace the answer's fields, and the
/// item's resolution counts them.
async fn an_amendment_replaces_the_answer_s_fields(db: Db) {
    let app = spawn_app(&db).await;
    let svc = project_with_fields(&app, review_policy(2)).await;
    app.submit("spam", &svc, json!([item("m1", "hi", Some(0.5))])).await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    let bob = app.reviewer("bob", &[1], &["spam"]).await;
    let t = app.claim("spam", &ann, None).await.unwrap();
    let (s, v) = app
        .answer(
            &ann,
            &t,
            "r-ann",
            json!({"label": "spam", "fields": {"severity": "low"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let amend = |fields: Value, id: &str| json!({"amend_id": id, "label": "spam", "fields": fields});
    let before = app.events("spam").await.len();
    for (fields, at) in [
        (json!({"severity": "huge"}), "fields.severity"),
        (json!({"severity": "high", "colour": "red"}), "fields.colour"),
        (json!({"score": 3}), "fields.severity"),
        (json!(["high"]), "fields"),
    ] {
        let (s, v) = app
            .post("/v1/reviews/r-ann/amend", &ann, amend(fields.clone(), "bad"))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{fields}: {v}");
        assert_eq!(v["error"]["field"], at, "{fields}: {v}");
    }
    assert_eq!(
        app.events("spam").await.len(),
        before,
        "a refused change writes nothing"
    );
    // The same label with new fields is a change: within the window, an undo.
    let (s, v) = app
        .post(
            "/v1/reviews/r-ann/amend",
            &ann,
            amend(json!({"severity": "high", "score": 3}), "a1"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["outcome"].as_str(), v["fields"].clone()),
        (Some("undone"), json!({"severity": "high", "score": 3.0}))
    );
    let undone: Vec<Value> = app
        .events("spam")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "review.undone")
        .collect();
    assert_eq!(undone[0]["data"]["fields"]["severity"], "high", "{undone:?}");
    // Bob agrees with high: the resolution's severity is the majority, high (the stored
    // low would have tied, and a tie goes to the value listed first, low).
    let t = app.claim("spam", &bob, None).await.unwrap();
    let (s, v) = app
        .answer(
            &bob,
            &t,
            "r-bob",
            json!({"label": "spam", "fields": {"severity": "high"}}),
        )
        .await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("resolved")), "{v}");
    let feed = app.all_labels(&svc).await;
    assert_eq!(feed[0]["fields"], json!({"severity": "high", "score": 3.0}), "{feed:?}");
    let (_, story) = app.get("/v1/projects/spam/items/m1", &svc).await;
    assert_eq!(
        story["reviews"][0]["fields"],
        json!({"severity": "high", "score": 3.0}),
        "{story}"
    );
    app.stop().await;
    db.cleanup().await;
}

on_both_backends!(
    an_amendment_replaces_the_answer_s_fields,
    answer_fields_are_declared_and_shown,
    invalid_answer_fields_are_refused_and_nothing_is_written,
    answer_fields_are_resolved_into_the_label_feed,
    answer_and_next_carries_fields,
    a_project_without_fields_refuses_them_and_feeds_none,
);
