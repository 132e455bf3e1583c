//! Multi-label projects in every way data goes in and out: gold given as `labels: [..]`
//! (each invalid one a 422 naming the field), exports that write each answer as its set
//! (JSON lines' `labels`, Label Studio's several choices, CSV's JSON array), and imports
//! of those sets, with round trips into fresh multi-label projects.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Creates multi-label project `name` (hate, spam, violence): a clear prediction is
/// decided (the labels at or above 0.5), the rest goes to queue `q`. Returns its service
/// key.
async fn multi_project(app: &TestApp, name: &str, quality: Option<Value>) -> String {
    let mut policy = json!({"rules": [
        {"name": "clear", "when": "min_margin >= 0.4", "action": "auto"},
        {"name": "rest", "when": "true", "action": "review", "queue": "q"}]});
    if let Some(q) = quality {
        policy["quality"] = q;
    }
    app.project_from(
        json!({"name": name, "labels": ["hate", "spam", "violence"], "label_mode": "multi", "policy": policy}),
    )
    .await
}

fn scored(id: &str, hate: f64, spam: f64, violence: f64) -> Value {
    json!({"external_id": id, "payload": {"text": format!("text of {id}")},
           "prediction": {"model": "m", "version": "2", "scores": {"hate": hate, "spam": spam, "violence": violence}}})
}

/// Multi-label project `name` with items: `a` decided {hate, violence}, `b` answered
/// {hate, spam} by ann, `c` answered "none of these" by ann, `d` waiting.
async fn answered_project(app: &TestApp, name: &str) -> String {
    let svc = multi_project(app, name, None).await;
    let decisions = app
        .submit(
            name,
            &svc,
            json!([
                scored("a", 0.95, 0.05, 0.9),
                scored("b", 0.8, 0.7, 0.3),
                scored("c", 0.6, 0.1, 0.1),
                scored("d", 0.55, 0.5, 0.5)
            ]),
        )
        .await;
    assert_eq!(decisions[0]["labels"], json!(["hate", "violence"]), "{decisions:?}");
    let ann = app.reviewer(&format!("ann-{name}"), &[1], &[name]).await;
    for (id, labels) in [("b", json!(["spam", "hate"])), ("c", json!([]))] {
        let t = app.claim(name, &ann, None).await.unwrap();
        assert_eq!(t["item"]["external_id"], id);
        let (s, v) = app
            .answer(&ann, &t, &format!("x-{id}"), json!({"labels": labels}))
            .await;
        assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("resolved")), "{v}");
    }
    svc
}

/// Each item's resolution as (labels, source); `null` when not resolved.
fn resolutions(rows: &BTreeMap<String, Value>) -> Vec<(String, Value, Value)> {
    rows.iter()
        .map(|(id, r)| {
            (
                id.clone(),
                r["resolution"]["labels"].clone(),
                r["resolution"]["source"].clone(),
            )
        })
        .collect()
}

