//! Items in, decisions out: the OpenAPI document, routing by the first rule that holds,
//! audit sampling, idempotency, and bad input refused with the field named.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn health_and_openapi(db: Db) {
    let app = spawn_app(&db).await;
    let (s, v) = app.get("/healthz", "").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, doc) = app.get("/v1/openapi.json", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    for path in [
        "/v1/projects",
        "/v1/projects/{project}",
        "/v1/projects/{project}/policy",
        "/v1/reviewers",
        "/v1/keys",
        "/v1/projects/{project}/items",
        "/v1/projects/{project}/items/{external_id}",
        "/v1/projects/{project}/claim",
        "/v1/tasks/{task_id}/heartbeat",
        "/v1/tasks/{task_id}/reviews",
        "/v1/projects/{project}/labels",
        "/v1/projects/{project}/events",
        "/v1/projects/{project}/stats",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
}

async fn routing_follows_the_first_rule_that_holds(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let d = app
        .submit(
            "spam",
            &svc,
            json!([
                item("distress", "I will hurt myself", Some(0.99)),
                item("confident", "WIN A PRIZE", Some(0.99)),
                item("uncertain", "maybe", Some(0.6)),
                item("none", "no prediction", None),
            ]),
        )
        .await;
    let got: Vec<_> = d
        .iter()
        .map(|d| (d["rule"].as_str().unwrap(), d["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("distress", "review"),
            ("confident", "auto"),
            ("uncertain", "review"),
            ("default", "review")
        ]
    );
    assert_eq!(
        d[0]["route"],
        json!({"queue": "urgent", "tier": 2, "priority": 100, "overlap": 1})
    );
    assert_eq!(d[1]["label"], "spam");
    assert_eq!(
        d[3]["route"],
        json!({"queue": "default", "tier": 1, "priority": 0, "overlap": 1})
    );
    assert_eq!(d[3]["reasons"], json!(["no rule matched"]));
    assert!(d.iter().all(|d| d["policy_version"] == 1 && d["duplicate"] == false));
    let (s, st) = app.get("/v1/projects/spam/stats", &svc).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (st["items"].as_i64(), st["auto"].as_i64(), st["review"].as_i64()),
        (Some(4), Some(1), Some(3))
    );
    assert_eq!(st["automation_rate"], 0.25);
    assert_eq!(st["queues"]["urgent"]["open"], 1);
    // A new policy version decides new items; old decisions keep their version.
    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            "/v1/projects/spam/policy",
            ADMIN,
            Some(json!({"rules": []})),
        )
        .await;
    assert_eq!((s, v["policy_version"].as_i64()), (StatusCode::OK, Some(2)));
    let d = app
        .submit("spam", &svc, json!([item("later", "WIN", Some(0.99))]))
        .await;
    assert_eq!(
        (d[0]["outcome"].as_str(), d[0]["policy_version"].as_i64()),
        (Some("review"), Some(2))
    );
    let (_, detail) = app.get("/v1/projects/spam/items/confident", &svc).await;
    assert_eq!(detail["decisions"][0]["policy_version"], 1);
}

async fn audit_sampling_rate_is_the_policy_rate(db: Db) {
    let app = spawn_app(&db).await;
    let mut policy = example_policy();
    policy["audit_rate"] = json!(0.2);
    let svc = app.project("spam", policy).await;
    let n = 2000;
    let items: Vec<Value> = (0..n).map(|i| item(&format!("i{i}"), "WIN", Some(0.99))).collect();
    let d = app.submit("spam", &svc, Value::Array(items)).await;
    let audited = d.iter().filter(|d| d["audit"].is_object()).count() as f64;
    // Binomial(2000, 0.2): mean 400, sd 17.9. Five sd either side fails once in ~3.5 million runs.
    assert!((audited - 400.0).abs() < 5.0 * 17.9, "audited {audited} of {n}");
    let (_, st) = app.get("/v1/projects/spam/stats", ADMIN).await;
    assert_eq!(st["queues"]["audit"]["open"].as_f64(), Some(audited));
    // An audit that disagrees corrects the label; the feed shows the correction.
    let l1 = app.reviewer("ann", &[1], &["spam"]).await;
    let t = app.claim("spam", &l1, Some("audit")).await.unwrap();
    assert_eq!(t["stage"], "audit");
    let (s, v) = app.answer(&l1, &t, "a1", json!({"label": "ham"})).await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("corrected")));
    let ext = t["item"]["external_id"].as_str().unwrap();
    let feed = app.all_labels(&svc).await;
    let mine: Vec<_> = feed
        .iter()
        .filter(|l| l["external_id"] == ext)
        .map(|l| (l["label"].clone(), l["source"].clone()))
        .collect();
    assert_eq!(mine, [(json!("spam"), json!("auto")), (json!("ham"), json!("human"))]);
}

