//! What flows back: the label and event feeds, cursor-paged and replayable, and a restart
//! that keeps them (and everything else, leases included).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn feeds_are_cursor_paged_and_replayable(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let items: Vec<Value> = (0..30).map(|i| item(&format!("i{i:02}"), "WIN", Some(0.99))).collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let mut after = 0;
    let mut seen = vec![];
    loop {
        let (s, page) = app
            .get(&format!("/v1/projects/spam/labels?after={after}&limit=7"), &svc)
            .await;
        assert_eq!(s, StatusCode::OK);
        let labels = page["labels"].as_array().unwrap();
        assert!(page["next_cursor"].as_i64().unwrap() >= after);
        if labels.is_empty() {
            assert_eq!(page["next_cursor"], after, "an empty page keeps the cursor");
            break;
        }
        assert!(labels.len() <= 7);
        seen.extend(labels.iter().map(|l| l["external_id"].as_str().unwrap().to_string()));
        after = page["next_cursor"].as_i64().unwrap();
    }
    assert_eq!(seen, (0..30).map(|i| format!("i{i:02}")).collect::<Vec<_>>());
    let (_, replay) = app.get("/v1/projects/spam/labels?limit=100000", &svc).await;
    assert_eq!(
        replay["labels"].as_array().unwrap().len(),
        30,
        "replayable from the start; limit is capped, not refused"
    );
    // However large: a limit beyond any machine word is capped too (was a 400).
    let huge = "326051560044364212207616";
    for (feed, key) in [("labels", svc.as_str()), ("events", ADMIN)] {
        let (s, page) = app.get(&format!("/v1/projects/spam/{feed}?limit={huge}"), key).await;
        assert_eq!(s, StatusCode::OK, "{feed}: {page}");
        assert!(!page[feed].as_array().unwrap().is_empty(), "{feed}");
    }
    for bad in ["0", "-1", "1.5", "ten"] {
        let (s, body) = app.get(&format!("/v1/projects/spam/labels?limit={bad}"), &svc).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "limit={bad}");
        assert_eq!(body["error"]["field"], "limit");
    }
    let events = app.events("spam").await;
    assert_eq!(events[0]["kind"], "project.created");
    assert_eq!(events.iter().filter(|e| e["kind"] == "item.decided").count(), 30);
    let (_, page) = app
        .get(
            &format!("/v1/projects/spam/events?after={}&limit=5", events[10]["seq"]),
            ADMIN,
        )
        .await;
    assert_eq!(page["events"][0]["seq"], events[11]["seq"]);
    let (s, global) = app.get("/v1/events", ADMIN).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        global["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "key.created")
    );
}

async fn a_restart_keeps_everything(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    app.submit(
        "spam",
        &svc,
        json!([
            item("x", "WIN", Some(0.99)),
            item("y", "hmm", Some(0.5)),
            item("z", "hmm", Some(0.5))
        ]),
    )
    .await;
    let t = app.claim("spam", &a, None).await.unwrap();
    app.answer(&a, &t, "r1", json!({"label": "ham"})).await;
    let t2 = app.claim("spam", &a, None).await.unwrap();
    let events_before = app.events("spam").await;
    let clock = app.stop().await;

    let app = spawn_on(&db, clock).await;
    assert_eq!(app.events("spam").await, events_before, "every event survived");
    let (_, feed) = app.get("/v1/projects/spam/labels", &svc).await;
    assert_eq!(
        feed["labels"].as_array().unwrap().len(),
        2,
        "service keys survived, and the labels"
    );
    let (s, v) = app.answer(&a, &t2, "r2", json!({"label": "spam"})).await;
    assert_eq!(
        (s, v["outcome"].as_str()),
        (StatusCode::OK, Some("resolved")),
        "the lease survived: {v}"
    );
    let (_, st) = app.get("/v1/projects/spam/stats", ADMIN).await;
    assert_eq!(
        (st["items"].as_i64(), st["resolved"].as_i64(), st["open_tasks"].as_i64()),
        (Some(3), Some(3), Some(0))
    );
}

on_both_backends!(feeds_are_cursor_paged_and_replayable, a_restart_keeps_everything,);
