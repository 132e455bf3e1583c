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

/// The document's pattern for a key's name accepts exactly the names the server keeps:
/// trimmed first (so a tab or U+0085 at an end is fine), then no control or invisible
/// character (a C1 control like U+0091 inside was accepted by the document and refused
/// by the server).
async fn the_documented_key_name_is_the_one_the_server_keeps(db: Db) {
    let app = spawn_app(&db).await;
    app.project("spam", json!({"rules": []})).await;
    app.reviewer("ana", &[1], &["spam"]).await;
    let (_, doc) = app.get("/v1/openapi.json", "").await;
    let schemas = &doc["components"]["schemas"];
    // 64 characters once trimmed, and 65.
    let longest = format!("\u{85}{}\u{85}\u{85}", "k".repeat(64));
    let too_long = "k".repeat(65);
    for (schema, path, body) in [
        (
            "CreateKey",
            "/v1/keys",
            json!({"scope": "service", "projects": ["spam"]}),
        ),
        ("AddKeyIn", "/v1/reviewers/ana/keys", json!({})),
    ] {
        let pattern = schemas[schema]["properties"]["name"]["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{schema}.name has no pattern"));
        let pattern = regex::Regex::new(pattern).unwrap();
        for (name, kept) in [
            ("laptop", true),
            ("nightly import", true),
            ("laptop\t", true),
            ("\u{85}laptop\u{3000}", true),
            ("   ", true),
            ("\u{d7}\u{91}", false),
            ("na\tme", false),
            ("ci\u{200b}", false),
            ("a\u{2066}b", false),
            ("\u{feff}laptop", false),
            (longest.as_str(), true),
            (too_long.as_str(), false),
        ] {
            let mut body = body.clone();
            body["name"] = json!(name);
            let (s, v) = app.post(path, ADMIN, body).await;
            let expected = if kept {
                StatusCode::CREATED
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            assert_eq!(s, expected, "{path} {name:?}: {v}");
            assert_eq!(pattern.is_match(name), kept, "{schema}.name's pattern and {name:?}");
        }
    }
    app.stop().await;
    db.cleanup().await;
}

on_both_backends!(
    keys_have_names_and_a_last_use,
    the_documented_key_name_is_the_one_the_server_keeps,
);
