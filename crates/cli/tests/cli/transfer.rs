//! `flywheel export` and `flywheel import` against a running server: a project out to a
//! file and into another project, and refusals as a message and exit code 1.

use super::*;

const ADMIN: &str = "transfer-admin-key-0123456789";

async fn admin_post(addr: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let r = client_builder()
        .build()
        .unwrap()
        .post(format!("{addr}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

fn transfer(addr: &str, args: &[&str]) -> std::process::Output {
    flywheel()
        .args(args)
        .args(["--server", addr])
        .env("FLYWHEEL_API_KEY", ADMIN)
        .output()
        .unwrap()
}

#[tokio::test]
async fn export_to_a_file_and_import_it_into_another_project() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let (mut child, _, addr) = start(&db, &[("FLYWHEEL_ADMIN_KEY", ADMIN)]);
    let policy = serde_json::json!({"rules": [{"name": "sure", "when": "confidence >= 0.9", "action": "auto"},
                                              {"name": "rest", "when": "true", "action": "review", "queue": "q"}]});
    for name in ["src", "dst"] {
        admin_post(
            &addr,
            "/v1/projects",
            serde_json::json!({"name": name, "labels": ["ham", "spam"], "policy": policy}),
        )
        .await;
    }
    let items: Vec<_> = (0..30)
        .map(|i| {
            let spam = if i % 3 == 0 { 0.95 } else { 0.5 };
            serde_json::json!({"external_id": format!("m{i}"), "payload": {"text": format!("message {i}")},
                               "prediction": {"model": "m", "scores": {"ham": 1.0 - spam, "spam": spam}}})
        })
        .collect();
    admin_post(&addr, "/v1/projects/src/items", serde_json::json!({"items": items})).await;

    let out = transfer(&addr, &["export", "--project", "src", "--format", "jsonl"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 30);
    let file = dir.path().join("src.jsonl");
    std::fs::write(&file, &text).unwrap();
    let path = file.to_str().unwrap();
    let out = transfer(&addr, &["import", "--project", "dst", "--format", "jsonl", path]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["items"], 30);
    let out = transfer(
        &addr,
        &["export", "--project", "dst", "--format", "jsonl", "--source", "auto"],
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        10,
        "m0, m3, … decided auto again"
    );

    std::fs::write(
        &file,
        "{\"external_id\": \"ok\", \"payload\": {}}\n{\"external_id\": 7}\n",
    )
    .unwrap();
    let out = transfer(&addr, &["import", "--project", "dst", "--format", "jsonl", path]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: external_id"), "{err}");
    let out = transfer(&addr, &["export", "--project", "dst", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("format"));
    let out = transfer(&addr, &["export", "--project", "nope", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    assert!(terminate(&mut child).success());
}
