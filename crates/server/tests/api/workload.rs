//! `GET /v1/projects/{p}/workload` over a history whose figures can be checked by hand:
//! three reviewers, claim and answer times set by the manual clock, failure categories, a
//! disagreement that goes to adjudication, an escalation, and one answer days later.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

on_both_backends!(
    workload_figures_on_a_known_history,
    workload_window_and_access_are_checked
);

fn policy() -> Value {
    json!({"rules": [{"name": "all", "when": "has_prediction", "action": "review", "queue": "standard", "tier": 1, "overlap": 2}],
      "audit_rate": 0.0, "lease_seconds": 300,
      "workbench": {"failure_categories": ["sarcasm", "slang"]}})
}

/// `reviewer` claims the next task, works `seconds` on it, and answers with `answer`.
async fn work(app: &TestApp, key: &str, item: &str, seconds: i64, answer: Value) -> Value {
    let t = app.claim("spam", key, None).await.expect("a task");
    assert_eq!(t["item"]["external_id"], item, "{t}");
    app.clock.advance_ms(seconds * 1000);
    let (s, v) = app.answer(key, &t, &format!("r{}", rand_id()), answer).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn close(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-9)
}

/// Checks one row: key, answers, seconds, share of `total`, median, p90, disagreement and
/// escalation rates.
#[allow(clippy::too_many_arguments)]
fn row(
    r: &Value,
    key: Option<&str>,
    answers: u64,
    seconds: f64,
    total: f64,
    median: f64,
    p90: f64,
    dis: f64,
    esc: f64,
) {
    assert_eq!(r["key"].as_str(), key, "{r}");
    assert_eq!(r["answers"].as_u64(), Some(answers), "{r}");
    assert!(close(&r["seconds"], seconds), "seconds {r}");
    assert!(close(&r["time_share"], seconds / total), "time_share {r}");
    assert!(close(&r["median_seconds"], median), "median {r}");
    assert!(close(&r["p90_seconds"], p90), "p90 {r}");
    assert!(close(&r["disagreement_rate"], dis), "disagreement {r}");
    assert!(close(&r["escalation_rate"], esc), "escalation {r}");
}

