//! The console in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs). A reviewer signs in, works
//! with the keyboard, escalates and skips; hostile item text stays text; tiers fence
//! queues; a request without the CSRF token is refused; the admin's dashboard follows
//! the answers, and its queues' SLA state. Screenshots go to `target/screenshots/`; the time from an answer key to
//! the next item on screen is printed (a measurement, not an assertion).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const HOSTILE: &str = "<img src=x onerror=\"document.title='pwned'\"> <script>document.title='pwned'</script>";

/// chromedriver, stopped (by its PID) when dropped.
struct Driver {
    child: Child,
    url: String,
    _scratch: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str, fallback: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(fallback)))
        .filter(|p| p.exists())
}

/// Starts chromedriver, or says the test is skipped (never in CI, where `.ci/run` installs
/// it: there a missing browser fails the test).
fn start_driver() -> Option<Driver> {
    let Some(path) = which("FLYWHEEL_CHROMEDRIVER", "/usr/bin/chromedriver") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromedriver (.ci/run installs chromium-driver)"
        );
        eprintln!("skipped: the browser test needs chromedriver (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Chromium's profile and scratch files go to a directory of our own, removed after.
    let scratch = tempfile::tempdir().unwrap();
    let mut child = Command::new(path)
        .arg(format!("--port={port}"))
        .env("TMPDIR", scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap_or_default().contains("started successfully") {
            break;
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _scratch: scratch,
    })
}

async fn browser(driver: &Driver) -> Client {
    let chromium = which("FLYWHEEL_CHROMIUM", "/usr/bin/chromium").expect("chromium next to chromedriver");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,900", "--no-first-run"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session")
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Presses a key as a person would: not within the workbench's guard time after an item
/// appears (keys that fast are taken as meant for the item before).
async fn press(c: &Client, key: char) {
    tokio::time::sleep(Duration::from_millis(150)).await;
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(keys).await.unwrap();
}

