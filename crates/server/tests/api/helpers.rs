//! The harness every test file shares: `spawn_app` (a real server on 127.0.0.1:0 over a
//! fresh database, its clock a `ManualClock`), typed HTTP helpers on `TestApp`, and
//! `on_both_backends!`, which runs each case on SQLite and, with
//! `FLYWHEEL_TEST_POSTGRES_URL`, on PostgreSQL in a schema of its own. No test lives here.

use std::sync::Arc;

use flywheel_server::{AppState, ManualClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const ADMIN: &str = "test-admin-key-0123456789";
pub const START_MS: i64 = 1_800_000_000_000;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The database a test runs on: a fresh SQLite file, or a fresh schema of the PostgreSQL
/// test database (`FLYWHEEL_TEST_POSTGRES_URL`).
#[derive(Clone)]
pub enum Db {
    Sqlite(Arc<tempfile::TempDir>),
    Postgres { url: String, schema: String },
}

impl Db {
    pub fn sqlite() -> Self {
        Db::Sqlite(Arc::new(tempfile::tempdir().unwrap()))
    }

    pub async fn postgres(test: &str) -> Option<Self> {
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

    pub async fn store(&self) -> Arc<dyn flywheel_store::Store> {
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

    pub async fn cleanup(&self) {
        if let Db::Postgres { url, schema } = self {
            flywheel_store::postgres::PgStore::drop_schema(url, schema)
                .await
                .unwrap();
        }
    }
}

pub async fn spawn_app(db: &Db) -> TestApp {
    spawn_on(db, Arc::new(ManualClock::new(START_MS))).await
}

/// A server (a node) on `db`; several may share one PostgreSQL database.
pub async fn spawn_on(db: &Db, clock: Arc<ManualClock>) -> TestApp {
    spawn_with(db, clock, flywheel_server::ServeOptions::default()).await
}

/// A reqwest client builder, the crypto provider installed first (see flywheel-tls).
pub fn client_builder() -> reqwest::ClientBuilder {
    flywheel_tls::install();
    reqwest::Client::builder()
}

/// A server on `db` with these options (say, without the background learner). Webhooks
/// may go to private addresses (the tests' receivers are on 127.0.0.1).
pub async fn spawn_with(db: &Db, clock: Arc<ManualClock>, options: flywheel_server::ServeOptions) -> TestApp {
    let webhooks = flywheel_server::app::webhooks::Settings { allow_private: true };
    spawn_configured(db, clock, options, webhooks).await
}

/// A server on `db` with these options and these webhook settings.
pub async fn spawn_configured(
    db: &Db,
    clock: Arc<ManualClock>,
    options: flywheel_server::ServeOptions,
    webhooks: flywheel_server::app::webhooks::Settings,
) -> TestApp {
    spawn_setup(db, clock, options, |state| state.webhooks = webhooks).await
}

/// A server on `db` with these options, its state set up by `setup` before it starts.
pub async fn spawn_setup(
    db: &Db,
    clock: Arc<ManualClock>,
    options: flywheel_server::ServeOptions,
    setup: impl FnOnce(&mut AppState),
) -> TestApp {
    let store = db.store().await;
    let mut state = AppState::new(store, clock.clone());
    setup(&mut state);
    let state = Arc::new(state);
    flywheel_server::bootstrap_admin(&state, Some(ADMIN)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let st = state.clone();
    let server = tokio::spawn(async move {
        let stopped = async {
            let _ = rx.await;
        };
        flywheel_server::serve_with(listener, st, stopped, options)
            .await
            .unwrap();
    });
    TestApp {
        base,
        http: client_builder().build().unwrap(),
        clock,
        state,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
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

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, key, Some(body)).await
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, key, None).await
    }

    pub async fn raw_post(&self, path: &str, key: &str, body: &str) -> (StatusCode, Value) {
        self.raw(reqwest::Method::POST, path, key, body).await
    }

    /// PUTs `body` as it is written (key order and escapes kept), as JSON.
    pub async fn raw_put(&self, path: &str, key: &str, body: &str) -> (StatusCode, Value) {
        self.raw(reqwest::Method::PUT, path, key, body).await
    }

    async fn raw(&self, method: reqwest::Method, path: &str, key: &str, body: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A console page's HTML as the admin sees it (signed in with the admin key).
    pub async fn page(&self, path: &str) -> String {
        let (cookie, _) = crate::console::sign_in(self, &[("key", ADMIN)]).await.unwrap();
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        resp.text().await.unwrap()
    }

    /// Creates project `spam` with `policy`, and a service key for it.
    pub async fn project(&self, name: &str, policy: Value) -> String {
        self.project_from(json!({"name": name, "labels": ["ham", "spam"], "policy": policy}))
            .await
    }

    /// Creates the project `body` describes (`POST /v1/projects`), and a service key for it.
    pub async fn project_from(&self, body: Value) -> String {
        let name = body["name"].clone();
        let (s, v) = self.post("/v1/projects", ADMIN, body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = self
            .post("/v1/keys", ADMIN, json!({"scope": "service", "projects": [name]}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["api_key"].as_str().unwrap().to_string()
    }

    /// Creates a tier-1 reviewer of `projects` who signs in to the console with `password`.
    pub async fn reviewer_with_password(&self, name: &str, password: &str, projects: &[&str]) {
        let (s, v) = self
            .post(
                "/v1/reviewers",
                ADMIN,
                json!({"name": name, "tiers": [1], "projects": projects, "password": password}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    pub async fn reviewer(&self, name: &str, tiers: &[u8], projects: &[&str]) -> String {
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

    pub async fn submit(&self, project: &str, key: &str, items: Value) -> Vec<Value> {
        let (s, v) = self
            .post(&format!("/v1/projects/{project}/items"), key, json!({"items": items}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["decisions"].as_array().unwrap().clone()
    }

    pub async fn claim(&self, project: &str, key: &str, queue: Option<&str>) -> Option<Value> {
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

    pub async fn answer(&self, key: &str, task: &Value, review_id: &str, answer: Value) -> (StatusCode, Value) {
        let mut body = json!({"lease_id": task["lease_id"], "review_id": review_id});
        for (k, v) in answer.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post(&format!("/v1/tasks/{}/reviews", task["task_id"]), key, body)
            .await
    }

    /// The whole label feed of `spam`, page by page.
    pub async fn all_labels(&self, key: &str) -> Vec<Value> {
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

    pub async fn events(&self, project: &str) -> Vec<Value> {
        let (s, v) = self
            .get(&format!("/v1/projects/{project}/events?limit=1000"), ADMIN)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["events"].as_array().unwrap().clone()
    }

    /// The server's clock, now.
    pub fn clock_now(&self) -> i64 {
        use flywheel_server::Clock;
        self.clock.now_ms()
    }

    pub async fn stop(mut self) -> Arc<ManualClock> {
        let _ = self.stop.take().unwrap().send(());
        self.server.take().unwrap().await.unwrap();
        self.clock.clone()
    }
}

pub fn item(id: &str, text: &str, spam: Option<f64>) -> Value {
    let mut v = json!({"external_id": id, "payload": {"text": text}});
    if let Some(p) = spam {
        v["prediction"] = json!({"model": "m", "version": "1", "scores": {"ham": 1.0 - p, "spam": p}});
    }
    v
}

pub fn example_policy() -> Value {
    json!({"rules": [
        {"name": "distress", "when": "payload.text.matches('(?i)hurt myself')", "action": "review", "queue": "urgent", "tier": 2, "priority": 100},
        {"name": "confident", "when": "confidence >= 0.95", "action": "auto"},
        {"name": "uncertain", "when": "has_prediction", "action": "review", "queue": "standard", "tier": 1, "overlap": 1}],
      "audit_rate": 0.0, "lease_seconds": 300, "show_suggestion": true})
}

pub fn spawn_app_same(a: &TestApp) -> TestApp {
    TestApp {
        base: a.base.clone(),
        http: a.http.clone(),
        clock: a.clock.clone(),
        state: a.state.clone(),
        stop: None,
        server: None,
    }
}

pub fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(100);
    N.fetch_add(1, Ordering::SeqCst)
}

/// `on_both_backends!(case, …)` in a test file makes `sqlite::case` and `postgres::case`
/// tests of each `async fn case(db: Db)` of that file. The PostgreSQL schema is named after
/// the case, so case names must be unique across the binary.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::sqlite()).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::helpers::Db::postgres(stringify!($name)).await {
                        super::$name(db.clone()).await;
                        db.cleanup().await;
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
