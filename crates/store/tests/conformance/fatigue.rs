//! Fatigue and pacing: `too_fast` stored with the answer (and weighing nothing in
//! consensus under `discount_too_fast`), a reviewer's answers read back with their
//! correctness signals, and the monitor's finding written once per work session.

use flywheel_core::Event;
use flywheel_core::event::{FatigueWindow, ReviewerFatigued};
use flywheel_core::policy::PacingSpec;

use super::*;

fn pacing(discount: bool) -> std::collections::HashMap<i64, Judging> {
    [(
        1,
        Judging {
            pacing: Some(PacingSpec {
                min_seconds_per_task: Some(5.0),
                max_tasks_per_session: None,
                discount_too_fast: discount,
            }),
            ..Default::default()
        },
    )]
    .into()
}

async fn answer_judged(
    f: &Fixture,
    r: &Reviewer,
    t: &ClaimedTask,
    label_: &str,
    judging: &std::collections::HashMap<i64, Judging>,
    now: i64,
) -> ReviewResult {
    f.store
        .submit_review(
            NewReview {
                task_id: t.task_id,
                lease_id: t.lease_id,
                reviewer_id: r.id,
                reviewer_name: r.name.clone(),
                review_id: format!("{}-{}", r.name, t.task_id),
                answer: label(label_),
                failure_category: None,
                note: None,
                fields: None,
                judging: judging.clone(),
            },
            now,
        )
        .await
        .unwrap()
}

pub async fn too_fast_answers_are_stored_and_discounted(f: Fixture) {
    assert_eq!(f.project.id, 1, "the judging maps name project 1");
    let s = &f.store;
    f.submit(vec![review("x", "q", 1, 0, 2), review("y", "q", 1, 0, 2)])
        .await;
    let (a, b) = (f.reviewer("a", &[1]).await, f.reviewer("b", &[1]).await);
    // x: a answers in 1 s (too fast) "ham", b in 10 s "spam": b alone decides.
    let ta = f.claim(&a, None, 1_000).await.unwrap();
    let tb = f.claim(&b, None, 1_000).await.unwrap();
    assert_eq!(ta.task_id, tb.task_id);
    let ra = answer_judged(&f, &a, &ta, "ham", &pacing(true), 2_000).await;
    assert_eq!(ra.stored.map(|s| s.too_fast), Some(true));
    let rb = answer_judged(&f, &b, &tb, "spam", &pacing(true), 11_000).await;
    assert_eq!(rb.stored.map(|s| s.too_fast), Some(false));
    assert_eq!(rb.outcome, "resolved");
    assert_eq!(rb.resolution.unwrap().label, "spam");
    // y: the same answers counted (no discount) disagree and go to adjudication.
    let ta = f.claim(&a, None, 20_000).await.unwrap();
    let tb = f.claim(&b, None, 20_000).await.unwrap();
    answer_judged(&f, &a, &ta, "ham", &pacing(false), 21_000).await;
    assert_eq!(
        answer_judged(&f, &b, &tb, "spam", &pacing(false), 30_000).await.outcome,
        "adjudicate"
    );
    // Read back: a's two answers, too fast, with a signal only where b's resolution is
    // final (x; y is waiting for its adjudicator).
    let got = s.reviewer_answers(f.project.id, a.id, 100).await.unwrap();
    assert_eq!(
        got,
        vec![
            SessionAnswer {
                answered_at: 2_000,
                time_ms: 1_000,
                too_fast: true,
                correct: Some(false),
            },
            SessionAnswer {
                answered_at: 21_000,
                time_ms: 1_000,
                too_fast: true,
                correct: None,
            },
        ]
    );
    let got = s.reviewer_answers(f.project.id, b.id, 1).await.unwrap();
    assert_eq!(got.len(), 1, "the newest only");
    assert_eq!((got[0].answered_at, got[0].too_fast), (30_000, false));
}

