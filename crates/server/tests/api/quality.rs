//! Quality control: consensus (majority, dynamic overlap, Dawid–Skene), gold and holds,
//! and the agreement figures.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

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

on_both_backends!(
    overlap_three_with_a_careless_reviewer_gets_the_right_label,
    dynamic_overlap_asks_for_more_until_confident,
    a_spammer_is_held_after_enough_gold_and_accurate_reviewers_are_not,
    agreement_is_computed_over_the_reviews,
    dawid_skene_consensus_learns_who_to_trust,
);
