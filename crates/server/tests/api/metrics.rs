//! Prometheus metrics: `/metrics` only on a listener of its own, its text parsed here, and
//! the figures moving after the requests that should move them (decisions with their
//! labels, answers and their time on task, queue depth and SLA breaches, lease expiries,
//! HTTP requests by route template, webhook attempts by result and the webhook backlog).

use std::collections::{BTreeMap, HashMap};

use flywheel_core::webhook::{JITTER, RETRY_DELAYS_MS};
use flywheel_server::workers::{Delivered, LeaseReaper};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// A series' labels but `le`, in order.
type Labels = Vec<(String, String)>;

/// One sample: its name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape, parsed: the declared type of each family, and every sample.
struct Scrape {
    types: HashMap<String, String>,
    samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the Prometheus text format (0.0.4), checking what a scraper would refuse:
    /// a sample of no declared family, a malformed line or value, a histogram whose
    /// buckets are not cumulative.
    fn parse(text: &str) -> Scrape {
        let mut types = HashMap::new();
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "{name} typed twice"
                );
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment: {line}");
            let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse::<f64>().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end with }");
                    let labels = body
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                            (k.to_string(), v.trim_end_matches('"').to_string())
                        })
                        .collect();
                    (name.to_string(), labels)
                }
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
                })
                .unwrap_or(&name);
            assert!(types.contains_key(family), "sample {name} has no # TYPE");
            samples.push(Sample { name, labels, value });
        }
        let scrape = Scrape { types, samples };
        scrape.check_histograms();
        scrape
    }

    /// Each histogram series' buckets rise with `le` and end at `+Inf` = `_count`.
    fn check_histograms(&self) {
        for (family, _) in self.types.iter().filter(|(_, t)| *t == "histogram") {
            let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for s in self.samples.iter().filter(|s| s.name == format!("{family}_bucket")) {
                let le: f64 = match s.labels["le"].as_str() {
                    "+Inf" => f64::INFINITY,
                    v => v.parse().unwrap(),
                };
                let key = s
                    .labels
                    .iter()
                    .filter(|(k, _)| *k != "le")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                series.entry(key).or_default().push((le, s.value));
            }
            for (key, buckets) in series {
                assert!(
                    buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                    "{family} {key:?}"
                );
                let labels: BTreeMap<String, String> = key.into_iter().collect();
                let count = self.value(&format!("{family}_count"), &labels).unwrap();
                assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count), "{family}");
            }
        }
    }

    /// The value of the sample with exactly these labels.
    fn value(&self, name: &str, labels: &BTreeMap<String, String>) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name && &s.labels == labels)
            .map(|s| s.value)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.value(name, &labels)
    }
}

/// The app's metrics, served on a listener of their own.
async fn metrics_listener(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(flywheel_server::serve_metrics(
        listener,
        app.state.clone(),
        std::future::pending(),
    ));
    url
}

async fn scrape(app: &TestApp, url: &str) -> Scrape {
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    Scrape::parse(&r.text().await.unwrap())
}

