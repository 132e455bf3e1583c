//! Hardening: the sign-in brake under concurrency, errors that keep to the JSON
//! contract, and revocation that ends leases.

use flywheel_server::app::signin::{NAME_FREE_FAILURES, delay_ms};
use std::sync::Arc;

use flywheel_server::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::login_token;
use crate::helpers::*;

/// Posts the sign-in form; the status and the `Retry-After` header.
async fn post_login(
    http: &reqwest::Client,
    base: &str,
    token: &(String, String),
    name: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (StatusCode, Option<String>) {
    let mut req = http
        .post(format!("{base}/login"))
        .header("cookie", &token.0)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={}&name={name}&password={}",
            token.1,
            password.replace(' ', "+")
        ));
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    let resp = req.send().await.unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status(), retry)
}

fn no_redirect() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn with_reviewer(app: &TestApp) {
    app.project("spam", example_policy()).await;
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn parallel_guesses_stay_within_the_brake(db: Db) {
    let app = spawn_app(&db).await;
    with_reviewer(&app).await;
    let token = login_token(&app).await;
    let http = no_redirect();
    let guesses: Vec<_> = (0..49)
        .map(|i| {
            let (http, base, token) = (http.clone(), app.base.clone(), token.clone());
            tokio::spawn(async move { post_login(&http, &base, &token, "ana", &format!("guess {i}"), None).await })
        })
        .collect();
    let mut counts = std::collections::BTreeMap::new();
    for g in guesses {
        let (status, retry) = g.await.unwrap();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
        }
        *counts.entry(status.as_u16()).or_insert(0) += 1;
    }
    assert!(
        counts.get(&401).copied().unwrap_or(0) <= NAME_FREE_FAILURES as usize,
        "at most the free budget reaches the hash: {counts:?}"
    );
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), vec![401, 429], "{counts:?}");
    // The right password as the 50th is refused while the name is braked …
    let (status, retry) = post_login(&http, &app.base, &token, "ana", "correct horse", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("1"));
    // … and goes through once the (short, exponential) delay has passed: the owner is
    // slowed, not locked out.
    app.clock.advance_ms(delay_ms(0));
    let (status, _) = post_login(&http, &app.base, &token, "ana", "correct horse", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

async fn parallel_sign_ins_are_bounded_in_memory(db: Db) {
    // Each sign-in from an address of its own (through a trusted proxy's header), so the
    // per-name and per-IP budgets let every one through to the hashing gate.
    let app = spawn_setup(
        &db,
        Arc::new(ManualClock::new(START_MS)),
        flywheel_server::ServeOptions::default(),
        |s| s.client_ip_header = Some(axum::http::HeaderName::from_static("x-forwarded-for")),
    )
    .await;
    let token = login_token(&app).await;
    let http = no_redirect();
    let before = rss_kib();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(before));
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(5)) => {}
                }
            }
        })
    };
    let sign_ins: Vec<_> = (0..200u32)
        .map(|i| {
            let (http, base, token) = (http.clone(), app.base.clone(), token.clone());
            tokio::spawn(async move {
                let ip = format!("10.{}.{}.1", i / 256, i % 256);
                post_login(&http, &base, &token, &format!("nobody-{i}"), "wrong horse", Some(&ip)).await
            })
        })
        .collect();
    let mut counts = std::collections::BTreeMap::new();
    for s in sign_ins {
        let (status, retry) = s.await.unwrap();
        assert!(
            status == StatusCode::UNAUTHORIZED || (status == StatusCode::TOO_MANY_REQUESTS && retry.is_some()),
            "{status}"
        );
        *counts.entry(status.as_u16()).or_insert(0) += 1;
    }
    let _ = stop.send(true);
    sampler.await.unwrap();
    let grew_mib = peak.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(before) / 1024;
    // Unbounded, 200 Argon2 hashes of 19 MiB each took ~3.3 GB; bounded to twice the
    // cores they stay far below this generous ceiling.
    assert!(
        grew_mib < 1024,
        "RSS grew by {grew_mib} MiB during 200 parallel sign-ins: {counts:?}"
    );
}

/// This process's resident set, in KiB (the server runs in-process).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A request's status and JSON error body (panics if the body is not the JSON error).
async fn error_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(ct.as_deref(), Some("application/json"), "{status}");
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["code"].is_string() && v["error"]["message"].is_string(),
        "{v}"
    );
    (status, v)
}

