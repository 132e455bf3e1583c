//! SLA deadlines: claims order by deadline within a priority, and the SLA worker's run
//! writes `sla.warning` and `sla.breached` once per task, applying the queue's action
//! (none, escalate, auto) in the same transaction.

use std::collections::HashMap;

use flywheel_core::sla::{ESCALATE_PRIORITY_STEP, SlaAction, Slas};

use super::*;

/// Queue `q` with a 100 s SLA (warned 20 s before) and `action` on breach.
fn q_slas(f: &Fixture, action: SlaAction) -> HashMap<i64, Arc<Slas>> {
    [(
        f.project.id,
        Arc::new(Slas {
            seconds: [("q".to_string(), 100)].into(),
            action: [("q".to_string(), action)].into(),
            warn_before_seconds: Default::default(),
        }),
    )]
    .into()
}

/// The (kind, task) of the SLA events in the log, in order.
async fn sla_events(f: &Fixture) -> Vec<(String, Option<i64>, serde_json::Value)> {
    f.all_events()
        .await
        .into_iter()
        .filter(|e| e.kind.starts_with("sla."))
        .map(|e| (e.kind, e.task_id, e.data))
        .collect()
}

async fn queue_q(f: &Fixture, now: i64) -> QueueStats {
    let st = f.store.stats(f.project.id, now).await.unwrap();
    st.queues.into_iter().find(|q| q.name == "q").unwrap_or_default()
}

fn predicted(mut item: NewItem) -> NewItem {
    item.prediction = Some(Prediction {
        model: "m".into(),
        version: Some("3".into()),
        scores: vec![("ham".into(), 0.2), ("spam".into(), 0.8)],
        novelty: None,
    });
    item
}

pub async fn claims_follow_priority_then_deadline_then_age(f: Fixture) {
    // Submitted at 10, in this order (so item ids rise in it); two slots each, so that a
    // second reviewer sees the same order through the queue's index.
    f.submit(vec![
        review("none", "q", 1, 0, 2),
        with_sla(review("late", "q", 1, 0, 2), 100),
        with_sla(review("soon", "q", 1, 0, 2), 50),
        review("urgent", "q", 1, 1, 2),
        with_sla(review("soon2", "q", 1, 0, 2), 50),
    ])
    .await;
    let order = ["urgent", "soon", "soon2", "late", "none"];
    for (name, queue) in [("any", None), ("queued", Some("q"))] {
        let r = f.reviewer(name, &[1]).await;
        let mut got = Vec::new();
        while let Some(t) = f.claim(&r, queue, 20).await {
            got.push(t.external_id);
        }
        assert_eq!(
            got, order,
            "priority, then the earliest deadline (none last), then age ({name})"
        );
    }
}

pub async fn sla_warning_and_breach_are_written_once_per_task(f: Fixture) {
    let s = &f.store;
    let slas = q_slas(&f, SlaAction::None);
    // Due at 100,010, warned at 80,010 (20% of the SLA before).
    let out = f.submit(vec![with_sla(review("a", "q", 1, 0, 1), 100)]).await;
    let record = &s.item(f.project.id, "a").await.unwrap().unwrap().tasks[0];
    assert_eq!(record.due_at, Some(100_010), "created at 10 with 100 s");
    let task = record.task_id;
    assert_eq!(out.len(), 1);
    let run = |now| s.run_sla(slas.clone(), now, 100);
    assert_eq!(run(80_009).await.unwrap(), SlaRun::default());
    assert_eq!(
        run(80_010).await.unwrap(),
        SlaRun {
            warnings: 1,
            breaches: 0
        }
    );
    assert_eq!(run(80_010).await.unwrap(), SlaRun::default(), "warned once");
    assert_eq!(run(99_000).await.unwrap(), SlaRun::default());
    let q = queue_q(&f, 99_000).await;
    assert_eq!((q.due_soon, q.overdue, q.breached_total), (1, 0, 0));
    let q = queue_q(&f, 100_010).await;
    assert_eq!(
        (q.due_soon, q.overdue, q.breached_total),
        (0, 1, 0),
        "due, not yet breached"
    );
    assert_eq!(
        run(100_010).await.unwrap(),
        SlaRun {
            warnings: 0,
            breaches: 1
        }
    );
    assert_eq!(run(100_010).await.unwrap(), SlaRun::default(), "breached once");
    assert_eq!(run(10_000_000).await.unwrap(), SlaRun::default());
    let q = queue_q(&f, 100_020).await;
    assert_eq!((q.open, q.due_soon, q.overdue, q.breached_total), (1, 0, 1, 1));
    let events = sla_events(&f).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!((events[0].0.as_str(), events[0].1), ("sla.warning", Some(task)));
    assert_eq!(events[0].2["due_at"], 100_010);
    assert_eq!((events[1].0.as_str(), events[1].1), ("sla.breached", Some(task)));
    assert_eq!(
        (events[1].2["action"].as_str(), events[1].2["applied"].as_str()),
        (Some("none"), Some("none"))
    );
    // `none` leaves the task where it was, still claimable.
    let r = f.reviewer("ann", &[1]).await;
    let t = f.claim(&r, None, 100_030).await.expect("still claimable");
    assert_eq!(t.tier, 1);

    // A run that comes after both times writes both, the warning first; tasks without a
    // deadline are never touched.
    f.submit(vec![
        with_sla(review("b", "q", 1, 0, 1), 100),
        review("c", "q", 1, 0, 1),
    ])
    .await;
    assert_eq!(
        run(1_000_000).await.unwrap(),
        SlaRun {
            warnings: 1,
            breaches: 1
        }
    );
    let kinds: Vec<String> = sla_events(&f).await.into_iter().skip(2).map(|e| e.0).collect();
    assert_eq!(kinds, ["sla.warning", "sla.breached"]);
}

