//! Novelty: the built-in model's reaches the policy, an external model's is honoured and
//! stored with the item, a bad one is a 422 naming `prediction.novelty` with nothing
//! written, and the dashboard's series carries its mean.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Novel content to experts whatever the confidence; confident content auto; the rest to
/// L1.
fn policy() -> Value {
    json!({"rules": [
        {"name": "novel", "when": "novelty >= 0.5", "action": "review", "queue": "expert", "tier": 3},
        {"name": "confident", "when": "confidence >= 0.9", "action": "auto"},
        {"name": "rest", "when": "true", "action": "review", "queue": "l1"}],
      "model": {"enabled": true, "bits": 18}})
}

fn predicted(id: &str, spam: f64, novelty: Value) -> Value {
    json!({"external_id": id, "payload": {"text": id},
           "prediction": {"model": "ext", "scores": {"ham": 1.0 - spam, "spam": spam}, "novelty": novelty}})
}

async fn an_external_novelty_is_honoured_and_stored(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("mod", policy()).await;
    let d = app
        .submit(
            "mod",
            &svc,
            json!([
                predicted("new", 0.99, json!(0.8)),
                predicted("old", 0.99, json!(0.1)),
                predicted("unsure", 0.6, Value::Null)
            ]),
        )
        .await;
    assert_eq!(
        (&d[0]["route"]["queue"], &d[0]["route"]["tier"], &d[0]["rule"]),
        (&json!("expert"), &json!(3), &json!("novel")),
        "novel goes to experts however confident: {d:?}"
    );
    assert_eq!((&d[1]["outcome"], &d[1]["rule"]), (&json!("auto"), &json!("confident")));
    assert_eq!(d[2]["route"]["queue"], "l1", "no novelty reads as 0: not novel");
    let (_, item) = app.get("/v1/projects/mod/items/new", &svc).await;
    assert_eq!(
        item["item"]["prediction"]["novelty"], 0.8,
        "stored with the item: {item}"
    );
    let (_, item) = app.get("/v1/projects/mod/items/unsure", &svc).await;
    assert!(item["item"]["prediction"].get("novelty").is_none(), "{item}");
    // The dashboard's novelty chart: one slice, the mean of the two novelties given
    // (0.45), drawn as one point at 184 − 0.45 × 144 pixels (the plot's bottom and height).
    let (cookie, _) = crate::console::sign_in(&app, &[("key", ADMIN)]).await.unwrap();
    let html = app
        .http
        .get(format!("{}/ui/projects/mod", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("mean novelty of new items"), "{html}");
    assert!(html.contains("cy=\"119.2\" r=\"3\" fill=\"#8250df\""), "{html}");
}

async fn a_bad_novelty_is_refused_and_nothing_is_written(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("mod", policy()).await;
    for bad in [json!(1.5), json!(-0.1), json!("high")] {
        let (s, v) = app
            .post(
                "/v1/projects/mod/items",
                &svc,
                json!({"items": [predicted("fine", 0.5, json!(0.2)), predicted("bad", 0.5, bad)]}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["field"], "items[1].prediction.novelty", "{v}");
        let (s, _) = app.get("/v1/projects/mod/items/fine", &svc).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "the batch is refused whole");
    }
}

/// Texts of two kinds the model learns, and a third it has never seen.
fn text(i: usize) -> String {
    const SEEN: [&str; 8] = [
        "lunch", "tomorrow", "meeting", "dinner", "prize", "cash", "claim", "winner",
    ];
    format!("{} {} {}", SEEN[i % 8], SEEN[(i / 8) % 8], SEEN[(i / 3) % 8])
}

async fn the_built_in_model_s_novelty_reaches_the_policy(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("mod", policy()).await;
    // Labels given elsewhere: enough examples for the model to report novelty.
    let n = flywheel_core::novelty::MIN_EXAMPLES as usize * 12 / 10;
    let rows: Vec<String> = (0..n)
        .map(|i| {
            json!({"external_id": format!("t{i}"), "payload": {"text": text(i)},
                   "resolution": {"source": "human", "label": if i % 8 < 4 { "ham" } else { "spam" }}})
            .to_string()
        })
        .collect();
    let (s, v) = app
        .raw_post("/v1/projects/mod/import?format=jsonl", &svc, &rows.join("\n"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, m) = app.post("/v1/projects/mod/model/train", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert!(
        m["examples_seen"].as_u64().unwrap() >= flywheel_core::novelty::MIN_EXAMPLES,
        "{m}"
    );
    let (_, scored) = app
        .post(
            "/v1/projects/mod/model/predict",
            &svc,
            json!({"items": [{"payload": {"text": text(3)}}, {"payload": {"text": "zygote quasar fjord xylophone"}}]}),
        )
        .await;
    let (seen, unseen) = (
        scored["predictions"][0]["novelty"].as_f64().unwrap(),
        scored["predictions"][1]["novelty"].as_f64().unwrap(),
    );
    assert!(seen < 0.1 && unseen > 0.5, "seen {seen}, unseen {unseen}");
    let d = app
        .submit(
            "mod",
            &svc,
            json!([
                {"external_id": "familiar", "payload": {"text": text(3)}},
                {"external_id": "strange", "payload": {"text": "zygote quasar fjord xylophone"}}
            ]),
        )
        .await;
    assert_ne!(d[0]["rule"], "novel", "{d:?}");
    assert_eq!(d[1]["rule"], "novel", "{d:?}");
    assert_eq!(d[1]["route"]["queue"], "expert");
    let (_, item) = app.get("/v1/projects/mod/items/strange", &svc).await;
    assert_eq!(item["item"]["prediction"]["model"], "flywheel");
    assert_eq!(item["item"]["prediction"]["novelty"].as_f64(), Some(unseen));
}

on_both_backends!(
    an_external_novelty_is_honoured_and_stored,
    a_bad_novelty_is_refused_and_nothing_is_written,
    the_built_in_model_s_novelty_reaches_the_policy,
);
