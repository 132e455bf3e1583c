//! Exports and imports: the three formats' shapes, round trips into a second project, a
//! bad row named by its line with nothing written, idempotent re-imports, and filters.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

impl TestApp {
    /// The body of an export (status checked).
    pub(crate) async fn export(&self, project: &str, key: &str, query: &str) -> String {
        let resp = self
            .http
            .get(format!("{}/v1/projects/{project}/export?{query}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
        text
    }

    pub(crate) async fn import(&self, project: &str, key: &str, query: &str, file: &str) -> (StatusCode, Value) {
        self.raw_post(&format!("/v1/projects/{project}/import?{query}"), key, file)
            .await
    }

    pub(crate) async fn jsonl(&self, project: &str, key: &str) -> BTreeMap<String, Value> {
        self.export(project, key, "format=jsonl")
            .await
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["external_id"].as_str().unwrap().to_string(), v)
            })
            .collect()
    }
}

/// Project `name` with items: two auto (a1 spam, a2 ham), two answered by ann (r1 spam,
/// r2 ham), one waiting (r3). Returns the service key.
async fn reviewed_project(app: &TestApp, name: &str) -> String {
    let svc = app.project(name, example_policy()).await;
    let ann = app.reviewer(&format!("ann-{name}"), &[1], &[name]).await;
    let mut a1 = item("a1", "WIN a prize, \"now\",\nreply", Some(0.99));
    a1["attributes"] = json!({"country": "FR"});
    app.submit(
        name,
        &svc,
        json!([a1, item("a2", "lunch?", Some(0.01)), item("r1", "maybe", Some(0.6))]),
    )
    .await;
    app.clock.advance_ms(1000);
    app.submit(
        name,
        &svc,
        json!([item("r2", "hmm", Some(0.4)), item("r3", "?", Some(0.5))]),
    )
    .await;
    for (id, label) in [("r1", "spam"), ("r2", "ham")] {
        let t = app.claim(name, &ann, None).await.unwrap();
        assert_eq!(t["item"]["external_id"], id);
        app.clock.advance_ms(1500);
        let (s, v) = app.answer(&ann, &t, &format!("x-{id}"), json!({"label": label})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    svc
}

/// What must survive a round trip: the item and its label.
fn essence(rows: &BTreeMap<String, Value>) -> Vec<Value> {
    rows.values()
        .map(|r| {
            json!([
                r["external_id"],
                r["payload"],
                r["attributes"],
                r["prediction"],
                r["decision"]["action"],
                r["resolution"]["label"],
                r["resolution"]["source"]
            ])
        })
        .collect()
}

async fn jsonl_export_round_trips_into_a_second_project(db: Db) {
    let app = spawn_app(&db).await;
    let svc = reviewed_project(&app, "spam").await;
    let text = app.export("spam", &svc, "format=jsonl").await;
    assert_eq!(text.lines().count(), 5, "one line per item");
    let rows = app.jsonl("spam", &svc).await;
    let a1 = &rows["a1"];
    assert_eq!(a1["payload"], json!({"text": "WIN a prize, \"now\",\nreply"}));
    assert_eq!(a1["attributes"], json!({"country": "FR"}));
    let p = &a1["prediction"];
    assert_eq!((p["model"].as_str(), p["version"].as_str()), (Some("m"), Some("1")));
    assert_eq!(p["scores"]["spam"], 0.99);
    assert!((p["scores"]["ham"].as_f64().unwrap() - 0.01).abs() < 1e-9);
    assert_eq!(a1["decision"]["action"], "auto");
    assert_eq!(a1["decision"]["label"], "spam");
    assert_eq!(a1["decision"]["rule"], "confident");
    assert_eq!(a1["resolution"]["source"], "auto");
    assert_eq!(a1["reviews"], json!([]));
    let r1 = &rows["r1"];
    assert_eq!(r1["decision"]["action"], "review");
    assert_eq!(r1["decision"]["queue"], "standard");
    assert_eq!(r1["resolution"]["label"], "spam");
    assert_eq!(r1["resolution"]["source"], "human");
    assert_eq!(r1["resolution"]["reviewers"], json!(["ann-spam"]));
    let review = &r1["reviews"][0];
    assert_eq!(review["reviewer"], "ann-spam");
    assert_eq!(review["stage"], "review");
    assert_eq!(review["label"], "spam");
    assert_eq!(review["time_ms"], 1500);
    assert!(review["answered_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rows["r3"]["resolution"], Value::Null);

    let copy = app.project("copy", example_policy()).await;
    let (s, report) = app.import("copy", &copy, "format=jsonl", &text).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"rows": 5, "items": 5, "duplicates": 0, "labels": 2, "gold": 0})
    );
    let copied = app.jsonl("copy", &copy).await;
    assert_eq!(essence(&copied), essence(&rows), "equal in items and labels");
    assert_eq!(copied["r1"]["resolution"]["method"], "imported");
    assert_eq!(copied["r1"]["resolution"]["reviewers"], json!(["ann-spam"]));
    let (_, labels) = app.get("/v1/projects/copy/labels", &copy).await;
    let feed: Vec<(&str, &str)> = labels["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["external_id"].as_str().unwrap(), l["source"].as_str().unwrap()))
        .collect();
    assert_eq!(feed, [("a1", "auto"), ("a2", "auto"), ("r1", "human"), ("r2", "human")]);
    // The imported labels closed their review tasks: only r3 is left to claim.
    let bob = app.reviewer("bob", &[1], &["copy"]).await;
    assert_eq!(
        app.claim("copy", &bob, None).await.unwrap()["item"]["external_id"],
        "r3"
    );
    assert!(app.claim("copy", &bob, None).await.is_none());

    // Idempotent by external id.
    let (s, again) = app.import("copy", &copy, "format=jsonl", &text).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        again,
        json!({"rows": 5, "items": 0, "duplicates": 5, "labels": 0, "gold": 0})
    );
    assert_eq!(app.jsonl("copy", &copy).await.len(), 5);
    let (_, labels) = app.get("/v1/projects/copy/labels", &copy).await;
    assert_eq!(labels["labels"].as_array().unwrap().len(), 4);
}

async fn csv_export_has_its_columns_and_quotes_properly(db: Db) {
    let app = spawn_app(&db).await;
    let svc = reviewed_project(&app, "spam").await;
    let text = app.export("spam", &svc, "format=csv").await;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        header,
        [
            "external_id",
            "created_at",
            "payload",
            "attributes",
            "model",
            "model_version",
            "scores",
            "decision",
            "rule",
            "decision_label",
            "queue",
            "policy_version",
            "label",
            "source",
            "method",
            "confidence",
            "resolved_at",
            "resolution_reviewers",
            "reviews"
        ]
    );
    let rows: Vec<BTreeMap<String, String>> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    let a1 = &rows[0];
    assert_eq!(a1["external_id"], "a1");
    let payload: Value = serde_json::from_str(&a1["payload"]).unwrap();
    assert_eq!(
        payload["text"], "WIN a prize, \"now\",\nreply",
        "commas, quotes and newlines survive"
    );
    assert_eq!(a1["model"], "m");
    assert_eq!(a1["model_version"], "1");
    assert_eq!(serde_json::from_str::<Value>(&a1["scores"]).unwrap()["spam"], 0.99);
    assert_eq!(
        (a1["decision"].as_str(), a1["decision_label"].as_str()),
        ("auto", "spam")
    );
    assert_eq!((a1["label"].as_str(), a1["source"].as_str()), ("spam", "auto"));
    let r1 = rows.iter().find(|r| r["external_id"] == "r1").unwrap();
    assert_eq!((r1["decision"].as_str(), r1["queue"].as_str()), ("review", "standard"));
    assert_eq!((r1["label"].as_str(), r1["source"].as_str()), ("spam", "human"));
    assert_eq!(
        serde_json::from_str::<Value>(&r1["resolution_reviewers"]).unwrap(),
        json!(["ann-spam"])
    );
    let reviews: Value = serde_json::from_str(&r1["reviews"]).unwrap();
    assert_eq!(reviews[0]["label"], "spam");
    let r3 = rows.iter().find(|r| r["external_id"] == "r3").unwrap();
    assert_eq!((r3["label"].as_str(), r3["source"].as_str()), ("", ""));
}