async fn gold_takes_labels_in_a_multi_label_project(db: Db) {
    let app = spawn_app(&db).await;
    let svc = multi_project(
        &app,
        "mod",
        Some(json!({"gold_rate": 1.0, "min_accuracy": 0.1, "min_gold": 100})),
    )
    .await;
    let gold = |id: &str, member: Value| {
        let mut g = json!({"external_id": id, "payload": {"text": id}});
        g.as_object_mut().unwrap().extend(member.as_object().unwrap().clone());
        g
    };
    for (member, field) in [
        (json!({"labels": ["hate", "eggs"]}), "items[1].labels[1]"),
        (json!({"labels": ["spam", "spam"]}), "items[1].labels[1]"),
        (json!({"label": "hate"}), "items[1].label"),
        (json!({"label": "hate", "labels": ["hate"]}), "items[1].label"),
        (json!({}), "items[1].labels"),
    ] {
        let body = json!({"items": [gold("ok", json!({"labels": []})), gold("bad", member.clone())]});
        let (s, v) = app.post("/v1/projects/mod/gold", ADMIN, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{member}: {v}");
        assert_eq!(v["error"]["field"], field, "{member}: {v}");
    }
    let (s, v) = app
        .post(
            "/v1/projects/mod/gold",
            ADMIN,
            json!({"items": [gold("g1", json!({"labels": ["violence", "hate"]})), gold("g2", json!({"labels": []}))]}),
        )
        .await;
    assert_eq!((s, v["added"].as_i64()), (StatusCode::OK, Some(2)), "{v}");

    // Gold is scored on the set, whatever order it was given in: g1 right, g2 wrong.
    app.submit("mod", &svc, json!([scored("m1", 0.6, 0.6, 0.6)])).await;
    let ann = app.reviewer("ann", &[1], &["mod"]).await;
    for round in 0..2 {
        let t = app.claim("mod", &ann, None).await.unwrap();
        let answer = match t["item"]["external_id"].as_str().unwrap() {
            "g1" => json!(["hate", "violence"]),
            "g2" => json!(["spam"]),
            other => panic!("a gold item first, got {other}"),
        };
        let (s, v) = app
            .answer(&ann, &t, &format!("r{round}"), json!({"labels": answer}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, page) = app.get("/v1/projects/mod/reviewers", ADMIN).await;
    let ann = &page["reviewers"][0];
    assert_eq!(
        (ann["gold_answers"].as_i64(), ann["gold_accuracy"].as_f64()),
        (Some(2), Some(0.5)),
        "{ann}"
    );

    // `labels` in a single-label project names `labels`.
    app.project("plain", json!({"rules": []})).await;
    let (s, v) = app
        .post(
            "/v1/projects/plain/gold",
            ADMIN,
            json!({"items": [gold("p1", json!({"labels": ["spam"]}))]}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("items[0].labels")),
        "{v}"
    );
    app.stop().await;
    db.cleanup().await;
}

async fn a_multi_label_export_writes_sets_and_round_trips(db: Db) {
    let app = spawn_app(&db).await;
    let svc = answered_project(&app, "mod").await;

    // JSON lines: `labels` in place of `label`, everywhere an answer is written.
    let rows = app.jsonl("mod", &svc).await;
    let a = &rows["a"];
    assert_eq!(a["decision"]["action"], "auto");
    assert_eq!(a["decision"]["labels"], json!(["hate", "violence"]));
    assert_eq!(a["resolution"]["labels"], json!(["hate", "violence"]));
    assert_eq!(a["resolution"]["source"], "auto");
    let b = &rows["b"];
    assert_eq!(b["decision"]["labels"], Value::Null);
    assert_eq!(b["resolution"]["labels"], json!(["hate", "spam"]));
    assert_eq!(b["reviews"][0]["answer"], "label");
    assert_eq!(b["reviews"][0]["labels"], json!(["hate", "spam"]));
    assert_eq!(rows["c"]["resolution"]["labels"], json!([]));
    assert_eq!(rows["d"]["resolution"], Value::Null);
    for r in rows.values() {
        for part in [&r["decision"], &r["resolution"], &r["reviews"][0]] {
            assert!(part.get("label").is_none(), "no JSON-in-a-string label: {r}");
        }
    }

    // CSV: the label cells hold the set as a JSON array.
    let text = app.export("mod", &svc, "format=csv").await;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let csv: BTreeMap<String, BTreeMap<String, String>> = reader
        .deserialize::<BTreeMap<String, String>>()
        .map(|r| {
            let r = r.unwrap();
            (r["external_id"].clone(), r)
        })
        .collect();
    assert_eq!(csv["a"]["decision_label"], r#"["hate","violence"]"#);
    assert_eq!(csv["b"]["label"], r#"["hate","spam"]"#);
    assert_eq!(csv["c"]["label"], "[]");
    assert_eq!(csv["d"]["label"], "");
    let reviews: Value = serde_json::from_str(&csv["b"]["reviews"]).unwrap();
    assert_eq!(reviews[0]["labels"], json!(["hate", "spam"]));

    // Label Studio: an annotation's one choices result holds the whole set; the empty set
    // is an annotation with nothing ticked (no result); the prediction is the auto set.
    let text = app.export("mod", &svc, "format=label-studio").await;
    let tasks: Vec<Value> = serde_json::from_str(&text).unwrap();
    let task = |id: &str| tasks.iter().find(|t| t["meta"]["external_id"] == id).unwrap();
    let choices = |results: &Value| results[0]["value"]["choices"].clone();
    let b = &task("b")["annotations"];
    assert_eq!(b.as_array().unwrap().len(), 1);
    assert_eq!(b[0]["result"].as_array().unwrap().len(), 1);
    assert_eq!(b[0]["result"][0]["type"], "choices");
    assert_eq!(choices(&b[0]["result"]), json!(["hate", "spam"]));
    assert_eq!(task("c")["annotations"][0]["result"], json!([]));
    let p = &task("a")["predictions"][0];
    assert_eq!(choices(&p["result"]), json!(["hate", "violence"]));
    assert_eq!(p["score"], 0.9, "the least certain label's confidence");
    let p = &task("b")["predictions"][0];
    assert_eq!(choices(&p["result"]), json!(["hate", "spam"]));
    assert_eq!(p["score"], 0.7);

    // Each format into a fresh multi-label project: the same sets.
    let want = vec![
        ("b".to_string(), json!(["hate", "spam"]), json!("human")),
        ("c".to_string(), json!([]), json!("human")),
        ("d".to_string(), Value::Null, Value::Null),
    ];
    let jsonl = app.export("mod", &svc, "format=jsonl").await;
    for (copy, format, file) in [("from_jsonl", "jsonl", &jsonl), ("from_ls", "label-studio", &text)] {
        let key = multi_project(&app, copy, None).await;
        let (s, report) = app.import(copy, &key, &format!("format={format}"), file).await;
        assert_eq!(s, StatusCode::OK, "{report}");
        assert_eq!(
            report,
            json!({"rows": 4, "items": 4, "duplicates": 0, "labels": 2, "gold": 0})
        );
        let rows = app.jsonl(copy, &key).await;
        let mut got = resolutions(&rows);
        assert_eq!(got.remove(0), ("a".into(), json!(["hate", "violence"]), json!("auto")));
        assert_eq!(got, want, "{format}");
        assert_eq!(rows["b"]["prediction"], app.jsonl("mod", &svc).await["b"]["prediction"]);
    }

    // A Label Studio file as gold: the annotated tasks are gold items.
    let key = multi_project(&app, "as_gold", None).await;
    let (s, report) = app.import("as_gold", &key, "format=label-studio&as=gold", &text).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"rows": 4, "items": 2, "duplicates": 0, "labels": 0, "gold": 2})
    );
    app.stop().await;
    db.cleanup().await;
}

async fn label_studio_tasks_with_several_choices_import_as_sets(db: Db) {
    let app = spawn_app(&db).await;
    let svc = multi_project(&app, "mod", None).await;
    // As Label Studio exports a `<Choices choice="multiple">` project (no meta): two
    // annotators give {spam, hate}, one {hate}: the most given set wins.
    let result = |choices: Value| json!([{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": choices}}]);
    let ls = json!([{
        "id": 7, "data": {"text": "buy now, you idiot"},
        "annotations": [
            {"completed_by": 1, "result": result(json!(["spam", "hate"]))},
            {"completed_by": 2, "result": result(json!(["hate"]))},
            {"completed_by": 3, "result": result(json!(["hate", "spam"]))}],
        "predictions": [{"model_version": "bert", "score": 0.8, "result": result(json!(["spam"]))}]
    }]);
    let (s, report) = app.import("mod", &svc, "format=label-studio", &ls.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["labels"], 1);
    let (_, detail) = app.get("/v1/projects/mod/items/7", &svc).await;
    assert_eq!(detail["resolution"]["labels"], json!(["hate", "spam"]), "{detail}");
    let confidence = detail["resolution"]["confidence"].as_f64().unwrap();
    assert!((confidence - 2.0 / 3.0).abs() < 1e-9, "{detail}");
    let p = &app.jsonl("mod", &svc).await["7"]["prediction"];
    assert_eq!(p["model"], "bert");
    let scores: Vec<f64> = ["hate", "spam", "violence"]
        .iter()
        .map(|l| p["scores"][l].as_f64().unwrap())
        .collect();
    assert!(
        (scores[0] - 0.2).abs() < 1e-9 && scores[1] == 0.8 && (scores[2] - 0.2).abs() < 1e-9,
        "the chosen labels score `score`, the others 1 - score: {p}"
    );

    // Bad sets are named by line and field; nothing is written.
    let task = |choices: Value| json!({"id": 9, "data": {"text": "x"}, "annotations": [{"result": result(choices)}]});
    for (file, field) in [
        (
            json!([task(json!(["hate", "eggs"]))]).to_string(),
            "line 1: annotations[0].result[0].value.choices[1]",
        ),
        (
            json!([task(json!(["hate", "hate"]))]).to_string(),
            "line 1: annotations[0].result[0].value.choices[1]",
        ),
        (
            json!([task(json!([1]))]).to_string(),
            "line 1: annotations[0].result[0].value.choices[0]",
        ),
    ] {
        let (s, v) = app.import("mod", &svc, "format=label-studio", &file).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{file}: {v}");
        assert_eq!(v["error"]["field"], field, "{file}: {v}");
    }
    let row =
        |resolution: Value| json!({"external_id": "j", "payload": {"text": "j"}, "resolution": resolution}).to_string();
    for (file, field) in [
        (
            row(json!({"source": "human", "label": "hate"})),
            "line 1: resolution.label",
        ),
        (
            row(json!({"source": "human", "label": "[\"hate\"]"})),
            "line 1: resolution.label",
        ),
        (
            row(json!({"source": "human", "labels": ["hate", "eggs"]})),
            "line 1: resolution.labels[1]",
        ),
        (
            row(json!({"source": "human", "labels": "hate"})),
            "line 1: resolution.labels",
        ),
        (row(json!({"source": "human"})), "line 1: resolution.labels"),
    ] {
        let (s, v) = app.import("mod", &svc, "format=jsonl", &file).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{file}: {v}");
        assert_eq!(v["error"]["field"], field, "{file}: {v}");
    }
    for id in ["9", "j"] {
        let (s, _) = app.get(&format!("/v1/projects/mod/items/{id}"), &svc).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "nothing of a refused file is written");
    }
    // A set in a single-label project is refused naming it.
    let plain = app.project("plain", example_policy()).await;
    let (s, v) = app
        .import(
            "plain",
            &plain,
            "format=jsonl",
            &row(json!({"source": "human", "labels": ["spam"]})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("line 1: resolution.labels")),
        "{v}"
    );
    app.stop().await;
    db.cleanup().await;
}

on_both_backends!(
    gold_takes_labels_in_a_multi_label_project,
    a_multi_label_export_writes_sets_and_round_trips,
    label_studio_tasks_with_several_choices_import_as_sets,
);
