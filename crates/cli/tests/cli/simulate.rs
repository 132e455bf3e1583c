//! `flywheel simulate`: Erlang C on a published case, seeded policy runs that repeat
//! exactly, a project's history read through the API, and flag mistakes as exit code 2.

use super::*;

const ADMIN: &str = "simulate-admin-key-0123456789";

fn simulate(args: &[&str]) -> std::process::Output {
    flywheel()
        .arg("simulate")
        .args(args)
        .env_remove("FLYWHEEL_SERVER")
        .env_remove("FLYWHEEL_API_KEY")
        .output()
        .unwrap()
}

fn json_out(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn erlang_answers_the_published_case() {
    // pyworkforce's documented example: 100 calls per 30 minutes, 3 minutes each, 80%
    // within 20 s, 30% shrinkage → 14 reviewers, 20 scheduled; the probabilities are the
    // textbook formula's, computed independently (see sim's erlang tests).
    let v = json_out(&simulate(&[
        "erlang",
        "--arrivals-per-hour",
        "200",
        "--handle-seconds",
        "180",
        "--answer-within-seconds",
        "20",
        "--service-level",
        "0.8",
        "--shrinkage",
        "0.3",
        "--json",
    ]));
    assert_eq!(v["reviewers"], 14);
    assert_eq!(v["scheduled_reviewers"], 20);
    let close = |k: &str, x: f64| {
        let got = v[k].as_f64().unwrap();
        assert!((got - x).abs() < 1e-9, "{k}: {got} vs {x}");
    };
    close("offered_load", 10.0);
    close("waiting_probability", 0.174_131_933_595_049_83);
    close("service_level", 0.888_350_019_179_466_9);
    close("occupancy", 10.0 / 14.0);
    close("average_wait_seconds", 7.835_937_011_777_243);
}

/// A policy with an urgent tier-2 queue, an auto rule, a double-checked queue and SLAs,
/// and 400 predictions, written into `dir`.
fn policy_files(dir: &std::path::Path) -> (String, String) {
    let policy = serde_json::json!({"rules": [
        {"name": "vip", "when": "attributes.vip", "action": "review", "queue": "urgent", "tier": 2, "priority": 100},
        {"name": "confident", "when": "confidence >= 0.9", "action": "auto"},
        {"name": "rest", "when": "true", "action": "review", "queue": "standard", "overlap": 2}],
        "audit_rate": 0.05, "sla_seconds": {"urgent": 300, "standard": 1800}});
    let policy_path = dir.join("policy.json");
    std::fs::write(&policy_path, policy.to_string()).unwrap();
    let mut rng = flywheel_sim::Rng::new(11);
    let lines: Vec<String> = (0..400)
        .map(|i| {
            let spam = (rng.unit() * 100.0).round() / 100.0;
            if i % 2 == 0 {
                serde_json::json!({"scores": {"ham": 1.0 - spam, "spam": spam}, "attributes": {"vip": i % 20 == 0}})
                    .to_string()
            } else {
                // An item as the API takes it.
                serde_json::json!({"external_id": format!("m{i}"), "payload": {"text": "x"}, "attributes": {"vip": false},
                    "prediction": {"model": "m", "scores": {"ham": 1.0 - spam, "spam": spam}}})
                .to_string()
            }
        })
        .collect();
    let scores_path = dir.join("scores.jsonl");
    std::fs::write(&scores_path, lines.join("\n")).unwrap();
    (
        policy_path.to_str().unwrap().to_string(),
        scores_path.to_str().unwrap().to_string(),
    )
}

fn policy_run(policy: &str, scores: &str, seed: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "policy",
        "--policy",
        policy,
        "--scores",
        scores,
        "--arrivals-per-hour",
        "600",
        "--reviewers",
        "1:6,2:3",
        "--handle-seconds",
        "1:20,2:60",
        "--accuracy",
        "0.9",
        "--hours",
        "4",
        "--seed",
        seed,
    ];
    args.extend_from_slice(extra);
    simulate(&args)
}

#[test]
fn a_seed_prints_the_same_figures_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (policy, scores) = policy_files(dir.path());
    let a = policy_run(&policy, &scores, "5", &["--json"]);
    let b = policy_run(&policy, &scores, "5", &["--json"]);
    let c = policy_run(&policy, &scores, "6", &["--json"]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    let v = json_out(&a)["simulation"].clone();
    assert_eq!(v["seed"], 5);
    assert_eq!(v["backlog"].as_array().unwrap().len(), 4);
    let rate = v["automation_rate"].as_f64().unwrap();
    assert!(rate > 0.05 && rate < 0.5, "{rate}");
    let queues = v["queues"].as_object().unwrap();
    for q in ["urgent", "standard", "audit"] {
        assert!(queues.contains_key(q), "{queues:?}");
    }
    assert_eq!(v["queues"]["urgent"]["sla_seconds"], 300.0);
    assert!(v["adjudications"].as_u64().unwrap() > 0);
    assert_eq!(v["staffing"], serde_json::json!({"1": 6, "2": 3}));
    // The text form repeats too, and so does a search.
    let t1 = policy_run(&policy, &scores, "5", &["--target-sla", "0.9"]);
    let t2 = policy_run(&policy, &scores, "5", &["--target-sla", "0.9"]);
    assert!(t1.status.success(), "{}", String::from_utf8_lossy(&t1.stderr));
    assert_eq!(t1.stdout, t2.stdout);
    let text = String::from_utf8(t1.stdout).unwrap();
    assert!(text.contains("target 90.0% within SLA: tier 1: "), "{text}");
}

