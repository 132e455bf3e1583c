//! Claims that wait (long poll) and wake on new work: in one process on SQLite, and across
//! two nodes on one PostgreSQL database, which also share policy changes.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn long_poll_claims_wake_when_work_arrives() {
    // One node on SQLite: the notice comes from the store in-process.
    let db = Db::sqlite();
    long_poll_across(&db, false).await;
}

/// A claim waiting on node A wakes when node B (or A itself) submits work.
async fn long_poll_across(db: &Db, two_nodes: bool) {
    let a = spawn_app(db).await;
    let b = if two_nodes {
        spawn_app(db).await
    } else {
        spawn_app_same(&a)
    };
    let svc = a.project("spam", example_policy()).await;
    let reviewer = a.reviewer("r", &[1], &["spam"]).await;
    let (s, v) = a
        .post("/v1/projects/spam/claim", &reviewer, json!({"wait_ms": 30001}))
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("wait_ms"))
    );
    let (s, _) = a
        .post("/v1/projects/spam/claim", &reviewer, json!({"wait_ms": 50}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "nothing arrives: 204 after the wait");
    let http = a.http.clone();
    let url = format!("{}/v1/projects/spam/claim", a.base);
    let key = reviewer.clone();
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let r = http
            .post(url)
            .bearer_auth(key)
            .json(&json!({"wait_ms": 20000}))
            .send()
            .await
            .unwrap();
        (
            r.status(),
            r.json::<Value>().await.unwrap_or(Value::Null),
            started.elapsed(),
        )
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    b.submit("spam", &svc, json!([item("new", "hmm", Some(0.5))])).await;
    let (status, task, waited) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["item"]["external_id"], "new");
    assert!(
        waited < std::time::Duration::from_secs(15),
        "woken by the notice, not by the timeout: {waited:?}"
    );
}

/// Two nodes on one PostgreSQL database: LISTEN/NOTIFY carries the new work across.
#[tokio::test]
async fn postgres_nodes_wake_each_others_claimers_and_share_policy() {
    let Some(db) = Db::postgres("two_nodes").await else {
        return;
    };
    long_poll_across(&db, true).await;
    let a = spawn_app(&db).await;
    let b = spawn_app(&db).await;
    let svc = a.project("p2", example_policy()).await;
    // Node B caches the policy, then node A changes it: B must decide with the new one.
    let d = b.submit("p2", &svc, json!([item("x1", "WIN", Some(0.99))])).await;
    assert_eq!(d[0]["outcome"], "auto");
    let (s, _) = a
        .call(
            reqwest::Method::PUT,
            "/v1/projects/p2/policy",
            ADMIN,
            Some(json!({"rules": []})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut seen = None;
    for _ in 0..50 {
        let d = b
            .submit("p2", &svc, json!([item(&format!("x{}", rand_id()), "WIN", Some(0.99))]))
            .await;
        if d[0]["policy_version"] == 2 {
            seen = Some(d[0]["outcome"].clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(seen, Some(json!("review")), "node B picked up the new policy");
    db.cleanup().await;
}