pub async fn answered_within_sla_is_the_share_closed_by_the_deadline(f: Fixture) {
    f.submit(vec![
        with_sla(review("a", "q", 1, 0, 1), 100),
        with_sla(review("b", "q", 1, 0, 1), 100),
        review("c", "q", 1, 0, 1),
    ])
    .await;
    let r = f.reviewer("ann", &[1]).await;
    let q = queue_q(&f, 20).await;
    assert_eq!((q.within_sla_1h, q.within_sla_24h), (None, None), "none closed yet");
    let a = f.claim(&r, None, 20).await.unwrap();
    f.answer(&r, &a, "w1", label("spam"), 50_000).await.unwrap();
    let b = f.claim(&r, None, 100_000).await.unwrap();
    f.answer(&r, &b, "w2", label("spam"), 150_000).await.unwrap();
    let c = f.claim(&r, None, 150_000).await.unwrap();
    f.answer(&r, &c, "w3", label("ham"), 150_001).await.unwrap();
    let q = queue_q(&f, 150_002).await;
    assert_eq!(
        (q.within_sla_1h, q.within_sla_24h),
        (Some(0.5), Some(0.5)),
        "one in time, one late; a task without a deadline does not count"
    );
    // An hour after the first answer only the late one is in the last hour.
    let q = queue_q(&f, 50_001 + 3_600_000).await;
    assert_eq!((q.within_sla_1h, q.within_sla_24h), (Some(0.0), Some(0.5)));
    let q = queue_q(&f, 150_001 + DAY_MS).await;
    assert_eq!((q.within_sla_1h, q.within_sla_24h), (None, None));
}

pub async fn sla_escalate_moves_the_task_up_and_keeps_its_leases(f: Fixture) {
    let s = &f.store;
    let slas = q_slas(&f, SlaAction::Escalate);
    f.submit(vec![with_sla(review("a", "q", 1, 3, 2), 100)]).await;
    let r1 = f.reviewer("ann", &[1]).await;
    let held = f.claim(&r1, None, 100_000).await.unwrap();
    let run = s.run_sla(slas.clone(), 100_010, 100).await.unwrap();
    assert_eq!(
        run,
        SlaRun {
            warnings: 1,
            breaches: 1
        }
    );
    let events = sla_events(&f).await;
    let breach = &events[1].2;
    assert_eq!(
        (
            breach["applied"].as_str(),
            breach["to_tier"].as_u64(),
            breach["priority"].as_i64()
        ),
        (Some("escalate"), Some(2), Some(i64::from(3 + ESCALATE_PRIORITY_STEP)))
    );
    // The queue's SLA again, from the breach.
    assert_eq!(breach["new_due_at"], 100_010 + 100_000);
    let detail = s.item(f.project.id, "a").await.unwrap().unwrap();
    assert_eq!(
        (detail.tasks[0].tier, detail.tasks[0].priority, detail.tasks[0].due_at),
        (2, 3 + ESCALATE_PRIORITY_STEP, Some(200_010))
    );
    // Tier 1 can no longer claim the free slot; tier 2 can.
    let r3 = f.reviewer("cat", &[1]).await;
    assert!(f.claim(&r3, None, 100_020).await.is_none());
    let r2 = f.reviewer("bob", &[2]).await;
    let t2 = f.claim(&r2, None, 100_020).await.expect("tier 2 takes it");
    assert_eq!(t2.tier, 2);
    // The lease held at the breach stays valid.
    f.answer(&r1, &held, "w1", label("spam"), 100_030).await.unwrap();
    f.answer(&r2, &t2, "w2", label("spam"), 100_040).await.unwrap();
    // Once per task: its new deadline passes without another breach.
    let q = queue_q(&f, 100_040).await;
    assert_eq!(q.breached_total, 1);
    assert_eq!(s.run_sla(slas, 1_000_000, 100).await.unwrap(), SlaRun::default());
    assert_eq!(sla_events(&f).await.len(), 2);
}