async fn metrics_move_with_decisions_answers_and_expiries(db: Db) {
    let app = spawn_app(&db).await;
    let (s, _) = app.get("/metrics", ADMIN).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the API's listener never serves metrics");
    let url = metrics_listener(&app).await;

    let mut policy = example_policy();
    policy["sla_seconds"] = json!({"standard": 60});
    let svc = app.project("spam", policy).await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    app.submit(
        "spam",
        &svc,
        json!([
            item("sure", "a", Some(0.99)),
            item("x1", "b", Some(0.5)),
            item("x2", "c", Some(0.6))
        ]),
    )
    .await;
    // A duplicate is not a decision.
    app.submit("spam", &svc, json!([item("x1", "b", Some(0.5))])).await;
    let m = scrape(&app, &url).await;
    let decisions = |outcome, rule| [("project", "spam"), ("outcome", outcome), ("rule", rule)];
    assert_eq!(
        m.get("flywheel_decisions_total", &decisions("auto", "confident")),
        Some(1.0)
    );
    assert_eq!(
        m.get("flywheel_decisions_total", &decisions("review", "uncertain")),
        Some(2.0)
    );
    assert_eq!(m.types["flywheel_decisions_total"], "counter");
    assert_eq!(
        m.get("flywheel_automation_ratio", &[("project", "spam")]),
        Some(1.0 / 3.0)
    );
    let queue = [("project", "spam"), ("queue", "standard"), ("tier", "1")];
    assert_eq!(m.get("flywheel_queue_depth", &queue), Some(2.0));
    assert_eq!(m.get("flywheel_queue_sla_breaches", &queue), Some(0.0));
    assert_eq!(m.get("flywheel_lease_expiries_total", &[]), Some(0.0));
    let items = [
        ("method", "POST"),
        ("route", "/v1/projects/{project}/items"),
        ("status", "200"),
    ];
    assert_eq!(m.get("flywheel_http_requests_total", &items), Some(2.0));
    let items_latency = [("method", "POST"), ("route", "/v1/projects/{project}/items")];
    assert_eq!(
        m.get("flywheel_http_request_duration_seconds_count", &items_latency),
        Some(2.0)
    );
    assert_eq!(
        m.get(
            "flywheel_http_requests_total",
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
        ),
        Some(1.0),
        "a request no route took is counted under `unmatched`, not its raw path"
    );
    assert!(
        m.get("flywheel_answers_total", &[("tier", "1"), ("answer", "label")])
            .is_none()
    );

    // Two minutes later both tasks are past the SLA of 60 s.
    app.clock.advance_ms(120_000);
    let m = scrape(&app, &url).await;
    assert_eq!(m.get("flywheel_queue_sla_breaches", &queue), Some(2.0));
    assert_eq!(m.get("flywheel_queue_oldest_age_seconds", &queue), Some(120.0));

    // An answer 3 s after its claim; its retry is not counted again.
    let t = app.claim("spam", &a, None).await.unwrap();
    app.clock.advance_ms(3_000);
    for _ in 0..2 {
        let (s, v) = app.answer(&a, &t, "r1", json!({"label": "spam"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let m = scrape(&app, &url).await;
    assert_eq!(
        m.get("flywheel_answers_total", &[("tier", "1"), ("answer", "label")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("flywheel_answer_time_on_task_seconds_count", &[("tier", "1")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("flywheel_answer_time_on_task_seconds_sum", &[("tier", "1")]),
        Some(3.0)
    );
    assert_eq!(
        m.get(
            "flywheel_answer_time_on_task_seconds_bucket",
            &[("tier", "1"), ("le", "4.0")]
        ),
        Some(1.0)
    );
    assert_eq!(m.get("flywheel_queue_depth", &queue), Some(1.0));
    let reviews = [
        ("method", "POST"),
        ("route", "/v1/tasks/{task_id}/reviews"),
        ("status", "200"),
    ];
    assert_eq!(m.get("flywheel_http_requests_total", &reviews), Some(2.0));

    // A lease left to expire (300 s) is counted once, whichever reaper run returns it.
    app.claim("spam", &a, None).await.unwrap();
    app.clock.advance_ms(301_000);
    LeaseReaper {
        state: app.state.clone(),
        batch: 10,
    }
    .try_run_once()
    .await
    .unwrap();
    let m = scrape(&app, &url).await;
    assert_eq!(m.get("flywheel_lease_expiries_total", &[]), Some(1.0));

    // The SQLite writer's histograms, only where there is one.
    let sqlite = matches!(db, Db::Sqlite(_));
    assert_eq!(m.types.contains_key("flywheel_sqlite_group_commit_size"), sqlite);
    assert_eq!(m.types.contains_key("flywheel_sqlite_wal_fsync_seconds"), sqlite);
    if sqlite {
        assert!(m.get("flywheel_sqlite_group_commit_size_count", &[]).unwrap() >= 5.0);
        assert!(m.get("flywheel_sqlite_wal_fsync_seconds_count", &[]).unwrap() >= 1.0);
    }

    // OpenMetrics for a scraper that asks for it.
    let r = app
        .http
        .get(&url)
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n") && text.contains("# TYPE flywheel_decisions counter"));
    app.stop().await;
}

/// Webhook attempts are counted by result as the worker makes them, and the backlog is the
/// events after the enabled endpoints' cursors at scrape time.
async fn metrics_count_webhook_attempts_and_the_backlog(db: Db) {
    use crate::webhooks::{app_on, create, receiver, run, submit_one};
    let app = app_on(&db).await;
    let url = metrics_listener(&app).await;
    let key = app.project("spam", example_policy()).await;
    let backlog = |m: &Scrape| m.get("flywheel_webhook_backlog", &[("project", "spam")]);
    let attempts = |m: &Scrape, result| m.get("flywheel_webhook_deliveries_total", &[("result", result)]);
    assert_eq!(backlog(&scrape(&app, &url).await), None, "no endpoint, no series");

    let (hook_url, rx) = receiver().await;
    create(&app, &hook_url, json!(["item.decided"])).await;
    let m = scrape(&app, &url).await;
    assert_eq!(m.types["flywheel_webhook_backlog"], "gauge");
    assert_eq!(backlog(&m), Some(1.0), "the endpoint's own webhook.created");
    submit_one(&app, &key, "a").await;
    let m = scrape(&app, &url).await;
    assert!(backlog(&m).unwrap() >= 2.0, "{:?}", backlog(&m));
    assert_eq!(attempts(&m, "delivered"), None);
    assert_eq!(
        run(&app).await,
        Delivered {
            delivered: 1,
            failed: 0
        }
    );
    let m = scrape(&app, &url).await;
    assert_eq!(m.types["flywheel_webhook_deliveries_total"], "counter");
    assert_eq!(attempts(&m, "delivered"), Some(1.0));
    assert_eq!(backlog(&m), Some(0.0), "kinds it did not ask for are passed over too");

    // Ten failed attempts: nine to be tried again, then the last.
    rx.set(500);
    submit_one(&app, &key, "b").await;
    run(&app).await;
    let m = scrape(&app, &url).await;
    assert_eq!(attempts(&m, "failed"), Some(1.0));
    assert!(backlog(&m).unwrap() >= 1.0, "b waits");
    for delay in RETRY_DELAYS_MS {
        app.clock.advance_ms((delay as f64 * (1.0 + JITTER)) as i64 + 1);
        assert_eq!(run(&app).await.failed, 1);
    }
    let m = scrape(&app, &url).await;
    assert_eq!(attempts(&m, "failed"), Some(RETRY_DELAYS_MS.len() as f64));
    assert_eq!(attempts(&m, "given_up"), Some(1.0));

    // 410 disables the endpoint: its backlog leaves the gauge.
    rx.set(410);
    submit_one(&app, &key, "c").await;
    run(&app).await;
    let m = scrape(&app, &url).await;
    assert_eq!(attempts(&m, "gone"), Some(1.0));
    assert_eq!(attempts(&m, "delivered"), Some(1.0));
    assert_eq!(backlog(&m), None, "a disabled endpoint has no backlog");
    app.stop().await;
}

on_both_backends!(
    metrics_move_with_decisions_answers_and_expiries,
    metrics_count_webhook_attempts_and_the_backlog,
);
