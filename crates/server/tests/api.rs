//! The API, end to end: a real server on 127.0.0.1:0 with a fresh database, spoken to
//! over HTTP. Time is a `ManualClock`, so lease expiry needs no sleeping.

#[path = "api/browser.rs"]
mod browser;
#[path = "api/model_train.rs"]
mod model_train;

use std::sync::Arc;

use flywheel_server::workers::LeaseReaper;
use flywheel_server::{AppState, ManualClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "test-admin-key-0123456789";
const START_MS: i64 = 1_800_000_000_000;

struct TestApp {
    base: String,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The database a test runs on: a fresh SQLite file, or a fresh schema of the PostgreSQL
/// test database (`FLYWHEEL_TEST_POSTGRES_URL`).
#[derive(Clone)]
enum Db {
    Sqlite(Arc<tempfile::TempDir>),
    Postgres { url: String, schema: String },
}

impl Db {
    fn sqlite() -> Self {
        Db::Sqlite(Arc::new(tempfile::tempdir().unwrap()))
    }

    async fn postgres(test: &str) -> Option<Self> {
        let Ok(url) = std::env::var("FLYWHEEL_TEST_POSTGRES_URL") else {
            eprintln!("skipped: {test} on PostgreSQL needs FLYWHEEL_TEST_POSTGRES_URL");
            return None;
        };
        let schema = format!("fwt_a_{}", &test[..test.len().min(40)]);
        flywheel_store::postgres::PgStore::drop_schema(&url, &schema)
            .await
            .unwrap();
        Some(Db::Postgres { url, schema })
    }

    async fn store(&self) -> Arc<dyn flywheel_store::Store> {
        match self {
            Db::Sqlite(dir) => flywheel_store::open(&format!("sqlite://{}", dir.path().join("flywheel.db").display()))
                .await
                .unwrap(),
            Db::Postgres { url, schema } => Arc::new(
                flywheel_store::postgres::PgStore::connect(url, Some(schema))
                    .await
                    .unwrap(),
            ),
        }
    }

    async fn cleanup(&self) {
        if let Db::Postgres { url, schema } = self {
            flywheel_store::postgres::PgStore::drop_schema(url, schema)
                .await
                .unwrap();
        }
    }
}

async fn spawn_app(db: &Db) -> TestApp {
    spawn_on(db, Arc::new(ManualClock::new(START_MS))).await
}

/// A server (a node) on `db`; several may share one PostgreSQL database.
async fn spawn_on(db: &Db, clock: Arc<ManualClock>) -> TestApp {
    let store = db.store().await;
    let state = Arc::new(AppState::new(store, clock.clone()));
    flywheel_server::bootstrap_admin(&state, Some(ADMIN)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let st = state.clone();
    let server = tokio::spawn(async move {
        flywheel_server::serve(listener, st, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        base,
        http: reqwest::Client::new(),
        clock,
        state,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    async fn call(&self, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !key.is_empty() {
            req = req.bearer_auth(key);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, key, Some(body)).await
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, key, None).await
    }

    async fn raw_post(&self, path: &str, key: &str, body: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates project `spam` with `policy`, and a service key for it.
    async fn project(&self, name: &str, policy: Value) -> String {
        let (s, v) = self
            .post(
                "/v1/projects",
                ADMIN,
                json!({"name": name, "labels": ["ham", "spam"], "policy": policy}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = self
            .post("/v1/keys", ADMIN, json!({"scope": "service", "projects": [name]}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["api_key"].as_str().unwrap().to_string()
    }

    async fn reviewer(&self, name: &str, tiers: &[u8], projects: &[&str]) -> String {
        let (s, v) = self
            .post(
                "/v1/reviewers",
                ADMIN,
                json!({"name": name, "tiers": tiers, "projects": projects}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["api_key"].as_str().unwrap().to_string()
    }

    async fn submit(&self, project: &str, key: &str, items: Value) -> Vec<Value> {
        let (s, v) = self
            .post(&format!("/v1/projects/{project}/items"), key, json!({"items": items}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["decisions"].as_array().unwrap().clone()
    }

    async fn claim(&self, project: &str, key: &str, queue: Option<&str>) -> Option<Value> {
        let body = match queue {
            Some(q) => json!({"queue": q}),
            None => json!({}),
        };
        let (s, v) = self.post(&format!("/v1/projects/{project}/claim"), key, body).await;
        match s {
            StatusCode::OK => Some(v),
            StatusCode::NO_CONTENT => None,
            other => panic!("claim: {other} {v}"),
        }
    }

    async fn answer(&self, key: &str, task: &Value, review_id: &str, answer: Value) -> (StatusCode, Value) {
        let mut body = json!({"lease_id": task["lease_id"], "review_id": review_id});
        for (k, v) in answer.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post(&format!("/v1/tasks/{}/reviews", task["task_id"]), key, body)
            .await
    }

    /// The whole label feed of `spam`, page by page.
    async fn all_labels(&self, key: &str) -> Vec<Value> {
        let (mut after, mut all) = (0, vec![]);
        loop {
            let (s, page) = self
                .get(&format!("/v1/projects/spam/labels?after={after}&limit=1000"), key)
                .await;
            assert_eq!(s, StatusCode::OK, "{page}");
            let labels = page["labels"].as_array().unwrap();
            if labels.is_empty() {
                return all;
            }
            all.extend(labels.iter().cloned());
            after = page["next_cursor"].as_i64().unwrap();
        }
    }

    async fn events(&self, project: &str) -> Vec<Value> {
        let (s, v) = self
            .get(&format!("/v1/projects/{project}/events?limit=1000"), ADMIN)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["events"].as_array().unwrap().clone()
    }

    async fn stop(mut self) -> Arc<ManualClock> {
        let _ = self.stop.take().unwrap().send(());
        self.server.take().unwrap().await.unwrap();
        self.clock.clone()
    }
}

fn item(id: &str, text: &str, spam: Option<f64>) -> Value {
    let mut v = json!({"external_id": id, "payload": {"text": text}});
    if let Some(p) = spam {
        v["prediction"] = json!({"model": "m", "version": "1", "scores": {"ham": 1.0 - p, "spam": p}});
    }
    v
}

fn example_policy() -> Value {
    json!({"rules": [
        {"name": "distress", "when": "payload.text.matches('(?i)hurt myself')", "action": "review", "queue": "urgent", "tier": 2, "priority": 100},
        {"name": "confident", "when": "confidence >= 0.95", "action": "auto"},
        {"name": "uncertain", "when": "has_prediction", "action": "review", "queue": "standard", "tier": 1, "overlap": 1}],
      "audit_rate": 0.0, "lease_seconds": 300, "show_suggestion": true})
}

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

async fn overlap_two_agreement_tie_and_adjudication(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project(
            "spam",
            json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": 2}]}),
        )
        .await;
    app.submit(
        "spam",
        &svc,
        json!([item("agree", "a", Some(0.5)), item("tie", "b", Some(0.5))]),
    )
    .await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let b = app.reviewer("b", &[1], &["spam"]).await;
    let boss = app.reviewer("boss", &[2], &["spam"]).await;
    let a1 = app.claim("spam", &a, None).await.unwrap();
    let a2 = app.claim("spam", &a, None).await.unwrap();
    assert!(
        app.claim("spam", &a, None).await.is_none(),
        "one reviewer never takes two slots of one item"
    );
    let b1 = app.claim("spam", &b, None).await.unwrap();
    let b2 = app.claim("spam", &b, None).await.unwrap();
    assert_eq!(a1["item"]["external_id"], "agree");
    assert_eq!(
        app.answer(&a, &a1, "a1", json!({"label": "spam"})).await.1["outcome"],
        "waiting"
    );
    let (_, v) = app.answer(&b, &b1, "b1", json!({"label": "spam"})).await;
    assert_eq!(v["outcome"], "resolved");
    assert_eq!(v["resolution"]["reviewers"], json!(["a", "b"]));
    app.answer(&a, &a2, "a2", json!({"label": "spam"})).await;
    let (_, v) = app.answer(&b, &b2, "b2", json!({"label": "ham"})).await;
    assert_eq!(v["outcome"], "adjudicate");
    assert!(app.claim("spam", &a, None).await.is_none());
    let t = app.claim("spam", &boss, None).await.unwrap();
    assert_eq!(
        (
            t["stage"].as_str(),
            t["tier"].as_i64(),
            t["item"]["external_id"].as_str()
        ),
        (Some("adjudicate"), Some(2), Some("tie"))
    );
    let (_, v) = app.answer(&boss, &t, "boss1", json!({"label": "ham"})).await;
    assert_eq!(v["resolution"]["source"], "adjudicated");
    let (_, feed) = app.get("/v1/projects/spam/labels", &svc).await;
    let got: Vec<_> = feed["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["external_id"].as_str().unwrap().to_string(),
                l["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("agree".to_string(), "human".to_string()),
            ("tie".to_string(), "adjudicated".to_string())
        ]
    );
    let (_, detail) = app.get("/v1/projects/spam/items/tie", ADMIN).await;
    assert_eq!(detail["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(detail["reviews"].as_array().unwrap().len(), 3);
    assert_eq!(detail["resolution"]["label"], "ham");
}

async fn escalation_and_skip(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    app.submit(
        "spam",
        &svc,
        json!([item("x", "hmm", Some(0.5)), item("y", "hmm", Some(0.5))]),
    )
    .await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let b = app.reviewer("b", &[1], &["spam"]).await;
    let l2 = app.reviewer("l2", &[2], &["spam"]).await;
    let t = app.claim("spam", &a, None).await.unwrap();
    let (s, v) = app
        .answer(&a, &t, "e", json!({"escalate": {"reason": "looks like fraud"}}))
        .await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("adjudicate")));
    let (s, v) = app
        .answer(
            &a,
            &app.claim("spam", &a, None).await.unwrap(),
            "no-reason",
            json!({"escalate": {"reason": ""}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("escalate.reason"))
    );
    // That refused answer left the lease in place: the reviewer can still skip.
    let (_, detail) = app.get("/v1/projects/spam/items/y", ADMIN).await;
    assert_eq!(detail["reviews"].as_array().unwrap().len(), 0);
    let t = json!({"task_id": detail["tasks"][0]["task_id"], "lease_id": detail["events"].as_array().unwrap().iter().rev().find(|e| e["kind"] == "lease.granted").unwrap()["data"]["lease_id"]});
    let (_, v) = app
        .answer(&a, &t, "s", json!({"skip": {"reason": "need coffee"}}))
        .await;
    assert_eq!(v["outcome"], "requeued");
    assert!(
        app.claim("spam", &a, None).await.is_none(),
        "a skipped item does not return to the skipper"
    );
    assert_eq!(app.claim("spam", &b, None).await.unwrap()["item"]["external_id"], "y");
    let t = app.claim("spam", &l2, None).await.unwrap();
    assert_eq!(
        (t["item"]["external_id"].as_str(), t["stage"].as_str()),
        (Some("x"), Some("adjudicate"))
    );
    let kinds: Vec<_> = app
        .events("spam")
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"task.escalated".to_string()));
}

async fn leases_expire_return_and_heartbeats_extend(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    app.submit("spam", &svc, json!([item("x", "hmm", Some(0.5))])).await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let b = app.reviewer("b", &[1], &["spam"]).await;
    let t = app.claim("spam", &a, None).await.unwrap();
    assert!(app.claim("spam", &b, None).await.is_none());
    let reaper = LeaseReaper {
        store: app.state.store.clone(),
        clock: app.clock.clone(),
        batch: 10,
    };
    app.clock.advance_ms(200_000);
    let (s, v) = app
        .post(
            &format!("/v1/tasks/{}/heartbeat", t["task_id"]),
            &a,
            json!({"lease_id": t["lease_id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.clock.advance_ms(200_000);
    assert_eq!(
        reaper.try_run_once().await.unwrap(),
        0,
        "the heartbeat kept the lease alive"
    );
    let (s, _) = app
        .post(
            &format!("/v1/tasks/{}/heartbeat", t["task_id"]),
            &b,
            json!({"lease_id": t["lease_id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "another reviewer cannot heartbeat this lease");
    app.clock.advance_ms(200_000);
    assert_eq!(reaper.try_run_once().await.unwrap(), 1);
    let (s, v) = app.answer(&a, &t, "late", json!({"label": "spam"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("lease_lost"))
    );
    let t2 = app
        .claim("spam", &b, None)
        .await
        .expect("the expired task is back in its queue");
    assert_eq!(t2["task_id"], t["task_id"]);
    let (s, _) = app.answer(&b, &t2, "ok", json!({"label": "ham"})).await;
    assert_eq!(s, StatusCode::OK);
}

async fn tiers_and_projects_are_isolated(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let other_svc = app.project("other", example_policy()).await;
    app.submit("spam", &svc, json!([item("urgent", "I hurt myself", Some(0.5))]))
        .await;
    let l1 = app.reviewer("l1", &[1], &["spam"]).await;
    let l2 = app.reviewer("l2", &[2], &["spam"]).await;
    assert!(
        app.claim("spam", &l1, None).await.is_none(),
        "tier 1 never gets tier 2 work"
    );
    assert!(app.claim("spam", &l1, Some("urgent")).await.is_none());
    assert!(app.claim("spam", &l2, Some("urgent")).await.is_some());
    let (s, v) = app.post("/v1/projects/other/claim", &l1, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, _) = app
        .post(
            "/v1/projects/spam/items",
            &other_svc,
            json!({"items": [item("z", "x", None)]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a service key is for its own projects");
    let (s, _) = app.get("/v1/projects/spam/labels", &other_svc).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .post("/v1/projects/spam/items", &l1, json!({"items": [item("z", "x", None)]}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "reviewers do not submit items");
    let (s, _) = app.post("/v1/projects/spam/claim", &svc, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "services do not claim");
    let (s, _) = app
        .post(
            "/v1/reviewers",
            &svc,
            json!({"name": "x", "tiers": [1], "projects": []}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only the admin creates reviewers");
    let (s, _) = app.get("/v1/projects/spam/events", &svc).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app.get("/v1/projects/spam", "").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, _) = app.get("/v1/projects/spam", "fw_not_a_key").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
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
            "items[0].payload",
        ),
        (
            json!({"items": [{"external_id": "s", "payload": {}, "attributes": {"k\u{0}": 1}}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].attributes",
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

async fn overlap_three_with_a_careless_reviewer_gets_the_right_label(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project(
            "spam",
            json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": 3}],
            "consensus": {"method": "weighted", "min_confidence": 0.5, "max_overlap": 3}}),
        )
        .await;
    let truth = |i: usize| if i.is_multiple_of(3) { "spam" } else { "ham" };
    let items: Vec<Value> = (0..6).map(|i| item(&format!("x{i}"), "t", Some(0.5))).collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let good1 = app.reviewer("good1", &[1], &["spam"]).await;
    let good2 = app.reviewer("good2", &[1], &["spam"]).await;
    let careless = app.reviewer("careless", &[1], &["spam"]).await;
    for (key, right) in [(&careless, false), (&good1, true), (&good2, true)] {
        while let Some(t) = app.claim("spam", key, None).await {
            let i: usize = t["item"]["external_id"].as_str().unwrap()[1..].parse().unwrap();
            let label = if right {
                truth(i)
            } else if truth(i) == "spam" {
                "ham"
            } else {
                "spam"
            };
            let (s, v) = app
                .answer(key, &t, &format!("{}-{i}", t["task_id"]), json!({"label": label}))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }
    let feed = app.all_labels(&svc).await;
    assert_eq!(feed.len(), 6);
    for l in &feed {
        let i: usize = l["external_id"].as_str().unwrap()[1..].parse().unwrap();
        assert_eq!(l["label"], truth(i), "{l}");
    }
    let (_, d) = app.get("/v1/projects/spam/items/x0", ADMIN).await;
    assert_eq!(d["resolution"]["method"], "weighted");
    assert_eq!(d["resolution"]["reviewers"], json!(["careless", "good1", "good2"]));
}

async fn dynamic_overlap_asks_for_more_until_confident(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project(
            "spam",
            json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": 2}],
            "consensus": {"method": "majority", "min_confidence": 0.7, "max_overlap": 4}}),
        )
        .await;
    app.submit("spam", &svc, json!([item("x", "t", Some(0.5))])).await;
    let keys = [
        app.reviewer("r1", &[1], &["spam"]).await,
        app.reviewer("r2", &[1], &["spam"]).await,
        app.reviewer("r3", &[1], &["spam"]).await,
        app.reviewer("r4", &[1], &["spam"]).await,
        app.reviewer("r5", &[1], &["spam"]).await,
    ];
    let mut outcomes = vec![];
    for (key, label) in keys.iter().zip(["spam", "ham", "spam", "spam"]) {
        let t = app.claim("spam", key, None).await.expect("a slot for this reviewer");
        let (_, v) = app.answer(key, &t, "a", json!({"label": label})).await;
        outcomes.push(v["outcome"].as_str().unwrap().to_string());
    }
    assert_eq!(
        outcomes,
        ["waiting", "waiting", "waiting", "resolved"],
        "1-1, then 2-1 (0.67 < 0.7), then 3-1 (0.75)"
    );
    assert!(
        app.claim("spam", &keys[4], None).await.is_none(),
        "resolved: no more slots"
    );
    let (_, d) = app.get("/v1/projects/spam/items/x", ADMIN).await;
    assert_eq!(d["resolution"]["confidence"], 0.75);
    assert_eq!(d["tasks"][0]["overlap"], 4);
    let kinds: Vec<_> = app
        .events("spam")
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "task.overlap_increased").count(), 2);
}

async fn a_spammer_is_held_after_enough_gold_and_accurate_reviewers_are_not(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project(
            "spam",
            json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q"}],
            "quality": {"gold_rate": 0.5, "min_accuracy": 0.8, "min_gold": 8}}),
        )
        .await;
    let gold: Vec<Value> = (0..60)
        .map(|i: u32| {
            json!({"external_id": format!("g{i}"), "payload": {"text": format!("message {i}")},
                   "label": if i.is_multiple_of(2) { "spam" } else { "ham" },
                   "prediction": {"model": "m", "version": "1", "scores": {"ham": 0.5, "spam": 0.5}}})
        })
        .collect();
    let (s, v) = app.post("/v1/projects/spam/gold", ADMIN, json!({"items": gold})).await;
    assert_eq!((s, v["added"].as_i64()), (StatusCode::OK, Some(60)));
    let (s, v) = app
        .post(
            "/v1/projects/spam/gold",
            ADMIN,
            json!({"items": [{"external_id": "bad", "payload": {}, "label": "eggs"}]}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("items[0].label"))
    );
    let items: Vec<Value> = (0..200)
        .map(|i| item(&format!("m{i}"), &format!("message {i}"), Some(0.5)))
        .collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let spammer = app.reviewer("spammer", &[1], &["spam"]).await;
    let careful = app.reviewer("careful", &[1], &["spam"]).await;
    let gold_label = |ext: &str| -> Option<&'static str> {
        ext.strip_prefix('g').map(|n| {
            if n.parse::<u32>().unwrap() % 2 == 0 {
                "spam"
            } else {
                "ham"
            }
        })
    };
    let mut shapes = std::collections::HashSet::new();
    let mut held_after = None;
    for round in 0..80 {
        let (s, v) = app.post("/v1/projects/spam/claim", &spammer, json!({})).await;
        if s == StatusCode::FORBIDDEN {
            assert_eq!(v["error"]["code"], "reviewer_held");
            held_after = Some(round);
            break;
        }
        assert_eq!(s, StatusCode::OK, "{v}");
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        shapes.insert((keys, v["stage"].clone(), v["queue"].clone(), v["tier"].clone()));
        // Always the wrong answer on gold: a reviewer who answers at random or worse.
        let ext = v["item"]["external_id"].as_str().unwrap().to_string();
        let label = match gold_label(&ext) {
            Some("spam") => "ham",
            Some(_) => "spam",
            None => "spam",
        };
        let (s, r) = app
            .answer(&spammer, &v, &format!("s{round}"), json!({"label": label}))
            .await;
        assert_eq!(
            (s, r["outcome"].as_str()),
            (StatusCode::OK, Some("resolved")),
            "gold and regular answers look alike"
        );
    }
    assert_eq!(shapes.len(), 1, "gold claims look like regular claims: {shapes:?}");
    assert!(held_after.is_some(), "the spammer was never held");
    for round in 0..60 {
        let Some(t) = app.claim("spam", &careful, None).await else {
            break;
        };
        let ext = t["item"]["external_id"].as_str().unwrap().to_string();
        let label = gold_label(&ext).unwrap_or("ham");
        let (s, _) = app
            .answer(&careful, &t, &format!("c{round}"), json!({"label": label}))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (_, page) = app.get("/v1/projects/spam/reviewers", ADMIN).await;
    let by_name = |n: &str| {
        page["reviewers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()
            .clone()
    };
    let (sp, ca) = (by_name("spammer"), by_name("careful"));
    assert_eq!(sp["held"], true, "{sp}");
    assert_eq!(sp["gold_accuracy"], 0.0);
    assert!(sp["gold_accuracy_interval"][1].as_f64().unwrap() < 0.8);
    assert_eq!(ca["held"], false, "{ca}");
    assert!(ca["gold_answers"].as_i64().unwrap() >= 8, "{ca}");
    assert_eq!(ca["gold_accuracy"], 1.0);
    let (_, feed) = app.get("/v1/projects/spam/labels?limit=1000", &svc).await;
    assert!(
        feed["labels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["external_id"].as_str().unwrap().starts_with('m')),
        "gold never reaches the feed"
    );
    let (_, st) = app.get("/v1/projects/spam/stats", ADMIN).await;
    assert_eq!(st["items"], 200, "gold items are not items");
    let (s, _) = app
        .post("/v1/projects/spam/reviewers/spammer/release", ADMIN, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        app.claim("spam", &spammer, None).await.is_some(),
        "released: claims again"
    );
    let (s, _) = app
        .post("/v1/projects/spam/reviewers/nobody/release", ADMIN, json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let kinds: Vec<_> = app
        .events("spam")
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"reviewer.held".to_string()) && kinds.contains(&"reviewer.released".to_string()));
}

async fn reviewers_never_see_each_others_answers(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project("spam", json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": 2}], "show_suggestion": false}))
        .await;
    app.submit("spam", &svc, json!([item("x", "secret-free text", Some(0.9))]))
        .await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let b = app.reviewer("b", &[1], &["spam"]).await;
    let ta = app.claim("spam", &a, None).await.unwrap();
    assert!(
        ta.get("suggestion").is_none(),
        "show_suggestion false hides the model's label"
    );
    let (_, ra) = app
        .answer(&a, &ta, "a1", json!({"label": "spam", "note": "NOTE-FROM-A"}))
        .await;
    assert_eq!(ra["outcome"], "waiting");
    assert!(ra.get("resolution").is_none());
    let tb = app.claim("spam", &b, None).await.unwrap();
    let text = tb.to_string();
    assert!(!text.contains("NOTE-FROM-A"), "another reviewer's note leaked: {text}");
    let mut keys: Vec<_> = tb.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "item",
            "labels",
            "lease_expires_at",
            "lease_id",
            "queue",
            "stage",
            "task_id",
            "tier"
        ],
        "nothing about other answers"
    );
    let (s, _) = app.get("/v1/projects/spam/items/x", &b).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "reviewers cannot read an item's reviews");
    let (s, _) = app.get("/v1/projects/spam/reviewers", &b).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn agreement_is_computed_over_the_reviews(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project(
            "spam",
            json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": 2}],
            "consensus": {"method": "majority", "min_confidence": 0.0, "max_overlap": 2}}),
        )
        .await;
    let items: Vec<Value> = (0..10).map(|i| item(&format!("x{i}"), "t", Some(0.5))).collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let b = app.reviewer("b", &[1], &["spam"]).await;
    let (_, empty) = app.get("/v1/projects/spam/agreement", ADMIN).await;
    assert_eq!(empty["answers"], 0);
    // a and b agree on 8 of 10 items.
    for (key, name) in [(&a, "a"), (&b, "b")] {
        while let Some(t) = app.claim("spam", key, None).await {
            let i: usize = t["item"]["external_id"].as_str().unwrap()[1..].parse().unwrap();
            let label = if i < 5 || (name == "b" && i >= 8) {
                "spam"
            } else {
                "ham"
            };
            app.answer(key, &t, &format!("{name}{i}"), json!({"label": label}))
                .await;
        }
    }
    let (s, ag) = app.get("/v1/projects/spam/agreement", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{ag}");
    assert_eq!(
        (ag["answers"].as_i64(), ag["tasks"].as_i64(), ag["workers"].as_i64()),
        (Some(20), Some(10), Some(2))
    );
    let pair = &ag["cohen_kappa_pairs"][0];
    assert_eq!(pair["shared_tasks"], 10);
    assert_eq!(pair["observed_agreement"], 0.8);
    // Cohen: p_o = 0.8; a: 5 spam/5 ham, b: 7 spam/3 ham -> p_e = 0.5*0.7 + 0.5*0.3 = 0.5 -> kappa 0.6.
    assert!((pair["kappa"].as_f64().unwrap() - 0.6).abs() < 1e-12, "{pair}");
    assert!(ag["krippendorff_alpha"].as_f64().unwrap() > 0.5);
}

async fn dawid_skene_consensus_learns_who_to_trust(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project(
            "spam",
            json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": 3}],
            "consensus": {"method": "dawid_skene", "min_confidence": 0.5, "max_overlap": 3}}),
        )
        .await;
    let truth = |i: usize| if i.is_multiple_of(2) { "spam" } else { "ham" };
    let items: Vec<Value> = (0..40).map(|i| item(&format!("x{i}"), "t", Some(0.5))).collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let names = ["good1", "good2", "flipper"];
    let mut keys = vec![];
    for n in names {
        keys.push(app.reviewer(n, &[1], &["spam"]).await);
    }
    for (key, name) in keys.iter().zip(names) {
        while let Some(t) = app.claim("spam", key, None).await {
            let i: usize = t["item"]["external_id"].as_str().unwrap()[1..].parse().unwrap();
            // The flipper always answers the other label.
            let label = if name == "flipper" {
                if truth(i) == "spam" { "ham" } else { "spam" }
            } else {
                truth(i)
            };
            let (s, v) = app
                .answer(key, &t, &format!("{name}-{i}"), json!({"label": label}))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }
    let (_, page) = app.get("/v1/projects/spam/reviewers", ADMIN).await;
    let acc = |n: &str| {
        page["reviewers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()["ds_accuracy"]
            .as_f64()
            .unwrap()
    };
    assert!(acc("good1") > 0.9 && acc("good2") > 0.9, "{page}");
    assert!(
        acc("flipper") < 0.1,
        "Dawid-Skene sees the flipper as reliably wrong: {page}"
    );
    let feed = app.all_labels(&svc).await;
    assert_eq!(feed.len(), 40);
    let wrong: Vec<_> = feed
        .iter()
        .filter(|l| l["label"] != truth(l["external_id"].as_str().unwrap()[1..].parse().unwrap()))
        .collect();
    for l in &wrong {
        let (_, d) = app
            .get(
                &format!("/v1/projects/spam/items/{}", l["external_id"].as_str().unwrap()),
                ADMIN,
            )
            .await;
        eprintln!("WRONG {} {}", d["resolution"], d["reviews"]);
    }
    assert!(feed.iter().all(|l| {
        let i: usize = l["external_id"].as_str().unwrap()[1..].parse().unwrap();
        l["label"] == truth(i)
    }));
}

async fn the_built_in_model_learns_from_human_labels_and_earns_thresholds(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project("spam", json!({
            "rules": [
                {"name": "calibrated", "when": "label in thresholds && confidence >= thresholds[label]", "action": "auto"},
                {"name": "review", "when": "true", "action": "review", "queue": "q"}],
            "model": {"enabled": true, "bits": 16},
            "thresholds": {"target_precision": 0.6, "min_evidence": 10},
            "active_learning": {"strategy": "least_confidence", "budget_per_1000": 100}}))
        .await;
    let (s, m) = app.get("/v1/projects/spam/model", &svc).await;
    assert_eq!((s, m["examples_seen"].as_i64()), (StatusCode::OK, Some(0)));
    let text = |i: usize| {
        if i.is_multiple_of(2) {
            format!("WIN a FREE prize now {i} claim cash")
        } else {
            format!("see you at lunch {i} tomorrow")
        }
    };
    let truth = |i: usize| if i.is_multiple_of(2) { "spam" } else { "ham" };
    let items: Vec<Value> = (0..60)
        .map(|i| json!({"external_id": format!("x{i}"), "payload": {"text": text(i)}}))
        .collect();
    let d = app.submit("spam", &svc, Value::Array(items)).await;
    assert!(
        d.iter().all(|d| d["outcome"] == "review"),
        "cold start: no thresholds, nothing is auto"
    );
    let (_, detail) = app.get("/v1/projects/spam/items/x0", &svc).await;
    assert_eq!(
        detail["item"]["prediction"]["model"], "flywheel",
        "the built-in model scored the item"
    );
    let r = app.reviewer("r", &[1], &["spam"]).await;
    while let Some(t) = app.claim("spam", &r, None).await {
        let i: usize = t["item"]["external_id"].as_str().unwrap()[1..].parse().unwrap();
        app.answer(&r, &t, &format!("a{i}"), json!({"label": truth(i)})).await;
    }
    let worker = flywheel_server::workers::LearningWorker {
        state: app.state.clone(),
    };
    worker.try_run_once().await.unwrap();
    let (_, m) = app.get("/v1/projects/spam/model", &svc).await;
    let seen = m["examples_seen"].as_u64().unwrap();
    assert!(seen > 40, "trained on the human labels (a tenth held back): {m}");
    assert!(m["evaluation"]["n"].as_u64().unwrap() > 0, "{m}");
    // The first batch was scored cold (all 0.5): no threshold can be earned from it yet.
    let items: Vec<Value> = (60..160)
        .map(|i| json!({"external_id": format!("x{i}"), "payload": {"text": text(i)}}))
        .collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    while let Some(t) = app.claim("spam", &r, None).await {
        let i: usize = t["item"]["external_id"].as_str().unwrap()[1..].parse().unwrap();
        app.answer(&r, &t, &format!("a{i}"), json!({"label": truth(i)})).await;
    }
    worker.try_run_once().await.unwrap();
    let (_, st) = app.get("/v1/projects/spam/stats", ADMIN).await;
    let thresholds = st["thresholds"].as_object().unwrap().clone();
    assert!(
        thresholds.contains_key("spam") && thresholds.contains_key("ham"),
        "thresholds earned: {st}"
    );
    let kinds: Vec<_> = app
        .events("spam")
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"thresholds.changed".to_string()));
    // Now confident items go auto — except those active learning sends to humans.
    let items: Vec<Value> = (160..200)
        .map(|i| json!({"external_id": format!("x{i}"), "payload": {"text": text(i)}}))
        .collect();
    let d = app.submit("spam", &svc, Value::Array(items)).await;
    let auto = d.iter().filter(|d| d["outcome"] == "auto").count();
    let learning = d.iter().filter(|d| d["route"]["queue"] == "learning").count();
    assert!(auto > 0, "{d:?}");
    assert!(learning > 0, "active learning took some auto-eligible items: {d:?}");
    assert!(d.iter().filter(|d| d["outcome"] == "auto").all(|d| {
        let i: usize = d["external_id"].as_str().unwrap()[1..].parse().unwrap();
        d["label"] == truth(i)
    }));
    assert!(d.iter().any(|d| {
        d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("active_learning"))
    }));
    let (s, rt) = app.post("/v1/projects/spam/model/retrain", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{rt}");
    assert!(rt["examples_used"].as_u64().unwrap() > 100);
    let (_, m) = app.get("/v1/projects/spam/model", &svc).await;
    assert_eq!(m["version"], rt["version"]);
}

async fn a_policy_can_be_backtested_on_human_labels(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project(
            "spam",
            json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q"}]}),
        )
        .await;
    // Five items with scores and (below) human labels: 0.95 spam, 0.97 spam, 0.98 ham, 0.5, 0.6.
    let scored = [
        ("a", 0.95, "spam"),
        ("b", 0.97, "ham"),
        ("c", 0.02, "ham"),
        ("d", 0.5, "spam"),
        ("e", 0.6, "ham"),
    ];
    let items: Vec<Value> = scored.iter().map(|(id, p, _)| item(id, "t", Some(*p))).collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let r = app.reviewer("r", &[1], &["spam"]).await;
    while let Some(t) = app.claim("spam", &r, None).await {
        let id = t["item"]["external_id"].as_str().unwrap().to_string();
        let human = scored.iter().find(|s| s.0 == id).unwrap().2;
        app.answer(&r, &t, &id, json!({"label": human})).await;
    }
    let proposed = json!({"rules": [
        {"name": "sure", "when": "confidence >= 0.9", "action": "auto"},
        {"name": "rest", "when": "true", "action": "review", "queue": "q2", "overlap": 2}]});
    let (s, bt) = app
        .post("/v1/projects/spam/policy/backtest", ADMIN, json!({"policy": proposed}))
        .await;
    assert_eq!(s, StatusCode::OK, "{bt}");
    assert_eq!(
        (bt["items"].as_i64(), bt["auto"].as_i64(), bt["auto_errors"].as_i64()),
        (Some(5), Some(3), Some(1)),
        "{bt}"
    );
    assert_eq!(bt["automation_rate"], 0.6);
    assert_eq!(bt["load"]["q2"], json!({"items": 2, "human_answers": 4}));
    let (s, bad) = app
        .post(
            "/v1/projects/spam/policy/backtest",
            ADMIN,
            json!({"policy": {"rules": [{"name": "x", "when": "nope >", "action": "auto"}]}}),
        )
        .await;
    assert_eq!(
        (s, bad["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("policy.rules[0].when"))
    );
    let (_, proj) = app.get("/v1/projects/spam", ADMIN).await;
    assert_eq!(proj["policy_version"], 1, "a back-test stores nothing");
}

async fn monitors_fire_and_write_events(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project(
            "spam",
            json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q"}],
            "monitors": {"backlog": 2, "disagreement_rate": 0.3, "window": 10}}),
        )
        .await;
    let (_, m) = app.get("/v1/projects/spam/monitors", &svc).await;
    let get = |m: &Value, n: &str| {
        m["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(get(&m, "backlog")["firing"], false);
    let items: Vec<Value> = (0..4).map(|i| item(&format!("x{i}"), "t", Some(0.8))).collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let (_, m) = app.get("/v1/projects/spam/monitors", &svc).await;
    assert_eq!(
        (
            get(&m, "backlog")["value"].as_f64(),
            get(&m, "backlog")["firing"].as_bool()
        ),
        (Some(4.0), Some(true)),
        "{m}"
    );
    // The model said spam (0.8) for all four; humans say ham for three: disagreement 0.75.
    let r = app.reviewer("r", &[1], &["spam"]).await;
    let mut n = 0;
    while let Some(t) = app.claim("spam", &r, None).await {
        app.answer(
            &r,
            &t,
            &format!("a{n}"),
            json!({"label": if n == 0 { "spam" } else { "ham" }}),
        )
        .await;
        n += 1;
    }
    let (_, m) = app.get("/v1/projects/spam/monitors", &svc).await;
    assert_eq!(get(&m, "disagreement_rate")["value"], 0.75, "{m}");
    assert_eq!(get(&m, "disagreement_rate")["firing"], true);
    assert_eq!(get(&m, "backlog")["firing"], false, "the queue is empty again");
    let events = app.events("spam").await;
    let states: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["kind"] == "monitor")
        .map(|e| {
            (
                e["data"]["monitor"].as_str().unwrap().to_string(),
                e["data"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(states.contains(&("backlog".into(), "firing".into())), "{states:?}");
    assert!(states.contains(&("backlog".into(), "resolved".into())), "{states:?}");
    assert!(
        states.contains(&("disagreement_rate".into(), "firing".into())),
        "{states:?}"
    );
}

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

fn spawn_app_same(a: &TestApp) -> TestApp {
    TestApp {
        base: a.base.clone(),
        http: a.http.clone(),
        clock: a.clock.clone(),
        state: a.state.clone(),
        stop: None,
        server: None,
    }
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

/// Signs in through the login form and returns the session cookie and its CSRF token.
async fn sign_in(app: &TestApp, form: &[(&str, &str)]) -> Result<(String, String), StatusCode> {
    let page = app.http.get(format!("{}/login", app.base)).send().await.unwrap();
    let login_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("fw_login="))
        .unwrap();
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirect
        .post(format!("{}/login", app.base))
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            fields
                .iter()
                .map(|(k, v)| format!("{k}={}", v.replace('%', "%25").replace(' ', "+").replace('&', "%26")))
                .collect::<Vec<_>>()
                .join("&"),
        )
        .send()
        .await
        .unwrap();
    if resp.status() != StatusCode::SEE_OTHER {
        return Err(resp.status());
    }
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("fw_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let cookie = session.split(';').next().unwrap().to_string();
    // The CSRF token every page carries.
    let home = app
        .http
        .get(format!("{}/ui", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = home
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    Ok((cookie, token))
}

async fn console_accounts_sessions_and_csrf(db: Db) {
    let app = spawn_app(&db).await;
    let mut policy = example_policy();
    policy["workbench"] = json!({"failure_categories": ["sarcasm"]});
    policy["sla_seconds"] = json!({"standard": 60});
    let svc = app.project("spam", policy).await;
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "short"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("password"))
    );
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ana_key = v["api_key"].as_str().unwrap().to_string();

    // Password sign-in; wrong passwords and service keys are refused.
    assert_eq!(
        sign_in(&app, &[("name", "ana"), ("password", "wrong horse")])
            .await
            .unwrap_err(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(&app, &[("key", &svc)]).await.unwrap_err(),
        StatusCode::UNAUTHORIZED
    );
    for _ in 0..10 {
        assert_eq!(
            sign_in(&app, &[("name", "mallory"), ("password", "guess")])
                .await
                .unwrap_err(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sign_in(&app, &[("name", "mallory"), ("password", "guess")])
            .await
            .unwrap_err(),
        StatusCode::TOO_MANY_REQUESTS,
        "repeated failures for one name are braked"
    );
    let (cookie, csrf) = sign_in(&app, &[("name", "ana"), ("password", "correct horse")])
        .await
        .unwrap();
    let me = app
        .http
        .get(format!("{}/v1/me", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let me: Value = me.json().await.unwrap();
    assert_eq!(
        (me["name"].as_str(), me["answers_today"].as_i64()),
        (Some("ana"), Some(0))
    );

    // A state-changing call from the session needs the CSRF token.
    app.submit(
        "spam",
        &svc,
        json!([item("a", "hello", Some(0.5)), item("b", "hi", Some(0.5))]),
    )
    .await;
    let claim = |token: Option<String>| {
        let mut req = app
            .http
            .post(format!("{}/v1/projects/spam/claim", app.base))
            .header("cookie", &cookie)
            .header("content-type", "application/json")
            .body("{}");
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    let r = claim(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "csrf");
    let r = claim(Some("0".repeat(32))).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a wrong token is refused too");
    let r = claim(Some(csrf.clone())).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let task: Value = r.json().await.unwrap();
    let (s, v) = app
        .answer(
            &ana_key,
            &task,
            "w1",
            json!({"label": "spam", "failure_category": "typo"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("failure_category"))
    );
    let (s, _) = app
        .answer(
            &ana_key,
            &task,
            "w1",
            json!({"label": "spam", "failure_category": "sarcasm"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Tier 1 cannot open a tier-2 queue's workbench; the pages need a session.
    let page = |path: &str, cookie: Option<&str>| {
        let mut req = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}{path}", app.base));
        if let Some(c) = cookie {
            req = req.header("cookie", c.to_string());
        }
        req.send()
    };
    assert_eq!(
        page("/ui/work/spam/urgent", Some(&cookie)).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let ok = page("/ui/work/spam/standard", Some(&cookie)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let csp = ok.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(
        page("/ui/work/spam", None).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        page("/ui/projects/spam", Some(&cookie)).await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "admin only"
    );

    // Admin: grants, holds, keys, policy checks.
    let (s, v) = app
        .call(
            reqwest::Method::PATCH,
            "/v1/reviewers/ana",
            ADMIN,
            Some(json!({"tiers": [1, 2]})),
        )
        .await;
    assert_eq!((s, v["tiers"].clone()), (StatusCode::OK, json!([1, 2])));
    assert_eq!(
        page("/ui/work/spam/urgent", Some(&cookie)).await.unwrap().status(),
        StatusCode::OK
    );
    let (s, v) = app
        .call(
            reqwest::Method::PATCH,
            "/v1/reviewers/ana",
            ADMIN,
            Some(json!({"tiers": [0]})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("tiers[0]"))
    );
    let (s, _) = app
        .post(
            "/v1/projects/spam/reviewers/ana/hold",
            ADMIN,
            json!({"reason": "checking"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app.post("/v1/projects/spam/claim", &ana_key, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("reviewer_held"))
    );
    let (s, _) = app
        .post("/v1/projects/spam/reviewers/ana/release", ADMIN, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .post(
            "/v1/projects/spam/policy/check",
            ADMIN,
            json!({"rules": [{"name": "x", "when": "confidence >", "action": "auto"}]}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rules[0].when"))
    );
    let (s, v) = app
        .post("/v1/projects/spam/policy/check", ADMIN, example_policy())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["queues"]
            .as_array()
            .unwrap()
            .contains(&json!({"queue": "urgent", "tier": 2}))
    );
    let (_, keys) = app.get("/v1/keys", ADMIN).await;
    let ana_hash = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["reviewer"] == "ana")
        .unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_hash = keys.as_array().unwrap().iter().find(|k| k["kind"] == "admin").unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = app
        .post(&format!("/v1/keys/{admin_hash}/revoke"), ADMIN, json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_admin_key"))
    );
    let (s, _) = app.post(&format!("/v1/keys/{ana_hash}/revoke"), ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get("/v1/me", &ana_key).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked key stops working at once");
    let (s, v) = app.post("/v1/reviewers/ana/keys", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app.get("/v1/me", v["api_key"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let (_, accounts) = app.get("/v1/reviewers", ADMIN).await;
    assert_eq!(accounts[0]["has_password"], true);
    let (_, projects) = app.get("/v1/projects", ADMIN).await;
    assert_eq!(projects[0]["name"], "spam");

    // The admin signs in with the key; the dashboard renders; signing out ends the session.
    let (admin_cookie, admin_csrf) = sign_in(&app, &[("key", ADMIN)]).await.unwrap();
    let dash = page("/ui/projects/spam", Some(&admin_cookie)).await.unwrap();
    assert_eq!(dash.status(), StatusCode::OK);
    let html = dash.text().await.unwrap();
    assert!(html.contains("id=\"queues\"") && html.contains("<svg"), "{html}");
    for path in [
        "/ui",
        "/ui/reviewers",
        "/ui/keys",
        "/ui/projects/spam/policy",
        "/ui/projects/spam?fragment=live",
    ] {
        assert_eq!(
            page(path, Some(&admin_cookie)).await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let logout = |token: &str| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/logout", app.base))
            .header("cookie", &admin_cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={token}"))
            .send()
    };
    assert_eq!(
        logout("nope").await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "a form without the token is refused"
    );
    assert_eq!(logout(&admin_csrf).await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(
        page("/ui", Some(&admin_cookie)).await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "the session ended"
    );
    app.stop().await;
}

/// "Submit and next": an answer with `next` leases the reviewer's next task in the same
/// commit; a bad `next` writes nothing, not even the answer.
async fn submit_and_next_leases_the_next_task_with_the_answer(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    app.project("other", example_policy()).await;
    let items: Vec<Value> = (0..3)
        .map(|i| item(&format!("n{i}"), &format!("message {i}"), Some(0.5)))
        .collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let r1 = app.reviewer("r1", &[1], &["spam"]).await;
    let first = app.claim("spam", &r1, None).await.expect("a task");

    // A project the reviewer may not claim from, or none at all: refused before anything
    // is written — the lease still holds and the answer can be given again.
    for (next, status) in [
        (json!({"project": "other"}), StatusCode::FORBIDDEN),
        (json!({"project": "nope"}), StatusCode::NOT_FOUND),
        (
            json!({"project": "spam", "queue": "Bad Queue!"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, v) = app
            .answer(&r1, &first, "a1", json!({"label": "ham", "next": next}))
            .await;
        assert_eq!(s, status, "{v}");
        assert!(v["error"]["field"].as_str().unwrap().starts_with("next."), "{v}");
    }
    assert!(app.all_labels(ADMIN).await.is_empty());

    let mut seen = vec![first["item"]["external_id"].clone()];
    let (s, v) = app
        .answer(&r1, &first, "a1", json!({"label": "ham", "next": {"project": "spam"}}))
        .await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("resolved")), "{v}");
    let mut task = v["next"].clone();
    assert!(task["lease_id"].is_i64(), "{v}");
    assert_eq!(task["labels"], json!(["ham", "spam"]));
    assert!(v.get("next_error").is_none(), "{v}");
    // A retry of the same answer is not stored twice.
    let (s, again) = app
        .answer(
            &r1,
            &first,
            "a1",
            json!({"label": "ham", "next": {"project": "spam", "queue": "urgent"}}),
        )
        .await;
    assert_eq!(
        (s, again["outcome"].as_str()),
        (StatusCode::OK, Some("resolved")),
        "{again}"
    );
    assert_eq!(again["next"], Value::Null, "nothing in urgent: {again}");
    assert!(!seen.contains(&task["item"]["external_id"]), "{task}");
    seen.push(task["item"]["external_id"].clone());
    let (s, v) = app
        .answer(&r1, &task, "a2", json!({"label": "spam", "next": {"project": "spam"}}))
        .await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("resolved")), "{v}");
    task = v["next"].clone();
    assert!(!seen.contains(&task["item"]["external_id"]), "{task}");
    // A reviewer held meanwhile: the answer is stored, the next claim is refused.
    let (s, _) = app
        .post(
            "/v1/projects/spam/reviewers/r1/hold",
            ADMIN,
            json!({"reason": "checking"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app
        .answer(&r1, &task, "a3", json!({"label": "spam", "next": {"project": "spam"}}))
        .await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("resolved")), "{v}");
    assert_eq!(v["next"], Value::Null, "{v}");
    assert_eq!(v["next_error"]["code"].as_str(), Some("reviewer_held"), "{v}");
    let labels = app.all_labels(ADMIN).await;
    assert_eq!(labels.len(), 3, "{labels:?}");
    let granted = app
        .events("spam")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "lease.granted")
        .count();
    assert_eq!(granted, 3, "one claim and two leases granted with answers");
    app.stop().await;
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(100);
    N.fetch_add(1, Ordering::SeqCst)
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::sqlite()).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::Db::postgres(stringify!($name)).await {
                        super::$name(db.clone()).await;
                        db.cleanup().await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    submit_and_next_leases_the_next_task_with_the_answer,
    console_accounts_sessions_and_csrf,
    monitors_fire_and_write_events,
    a_policy_can_be_backtested_on_human_labels,
    the_built_in_model_learns_from_human_labels_and_earns_thresholds,
    dawid_skene_consensus_learns_who_to_trust,
    overlap_three_with_a_careless_reviewer_gets_the_right_label,
    dynamic_overlap_asks_for_more_until_confident,
    a_spammer_is_held_after_enough_gold_and_accurate_reviewers_are_not,
    reviewers_never_see_each_others_answers,
    agreement_is_computed_over_the_reviews,
    health_and_openapi,
    routing_follows_the_first_rule_that_holds,
    audit_sampling_rate_is_the_policy_rate,
    overlap_two_agreement_tie_and_adjudication,
    escalation_and_skip,
    leases_expire_return_and_heartbeats_extend,
    tiers_and_projects_are_isolated,
    items_and_reviews_are_idempotent,
    bad_input_is_a_4xx_naming_the_field_and_writes_nothing,
    feeds_are_cursor_paged_and_replayable,
    a_restart_keeps_everything,
);