async fn type_text(c: &Client, text: &str) {
    let mut keys = KeyActions::new("keyboard".into());
    for ch in text.chars() {
        keys = keys
            .then(KeyAction::Down { value: ch })
            .then(KeyAction::Up { value: ch });
    }
    c.perform_actions(keys).await.unwrap();
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Waits (up to 30 s: CI runs other tests beside this one) until `script` returns true.
async fn until(c: &Client, script: &str, what: &str) {
    for _ in 0..600 {
        if js(c, script).await == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

async fn sign_in_as(c: &Client, base: &str, fields: &[(&str, &str)]) {
    c.goto(&format!("{base}/login")).await.unwrap();
    for (id, value) in fields {
        c.find(Locator::Id(id)).await.unwrap().send_keys(value).await.unwrap();
    }
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    until(c, "return location.pathname === '/ui'", "the console after signing in").await;
}

/// The external id on screen in the workbench.
async fn on_screen(c: &Client) -> String {
    text_of(c, "#ext").await
}

/// Waits until the workbench shows an item other than `previous`.
async fn next_item(c: &Client, previous: &str) -> String {
    let script = format!(
        "const e = document.getElementById('ext'); return !document.getElementById('item').hidden && e.textContent !== {};",
        serde_json::to_string(previous).unwrap()
    );
    until(c, &script, "the next item").await;
    on_screen(c).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser() {
    let Some(driver) = start_driver() else { return };
    let db = Db::sqlite();
    let app = spawn_app(&db).await;
    let mut policy = example_policy();
    policy["workbench"] =
        json!({"failure_categories": ["sarcasm", "slang"], "image_origins": ["https://img.example.com"]});
    policy["sla_seconds"] = json!({"standard": 3600});
    let svc = app.project("spam", policy).await;
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let bo = app.reviewer("bo", &[1], &["spam"]).await;
    // The hostile item first, then 1,000 more: the queue the timing is measured on.
    let mut items = vec![item("hostile", HOSTILE, Some(0.5))];
    items[0]["attributes"] = json!({"link": "https://evil.example/x", "picture": "https://evil.example/a.png",
        "photo": "https://img.example.com/cat.png"});
    items.extend((0..1000).map(|i| item(&format!("m{i:04}"), &format!("message number {i}"), Some(0.5))));
    app.submit("spam", &svc, json!(items)).await;
    app.submit("spam", &svc, json!([item("urgent-1", "I hurt myself", Some(0.5))]))
        .await;

    let c = browser(&driver).await;
    let base = app.base.clone();

    // A wrong password says so; the right one signs in.
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("ana")
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("wrong horse")
        .await
        .unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    until(
        &c,
        "return !!document.getElementById('login-error')",
        "the sign-in error",
    )
    .await;
    sign_in_as(&c, &base, &[("name", "ana"), ("password", "correct horse")]).await;

    // Tier 1 sees its queues, not the tier-2 one, and cannot open it by URL.
    let queues: Vec<String> = {
        let mut out = vec![];
        for e in c.find_all(Locator::Css("a.queue")).await.unwrap() {
            out.push(e.text().await.unwrap());
        }
        out
    };
    assert!(queues.contains(&"standard".to_string()), "{queues:?}");
    assert!(!queues.contains(&"urgent".to_string()), "{queues:?}");
    c.goto(&format!("{base}/ui/work/spam/urgent")).await.unwrap();
    assert_eq!(text_of(&c, "h1").await, "403");
    let cookie = c
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name() == "fw_session")
        .unwrap();
    assert!(cookie.http_only().unwrap_or(false));
    let by_url = app
        .http
        .get(format!("{base}/ui/work/spam/urgent"))
        .header("cookie", format!("fw_session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(by_url.status(), StatusCode::FORBIDDEN);

    // The work loop. The hostile item shows as text and runs nothing.
    c.goto(&format!("{base}/ui/work/spam/standard")).await.unwrap();
    until(
        &c,
        "return document.getElementById('ext').textContent === 'hostile'",
        "the first item",
    )
    .await;
    assert_eq!(text_of(&c, "#text").await, HOSTILE);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_ne!(c.title().await.unwrap(), "pwned");
    assert_eq!(
        js(
            &c,
            "return Array.from(document.querySelectorAll('#item img, #item script, #item a')).map(e => e.src)"
        )
        .await,
        json!(["https://img.example.com/cat.png"]),
        "no element came from the payload but the image from an allowed origin"
    );
    assert_eq!(text_of(&c, "#suggestion").await, "Model suggests ham (50%)");
    std::fs::write(screenshots().join("workbench.png"), c.screenshot().await.unwrap()).unwrap();

    // 1 = the first label (ham), with a failure category picked from the taxonomy with
    // the mouse: the digit still answers after it (no control keeps the keys).
    c.find(Locator::Id("category-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#category-picker button[data-category='slang']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text_of(&c, "#category-value").await, "slang");
    press(&c, '1').await;
    let escalated = next_item(&c, "hostile").await;
    // e: escalate with a reason, Enter sends it.
    press(&c, 'e').await;
    until(
        &c,
        "return document.activeElement.id === 'escalate-reason'",
        "the reason box",
    )
    .await;
    type_text(&c, "needs a native speaker").await;
    press(&c, '\u{E007}').await; // Enter
    let skipped = next_item(&c, &escalated).await;
    // s: skip.
    press(&c, 's').await;
    let mut last = next_item(&c, &skipped).await;
    // Twenty answers with the keyboard, each timed from key to the next item painted.
    for i in 0..20 {
        press(&c, if i % 2 == 0 { '1' } else { '2' }).await;
        last = next_item(&c, &last).await;
    }
    until(
        &c,
        "return document.getElementById('today').textContent === '23'",
        "today's count",
    )
    .await;
    let swaps: Vec<f64> = serde_json::from_value(js(&c, "return window.fwSwaps").await).unwrap();
    let acks: Vec<f64> = serde_json::from_value(js(&c, "return window.fwAcks").await).unwrap();
    let summary = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        (s.len(), s[s.len() / 2], s[s.len() - 1])
    };
    let (n, median, max) = summary(&swaps);
    let (_, ack_median, ack_max) = summary(&acks);
    eprintln!(
        "workbench, 1,000 open tasks, {n} answers: answer key → next item painted median {median:.1} ms, max {max:.1} ms; \
         answer acknowledged by the server median {ack_median:.1} ms, max {ack_max:.1} ms"
    );
    std::fs::write(
        screenshots().join("workbench-timing.json"),
        json!({"open_tasks": 1000, "answers": n, "swap_ms": swaps, "ack_ms": acks}).to_string(),
    )
    .unwrap();

    // What the keyboard did is what the store has.
    let (_, hostile) = app.get("/v1/projects/spam/items/hostile", ADMIN).await;
    assert_eq!(hostile["reviews"][0]["label"], "ham");
    assert_eq!(hostile["reviews"][0]["failure_category"], "slang");
    let (_, esc) = app.get(&format!("/v1/projects/spam/items/{escalated}"), ADMIN).await;
    assert_eq!(esc["reviews"][0]["answer"], "escalate");
    assert_eq!(esc["reviews"][0]["reason"], "needs a native speaker");
    let (_, sk) = app.get(&format!("/v1/projects/spam/items/{skipped}"), ADMIN).await;
    assert_eq!(sk["reviews"][0]["answer"], "skip");

    // A state-changing request without the CSRF token is refused, from the page itself.
    let refused = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/v1/projects/spam/claim', {method: 'POST', credentials: 'same-origin',
                 headers: {'content-type': 'application/json'}, body: '{}'})
               .then(async r => done([r.status, (await r.json()).error.code]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(refused, json!([403, "csrf"]));
    let form_post = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/logout', {method: 'POST', credentials: 'same-origin',
                 headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'csrf='})
               .then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(form_post, json!(403), "a form posted without the token");

    // Sign out (the form carries the token), and in as the admin.
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&c, "return location.pathname === '/login'", "the sign-in page").await;
    sign_in_as(&c, &base, &[("key", ADMIN)]).await;
    c.goto(&format!("{base}/ui/projects/spam")).await.unwrap();
    let resolved_before: i64 = text_of(&c, "#stat-resolved").await.parse().unwrap();
    assert!(resolved_before >= 21, "{resolved_before}");
    assert!(text_of(&c, "#reviewers").await.contains("ana"));
    // Another reviewer answers through the API; the dashboard follows by itself.
    for i in 0..5 {
        let task = app.claim("spam", &bo, Some("standard")).await.unwrap();
        let (s, v) = app
            .answer(&bo, &task, &format!("bo-{i}"), json!({"label": "spam"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    until(
        &c,
        &format!(
            "return document.getElementById('stat-resolved').textContent === '{}'",
            resolved_before + 5
        ),
        "the dashboard to show bo's answers",
    )
    .await;
    assert!(text_of(&c, "#reviewers").await.contains("bo"));
    std::fs::write(screenshots().join("dashboard.png"), c.screenshot().await.unwrap()).unwrap();

    // Where reviewer time goes: bo tags three answers `sarcasm` and spends 40 s on each,
    // 10 s on three others; the 7-day window shows the bars by time share and says so.
    for i in 0..6 {
        let task = app.claim("spam", &bo, Some("standard")).await.unwrap();
        app.clock.advance_ms(if i < 3 { 40_000 } else { 10_000 });
        let answer = if i < 3 {
            json!({"label": "spam", "failure_category": "sarcasm"})
        } else {
            json!({"label": "ham"})
        };
        let (s, v) = app.answer(&bo, &task, &format!("bo-w{i}"), answer).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    c.goto(&format!("{base}/ui/projects/spam?window=7d")).await.unwrap();
    assert_eq!(text_of(&c, "#workload .windows strong").await, "7 d");
    let findings = text_of(&c, "#workload-findings").await;
    assert!(
        findings.contains("of time on `sarcasm` (failure category)"),
        "{findings}"
    );
    let keys = js(
        &c,
        "return [...document.querySelectorAll('#workload-failure_category td.key')].map(t => t.textContent)",
    )
    .await;
    assert_eq!(keys[0], "sarcasm", "{keys}");
    let bars = js(&c, "return document.querySelectorAll('#workload svg.bar rect').length").await;
    assert!(bars.as_u64().unwrap() >= 5, "a bar per row: {bars}");
    js(&c, "document.getElementById('workload').scrollIntoView(); return true;").await;
    std::fs::write(screenshots().join("workload.png"), c.screenshot().await.unwrap()).unwrap();

    // The policy editor: a broken rule is shown against its field, and nothing is saved.
    c.goto(&format!("{base}/ui/projects/spam/policy")).await.unwrap();
    js(
        &c,
        "const t = document.getElementById('policy'); const p = JSON.parse(t.value);
         p.rules[1].when = 'confidence >'; t.value = JSON.stringify(p, null, 2); return true;",
    )
    .await;
    c.find(Locator::Id("validate")).await.unwrap().click().await.unwrap();
    until(
        &c,
        "return document.getElementById('policy-result').textContent !== ''",
        "the check",
    )
    .await;
    assert!(text_of(&c, "#policy-result").await.starts_with("rules[1].when:"));
    let (_, project) = app.get("/v1/projects/spam", ADMIN).await;
    assert_eq!(project["policy_version"], 1);
    std::fs::write(screenshots().join("policy.png"), c.screenshot().await.unwrap()).unwrap();

    // A valid policy saves as a new version.
    c.goto(&format!("{base}/ui/projects/spam/policy")).await.unwrap();
    js(
        &c,
        "const t = document.getElementById('policy'); const p = JSON.parse(t.value);
         p.audit_rate = 0.05; t.value = JSON.stringify(p, null, 2); return true;",
    )
    .await;
    c.find(Locator::Id("save")).await.unwrap().click().await.unwrap();
    // The page reloads after a save, so its heading names the version now in force.
    until(
        &c,
        "return document.querySelector('h1').textContent.includes('policy v2')",
        "the save, and the page to show v2",
    )
    .await;
    let (_, project) = app.get("/v1/projects/spam", ADMIN).await;
    assert_eq!(
        (
            project["policy_version"].clone(),
            project["policy"]["audit_rate"].clone()
        ),
        (json!(2), json!(0.05))
    );

    // The history: v1 against v2 shows the changed line; rollback makes v3 equal to v1.
    assert_eq!(
        js(&c, "return document.querySelectorAll('#versions tbody tr').length").await,
        json!(2)
    );
    c.find(Locator::Id("show-diff")).await.unwrap().click().await.unwrap();
    until(
        &c,
        "return document.getElementById('diff').dataset.changed > 0",
        "the diff",
    )
    .await;
    let added = js(
        &c,
        "return [...document.querySelectorAll('#diff .add')].map(e => e.textContent.trim()).join('|')",
    )
    .await;
    assert!(added.as_str().unwrap().contains("\"audit_rate\": 0.05"), "{added}");
    std::fs::write(screenshots().join("policy-diff.png"), c.screenshot().await.unwrap()).unwrap();
    js(&c, "window.confirm = () => true; return true;").await;
    c.find(Locator::Css("#versions tr[data-version='1'] button.rollback"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "return document.querySelector('h1').textContent.includes('policy v3')",
        "the rollback, and the page to show v3",
    )
    .await;
    let (_, v) = app.get("/v1/projects/spam/policy/versions", ADMIN).await;
    assert_eq!(
        (v["current"].clone(), v["versions"][0]["version"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(v["versions"][0]["policy"], v["versions"][2]["policy"], "v3 is v1 again");

    // The admin creates a reviewer from the Reviewers page; the key is shown once.
    c.goto(&format!("{base}/ui/reviewers")).await.unwrap();
    let form = c.find(Locator::Id("new-reviewer")).await.unwrap();
    form.find(Locator::Css("input[name=name]"))
        .await
        .unwrap()
        .send_keys("cy")
        .await
        .unwrap();
    form.find(Locator::Css("input[name=projects][value=spam]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The key is shown once, with the warning, and the table shows the new reviewer
    // without a reload (which would lose the key).
    until(
        &c,
        "const s = document.getElementById('secret'); return !s.hidden && s.textContent.includes('Shown once') && document.getElementById('secret-key').textContent.length > 20 && document.getElementById('accounts').textContent.includes('cy')",
        "the new key, shown once, and the refreshed table",
    )
    .await;
    let (_, accounts) = app.get("/v1/reviewers", ADMIN).await;
    assert!(
        accounts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "cy" && a["projects"] == json!(["spam"]))
    );
    std::fs::write(screenshots().join("reviewers.png"), c.screenshot().await.unwrap()).unwrap();

    // SLA state per queue: an hour on, the standard queue's open tasks are past their
    // deadline (3,600 s) and the SLA worker has written their breaches; the dashboard's
    // queue table shows them.
    app.clock.advance_ms(3_700_000);
    flywheel_server::workers::SlaWorker {
        state: app.state.clone(),
        batch: 2_000,
    }
    .try_run_once(app.clock_now())
    .await
    .unwrap();
    c.goto(&format!("{base}/ui/projects/spam")).await.unwrap();
    until(
        &c,
        "const r = [...document.querySelectorAll('#queues tr')].find(r => r.cells[0].textContent === 'standard');
         return !!r && Number(r.querySelector('.sla-breached').textContent) > 900
             && Number(r.querySelector('.sla-overdue').textContent) > 900
             && r.querySelector('.sla-within').textContent.endsWith('%')",
        "the standard queue's SLA state",
    )
    .await;
    std::fs::write(screenshots().join("dashboard-sla.png"), c.screenshot().await.unwrap()).unwrap();

    c.close().await.unwrap();
    app.stop().await;
}

/// Fatigue in the console: a reviewer who sped up is on a break — the workbench shows the
/// break screen — and the admin's dashboard shows the fatigue badge beside their session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatigue_in_a_browser() {
    let Some(driver) = start_driver() else { return };
    let db = Db::sqlite();
    let app = spawn_app(&db).await;
    let policy = json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "standard"}],
        "lease_seconds": 3600, "fatigue": {"window": 5, "on_fatigue": "break", "break_minutes": 15}});
    let svc = app.project("spam", policy).await;
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ana = v["api_key"].as_str().unwrap().to_string();
    let items: Vec<Value> = (0..12).map(|i| item(&format!("f{i}"), "hello", None)).collect();
    app.submit("spam", &svc, json!(items)).await;
    // Five answers at 20 s, five at 6 s: the monitor calls a break.
    for i in 0..10 {
        let t = app.claim("spam", &ana, None).await.unwrap();
        app.clock.advance_ms(if i < 5 { 20_000 } else { 6_000 });
        let (s, v) = app.answer(&ana, &t, &format!("f{i}"), json!({"label": "ham"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    let c = browser(&driver).await;
    let base = app.base.clone();
    sign_in_as(&c, &base, &[("name", "ana"), ("password", "correct horse")]).await;
    c.goto(&format!("{base}/ui/work/spam/standard")).await.unwrap();
    until(
        &c,
        "return !document.getElementById('break').hidden",
        "the break screen",
    )
    .await;
    let said = text_of(&c, "#break-text").await;
    assert!(
        said.contains("fatigue monitor") && said.contains("Claims resume at"),
        "{said}"
    );
    assert_eq!(
        js(
            &c,
            "return [document.getElementById('item').hidden, getComputedStyle(document.querySelector('.labels')).display]"
        )
        .await,
        json!([true, "none"]),
        "no item and no answer buttons during the break"
    );
    std::fs::write(screenshots().join("workbench-break.png"), c.screenshot().await.unwrap()).unwrap();

    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&c, "return location.pathname === '/login'", "the sign-in page").await;
    sign_in_as(&c, &base, &[("key", ADMIN)]).await;
    c.goto(&format!("{base}/ui/projects/spam")).await.unwrap();
    let badge = text_of(&c, "#reviewers td.fatigue").await;
    assert!(
        badge.contains("fatigued since") && badge.contains("break until"),
        "{badge}"
    );
    assert!(text_of(&c, "#reviewers td.session").await.starts_with("10 answers"));
    js(&c, "document.getElementById('reviewers').scrollIntoView(); return true").await;
    std::fs::write(
        screenshots().join("dashboard-fatigue.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();

    c.close().await.unwrap();
    app.stop().await;
}

/// A WebDriver command of chromedriver's own: a Chrome DevTools Protocol call.
#[derive(Debug)]
struct Cdp(Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &reqwest::Url,
        session: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(self.0.to_string()))
    }
}

/// Whether every label button lies inside the viewport.
async fn buttons_on_screen(c: &Client) -> bool {
    js(
        c,
        "return [...document.querySelectorAll('button.label')].every(b => {
             const r = b.getBoundingClientRect();
             return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; })",
    )
    .await
        == Value::Bool(true)
}

/// The workbench's keys, undo and amend, guidelines, "why this item", highlighting,
/// progress, the empty state and dark mode, at 1280×720 and 1400×1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workbench_undo_amend_and_keys() {
    let Some(driver) = start_driver() else { return };
    let db = Db::sqlite();
    let app = spawn_app(&db).await;
    let mut policy = example_policy();
    // Two answers per item, so that an answer waits (undo) before its item resolves (amend).
    policy["rules"][2]["overlap"] = json!(2);
    policy["workbench"] = json!({
        "failure_categories": ["sarcasm", "slang"],
        "undo_seconds": 60,
        "highlight": ["prize", "free money"],
        "guidelines": "# Spam rules\n\n* **Phishing** is spam.\n* See [the handbook](https://example.com/handbook).\n\n<script>document.title='pwned'</script>",
    });
    let svc = app.project("spam", policy).await;
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let bo = app.reviewer("bo", &[1], &["spam"]).await;
    let lead = app.reviewer("lead", &[2], &["spam"]).await;
    let long = format!(
        "You won a prize! {}",
        "Claim your free money now, it is waiting for you. ".repeat(300)
    );
    let items = vec![
        item("w0", &long, Some(0.6)),
        item("w1", "see you at noon", Some(0.4)),
        item("w2", "hola, ¿qué tal?", Some(0.5)),
        item("w3", "last one", Some(0.5)),
    ];
    app.submit("spam", &svc, json!(items)).await;

    let c = browser(&driver).await;
    c.set_window_size(1280, 720).await.unwrap();
    let base = app.base.clone();
    sign_in_as(&c, &base, &[("name", "ana"), ("password", "correct horse")]).await;
    c.goto(&format!("{base}/ui/work/spam/standard")).await.unwrap();
    until(
        &c,
        "return document.getElementById('ext').textContent === 'w0'",
        "the first item",
    )
    .await;

    // A long text at 1280×720: the label buttons stay on screen.
    assert!(
        buttons_on_screen(&c).await,
        "label buttons off screen with a long text at 1280x720"
    );
    // Highlighted words are marks holding text; the text itself is unchanged.
    assert_eq!(
        js(
            &c,
            "return [...document.querySelectorAll('#text mark')].slice(0, 2).map(m => m.textContent)"
        )
        .await,
        json!(["prize", "free money"])
    );
    assert_eq!(
        js(&c, "return document.getElementById('text').textContent").await,
        json!(long)
    );
    // Why this item: the rule, and every label's score.
    assert_eq!(text_of(&c, "#why-rule").await, "Rule: uncertain");
    assert_eq!(
        js(
            &c,
            "return [...document.querySelectorAll('#why-scores tr')].map(r => r.textContent)"
        )
        .await,
        json!(["spam60.0%", "ham40.0%"])
    );
    until(
        &c,
        "return document.getElementById('left').textContent === '4'",
        "the queue's count",
    )
    .await;
    std::fs::write(
        screenshots().join("workbench-1280x720.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();

    // Guidelines and the key list open and close by key; the guidelines' HTML is text.
    press(&c, 'g').await;
    until(
        &c,
        "return !document.getElementById('guidelines').hidden",
        "the guidelines",
    )
    .await;
    assert!(text_of(&c, "#guidelines").await.contains("Phishing is spam."));
    assert!(text_of(&c, "#guidelines").await.contains("<script>"));
    assert_eq!(
        js(&c, "return document.querySelectorAll('#guidelines script').length").await,
        json!(0)
    );
    assert_ne!(c.title().await.unwrap(), "pwned");
    std::fs::write(
        screenshots().join("workbench-guidelines.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    press(&c, 'g').await;
    until(
        &c,
        "return document.getElementById('guidelines').hidden",
        "the guidelines closed",
    )
    .await;
    press(&c, 'g').await;
    press(&c, '\u{E00C}').await; // Escape
    until(
        &c,
        "return document.getElementById('guidelines').hidden",
        "Escape to close them",
    )
    .await;
    press(&c, '?').await;
    until(&c, "return !document.getElementById('help').hidden", "the key list").await;
    press(&c, '\u{E00C}').await;
    until(
        &c,
        "return document.getElementById('help').hidden",
        "the key list closed",
    )
    .await;

    // Undo: ana answers w0 ham, takes it back with u within the window and says spam.
    press(&c, '1').await;
    next_item(&c, "w0").await;
    press(&c, 'u').await;
    until(
        &c,
        "return document.getElementById('ext').textContent === 'w0' && !document.getElementById('amending').hidden",
        "w0 shown again for its change",
    )
    .await;
    press(&c, '2').await;
    until(
        &c,
        "return document.getElementById('notice').textContent.includes('Changed w0 from ham to spam')",
        "the change confirmed",
    )
    .await;
    assert_eq!(on_screen(&c).await, "w1", "back to the item at hand");
    let (_, w0) = app.get("/v1/projects/spam/items/w0", ADMIN).await;
    assert_eq!(w0["reviews"][0]["label"], "spam", "{w0}");
    assert!(
        w0["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "review.undone"),
        "{w0}"
    );

    // bo agrees (spam): w0 resolves. ana changes her mind again from the history sidebar
    // (the mouse), then a digit: the item goes back to adjudication, one tier up.
    let t = app.claim("spam", &bo, Some("standard")).await.unwrap();
    assert_eq!(t["item"]["external_id"], "w0");
    let (s, v) = app.answer(&bo, &t, "bo-w0", json!({"label": "spam"})).await;
    assert_eq!((s, v["outcome"].clone()), (StatusCode::OK, json!("resolved")), "{v}");
    c.find(Locator::Css("#history-list button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "return document.getElementById('ext').textContent === 'w0'",
        "w0 again",
    )
    .await;
    press(&c, '1').await;
    until(
        &c,
        "return document.getElementById('notice').textContent.includes('went back to adjudication')",
        "the amendment",
    )
    .await;
    let (_, w0) = app.get("/v1/projects/spam/items/w0", ADMIN).await;
    let adjudication = w0["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["stage"] == "adjudicate")
        .cloned();
    let adjudication = adjudication.unwrap_or_else(|| panic!("no adjudication: {w0}"));
    assert_eq!(adjudication["tier"], 2);
    assert!(
        adjudication["reason"].as_str().unwrap().contains("amended spam → ham"),
        "{adjudication}"
    );
    // The tier-2 lead opens their own workbench: the adjudication of w0 shows why it is
    // there (ana's amendment, in her words) and the earlier answers with their reviewers.
    let c2 = browser(&driver).await;
    c2.set_window_size(1280, 720).await.unwrap();
    sign_in_as(&c2, &base, &[("key", lead.as_str())]).await;
    let queue = adjudication["queue"].as_str().unwrap();
    c2.goto(&format!("{base}/ui/work/spam/{queue}")).await.unwrap();
    until(
        &c2,
        "return document.getElementById('ext').textContent === 'w0' && !document.getElementById('context').hidden",
        "the adjudication with its context",
    )
    .await;
    let reason = text_of(&c2, "#context-reason").await;
    assert!(reason.contains("amended spam → ham"), "{reason}");
    let earlier = text_of(&c2, "#context-answers").await;
    assert!(earlier.contains("ana: ham"), "{earlier}");
    std::fs::write(
        screenshots().join("workbench-adjudicator-context.png"),
        c2.screenshot().await.unwrap(),
    )
    .unwrap();
    c2.close().await.unwrap();

    // The failure category and an escalation by keyboard only, then a label: c and a digit
    // pick the category, e opens the reason, Escape goes back to the item, 1 answers.
    assert_eq!(on_screen(&c).await, "w1");
    press(&c, 'c').await;
    until(
        &c,
        "return !document.getElementById('category-picker').hidden",
        "the category picker",
    )
    .await;
    press(&c, '2').await;
    until(
        &c,
        "return document.getElementById('category-value').textContent === 'slang'",
        "the category",
    )
    .await;
    assert_eq!(
        on_screen(&c).await,
        "w1",
        "a digit in the picker picks, it does not answer"
    );
    press(&c, 'e').await;
    until(
        &c,
        "return document.activeElement.id === 'escalate-reason'",
        "the reason box",
    )
    .await;
    type_text(&c, "hm").await;
    press(&c, '\u{E00C}').await;
    until(
        &c,
        "return document.getElementById('escalate-form').hidden && document.activeElement.id === 'wb'",
        "Escape back to the item",
    )
    .await;
    press(&c, '1').await;
    next_item(&c, "w1").await;
    // w2: escalated by keyboard (e, a reason, Enter).
    press(&c, 'e').await;
    until(
        &c,
        "return document.activeElement.id === 'escalate-reason'",
        "the reason box",
    )
    .await;
    type_text(&c, "needs a native speaker").await;
    press(&c, '\u{E007}').await; // Enter
    next_item(&c, "w2").await;
    let (_, w1) = app.get("/v1/projects/spam/items/w1", ADMIN).await;
    assert_eq!(
        (
            w1["reviews"][0]["label"].clone(),
            w1["reviews"][0]["failure_category"].clone()
        ),
        (json!("ham"), json!("slang")),
        "{w1}"
    );
    let (_, w2) = app.get("/v1/projects/spam/items/w2", ADMIN).await;
    assert_eq!(w2["reviews"][0]["reason"], "needs a native speaker", "{w2}");
    let notice = text_of(&c, "#notice").await;
    assert!(!notice.contains("lost"), "no lease was lost: {notice}");

    // The wide layout, then dark mode (following the system), then the empty state: no
    // buttons, no timer, the session's count.
    c.set_window_size(1400, 1000).await.unwrap();
    assert!(buttons_on_screen(&c).await);
    std::fs::write(
        screenshots().join("workbench-1400x1000.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    c.issue_cmd(Cdp(json!({"cmd": "Emulation.setEmulatedMedia",
        "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}})))
        .await
        .unwrap();
    assert_eq!(
        js(&c, "return getComputedStyle(document.body).backgroundColor").await,
        json!("rgb(13, 17, 23)")
    );
    std::fs::write(screenshots().join("workbench-dark.png"), c.screenshot().await.unwrap()).unwrap();
    press(&c, 's').await;
    until(&c, "return !document.getElementById('empty').hidden", "the empty state").await;
    assert_eq!(
        js(
            &c,
            "return [getComputedStyle(document.getElementById('actionbar')).display,
                        getComputedStyle(document.getElementById('timer-box')).display,
                        document.getElementById('done').textContent]"
        )
        .await,
        json!(["none", "none", "4"])
    );
    std::fs::write(screenshots().join("workbench-empty.png"), c.screenshot().await.unwrap()).unwrap();

    c.close().await.unwrap();
    app.stop().await;
}

/// Answer fields in the workbench, by keyboard only: a required severity left empty stops
/// the answer with a message and puts the focus on it; chosen by its first letter, Esc,
/// then the label's digit answers with the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_fields_in_a_browser() {
    let Some(driver) = start_driver() else { return };
    let db = Db::sqlite();
    let app = spawn_app(&db).await;
    let (s, v) = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "spam", "labels": ["ham", "spam"],
                   "policy": {"rules": [{"name": "all", "when": "true", "action": "review", "queue": "standard"}]},
                   "answer_fields": [
                       {"name": "severity", "type": "enum", "values": ["low", "medium", "high"], "required": true,
                        "when_labels": ["spam"]},
                       {"name": "note", "type": "text", "max_length": 100}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app
        .post("/v1/keys", ADMIN, json!({"scope": "service", "projects": ["spam"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let svc = v["api_key"].as_str().unwrap().to_string();
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    app.submit("spam", &svc, json!([item("s1", "buy now", Some(0.5))]))
        .await;

    let c = browser(&driver).await;
    let base = app.base.clone();
    sign_in_as(&c, &base, &[("name", "ana"), ("password", "correct horse")]).await;
    c.goto(&format!("{base}/ui/work/spam")).await.unwrap();
    assert_eq!(next_item(&c, "").await, "s1");
    // spam without its severity: refused in the page, the focus on the field.
    press(&c, '2').await;
    until(
        &c,
        "return document.activeElement && document.activeElement.id === 'field-severity'",
        "the focus on the severity",
    )
    .await;
    let said = text_of(&c, "#notice").await;
    assert!(said.contains("Fill in severity"), "{said}");
    // Chosen by its first letter; Tab reaches the note; Esc leaves the fields; 2 answers.
    type_text(&c, "h").await;
    assert_eq!(
        js(&c, "return document.getElementById('field-severity').value").await,
        "high"
    );
    type_text(&c, "\u{E004}").await; // Tab
    assert_eq!(js(&c, "return document.activeElement.id").await, "field-note");
    type_text(&c, "obvious").await;
    type_text(&c, "\u{E00C}").await; // Escape
    press(&c, '2').await;
    let mut feed = Vec::new();
    for _ in 0..200 {
        feed = app.all_labels(&svc).await;
        if !feed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(feed.len(), 1, "the answer reached the server");
    assert_eq!(feed[0]["label"], "spam");
    assert_eq!(feed[0]["fields"], json!({"severity": "high", "note": "obvious"}));
    std::fs::write(
        screenshots().join("workbench-fields.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    c.close().await.unwrap();
    app.stop().await;
}

/// Clicks the element `css` finds.
async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

/// Types `text` into the element `css` finds.
async fn fill(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css)).await.unwrap().send_keys(text).await.unwrap();
}

/// Saves a screenshot as `target/screenshots/{name}.png`.
async fn shot(c: &Client, name: &str) {
    std::fs::write(screenshots().join(format!("{name}.png")), c.screenshot().await.unwrap()).unwrap();
}

/// The admin's console for one item, at 1400×1000 and 1280×720: the dashboard flags a
/// stranded tier, the search finds an item by its text, its page shows it, and an override
/// from that page resolves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_search_override_and_stranded_in_a_browser() {
    let Some(driver) = start_driver() else { return };
    let db = Db::sqlite();
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    // Only tier 1 is held: the urgent queue's tier-2 work is stranded.
    app.reviewer("ann", &[1], &["spam"]).await;
    app.submit(
        "spam",
        &svc,
        json!([
            item("n1", "see you at lunch on Friday", Some(0.6)),
            item("n2", "You won a FREE cruise, reply now", Some(0.6)),
            item("u1", "I will hurt myself", Some(0.5)),
        ]),
    )
    .await;
    let c = browser(&driver).await;
    let base = app.base.clone();
    sign_in_as(&c, &base, &[("key", ADMIN)]).await;
    for ((w, h), (id, words)) in [((1400, 1000), ("n2", "cruise")), ((1280, 720), ("n1", "LUNCH"))] {
        c.set_window_size(w, h).await.unwrap();
        let size = format!("{w}x{h}");

        c.goto(&format!("{base}/ui/projects/spam")).await.unwrap();
        until(
            &c,
            "const s = document.getElementById('stranded'); return !!s && s.textContent.includes('no active reviewer holds tier 2');",
            "the stranded alert",
        )
        .await;
        let row = js(
            &c,
            "return document.querySelector('#stranded tr[data-queue=\"urgent\"]').dataset.tier",
        )
        .await;
        assert_eq!(row, "2");
        shot(&c, &format!("dashboard-stranded-{size}")).await;

        // The search, from the dashboard's link, finds the item by its text in any case.
        click(&c, "#search-items").await;
        until(&c, "return !!document.getElementById('item-search')", "the search page").await;
        fill(&c, "#item-search input[name=q]", words).await;
        click(&c, "#item-search button[type=submit]").await;
        // The search page without a query already lists items: wait for the answer to
        // this query, not the page it was typed on.
        until(
            &c,
            &format!(
                "return new URLSearchParams(location.search).get('q') === '{words}' && !!document.getElementById('hits')"
            ),
            "the hits",
        )
        .await;
        let found = js(
            &c,
            "return [...document.querySelectorAll('#hits a')].map(a => a.textContent)",
        )
        .await;
        assert_eq!(found, json!([id]));
        shot(&c, &format!("item-search-{size}")).await;

        // Its page: the payload as text, the decision, no resolution yet.
        click(&c, "#hits a").await;
        until(
            &c,
            &format!("const e = document.getElementById('item-id'); return !!e && e.textContent === '{id}';"),
            "the item page",
        )
        .await;
        let payload = text_of(&c, "#payload").await;
        assert!(payload.to_lowercase().contains(&words.to_lowercase()), "{payload}");
        assert!(text_of(&c, "#resolution").await.contains("Not resolved"));

        // An override from the page: resolved as spam, with a reason, as an override.
        click(&c, "#override-resolve select[name=label] option[value=spam]").await;
        fill(
            &c,
            "#override-resolve input[name=reason]",
            "clear spam, no reviewer free",
        )
        .await;
        click(&c, "#override-resolve button[type=submit]").await;
        until(
            &c,
            "const r = document.getElementById('resolution'); return !!r && r.textContent.includes('override');",
            "the overridden resolution",
        )
        .await;
        let resolution = text_of(&c, "#resolution").await;
        assert!(
            resolution.contains("spam") && resolution.contains("human"),
            "{resolution}"
        );
        let events = text_of(&c, "#item-events").await;
        assert!(
            events.contains("item.overridden") && events.contains("clear spam, no reviewer free"),
            "{events}"
        );
        shot(&c, &format!("item-override-{size}")).await;
    }
    let feed = app.all_labels(&svc).await;
    let labelled: Vec<_> = feed
        .iter()
        .map(|l| (l["external_id"].clone(), l["label"].clone()))
        .collect();
    assert_eq!(labelled, [(json!("n2"), json!("spam")), (json!("n1"), json!("spam"))]);
    c.close().await.unwrap();
    app.stop().await;
}

/// The lead's console, in both layouts: a new project's dashboard with its lines inside
/// the axes and clock times under them; a key created with its "shown once" warning and the
/// table refreshed; a rule edited in the policy form with the JSON following, keys in their
/// order; the back-test of that proposal against the policy in force, side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leads_console_in_a_browser() {
    let Some(driver) = start_driver() else { return };
    for (w, h) in [(1400u32, 1000u32), (1280, 720)] {
        let db = Db::sqlite();
        let app = spawn_app(&db).await;
        let svc = app.project("spam", example_policy()).await;
        let ana = app.reviewer("ana", &[1], &["spam"]).await;
        // Six items a human labels (they go to review), two the model decides.
        let items: Vec<_> = (0..6)
            .map(|i| item(&format!("m{i}"), "win a prize", Some(0.6 + 0.05 * f64::from(i))))
            .chain([item("a0", "hello", Some(0.99)), item("a1", "hi", Some(0.01))])
            .collect();
        app.submit("spam", &svc, json!(items)).await;
        while let Some(t) = app.claim("spam", &ana, Some("standard")).await {
            let label = if t["item"]["external_id"] == "m0" {
                "ham"
            } else {
                "spam"
            };
            let (s, v) = app
                .answer(&ana, &t, &format!("r-{}", t["task_id"]), json!({"label": label}))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        app.clock.advance_ms(5 * 60_000);

        let c = browser(&driver).await;
        c.set_window_size(w, h).await.unwrap();
        let base = app.base.clone();
        sign_in_as(&c, &base, &[("key", ADMIN)]).await;

        // The dashboard of a project minutes old: every line's points inside its chart's
        // axes (right of the y axis, above the x axis), the x axis in clock times.
        c.goto(&format!("{base}/ui/projects/spam")).await.unwrap();
        let outside = js(
            &c,
            "const bad = [];
             for (const svg of document.querySelectorAll('svg.chart')) {
               const axes = svg.querySelectorAll('line.axis');
               const bottom = Number(axes[0].getAttribute('y1')), right = Number(axes[0].getAttribute('x2'));
               const left = Number(axes[1].getAttribute('x1')), top = Number(axes[1].getAttribute('y1'));
               for (const p of svg.querySelectorAll('polyline')) {
                 for (const xy of p.getAttribute('points').split(' ').filter((s) => s)) {
                   const [x, y] = xy.split(',').map(Number);
                   if (x < left || x > right || y < top || y > bottom) bad.push(xy);
                 }
               }
             }
             return bad;",
        )
        .await;
        assert_eq!(outside, json!([]), "points outside the axes");
        let ticks = js(
            &c,
            "return [...document.querySelectorAll('svg.chart .xtick')].map((t) => t.textContent);",
        )
        .await;
        let ticks: Vec<String> = serde_json::from_value(ticks).unwrap();
        assert!(
            !ticks.is_empty() && ticks.iter().all(|t| t.len() == 5 && t.as_bytes()[2] == b':'),
            "{ticks:?}"
        );
        assert!(!text_of(&c, "#live").await.contains("minutes since"));
        // Events read as sentences with links to the item page and the reviewer.
        until(
            &c,
            "return [...document.querySelectorAll('#events td.sentence')].some((t) => t.textContent.startsWith('labelled it spam'))",
            "a readable event",
        )
        .await;
        assert!(
            js(&c, "return !!document.querySelector('#events a.item[href=\"/ui/projects/spam/items/m5\"]') && !!document.querySelector('#events a.reviewer')").await == json!(true)
        );
        std::fs::write(
            screenshots().join(format!("lead-dashboard-{w}x{h}.png")),
            c.screenshot().await.unwrap(),
        )
        .unwrap();

        // A named service key: shown once with the warning, and the table lists it at once.
        c.goto(&format!("{base}/ui/keys")).await.unwrap();
        let form = c.find(Locator::Id("new-key")).await.unwrap();
        form.find(Locator::Css("input[name=name]"))
            .await
            .unwrap()
            .send_keys("nightly import")
            .await
            .unwrap();
        form.find(Locator::Css("input[name=projects][value=spam]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        form.find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(
            &c,
            "const s = document.getElementById('secret'); return !s.hidden && s.textContent.includes('Shown once — copy it now') && [...document.querySelectorAll('#keys td.name')].some((t) => t.textContent === 'nightly import')",
            "the new key shown once and listed",
        )
        .await;
        let shown = text_of(&c, "#secret-key").await;
        let (_, keys) = app.get("/v1/keys", ADMIN).await;
        let listed = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "nightly import")
            .unwrap();
        assert_eq!(
            listed["hash"].as_str().unwrap(),
            flywheel_server::auth::hash_key(&shown)
        );
        std::fs::write(
            screenshots().join(format!("lead-key-shown-once-{w}x{h}.png")),
            c.screenshot().await.unwrap(),
        )
        .unwrap();

        // The policy form: each rule a fieldset; editing the second rule's condition
        // changes the JSON beside it, its keys still in their order.
        c.goto(&format!("{base}/ui/projects/spam/policy")).await.unwrap();
        assert!(text_of(&c, "#in-force").await == "v1");
        let rules = js(&c, "return document.querySelectorAll('#rules fieldset.rule').length").await;
        assert_eq!(rules, json!(3));
        let when = c
            .find(Locator::Css("fieldset.rule[data-rule='1'] textarea[name=rule-when]"))
            .await
            .unwrap();
        assert_eq!(when.prop("value").await.unwrap().as_deref(), Some("confidence >= 0.95"));
        when.clear().await.unwrap();
        when.send_keys("confidence >= 0.7").await.unwrap();
        let order = js(
            &c,
            "const p = JSON.parse(document.getElementById('policy').value);
             return [Object.keys(p), Object.keys(p.rules[1]), p.rules[1].when];",
        )
        .await;
        assert_eq!(
            order,
            json!([
                ["rules", "audit_rate", "lease_seconds", "show_suggestion"],
                ["name", "when", "action"],
                "confidence >= 0.7"
            ])
        );
        // And the other way: a rule added in the JSON appears in the form.
        js(
            &c,
            "const t = document.getElementById('policy'); const p = JSON.parse(t.value);
             p.rules.push({name: 'late', when: 'true', action: 'review', queue: 'standard'});
             t.value = JSON.stringify(p, null, 2); t.dispatchEvent(new Event('input'));
             return true;",
        )
        .await;
        assert_eq!(
            js(&c, "return document.querySelectorAll('#rules fieldset.rule').length").await,
            json!(4)
        );

        // The back-test: v1 in force against the proposal, side by side, rounded.
        c.find(Locator::Id("backtest")).await.unwrap().click().await.unwrap();
        until(
            &c,
            "const t = document.getElementById('backtest-table'); return !!t && !!document.querySelector('svg.backtest-chart') && t.textContent.includes('current (v1)')",
            "the back-test table and chart",
        )
        .await;
        let rows = js(
            &c,
            "return [...document.querySelectorAll('#backtest-table tr')].map((r) => [...r.cells].map((c) => c.textContent));",
        )
        .await;
        let rows: Vec<Vec<String>> = serde_json::from_value(rows).unwrap();
        let automated = rows.iter().find(|r| r[0] == "automated").unwrap();
        // Six human-labelled items: v1 automates none of them (all under 0.95), the
        // proposal (≥ 0.7) the four at 0.7 and up.
        assert_eq!(
            (automated[1].as_str(), automated[2].as_str()),
            ("0.0% (0)", "66.7% (4)"),
            "{rows:?}"
        );
        assert!(
            rows.iter().flatten().all(|c| !c
                .chars()
                .collect::<Vec<_>>()
                .windows(5)
                .any(|w| w.iter().all(char::is_ascii_digit))),
            "a number with five digits or more: {rows:?}"
        );
        assert!(rows.iter().any(|r| r[0] == "human answers in standard"), "{rows:?}");
        std::fs::write(
            screenshots().join(format!("lead-backtest-{w}x{h}.png")),
            c.screenshot().await.unwrap(),
        )
        .unwrap();
        c.close().await.unwrap();
        app.stop().await;
    }
}
/// The `aria-pressed` state of the multi-label toggles, in label order.
async fn toggles(c: &Client) -> Value {
    js(
        c,
        "return [...document.querySelectorAll('button.label')].map(b => b.getAttribute('aria-pressed'))",
    )
    .await
}

/// Waits until the label feed of `spam` has `n` rows, and returns them.
async fn feed_of(app: &TestApp, key: &str, n: usize) -> Vec<Value> {
    let mut feed = Vec::new();
    for _ in 0..200 {
        feed = app.all_labels(key).await;
        if feed.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(feed.len(), n, "{feed:?}");
    feed
}

/// A multi-label project in the workbench, by keyboard only, at 1280×720 and at
/// 1400×1000: digits toggle labels (shown pressed, in dark mode too), `0` clears to "none
/// of these", Enter submits the set; a required severity left empty stops the answer with
/// the focus on it, `f` reaches it, Esc leaves it. The stored review and the label feed
/// carry the set and the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_label_toggles_in_a_browser() {
    let Some(driver) = start_driver() else { return };
    let db = Db::sqlite();
    let app = spawn_app(&db).await;
    let svc = app
        .project_from(
            json!({"name": "spam", "labels": ["hate", "harassment", "violence"], "label_mode": "multi",
               "policy": {"rules": [{"name": "all", "when": "true", "action": "review", "queue": "standard"}]},
               "answer_fields": [
                   {"name": "severity", "type": "enum", "values": ["low", "medium", "high"], "required": true}]}),
        )
        .await;
    app.reviewer_with_password("ana", "correct horse", &["spam"]).await;
    let items: Vec<Value> = ["m1", "m2", "m3"]
        .iter()
        .map(|id| json!({"external_id": id, "payload": {"text": format!("post {id}")}}))
        .collect();
    app.submit("spam", &svc, Value::Array(items)).await;

    let c = browser(&driver).await;
    c.set_window_size(1280, 720).await.unwrap();
    let base = app.base.clone();
    sign_in_as(&c, &base, &[("name", "ana"), ("password", "correct horse")]).await;
    c.goto(&format!("{base}/ui/work/spam")).await.unwrap();
    let first = next_item(&c, "").await;
    assert!(buttons_on_screen(&c).await, "toggles off screen at 1280x720");
    assert_eq!(toggles(&c).await, json!(["false", "false", "false"]));
    assert_eq!(
        js(
            &c,
            "return document.getElementById('none-of-these').getAttribute('aria-pressed')"
        )
        .await,
        "true"
    );
    // 1 and 3 on; 2 on and off again.
    for key in ['1', '3', '2', '2'] {
        press(&c, key).await;
    }
    assert_eq!(toggles(&c).await, json!(["true", "false", "true"]));
    assert_eq!(text_of(&c, "#set-summary").await, "hate, violence");
    // Enter without the required severity: refused in the page, the focus on it.
    press(&c, '\u{E007}').await;
    until(
        &c,
        "return document.activeElement && document.activeElement.id === 'field-severity'",
        "the focus on the severity",
    )
    .await;
    assert!(text_of(&c, "#notice").await.contains("Fill in severity"));
    assert_eq!(on_screen(&c).await, first, "nothing was sent");
    type_text(&c, "h").await;
    type_text(&c, "\u{E00C}").await; // Escape: back to the item, the toggles kept
    assert_eq!(toggles(&c).await, json!(["true", "false", "true"]));
    std::fs::write(
        screenshots().join("workbench-multi-1280x720.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    press(&c, '\u{E007}').await;
    let second = next_item(&c, &first).await;
    // A new item starts with nothing toggled and the fields cleared.
    assert_eq!(toggles(&c).await, json!(["false", "false", "false"]));
    assert_eq!(
        js(&c, "return document.getElementById('field-severity').value").await,
        ""
    );
    let feed = feed_of(&app, &svc, 1).await;
    assert_eq!(feed[0]["external_id"], json!(first));
    assert_eq!(feed[0]["labels"], json!(["hate", "violence"]));
    assert_eq!(feed[0]["fields"], json!({"severity": "high"}));
    let (_, detail) = app.get(&format!("/v1/projects/spam/items/{first}"), ADMIN).await;
    // The stored review holds the set in its canonical encoding, and the field.
    let review = &detail["reviews"][0];
    assert_eq!(
        (&review["label"], &review["fields"]),
        (&json!(r#"["hate","violence"]"#), &json!({"severity": "high"})),
        "{detail}"
    );

    // The wide layout: 2 on, 0 clears to none, 2 on again; `f` reaches the severity.
    c.set_window_size(1400, 1000).await.unwrap();
    assert!(buttons_on_screen(&c).await);
    for key in ['2', '0'] {
        press(&c, key).await;
    }
    assert_eq!(toggles(&c).await, json!(["false", "false", "false"]));
    assert_eq!(text_of(&c, "#set-summary").await, "none of these");
    press(&c, '2').await;
    press(&c, 'f').await;
    assert_eq!(js(&c, "return document.activeElement.id").await, "field-severity");
    type_text(&c, "l").await;
    type_text(&c, "\u{E00C}").await;
    std::fs::write(
        screenshots().join("workbench-multi-1400x1000.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    press(&c, '\u{E007}').await;
    next_item(&c, &second).await;
    let feed = feed_of(&app, &svc, 2).await;
    assert_eq!(feed[1]["external_id"], json!(second));
    assert_eq!(feed[1]["labels"], json!(["harassment"]));
    assert_eq!(feed[1]["fields"], json!({"severity": "low"}));

    // Dark mode: a toggled label stands apart from the others.
    c.issue_cmd(Cdp(json!({"cmd": "Emulation.setEmulatedMedia",
        "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}})))
        .await
        .unwrap();
    press(&c, '3').await;
    let colours = js(
        &c,
        "return [...document.querySelectorAll('button.label')].map(b => getComputedStyle(b).backgroundColor)",
    )
    .await;
    assert_eq!(
        colours,
        json!(["rgb(33, 38, 45)", "rgb(33, 38, 45)", "rgb(31, 111, 235)"])
    );
    std::fs::write(
        screenshots().join("workbench-multi-dark.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    c.close().await.unwrap();
    app.stop().await;
}

/// A multi-label project's "model suggests" line in the workbench: the labels the model
/// puts at or above their thresholds (0.5, nothing calibrated) with their scores, in the
/// project's order; "none of these" when it puts none there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_label_suggestion_in_a_browser() {
    let Some(driver) = start_driver() else { return };
    let db = Db::sqlite();
    let app = spawn_app(&db).await;
    let svc = app
        .project_from(
            json!({"name": "spam", "labels": ["hate", "harassment", "violence"], "label_mode": "multi",
            "policy": {"rules": [{"name": "all", "when": "true", "action": "review", "queue": "standard"}]}}),
        )
        .await;
    app.reviewer_with_password("ana", "correct horse", &["spam"]).await;
    let item = |id: &str, scores: Value| {
        json!({"external_id": id, "payload": {"text": format!("post {id}")},
               "prediction": {"model": "m", "scores": scores}})
    };
    app.submit(
        "spam",
        &svc,
        json!([
            item("two", json!({"hate": 0.91, "harassment": 0.2, "violence": 0.62})),
            item("none", json!({"hate": 0.1, "harassment": 0.49, "violence": 0.05}))
        ]),
    )
    .await;

    let c = browser(&driver).await;
    let base = app.base.clone();
    sign_in_as(&c, &base, &[("name", "ana"), ("password", "correct horse")]).await;
    c.goto(&format!("{base}/ui/work/spam")).await.unwrap();
    let first = next_item(&c, "").await;
    let expected = |id: &str| match id {
        "two" => "Model suggests hate (91%), violence (62%)",
        _ => "Model suggests none of these",
    };
    assert_eq!(text_of(&c, "#suggestion").await, expected(&first));
    shot(&c, "workbench-multi-suggestion").await;
    // `0` is none of these; Enter answers and brings the other item.
    press(&c, '0').await;
    press(&c, '\u{E007}').await;
    let second = next_item(&c, &first).await;
    assert_ne!(first, second);
    assert_eq!(text_of(&c, "#suggestion").await, expected(&second));
    c.close().await.unwrap();
    app.stop().await;
}
