//! Reviewer fatigue and pacing, end to end: a reviewer who speeds up is found by the
//! monitor (`reviewer.fatigued`, shown by `GET …/reviewers`) and sent on a break (429
//! `break_due` with `Retry-After`); pacing's session cap and `too_fast`. And the issue's
//! acceptance test of the monitor itself, on seeded simulated reviewers (no server: it
//! feeds core's monitor what a reviewer on overlap-2 tasks with 5% gold would produce).

use flywheel_core::fatigue::{SessionAnswer, assess};
use flywheel_core::policy::FatigueSpec;
use flywheel_sim::reviewer::Fatigue;
use flywheel_sim::{Profile, Reviewer, Rng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn review_all(extra: Value) -> Value {
    let mut p = json!({"rules": [{"name": "all", "when": "true", "action": "review"}], "lease_seconds": 3600});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

async fn items(app: &TestApp, key: &str, n: usize) {
    let batch: Vec<Value> = (0..n)
        .map(|i| item(&format!("i{}-{i}", rand_id()), "hello", None))
        .collect();
    app.submit("spam", key, json!(batch)).await;
}

/// Claims, waits `secs` on the server's clock, answers "ham".
async fn work_one(app: &TestApp, key: &str, secs: i64) -> Value {
    let t = app.claim("spam", key, None).await.expect("work");
    app.clock.advance_ms(secs * 1000);
    let (s, v) = app
        .answer(key, &t, &format!("r{}", rand_id()), json!({"label": "ham"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn claim_status(app: &TestApp, key: &str) -> (StatusCode, Value, Option<String>) {
    let resp = app
        .http
        .post(format!("{}/v1/projects/spam/claim", app.base))
        .bearer_auth(key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|h| h.to_str().unwrap().to_string());
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, retry)
}

async fn reviewer_row(app: &TestApp, name: &str) -> Value {
    let (s, v) = app.get("/v1/projects/spam/reviewers", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["reviewers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
        .unwrap()
}

async fn a_reviewer_who_speeds_up_is_found_and_sent_on_a_break(db: Db) {
    let app = spawn_app(&db).await;
    let policy = review_all(json!({"fatigue": {"window": 5, "on_fatigue": "break", "break_minutes": 15}}));
    let key = app.project("spam", policy).await;
    let ann = app.reviewer("ann", &[1], &["spam"]).await;
    items(&app, &key, 12).await;
    // Five answers at 20 s, then five at 6 s (70% faster; no correctness signals, so
    // accuracy does not rise): the monitor fires on the tenth, once.
    for i in 0..10 {
        work_one(&app, &ann, if i < 5 { 20 } else { 6 }).await;
        let fired = app
            .events("spam")
            .await
            .into_iter()
            .filter(|e| e["kind"] == "reviewer.fatigued")
            .count();
        assert_eq!(fired, usize::from(i == 9), "after answer {i}");
    }
    let e = app
        .events("spam")
        .await
        .into_iter()
        .find(|e| e["kind"] == "reviewer.fatigued")
        .unwrap();
    let d = &e["data"];
    assert_eq!(
        (d["reviewer"].as_str(), d["reason"].as_str()),
        (Some("ann"), Some("speed"))
    );
    assert_eq!(d["baseline"]["median_seconds"], 20.0);
    assert_eq!(d["recent"]["median_seconds"], 6.0);
    assert_eq!(d["session_answers"], 10);
    let until = d["break_until"].as_i64().unwrap();
    assert_eq!(until, app.clock_now() + 15 * 60_000);
    // Claims are refused for the break, with the wait in the body and the header.
    let (s, v, retry) = claim_status(&app, &ann).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "break_due");
    assert_eq!(v["error"]["retry_after_s"], 900);
    assert_eq!(retry.as_deref(), Some("900"));
    let row = reviewer_row(&app, "ann").await;
    assert_eq!(row["session"]["answers"], 10);
    assert_eq!(row["fatigue"]["break_until"], until);
    assert_eq!(row["fatigue"]["this_session"], true);
    assert!(row["fatigue"]["fatigued_since"].is_i64());
    // After the break, work resumes in a new session.
    app.clock.advance_ms(15 * 60_000 + 1);
    let (s, v, _) = claim_status(&app, &ann).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let row = reviewer_row(&app, "ann").await;
    assert_eq!(
        row["session"],
        Value::Null,
        "the last answer is older than the session gap"
    );
    assert_eq!(row["fatigue"]["break_until"], Value::Null);
    assert_eq!(row["fatigue"]["this_session"], false);
    app.stop().await;
}

async fn a_break_shorter_than_the_session_gap_still_starts_a_new_session(db: Db) {
    let app = spawn_app(&db).await;
    let policy = review_all(
        json!({"fatigue": {"window": 5, "on_fatigue": "break", "break_minutes": 1},
        "pacing": {"max_tasks_per_session": 12}}),
    );
    let key = app.project("spam", policy).await;
    let cy = app.reviewer("cy", &[1], &["spam"]).await;
    items(&app, &key, 14).await;
    for i in 0..10 {
        work_one(&app, &cy, if i < 5 { 20 } else { 6 }).await;
    }
    let (s, v, retry) = claim_status(&app, &cy).await;
    assert_eq!(
        (s, retry.as_deref()),
        (StatusCode::TOO_MANY_REQUESTS, Some("60")),
        "{v}"
    );
    // A minute's rest, far under the 900 s gap: the answers after it are a new session,
    // so neither the session cap nor the monitor counts the ten before.
    app.clock.advance_ms(60_000);
    work_one(&app, &cy, 20).await;
    let row = reviewer_row(&app, "cy").await;
    assert_eq!(row["session"]["answers"], 1, "{row}");
    assert_eq!(row["fatigue"]["this_session"], false);
    work_one(&app, &cy, 20).await;
    work_one(&app, &cy, 20).await;
    assert_eq!(
        claim_status(&app, &cy).await.0,
        StatusCode::OK,
        "3 of 12 in the new session"
    );
    app.stop().await;
}

async fn pacing_caps_a_session_and_counts_answers_too_fast(db: Db) {
    let app = spawn_app(&db).await;
    let policy = review_all(
        json!({"pacing": {"min_seconds_per_task": 3, "max_tasks_per_session": 3, "discount_too_fast": true}}),
    );
    let key = app.project("spam", policy).await;
    let bob = app.reviewer("bob", &[1, 2], &["spam"]).await;
    items(&app, &key, 6).await;
    // 1 s is too fast: the vote weighs nothing, so the task goes to a senior reviewer.
    let v = work_one(&app, &bob, 1).await;
    assert_eq!(v["outcome"], "adjudicate");
    let v = work_one(&app, &bob, 10).await;
    assert_eq!(v["outcome"], "resolved");
    // The third answer reaches the cap: "answer and next" stores it and refuses the next.
    let t = app.claim("spam", &bob, None).await.unwrap();
    app.clock.advance_ms(10_000);
    let (s, v) = app
        .answer(
            &bob,
            &t,
            "r-third",
            json!({"label": "spam", "next": {"project": "spam"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["outcome"], "resolved");
    assert_eq!(v["next"], Value::Null);
    assert_eq!(v["next_error"]["code"], "break_due");
    let (s, v, retry) = claim_status(&app, &bob).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "break_due");
    // Until 900 s after the last answer (and a millisecond): 901 s.
    assert_eq!(v["error"]["retry_after_s"], 901);
    assert_eq!(retry.as_deref(), Some("901"));
    let row = reviewer_row(&app, "bob").await;
    assert_eq!(
        (row["session"]["answers"].as_u64(), row["session"]["too_fast"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(row["session"]["median_seconds"], 10.0);
    assert!(row["fatigue"]["break_until"].is_i64());
    assert_eq!(row["fatigue"]["fatigued_since"], Value::Null);
    // A gap of the session length starts a new session.
    app.clock.advance_ms(900_000);
    assert_eq!(claim_status(&app, &bob).await.0, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance_ms(1_000);
    assert_eq!(claim_status(&app, &bob).await.0, StatusCode::OK);
    app.stop().await;
}

async fn fatigue_and_pacing_settings_are_checked_by_field(db: Db) {
    let app = spawn_app(&db).await;
    app.project("spam", review_all(json!({}))).await;
    for (extra, field) in [
        (json!({"fatigue": {"window": 2}}), "fatigue.window"),
        (json!({"fatigue": {"alpha": 0.7}}), "fatigue.alpha"),
        (json!({"fatigue": {"speedup": 1.5}}), "fatigue.speedup"),
        (json!({"fatigue": {"on_fatigue": "nap"}}), "fatigue.on_fatigue"),
        (json!({"fatigue": {"break_minutes": 0}}), "fatigue.break_minutes"),
        (
            json!({"fatigue": {"session_gap_seconds": 5}}),
            "fatigue.session_gap_seconds",
        ),
        (
            json!({"pacing": {"max_tasks_per_session": 0}}),
            "pacing.max_tasks_per_session",
        ),
        (
            json!({"pacing": {"min_seconds_per_task": -1}}),
            "pacing.min_seconds_per_task",
        ),
        (json!({"pacing": {"cap": 3}}), "pacing.cap"),
    ] {
        let (s, v) = app
            .call(
                reqwest::Method::PUT,
                "/v1/projects/spam/policy",
                ADMIN,
                Some(review_all(extra.clone())),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{extra}: {v}");
        assert_eq!(v["error"]["field"], field, "{extra}: {v}");
    }
    app.stop().await;
}

on_both_backends!(
    a_reviewer_who_speeds_up_is_found_and_sent_on_a_break,
    a_break_shorter_than_the_session_gap_still_starts_a_new_session,
    pacing_caps_a_session_and_counts_answers_too_fast,
    fatigue_and_pacing_settings_are_checked_by_field,
);

/// What one simulated reviewer's session gives the monitor: each answer's time on task
/// and, when its task is settled, whether it agreed with the outcome. 5% of tasks are gold
/// (the signal is exact); the rest have overlap 2 with a partner (accuracy 0.9), and a
/// disagreement goes to an adjudicator (0.95), whose label is final. A task is settled
/// 0 to 3 answers later (the partner works alongside).
struct Simulated {
    answers: Vec<SessionAnswer>,
    /// When each answer's signal becomes known (an index into `answers`).
    known_at: Vec<usize>,
}

fn simulate(seed: u64, tasks: usize, fatigue: Option<Fatigue>) -> Simulated {
    let mut rng = Rng::new(seed);
    let profile = |accuracy| Profile {
        accuracy,
        ms_per_review: 20_000,
    };
    let mut me = Reviewer::new("me", "", profile(0.95));
    if let Some(f) = fatigue {
        me = me.with_fatigue(f);
    }
    let mut partner = Reviewer::new("partner", "", profile(0.9));
    let mut adjudicator = Reviewer::new("adjudicator", "", profile(0.95));
    let labels = vec!["ham".to_string(), "spam".to_string()];
    let (mut answers, mut known_at, mut at) = (Vec::new(), Vec::new(), 0i64);
    for i in 0..tasks {
        let truth = if rng.chance(0.5) { "ham" } else { "spam" };
        let mine = me.answer(truth, &labels, &mut rng);
        at += mine.took_ms;
        let correct = if rng.chance(0.05) {
            mine.label == truth
        } else {
            let theirs = partner.answer(truth, &labels, &mut rng).label;
            let outcome = if theirs == mine.label {
                theirs
            } else {
                adjudicator.answer(truth, &labels, &mut rng).label
            };
            mine.label == outcome
        };
        answers.push(SessionAnswer {
            answered_at: at,
            time_ms: mine.took_ms,
            too_fast: false,
            correct: Some(correct),
        });
        known_at.push(i + rng.below(4));
    }
    Simulated { answers, known_at }
}

/// The first answer (counted from 1) after which the monitor fires, as the server runs it:
/// after each answer, on the signals known by then.
fn fires_after(spec: &FatigueSpec, s: &Simulated) -> Option<usize> {
    (0..s.answers.len()).find_map(|n| {
        let seen: Vec<SessionAnswer> = s.answers[..=n]
            .iter()
            .zip(&s.known_at)
            .map(|(a, k)| SessionAnswer {
                correct: a.correct.filter(|_| *k <= n),
                ..*a
            })
            .collect();
        assess(spec, &seen).map(|_| n + 1)
    })
}

#[test]
fn the_monitor_finds_a_tiring_reviewer_and_spares_untiring_ones() {
    let spec = FatigueSpec::default();
    // Tires after 60 tasks: accuracy 0.95 → 0.70 and time on task −40% over the next 20.
    let tiring = Fatigue {
        onset: 60,
        ramp: 20,
        floor: 0.70,
        speedup: 0.4,
    };
    let found: Vec<Option<usize>> = (1..=10)
        .map(|seed| fires_after(&spec, &simulate(seed, 200, Some(tiring))))
        .collect();
    let in_time = found
        .iter()
        .filter(|n| n.is_some_and(|n| (61..=100).contains(&n)))
        .count();
    assert!(
        in_time >= 9,
        "found within 40 tasks of the onset in {in_time} of 10: {found:?}"
    );
    let alarms: Vec<u64> = (101..=120)
        .filter(|seed| fires_after(&spec, &simulate(*seed, 200, None)).is_some())
        .collect();
    assert!(alarms.len() <= 1, "false alarms in 20 untiring sessions: {alarms:?}");
    eprintln!("found after {found:?}; false alarms {alarms:?}");
    if std::env::var("FATIGUE_MEASURE").is_ok() {
        let n = 1000u64;
        let caught = (1..=n)
            .filter(|s| {
                fires_after(&spec, &simulate(10_000 + s, 200, Some(tiring))).is_some_and(|n| (61..=100).contains(&n))
            })
            .count();
        let false_alarms = (1..=n)
            .filter(|s| fires_after(&spec, &simulate(20_000 + s, 200, None)).is_some())
            .count();
        eprintln!("over {n} seeds: found in time {caught}, false alarms {false_alarms}");
    }
}
