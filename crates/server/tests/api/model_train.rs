//! `POST /v1/projects/{p}/model/train` on a server without the background learner
//! (`ServeOptions`): the model learns only when asked, and the call answers what
//! `GET …/model` then shows. On both backends.

use super::*;

/// A server on `db` whose built-in models learn only through the train endpoint.
async fn spawn_without_learner(db: &Db) -> TestApp {
    let clock = Arc::new(ManualClock::new(START_MS));
    let store = db.store().await;
    let state = Arc::new(AppState::new(store, clock.clone()));
    flywheel_server::bootstrap_admin(&state, Some(ADMIN)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let st = state.clone();
    let options = flywheel_server::ServeOptions {
        background_learning: false,
    };
    let server = tokio::spawn(async move {
        flywheel_server::serve_with(
            listener,
            st,
            async {
                let _ = rx.await;
            },
            options,
        )
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

async fn training_on_demand_trains_through_the_feed_and_recalibrates(db: Db) {
    let app = spawn_without_learner(&db).await;
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

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn training_on_demand_trains_through_the_feed_and_recalibrates() {
        super::training_on_demand_trains_through_the_feed_and_recalibrates(super::Db::sqlite()).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn training_on_demand_trains_through_the_feed_and_recalibrates() {
        if let Some(db) = super::Db::postgres("training_on_demand_trains").await {
            super::training_on_demand_trains_through_the_feed_and_recalibrates(db.clone()).await;
            db.cleanup().await;
        }
    }
}
