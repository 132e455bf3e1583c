//! Webhooks end to end: endpoints over the API, deliveries to a real receiver on
//! 127.0.0.1, signatures checked by the test's own HMAC (itself checked against the
//! Standard Webhooks test vector), and the worker driven step by step under the manual
//! clock (retries, backoff, `Retry-After`, 410, the last attempt, a restart, replay,
//! rotation). Each case runs on both backends.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use flywheel_core::webhook::{JITTER, RETRY_DELAYS_MS};
use flywheel_server::workers::{Delivered, WebhookWorker};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// What a receiver got: one request, and the status it answered.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    id: String,
    timestamp: String,
    signature: String,
    pub(crate) body: String,
    answered: u16,
}

/// A webhook receiver that records every request and answers `status` (with
/// `Retry-After`, if set).
#[derive(Default)]
pub(crate) struct Receiver {
    got: Mutex<Vec<Got>>,
    status: AtomicU16,
    retry_after: Mutex<Option<String>>,
}

impl Receiver {
    pub(crate) fn set(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub(crate) fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    pub(crate) fn delivered(&self) -> Vec<Got> {
        self.got().into_iter().filter(|g| g.answered == 200).collect()
    }
}

pub(crate) async fn receiver() -> (String, Arc<Receiver>) {
    let (app, r) = receiver_app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, r)
}

/// The receiver's routes (`POST /hook`) and what it records, to serve on any listener.
pub(crate) fn receiver_app() -> (axum::Router, Arc<Receiver>) {
    let r = Arc::new(Receiver::default());
    r.set(200);
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let r = state.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default()
                };
                let answered = r.status.load(Ordering::SeqCst);
                r.got.lock().unwrap().push(Got {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp"),
                    signature: h("webhook-signature"),
                    body,
                    answered,
                });
                let mut resp = axum::response::Response::new(axum::body::Body::from("thanks"));
                *resp.status_mut() = axum::http::StatusCode::from_u16(answered).unwrap();
                if let Some(after) = r.retry_after.lock().unwrap().clone() {
                    resp.headers_mut().insert("retry-after", after.parse().unwrap());
                }
                resp
            }
        }),
    );
    (app, r)
}

/// The signature Standard Webhooks defines, computed here from its definition (not with
/// the server's code).
fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let key = BASE64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// Checks a request's signatures: one per secret, in order, each the expected one.
fn verify(g: &Got, secrets: &[&str]) {
    let sigs: Vec<&str> = g.signature.split(' ').collect();
    let want: Vec<String> = secrets
        .iter()
        .map(|s| expected_signature(s, &g.id, &g.timestamp, &g.body))
        .collect();
    assert_eq!(sigs, want, "{g:?}");
}

