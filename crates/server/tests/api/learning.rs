//! The learning loop: the built-in model and its thresholds, back-tests, and the monitors
//! that write events when a level is crossed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use std::sync::Arc;

use flywheel_server::{Clock, ManualClock};

use crate::helpers::*;

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

/// `POST /v1/projects/{p}/model/train` on a server without the background learner
/// (`ServeOptions`): the model learns only when asked, and the call answers what
/// `GET …/model` then shows.
async fn training_on_demand_trains_through_the_feed_and_recalibrates(db: Db) {
    let options = flywheel_server::ServeOptions {
        background_learning: false,
        ..Default::default()
    };
    let app = spawn_with(&db, Arc::new(ManualClock::new(START_MS)), options).await;
    let svc = app
        .project("spam", json!({
            "rules": [
                {"name": "calibrated", "when": "label in thresholds && confidence >= thresholds[label]", "action": "auto"},
                {"name": "review", "when": "true", "action": "review", "queue": "q"}],
            "model": {"enabled": true, "bits": 16},
            "thresholds": {"target_precision": 0.6, "min_evidence": 10}}))
        .await;
    let text = |i: usize| {
        if i.is_multiple_of(2) {
            format!("WIN a FREE prize now {i} claim cash")
        } else {
            format!("see you at lunch {i} tomorrow")
        }
    };
    let truth = |i: usize| if i.is_multiple_of(2) { "spam" } else { "ham" };
    let r = app.reviewer("r", &[1], &["spam"]).await;
    let answer_all = async |from: usize, to: usize| {
        let items: Vec<Value> = (from..to)
            .map(|i| json!({"external_id": format!("x{i}"), "payload": {"text": text(i)}}))
            .collect();
        app.submit("spam", &svc, Value::Array(items)).await;
        while let Some(t) = app.claim("spam", &r, None).await {
            let i: usize = t["item"]["external_id"].as_str().unwrap()[1..].parse().unwrap();
            app.answer(&r, &t, &format!("a{i}"), json!({"label": truth(i)})).await;
        }
    };
    answer_all(0, 60).await;
    // Nothing trains in the background, however long one waits.
    tokio::time::sleep(flywheel_server::LEARN_EVERY * 3).await;
    let (_, m) = app.get("/v1/projects/spam/model", &svc).await;
    assert_eq!(m["examples_seen"], 0, "{m}");

    let (s, v) = app.post("/v1/projects/spam/model/train", &svc, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "training is the admin's: {v}");
    let (s, trained) = app.post("/v1/projects/spam/model/train", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{trained}");
    let seen = trained["examples_seen"].as_u64().unwrap();
    assert!(seen > 40, "trained on the human labels (a tenth held back): {trained}");
    let (_, m) = app.get("/v1/projects/spam/model", &svc).await;
    assert_eq!(trained, m, "the answer is what GET …/model shows");
    // A second call finds nothing new: the same model.
    let (_, again) = app.post("/v1/projects/spam/model/train", ADMIN, json!({})).await;
    assert_eq!(again["examples_seen"].as_u64(), Some(seen), "{again}");

    // Items scored by the trained model earn thresholds at the next call, not before.
    answer_all(60, 160).await;
    let (_, st) = app.get("/v1/projects/spam/stats", ADMIN).await;
    assert!(st["thresholds"].as_object().unwrap().is_empty(), "{st}");
    let (_, trained) = app.post("/v1/projects/spam/model/train", ADMIN, json!({})).await;
    let thresholds = trained["thresholds"].as_object().unwrap();
    assert!(
        thresholds.contains_key("spam") && thresholds.contains_key("ham"),
        "thresholds earned: {trained}"
    );
    assert!(trained["examples_seen"].as_u64().unwrap() > seen);
    assert!(
        app.events("spam")
            .await
            .iter()
            .any(|e| e["kind"] == "thresholds.changed")
    );
    let items: Vec<Value> = (200..220)
        .map(|i| json!({"external_id": format!("x{i}"), "payload": {"text": text(i)}}))
        .collect();
    let d = app.submit("spam", &svc, Value::Array(items)).await;
    let auto: Vec<_> = d.iter().filter(|d| d["outcome"] == "auto").collect();
    assert!(!auto.is_empty(), "the thresholds are in force: {d:?}");
    assert!(auto.iter().all(|d| {
        let i: usize = d["external_id"].as_str().unwrap()[1..].parse().unwrap();
        d["label"] == truth(i)
    }));

    let (s, _) = app.post("/v1/projects/none/model/train", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.project(
        "plain",
        json!({"rules": [{"name": "all", "when": "true", "action": "auto", "label": "ham"}]}),
    )
    .await;
    let (s, v) = app.post("/v1/projects/plain/model/train", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no built-in model: {v}");
    app.stop().await;
}

/// The distress-rate monitor: the share of recent decisions made by the distress rules
/// crosses its level and writes a `monitor` event; a distress rule the policy lacks is
/// refused naming the field.
async fn the_distress_rate_monitor_fires_on_distress_decisions(db: Db) {
    let app = spawn_app(&db).await;
    let policy = |rules: Value| {
        json!({"rules": [
            {"name": "distress", "when": "payload.text.matches('(?i)chest pain')", "action": "review", "queue": "nurse", "priority": 100},
            {"name": "all", "when": "true", "action": "review", "queue": "q"}],
            "monitors": {"distress_rate": 0.3, "distress_rules": rules, "window": 10}})
    };
    let (s, v) = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "bad", "labels": ["ham", "spam"], "policy": policy(json!(["distress", "nope"]))}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "policy.monitors.distress_rules[1]", "{v}");
    let svc = app.project("triage", policy(json!(["distress"]))).await;
    let get = async || {
        let (_, m) = app.get("/v1/projects/triage/monitors", &svc).await;
        m["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "distress_rate")
            .unwrap()
            .clone()
    };
    let items: Vec<Value> = (0..8).map(|i| item(&format!("x{i}"), "a cold", None)).collect();
    app.submit("triage", &svc, Value::Array(items)).await;
    let d = get().await;
    assert_eq!(
        (d["value"].as_f64(), d["firing"].as_bool()),
        (Some(0.0), Some(false)),
        "{d}"
    );
    // Four in distress among the last ten decisions: 0.4, past the level.
    let items: Vec<Value> = (8..12)
        .map(|i| item(&format!("x{i}"), "crushing chest pain", None))
        .collect();
    app.submit("triage", &svc, Value::Array(items)).await;
    let d = get().await;
    assert_eq!(
        (d["value"].as_f64(), d["firing"].as_bool()),
        (Some(0.4), Some(true)),
        "{d}"
    );
    let events = app.events("triage").await;
    assert!(
        events.iter().any(|e| e["kind"] == "monitor"
            && e["data"]["monitor"] == "distress_rate"
            && e["data"]["state"] == "firing"),
        "{events:?}"
    );
}

/// `"model": {"retrain": "weekly"}` under a manual clock: the model does not change between
/// scheduled times, however often training is asked for, and does at each Monday 00:00
/// UTC — through `POST …/model/train` and through the background learner alike.
async fn scheduled_retraining_changes_the_model_only_at_scheduled_times(db: Db) {
    const DAY: i64 = 86_400_000;
    const WEEK: i64 = 7 * DAY;
    // The first Monday 00:00 UTC after the start (Unix time 0 was a Thursday).
    let monday = START_MS + (WEEK - (START_MS - 4 * DAY).rem_euclid(WEEK));
    let clock = Arc::new(ManualClock::new(START_MS));
    let options = flywheel_server::ServeOptions {
        background_learning: false,
        ..Default::default()
    };
    let app = spawn_with(&db, clock.clone(), options).await;
    let (s, v) = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "bad", "labels": ["ham", "spam"], "policy": {
                "rules": [{"name": "all", "when": "true", "action": "review"}],
                "model": {"retrain": "monthly"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "policy.model.retrain", "{v}");
    let svc = app
        .project("spam", json!({
            "rules": [
                {"name": "calibrated", "when": "label in thresholds && confidence >= thresholds[label]", "action": "auto"},
                {"name": "review", "when": "true", "action": "review", "queue": "q"}],
            "model": {"enabled": true, "bits": 16, "retrain": "weekly"},
            "thresholds": {"target_precision": 0.6, "min_evidence": 10}}))
        .await;
    let r = app.reviewer("r", &[1], &["spam"]).await;
    let answer_all = async |from: usize, to: usize| {
        let items: Vec<Value> = (from..to)
            .map(|i| {
                let text = if i.is_multiple_of(2) {
                    "WIN a FREE prize now claim cash"
                } else {
                    "see you at lunch tomorrow"
                };
                json!({"external_id": format!("x{i}"), "payload": {"text": format!("{text} {i}")}})
            })
            .collect();
        app.submit("spam", &svc, Value::Array(items)).await;
        while let Some(t) = app.claim("spam", &r, None).await {
            let i: usize = t["item"]["external_id"].as_str().unwrap()[1..].parse().unwrap();
            let label = if i.is_multiple_of(2) { "spam" } else { "ham" };
            app.answer(&r, &t, &format!("a{i}"), json!({"label": label})).await;
        }
    };
    let train = async || {
        let (s, m) = app.post("/v1/projects/spam/model/train", ADMIN, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{m}");
        (m["version"].as_u64().unwrap(), m["examples_seen"].as_u64().unwrap())
    };
    answer_all(0, 60).await;
    assert_eq!(train().await, (0, 0), "the labels wait for the schedule");
    clock.advance_ms(monday - 1 - clock.now_ms());
    assert_eq!(
        train().await,
        (0, 0),
        "a millisecond before Monday: still the same model"
    );
    clock.advance_ms(1);
    let (v1, seen) = train().await;
    assert!(
        v1 >= 1 && seen > 40,
        "Monday: trained and stored as a version ({v1}, {seen})"
    );
    answer_all(60, 120).await;
    clock.advance_ms(6 * DAY);
    assert_eq!(train().await, (v1, seen), "the rest of the week: the same model");
    let (_, m) = app.get("/v1/projects/spam/model", &svc).await;
    assert_eq!(m["examples_seen"].as_u64(), Some(seen));
    clock.advance_ms(DAY);
    let (v2, seen2) = train().await;
    assert!(v2 > v1 && seen2 > seen, "the next Monday: ({v2}, {seen2})");
    app.stop().await;
}

/// The background learner keeps a project's schedule too, on the server's clock.
async fn the_learner_retrains_on_the_schedule(db: Db) {
    const WEEK: i64 = 7 * 86_400_000;
    let clock = Arc::new(ManualClock::new(START_MS));
    let app = spawn_with(&db, clock.clone(), flywheel_server::ServeOptions::default()).await;
    let svc2 = app
        .project(
            "weekly",
            json!({
            "rules": [{"name": "review", "when": "true", "action": "review", "queue": "q"}],
            "model": {"enabled": true, "bits": 16, "retrain": "weekly"}}),
        )
        .await;
    let r2 = app.reviewer("r2", &[1], &["weekly"]).await;
    let items: Vec<Value> = (0..30)
        .map(|i| json!({"external_id": format!("w{i}"), "payload": {"text": format!("message {i}")}}))
        .collect();
    app.submit("weekly", &svc2, Value::Array(items)).await;
    let mut n = 0;
    while let Some(t) = app.claim("weekly", &r2, None).await {
        app.answer(
            &r2,
            &t,
            &format!("b{n}"),
            json!({"label": if n % 2 == 0 { "spam" } else { "ham" }}),
        )
        .await;
        n += 1;
    }
    tokio::time::sleep(flywheel_server::LEARN_EVERY * 4).await;
    let (_, m) = app.get("/v1/projects/weekly/model", &svc2).await;
    assert_eq!(m["examples_seen"], 0, "mid-week, the learner waits: {m}");
    clock.advance_ms(WEEK);
    let mut seen = 0;
    for _ in 0..50 {
        tokio::time::sleep(flywheel_server::LEARN_EVERY).await;
        let (_, m) = app.get("/v1/projects/weekly/model", &svc2).await;
        seen = m["examples_seen"].as_u64().unwrap();
        if seen > 0 {
            break;
        }
    }
    assert!(seen > 20, "after the boundary the learner trained: {seen}");
    app.stop().await;
}

on_both_backends!(
    the_distress_rate_monitor_fires_on_distress_decisions,
    scheduled_retraining_changes_the_model_only_at_scheduled_times,
    the_learner_retrains_on_the_schedule,
    the_built_in_model_learns_from_human_labels_and_earns_thresholds,
    training_on_demand_trains_through_the_feed_and_recalibrates,
    a_policy_can_be_backtested_on_human_labels,
    monitors_fire_and_write_events,
);