pub async fn sla_auto_resolves_with_the_model_label_or_only_notes(f: Fixture) {
    let s = &f.store;
    let slas = q_slas(&f, SlaAction::Auto);
    f.submit(vec![
        predicted(with_sla(review("m", "q", 1, 0, 1), 100)),
        with_sla(review("n", "q", 1, 0, 1), 100),
    ])
    .await;
    let r = f.reviewer("ann", &[1]).await;
    let held = f.claim(&r, None, 20).await.unwrap();
    assert_eq!(held.external_id, "m");
    let run = s.run_sla(slas.clone(), 100_010, 100).await.unwrap();
    assert_eq!(
        run,
        SlaRun {
            warnings: 2,
            breaches: 2
        }
    );
    // With a model label: resolved with it, source auto, method sla_expired; the task
    // closes and the lease on it is cancelled.
    let m = s.item(f.project.id, "m").await.unwrap().unwrap();
    let res = m.resolution.clone().expect("resolved");
    assert_eq!(
        (res.label.as_str(), res.source, res.method.as_str()),
        ("spam", flywheel_core::task::Source::Auto, "sla_expired")
    );
    assert_eq!(m.tasks[0].state, "done");
    let feed = f.all_labels().await;
    assert_eq!(feed.len(), 1);
    assert_eq!(
        (
            feed[0].external_id.as_str(),
            feed[0].label.as_str(),
            feed[0].source.as_str()
        ),
        ("m", "spam", "auto")
    );
    let lost = f.answer(&r, &held, "w1", label("ham"), 100_020).await;
    assert!(
        matches!(lost, Err(StoreError::Conflict { code: "lease_lost", .. })),
        "{lost:?}"
    );
    let kinds: Vec<String> = f.all_events().await.into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"lease.cancelled".to_string()));
    assert!(kinds.contains(&"item.resolved".to_string()));
    // Without one: only the event, which says why; the task stays open.
    let n = s.item(f.project.id, "n").await.unwrap().unwrap();
    assert!(n.resolution.is_none());
    assert_eq!(n.tasks[0].state, "open");
    let breaches: Vec<_> = sla_events(&f)
        .await
        .into_iter()
        .filter(|e| e.0 == "sla.breached")
        .map(|e| e.2)
        .collect();
    let of = |applied: &str| breaches.iter().find(|b| b["applied"] == applied).unwrap().clone();
    assert_eq!(of("auto")["label"], "spam");
    assert_eq!(of("none")["action"], "auto");
    assert_eq!(of("none")["note"], "the item has no model label");
}

pub async fn adjudication_and_escalation_tasks_get_their_queues_deadline(f: Fixture) {
    let s = &f.store;
    let slas = q_slas(&f, SlaAction::None);
    let judging: HashMap<i64, Judging> = [(
        f.project.id,
        Judging {
            slas: slas[&f.project.id].clone(),
            ..Default::default()
        },
    )]
    .into();
    // No deadline on the items' own routes: only the tasks the answers open get one.
    f.submit(vec![review("tie", "q", 1, 0, 2), review("esc", "q", 1, 0, 1)])
        .await;
    let (a, b) = (f.reviewer("ann", &[1]).await, f.reviewer("bob", &[1]).await);
    let answer = |r: &Reviewer, t: &ClaimedTask, id: &str, answer: Answer, now: i64| {
        s.submit_review(
            NewReview {
                task_id: t.task_id,
                lease_id: t.lease_id,
                reviewer_id: r.id,
                reviewer_name: r.name.clone(),
                review_id: id.into(),
                answer,
                failure_category: None,
                note: None,
                fields: None,
                judging: judging.clone(),
            },
            now,
        )
    };
    let t1 = f.claim(&a, None, 20).await.unwrap();
    let t2 = f.claim(&b, None, 20).await.unwrap();
    assert_eq!((t1.external_id.as_str(), t2.external_id.as_str()), ("tie", "tie"));
    answer(&a, &t1, "w1", label("spam"), 1_000).await.unwrap();
    let tie = answer(&b, &t2, "w2", label("ham"), 1_000).await.unwrap();
    assert_eq!(tie.outcome, "adjudicate");
    let t3 = f.claim(&a, None, 2_000).await.unwrap();
    assert_eq!(t3.external_id, "esc");
    let esc = answer(
        &a,
        &t3,
        "w3",
        Answer::Escalate {
            reason: "unsure".into(),
        },
        2_000,
    )
    .await
    .unwrap();
    assert_eq!(esc.outcome, "adjudicate");
    // The adjudication opened at 1,000 is due at 101,000 (warned at 81,000); the
    // escalation opened at 2,000 at 102,000.
    assert_eq!(s.run_sla(slas.clone(), 80_999, 100).await.unwrap(), SlaRun::default());
    assert_eq!(s.run_sla(slas.clone(), 81_000, 100).await.unwrap().warnings, 1);
    assert_eq!(s.run_sla(slas.clone(), 82_000, 100).await.unwrap().warnings, 1);
    let q = queue_q(&f, 101_000).await;
    assert_eq!((q.overdue, q.due_soon), (1, 1));
    let run = s.run_sla(slas, 102_000, 100).await.unwrap();
    assert_eq!(
        run,
        SlaRun {
            warnings: 0,
            breaches: 2
        }
    );
    let tiers: Vec<serde_json::Value> = sla_events(&f).await.into_iter().map(|e| e.2["tier"].clone()).collect();
    assert!(tiers.iter().all(|t| *t == 2), "the tasks one tier up: {tiers:?}");
}