async fn label_studio_tasks_have_the_fields_it_reads_and_round_trip(db: Db) {
    let app = spawn_app(&db).await;
    let svc = reviewed_project(&app, "spam").await;
    let text = app.export("spam", &svc, "format=label-studio").await;
    let tasks: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(tasks.len(), 5);
    for t in &tasks {
        assert!(t["data"]["text"].is_string(), "data holds the payload: {t}");
        assert!(t["annotations"].is_array() && t["predictions"].is_array());
        for a in t["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .chain(t["predictions"].as_array().unwrap())
        {
            let r = &a["result"][0];
            assert_eq!(
                (r["from_name"].as_str(), r["to_name"].as_str(), r["type"].as_str()),
                (Some("label"), Some("text"), Some("choices"))
            );
            assert_eq!(r["value"]["choices"].as_array().unwrap().len(), 1);
            assert!(r["id"].is_string());
        }
    }
    let by_id = |id: &str| tasks.iter().find(|t| t["meta"]["external_id"] == id).unwrap();
    let r1 = by_id("r1");
    let ann = &r1["annotations"][0];
    assert_eq!(ann["result"][0]["value"]["choices"], json!(["spam"]));
    assert_eq!(ann["was_cancelled"], false);
    assert_eq!(ann["ground_truth"], false);
    assert_eq!(ann["lead_time"], 1.5);
    assert!(ann["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r1["meta"]["annotators"], json!(["ann-spam"]));
    let a1 = by_id("a1");
    assert_eq!(a1["annotations"], json!([]), "an auto label is not an annotation");
    assert_eq!(a1["predictions"][0]["model_version"], "m:1");
    assert_eq!(a1["predictions"][0]["score"], 0.99);
    assert_eq!(a1["predictions"][0]["result"][0]["value"]["choices"], json!(["spam"]));

    // Into a second project as history: equal in items and labels.
    let copy = app.project("copy", example_policy()).await;
    let (s, report) = app.import("copy", &copy, "format=label-studio", &text).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["items"], 5);
    assert_eq!(report["labels"], 2);
    assert_eq!(
        essence(&app.jsonl("copy", &copy).await),
        essence(&app.jsonl("spam", &svc).await)
    );

    // A task as Label Studio itself exports it (no meta): its id is the external id, its
    // one prediction's score the chosen label's, its annotators Label Studio's user ids.
    let ls = json!([{
        "id": 17, "data": {"text": "free money"},
        "annotations": [
            {"completed_by": 3, "result": [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["spam"]}}]},
            {"completed_by": 4, "was_cancelled": true, "result": []},
            {"completed_by": {"id": 5, "email": "eve@example.com"}, "result": [{"type": "choices", "value": {"choices": ["spam"]}}]}],
        "predictions": [{"model_version": "bert", "score": 0.8, "result": [{"type": "choices", "value": {"choices": ["spam"]}}]}]
    }]);
    let (s, report) = app.import("copy", &copy, "format=label-studio", &ls.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["labels"], 1);
    let (_, detail) = app.get("/v1/projects/copy/items/17", &copy).await;
    assert_eq!(detail["resolution"]["label"], "spam");
    assert_eq!(
        detail["resolution"]["reviewers"],
        json!(["label-studio:3", "eve@example.com"])
    );
    let scores = &app.jsonl("copy", &copy).await["17"]["prediction"];
    assert_eq!(scores["model"], "bert");
    assert_eq!(scores["scores"]["spam"], 0.8);

    // As gold: annotated tasks become gold items, the others items.
    let gold = app.project("gold", example_policy()).await;
    let (s, report) = app.import("gold", &gold, "format=label-studio&as=gold", &text).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"rows": 5, "items": 3, "duplicates": 0, "labels": 0, "gold": 2})
    );
    let rows = app.jsonl("gold", &gold).await;
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        ["a1", "a2", "r3"],
        "gold items are not exported"
    );
}

