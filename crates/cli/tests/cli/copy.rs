//! `flywheel copy` as an operator runs it: a SQLite database that a running server holds,
//! into a fresh PostgreSQL schema; the JSON summary; exit codes for a full target and for
//! a source that is not one. (The API suite's `copy` tests compare every read.)

use serde_json::{Value, json};

use super::{flywheel, start, terminate};

#[tokio::test]
async fn copy_moves_a_served_database_and_refuses_a_full_target() {
    let Ok(url) = std::env::var("FLYWHEEL_TEST_POSTGRES_URL") else {
        eprintln!("skipped: copy_moves_a_served_database_and_refuses_a_full_target needs FLYWHEEL_TEST_POSTGRES_URL");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let admin = "copy-cli-admin-key-0123456789";
    let (mut source, _, base) = start(&db, &[("FLYWHEEL_ADMIN_KEY", admin)]);
    let http = super::client_builder().build().unwrap();
    let r = http
        .post(format!("{base}/v1/projects"))
        .bearer_auth(admin)
        .json(&json!({"name": "p", "labels": ["ham", "spam"],
            "policy": {"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q"}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{base}/v1/projects/p/items"))
        .bearer_auth(admin)
        .json(&json!({"items": [{"external_id": "a", "payload": {"text": "tab\there \\ \"quoted\""}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let schema = "fwt_cli_copy";
    flywheel_store::postgres::PgStore::drop_schema(&url, schema)
        .await
        .unwrap();
    drop(
        flywheel_store::postgres::PgStore::connect(&url, Some(schema))
            .await
            .unwrap(),
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    let to = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    // While the server runs on the source.
    let out = flywheel()
        .args(["copy", "--from", &db, "--to", &to, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    let rows = |t: &str| {
        summary["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["table"] == t)
            .map(|r| (r["source_rows"].as_u64().unwrap(), r["target_rows"].as_u64().unwrap()))
    };
    assert_eq!(rows("projects"), Some((1, 1)));
    assert_eq!(rows("items"), Some((1, 1)));
    assert_eq!(rows("api_keys"), Some((1, 1)), "the admin key");
    assert_eq!(rows("reviewer_days"), None, "{summary}");
    assert_eq!(summary["skipped"][0]["table"], "reviewer_days");

    // Again: the target is not empty. Exit code 1, a message, nothing written.
    let out = flywheel().args(["copy", "--from", &db, "--to", &to]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not empty") && err.contains("projects"), "{err}");
    assert!(out.stdout.is_empty());
    // Not a source, not a target: usage errors.
    for (from, to) in [("postgres://x/y", to.as_str()), (db.as_str(), "mysql://x/y")] {
        let out = flywheel().args(["copy", "--from", from, "--to", to]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(terminate(&mut source).success());

    // A server on the copy: the admin key and the item came along.
    let (mut copied, _, base) = start(&to, &[("FLYWHEEL_ADMIN_KEY", admin)]);
    let item: Value = http
        .get(format!("{base}/v1/projects/p/items/a"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(item["item"]["payload"]["text"], "tab\there \\ \"quoted\"", "{item}");
    assert!(terminate(&mut copied).success());
    flywheel_store::postgres::PgStore::drop_schema(&url, schema)
        .await
        .unwrap();
}