async fn every_error_is_the_json_body(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let (_, reviewer) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "r1", "tiers": [1], "projects": ["spam"]}),
        )
        .await;
    let rkey = reviewer["api_key"].as_str().unwrap().to_string();
    let http = &app.http;
    let base = &app.base;

    // Path parsing names the parameter.
    let (s, v) = error_of(
        http.post(format!("{base}/v1/tasks/abc/heartbeat"))
            .bearer_auth(&rkey)
            .json(&json!({"lease_id": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("task_id"))
    );

    // Query parsing.
    let (s, _) = error_of(
        http.get(format!("{base}/v1/projects/spam/export?format=%ZZ&limit=-1"))
            .bearer_auth(&svc)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(s.is_client_error(), "{s}");

    // A JSON body to the sign-in form.
    let (s, v) = error_of(
        http.post(format!("{base}/login"))
            .json(&json!({"name": "ana"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );

    // 405 and 404.
    let (s, _) = error_of(http.delete(format!("{base}/v1/projects")).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, _) = error_of(http.get(format!("{base}/v1/nowhere")).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = error_of(http.get(format!("{base}/static/nope.js")).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The console's pages still answer HTML.
    let login = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert!(
        login.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // Out-of-range numbers name their field.
    let mut policy = example_policy();
    policy["lease_seconds"] = json!(1e12);
    let (s, v) = app
        .call(reqwest::Method::PUT, "/v1/projects/spam/policy", ADMIN, Some(policy))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["field"]
            .as_str()
            .is_some_and(|f| f.ends_with("lease_seconds")),
        "{v}"
    );
    let mut it = item("a", "hello", Some(0.5));
    it["priority"] = json!(1e30);
    let (s, v) = app.post("/v1/projects/spam/items", &svc, json!({"items": [it]})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["field"].as_str().is_some_and(|f| f.ends_with("priority")),
        "{v}"
    );
}

/// Issue #22 item 7: a grant withdrawn (`PATCH /v1/reviewers/r1 {"projects": [...]}`) or a
/// hold ends the reviewer's leases on that project: heartbeat and answer get `lease_lost`,
/// the task goes to another reviewer, and the log has a `lease.cancelled` event.
async fn revocation_ends_the_reviewers_leases(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("pa", example_policy()).await;
    app.project("pb", example_policy()).await;
    app.submit(
        "pa",
        &svc,
        json!([item("x", "hmm", Some(0.5)), item("y", "hmm", Some(0.5))]),
    )
    .await;
    let r1 = app.reviewer("r1", &[1], &["pa", "pb"]).await;
    let r2 = app.reviewer("r2", &[1], &["pa"]).await;
    let refused = |s: StatusCode, v: &Value, what: &str| {
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("lease_lost")),
            "{what}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains("withdrawn or held"),
            "{v}"
        );
    };
    let cancelled = |events: Vec<Value>, lease: &Value| {
        events
            .into_iter()
            .filter(|e| e["kind"] == "lease.cancelled" && e["data"]["lease_id"] == *lease)
            .map(|e| e["data"]["reason"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    for (round, revoke) in ["grant", "hold"].into_iter().enumerate() {
        let t = app.claim("pa", &r1, None).await.expect("r1 leases a task of pa");
        let other = app.claim("pa", &r2, None);
        if round == 0 {
            // Both tasks: r1 holds one, r2 leases (and answers) the other.
            let o = other.await.expect("the other task");
            let (s, _) = app.answer(&r2, &o, "r2-first", json!({"label": "ham"})).await;
            assert_eq!(s, StatusCode::OK);
        } else {
            assert!(other.await.is_none(), "r1 holds the only open task");
        }
        let reason = match revoke {
            "grant" => {
                let (s, v) = app
                    .call(
                        reqwest::Method::PATCH,
                        "/v1/reviewers/r1",
                        ADMIN,
                        Some(json!({"projects": ["pb"]})),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
                "the reviewer's grant was withdrawn"
            }
            _ => {
                let (s, v) = app
                    .post(
                        "/v1/projects/pa/reviewers/r1/hold",
                        ADMIN,
                        json!({"reason": "checking"}),
                    )
                    .await;
                assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
                "the reviewer was held"
            }
        };
        let (s, v) = app
            .post(
                &format!("/v1/tasks/{}/heartbeat", t["task_id"]),
                &r1,
                json!({"lease_id": t["lease_id"]}),
            )
            .await;
        refused(s, &v, "heartbeat");
        let (s, v) = app
            .answer(&r1, &t, &format!("late-{revoke}"), json!({"label": "spam"}))
            .await;
        refused(s, &v, "answer");
        let (s, v) = app.post("/v1/projects/pa/claim", &r1, json!({})).await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "{revoke}: {s} {v}"
        );
        assert_eq!(cancelled(app.events("pa").await, &t["lease_id"]), [reason]);
        let t2 = app.claim("pa", &r2, None).await.expect("the slot came back");
        assert_eq!(t2["task_id"], t["task_id"]);
        let (s, v) = app
            .answer(&r2, &t2, &format!("r2-{revoke}"), json!({"label": "ham"}))
            .await;
        assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("resolved")), "{v}");
        if round == 0 {
            // Granted again for the hold round, and a fresh task to hold.
            let (s, v) = app
                .call(
                    reqwest::Method::PATCH,
                    "/v1/reviewers/r1",
                    ADMIN,
                    Some(json!({"projects": ["pa", "pb"]})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            app.submit("pa", &svc, json!([item("z", "hmm", Some(0.5))])).await;
        }
    }
    let (s, v) = app.get("/v1/projects/pa/labels?limit=100", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let labels = v["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 3, "r1's late answers were never stored: {labels:?}");
    app.stop().await;
}

on_both_backends!(
    parallel_guesses_stay_within_the_brake,
    parallel_sign_ins_are_bounded_in_memory,
    every_error_is_the_json_body,
    revocation_ends_the_reviewers_leases,
);