async fn workload_figures_on_a_known_history(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", policy()).await;
    app.submit(
        "spam",
        &svc,
        json!([
            item("a", "oh great", Some(0.5)),
            item("b", "win", Some(0.6)),
            item("c", "hmm", Some(0.4))
        ]),
    )
    .await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    let bob = app.reviewer("bob", &[1], &["spam"]).await;
    let lee = app.reviewer("lee", &[2], &["spam"]).await;

    // a: ann spam (40 s) and bob ham (50 s), both tagging sarcasm: a tie, adjudicated at
    // tier 2 by lee, spam (60 s, sarcasm). b: spam twice, 20 s each. c: ann escalates after
    // 5 s; lee answers ham (40 s).
    work(
        &app,
        &ann,
        "a",
        40,
        json!({"label": "spam", "failure_category": "sarcasm"}),
    )
    .await;
    let v = work(
        &app,
        &bob,
        "a",
        50,
        json!({"label": "ham", "failure_category": "sarcasm"}),
    )
    .await;
    assert_eq!(v["outcome"], "adjudicate");
    work(&app, &ann, "b", 20, json!({"label": "spam"})).await;
    work(&app, &bob, "b", 20, json!({"label": "spam"})).await;
    work(&app, &ann, "c", 5, json!({"escalate": {"reason": "unsure"}})).await;
    work(
        &app,
        &lee,
        "a",
        60,
        json!({"label": "spam", "failure_category": "sarcasm"}),
    )
    .await;
    work(&app, &lee, "c", 40, json!({"label": "ham"})).await;
    let first_day_end = app.clock_now();

    // Two days later, one more answer: only it is in the default window (the last 24 h).
    app.clock.advance_ms(2 * 86_400_000);
    app.submit("spam", &svc, json!([item("d", "later", Some(0.5))])).await;
    work(&app, &ann, "d", 7, json!({"label": "ham"})).await;
    app.clock.advance_ms(1000); // `until` (now) is exclusive
    let (s, v) = app.get("/v1/projects/spam/workload", &svc).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["answers"], 1, "{v}");
    assert!(close(&v["seconds"], 7.0));
    row(&v["reviewer"][0], Some("ann"), 1, 7.0, 7.0, 7.0, 7.0, 0.0, 0.0);
    assert_eq!(v["label"][0]["key"], Value::Null, "d is not resolved yet (overlap 2)");
    assert_eq!(v["findings"], json!([]));

    // The first day, asked by RFC 3339 and by epoch ms: the seven answers.
    let since = flywheel_server::http::ts(START_MS);
    let path = format!("/v1/projects/spam/workload?since={since}&until={}", first_day_end + 1);
    let (s, v) = app.get(&path, ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["since"], since.as_str());
    assert_eq!(v["answers"], 7, "{v}");
    let total = 235.0;
    assert!(close(&v["seconds"], total));

    let cats = v["failure_category"].as_array().unwrap();
    assert_eq!(cats.len(), 2, "{v}");
    row(&cats[0], Some("sarcasm"), 3, 150.0, total, 50.0, 58.0, 2.0 / 3.0, 0.0);
    row(&cats[1], None, 4, 85.0, total, 20.0, 34.0, 0.0, 0.25);

    let labels = v["label"].as_array().unwrap();
    assert_eq!(labels.len(), 2, "{v}");
    row(&labels[0], Some("spam"), 5, 190.0, total, 40.0, 56.0, 0.4, 0.0);
    row(&labels[1], Some("ham"), 2, 45.0, total, 22.5, 36.5, 0.0, 0.5);

    assert_eq!(v["queue"].as_array().unwrap().len(), 1);
    row(
        &v["queue"][0],
        Some("standard"),
        7,
        235.0,
        total,
        40.0,
        54.0,
        2.0 / 7.0,
        1.0 / 7.0,
    );

    let tiers = v["tier"].as_array().unwrap();
    assert_eq!(tiers.len(), 2);
    row(&tiers[0], Some("1"), 5, 135.0, total, 20.0, 46.0, 0.4, 0.2);
    row(&tiers[1], Some("2"), 2, 100.0, total, 50.0, 58.0, 0.0, 0.0);

    let reviewers = v["reviewer"].as_array().unwrap();
    assert_eq!(reviewers.len(), 3);
    row(&reviewers[0], Some("lee"), 2, 100.0, total, 50.0, 58.0, 0.0, 0.0);
    row(&reviewers[1], Some("bob"), 2, 70.0, total, 35.0, 47.0, 0.5, 0.0);
    row(
        &reviewers[2],
        Some("ann"),
        3,
        65.0,
        total,
        20.0,
        36.0,
        1.0 / 3.0,
        1.0 / 3.0,
    );

    // Tier 1: sarcasm took 90 of 135 s (67%) for 2 of 5 answers, median 45 s against 20 s.
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{v}");
    let f = &findings[0];
    assert_eq!(
        (f["tier"].as_u64(), f["dimension"].as_str(), f["key"].as_str()),
        (Some(1), Some("failure_category"), Some("sarcasm"))
    );
    assert!(
        close(&f["time_share"], 90.0 / 135.0) && close(&f["answer_share"], 0.4),
        "{f}"
    );
    assert!(
        close(&f["median_seconds"], 45.0) && close(&f["rest_median_seconds"], 20.0),
        "{f}"
    );
    assert_eq!(
        f["text"],
        "tier 1: 67% of time on `sarcasm` (failure category) for 40% of answers, median 45 s against 20 s for the rest"
    );

    // The same window in epoch ms gives the same report.
    let (_, by_ms) = app
        .get(
            &format!(
                "/v1/projects/spam/workload?since={START_MS}&until={}",
                first_day_end + 1
            ),
            &svc,
        )
        .await;
    assert_eq!(by_ms, v);

    // The console's admin session reads the report too, and the dashboard shows the last 7
    // days' bars (the chosen window in bold) with the findings in words: with d's answer,
    // sarcasm has 90 of tier 1's 142 s for 2 of its 6 answers.
    let (cookie, _) = crate::console::sign_in(&app, &[("key", ADMIN)]).await.unwrap();
    let get = |path: String| {
        app.http
            .get(format!("{}{path}", app.base))
            .header("cookie", &cookie)
            .send()
    };
    let r = get("/v1/projects/spam/workload".into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["answers"], 1);
    let html = get("/ui/projects/spam?window=7d".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<strong>7 d</strong>"), "{html}");
    assert!(
        html.contains("tier 1: 63% of time on `sarcasm` (failure category) for 33% of answers"),
        "{html}"
    );
    let table = html
        .split("id=\"workload-failure_category\"")
        .nth(1)
        .expect("the failure category bars");
    let first_key = table
        .split("<td class=\"key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert_eq!(first_key, "sarcasm", "bars by time share");
    // 150 of 242 s: a bar of 0.62 × 240 px.
    assert!(
        table.contains(&format!("<rect width=\"{:.1}\"", 150.0 / 242.0 * 240.0)),
        "{table}"
    );
    let day = get("/ui/projects/spam".into()).await.unwrap().text().await.unwrap();
    assert!(
        day.contains("<strong>24 h</strong>") && day.contains("Nothing stands out."),
        "{day}"
    );
    app.stop().await;
}

async fn workload_window_and_access_are_checked(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", policy()).await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=soon", "until"),
        ("since=2000&until=1000", "since"),
        ("since=1000&until=1000", "since"),
        ("since=0&until=4000000000000", "since"),
    ] {
        let (s, v) = app.get(&format!("/v1/projects/spam/workload?{query}"), &svc).await;
        assert_eq!(
            (s, v["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{query}: {v}"
        );
    }
    let (s, v) = app.get("/v1/projects/spam/workload", &ann).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a reviewer's key may not read it: {v}");
    let (s, _) = app.get("/v1/projects/spam/workload", "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app.get("/v1/projects/nope/workload", ADMIN).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // No answers: empty rows, nothing stands out.
    let (s, v) = app.get("/v1/projects/spam/workload", &svc).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["answers"].as_u64(), v["findings"].clone()), (Some(0), json!([])));
    for d in ["failure_category", "label", "queue", "tier", "reviewer"] {
        assert_eq!(v[d], json!([]), "{d}");
    }
    app.stop().await;
}
