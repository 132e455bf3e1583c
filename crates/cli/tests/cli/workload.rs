//! `flywheel workload` against a running server (a wall clock, so times on task are not
//! asserted — the API tests check the figures under a manual clock): the table, `--json`,
//! and refusals as a message and exit code 1.

use super::*;

const ADMIN: &str = "workload-admin-key-0123456789";

async fn call(addr: &str, key: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let r = client_builder()
        .build()
        .unwrap()
        .post(format!("{addr}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

fn workload(addr: &str, key: &str, args: &[&str]) -> std::process::Output {
    flywheel()
        .arg("workload")
        .args(args)
        .args(["--server", addr])
        .env("FLYWHEEL_API_KEY", key)
        .output()
        .unwrap()
}

#[tokio::test]
async fn workload_prints_the_table_and_json_and_refuses_bad_windows() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let (mut child, _, addr) = start(&db, &[("FLYWHEEL_ADMIN_KEY", ADMIN)]);
    let policy = serde_json::json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "standard"}],
                                    "workbench": {"failure_categories": ["sarcasm"]}});
    call(
        &addr,
        ADMIN,
        "/v1/projects",
        serde_json::json!({"name": "ops", "labels": ["ham", "spam"], "policy": policy}),
    )
    .await;
    let ann = call(
        &addr,
        ADMIN,
        "/v1/reviewers",
        serde_json::json!({"name": "ann", "tiers": [1], "projects": ["ops"]}),
    )
    .await["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let items: Vec<_> = (0..2)
        .map(|i| serde_json::json!({"external_id": format!("m{i}"), "payload": {"text": format!("message {i}")}}))
        .collect();
    call(
        &addr,
        ADMIN,
        "/v1/projects/ops/items",
        serde_json::json!({"items": items}),
    )
    .await;
    for (i, answer) in [
        serde_json::json!({"label": "spam", "failure_category": "sarcasm"}),
        serde_json::json!({"label": "ham"}),
    ]
    .into_iter()
    .enumerate()
    {
        let t = call(&addr, &ann, "/v1/projects/ops/claim", serde_json::json!({})).await;
        let mut body = answer;
        body["lease_id"] = t["lease_id"].clone();
        body["review_id"] = format!("r{i}").into();
        call(&addr, &ann, &format!("/v1/tasks/{}/reviews", t["task_id"]), body).await;
    }

    let out = workload(&addr, ADMIN, &["--project", "ops", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["answers"], 2, "{v}");
    assert_eq!(v["reviewer"][0]["key"], "ann");
    assert_eq!(v["reviewer"][0]["answers"], 2);
    let cats: Vec<_> = v["failure_category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].clone(), r["answers"].as_u64()))
        .collect();
    assert!(
        cats.contains(&("sarcasm".into(), Some(1))) && cats.contains(&(serde_json::Value::Null, Some(1))),
        "{cats:?}"
    );

    let out = workload(&addr, ADMIN, &["--project", "ops"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("2 answers, "), "{text}");
    for heading in ["failure category", "final label", "queue", "tier", "reviewer"] {
        assert!(
            text.lines().any(|l| l.starts_with(heading) && l.contains("median")),
            "{heading}: {text}"
        );
    }
    assert!(
        text.lines().any(|l| l.starts_with("ann ") && l.contains("100.0%")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("sarcasm ")), "{text}");
    assert!(text.contains("Nothing stands out."), "{text}");

    // A window with no answers, by RFC 3339.
    let out = workload(
        &addr,
        ADMIN,
        &[
            "--project",
            "ops",
            "--json",
            "--since",
            "2001-01-01T00:00:00Z",
            "--until",
            "2001-01-02T00:00:00Z",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["answers"],
        0
    );

    let out = workload(&addr, ADMIN, &["--project", "ops", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("since is an RFC 3339") && err.contains("400"), "{err}");
    let out = workload(&addr, &ann, &["--project", "ops"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    let out = workload(&addr, ADMIN, &["--project", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    assert!(terminate(&mut child).success());
}