async fn a_bad_import_row_names_its_line_and_nothing_is_written(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let file = r#"[
  {"id": 1, "data": {"text": "a"}},
  {"id": 2, "data": {"text": "b"},
   "annotations": [{"result": [{"type": "choices", "value": {"choices": ["spam"]}}]}]},
  {"id": 3, "data": {"text": "c"},
   "annotations": [{"result": [{"type": "choices", "value": {"choices": ["maybe"]}}]}]}
]"#;
    let (s, v) = app.import("spam", &svc, "format=label-studio", file).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "line 5: annotations[0].result[0].value.choices");
    assert_eq!(v["error"]["line"], 5);
    assert_eq!(v["error"]["code"], "invalid");
    for id in ["1", "2", "3"] {
        let (s, _) = app.get(&format!("/v1/projects/spam/items/{id}"), &svc).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "nothing of the file is written");
    }
    let cases = [
        (
            "{\"external_id\": \"x\", \"payload\": {\"text\": \"a\"}}\n{\"external_id\": }\n",
            "line 2",
            2,
        ),
        (
            "{\"external_id\": \"x\", \"payload\": {\"text\": \"a\"}, \"prediction\": {\"model\": \"m\", \"scores\": {\"ham\": 0.5, \"spam\": 1.5}}}",
            "line 1: prediction.scores.spam",
            1,
        ),
        ("{\"external_id\": \"x\", \"payload\": \"text\"}", "line 1: payload", 1),
        ("\n\n{\"payload\": {}}", "line 3: external_id", 3),
        (
            "{\"external_id\": \"x\", \"payload\": {}, \"resolution\": {\"label\": \"maybe\", \"source\": \"human\"}}",
            "line 1: resolution.label",
            1,
        ),
    ];
    for (file, field, line) in cases {
        let (s, v) = app.import("spam", &svc, "format=jsonl", file).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{file}: {v}");
        assert_eq!(v["error"]["field"], field, "{file}");
        assert_eq!(v["error"]["line"], line);
    }
    let (s, _) = app.get("/v1/projects/spam/items/x", &svc).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app.import("spam", &svc, "format=xml", "[]").await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("format"))
    );
    let (s, v) = app.import("spam", &svc, "format=jsonl&as=truth", "{}").await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("as")));
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    let (s, _) = app.import("spam", &ann, "format=jsonl", "{}").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "reviewers may not import");
}