#[test]
fn bad_flags_get_a_message_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let (policy, scores) = policy_files(dir.path());
    let erlang = |level: &str| {
        simulate(&[
            "erlang",
            "--arrivals-per-hour",
            "100",
            "--handle-seconds",
            "60",
            "--answer-within-seconds",
            "20",
            "--service-level",
            level,
        ])
    };
    let bad_policy = dir.path().join("bad.json");
    std::fs::write(
        &bad_policy,
        r#"{"rules": [{"name": "x", "when": "true", "action": "auto", "queue": "q"}]}"#,
    )
    .unwrap();
    let bad_policy = bad_policy.to_str().unwrap();
    let cases: Vec<(std::process::Output, &str)> = vec![
        (erlang("1.5"), "--service-level"),
        (erlang("often"), "--service-level"),
        (
            policy_run(&policy, &scores, "1", &["--target-sla", "2"]),
            "--target-sla",
        ),
        (
            simulate(&[
                "policy",
                "--policy",
                &policy,
                "--scores",
                &scores,
                "--arrivals-per-hour",
                "10",
                "--reviewers",
                "1=3",
            ]),
            "--reviewers",
        ),
        (
            simulate(&[
                "policy",
                "--policy",
                &policy,
                "--scores",
                &scores,
                "--arrivals-per-hour",
                "10",
                "--reviewers",
                "1:3",
                "--handle-seconds",
                "30",
            ]),
            "tier 2",
        ),
        (
            simulate(&[
                "policy",
                "--policy",
                &policy,
                "--scores",
                &scores,
                "--arrivals-per-hour",
                "10",
                "--reviewers",
                "1:3,2:1",
            ]),
            "--handle-seconds",
        ),
        (
            simulate(&[
                "policy",
                "--policy",
                &policy,
                "--arrivals-per-hour",
                "10",
                "--reviewers",
                "1:3",
            ]),
            "--scores",
        ),
        (policy_run(bad_policy, &scores, "1", &[]), "rules[0].queue"),
        (policy_run(&policy, &policy, "1", &[]), "line 1"),
    ];
    for (out, needle) in cases {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{needle}: {err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(out.stdout.is_empty());
    }
}

async fn admin(addr: &str, path: &str, key: &str, body: serde_json::Value) -> reqwest::Response {
    client_builder()
        .build()
        .unwrap()
        .post(format!("{addr}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_projects_history_is_drawn_from_and_measured_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let (mut child, _, addr) = start(&db, &[("FLYWHEEL_ADMIN_KEY", ADMIN)]);
    let policy = serde_json::json!({"rules": [{"name": "sure", "when": "confidence >= 0.9", "action": "auto"},
                                              {"name": "rest", "when": "true", "action": "review", "queue": "q"}],
                                    "sla_seconds": {"q": 600}});
    let r = admin(
        &addr,
        "/v1/projects",
        ADMIN,
        serde_json::json!({"name": "p", "labels": ["ham", "spam"], "policy": policy}),
    )
    .await;
    assert!(r.status().is_success());
    let items: Vec<_> = (0..20)
        .map(|i| {
            let spam = if i % 2 == 0 { 0.95 } else { 0.6 };
            serde_json::json!({"external_id": format!("m{i}"), "payload": {"text": format!("message {i}")},
                               "prediction": {"model": "m", "scores": {"ham": 1.0 - spam, "spam": spam}}})
        })
        .collect();
    assert!(
        admin(
            &addr,
            "/v1/projects/p/items",
            ADMIN,
            serde_json::json!({"items": items})
        )
        .await
        .status()
        .is_success()
    );
    let r: serde_json::Value = admin(
        &addr,
        "/v1/reviewers",
        ADMIN,
        serde_json::json!({"name": "ann", "tiers": [1], "projects": ["p"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let key = r["api_key"].as_str().unwrap().to_string();
    // Ann answers the ten reviews: "spam" for the first six, "ham" for the rest.
    for i in 0..10 {
        let task: serde_json::Value = admin(&addr, "/v1/projects/p/claim", &key, serde_json::json!({}))
            .await
            .json()
            .await
            .unwrap();
        let label = if i < 6 { "spam" } else { "ham" };
        // Some time on task, so that the measured mean is above zero.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let path = format!("/v1/tasks/{}/reviews", task["task_id"]);
        let body = serde_json::json!({"lease_id": task["lease_id"], "review_id": format!("r{i}"), "label": label});
        assert!(admin(&addr, &path, &key, body).await.status().is_success());
    }
    let out = flywheel()
        .args([
            "simulate",
            "policy",
            "--project",
            "p",
            "--server",
            &addr,
            "--arrivals-per-hour",
            "120",
        ])
        .args(["--reviewers", "1:2", "--hours", "2", "--seed", "3", "--json"])
        .env("FLYWHEEL_API_KEY", ADMIN)
        .output()
        .unwrap();
    let v = json_out(&out);
    assert_eq!(v["distinct_items"], 20);
    // One answer per item: each agrees with its own resolution.
    assert_eq!(v["measured"]["1"]["answers"], 10);
    assert_eq!(v["measured"]["1"]["accuracy"], 1.0);
    let handle = v["measured"]["1"]["handle_seconds"].as_f64().unwrap();
    assert_eq!(
        v["simulation"]["tiers"]["1"]["handle_seconds"].as_f64().unwrap(),
        handle
    );
    let rate = v["simulation"]["automation_rate"].as_f64().unwrap();
    assert!(rate > 0.3 && rate < 0.7, "{rate}");
    // A project that does not exist: the server's refusal, exit 1.
    let out = flywheel()
        .args([
            "simulate",
            "policy",
            "--project",
            "nope",
            "--server",
            &addr,
            "--arrivals-per-hour",
            "1",
        ])
        .args(["--reviewers", "1:1"])
        .env("FLYWHEEL_API_KEY", ADMIN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    assert!(terminate(&mut child).success());
}