pub async fn gold_answers_are_signals_and_a_lone_answer_is_not(f: Fixture) {
    let s = &f.store;
    let gold = vec![NewGold {
        external_id: "g".into(),
        payload: json!({"text": "gold"}),
        attributes: json!({}),
        label: "spam".into(),
        prediction: None,
    }];
    s.add_gold(f.project.id, gold, "admin", 5).await.unwrap();
    f.submit(vec![review("x", "q", 1, 0, 1)]).await;
    let a = f.reviewer("a", &[1]).await;
    let request = |gold: bool| ClaimRequest {
        project_id: f.project.id,
        reviewer_id: a.id,
        reviewer_name: "a".into(),
        tiers: vec![1],
        queue: None,
        lease_ms: LEASE,
        gold: gold.then_some(0.0),
    };
    let g = s.claim(request(true), 100).await.unwrap().unwrap();
    assert_eq!(g.external_id, "g");
    f.answer(&a, &g, "g1", label("ham"), 110).await.unwrap();
    let x = s.claim(request(false), 120).await.unwrap().unwrap();
    assert_eq!(
        f.answer(&a, &x, "x1", label("ham"), 130).await.unwrap().outcome,
        "resolved"
    );
    let got = s.reviewer_answers(f.project.id, a.id, 10).await.unwrap();
    let signals: Vec<Option<bool>> = got.iter().map(|x| x.correct).collect();
    // Gold: wrong. x: resolved by a alone, so it says nothing of a's accuracy.
    assert_eq!(signals, [Some(false), None]);
}

fn finding(reviewer_id: i64, session_started_at: i64) -> Event {
    let w = FatigueWindow {
        signals: 30,
        correct: 20,
        accuracy: Some(2.0 / 3.0),
        accuracy_lower: Some(0.49),
        accuracy_upper: Some(0.81),
        median_seconds: Some(12.0),
    };
    Event::ReviewerFatigued(ReviewerFatigued {
        reviewer_id,
        reviewer: "a".into(),
        session_started_at,
        session_answers: 60,
        reason: "accuracy".into(),
        baseline_from: "session".into(),
        baseline: w.clone(),
        recent: w,
        p_value: Some(0.01),
        on_fatigue: "break".into(),
        break_until: Some(1_000_000),
    })
}

pub async fn fatigue_is_recorded_once_per_session(f: Fixture) {
    let s = &f.store;
    let a = f.reviewer("a", &[1]).await;
    let b = f.reviewer("b", &[1]).await;
    let new = |session: i64, until: Option<i64>| NewFatigue {
        project_id: f.project.id,
        reviewer_id: a.id,
        session_started_at: session,
        break_until: until,
        event: finding(a.id, session),
    };
    assert!(s.record_fatigue(new(100, Some(1_000_000)), 500).await.unwrap());
    assert!(
        !s.record_fatigue(new(100, Some(2_000_000)), 600).await.unwrap(),
        "once per session"
    );
    let state = FatigueState {
        reviewer_id: a.id,
        session_started_at: 100,
        fatigued_at: 500,
        break_until: Some(1_000_000),
    };
    assert_eq!(
        s.fatigue_states(f.project.id, None).await.unwrap(),
        std::slice::from_ref(&state)
    );
    assert_eq!(s.fatigue_states(f.project.id, Some(b.id)).await.unwrap(), []);
    // A new session may fire again, and replaces the state.
    assert!(s.record_fatigue(new(5_000, None), 7_000).await.unwrap());
    assert_eq!(
        s.fatigue_states(f.project.id, Some(a.id)).await.unwrap(),
        [FatigueState {
            session_started_at: 5_000,
            fatigued_at: 7_000,
            break_until: None,
            ..state
        }]
    );
    let fired: Vec<i64> = f
        .all_events()
        .await
        .iter()
        .filter(|e| e.kind == Event::REVIEWER_FATIGUED)
        .map(|e| e.data["session_started_at"].as_i64().unwrap())
        .collect();
    assert_eq!(fired, [100, 5_000]);
}
