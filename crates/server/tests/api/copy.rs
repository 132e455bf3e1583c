//! `flywheel copy` (the store's `copy::copy`, which the command runs): a SQLite database
//! built through the API, copied into a fresh PostgreSQL schema while its server keeps
//! running, then read over the API from a server on each — the same answers. A non-empty
//! target is refused, and the copied database keeps working: new rows get ids and feed
//! positions after the copied ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use flywheel_server::{ManualClock, ServeOptions};
use flywheel_store::copy::{CopyError, CopyReport};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Builds a database with a row in every table: two policy versions, items decided auto
/// and for review (with and without predictions), answers with overlap, a tie and its
/// adjudication, gold and a hold, a skip and a lease still active, a model snapshot, a
/// password and a session, a revoked key.
async fn build(app: &TestApp) -> Vec<String> {
    let svc = app
        .project(
            "spam",
            json!({"rules": [
                {"name": "confident", "when": "confidence >= 0.95", "action": "auto"},
                {"name": "urgent", "when": "payload.text.matches('(?i)hurt')", "action": "review", "queue": "urgent", "tier": 2},
                {"name": "rest", "when": "true", "action": "review", "queue": "q", "overlap": 2}],
              "model": {"enabled": true, "bits": 12},
              "quality": {"gold_rate": 0.2, "min_accuracy": 0.9, "min_gold": 50}}),
        )
        .await;
    app.project("other", example_policy()).await;
    let mut policy = app.get("/v1/projects/spam", ADMIN).await.1["policy"].clone();
    policy["audit_rate"] = json!(0.5);
    let (s, v) = app
        .call(reqwest::Method::PUT, "/v1/projects/spam/policy", ADMIN, Some(policy))
        .await;
    assert_eq!((s, v["policy_version"].as_i64()), (StatusCode::OK, Some(2)), "{v}");

    let mut ids = vec![];
    let mut items = vec![];
    for i in 0..40 {
        let id = format!("m{i}");
        let text = match i % 4 {
            0 => format!("WIN a FREE prize {i}\tnow\n\"cash\" \\o/"),
            1 => format!("lunch at {i}? é ü 日本"),
            2 => "I might hurt myself".to_string(),
            _ => format!("see you {i}"),
        };
        let spam = match i % 5 {
            0 => Some(0.99),
            1 => Some(0.01),
            2 => None,
            _ => Some(0.5),
        };
        let mut it = item(&id, &text, spam);
        it["attributes"] = json!({"n": i, "ratio": i as f64 / 3.0, "big": 1e17, "tags": ["a", "b"]});
        items.push(it);
        ids.push(id);
    }
    app.submit("spam", &svc, Value::Array(items)).await;
    let gold: Vec<Value> = (0..10)
        .map(|i| json!({"external_id": format!("g{i}"), "payload": {"text": format!("gold {i}")}, "label": "spam"}))
        .collect();
    let (s, v) = app.post("/v1/projects/spam/gold", ADMIN, json!({"items": gold})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    ids.extend((0..10).map(|i| format!("g{i}")));

    let a = app.reviewer("a", &[1], &["spam"]).await;
    let b = app.reviewer("b", &[1], &["spam"]).await;
    let boss = app.reviewer("boss", &[2], &["spam"]).await;
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Answers: `a` says spam, `b` says ham to every third item (ties to adjudicate).
    let mut n = 0;
    for (who, key) in [("a", &a), ("b", &b)] {
        while let Some(t) = app.claim("spam", key, Some("q")).await {
            n += 1;
            app.clock.advance_ms(1_500);
            let label = if who == "b" && n % 3 == 0 { "ham" } else { "spam" };
            let (s, v) = app.answer(key, &t, &format!("{who}{n}"), json!({"label": label})).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }
    while let Some(t) = app.claim("spam", &boss, None).await {
        n += 1;
        let answer = if n % 7 == 0 {
            json!({"skip": {"reason": "later"}, "note": "tab\there"})
        } else {
            json!({"label": "ham"})
        };
        let (s, v) = app.answer(&boss, &t, &format!("boss{n}"), answer).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if n > 200 {
            break;
        }
    }
    // A lease still active when the copy is made.
    let (s, v) = app.post("/v1/reviewers/ana/keys", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ana = v["api_key"].as_str().unwrap().to_string();
    let (s, held) = app.post("/v1/projects/spam/claim", &ana, json!({})).await;
    assert!(s == StatusCode::OK || s == StatusCode::NO_CONTENT, "{held}");
    let (s, _) = app
        .post(
            "/v1/projects/spam/reviewers/b/hold",
            ADMIN,
            json!({"reason": "checking"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // A webhook endpoint (its secret is copied and checksummed, never read back).
    let (s, v) = app
        .post(
            "/v1/projects/spam/webhooks",
            ADMIN,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["item.*"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app.post("/v1/projects/spam/model/train", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["examples_seen"].as_u64().unwrap() > 0, "{v}");
    // A retrain stores a snapshot of the model (bytes in SQLite, bytea in PostgreSQL).
    let (s, v) = app.post("/v1/projects/spam/model/retrain", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    crate::console::sign_in(app, &[("name", "ana"), ("password", "correct horse")])
        .await
        .unwrap();
    let (_, keys) = app.get("/v1/keys", ADMIN).await;
    let a_hash = keys.as_array().unwrap().iter().find(|k| k["reviewer"] == "a").unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = app.post(&format!("/v1/keys/{a_hash}/revoke"), ADMIN, json!({})).await;
    assert!(s.is_success(), "{s}");
    ids
}

/// Everything the API reads, by path.
async fn reads(app: &TestApp, ids: &[String]) -> BTreeMap<String, Value> {
    let mut paths: Vec<String> = [
        "/v1/projects",
        "/v1/projects/spam",
        "/v1/projects/other",
        "/v1/projects/spam/labels?limit=1000",
        "/v1/projects/spam/events?limit=1000",
        "/v1/events?limit=1000",
        "/v1/projects/spam/stats",
        "/v1/projects/other/stats",
        "/v1/projects/spam/reviewers",
        "/v1/projects/spam/agreement",
        "/v1/projects/spam/model",
        "/v1/projects/spam/monitors",
        "/v1/projects/spam/webhooks",
        "/v1/reviewers",
        "/v1/keys",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    paths.extend(ids.iter().map(|id| format!("/v1/projects/spam/items/{id}")));
    let mut out = BTreeMap::new();
    for p in paths {
        let (s, v) = app.get(&p, ADMIN).await;
        assert_eq!(s, StatusCode::OK, "{p}: {v}");
        out.insert(p, v);
    }
    out
}

fn rows(report: &CopyReport, table: &str) -> u64 {
    report
        .tables
        .iter()
        .find(|t| t.table == table)
        .unwrap_or_else(|| panic!("{table} not copied"))
        .target_rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_copied_to_postgres_reads_the_same() {
    let Some(Db::Postgres { url, schema }) = Db::postgres("copy_reads_the_same").await else {
        return;
    };
    let src = Db::sqlite();
    let Db::Sqlite(dir) = &src else { unreachable!() };
    let clock = Arc::new(ManualClock::new(START_MS));
    let options = ServeOptions {
        background_learning: false,
        background_webhooks: false,
        ..Default::default()
    };
    let sqlite = spawn_with(&src, clock.clone(), options).await;
    let ids = build(&sqlite).await;

    // The target schema exists (as an operator's database would); the copy migrates it.
    flywheel_store::postgres::PgStore::drop_schema(&url, &schema)
        .await
        .unwrap();
    drop(
        flywheel_store::postgres::PgStore::connect(&url, Some(&schema))
            .await
            .unwrap(),
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    let to = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let from = format!("sqlite://{}", dir.path().join("flywheel.db").display());
    let seen = std::sync::Mutex::new(Vec::new());
    let progress = |p: flywheel_store::copy::Progress<'_>| {
        if let flywheel_store::copy::Progress::Copying { table, .. } = p {
            seen.lock().unwrap().push(table.to_string());
        }
    };
    // The source's server is still running: the copy reads it through its own read-only
    // connection.
    let report = flywheel_store::copy::copy(&from, &to, &progress).await.unwrap();
    assert!(report.verified(), "{report:?}");
    for t in [
        "projects",
        "policies",
        "reviewers",
        "reviewer_projects",
        "api_keys",
        "web_sessions",
        "items",
        "tasks",
        "leases",
        "item_reviewers",
        "reviews",
        "labels",
        "events",
        "reviewer_quality",
        "model_snapshots",
        "webhooks",
    ] {
        assert!(rows(&report, t) > 0, "the test leaves {t} empty: {report:?}");
    }
    assert_eq!(rows(&report, "policies"), 3);
    assert_eq!(rows(&report, "items"), 50);
    assert_eq!(
        *seen.lock().unwrap(),
        report.tables.iter().map(|t| t.table.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        report.skipped.iter().map(|t| t.table.as_str()).collect::<Vec<_>>(),
        ["reviewer_days", "stat_counts"],
        "SQLite's own tables"
    );

    let pg_db = Db::Postgres {
        url: url.clone(),
        schema: schema.clone(),
    };
    // Both read from a fresh start (what a server holds only in memory — the model's
    // held-out evaluation — is not in either database).
    drop(sqlite.stop().await);
    let sqlite = spawn_with(&src, clock.clone(), options).await;
    let pg = spawn_with(&pg_db, clock.clone(), options).await;
    let (a, b) = (reads(&sqlite, &ids).await, reads(&pg, &ids).await);
    // Equal as JSON values: jsonb writes a number its own way (`1e17` comes back as
    // `100000000000000000`), on PostgreSQL whether copied or written by the API.
    let canonical = |v: &Value| flywheel_store::copy::canonical_json(&v.to_string()).unwrap();
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, v) in &a {
        assert_eq!(canonical(v), canonical(&b[path]), "{path} differs after the copy");
    }
    let events = a["/v1/events?limit=1000"]["events"].as_array().unwrap();
    assert!(events.len() > 100, "{}", events.len());
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "item.decided" && e["data"]["decision"].is_object()),
        "item.decided events carry their decision on both"
    );

    // A second copy into the same target is refused, and writes nothing.
    match flywheel_store::copy::copy(&from, &to, &|_| {}).await {
        Err(CopyError::NotEmpty(tables)) => assert!(tables.contains(&"events".to_string()), "{tables:?}"),
        other => panic!("a non-empty target must be refused: {other:?}"),
    }
    assert_eq!(reads(&pg, &ids).await, b);

    // The copy keeps working: new rows come after the copied ones.
    let last_seq = events.iter().map(|e| e["seq"].as_i64().unwrap()).max().unwrap();
    let labels = a["/v1/projects/spam/labels?limit=1000"]["labels"].as_array().unwrap();
    let last_cursor = labels.iter().map(|l| l["cursor"].as_i64().unwrap()).max().unwrap();
    let max_task = ids
        .iter()
        .flat_map(|id| {
            a[&format!("/v1/projects/spam/items/{id}")]["tasks"]
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|t| t["task_id"].as_i64().unwrap())
        .max()
        .unwrap();
    let svc = {
        let (s, v) = pg
            .post("/v1/keys", ADMIN, json!({"scope": "service", "projects": ["spam"]}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["api_key"].as_str().unwrap().to_string()
    };
    let decided = pg
        .submit("spam", &svc, json!([item("late", "see you later", Some(0.5))]))
        .await;
    assert!(
        decided[0]["item_id"].as_i64().unwrap() > 50,
        "a fresh item id: {decided:?}"
    );
    // Two answers resolve it (overlap 2); other open work met on the way is answered too.
    let mut task_ids = vec![];
    for who in ["late1", "late2"] {
        let key = pg.reviewer(who, &[1], &["spam"]).await;
        loop {
            let t = pg.claim("spam", &key, Some("q")).await.expect("the new item's task");
            let (s, v) = pg
                .answer(&key, &t, &format!("{who}-{}", t["task_id"]), json!({"label": "ham"}))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            if t["item"]["external_id"] == "late" {
                task_ids.push(t["task_id"].as_i64().unwrap());
                break;
            }
        }
    }
    assert!(
        task_ids.iter().all(|&t| t > max_task),
        "{task_ids:?} after task {max_task}"
    );
    let after = pg.events("spam").await;
    let seqs: Vec<i64> = after.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "the log stays in order");
    let new: Vec<&Value> = after.iter().filter(|e| e["seq"].as_i64().unwrap() > last_seq).collect();
    for kind in ["item.decided", "review.submitted"] {
        assert!(
            new.iter().any(|e| e["kind"] == kind && e["external_id"] == "late"),
            "the new item's {kind} comes after the copied events: {new:?}"
        );
    }
    let (_, feed) = pg
        .get(&format!("/v1/projects/spam/labels?after={last_cursor}"), &svc)
        .await;
    assert!(
        feed["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["external_id"] == "late" && l["cursor"].as_i64().unwrap() > last_cursor),
        "the new label comes after the copied ones: {feed}"
    );

    drop(sqlite.stop().await);
    drop(pg.stop().await);
    pg_db.cleanup().await;
}

/// A copy that fails half-way (a row that is not the JSON its column holds) leaves the target as it was: the
/// next copy, once the source is mended, finds it empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_copy_writes_nothing() {
    let Some(Db::Postgres { url, schema }) = Db::postgres("copy_failed_writes_nothing").await else {
        return;
    };
    let src = Db::sqlite();
    let Db::Sqlite(dir) = &src else { unreachable!() };
    let app = spawn_app(&src).await;
    let svc = app.project("spam", example_policy()).await;
    app.submit(
        "spam",
        &svc,
        json!([item("a", "one", Some(0.5)), item("b", "two", Some(0.99))]),
    )
    .await;
    drop(app.stop().await);
    let file = dir.path().join("flywheel.db");
    let broken = rusqlite::Connection::open(&file).unwrap();
    broken
        .execute("UPDATE items SET payload = '{\"text\": ' WHERE external_id = 'b'", [])
        .unwrap();

    drop(
        flywheel_store::postgres::PgStore::connect(&url, Some(&schema))
            .await
            .unwrap(),
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    let to = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let from = format!("sqlite://{}", file.display());
    match flywheel_store::copy::copy(&from, &to, &|_| {}).await {
        // Caught on reading (the checksum parses JSON) after earlier tables were sent.
        Err(CopyError::Source(e) | CopyError::Target(e)) => {
            assert!(e.to_lowercase().contains("json"), "{e}")
        }
        other => panic!("the broken payload is refused: {other:?}"),
    }
    broken
        .execute(
            "UPDATE items SET payload = '{\"text\": \"two\"}' WHERE external_id = 'b'",
            [],
        )
        .unwrap();
    let report = flywheel_store::copy::copy(&from, &to, &|_| {}).await.unwrap();
    assert_eq!(rows(&report, "items"), 2);
    assert_eq!(rows(&report, "projects"), 1);
    flywheel_store::postgres::PgStore::drop_schema(&url, &schema)
        .await
        .unwrap();
}
