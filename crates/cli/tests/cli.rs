//! The `flywheel` binary as an operator meets it: start, first-run admin key, signals,
//! exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn flywheel() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flywheel"));
    c.env_remove("FLYWHEEL_ADMIN_KEY")
        .env_remove("FLYWHEEL_DATABASE")
        .env_remove("FLYWHEEL_LISTEN");
    c
}

/// Starts `flywheel serve` and reads its stdout up to the "listening" line. The caller
/// waits for the child (see `terminate`).
#[allow(clippy::zombie_processes)]
fn start(db: &str, envs: &[(&str, &str)]) -> (Child, Vec<String>, String) {
    let mut child = flywheel()
        .args(["serve", "--listen", "127.0.0.1:0", "--database", db])
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = vec![];
    let mut out = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "flywheel exited early: {lines:?}"
        );
        let line = line.trim_end().to_string();
        lines.push(line.clone());
        if let Some(rest) = line.strip_prefix("flywheel listening on ") {
            let addr = rest.split_whitespace().next().unwrap().to_string();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in out.lines() {});
            return (child, lines, addr);
        }
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap()
}

#[tokio::test]
async fn first_start_prints_a_key_once_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let (mut child, lines, addr) = start(&db, &[]);
    let key_line = lines
        .iter()
        .find(|l| l.starts_with("admin API key"))
        .expect("the first start prints the admin key");
    let key = key_line.rsplit(' ').next().unwrap().to_string();
    let http = reqwest::Client::new();
    let r = http.get(format!("{addr}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{addr}/v1/keys"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"scope": "service", "projects": ["none"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "the printed key is the admin key");
    assert!(terminate(&mut child).success(), "SIGTERM drains and exits 0");

    let (mut child, lines, _) = start(&db, &[]);
    assert!(
        !lines.iter().any(|l| l.starts_with("admin API key")),
        "the key is printed only once: {lines:?}"
    );
    assert!(terminate(&mut child).success());
}

#[tokio::test]
async fn the_admin_key_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let (mut child, lines, addr) = start(&db, &[("FLYWHEEL_ADMIN_KEY", "env-admin-key-0123456789")]);
    assert!(
        !lines.iter().any(|l| l.contains("env-admin-key")),
        "the key from the environment is never printed"
    );
    let r = reqwest::Client::new()
        .post(format!("{addr}/v1/projects"))
        .bearer_auth("env-admin-key-0123456789")
        .json(&serde_json::json!({"name": "p", "labels": ["a", "b"], "policy": {"rules": []}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(terminate(&mut child).success());
}

#[test]
fn operator_mistakes_get_a_message_and_a_non_zero_exit() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["serve", "--database", "mysql://x"], &[], "unknown database URL"),
        (&["serve", "--listen", "not-an-address"], &[], "invalid value"),
        (
            &["serve", "--database", "sqlite:///tmp/x.db"],
            &[("FLYWHEEL_ADMIN_KEY", "short")],
            "too short",
        ),
        (&["frobnicate"], &[], "unrecognized subcommand"),
    ];
    for (args, envs, message) in cases {
        let out = flywheel().args(*args).envs(envs.iter().copied()).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}
