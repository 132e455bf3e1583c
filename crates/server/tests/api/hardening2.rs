//! Hardening, continued (issue #22): NUL refused wherever a string is stored, one answer
//! for a project a caller may not see, names without invisible characters, secrets not
//! cached, and the limits the server keeps.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// A 422 naming `field`.
fn refused(s: StatusCode, v: &Value, field: &str) {
    assert_eq!(
        (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid"), Some(field)),
        "{v}"
    );
}

/// Issue #22 item 8: a NUL anywhere a string is stored (or looked up) is a 422 naming the
/// field on both backends — PostgreSQL used to answer 500.
async fn nul_is_refused_naming_the_field(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let rkey = app.reviewer("r1", &[1, 2], &["spam"]).await;

    let mut policy = example_policy();
    policy["rules"][0]["name"] = json!("dis\u{0}tress");
    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            "/v1/projects/spam/policy",
            ADMIN,
            Some(policy.clone()),
        )
        .await;
    refused(s, &v, "rules[0].name");
    policy["rules"][0]["name"] = json!("distress");
    policy["rules"][1]["when"] = json!("payload.text == \"a\u{0}\"");
    let (s, v) = app.post("/v1/projects/spam/policy/check", ADMIN, policy).await;
    refused(s, &v, "rules[1].when");
    let (s, v) = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "other", "labels": ["a", "b\u{0}"], "policy": example_policy()}),
        )
        .await;
    refused(s, &v, "labels[1]");
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "r\u{0}2", "tiers": [1], "projects": []}),
        )
        .await;
    refused(s, &v, "name");
    let (s, v) = app
        .post(
            "/v1/projects/spam/webhooks",
            ADMIN,
            json!({"url": "https://example.com/\u{0}", "events": ["*"]}),
        )
        .await;
    refused(s, &v, "url");
    let (s, v) = app
        .post(
            "/v1/projects/spam/gold",
            ADMIN,
            json!({"items": [{"external_id": "g", "payload": {"t\u{0}": 1}, "label": "spam"}]}),
        )
        .await;
    refused(s, &v, "items[0].payload.t\\u0000");

    // An answer's free text: a failure category, a note.
    app.submit("spam", &svc, json!([item("x", "hmm", Some(0.5))])).await;
    let t = app.claim("spam", &rkey, None).await.expect("a task");
    for (answer, field) in [
        (
            json!({"label": "spam", "failure_category": "bad\u{0}"}),
            "failure_category",
        ),
        (json!({"label": "spam", "note": "n\u{0}"}), "note"),
    ] {
        let (s, v) = app.answer(&rkey, &t, "a1", answer).await;
        refused(s, &v, field);
    }
    let (s, v) = app.answer(&rkey, &t, "a1", json!({"label": "spam"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Path parameters and query values, named.
    let (s, v) = app.get("/v1/projects/sp%00am/stats", &svc).await;
    refused(s, &v, "project");
    let (s, v) = app.get("/v1/projects/spam/items/x%00", &svc).await;
    refused(s, &v, "external_id");
    let (s, v) = app.get("/v1/projects/spam/labels?after=0&queue=%00", &svc).await;
    refused(s, &v, "queue");
    let (s, v) = app
        .call(
            reqwest::Method::PATCH,
            "/v1/reviewers/r%001",
            ADMIN,
            Some(json!({"tiers": [1]})),
        )
        .await;
    refused(s, &v, "name");

    // An imported row: its line and field.
    let row = json!({"external_id": "i1", "payload": {"text": "x"},
        "resolution": {"source": "human", "label": "spam", "reviewers": ["r\u{0}"]}});
    let (s, v) = app
        .raw_post(
            "/v1/projects/spam/import?format=jsonl",
            &svc,
            &format!("{}\n{row}\n", json!({"external_id": "i0", "payload": {}})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["line"].as_u64(), v["error"]["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(2),
            Some("line 2: resolution.reviewers[0]")
        ),
        "{v}"
    );

    // A NUL in a sign-in name is no one's name: refused like any wrong one, not a 500.
    let token = crate::console::login_token(&app).await;
    let resp = app
        .http
        .post(format!("{}/login", app.base))
        .header("cookie", &token.0)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={}&name=r%001&password=whatever+it+is", token.1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Nothing of the refused requests was stored: the one item and its one label.
    let (s, v) = app.get("/v1/projects/spam/labels", &svc).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["labels"].as_array().unwrap().len(), 1, "{v}");
    app.stop().await;
}

/// Issue #22 item 11: a project the caller may not see answers exactly as one that does
/// not exist, on every project route, whoever asks.
async fn a_project_the_caller_may_not_see_is_not_found(db: Db) {
    let app = spawn_app(&db).await;
    app.project("pa", example_policy()).await;
    let svc_b = app.project("pb", example_policy()).await;
    let rev_b = app.reviewer("rb", &[1], &["pb"]).await;
    let m = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let routes: Vec<(reqwest::Method, &str, Option<Value>)> = vec![
        (m.clone(), "", None),
        (put, "/policy", Some(example_policy())),
        (post.clone(), "/policy/check", Some(example_policy())),
        (
            post.clone(),
            "/items",
            Some(json!({"items": [item("x", "hi", Some(0.5))]})),
        ),
        (m.clone(), "/items/x", None),
        (m.clone(), "/export", None),
        (post.clone(), "/claim", Some(json!({}))),
        (m.clone(), "/labels", None),
        (m.clone(), "/events", None),
        (m.clone(), "/stats", None),
        (post.clone(), "/gold", Some(json!({"items": []}))),
        (m.clone(), "/reviewers", None),
        (post.clone(), "/reviewers/rb/release", Some(json!({}))),
        (post.clone(), "/reviewers/rb/hold", Some(json!({"reason": "x"}))),
        (m.clone(), "/agreement", None),
        (m.clone(), "/model", None),
        (post.clone(), "/model/train", Some(json!({}))),
        (post.clone(), "/model/retrain", Some(json!({}))),
        (post.clone(), "/model/predict", Some(json!({"items": []}))),
        (post.clone(), "/policy/backtest", Some(example_policy())),
        (m.clone(), "/monitors", None),
        (m.clone(), "/webhooks", None),
        (m.clone(), "/webhooks/1", None),
    ];
    for key in [&svc_b, &rev_b] {
        for (method, tail, body) in &routes {
            let (hidden, v) = app
                .call(method.clone(), &format!("/v1/projects/pa{tail}"), key, body.clone())
                .await;
            let (absent, w) = app
                .call(method.clone(), &format!("/v1/projects/nope{tail}"), key, body.clone())
                .await;
            assert_eq!(hidden, absent, "{method} …{tail}: {v} / {w}");
            if hidden == StatusCode::NOT_FOUND {
                assert_eq!(
                    v["error"]["message"].as_str().map(|m| m.replace("'pa'", "'nope'")),
                    w["error"]["message"].as_str().map(str::to_string),
                    "the same words: {method} …{tail}"
                );
            }
        }
    }
    // The import takes a file, not JSON.
    for project in ["pa", "nope"] {
        let (s, _) = app
            .raw_post(&format!("/v1/projects/{project}/import?format=jsonl"), &svc_b, "{}")
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{project}");
    }
    // A caller who sees the project but may not do this still hears 403.
    let (s, _) = app.post("/v1/projects/pb/claim", &svc_b, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.stop().await;
}

/// Issue #22 item 11: names are NFKC and visible — a look-alike with a zero-width space or
/// a bidi control is refused, a fullwidth spelling is the same name — and labels too.
async fn names_are_normalised_and_visible(db: Db) {
    let app = spawn_app(&db).await;
    app.project("spam", example_policy()).await;
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "r1", "tiers": [1], "projects": ["spam"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for bad in ["r1\u{200b}", "\u{202e}1r", "r\u{2066}1\u{2069}", "\u{feff}r1"] {
        let (s, v) = app
            .post(
                "/v1/reviewers",
                ADMIN,
                json!({"name": bad, "tiers": [1], "projects": []}),
            )
            .await;
        refused(s, &v, "name");
        assert!(v["error"]["message"].as_str().unwrap().contains("U+"), "{v}");
    }
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ｒ１", "tiers": [1], "projects": []}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("reviewer_exists")),
        "ｒ１ is r1: {v}"
    );
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "Ｚoë", "tiers": [1], "projects": []}),
        )
        .await;
    assert_eq!((s, v["name"].as_str()), (StatusCode::CREATED, Some("Zoë")), "{v}");

    let project = |labels: Value| json!({"name": "other", "labels": labels, "policy": {"rules": []}});
    let (s, v) = app
        .post("/v1/projects", ADMIN, project(json!(["ham", "sp\u{202e}am"])))
        .await;
    refused(s, &v, "labels[1]");
    let (s, v) = app
        .post("/v1/projects", ADMIN, project(json!(["spam", "ｓｐａｍ"])))
        .await;
    refused(s, &v, "labels[1]");
    let (s, v) = app
        .post("/v1/projects", ADMIN, project(json!(["ham", "ｓｐａｍ"])))
        .await;
    assert_eq!((s, &v["labels"]), (StatusCode::CREATED, &json!(["ham", "spam"])), "{v}");
    app.stop().await;
}

