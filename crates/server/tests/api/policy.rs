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

/// A policy comes back with its keys in the order written — `name` next to `when`, the
/// rules before the settings — from the API, the version history and the console's editor,
/// on both backends (PostgreSQL's jsonb would sort them), and a regex keeps its escapes.
async fn policy_key_order_survives_a_round_trip(db: Db) {
    let app = spawn_app(&db).await;
    app.project("spam", json!({"rules": []})).await;
    // Written out by hand: neither alphabetical nor jsonb's order (by key length).
    let text = r#"{"rules":[{"when":"payload.text.matches('(?i)\\bfree\\b')","name":"free offers","action":"review","queue":"spam-ish","tier":1,"priority":5},{"name":"rest","when":"true","action":"review","queue":"q"}],"lease_seconds":300,"audit_rate":0.0}"#;
    let (s, v) = app.raw_put("/v1/projects/spam/policy", ADMIN, text).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let stored = |v: &serde_json::Value| serde_json::to_string(v).unwrap();
    let (_, project) = app.get("/v1/projects/spam", ADMIN).await;
    assert_eq!(stored(&project["policy"]), text, "GET project");
    let (_, versions) = app.get("/v1/projects/spam/policy/versions", ADMIN).await;
    assert_eq!(stored(&versions["versions"][0]["policy"]), text, "the history");
    // The regex as typed: one backslash before b in the rule, two in its JSON.
    assert_eq!(
        project["policy"]["rules"][0]["when"],
        "payload.text.matches('(?i)\\bfree\\b')"
    );
    // A rollback keeps the order too.
    app.post("/v1/projects/spam/policy/rollback", ADMIN, json!({"version": 2}))
        .await;
    let (_, project) = app.get("/v1/projects/spam", ADMIN).await;
    assert_eq!(
        (project["policy_version"].as_u64(), stored(&project["policy"])),
        (Some(3), text.to_string())
    );
    // The console's editor shows it in that order: `when` before `name` in the first rule.
    let page = app.page("/ui/projects/spam/policy").await;
    let editor = &page[page.find("id=\"policy\"").unwrap()..];
    let (when, name) = (
        editor.find("payload.text").unwrap(),
        editor.find("free offers").unwrap(),
    );
    assert!(when < name, "the editor re-sorted the keys");
    assert!(editor.find("lease_seconds") < editor.find("audit_rate"));
    assert!(page.contains("policy v3"), "the page names the version in force");
}

/// The back-test replays the proposal and the policy in force over the same human-labelled
/// items, so the two can be read side by side.
async fn backtest_compares_the_proposal_with_the_policy_in_force(db: Db) {
    let app = spawn_app(&db).await;
    let v1 = json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q"}]});
    let svc = app.project("spam", v1).await;
    let spam = [0.97, 0.98, 0.99, 0.3];
    let items: Vec<_> = spam
        .iter()
        .enumerate()
        .map(|(i, p)| item(&format!("m{i}"), "hi", Some(*p)))
        .collect();
    app.submit("spam", &svc, json!(items)).await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    // The human says spam for all but the 0.98 one.
    while let Some(t) = app.claim("spam", &ann, None).await {
        let label = if t["item"]["external_id"] == "m1" {
            "ham"
        } else {
            "spam"
        };
        let (s, v) = app
            .answer(&ann, &t, &format!("a-{}", t["task_id"]), json!({"label": label}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let proposal = json!({"rules": [
        {"name": "sure", "when": "confidence >= 0.95", "action": "auto"},
        {"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": 2}]});
    let (s, r) = app
        .post("/v1/projects/spam/policy/backtest", ADMIN, json!({"policy": proposal}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // The proposal: three of four automated, one of them wrong; one item, two answers.
    assert_eq!(
        (r["items"].as_u64(), r["auto"].as_u64(), r["auto_errors"].as_u64()),
        (Some(4), Some(3), Some(1))
    );
    assert_eq!(r["automation_rate"], 0.75);
    assert_eq!(r["load"]["q"], json!({"items": 1, "human_answers": 2}));
    let ci = r["auto_error_interval"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() < 1.0 / 3.0 && ci[1].as_f64().unwrap() > 1.0 / 3.0);
    // The policy in force over the same items: nothing automated, every item reviewed once.
    assert_eq!(r["current_version"], 1);
    let c = &r["current"];
    assert_eq!(
        (c["items"].as_u64(), c["auto"].as_u64(), c["automation_rate"].as_f64()),
        (Some(4), Some(0), Some(0.0))
    );
    assert!(c.get("auto_error_rate").is_none_or(|v| v.is_null()), "{c}");
    assert_eq!(c["load"]["q"], json!({"items": 4, "human_answers": 4}));
    // A proposal that does not compile names its field; a window out of range too.
    let (s, v) = app
        .post(
            "/v1/projects/spam/policy/backtest",
            ADMIN,
            json!({"policy": {"rules": [{"name": "x", "when": "(", "action": "auto"}]}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("policy.rules[0].when")),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/v1/projects/spam/policy/backtest",
            ADMIN,
            json!({"policy": proposal, "window": 0}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("window")),
        "{v}"
    );
}

on_both_backends!(
    versions_diff_and_rollback,
    policy_key_order_survives_a_round_trip,
    backtest_compares_the_proposal_with_the_policy_in_force
);
