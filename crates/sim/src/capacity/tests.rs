//! The simulation against Erlang C, and its policy mechanics on plans small enough to
//! reason about.

use std::collections::BTreeMap;

use super::*;
use crate::erlang;

fn route(queue: &str, tier: u8, priority: i32, overlap: u8) -> RouteSpec {
    RouteSpec {
        queue: queue.into(),
        tier,
        priority,
        overlap,
    }
}

fn staff(reviewers: u32, handle_seconds: f64, accuracy: f64) -> TierStaff {
    TierStaff {
        reviewers,
        handle_seconds,
        accuracy,
    }
}

/// One queue, tier 1, every item reviewed once.
fn single_queue(arrivals_per_hour: f64, reviewers: u32, handle_seconds: f64, hours: f64, seed: u64) -> Plan {
    Plan {
        routes: vec![route("default", 1, 0, 1)],
        items: vec![Decided::Review { route: 0 }],
        audit_rate: 0.0,
        consensus: Consensus {
            min_confidence: 0.0,
            max_overlap: 1,
        },
        sla_seconds: BTreeMap::new(),
        labels: 2,
        arrivals_per_hour,
        hours,
        tiers: [(1, staff(reviewers, handle_seconds, 0.9))].into(),
        seed,
    }
}

/// Mean and standard error of independent replications.
fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn a_single_queue_waits_as_erlang_c_says() {
    // M/M/5 at 4 erlangs (240 tasks an hour, 60 s each): C(4, 5) = 0.554112554…
    let q = erlang::Queue {
        arrivals_per_hour: 240.0,
        handle_seconds: 60.0,
        answer_within_seconds: 0.0,
        service_level: 0.5,
    };
    let expected = erlang::at(&q, 5);
    assert!((expected.waiting_probability - 0.554_112_554_112_554_1).abs() < 1e-12);
    // 20 independent replications of 100 hours (about 24,000 tasks each), seeds 1..=20.
    let runs: Vec<Report> = (1..=20)
        .map(|seed| run(&single_queue(240.0, 5, 60.0, 100.0, seed)).unwrap())
        .collect();
    let waits: Vec<f64> = runs.iter().map(|r| r.tiers["1"].waiting_probability).collect();
    let (mean, se) = mean_se(&waits);
    // A 99% interval (t with 19 degrees of freedom: 2.861), narrow enough to mean something.
    assert!(se < 0.01, "se {se}");
    assert!(
        (mean - expected.waiting_probability).abs() <= 2.861 * se,
        "simulated {mean} ± {se}, Erlang C {}",
        expected.waiting_probability
    );
    let (wait, wait_se) = mean_se(
        &runs
            .iter()
            .map(|r| r.tiers["1"].average_wait_seconds)
            .collect::<Vec<_>>(),
    );
    assert!(
        (wait - expected.average_wait_seconds).abs() <= 2.861 * wait_se,
        "wait {wait} ± {wait_se}, Erlang C {}",
        expected.average_wait_seconds
    );
    let (occ, occ_se) = mean_se(&runs.iter().map(|r| r.tiers["1"].occupancy).collect::<Vec<_>>());
    assert!((occ - 0.8).abs() <= 2.861 * occ_se + 1e-3, "occupancy {occ} ± {occ_se}");
}

