//! Policy history: versions with who and when, a diff between any two, and rollback (a new
//! version equal to an old one).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

async fn versions_diff_and_rollback(db: Db) {
    let app = spawn_app(&db).await;
    let v1 = json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q"}]});
    let svc = app.project("spam", v1.clone()).await;
    let v2 = json!({"rules": [
        {"name": "sure", "when": "confidence >= 0.9", "action": "auto"},
        {"name": "all", "when": "true", "action": "review", "queue": "q"}]});
    let (s, v) = app
        .call(Method::PUT, "/v1/projects/spam/policy", ADMIN, Some(v2.clone()))
        .await;
    assert_eq!((s, v["policy_version"].as_u64()), (StatusCode::OK, Some(2)));

    let (s, v) = app.get("/v1/projects/spam/policy/versions", ADMIN).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["current"], 2);
    let listed: Vec<_> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["version"].as_u64().unwrap(),
                x["policy"]["rules"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(listed, [(2, 2), (1, 1)]);
    assert_eq!(v["versions"][0]["created_by"], "admin");
    assert!(v["versions"][0]["created_at"].as_str().unwrap().ends_with('Z'));

    // The diff shows the added rule as added lines, the rest kept.
    let (s, d) = app.get("/v1/projects/spam/policy/diff?from=1&to=2", ADMIN).await;
    assert_eq!(s, StatusCode::OK);
    let added: Vec<_> = d["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["op"] == "+")
        .map(|l| l["text"].as_str().unwrap().trim().to_string())
        .collect();
    assert!(added.contains(&"\"name\": \"sure\",".to_string()), "{d}");
    assert!(d["lines"].as_array().unwrap().iter().all(|l| l["op"] != "-"), "{d}");

    // Rollback: version 3 equals version 1; history is kept; the project runs it.
    let (s, v) = app
        .post("/v1/projects/spam/policy/rollback", ADMIN, json!({"version": 1}))
        .await;
    assert_eq!((s, v["policy_version"].as_u64()), (StatusCode::OK, Some(3)));
    let (_, v) = app.get("/v1/projects/spam/policy/versions", ADMIN).await;
    assert_eq!(v["versions"].as_array().unwrap().len(), 3);
    assert_eq!(v["versions"][0]["policy"], v["versions"][2]["policy"]);
    let (_, d) = app.get("/v1/projects/spam/policy/diff?from=1&to=3", ADMIN).await;
    assert!(d["lines"].as_array().unwrap().iter().all(|l| l["op"] == " "), "{d}");
    let out = app.submit("spam", &svc, json!([item("m", "hi", Some(0.99))])).await;
    assert_eq!(out[0]["outcome"], "review", "version 1 automates nothing");

    // Mistakes and callers without the right: clear errors, nothing stored.
    let (s, v) = app
        .post("/v1/projects/spam/policy/rollback", ADMIN, json!({"version": 9}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, v) = app.get("/v1/projects/spam/policy/diff?from=1", ADMIN).await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("to")));
    let (s, v) = app.get("/v1/projects/spam/policy/diff?from=x&to=1", ADMIN).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("from"))
    );
    let reviewer = app.reviewer("r", &[1], &["spam"]).await;
    for key in [&svc, &reviewer] {
        let (s, _) = app.get("/v1/projects/spam/policy/versions", key).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = app
            .post("/v1/projects/spam/policy/rollback", key, json!({"version": 1}))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (_, v) = app.get("/v1/projects/spam/policy/versions", ADMIN).await;
    assert_eq!(v["current"], 3);
}

on_both_backends!(versions_diff_and_rollback);
