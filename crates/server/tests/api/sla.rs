//! SLA deadlines through the API: a route's deadline on the decision, the SLA worker's
//! events and actions under the manual clock, the stats' SLA figures per queue, and the
//! policy's SLA fields checked.

use flywheel_server::workers::SlaWorker;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn sla_policy() -> Value {
    let mut policy = example_policy();
    // The urgent rule's own SLA wins over its queue's.
    policy["rules"][0]["sla_seconds"] = json!(300);
    policy["sla_seconds"] = json!({"standard": 100, "urgent": 3600});
    policy["sla_action"] = json!({"standard": "escalate", "urgent": "auto"});
    policy["warn_before_seconds"] = json!({"standard": 30});
    policy
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["kind"] == kind).count()
}

async fn queue(app: &TestApp, key: &str, name: &str) -> Value {
    let (s, v) = app.get("/v1/projects/spam/stats", key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["queues"][name].clone()
}

async fn sla_deadlines_events_actions_and_stats(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", sla_policy()).await;
    let decisions = app
        .submit(
            "spam",
            &svc,
            json!([
                item("u", "I will hurt myself", Some(0.6)),
                item("s1", "b", Some(0.5)),
                item("s2", "c", Some(0.7))
            ]),
        )
        .await;
    assert_eq!(
        (
            &decisions[0]["route"]["sla_seconds"],
            &decisions[0]["route"]["warn_before_seconds"]
        ),
        (&json!(300), &json!(60)),
        "the rule's SLA, warned 20% before"
    );
    assert_eq!(
        (
            &decisions[1]["route"]["sla_seconds"],
            &decisions[1]["route"]["warn_before_seconds"]
        ),
        (&json!(100), &json!(30)),
        "the queue's SLA and warning"
    );
    let (_, s1) = app.get("/v1/projects/spam/items/s1", &svc).await;
    assert!(s1["tasks"][0]["due_at"].is_string(), "{s1}");
    let q = queue(&app, &svc, "standard").await;
    assert_eq!(
        (&q["open"], &q["due_soon"], &q["overdue"], &q["breached_total"]),
        (&json!(2), &json!(0), &json!(0), &json!(0))
    );
    assert!(q["answered_within_sla_1h"].is_null() && q["answered_within_sla_24h"].is_null());

    let worker = SlaWorker {
        state: app.state.clone(),
        batch: 100,
    };
    // 70 s: the standard tasks are warned.
    app.clock.advance_ms(70_000);
    worker.try_run_once(app.clock_now()).await.unwrap();
    let events = app.events("spam").await;
    assert_eq!(count(&events, "sla.warning"), 2);
    assert_eq!(queue(&app, &svc, "standard").await["due_soon"], 2);

    // 100 s: both breach and escalate to tier 2 with their priority raised.
    app.clock.advance_ms(30_000);
    let t1 = app.reviewer("one", &[1], &["spam"]).await;
    let t2 = app.reviewer("two", &[2], &["spam"]).await;
    worker.try_run_once(app.clock_now()).await.unwrap();
    let events = app.events("spam").await;
    let breaches: Vec<&Value> = events.iter().filter(|e| e["kind"] == "sla.breached").collect();
    assert_eq!(breaches.len(), 2);
    assert!(
        breaches
            .iter()
            .all(|b| b["data"]["applied"] == "escalate" && b["data"]["to_tier"] == 2)
    );
    let q = queue(&app, &svc, "standard").await;
    assert_eq!(
        (&q["due_soon"], &q["overdue"], &q["breached_total"]),
        (&json!(0), &json!(0), &json!(2)),
        "escalated with a new deadline"
    );
    assert!(app.claim("spam", &t1, Some("standard")).await.is_none());
    let task = app.claim("spam", &t2, Some("standard")).await.expect("tier 2 takes it");
    let (s, v) = app.answer(&t2, &task, "r1", json!({"label": "spam"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let q = queue(&app, &svc, "standard").await;
    assert_eq!(q["answered_within_sla_1h"], 1.0, "answered by its new deadline");

    // 300 s: the urgent task (warned at 240 s) breaches and is resolved with the
    // model's label.
    app.clock.advance_ms(200_000);
    worker.try_run_once(app.clock_now()).await.unwrap();
    let (s, u) = app.get("/v1/projects/spam/items/u", &svc).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(
        (
            &u["resolution"]["label"],
            &u["resolution"]["source"],
            &u["resolution"]["method"]
        ),
        (&json!("spam"), &json!("auto"), &json!("sla_expired"))
    );
    let feed = app.all_labels(&svc).await;
    assert!(feed.iter().any(|l| l["external_id"] == "u" && l["source"] == "auto"));
    assert_eq!(queue(&app, &svc, "urgent").await["breached_total"], 1);

    // Once per task, however often the worker runs.
    app.clock.advance_ms(1_000_000);
    worker.try_run_once(app.clock_now()).await.unwrap();
    worker.try_run_once(app.clock_now()).await.unwrap();
    let events = app.events("spam").await;
    assert_eq!((count(&events, "sla.warning"), count(&events, "sla.breached")), (3, 3));
    app.stop().await;
}

async fn sla_policy_fields_are_checked(db: Db) {
    let app = spawn_app(&db).await;
    let cases = [
        (json!({"sla_action": {"standard": "later"}}), "sla_action.standard"),
        (json!({"sla_action": {"Bad Queue": "none"}}), "sla_action.Bad Queue"),
        (
            json!({"warn_before_seconds": {"Bad Queue": 5}}),
            "warn_before_seconds.Bad Queue",
        ),
        (json!({"sla_seconds": {"standard": 0}}), "sla_seconds.standard"),
    ];
    for (i, (extra, field)) in cases.into_iter().enumerate() {
        let mut policy = example_policy();
        for (k, v) in extra.as_object().unwrap() {
            policy[k] = v.clone();
        }
        let (s, v) = app
            .post(
                "/v1/projects",
                ADMIN,
                json!({"name": format!("p{i}"), "labels": ["ham", "spam"], "policy": policy}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let got = v["error"]["field"].as_str().unwrap_or_default();
        assert!(got.ends_with(field), "{got} for {field}");
    }
    // An auto rule has no deadline.
    let mut policy = example_policy();
    policy["rules"][1]["sla_seconds"] = json!(10);
    let (s, v) = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "auto", "labels": ["ham", "spam"], "policy": policy}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["field"].as_str().unwrap().ends_with("rules[1].sla_seconds"),
        "{v}"
    );
    app.stop().await;
}

on_both_backends!(sla_deadlines_events_actions_and_stats, sla_policy_fields_are_checked);
