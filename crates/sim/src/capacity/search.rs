//! The smallest staffing per tier that meets a target share within SLA, by greedy search
//! on seeded runs (common random numbers: every run of a seed sees the same items).
//!
//! 1. A first run at the given staffing measures each tier's work; each tier starts at
//!    the first whole number of reviewers above its offered load (work seconds over the
//!    arrival window), at least 1 — below that its queue grows without bound.
//! 2. While some queue with an SLA falls short of the target at some tier, the tier with
//!    the worst share within SLA gets one more reviewer, and the plan runs again.
//! 3. Then each tier in turn gives back reviewers one at a time (never below its start)
//!    while the target still holds, so no single tier has one reviewer too many.
//!
//! When the worst tier's claims hardly ever wait (under 0.1%) and it still falls short,
//! the handling time alone breaks the SLA and the search stops with that message.
//!
//! A queue's share is counted per tier (its adjudications sit one tier up), so a slow
//! adjudication tier is found as such.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Plan, Report, run};

/// A tier whose claims wait less often than this is not short of reviewers.
const UNREACHABLE_WAITING: f64 = 0.001;

/// Gives up past this many runs.
const MAX_RUNS: usize = 2_000;

/// One run of the search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub staffing: BTreeMap<String, u32>,
    /// The queue and tier furthest below the target, and its share within SLA.
    pub worst_queue: Option<String>,
    pub worst_tier: Option<u8>,
    pub worst_share: Option<f64>,
    pub meets_target: bool,
}

/// The search's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Search {
    pub target_sla: f64,
    pub method: &'static str,
    /// The staffing found (reviewers per tier).
    pub staffing: BTreeMap<String, u32>,
    pub total_reviewers: u32,
    pub steps: Vec<Step>,
    /// The run at the staffing found.
    pub report: Report,
}

/// The worst (queue, tier, share within SLA) of a run, over the queues with an SLA.
fn worst(report: &Report) -> Option<(String, u8, f64)> {
    let mut out: Option<(String, u8, f64)> = None;
    for (q, r) in &report.queues {
        for (tier, t) in &r.by_tier {
            let Some(share) = t.within_sla_share else { continue };
            if out.as_ref().is_none_or(|(_, _, w)| share < *w) {
                out = Some((q.clone(), tier.parse().unwrap_or_default(), share));
            }
        }
    }
    out
}

/// A run, its worst (queue, tier, share within SLA), and whether it meets the target.
type Tried = (Report, Option<(String, u8, f64)>, bool);

struct Runs {
    plan: Plan,
    target: f64,
    steps: Vec<Step>,
}

impl Runs {
    fn try_staffing(&mut self, staffing: &BTreeMap<u8, u32>) -> Result<Tried, String> {
        if self.steps.len() >= MAX_RUNS {
            return Err(format!(
                "--target-sla: no staffing found in {MAX_RUNS} runs; is the target reachable?"
            ));
        }
        for (t, n) in staffing {
            if let Some(s) = self.plan.tiers.get_mut(t) {
                s.reviewers = *n;
            }
        }
        let report = run(&self.plan)?;
        let w = worst(&report);
        let meets = w.as_ref().is_none_or(|(_, _, s)| *s >= self.target);
        self.steps.push(Step {
            staffing: report.staffing.clone(),
            worst_queue: w.as_ref().map(|(q, _, _)| q.clone()),
            worst_tier: w.as_ref().map(|(_, t, _)| *t),
            worst_share: w.as_ref().map(|(_, _, s)| *s),
            meets_target: meets,
        });
        Ok((report, w, meets))
    }
}

/// The smallest staffing per tier (see the module) at which every queue with an SLA
/// answers at least `target` of its tasks within it, at every tier.
pub fn search(plan: &Plan, target: f64) -> Result<Search, String> {
    if !(target.is_finite() && target > 0.0 && target <= 1.0) {
        return Err(format!("--target-sla is a share in (0, 1], got {target}"));
    }
    let first = run(plan)?;
    if worst(&first).is_none() {
        return Err(
            "--target-sla: no task went to a queue with an SLA; give the policy sla_seconds for its review queues"
                .into(),
        );
    }
    let horizon = plan.hours * 3600.0;
    let start: BTreeMap<u8, u32> = plan
        .tiers
        .iter()
        .map(|(&t, s)| {
            let answers = first.tiers.get(&t.to_string()).map_or(0, |r| r.answers);
            let load = answers as f64 * s.handle_seconds / horizon;
            (t, (load.floor() as u32 + 1).max(1))
        })
        .collect();
    let mut runs = Runs {
        plan: plan.clone(),
        target,
        steps: Vec::new(),
    };
    let mut staffing = start.clone();
    let (mut report, mut w, mut meets) = runs.try_staffing(&staffing)?;
    while !meets {
        let (queue, tier, share) = w.clone().expect("a run short of the target has a worst queue");
        // Reviewers only shorten waits: when hardly any claim waits, more cannot help.
        let waiting = report
            .tiers
            .get(&tier.to_string())
            .map_or(0.0, |t| t.waiting_probability);
        if waiting < UNREACHABLE_WAITING {
            return Err(format!(
                "--target-sla: queue {queue} at tier {tier} answers only {:.1}% within its SLA when {:.2}% of claims wait: \
                 the handling time alone exceeds the SLA too often; lengthen sla_seconds or lower the target",
                100.0 * share,
                100.0 * waiting
            ));
        }
        *staffing.entry(tier).or_insert(0) += 1;
        (report, w, meets) = runs.try_staffing(&staffing)?;
    }
    let tiers: Vec<u8> = staffing.keys().copied().collect();
    for t in tiers {
        while staffing[&t] > start[&t] {
            let mut fewer = staffing.clone();
            *fewer.get_mut(&t).expect("the tier is staffed") -= 1;
            let (r, _, ok) = runs.try_staffing(&fewer)?;
            if !ok {
                break;
            }
            staffing = fewer;
            report = r;
        }
    }
    // `report` is the run at `staffing`: a try of one fewer that fell short is dropped.
    let staffing: BTreeMap<String, u32> = staffing.into_iter().map(|(t, n)| (t.to_string(), n)).collect();
    Ok(Search {
        target_sla: target,
        method: "greedy: from the first staff above each tier's offered load, one reviewer at a time to the tier with the worst share within SLA, then one fewer per tier while the target holds",
        total_reviewers: staffing.values().sum(),
        staffing,
        steps: runs.steps,
        report,
    })
}
