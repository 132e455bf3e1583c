//! Multi-label projects (issue #17): agreement per label and over the answered sets, and
//! the built-in model learning one-vs-rest from the label feed's sets.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Creates multi-label project `spam` with `labels` and `policy`, and a service key for it.
async fn multi_project(app: &TestApp, labels: &[&str], policy: Value) -> String {
    app.project_from(json!({"name": "spam", "labels": labels, "label_mode": "multi", "policy": policy}))
        .await
}

fn close(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-9)
}

/// The hand-checked case of `flywheel_core::multi_agreement`'s tests, through the API:
///
/// ```text
///        w1               w2
/// t1   {hate,violence}  {hate}
/// t2   {violence}       {violence}
/// t3   {}               {hate}
/// ```
///
/// MASI: δ({hate,violence},{hate}) = δ(…,{violence}) = 1 − ½·⅔ = ⅔, other distinct pairs
/// disjoint (1). Observed 2·⅔ + 2 = 10/3; expected 2·(4/3 + 1 + 4 + 2 + 2) = 70/3 (over
/// {h,v} ×1, {h} ×2, {v} ×2, {} ×1); α = 1 − 5·(10/3)/(70/3) = 2/7 (NLTK 3.10 agrees).
/// Per label (yes/no), hate: (1,1) (0,0) (0,1): α = 1 − 5·2/18 = 4/9, Fleiss' κ =
/// (⅔ − ½)/½ = ⅓; violence: (1,0) (1,1) (0,0), the same.
async fn multi_label_agreement_per_label_and_over_sets(db: Db) {
    let app = spawn_app(&db).await;
    let svc = multi_project(
        &app,
        &["hate", "violence"],
        json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": 2}],
               "consensus": {"method": "majority", "min_confidence": 0.0, "max_overlap": 2}}),
    )
    .await;
    let items: Vec<Value> = (1..=3)
        .map(|i| json!({"external_id": format!("t{i}"), "payload": {"text": format!("item {i}")}}))
        .collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let (s, empty) = app.get("/v1/projects/spam/agreement", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{empty}");
    assert_eq!(
        (&empty["label_mode"], &empty["answers"], &empty["distance"]),
        (&json!("multi"), &json!(0), &json!("masi"))
    );
    let w1 = app.reviewer("w1", &[1], &["spam"]).await;
    let w2 = app.reviewer("w2", &[1], &["spam"]).await;
    let sets = |who: &str, ext: &str| -> Value {
        match (who, ext) {
            ("w1", "t1") => json!(["violence", "hate"]),
            ("w1", "t2") | ("w2", "t2") => json!(["violence"]),
            ("w1", "t3") => json!([]),
            (_, "t1") | (_, "t3") => json!(["hate"]),
            other => panic!("{other:?}"),
        }
    };
    for (key, who) in [(&w1, "w1"), (&w2, "w2")] {
        for _ in 0..3 {
            let t = app.claim("spam", key, None).await.expect("a review task");
            assert_eq!(t["stage"], "review", "{t}");
            let ext = t["item"]["external_id"].as_str().unwrap().to_string();
            let (s, v) = app
                .answer(key, &t, &format!("{who}-{ext}"), json!({"labels": sets(who, &ext)}))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }
    let (s, ag) = app.get("/v1/projects/spam/agreement", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{ag}");
    assert_eq!((&ag["label_mode"], &ag["distance"]), (&json!("multi"), &json!("masi")));
    assert_eq!(
        (&ag["answers"], &ag["tasks"], &ag["workers"]),
        (&json!(6), &json!(3), &json!(2))
    );
    assert_eq!(ag["labels"], json!(["hate", "violence"]));
    assert!(close(&ag["krippendorff_alpha"], 2.0 / 7.0), "{ag}");
    for label in ["hate", "violence"] {
        let l = &ag["per_label"][label];
        assert!(close(&l["krippendorff_alpha"], 4.0 / 9.0), "{label}: {ag}");
        assert!(close(&l["fleiss_kappa"], 1.0 / 3.0), "{label}: {ag}");
    }
    app.stop().await;
}

/// Words that signal each label, and filler.
fn text_of(set: &[&str], i: usize) -> String {
    let mut words = vec![format!("filler{}", i % 7), format!("common{}", i % 5)];
    for l in set {
        let stem = match *l {
            "hate" => "slur",
            "violence" => "attack",
            _ => "promo",
        };
        words.push(format!("{stem}{}", i % 3));
        words.push(format!("{stem}word"));
    }
    words.join(" ")
}

const SETS: [&[&str]; 6] = [
    &[],
    &["hate"],
    &["violence"],
    &["hate", "violence"],
    &["spam"],
    &["hate", "violence", "spam"],
];

/// The learner trains a one-vs-rest model from the feed's sets; its predictions are
/// independent per label (two labels both likely, or none) and feed the policy.
async fn multi_label_learner_gives_independent_scores(db: Db) {
    let app = spawn_app(&db).await;
    let svc = multi_project(
        &app,
        &["hate", "violence", "spam"],
        json!({"rules": [
                  {"name": "two", "when": "size(labels_above(0.5)) >= 2", "action": "review", "queue": "several"},
                  {"name": "all", "when": "true", "action": "review", "queue": "q"}],
               "model": {"enabled": true, "bits": 16}}),
    )
    .await;
    let items: Vec<Value> = (0..180)
        .map(|i| json!({"external_id": format!("x{i}"), "payload": {"text": text_of(SETS[i % 6], i)}}))
        .collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let r = app.reviewer("r", &[1], &["spam"]).await;
    while let Some(t) = app.claim("spam", &r, None).await {
        let i: usize = t["item"]["external_id"].as_str().unwrap()[1..].parse().unwrap();
        let (s, v) = app
            .answer(&r, &t, &format!("a{i}"), json!({"labels": SETS[i % 6]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let feed = app.all_labels(&svc).await;
    assert_eq!(feed.len(), 180);
    assert_eq!(
        feed.iter().find(|l| l["external_id"] == "x5").unwrap()["labels"],
        json!(["hate", "violence", "spam"])
    );
    flywheel_server::workers::LearningWorker {
        state: app.state.clone(),
    }
    .try_run_once()
    .await
    .unwrap();
    let (s, m) = app.get("/v1/projects/spam/model", &svc).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert!(m["examples_seen"].as_u64().unwrap() > 140, "a tenth held back: {m}");
    assert!(m["evaluation"]["n"].as_u64().unwrap() > 0, "{m}");

    // New items, scored by the trained model.
    let d = app
        .submit(
            "spam",
            &svc,
            json!([{"external_id": "both", "payload": {"text": "slur1 slurword attack2 attackword filler3 common1"}},
                   {"external_id": "none", "payload": {"text": "filler2 common4 filler5"}}]),
        )
        .await;
    let (_, both) = app.get("/v1/projects/spam/items/both", &svc).await;
    let p = &both["item"]["prediction"];
    assert_eq!(p["model"], "flywheel", "{both}");
    // Stored scores are [label, score] pairs.
    let score = |p: &Value, l: &str| {
        p["scores"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x[0] == l))
            .and_then(|x| x[1].as_f64())
            .unwrap_or_else(|| panic!("{p}"))
    };
    assert!(
        score(p, "hate") > 0.5 && score(p, "violence") > 0.5 && score(p, "spam") < 0.5,
        "{p}"
    );
    let sum: f64 = ["hate", "violence", "spam"].iter().map(|l| score(p, l)).sum();
    assert!(sum > 1.0, "independent scores do not sum to 1: {p}");
    // The policy read them as independent: two labels above 0.5 routes to `several`.
    assert_eq!(d[0]["rule"], "two", "{d:?}");
    let (_, none) = app.get("/v1/projects/spam/items/none", &svc).await;
    let p = &none["item"]["prediction"];
    assert!(["hate", "violence", "spam"].iter().all(|l| score(p, l) < 0.5), "{p}");
    assert_eq!(d[1]["rule"], "all", "{d:?}");
    app.stop().await;
}

/// Active learning in a multi-label project ranks auto-eligible items by the smallest
/// margin of a label's score to its threshold (0.5 here, nothing calibrated): every tenth
/// item has spam at 0.51 — one label about to flip, though the model is sure of the others —
/// and the rest have every label about 0.47 from it. A budget of 100 per 1,000 takes the
/// near-threshold items and none of the clear ones, while least confidence over the scores
/// as one distribution would rank the clear ones (top 0.04 of 0.09) as the less sure.
async fn multi_label_active_learning_ranks_by_the_smallest_margin(db: Db) {
    let app = spawn_app(&db).await;
    let svc = multi_project(
        &app,
        &["hate", "spam", "violence"],
        json!({"rules": [{"name": "auto", "when": "true", "action": "auto"}],
               "active_learning": {"strategy": "least_confidence", "budget_per_1000": 100}}),
    )
    .await;
    let near = json!({"hate": 0.99, "spam": 0.51, "violence": 0.01});
    let clear = json!({"hate": 0.02, "spam": 0.03, "violence": 0.04});
    let items: Vec<Value> = (0..200)
        .map(|i| {
            let scores = if i % 10 == 0 { &near } else { &clear };
            json!({"external_id": format!("x{i}"), "payload": {"text": format!("item {i}")},
                   "prediction": {"model": "m", "scores": scores}})
        })
        .collect();
    let d = app.submit("spam", &svc, Value::Array(items)).await;
    let learning: Vec<usize> = d
        .iter()
        .filter(|d| d["route"]["queue"] == "learning")
        .map(|d| d["external_id"].as_str().unwrap()[1..].parse().unwrap())
        .collect();
    assert!(learning.len() >= 15, "{learning:?}");
    assert!(
        learning.iter().all(|i| i % 10 == 0),
        "only near-threshold items: {learning:?}"
    );
    // The rest went auto with the set at or above 0.5.
    let auto = d.iter().find(|d| d["external_id"] == "x1").unwrap();
    assert_eq!(
        (&auto["outcome"], &auto["labels"]),
        (&json!("auto"), &json!([])),
        "{auto}"
    );
    app.stop().await;
}

/// A reviewer in a multi-label project is shown the set the model suggests: the labels at
/// or above their threshold (0.5 before calibration), with every score.
async fn multi_label_suggestion_is_the_set_above_threshold(db: Db) {
    let app = spawn_app(&db).await;
    let svc = multi_project(
        &app,
        &["hate", "spam", "violence"],
        json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q"}]}),
    )
    .await;
    app.submit(
        "spam",
        &svc,
        json!([{"external_id": "a", "payload": {"text": "a"},
                "prediction": {"model": "m", "scores": {"hate": 0.9, "spam": 0.5, "violence": 0.2}}}]),
    )
    .await;
    let r = app.reviewer("r", &[1], &["spam"]).await;
    let t = app.claim("spam", &r, None).await.expect("a task");
    let g = &t["suggestion"];
    assert_eq!(g["labels"], json!(["hate", "spam"]), "{t}");
    assert_eq!((&g["label"], &g["scores"]["violence"]), (&json!("hate"), &json!(0.2)));
    app.stop().await;
}

on_both_backends!(
    multi_label_agreement_per_label_and_over_sets,
    multi_label_learner_gives_independent_scores,
    multi_label_active_learning_ranks_by_the_smallest_margin,
    multi_label_suggestion_is_the_set_above_threshold,
);
