//! Budgets (issue #22): a rule that is cheap on paper but costly at run time fails closed
//! within its budget while the server keeps answering; large batches are decided off the
//! async workers; per-key rate limits; imported rows held to the per-item limits.

use std::sync::Arc;

use flywheel_server::ManualClock;
use flywheel_server::app::ratelimit::{RateLimits, RateSettings};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// One comprehension over a payload list passes the static cost, but `x in payload.xs`
/// scans the list: ~5·10⁹ comparisons for 99,000 values. The rule runs out of its budget,
/// the item goes to review with `rule_budget_exceeded` naming the rule — never auto — and
/// `/healthz` is answered meanwhile.
async fn a_rule_over_its_run_time_budget_fails_closed(db: Db) {
    let app = spawn_app(&db).await;
    let policy = json!({"rules": [
        {"name": "quadratic", "when": "has(payload.xs) && payload.xs.all(x, x in payload.xs)", "action": "auto", "label": "ham"},
        {"name": "confident", "when": "confidence >= 0.9", "action": "auto"}]});
    // Creating the project checks the static cost: it passes.
    let svc = app.project("spam", policy).await;
    let xs: Vec<u32> = (0..99_000).collect();
    let big = json!({"external_id": "big", "payload": {"text": "x", "xs": xs},
        "prediction": {"model": "m", "scores": {"ham": 0.01, "spam": 0.99}}});
    let submit = app.post("/v1/projects/spam/items", &svc, json!({"items": [big]}));
    let health = async {
        let resp = app.http.get(format!("{}/healthz", app.base)).send().await.unwrap();
        resp.status()
    };
    let ((s, v), health) = tokio::join!(submit, health);
    assert_eq!(health, StatusCode::OK, "the server answers while the rule runs");
    assert_eq!(s, StatusCode::OK, "{v}");
    let d = &v["decisions"][0];
    assert_eq!(
        (d["outcome"].as_str(), d["rule"].as_str()),
        (Some("review"), Some("rule_budget_exceeded")),
        "{d}"
    );
    let reason = d["reasons"].as_array().unwrap().last().unwrap().as_str().unwrap();
    assert!(reason.starts_with("rule_budget_exceeded: rule 'quadratic'"), "{reason}");
    let (s, _) = app.get("/healthz", "").await;
    assert_eq!(s, StatusCode::OK);

    // A batch above the blocking threshold is decided off the async workers, each item by
    // the rules as one alone would be.
    let n = app.state.rule_budget.blocking_batch + 1;
    let items: Vec<_> = (0..n)
        .map(|i| {
            json!({"external_id": format!("b{i}"), "payload": {"text": "x", "xs": [1, 2, 3]},
                "prediction": {"model": "m", "scores": {"ham": 0.5, "spam": 0.5}}})
        })
        .collect();
    let (s, v) = app.post("/v1/projects/spam/items", &svc, json!({"items": items})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let decisions = v["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), n);
    assert!(
        decisions
            .iter()
            .all(|d| d["outcome"] == "auto" && d["rule"] == "quadratic"),
        "{v}"
    );
    app.stop().await;
}

/// A key over its role's rate gets 429 `rate_limited` with `Retry-After`; another key of
/// the same role, and a key of another role, are not slowed.
async fn a_key_over_its_rate_limit_gets_429_and_others_do_not(db: Db) {
    let app = spawn_setup(
        &db,
        Arc::new(ManualClock::new(START_MS)),
        flywheel_server::ServeOptions::default(),
        |state| {
            state.rate_limits = RateLimits::new(RateSettings {
                admin: 0,
                service: 1,
                reviewer: 1,
            })
        },
    )
    .await;
    let a = app.project("pa", example_policy()).await;
    let b = app.project("pb", example_policy()).await;
    let r1 = app.reviewer("r1", &[1], &["pa"]).await;
    // The burst is twice the rate: within six calls in a row, one is refused.
    let mut refused = None;
    for _ in 0..6 {
        let resp = app
            .http
            .get(format!("{}/v1/projects/pa/labels", app.base))
            .bearer_auth(&a)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            refused = Some((retry, resp.json::<serde_json::Value>().await.unwrap()));
            break;
        }
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let (retry, v) = refused.expect("a key past its burst is refused");
    assert!(retry >= 1, "{retry}");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    // Others are not slowed: another service key, a reviewer, the admin (no limit).
    let (s, v) = app.get("/v1/projects/pb/labels", &b).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app.post("/v1/projects/pa/claim", &r1, json!({})).await;
    assert!(s == StatusCode::OK || s == StatusCode::NO_CONTENT, "{s} {v}");
    for _ in 0..20 {
        let (s, _) = app.get("/v1/projects/pa", ADMIN).await;
        assert_eq!(s, StatusCode::OK);
    }
    app.stop().await;
}

/// An imported row over the per-item limits refuses the file, naming its line, and
/// nothing of it is written.
async fn imported_rows_are_held_to_the_item_limits(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let ok = json!({"external_id": "i1", "payload": {"text": "fine"}});
    let many = json!({"external_id": "i2", "payload": {"xs": (0..100_001).collect::<Vec<u32>>()}});
    let deep = json!({"external_id": "i3", "payload": (0..40).fold(json!(1), |v, _| json!({"a": v}))});
    let long = json!({"external_id": "i4", "payload": {"text": "x".repeat(1024 * 1024 + 1)}});
    for (row, status, field) in [
        (many, StatusCode::UNPROCESSABLE_ENTITY, "line 3: payload"),
        (deep, StatusCode::UNPROCESSABLE_ENTITY, "line 3: payload"),
        (long, StatusCode::PAYLOAD_TOO_LARGE, "line 3: payload"),
    ] {
        let file = format!("{ok}\n\n{row}\n");
        let (s, v) = app.raw_post("/v1/projects/spam/import?format=jsonl", &svc, &file).await;
        assert_eq!(
            (s, v["error"]["field"].as_str(), v["error"]["line"].as_u64()),
            (status, Some(field), Some(3)),
            "{v}"
        );
    }
    let (s, _) = app.get("/v1/projects/spam/items/i1", &svc).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing of a refused file is written");
    // Within the limits, the same file imports.
    let (s, v) = app
        .raw_post("/v1/projects/spam/import?format=jsonl", &svc, &format!("{ok}\n"))
        .await;
    assert_eq!((s, v["items"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    app.stop().await;
}

on_both_backends!(
    a_rule_over_its_run_time_budget_fails_closed,
    a_key_over_its_rate_limit_gets_429_and_others_do_not,
    imported_rows_are_held_to_the_item_limits,
);