async fn items_and_reviews_are_idempotent(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let first = app.submit("spam", &svc, json!([item("x", "hmm", Some(0.5))])).await;
    let events = app.events("spam").await.len();
    let again = app
        .submit("spam", &svc, json!([item("x", "different", Some(0.99))]))
        .await;
    assert_eq!(again[0]["duplicate"], true);
    assert_eq!(
        (again[0]["item_id"].clone(), again[0]["outcome"].clone()),
        (first[0]["item_id"].clone(), first[0]["outcome"].clone())
    );
    assert_eq!(app.events("spam").await.len(), events, "a duplicate creates nothing");
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let t = app.claim("spam", &a, None).await.unwrap();
    let (_, r1) = app.answer(&a, &t, "same", json!({"label": "spam"})).await;
    let (s, r2) = app.answer(&a, &t, "same", json!({"label": "spam"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r1, r2);
    let (_, feed) = app.get("/v1/projects/spam/labels", &svc).await;
    assert_eq!(feed["labels"].as_array().unwrap().len(), 1);
}

async fn bad_input_is_a_4xx_naming_the_field_and_writes_nothing(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let before = app.events("spam").await.len();
    let p = "/v1/projects/spam/items";
    let big: Vec<Value> = (0..10_001).map(|i| item(&format!("b{i}"), "x", None)).collect();
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"items": [item("ok", "x", Some(0.5)), {"external_id": "s", "payload": {}, "prediction": {"model": "m", "scores": {"ham": 0.5, "spam": 1.5}}}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[1].prediction.scores.spam",
        ),
        (
            json!({"items": [{"external_id": "s", "payload": {}, "prediction": {"model": "m", "scores": {"ham": 0.5}}}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].prediction.scores",
        ),
        (
            json!({"items": [{"external_id": "s", "payload": {}, "prediction": {"model": "m", "scores": {"ham": 0.5, "spam": 0.5, "eggs": 0.1}}}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].prediction.scores.eggs",
        ),
        (json!({"items": []}), StatusCode::UNPROCESSABLE_ENTITY, "items"),
        (json!({"items": big}), StatusCode::UNPROCESSABLE_ENTITY, "items"),
        (
            json!({"items": [{"external_id": "", "payload": {}}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].external_id",
        ),
        (
            json!({"items": [{"external_id": "s", "payload": "text"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].payload",
        ),
        (
            json!({"items": [{"external_id": "s"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0]",
        ),
        (
            json!({"items": [{"external_id": 5, "payload": {}}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].external_id",
        ),
        (json!({"itemz": []}), StatusCode::UNPROCESSABLE_ENTITY, "itemz"),
        // PostgreSQL cannot store a NUL; every backend refuses it alike.
        (
            json!({"items": [item("ok2", "x", None), {"external_id": "s\u{0}", "payload": {}}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[1].external_id",
        ),
        (
            json!({"items": [{"external_id": "s", "payload": {"text": ["a", "b\u{0}"]}}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].payload.text[1]",
        ),
        (
            json!({"items": [{"external_id": "s", "payload": {}, "attributes": {"k\u{0}": 1}}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].attributes.k\\u0000",
        ),
    ];
    for (body, status, field) in cases {
        let (s, v) = app.post(p, &svc, body).await;
        assert_eq!(s, status, "{v}");
        assert_eq!(v["error"]["field"].as_str().unwrap_or(""), field, "{v}");
        assert!(v["error"]["message"].is_string());
    }
    let (s, v) = app.raw_post(p, &svc, r#"{"items": [{"external_id": "#).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let (s, _) = app
        .post(
            "/v1/projects/nope/items",
            &svc,
            json!({"items": [item("a", "x", None)]}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        app.events("spam").await.len(),
        before,
        "no refused request wrote anything"
    );
    let (_, st) = app.get("/v1/projects/spam/stats", &svc).await;
    assert_eq!(st["items"], 0);

    // Policies: refused with the rule and the problem; the current one stays.
    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            "/v1/projects/spam/policy",
            ADMIN,
            Some(json!({"rules": [{"name": "bad", "when": "confidence >= 'high'", "action": "auto"}]})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rules[0].when"))
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("rule 'bad'"), "{v}");
    let (_, proj) = app.get("/v1/projects/spam", ADMIN).await;
    assert_eq!(proj["policy_version"], 1);
    let (s, v) = app.post("/v1/projects", ADMIN, json!({"name": "x", "labels": ["a", "b"], "policy": {"rules": [{"name": "r", "when": "true", "action": "auto", "label": "c"}]}})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("policy.rules[0].label"))
    );
    let (s, v) = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "Bad Name", "labels": ["a", "b"], "policy": {"rules": []}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    let (s, v) = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "spam", "labels": ["a", "b"], "policy": {"rules": []}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("project_exists"))
    );
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "r", "tiers": [0], "projects": []}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("tiers[0]"))
    );
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "r", "tiers": [1], "projects": ["nope"]}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("projects[0]"))
    );

    // Reviews: a wrong label, a wrong lease, no answer at all.
    app.submit("spam", &svc, json!([item("r", "hmm", Some(0.5))])).await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let t = app.claim("spam", &a, None).await.unwrap();
    let before = app.events("spam").await.len();
    let (s, v) = app.answer(&a, &t, "1", json!({"label": "eggs"})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("label"))
    );
    let (s, v) = app.answer(&a, &t, "2", json!({})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("label"))
    );
    let (s, v) = app
        .answer(&a, &t, "3", json!({"label": "spam", "skip": {"reason": "x"}}))
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("label"))
    );
    let wrong = json!({"task_id": t["task_id"], "lease_id": t["lease_id"].as_i64().unwrap() + 99});
    let (s, v) = app.answer(&a, &wrong, "4", json!({"label": "spam"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("lease_lost"))
    );
    let (s, _) = app
        .raw_post(&format!("/v1/tasks/{}/reviews", t["task_id"]), &a, "{not json")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(app.events("spam").await.len(), before, "refused reviews wrote nothing");
    let (s, v) = app.get("/v1/projects/spam/labels?after=-1", &svc).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("after"))
    );
}

on_both_backends!(
    health_and_openapi,
    routing_follows_the_first_rule_that_holds,
    audit_sampling_rate_is_the_policy_rate,
    items_and_reviews_are_idempotent,
    bad_input_is_a_4xx_naming_the_field_and_writes_nothing,
);