async fn export_filters_by_time_and_source(db: Db) {
    let app = spawn_app(&db).await;
    let svc = reviewed_project(&app, "spam").await;
    let ids = |text: String| -> Vec<String> {
        text.lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["external_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let second = START_MS + 1000;
    let at = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert_eq!(
        ids(app
            .export("spam", &svc, &format!("format=jsonl&since={}", at(second)))
            .await),
        ["r2", "r3"]
    );
    assert_eq!(
        ids(app.export("spam", &svc, &format!("format=jsonl&until={second}")).await),
        ["a1", "a2", "r1"]
    );
    assert_eq!(
        ids(app.export("spam", &svc, "format=jsonl&source=human").await),
        ["r1", "r2"]
    );
    assert_eq!(
        ids(app.export("spam", &svc, "format=jsonl&source=auto").await),
        ["a1", "a2"]
    );
    assert_eq!(ids(app.export("spam", &svc, "format=jsonl&source=none").await), ["r3"]);
    assert_eq!(
        ids(app
            .export("spam", &svc, &format!("format=jsonl&source=human&since={second}"))
            .await),
        ["r2"]
    );
    let (_, v) = app
        .get("/v1/projects/spam/export?format=jsonl&since=yesterday", &svc)
        .await;
    assert_eq!(v["error"]["field"], "since");
    let (s, v) = app.get("/v1/projects/spam/export?format=xml", &svc).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("format"))
    );
    let (_, v) = app.get("/v1/projects/spam/export?format=csv&source=robot", &svc).await;
    assert_eq!(v["error"]["field"], "source");
    let (_, doc) = app.get("/v1/openapi.json", "").await;
    assert!(doc["paths"]["/v1/projects/{project}/export"]["get"].is_object());
    assert!(doc["paths"]["/v1/projects/{project}/import"]["post"].is_object());
    assert!(doc["components"]["schemas"]["ImportReport"]["properties"]["labels"].is_object());
    // Each format's answer is documented as what it is: Label Studio's tasks a JSON array,
    // JSON lines not a string (a one-row file reads as a JSON object); both were strings.
    let answer = &doc["paths"]["/v1/projects/{project}/export"]["get"]["responses"]["200"]["content"];
    assert_eq!(answer["application/json"]["schema"]["type"], "array", "{answer}");
    assert_eq!(answer["application/x-ndjson"]["schema"].get("type"), None, "{answer}");
    assert_eq!(answer["text/csv"]["schema"]["type"], "string", "{answer}");
    let empty = app.export("spam", &svc, "format=label-studio&source=adjudicated").await;
    assert_eq!(
        serde_json::from_str::<Value>(&empty).unwrap(),
        json!([]),
        "an empty export is still a JSON array"
    );
}

on_both_backends!(
    jsonl_export_round_trips_into_a_second_project,
    csv_export_has_its_columns_and_quotes_properly,
    label_studio_tasks_have_the_fields_it_reads_and_round_trip,
    a_bad_import_row_names_its_line_and_nothing_is_written,
    export_filters_by_time_and_source,
);