#[test]
fn the_tests_verifier_reproduces_the_standard_webhooks_test_vector() {
    assert_eq!(
        expected_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            r#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

pub(crate) fn no_background_delivery() -> flywheel_server::ServeOptions {
    flywheel_server::ServeOptions {
        background_webhooks: false,
        ..Default::default()
    }
}

pub(crate) async fn app_on(db: &Db) -> TestApp {
    spawn_with(
        db,
        Arc::new(flywheel_server::ManualClock::new(START_MS)),
        no_background_delivery(),
    )
    .await
}

pub(crate) async fn run(app: &TestApp) -> Delivered {
    WebhookWorker::new(app.state.clone()).try_run_once().await.unwrap()
}

/// Runs rounds until one finds nothing to do.
async fn drain(app: &TestApp) -> Delivered {
    let mut total = Delivered::default();
    loop {
        let d = run(app).await;
        if d == Delivered::default() {
            return total;
        }
        total.delivered += d.delivered;
        total.failed += d.failed;
    }
}

pub(crate) async fn create(app: &TestApp, url: &str, events: Value) -> (i64, String) {
    let resp = app
        .http
        .post(format!("{}/v1/projects/spam/webhooks", app.base))
        .bearer_auth(ADMIN)
        .json(&json!({"url": url, "events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let v: Value = resp.json().await.unwrap();
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{v}");
    (v["id"].as_i64().unwrap(), secret)
}

pub(crate) async fn submit_one(app: &TestApp, key: &str, id: &str) {
    app.submit("spam", key, json!([item(id, &format!("text {id}"), Some(0.5))]))
        .await;
}

async fn hook(app: &TestApp, id: i64) -> Value {
    let (s, v) = app.get(&format!("/v1/projects/spam/webhooks/{id}"), ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

pub(crate) async fn deliveries(app: &TestApp, id: i64) -> Vec<Value> {
    let (s, v) = app
        .get(&format!("/v1/projects/spam/webhooks/{id}/deliveries?limit=1000"), ADMIN)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["deliveries"].as_array().unwrap().clone()
}

/// The project's events whose kind starts with `prefix`.
async fn events_of(app: &TestApp, prefix: &str) -> Vec<Value> {
    app.events("spam")
        .await
        .into_iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with(prefix))
        .collect()
}

async fn webhook_endpoints_and_a_signed_delivery(db: Db) {
    let app = app_on(&db).await;
    let key = app.project("spam", example_policy()).await;
    let (url, rx) = receiver().await;
    let (id, secret) = create(&app, &url, json!(["item.decided"])).await;

    let (s, v) = app.get("/v1/projects/spam/webhooks", ADMIN).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["webhooks"].as_array().unwrap().len(), 1);
    assert!(
        v["webhooks"][0].get("secret").is_none(),
        "the secret is shown once: {v}"
    );
    assert_eq!(v["webhooks"][0]["events"], json!(["item.decided"]));
    let (s, _) = app.get("/v1/projects/spam/webhooks", &key).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "admin only");

    submit_one(&app, &key, "a").await;
    assert_eq!(
        run(&app).await,
        Delivered {
            delivered: 1,
            failed: 0
        }
    );
    let got = rx.delivered();
    assert_eq!(got.len(), 1);
    verify(&got[0], &[&secret]);
    let decided = events_of(&app, "item.decided").await;
    let seq = decided[0]["seq"].as_i64().unwrap();
    assert_eq!(got[0].id, format!("msg_{seq}_{id}"));
    assert_eq!(got[0].timestamp, (START_MS / 1000).to_string());
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "item.decided");
    assert_eq!(body["data"], decided[0]["data"]);
    assert_eq!(body["external_id"], "a");
    assert!(body["timestamp"].as_str().unwrap().starts_with("2027-01-15T"), "{body}");

    let d = deliveries(&app, id).await;
    assert_eq!(d.len(), 1);
    assert_eq!(
        (
            d[0]["status"].as_u64(),
            d[0]["outcome"].as_str(),
            d[0]["response"].as_str()
        ),
        (Some(200), Some("delivered"), Some("thanks"))
    );
    assert_eq!(d[0]["message_id"], got[0].id.as_str());
    assert_eq!(hook(&app, id).await["cursor"].as_i64().unwrap(), seq);
    assert_eq!(run(&app).await, Delivered::default(), "nothing left to send");

    // The console shows the endpoint and its attempts.
    let (cookie, _) = crate::console::sign_in(&app, &[("key", ADMIN)]).await.unwrap();
    let page = app
        .http
        .get(format!("{}/ui/projects/spam/webhooks", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for needle in [
        url.as_str(),
        "item.decided",
        "delivered",
        "thanks",
        &format!("<td>{seq}</td>"),
    ] {
        assert!(html.contains(needle), "{needle} not on the page");
    }
    assert!(!html.contains(&secret), "the secret is never shown again");

    // Changes: patterns are checked, each change is an event, the secret is in none.
    let path = format!("/v1/projects/spam/webhooks/{id}");
    let (s, v) = app
        .call(Method::PATCH, &path, ADMIN, Some(json!({"events": ["item.*", "nope"]})))
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("events[1]"))
    );
    let (s, v) = app
        .call(
            Method::PATCH,
            &path,
            ADMIN,
            Some(json!({"events": ["task.*"], "enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["events"].clone(), v["enabled"].clone()),
        (json!(["task.*"]), json!(false))
    );
    let (s, _) = app.call(Method::DELETE, &path, ADMIN, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&path, ADMIN).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let kinds: Vec<String> = events_of(&app, "webhook.")
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["webhook.created", "webhook.updated", "webhook.deleted"]);
    assert!(
        !serde_json::to_string(&app.events("spam").await)
            .unwrap()
            .contains(&secret[6..])
    );
    app.stop().await;
}

async fn webhook_retries_back_off_to_the_last_attempt(db: Db) {
    let app = app_on(&db).await;
    let key = app.project("spam", example_policy()).await;
    let (url, rx) = receiver().await;
    rx.set(500);
    let (id, _) = create(&app, &url, json!(["item.decided"])).await;
    submit_one(&app, &key, "a").await;
    assert_eq!(
        run(&app).await,
        Delivered {
            delivered: 0,
            failed: 1
        },
        "the first attempt is immediate"
    );
    for (i, delay) in RETRY_DELAYS_MS.iter().enumerate() {
        // Not before the schedule says...
        app.clock.advance_ms(delay - 1);
        assert_eq!(run(&app).await, Delivered::default(), "retry {} came early", i + 1);
        // ...and by the schedule's delay with the most jitter.
        app.clock.advance_ms((*delay as f64 * JITTER) as i64 + 1);
        assert_eq!(
            run(&app).await,
            Delivered {
                delivered: 0,
                failed: 1
            },
            "retry {}",
            i + 1
        );
    }
    let d = deliveries(&app, id).await;
    assert_eq!(d.len(), RETRY_DELAYS_MS.len() + 1, "ten attempts in all");
    assert_eq!(d[0]["outcome"], "given_up");
    assert_eq!(d[0]["attempt"], 10);
    assert!(
        d[1..]
            .iter()
            .all(|a| a["outcome"] == "failed" && a["next_attempt_at"].is_string())
    );
    assert_eq!(rx.got().len(), 10);
    assert!(
        rx.got().windows(2).all(|w| w[0].id == w[1].id),
        "one webhook-id for every attempt"
    );
    let h = hook(&app, id).await;
    assert_eq!((h["failing"].clone(), h["enabled"].clone()), (json!(true), json!(true)));
    let failing = events_of(&app, "webhook.failing").await;
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0]["data"]["attempts"], 10);
    assert_eq!(failing[0]["data"]["status"], 500);

    // The endpoint goes on with the next event, and a success clears `failing`.
    rx.set(200);
    submit_one(&app, &key, "b").await;
    assert_eq!(
        drain(&app).await,
        Delivered {
            delivered: 1,
            failed: 0
        }
    );
    assert_eq!(hook(&app, id).await["failing"], false);

    // A receiver's Retry-After replaces the schedule.
    rx.set(503);
    *rx.retry_after.lock().unwrap() = Some("120".into());
    submit_one(&app, &key, "c").await;
    assert_eq!(
        run(&app).await,
        Delivered {
            delivered: 0,
            failed: 1
        }
    );
    let p = app.state.project("spam").await.unwrap();
    let stored = app.state.store.webhook(p.id, id).await.unwrap().unwrap();
    assert_eq!(stored.next_attempt_at, app.clock_now() + 120_000);
    app.stop().await;
}

async fn webhook_receiver_down_gets_every_event_once_after_a_restart(db: Db) {
    let app = app_on(&db).await;
    let key = app.project("spam", example_policy()).await;
    let (url, rx) = receiver().await;
    rx.set(503);
    let (id, _) = create(&app, &url, json!(["item.*"])).await;
    for i in 0..3 {
        submit_one(&app, &key, &format!("a{i}")).await;
    }
    assert_eq!(
        run(&app).await,
        Delivered {
            delivered: 0,
            failed: 1
        }
    );
    // The server restarts while the receiver is down; the outbox is the database.
    let clock = app.stop().await;
    let app = spawn_with(&db, clock, no_background_delivery()).await;
    for i in 3..5 {
        submit_one(&app, &key, &format!("a{i}")).await;
    }
    app.clock.advance_ms(6_000);
    assert_eq!(
        run(&app).await,
        Delivered {
            delivered: 0,
            failed: 1
        }
    );
    rx.set(200);
    assert_eq!(run(&app).await, Delivered::default(), "the next attempt is not due yet");
    app.clock.advance_ms(330_001);
    let expected: Vec<String> = events_of(&app, "item.")
        .await
        .iter()
        .map(|e| format!("msg_{}_{id}", e["seq"]))
        .collect();
    assert_eq!(expected.len(), 5);
    assert_eq!(drain(&app).await.delivered, 5);
    let ids: Vec<String> = rx.delivered().into_iter().map(|g| g.id).collect();
    assert_eq!(ids, expected, "every event once, in order");
    app.stop().await;
}

async fn webhook_replay_and_rotation(db: Db) {
    let app = app_on(&db).await;
    let key = app.project("spam", example_policy()).await;
    let (url, rx) = receiver().await;
    let (id, old) = create(&app, &url, json!(["item.decided"])).await;
    submit_one(&app, &key, "a").await;
    drain(&app).await;
    let first = rx.delivered()[0].clone();

    // Replay: a cursor move; the same event comes again with the same id.
    let seq = events_of(&app, "item.decided").await[0]["seq"].as_i64().unwrap();
    let replay = format!("/v1/projects/spam/webhooks/{id}/replay");
    let (s, v) = app.post(&replay, ADMIN, json!({"from_seq": 0})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("from_seq"))
    );
    let (s, v) = app.post(&replay, ADMIN, json!({"from_seq": seq})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["cursor"], seq - 1);
    assert_eq!(drain(&app).await.delivered, 1);
    let again = rx.delivered();
    assert_eq!(
        (again.len(), again[1].id.as_str(), again[1].body.as_str()),
        (2, first.id.as_str(), first.body.as_str())
    );

    // Rotation: both secrets sign for 24 hours, the new one first; then only the new one.
    let resp = app
        .http
        .post(format!("{}/v1/projects/spam/webhooks/{id}/rotate", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let v: Value = resp.json().await.unwrap();
    let new = v["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(v["previous_secret_until"].is_string(), "{v}");
    submit_one(&app, &key, "b").await;
    drain(&app).await;
    verify(rx.delivered().last().unwrap(), &[&new, &old]);
    app.clock.advance_ms(24 * 3_600_000 + 1);
    submit_one(&app, &key, "c").await;
    drain(&app).await;
    verify(rx.delivered().last().unwrap(), &[&new]);
    assert!(hook(&app, id).await["previous_secret_until"].is_null());
    assert_eq!(events_of(&app, "webhook.rotated").await.len(), 1);
    assert_eq!(events_of(&app, "webhook.replayed").await.len(), 1);
    app.stop().await;
}

async fn webhook_gone_disables_until_re_enabled(db: Db) {
    let app = app_on(&db).await;
    let key = app.project("spam", example_policy()).await;
    let (url, rx) = receiver().await;
    rx.set(410);
    let (id, _) = create(&app, &url, json!(["item.decided"])).await;
    submit_one(&app, &key, "a").await;
    assert_eq!(
        run(&app).await,
        Delivered {
            delivered: 0,
            failed: 1
        }
    );
    assert_eq!(hook(&app, id).await["enabled"], false);
    assert_eq!(deliveries(&app, id).await[0]["outcome"], "gone");
    let disabled = events_of(&app, "webhook.disabled").await;
    assert_eq!(disabled.len(), 1);
    submit_one(&app, &key, "b").await;
    app.clock.advance_ms(3_600_000);
    assert_eq!(
        run(&app).await,
        Delivered::default(),
        "a disabled endpoint gets nothing"
    );
    rx.set(200);
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/projects/spam/webhooks/{id}"),
            ADMIN,
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(drain(&app).await.delivered, 2, "both events, from the one refused on");
    let bodies: Vec<Value> = rx
        .delivered()
        .iter()
        .map(|g| serde_json::from_str(&g.body).unwrap())
        .collect();
    assert_eq!(
        (bodies[0]["external_id"].as_str(), bodies[1]["external_id"].as_str()),
        (Some("a"), Some("b"))
    );
    app.stop().await;
}

async fn webhook_private_addresses_are_refused_unless_allowed(db: Db) {
    let strict = flywheel_server::app::webhooks::Settings { allow_private: false };
    let clock = Arc::new(flywheel_server::ManualClock::new(START_MS));
    let app = spawn_configured(&db, clock, no_background_delivery(), strict).await;
    app.project("spam", example_policy()).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest",
        "http://[::1]:9/hook",
        "https://10.0.0.8/hook",
        "ftp://93.184.215.14/hook",
        "not a url",
    ] {
        let (s, v) = app
            .post(
                "/v1/projects/spam/webhooks",
                ADMIN,
                json!({"url": url, "events": ["*"]}),
            )
            .await;
        assert_eq!(
            (s, v["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("url")),
            "{url}: {v}"
        );
    }
    // A public address passes the URL check; the patterns are checked next.
    let (s, v) = app
        .post(
            "/v1/projects/spam/webhooks",
            ADMIN,
            json!({"url": "http://93.184.215.14/hook", "events": ["item.resolve"]}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("events[0]")),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/v1/projects/spam/webhooks",
            ADMIN,
            json!({"url": "http://93.184.215.14/hook", "events": ["*"], "enabled": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app
        .call(
            Method::PATCH,
            &format!("/v1/projects/spam/webhooks/{}", v["id"]),
            ADMIN,
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("url")),
        "{v}"
    );
    assert_eq!(events_of(&app, "webhook.").await.len(), 1, "refusals write nothing");
    app.stop().await;
}

/// Two delivery workers at once — on PostgreSQL on two nodes of one database, on SQLite
/// in one process — deliver every event to every endpoint exactly once, in order: one
/// round at a time holds an endpoint.
async fn webhook_two_workers_deliver_each_event_once(db: Db) {
    let app = app_on(&db).await;
    let second = match &db {
        Db::Postgres { .. } => Some(spawn_with(&db, app.clock.clone(), no_background_delivery()).await),
        Db::Sqlite(_) => None,
    };
    let other = second.as_ref().map_or(app.state.clone(), |n| n.state.clone());
    let key = app.project("spam", example_policy()).await;
    let mut endpoints = vec![];
    for _ in 0..3 {
        let (url, rx) = receiver().await;
        let (id, _) = create(&app, &url, json!(["item.decided"])).await;
        endpoints.push((id, rx));
    }
    let items: Vec<Value> = (0..40).map(|i| item(&format!("x{i}"), "t", Some(0.5))).collect();
    app.submit("spam", &key, json!(items)).await;
    let (w1, w2) = (WebhookWorker::new(app.state.clone()), WebhookWorker::new(other.clone()));
    loop {
        let (a, b) = tokio::join!(w1.try_run_once(), w2.try_run_once());
        if (a.unwrap(), b.unwrap()) == (Delivered::default(), Delivered::default()) {
            break;
        }
    }
    let seqs: Vec<i64> = events_of(&app, "item.decided")
        .await
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 40);
    for (id, rx) in &endpoints {
        let ids: Vec<String> = rx.got().into_iter().map(|g| g.id).collect();
        let want: Vec<String> = seqs.iter().map(|s| format!("msg_{s}_{id}")).collect();
        assert_eq!(ids, want, "endpoint {id}");
    }
    if let Some(n) = second {
        n.stop().await;
    }
    app.stop().await;
}

on_both_backends!(
    webhook_two_workers_deliver_each_event_once,
    webhook_endpoints_and_a_signed_delivery,
    webhook_retries_back_off_to_the_last_attempt,
    webhook_receiver_down_gets_every_event_once_after_a_restart,
    webhook_replay_and_rotation,
    webhook_gone_disables_until_re_enabled,
    webhook_private_addresses_are_refused_unless_allowed,
);