/// Issue #22 item 11: every answer that carries a secret — a new key, a webhook secret, a
/// session cookie — is `Cache-Control: no-store` (as is every other `/v1/…` answer).
async fn secrets_are_never_cached(db: Db) {
    let app = spawn_app(&db).await;
    app.project("spam", example_policy()).await;
    let no_store = |r: &reqwest::Response, what: &str| {
        assert_eq!(
            r.headers().get("cache-control").map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{what}"
        );
    };
    let send = |method: reqwest::Method, path: &str, body: Value| {
        app.http
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    let r = send(
        reqwest::Method::POST,
        "/v1/reviewers",
        json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "correct horse"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    no_store(&r, "a reviewer's first key");
    let r = send(reqwest::Method::POST, "/v1/reviewers/ana/keys", json!({}))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    no_store(&r, "a reviewer's added key");
    let r = send(
        reqwest::Method::POST,
        "/v1/keys",
        json!({"scope": "service", "projects": ["spam"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    no_store(&r, "a service key");
    let r = send(reqwest::Method::GET, "/v1/projects/spam", json!({}))
        .await
        .unwrap();
    no_store(&r, "any other answer of the API");
    let r = send(reqwest::Method::GET, "/v1/projects/nope", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    no_store(&r, "errors too");
    // Sign-in: the answer that sets the session cookie.
    let token = crate::console::login_token(&app).await;
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", app.base))
        .header("cookie", &token.0)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={}&name=ana&password=correct+horse", token.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers().get("set-cookie").is_some());
    no_store(&r, "the sign-in that sets the session cookie");
    app.stop().await;
}

/// Webhook routes' `{id}` that does not parse: the JSON error naming `id`.
async fn webhook_ids_that_do_not_parse_name_the_parameter(db: Db) {
    let app = spawn_app(&db).await;
    app.project("spam", example_policy()).await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    for (method, tail, body) in [
        (get.clone(), "", None),
        (reqwest::Method::PATCH, "", Some(json!({"enabled": false}))),
        (reqwest::Method::DELETE, "", None),
        (post.clone(), "/rotate", Some(json!({}))),
        (post.clone(), "/replay", Some(json!({"after": 0}))),
        (get.clone(), "/deliveries", None),
    ] {
        let (s, v) = app
            .call(
                method.clone(),
                &format!("/v1/projects/spam/webhooks/abc{tail}"),
                ADMIN,
                body,
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request"), Some("id")),
            "{method} …{tail}: {v}"
        );
    }
    app.stop().await;
}

/// A server whose connections time out quickly (1 s for headers and body pieces) and
/// that accepts `max` connections at once.
async fn spawn_limited(db: &Db, max: usize) -> TestApp {
    let options = flywheel_server::ServeOptions {
        limits: flywheel_server::accept::ConnLimits {
            max_connections: max,
            header_timeout: std::time::Duration::from_secs(1),
            body_timeout: std::time::Duration::from_secs(1),
        },
        ..Default::default()
    };
    spawn_with(
        db,
        std::sync::Arc::new(flywheel_server::ManualClock::new(START_MS)),
        options,
    )
    .await
}

/// Reads `stream` to its end: what the server sent before closing it. Panics if the
/// server keeps it open for a minute (a guard against hanging, not a timing assertion).
async fn read_to_close(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), stream.read_to_end(&mut out)).await;
    match read {
        Ok(Ok(_)) | Ok(Err(_)) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => panic!("the server kept the connection open"),
    }
}

/// Issue #22 item 3: a slowloris connection (half a header, then nothing) is closed after
/// the header timeout, and while it holds the only connection slot, the next client waits
/// to be accepted and is served once the slot is free.
async fn a_slowloris_connection_is_closed(db: Db) {
    use tokio::io::AsyncWriteExt;
    let app = spawn_limited(&db, 1).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // The next client waits behind the only slot: it is served only once the server has
    // closed the slowloris connection.
    let mut next = tokio::net::TcpStream::connect(&addr).await.unwrap();
    next.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut next).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // By now the slowloris connection is closed: its end of the socket reads to EOF at once.
    let mut sent = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match slow.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => sent.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("the slowloris connection is still open while the next client was served")
            }
            Err(_) => break, // reset: closed too
        }
    }
    let sent = String::from_utf8_lossy(&sent);
    assert!(!sent.contains("200 OK"), "the half request was never served: {sent}");
    app.stop().await;
}

/// A request body that stops arriving fails its request with the JSON error body after
/// the body timeout, rather than holding the connection.
async fn a_stalled_body_fails_its_request(db: Db) {
    use tokio::io::AsyncWriteExt;
    let app = spawn_limited(&db, 8).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": "
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(answer.contains("\"error\""), "the JSON error body: {answer}");
    let (status, v) = app.get("/v1/projects", ADMIN).await;
    assert_eq!((status, v), (StatusCode::OK, json!([])), "nothing was created");
    app.stop().await;
}

/// Issue #22 item 4: one item may not be deeper, larger or hold more values than the
/// limits — checked before the body is parsed, naming the item and member — and nothing
/// of a refused batch is written.
async fn an_oversized_item_is_refused_naming_it(db: Db) {
    use flywheel_server::http::limits::{MAX_ITEM_BYTES, MAX_ITEM_DEPTH, MAX_ITEM_ELEMENTS};
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let ok = item("ok", "hello", Some(0.5));
    let mut deep = json!(1);
    for _ in 0..MAX_ITEM_DEPTH {
        deep = json!({"d": deep});
    }
    let cases = [
        (
            json!({"external_id": "big", "payload": {"text": "x".repeat(MAX_ITEM_BYTES)}}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            json!({"external_id": "deep", "payload": deep}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"external_id": "many", "payload": {"xs": vec![0u8; MAX_ITEM_ELEMENTS]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
    ];
    for (bad, status, code) in cases {
        let (s, v) = app
            .post("/v1/projects/spam/items", &svc, json!({"items": [ok.clone(), bad]}))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
            (status, Some(code), Some("items[1].payload")),
            "{v}"
        );
    }
    // Gold items are held to the same limits.
    let gold = json!({"external_id": "g", "payload": {"xs": vec![0u8; MAX_ITEM_ELEMENTS]}, "label": "spam"});
    let (s, v) = app
        .post("/v1/projects/spam/gold", ADMIN, json!({"items": [gold]}))
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("items[0].payload")),
        "{v}"
    );
    let (s, v) = app.get("/v1/projects/spam/stats", &svc).await;
    assert_eq!(
        (s, &v["items"]),
        (StatusCode::OK, &json!(0)),
        "nothing was written: {v}"
    );
    // Just within the limits is accepted.
    let mut within = json!(1);
    for _ in 0..MAX_ITEM_DEPTH - 2 {
        within = json!({"d": within});
    }
    app.submit("spam", &svc, json!([{"external_id": "fits", "payload": within}]))
        .await;
    app.stop().await;
}

/// Issue #22 item 5 (its static half): a rule whose estimated cost per item is too high
/// is refused by policy/check and by a policy update; the stored policy stays.
async fn a_costly_rule_is_refused(db: Db) {
    let app = spawn_app(&db).await;
    app.project("spam", example_policy()).await;
    let hundred = format!("[{}]", (0..100).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    let costly = format!("{hundred}.all(a, {hundred}.all(b, {hundred}.all(c, {hundred}.all(d, true))))");
    let mut policy = example_policy();
    policy["rules"][1]["when"] = json!(costly);
    let (s, v) = app.post("/v1/projects/spam/policy/check", ADMIN, policy.clone()).await;
    refused(s, &v, "rules[1].when");
    assert!(v["error"]["message"].as_str().unwrap().contains("too costly"), "{v}");
    let (s, v) = app
        .call(reqwest::Method::PUT, "/v1/projects/spam/policy", ADMIN, Some(policy))
        .await;
    refused(s, &v, "rules[1].when");
    let (s, v) = app.get("/v1/projects/spam", ADMIN).await;
    assert_eq!((s, &v["policy_version"]), (StatusCode::OK, &json!(1)), "{v}");
    // One comprehension over a payload list is fine.
    let mut policy = example_policy();
    policy["rules"][1]["when"] = json!("has(payload.tags) && payload.tags.exists(t, t == 'x')");
    let (s, v) = app.post("/v1/projects/spam/policy/check", ADMIN, policy).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.stop().await;
}

on_both_backends!(
    a_costly_rule_is_refused,
    an_oversized_item_is_refused_naming_it,
    a_slowloris_connection_is_closed,
    a_stalled_body_fails_its_request,
    nul_is_refused_naming_the_field,
    a_project_the_caller_may_not_see_is_not_found,
    names_are_normalised_and_visible,
    secrets_are_never_cached,
    webhook_ids_that_do_not_parse_name_the_parameter,
);
