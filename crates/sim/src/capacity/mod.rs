//! The capacity planner's discrete-event simulation: a policy's decisions on a stream of
//! items, and tiers of reviewers working the tasks they make.
//!
//! sim does not link `flywheel-core`, so the caller (the binary) decides each item of the
//! score distribution with the policy and hands over a [`Plan`]: the distinct review
//! [`RouteSpec`]s, one [`Decided`] per item, the consensus rule and SLAs. Here:
//!
//! - items arrive as a Poisson stream at `arrivals_per_hour` during `hours`, each drawn
//!   with replacement from `items` by the seeded [`Rng`]; an auto item is sampled for an
//!   audit at `audit_rate`;
//! - a review task asks `overlap` different reviewers of its tier; reviewers of a tier
//!   take the claimable task first by priority, then deadline (none last), then age — the
//!   server's claim order — and answer after an exponential time with the tier's mean,
//!   correctly with the tier's accuracy (a wrong answer is another label, uniformly);
//! - answers are judged as core's `task::after_answer` judges them by majority: a tie or
//!   a consensus under `min_confidence` asks one more reviewer up to `max_overlap`, then
//!   opens an adjudication one tier up (same queue and priority, overlap 1); an audit
//!   resolves by majority, a tie adjudicated;
//! - a task's deadline is its creation plus its queue's SLA; it is within SLA when its
//!   last answer comes by then.
//!
//! Arrivals stop after `hours`; the run goes on until every task is answered, so every
//! task's SLA outcome is known. Events are kept in a binary heap (arrivals, answers, hour
//! marks): the cost follows the number of answers, not the simulated time.
//!
//! [`search`] finds the smallest staffing per tier that meets a target share within SLA.

mod engine;
mod search;

use std::collections::BTreeMap;

use serde::Serialize;

pub use engine::run;
pub use search::{Search, Step, search};

/// The highest tier (core's `policy::MAX_TIER`): adjudication never climbs past it.
pub const MAX_TIER: u8 = 9;

/// Where a review task goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteSpec {
    pub queue: String,
    pub tier: u8,
    pub priority: i32,
    pub overlap: u8,
}

/// What the policy decided for one item of the distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// Auto; when sampled for audit (at the plan's `audit_rate`), its audit goes to
    /// `routes[audit]`.
    Auto { audit: Option<usize> },
    /// A review task at `routes[route]`.
    Review { route: usize },
}

/// Dynamic overlap (core's `task::Rule` with the majority scorer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Consensus {
    pub min_confidence: f64,
    pub max_overlap: u8,
}

/// One tier's reviewers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierStaff {
    pub reviewers: u32,
    /// Mean of the exponential handling time.
    pub handle_seconds: f64,
    /// The chance that an answer is the true label.
    pub accuracy: f64,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub routes: Vec<RouteSpec>,
    pub items: Vec<Decided>,
    pub audit_rate: f64,
    pub consensus: Consensus,
    /// Per queue, the seconds a task has to be answered in.
    pub sla_seconds: BTreeMap<String, f64>,
    /// How many labels the project has (at least 2): a wrong answer is one of the others.
    pub labels: usize,
    pub arrivals_per_hour: f64,
    pub hours: f64,
    pub tiers: BTreeMap<u8, TierStaff>,
    pub seed: u64,
}

