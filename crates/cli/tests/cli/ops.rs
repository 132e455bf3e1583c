//! What an operator runs beside the API: the metrics listener, JSON logs, and the demo a
//! newcomer starts with (`serve --demo spam`).

use std::process::Stdio;

use super::{flywheel, start_serve, terminate};

const ADMIN: &str = "ops-admin-key-0123456789";

/// A started server, stopped by its PID when the test ends even if it fails (a server
/// left running would keep the test's inherited file descriptors open).
struct Running(std::process::Child);

impl Running {
    fn stop(&mut self) -> std::process::ExitStatus {
        terminate(&mut self.0)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::test]
async fn metrics_listen_serves_metrics_and_json_logs_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let log = dir.path().join("stderr.log");
    let mut serve = flywheel();
    serve
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env("FLYWHEEL_LOG_FORMAT", "json")
        .env("FLYWHEEL_ADMIN_KEY", ADMIN);
    let (child, lines, addr) = start_serve(serve, Stdio::from(std::fs::File::create(&log).unwrap()));
    let mut child = Running(child);
    let metrics = lines
        .iter()
        .find_map(|l| l.strip_prefix("metrics: "))
        .expect("the metrics address is printed")
        .to_string();
    let http = super::client_builder().build().unwrap();
    assert_eq!(http.get(format!("{addr}/healthz")).send().await.unwrap().status(), 200);
    let r = http.get(&metrics).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("flywheel_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"),
        "{text}"
    );
    assert_eq!(
        http.get(format!("{addr}/metrics")).send().await.unwrap().status(),
        404,
        "not on the API's listener"
    );
    assert!(child.stop().success());
    // At least the shutdown line; every line one JSON object with a level and a message.
    let logged = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty(), "the server logs its shutdown");
    for l in &lines {
        assert!(l["level"].is_string() && l["fields"]["message"].is_string(), "{l}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"].as_str().unwrap().starts_with("shutting down"))
    );
}

#[test]
fn the_metrics_listener_is_off_by_default_and_a_bad_log_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let mut serve = flywheel();
    serve
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
        .env("FLYWHEEL_ADMIN_KEY", ADMIN);
    let (child, lines, _) = start_serve(serve, Stdio::null());
    let mut child = Running(child);
    assert!(!lines.iter().any(|l| l.starts_with("metrics:")), "{lines:?}");
    assert!(child.stop().success());
    let out = flywheel()
        .args(["serve", "--database", &db, "--log-format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-format"));
}

async fn admin_get(addr: &str, path: &str) -> serde_json::Value {
    let r = super::client_builder()
        .build()
        .unwrap()
        .get(format!("{addr}{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// `serve --demo spam` on the built-in sample: the project, its reviewers (who can sign
/// in with the printed passwords) and its items exist; a restart reuses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_spam_seeds_a_project_reviewers_and_items_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let start = || {
        let mut serve = flywheel();
        serve
            .args(["serve", "--demo", "spam", "--listen", "127.0.0.1:0", "--database", &db])
            .env("FLYWHEEL_ADMIN_KEY", ADMIN)
            .env("FLYWHEEL_DATA_DIR", dir.path())
            .current_dir(dir.path());
        let (child, lines, addr) = start_serve(serve, Stdio::null());
        (Running(child), lines, addr)
    };
    let (mut child, lines, addr) = start();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("demo: project spam-demo (new), messages from the built-in sample")),
        "{lines:?}"
    );
    let passwords: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("demo: reviewer "))
        .map(|l| {
            let (name, pw) = l.split_once(", password ").unwrap();
            (name.to_string(), pw.to_string())
        })
        .collect();
    assert_eq!(passwords.len(), 2, "{lines:?}");

    let projects = admin_get(&addr, "/v1/projects").await;
    assert!(projects.to_string().contains("\"spam-demo\""), "{projects}");
    let stats = admin_get(&addr, "/v1/projects/spam-demo/stats").await;
    let items = stats["items"].as_i64().unwrap();
    assert!(items >= 30, "the first batch is there at once: {stats}");
    assert!(
        stats["open_tasks"].as_i64().unwrap() > 0,
        "reviewers have work: {stats}"
    );
    let reviewers = admin_get(&addr, "/v1/reviewers").await;
    for (name, _) in &passwords {
        let r = reviewers
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == *name)
            .unwrap();
        assert_eq!(r["has_password"], true);
        assert_eq!(r["projects"], serde_json::json!(["spam-demo"]));
    }
    // The printed password signs in: the console's form (its CSRF nonce comes in a
    // cookie), answered by a redirect with a session cookie.
    let http = super::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(format!("{addr}/login")).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    let nonce = pair.split_once('=').unwrap().1.to_string();
    let (name, password) = &passwords[0];
    let signed_in = http
        .post(format!("{addr}/login"))
        .header("cookie", pair)
        .header("content-type", "application/x-www-form-urlencoded")
        // Hex digits, letters and `_`: nothing to escape.
        .body(format!("csrf={nonce}&name={name}&password={password}"))
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_redirection(), "{}", signed_in.status());
    assert!(
        signed_in.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("fw_session="),
        "{:?}",
        signed_in.headers()
    );
    assert!(child.stop().success());

    let (mut child, lines, addr) = start();
    assert!(
        lines.iter().any(|l| l.starts_with("demo: project spam-demo (reused)")),
        "{lines:?}"
    );
    let projects = admin_get(&addr, "/v1/projects").await;
    assert_eq!(projects.to_string().matches("\"spam-demo\"").count(), 1, "{projects}");
    let again = admin_get(&addr, "/v1/projects/spam-demo/stats").await;
    let now = again["items"].as_i64().unwrap();
    // The restart skips what is stored; at most the stream's next message or two arrive.
    assert!((items..items + 5).contains(&now), "{items} then {now}");
    assert!(child.stop().success());
}