#[test]
fn a_seed_gives_the_same_run() {
    let a = run(&single_queue(300.0, 3, 30.0, 5.0, 9)).unwrap();
    let b = run(&single_queue(300.0, 3, 30.0, 5.0, 9)).unwrap();
    let c = run(&single_queue(300.0, 3, 30.0, 5.0, 10)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.backlog.len(), 5);
    assert_eq!(a.backlog.iter().map(|b| b.hour).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
}

/// Two reviewers per task, both at `accuracy`, among `labels` labels.
fn overlap_plan(accuracy: f64, labels: usize, consensus: Consensus) -> Plan {
    Plan {
        routes: vec![route("standard", 1, 0, 2)],
        items: vec![Decided::Review { route: 0 }],
        consensus,
        labels,
        tiers: [(1, staff(10, 30.0, accuracy)), (2, staff(2, 60.0, 1.0))].into(),
        ..single_queue(300.0, 1, 30.0, 20.0, 4)
    }
}

const PLAIN: Consensus = Consensus {
    min_confidence: 0.0,
    max_overlap: 1,
};

#[test]
fn overlap_answers_and_adjudications_follow_the_accuracies() {
    // Always right: two answers per task, never a split.
    let r = run(&overlap_plan(1.0, 3, PLAIN)).unwrap();
    let tasks = r.items;
    assert_eq!(r.answers, 2 * tasks);
    assert_eq!(r.overlap_answers, tasks);
    assert_eq!((r.adjudications, r.human_accuracy), (0, Some(1.0)));
    // Always wrong between two labels: both say the other label; agreed, and wrong.
    let r = run(&overlap_plan(0.0, 2, PLAIN)).unwrap();
    assert_eq!((r.adjudications, r.human_accuracy), (0, Some(0.0)));
    // p = 0.7 among 3 labels: two answers agree with chance p² + (1−p)²/2 = 0.535.
    let r = run(&overlap_plan(0.7, 3, PLAIN)).unwrap();
    let split = r.adjudications as f64 / r.items as f64;
    let sd = (0.465 * 0.535 / r.items as f64).sqrt();
    assert!((split - 0.465).abs() < 4.0 * sd, "{split} over {} items", r.items);
    // Each split is one adjudication task at tier 2 in the same queue.
    let adj = r.tasks.iter().find(|t| t.stage == "adjudicate").unwrap();
    assert_eq!(
        (adj.queue.as_str(), adj.tier, adj.tasks),
        ("standard", 2, r.adjudications)
    );
    assert_eq!(r.tiers["2"].answers, r.adjudications);
}

#[test]
fn dynamic_overlap_asks_one_more_reviewer_before_adjudicating() {
    // Two labels: a split of two is a tie, a third answer always breaks it.
    let c = Consensus {
        min_confidence: 0.0,
        max_overlap: 3,
    };
    let r = run(&overlap_plan(0.8, 2, c)).unwrap();
    let split = r.extra_reviewers as f64 / r.items as f64;
    // p(split) = 2·0.8·0.2 = 0.32.
    let sd = (0.32 * 0.68 / r.items as f64).sqrt();
    assert!((split - 0.32).abs() < 4.0 * sd, "{split}");
    assert_eq!(r.adjudications, 0);
    assert_eq!(r.answers, 2 * r.items + r.extra_reviewers);
}

#[test]
fn automation_and_audits_follow_the_decisions() {
    let mut plan = single_queue(1000.0, 5, 10.0, 10.0, 2);
    plan.routes.push(route("audit", 1, 0, 1));
    plan.items = vec![
        Decided::Auto { audit: Some(1) },
        Decided::Auto { audit: Some(1) },
        Decided::Auto { audit: Some(1) },
        Decided::Review { route: 0 },
    ];
    plan.audit_rate = 0.1;
    let r = run(&plan).unwrap();
    let sd = (0.75 * 0.25 / r.items as f64).sqrt();
    assert!((r.automation_rate - 0.75).abs() < 4.0 * sd, "{}", r.automation_rate);
    let audit_sd = (0.1 * 0.9 / r.auto as f64).sqrt();
    assert!((r.audits as f64 / r.auto as f64 - 0.1).abs() < 4.0 * audit_sd);
    assert_eq!(r.queues["audit"].tasks, r.audits);
    assert_eq!(r.queues["default"].tasks, r.items - r.auto);
}

#[test]
fn priority_is_claimed_first_and_deadlines_are_counted() {
    // One overloaded reviewer (1.2 erlangs): the urgent half is taken first.
    let mut plan = single_queue(144.0, 1, 30.0, 10.0, 3);
    plan.routes = vec![route("standard", 1, 0, 1), route("urgent", 1, 100, 1)];
    plan.items = vec![Decided::Review { route: 0 }, Decided::Review { route: 1 }];
    plan.sla_seconds = [("urgent".to_string(), 300.0), ("standard".to_string(), 300.0)].into();
    let r = run(&plan).unwrap();
    let (u, s) = (&r.queues["urgent"], &r.queues["standard"]);
    assert!(
        u.average_answer_seconds * 10.0 < s.average_answer_seconds,
        "{u:?} {s:?}"
    );
    assert!(
        u.sla_breach_share.unwrap() < 0.2 && s.sla_breach_share.unwrap() > 0.8,
        "{u:?} {s:?}"
    );
    assert_eq!(u.sla_breaches, u.by_tier["1"].sla_breaches);
    // The backlog grows hour by hour, and the run goes on until it is answered.
    assert!(r.backlog.last().unwrap().open > r.backlog[0].open);
    assert!(r.drained_at_hours > 10.0);
    assert_eq!(r.answers, r.items);
}

#[test]
fn a_tier_that_gets_work_needs_reviewers() {
    let mut plan = overlap_plan(0.9, 2, PLAIN);
    plan.tiers.remove(&2);
    let e = run(&plan).unwrap_err();
    assert!(
        e.contains("tier 2") && e.contains("adjudication of queue standard"),
        "{e}"
    );
    plan.tiers.insert(2, staff(0, 10.0, 1.0));
    assert!(run(&plan).unwrap_err().starts_with("--reviewers"));
    let mut plan = single_queue(10.0, 1, 10.0, 1.0, 1);
    plan.hours = 0.0;
    assert!(run(&plan).unwrap_err().starts_with("--hours"));
}

#[test]
fn the_search_finds_a_staffing_that_meets_the_target_and_none_smaller_per_tier() {
    let mut plan = overlap_plan(0.8, 3, PLAIN);
    plan.arrivals_per_hour = 600.0;
    plan.hours = 8.0;
    plan.sla_seconds = [("standard".to_string(), 180.0)].into();
    let s = search(&plan, 0.9).unwrap();
    let meets = |staffing: &BTreeMap<String, u32>| {
        let mut p = plan.clone();
        for (t, n) in staffing {
            p.tiers.get_mut(&t.parse::<u8>().unwrap()).unwrap().reviewers = *n;
        }
        let r = run(&p).unwrap();
        r.queues["standard"]
            .by_tier
            .values()
            .all(|t| t.within_sla_share.unwrap() >= 0.9)
    };
    assert!(meets(&s.staffing), "{:?}", s.staffing);
    assert_eq!(s.report.staffing, s.staffing);
    assert!(s.steps.last().is_some() && s.steps.iter().any(|x| !x.meets_target));
    // One fewer at any tier falls short.
    for t in s.staffing.keys() {
        let mut fewer = s.staffing.clone();
        *fewer.get_mut(t).unwrap() -= 1;
        assert!(!meets(&fewer), "{fewer:?} also meets the target");
    }
    assert!(search(&plan, 1.5).unwrap_err().starts_with("--target-sla"));
    // 60 s adjudications cannot meet a 60 s SLA nine times in ten (e^-1 of them take longer).
    plan.sla_seconds = [("standard".to_string(), 60.0)].into();
    let e = search(&plan, 0.9).unwrap_err();
    assert!(e.contains("handling time alone"), "{e}");
    plan.sla_seconds.clear();
    assert!(search(&plan, 0.9).unwrap_err().contains("sla_seconds"));
}
