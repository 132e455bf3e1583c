//! The README's curl tour, run as written: a newcomer's first ten minutes must work.

use std::process::{Command, Stdio};

use super::{flywheel, start_serve, terminate};

const ADMIN: &str = "tour-admin-key-0123456789";

/// The shell block under "## A tour in curl", with `ADMIN` and `F` set to a running server.
fn tour_script(admin: &str, base: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let tour = &readme[readme.find("## A tour in curl").expect("the README has a tour")..];
    let start = tour.find("```sh\n").expect("the tour is a sh block") + "```sh\n".len();
    let block = &tour[start..start + tour[start..].find("```").unwrap()];
    let mut set = (false, false);
    let script: Vec<String> = block
        .lines()
        .map(|line| {
            if line.starts_with("ADMIN=") {
                set.0 = true;
                format!("ADMIN={admin}")
            } else if line.starts_with("F=") {
                set.1 = true;
                format!("F={base}")
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(set, (true, true), "the tour sets ADMIN and F on lines of their own");
    script.join("\n")
}

#[test]
fn readme_tour_runs_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let mut serve = flywheel();
    serve
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
        .env("FLYWHEEL_ADMIN_KEY", ADMIN);
    let (mut child, _, addr) = start_serve(serve, Stdio::null());
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &tour_script(ADMIN, &addr)])
        .output()
        .expect("bash runs (the tour needs bash, curl and jq; .ci/run installs them)");
    assert!(terminate(&mut child).success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "the tour failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("\"error\""),
        "a step of the tour was refused:\n{stdout}"
    );
    // Every step answers one JSON document (curl adds no newline); the last is the feed.
    let answers: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        answers.len(),
        5,
        "one answer per curl whose output is not captured: {stdout}"
    );
    let feed = answers.last().unwrap()["labels"].as_array().unwrap().clone();
    let of = |id: &str| feed.iter().find(|l| l["external_id"] == id).cloned().unwrap();
    assert_eq!(
        (of("m1")["label"].clone(), of("m1")["source"].clone()),
        ("spam".into(), "auto".into())
    );
    assert_eq!(
        (of("m2")["label"].clone(), of("m2")["source"].clone()),
        ("ham".into(), "human".into())
    );
}