/// A run's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub seed: u64,
    pub hours: f64,
    pub arrivals_per_hour: f64,
    /// Reviewers per tier, as run.
    pub staffing: BTreeMap<String, u32>,
    pub items: u64,
    pub auto: u64,
    pub automation_rate: f64,
    pub audits: u64,
    /// Tasks by queue, tier and stage.
    pub tasks: Vec<TaskCount>,
    pub answers: u64,
    /// Answers beyond a task's first (overlap and dynamic overlap).
    pub overlap_answers: u64,
    /// Times a task asked one more reviewer (dynamic overlap).
    pub extra_reviewers: u64,
    pub adjudications: u64,
    /// Share of human resolutions that are the true label.
    pub human_accuracy: Option<f64>,
    pub tiers: BTreeMap<String, TierReport>,
    pub queues: BTreeMap<String, QueueReport>,
    /// Open tasks (waiting or in hand) at the end of each simulated hour.
    pub backlog: Vec<Backlog>,
    /// When the last task was answered, in hours from the start.
    pub drained_at_hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskCount {
    pub queue: String,
    pub tier: u8,
    /// `review`, `audit` or `adjudicate`.
    pub stage: &'static str,
    pub tasks: u64,
    pub answers: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierReport {
    pub reviewers: u32,
    pub handle_seconds: f64,
    pub accuracy: f64,
    pub answers: u64,
    /// Busy time over staffed time during the arrival window.
    pub occupancy: f64,
    /// Share of claims that found no reviewer free when the slot opened.
    pub waiting_probability: f64,
    pub average_wait_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueReport {
    pub tasks: u64,
    pub sla_seconds: Option<f64>,
    /// Tasks answered after their deadline (with an SLA).
    pub sla_breaches: u64,
    pub sla_breach_share: Option<f64>,
    /// The queue's tasks by tier (adjudications sit one tier up), each with its own
    /// share within SLA: the search reads these.
    pub by_tier: BTreeMap<String, QueueTier>,
    /// Mean time from a task's creation to its last answer.
    pub average_answer_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueTier {
    pub tasks: u64,
    pub sla_breaches: u64,
    pub within_sla_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backlog {
    pub hour: u32,
    pub open: u64,
    pub by_queue: BTreeMap<String, u64>,
}

/// The tiers work can reach: the routes the items use (audits only when sampled at a
/// positive rate) and, above a route whose answers can disagree, its adjudication tier.
pub fn reachable_tiers(plan: &Plan) -> BTreeMap<u8, String> {
    let mut used = vec![false; plan.routes.len()];
    for d in &plan.items {
        match *d {
            Decided::Review { route } => used[route] = true,
            Decided::Auto { audit: Some(a) } if plan.audit_rate > 0.0 => used[a] = true,
            Decided::Auto { .. } => {}
        }
    }
    let mut tiers = BTreeMap::new();
    for (r, _) in plan.routes.iter().zip(&used).filter(|(_, u)| **u) {
        tiers.entry(r.tier).or_insert_with(|| format!("queue {}", r.queue));
        // One answer is always a consensus; two or more may split.
        if r.overlap >= 2 && r.tier < MAX_TIER {
            tiers
                .entry(r.tier + 1)
                .or_insert_with(|| format!("adjudication of queue {}", r.queue));
        }
    }
    tiers
}

/// Checks a plan before a run; the message names what to change.
pub fn check(plan: &Plan) -> Result<(), String> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(plan.arrivals_per_hour) {
        return Err(format!(
            "--arrivals-per-hour is a positive number, got {}",
            plan.arrivals_per_hour
        ));
    }
    if !positive(plan.hours) || plan.hours > 24.0 * 366.0 {
        return Err(format!("--hours is a positive number up to a year, got {}", plan.hours));
    }
    if plan.items.is_empty() {
        return Err("no items to draw from".into());
    }
    if plan.labels < 2 {
        return Err(format!("a project has at least 2 labels, got {}", plan.labels));
    }
    for d in &plan.items {
        let bad = match *d {
            Decided::Review { route } => route >= plan.routes.len(),
            Decided::Auto { audit: Some(a) } => a >= plan.routes.len(),
            Decided::Auto { audit: None } => false,
        };
        if bad {
            return Err("an item's route is not among the routes".into());
        }
    }
    for r in &plan.routes {
        if r.overlap == 0 || !(1..=MAX_TIER).contains(&r.tier) {
            return Err(format!(
                "queue {}: a route has tier 1 to {MAX_TIER} and overlap 1 or more",
                r.queue
            ));
        }
    }
    for (tier, t) in &plan.tiers {
        if !positive(t.handle_seconds) {
            return Err(format!(
                "--handle-seconds: tier {tier} needs a positive mean, got {}",
                t.handle_seconds
            ));
        }
        if !(0.0..=1.0).contains(&t.accuracy) {
            return Err(format!(
                "--accuracy: tier {tier} needs a share in [0, 1], got {}",
                t.accuracy
            ));
        }
    }
    for (tier, why) in reachable_tiers(plan) {
        if plan.tiers.get(&tier).is_none_or(|t| t.reviewers == 0) {
            return Err(format!(
                "--reviewers: tier {tier} gets work ({why}) but has no reviewers"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
