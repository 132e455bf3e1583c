//! What a newcomer's first hour showed wrong on the console's pages, each checked as the
//! page is served (no browser).

use serde_json::json;

use crate::helpers::*;

/// The dashboard reads as English: one answer is "1 answer" (on the reviewer's home page
/// too), and a queue with nothing open has no oldest task ("—", not "0 s").
async fn the_dashboard_counts_in_english(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    app.submit("spam", &svc, json!([item("m1", "see you at six", Some(0.5))]))
        .await;
    let task = app.claim("spam", &ann, Some("standard")).await.unwrap();
    let (s, v) = app.answer(&ann, &task, "ann-1", json!({"label": "ham"})).await;
    assert!(s.is_success(), "{v}");

    let html = app.page("/ui/projects/spam").await;
    let session = html
        .split("<td class=\"session\">")
        .nth(1)
        .and_then(|s| s.split("</td>").next())
        .expect("a session cell");
    assert!(session.starts_with("1 answer · "), "{session}");
    assert!(html.contains("<tr><td>audit</td><td>0</td><td>—</td>"), "{html}");

    // The reviewer's own home page counts the same way.
    let (cookie, _) = crate::console::sign_in(&app, &[("key", &ann)]).await.unwrap();
    let home = app
        .http
        .get(format!("{}/ui", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("<span id=\"today\">1</span> answer today"), "{home}");
    app.stop().await;
}

/// An imported JSON lines row without an external id says it is missing, not that it
/// "is a string".
async fn an_imported_row_says_what_it_lacks(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    for (row, says) in [
        (
            "{\"payload\": {\"text\": \"a\"}}",
            "a row needs an external_id (a string)",
        ),
        (
            "{\"external_id\": 5, \"payload\": {}}",
            "external_id is a string, got 5",
        ),
    ] {
        let (s, v) = app.raw_post("/v1/projects/spam/import?format=jsonl", &svc, row).await;
        assert_eq!(s, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["field"], "line 1: external_id", "{v}");
        assert_eq!(v["error"]["message"], says, "{v}");
    }
    app.stop().await;
}

on_both_backends!(the_dashboard_counts_in_english, an_imported_row_says_what_it_lacks,);
