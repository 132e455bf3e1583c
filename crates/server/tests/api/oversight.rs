//! An admin's oversight of the work: reviewers deactivated and reactivated, the
//! stranded-work alert (open tasks of a tier no active reviewer holds) in `/stats` and on
//! the dashboard, the item search (API and console), the item page, and overrides.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::sign_in;
use crate::helpers::*;

async fn stranded(app: &TestApp) -> Vec<(String, u64, u64)> {
    let (s, v) = app.get("/v1/projects/spam/stats", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["stranded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["queue"].as_str().unwrap().to_string(),
                w["tier"].as_u64().unwrap(),
                w["open"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A console page's HTML, as the session `cookie` sees it.
async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    let resp = app
        .http
        .get(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    resp.text().await.unwrap()
}

async fn patch(app: &TestApp, name: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        reqwest::Method::PATCH,
        &format!("/v1/reviewers/{name}"),
        ADMIN,
        Some(body),
    )
    .await
}

async fn deactivation_ends_access_and_leases_and_strands_the_tier(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    let lead = app.reviewer("lead", &[2], &["spam"]).await;
    app.submit(
        "spam",
        &svc,
        json!([
            item("u1", "maybe spam", Some(0.6)),
            item("d1", "I will hurt myself", Some(0.5))
        ]),
    )
    .await;
    assert!(stranded(&app).await.is_empty(), "ann holds tier 1, lead tier 2");
    let task = app.claim("spam", &ann, None).await.unwrap();

    let (s, v) = patch(&app, "ann", json!({"active": false})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["active"], false);
    for (method, path, body) in [
        (reqwest::Method::GET, "/v1/me".to_string(), None),
        (
            reqwest::Method::POST,
            "/v1/projects/spam/claim".to_string(),
            Some(json!({})),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/tasks/{}/heartbeat", task["task_id"]),
            Some(json!({"lease_id": task["lease_id"]})),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/tasks/{}/reviews", task["task_id"]),
            Some(json!({"lease_id": task["lease_id"], "review_id": "late", "label": "ham"})),
        ),
    ] {
        let (s, v) = app.call(method, &path, &ann, body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}: {v}");
        assert!(v["error"]["code"].is_string(), "{path}: the JSON error body: {v}");
    }
    let cancelled: Vec<_> = app
        .events("spam")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "lease.cancelled")
        .map(|e| e["data"]["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(cancelled, ["the reviewer was deactivated"]);
    let (_, all) = app.get("/v1/events?limit=1000", ADMIN).await;
    assert!(
        all["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "reviewer.deactivated"),
        "{all}"
    );
    // ann held tier 1 alone: u1's task (back in its queue) is stranded.
    assert_eq!(stranded(&app).await, [("standard".to_string(), 1, 1)]);
    let (_, v) = app.get("/v1/projects/spam/stats", ADMIN).await;
    assert_eq!(
        v["stranded"][0]["message"],
        "no active reviewer holds tier 1: 1 open task in 'standard' cannot be claimed"
    );

    // The dashboard flags it.
    let (cookie, _) = sign_in(&app, &[("key", ADMIN)]).await.unwrap();
    let page = page(&app, &cookie, "/ui/projects/spam").await;
    assert!(page.contains("id=\"stranded\""), "{page}");
    assert!(page.contains("no active reviewer holds tier 1"), "{page}");

    // A deactivated lead strands tier 2 as well.
    let (s, _) = patch(&app, "lead", json!({"active": false})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.get("/v1/me", &lead).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        stranded(&app).await,
        [("standard".to_string(), 1, 1), ("urgent".to_string(), 2, 1)]
    );

    // Reactivated, ann works again and tier 1 is no longer stranded.
    let (s, v) = patch(&app, "ann", json!({"active": true})).await;
    assert_eq!((s, v["active"].clone()), (StatusCode::OK, json!(true)));
    let (s, _) = app.get("/v1/me", &ann).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(stranded(&app).await, [("urgent".to_string(), 2, 1)]);
    assert!(app.claim("spam", &ann, None).await.is_some());
    let (_, list) = app.get("/v1/reviewers", ADMIN).await;
    let states: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(states, [("ann".to_string(), true), ("lead".to_string(), false)]);

    // Bad input names the field; an unknown reviewer is a 404.
    let (s, v) = patch(&app, "ann", json!({"active": "no"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "active");
    let (s, v) = patch(&app, "nobody", json!({"active": false})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    app.stop().await;
}

async fn a_deactivated_reviewer_cannot_sign_in(db: Db) {
    let app = spawn_app(&db).await;
    app.project("spam", example_policy()).await;
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (cookie, _) = sign_in(&app, &[("name", "ana"), ("password", "correct horse")])
        .await
        .unwrap();
    let (s, _) = patch(&app, "ana", json!({"active": false})).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        sign_in(&app, &[("name", "ana"), ("password", "correct horse")])
            .await
            .is_err(),
        "the password no longer signs in"
    );
    let no_redirect = client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirect
        .get(format!("{}/ui", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "the open session ended");
    let (s, _) = patch(&app, "ana", json!({"active": true})).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        sign_in(&app, &[("name", "ana"), ("password", "correct horse")])
            .await
            .is_ok()
    );
    app.stop().await;
}

async fn search_finds_items_by_each_criterion_and_refuses_bad_parameters(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    app.submit(
        "spam",
        &svc,
        json!([
            item("m-1", "WIN a free cruise", Some(0.6)),
            item("m-2", "see you at lunch", Some(0.6))
        ]),
    )
    .await;
    app.clock.advance_ms(60_000);
    app.submit("spam", &svc, json!([item("m-3", "free lunch friday", Some(0.6))]))
        .await;
    let task = app.claim("spam", &ann, None).await.unwrap();
    let (s, v) = app.answer(&ann, &task, "r1", json!({"label": "spam"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["external_id"].as_str().unwrap().to_string())
            .collect()
    };
    let search = |q: &str| {
        let path = format!("/v1/projects/spam/items?{q}");
        let app = &app;
        async move { app.get(&path, ADMIN).await }
    };
    let (s, v) = search("q=FREE").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), ["m-3", "m-1"], "newest first, any case");
    assert_eq!(ids(&search("q=m-2").await.1), ["m-2"]);
    assert_eq!(ids(&search("label=spam").await.1), ["m-1"]);
    assert_eq!(ids(&search("reviewer=ann").await.1), ["m-1"]);
    assert_eq!(ids(&search("state=open").await.1), ["m-3", "m-2"]);
    assert_eq!(ids(&search("state=resolved&q=free").await.1), ["m-1"]);
    let second = app.clock_now() - 30_000;
    assert_eq!(ids(&search(&format!("since={second}")).await.1), ["m-3"]);
    assert_eq!(ids(&search(&format!("until={second}")).await.1), ["m-2", "m-1"]);
    let (_, first) = search("limit=2").await;
    assert_eq!(ids(&first), ["m-3", "m-2"]);
    let cursor = first["next_cursor"].as_i64().unwrap();
    let (_, rest) = search(&format!("limit=2&cursor={cursor}")).await;
    assert_eq!(ids(&rest), ["m-1"]);
    assert!(rest["next_cursor"].is_null());
    assert_eq!(first["items"][0]["outcome"], "review");
    assert_eq!(first["items"][0]["payload"]["text"], "free lunch friday");
    // The project's service key may search; a reviewer may not.
    assert_eq!(app.get("/v1/projects/spam/items?q=free", &svc).await.0, StatusCode::OK);
    assert_eq!(
        app.get("/v1/projects/spam/items?q=free", &ann).await.0,
        StatusCode::FORBIDDEN
    );
    for (q, field) in [
        ("state=stuck", "state"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=abc", "cursor"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("label=maybe", "label"),
        ("since=2000&until=1000", "since"),
    ] {
        let (s, v) = search(q).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["error"]["field"], field, "{q}: {v}");
    }

    // The console's search finds the item by its text and links its page.
    let (cookie, _) = sign_in(&app, &[("key", ADMIN)]).await.unwrap();
    let html = page(&app, &cookie, "/ui/projects/spam/items?q=cruise").await;
    assert!(html.contains("href=\"/ui/projects/spam/items/m-1\""), "{html}");
    assert!(!html.contains("m-3"), "{html}");
    let html = page(&app, &cookie, "/ui/projects/spam/items?state=stuck").await;
    assert!(html.contains("id=\"search-error\""), "{html}");
    let html = page(&app, &cookie, "/ui/projects/spam/items/m-1").await;
    for part in [
        "WIN a free cruise",
        "id=\"decision\"",
        "ann",
        "answered label",
        "id=\"override\"",
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }
    app.stop().await;
}

async fn override_as(app: &TestApp, key: &str, id: &str, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/v1/projects/spam/items/{id}/override"), key, body)
        .await
}

async fn an_admin_override_resolves_or_reroutes_an_item(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    app.reviewer("lead", &[2], &["spam"]).await;
    app.submit(
        "spam",
        &svc,
        json!([
            item("u1", "maybe spam", Some(0.6)),
            item("d1", "I will hurt myself", Some(0.5))
        ]),
    )
    .await;
    let task = app.claim("spam", &ann, Some("standard")).await.unwrap();

    let (s, v) = override_as(
        &app,
        ADMIN,
        "u1",
        json!({"action": "resolve", "label": "spam", "reason": "policy call"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["resolution"]["method"], "override");
    assert_eq!(v["resolution"]["source"], "human");
    assert_eq!(v["closed_tasks"], json!([task["task_id"]]));
    assert_eq!(v["cancelled_leases"], json!([task["lease_id"]]));
    let (s, v) = app.answer(&ann, &task, "late", json!({"label": "ham"})).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("lease_lost")),
        "{v}"
    );
    let feed = app.all_labels(&svc).await;
    assert_eq!(feed.len(), 1);
    assert_eq!(
        (feed[0]["external_id"].clone(), feed[0]["label"].clone()),
        (json!("u1"), json!("spam"))
    );
    let events = app.events("spam").await;
    let o = events
        .iter()
        .find(|e| e["kind"] == "item.overridden")
        .expect("item.overridden");
    assert_eq!(
        (o["data"]["action"].clone(), o["data"]["reason"].clone()),
        (json!("resolve"), json!("policy call"))
    );

    // d1 waits at tier 2 in 'urgent'; re-routed to 'standard' at tier 1, ann takes it.
    let (s, v) = override_as(
        &app,
        ADMIN,
        "d1",
        json!({"action": "reroute", "queue": "standard", "tier": 1, "reason": "lead away"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let moved = app.claim("spam", &ann, Some("standard")).await.expect("d1's new task");
    assert_eq!(moved["task_id"], v["task_id"]);

    // Refusals name the field or the conflict; only an admin overrides.
    for (body, status, field) in [
        (json!({"action": "resolve", "label": "spam"}), 422, "reason"),
        (
            json!({"action": "resolve", "label": "spam", "reason": "  "}),
            422,
            "reason",
        ),
        (
            json!({"action": "resolve", "label": "maybe", "reason": "r"}),
            422,
            "label",
        ),
        (json!({"action": "resolve", "reason": "r"}), 422, "label"),
        (
            json!({"action": "resolve", "label": "spam", "queue": "standard", "reason": "r"}),
            422,
            "queue",
        ),
        (json!({"action": "shrug", "reason": "r"}), 422, "action"),
        (
            json!({"action": "reroute", "queue": "nowhere", "tier": 1, "reason": "r"}),
            422,
            "queue",
        ),
        (
            json!({"action": "reroute", "queue": "urgent", "tier": 1, "reason": "r"}),
            422,
            "tier",
        ),
        (
            json!({"action": "reroute", "queue": "standard", "reason": "r"}),
            422,
            "tier",
        ),
        (
            json!({"action": "reroute", "queue": "standard", "tier": 1, "reason": "r", "extra": 1}),
            422,
            "extra",
        ),
    ] {
        let (s, v) = override_as(&app, ADMIN, "d1", body.clone()).await;
        assert_eq!(s.as_u16(), status, "{body}: {v}");
        // The field at fault is named: in `field`, or (a missing or unknown one, which
        // the body's parser reports) in the message.
        let said = format!(
            "{} {}",
            v["error"]["field"].as_str().unwrap_or(""),
            v["error"]["message"]
        );
        assert!(said.contains(field), "{body}: {v}");
    }
    let (s, v) = override_as(
        &app,
        ADMIN,
        "u1",
        json!({"action": "reroute", "queue": "standard", "tier": 1, "reason": "r"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("item_resolved")),
        "{v}"
    );
    let resolve = json!({"action": "resolve", "label": "ham", "reason": "r"});
    for (key, id, status) in [
        (ADMIN, "nope", StatusCode::NOT_FOUND),
        (ann.as_str(), "d1", StatusCode::FORBIDDEN),
        (svc.as_str(), "d1", StatusCode::FORBIDDEN),
    ] {
        let (s, v) = override_as(&app, key, id, resolve.clone()).await;
        assert_eq!(s, status, "{id}: {v}");
    }
    app.stop().await;
}

on_both_backends!(
    deactivation_ends_access_and_leases_and_strands_the_tier,
    a_deactivated_reviewer_cannot_sign_in,
    search_finds_items_by_each_criterion_and_refuses_bad_parameters,
    an_admin_override_resolves_or_reroutes_an_item,
);
