//! API keys: a name the admin gives (checked like a reviewer's name: NFKC, no invisible or
//! bidi characters), and when the key was last used — written at most once a minute per
//! key, not on every request.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// The listed key whose hash is `hash`.
async fn listed(app: &TestApp, hash: &str) -> Value {
    let (s, keys) = app.get("/v1/keys", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{keys}");
    keys.as_array()
        .unwrap()
        .iter()
        .find(|k| k["hash"] == hash)
        .cloned()
        .unwrap_or_else(|| panic!("{hash} not in {keys}"))
}

async fn keys_have_names_and_a_last_use(db: Db) {
    let app = spawn_app(&db).await;
    app.project("spam", json!({"rules": []})).await;

    // A name is optional, stored in NFKC form; an invisible or bidi character is refused,
    // naming the field, and nothing is stored.
    let (s, v) = app
        .post(
            "/v1/keys",
            ADMIN,
            json!({"scope": "service", "projects": ["spam"], "name": "  ｎｉｇｈｔｌｙ import "}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "nightly import");
    let (key, hash) = (
        v["api_key"].as_str().unwrap().to_string(),
        v["hash"].as_str().unwrap().to_string(),
    );
    let (_, before) = app.get("/v1/keys", ADMIN).await;
    for bad in ["ci\u{200b}", "\u{202e}evil", &"x".repeat(65)] {
        let (s, v) = app
            .post(
                "/v1/keys",
                ADMIN,
                json!({"scope": "service", "projects": ["spam"], "name": bad}),
            )
            .await;
        assert_eq!(
            (s, v["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("name")),
            "{bad:?}: {v}"
        );
    }
    let (_, after) = app.get("/v1/keys", ADMIN).await;
    assert_eq!(before, after, "a refused key is not stored");

    // Never used yet: no last use. The first request marks it ...
    let k = listed(&app, &hash).await;
    assert_eq!(k["name"], "nightly import");
    assert!(k.get("last_used_at").is_none(), "{k}");
    let (s, _) = app.get("/v1/projects/spam/stats", &key).await;
    assert_eq!(s, StatusCode::OK);
    let first = listed(&app, &hash).await["last_used_at"].clone();
    assert!(first.as_str().is_some_and(|t| t.ends_with('Z')), "{first}");
    // ... requests within the minute do not write again ...
    app.clock.advance_ms(30_000);
    app.get("/v1/projects/spam/stats", &key).await;
    assert_eq!(listed(&app, &hash).await["last_used_at"], first);
    // ... and one a minute after the last write does.
    app.clock.advance_ms(31_000);
    app.get("/v1/projects/spam/stats", &key).await;
    let later = listed(&app, &hash).await["last_used_at"].clone();
    assert!(later.as_str() > first.as_str(), "{first} then {later}");

    // A reviewer's extra key may be named too; without a body it has no name.
    app.reviewer("ana", &[1], &["spam"]).await;
    let (s, v) = app
        .post("/v1/reviewers/ana/keys", ADMIN, json!({"name": "laptop"}))
        .await;
    assert_eq!((s, v["name"].as_str()), (StatusCode::CREATED, Some("laptop")), "{v}");
    assert_eq!(listed(&app, v["hash"].as_str().unwrap()).await["name"], "laptop");
    let (s, v) = app
        .call(reqwest::Method::POST, "/v1/reviewers/ana/keys", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(listed(&app, v["hash"].as_str().unwrap()).await.get("name").is_none());
    let (s, v) = app
        .post("/v1/reviewers/ana/keys", ADMIN, json!({"name": "a\u{2066}b"}))
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    app.stop().await;
    db.cleanup().await;
}

on_both_backends!(keys_have_names_and_a_last_use);
