//! One run of a [`Plan`]: the event loop. Events (an arrival, an answer, the end of an
//! hour) wait in a binary heap ordered by time, then by the order they were scheduled, so
//! a seed gives the same run on every machine. Arrivals and the items they carry are
//! drawn from one generator; each answer's handling time and correctness from a generator
//! keyed by the seed, the item, the task's stage and the slot. So runs of one seed at different staffings
//! see the same items and the same work (common random numbers): what differs between
//! them is the staffing, not the luck, which keeps the search's comparisons steady.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use super::{
    Backlog, Decided, MAX_TIER, Plan, QueueReport, QueueTier, Report, TaskCount, TierReport, TierStaff, check,
};
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Stage {
    Review,
    Audit,
    Adjudicate,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Review => "review",
            Stage::Audit => "audit",
            Stage::Adjudicate => "adjudicate",
        }
    }
}

#[derive(Debug)]
struct Task {
    /// The arrival that made it (its number in the stream).
    item: u64,
    queue: u32,
    tier: u8,
    priority: i32,
    stage: Stage,
    created: f64,
    due: Option<f64>,
    /// Answers the task waits for (its overlap, raised by dynamic overlap).
    needed: u8,
    /// Slots no reviewer holds yet.
    open: u8,
    /// When the open slots opened (creation, or the last extra reviewer asked for).
    open_since: f64,
    /// Answers so far; label 0 is the truth.
    answers: Vec<u16>,
    /// Every reviewer who held the task: none gets it twice.
    held_by: Vec<u32>,
}

/// What a new task is.
struct NewTask {
    item: u64,
    queue: u32,
    tier: u8,
    priority: i32,
    stage: Stage,
    overlap: u8,
}

/// A task with an open slot in its tier's queue: the top is the next claim.
#[derive(Debug, Clone, Copy)]
struct Claimable {
    priority: i32,
    /// The deadline; `INFINITY` for none (last).
    due: f64,
    created: f64,
    id: u32,
}

impl Ord for Claimable {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.due.total_cmp(&self.due))
            .then_with(|| other.created.total_cmp(&self.created))
            .then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for Claimable {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Claimable {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Claimable {}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Arrival,
    Answer { reviewer: u32 },
    Hour(u32),
}

#[derive(Debug)]
struct Event {
    at: f64,
    seq: u64,
    kind: Kind,
}

/// Reversed: the heap's top is the earliest event.
impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.total_cmp(&self.at).then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Event {}

#[derive(Debug, Default)]
struct Tier {
    staff: Option<TierStaff>,
    free: Vec<u32>,
    queue: BinaryHeap<Claimable>,
    answers: u64,
    claims: u64,
    waited: u64,
    wait_sum: f64,
    busy: f64,
}

#[derive(Debug, Clone, Copy)]
struct Hand {
    tier: u8,
    task: u32,
    label: u16,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    tasks: u64,
    answers: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Sla {
    tasks: u64,
    breaches: u64,
}

struct Sim<'a> {
    plan: &'a Plan,
    horizon: f64,
    queue_names: Vec<String>,
    queue_sla: Vec<Option<f64>>,
    route_queue: Vec<u32>,
    tasks: Vec<Task>,
    tiers: Vec<Tier>,
    hands: Vec<Option<Hand>>,
    events: BinaryHeap<Event>,
    seq: u64,
    arrivals: Rng,
    work_key: u64,
    items: u64,
    auto: u64,
    audits: u64,
    answers: u64,
    overlap_answers: u64,
    extra_reviewers: u64,
    adjudications: u64,
    resolved: u64,
    resolved_right: u64,
    counts: HashMap<(u32, u8, Stage), Counts>,
    sla: HashMap<(u32, u8), Sla>,
    open: Vec<u64>,
    answer_seconds: Vec<f64>,
    done: Vec<u64>,
    backlog: Vec<Backlog>,
    last_answer: f64,
}

/// An exponential draw with mean `mean`.
fn exponential(rng: &mut Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.unit()).ln()
}

/// The majority label of `answers` and its share, or `None` on a tie for the top.
fn majority(answers: &[u16]) -> Option<(u16, f64)> {
    let count = |l: u16| answers.iter().filter(|a| **a == l).count();
    let mut best: Option<(u16, usize)> = None;
    let mut tie = false;
    for (i, &l) in answers.iter().enumerate() {
        if answers[..i].contains(&l) {
            continue;
        }
        let c = count(l);
        match best {
            Some((_, b)) if c < b => {}
            Some((_, b)) if c == b => tie = true,
            _ => {
                best = Some((l, c));
                tie = false;
            }
        }
    }
    let (label, c) = best?;
    (!tie).then(|| (label, c as f64 / answers.len() as f64))
}

impl<'a> Sim<'a> {
    fn new(plan: &'a Plan) -> Self {
        let mut queue_names: Vec<String> = plan.routes.iter().map(|r| r.queue.clone()).collect();
        queue_names.sort();
        queue_names.dedup();
        let route_queue = plan
            .routes
            .iter()
            .map(|r| queue_names.binary_search(&r.queue).unwrap_or_default() as u32)
            .collect();
        let queue_sla = queue_names.iter().map(|q| plan.sla_seconds.get(q).copied()).collect();
        let mut tiers: Vec<Tier> = (0..=MAX_TIER).map(|_| Tier::default()).collect();
        let mut hands = Vec::new();
        for (&t, staff) in &plan.tiers {
            let tier = &mut tiers[usize::from(t)];
            tier.staff = Some(*staff);
            for _ in 0..staff.reviewers {
                tier.free.push(hands.len() as u32);
                hands.push(None);
            }
            // The first reviewer is taken first (a stack, popped from the end).
            tier.free.reverse();
        }
        let n = queue_names.len();
        Self {
            plan,
            horizon: plan.hours * 3600.0,
            queue_names,
            queue_sla,
            route_queue,
            tasks: Vec::new(),
            tiers,
            hands,
            events: BinaryHeap::new(),
            seq: 0,
            arrivals: Rng::new(plan.seed),
            work_key: plan.seed ^ 0xD1B5_4A32_D192_ED03,
            items: 0,
            auto: 0,
            audits: 0,
            answers: 0,
            overlap_answers: 0,
            extra_reviewers: 0,
            adjudications: 0,
            resolved: 0,
            resolved_right: 0,
            counts: HashMap::new(),
            sla: HashMap::new(),
            open: vec![0; n],
            answer_seconds: vec![0.0; n],
            done: vec![0; n],
            backlog: Vec::new(),
            last_answer: 0.0,
        }
    }

    fn schedule(&mut self, at: f64, kind: Kind) {
        self.seq += 1;
        self.events.push(Event {
            at,
            seq: self.seq,
            kind,
        });
    }

    fn next_arrival(&mut self, now: f64) {
        let at = now + exponential(&mut self.arrivals, 3600.0 / self.plan.arrivals_per_hour);
        if at < self.horizon {
            self.schedule(at, Kind::Arrival);
        }
    }

    fn arrive(&mut self, now: f64) {
        self.items += 1;
        let plan = self.plan;
        let decided = plan.items[self.arrivals.below(self.plan.items.len())];
        // Drawn for every item, audited or not, so the stream does not depend on the plan.
        let audit_draw = self.arrivals.unit();
        match decided {
            Decided::Auto { audit } => {
                self.auto += 1;
                if let Some(a) = audit
                    && audit_draw < plan.audit_rate
                {
                    self.audits += 1;
                    let r = &plan.routes[a];
                    let queue = self.route_queue[a];
                    self.create(
                        now,
                        NewTask {
                            item: self.items,
                            queue,
                            tier: r.tier,
                            priority: r.priority,
                            stage: Stage::Audit,
                            overlap: r.overlap,
                        },
                    );
                }
            }
            Decided::Review { route } => {
                let r = &plan.routes[route];
                let queue = self.route_queue[route];
                self.create(
                    now,
                    NewTask {
                        item: self.items,
                        queue,
                        tier: r.tier,
                        priority: r.priority,
                        stage: Stage::Review,
                        overlap: r.overlap,
                    },
                );
            }
        }
        self.next_arrival(now);
    }

    fn create(&mut self, now: f64, new: NewTask) {
        let NewTask {
            item,
            queue,
            tier,
            priority,
            stage,
            overlap,
        } = new;
        let id = self.tasks.len() as u32;
        let due = self.queue_sla[queue as usize].map(|s| now + s);
        self.tasks.push(Task {
            item,
            queue,
            tier,
            priority,
            stage,
            created: now,
            due,
            needed: overlap,
            open: overlap,
            open_since: now,
            answers: Vec::with_capacity(usize::from(overlap)),
            held_by: Vec::with_capacity(usize::from(overlap)),
        });
        self.counts.entry((queue, tier, stage)).or_default().tasks += 1;
        self.open[queue as usize] += 1;
        self.tiers[usize::from(tier)].queue.push(Claimable {
            priority,
            due: due.unwrap_or(f64::INFINITY),
            created: now,
            id,
        });
        self.dispatch(tier, now);
    }

    /// Free reviewers of `tier` take claimable tasks (never one they held before).
    fn dispatch(&mut self, tier: u8, now: f64) {
        let mut stuck = Vec::new();
        loop {
            let t = &mut self.tiers[usize::from(tier)];
            if t.queue.is_empty() {
                break;
            }
            let Some(r) = t.free.pop() else { break };
            let mut passed = Vec::new();
            let mut found = None;
            while let Some(c) = t.queue.pop() {
                if self.tasks[c.id as usize].held_by.contains(&r) {
                    passed.push(c);
                } else {
                    found = Some(c);
                    break;
                }
            }
            t.queue.extend(passed);
            match found {
                Some(c) => self.claim(r, tier, c, now),
                None => stuck.push(r),
            }
        }
        self.tiers[usize::from(tier)].free.extend(stuck);
    }

    fn claim(&mut self, r: u32, tier: u8, c: Claimable, now: f64) {
        let task = &mut self.tasks[c.id as usize];
        // The n-th claim (n < 16: overlap is at most 10) of an item's task at a stage draws
        // the same work whoever takes it, whenever, at any staffing.
        let slot = (task.item << 6) | (task.stage as u64) << 4 | task.held_by.len() as u64;
        let mut work = Rng::new(self.work_key ^ slot);
        task.open -= 1;
        task.held_by.push(r);
        let wait = now - task.open_since;
        let again = task.open > 0;
        let t = &mut self.tiers[usize::from(tier)];
        let staff = t.staff.expect("a tier with reviewers has staff");
        t.claims += 1;
        if wait > 0.0 {
            t.waited += 1;
            t.wait_sum += wait;
        }
        let took = exponential(&mut work, staff.handle_seconds);
        t.busy += ((now + took).min(self.horizon) - now).max(0.0);
        let label = if work.chance(staff.accuracy) {
            0
        } else {
            1 + work.below(self.plan.labels - 1) as u16
        };
        if again {
            t.queue.push(c);
        }
        self.hands[r as usize] = Some(Hand {
            tier,
            task: c.id,
            label,
        });
        self.schedule(now + took, Kind::Answer { reviewer: r });
    }

    fn answer(&mut self, r: u32, now: f64) {
        let Hand { tier, task: id, label } = self.hands[r as usize].take().expect("an answer has a task in hand");
        self.tiers[usize::from(tier)].free.push(r);
        self.tiers[usize::from(tier)].answers += 1;
        self.answers += 1;
        self.last_answer = self.last_answer.max(now);
        let task = &mut self.tasks[id as usize];
        if !task.answers.is_empty() {
            self.overlap_answers += 1;
        }
        task.answers.push(label);
        self.counts
            .entry((task.queue, task.tier, task.stage))
            .or_default()
            .answers += 1;
        if task.answers.len() == usize::from(task.needed) {
            let c = self.plan.consensus;
            let verdict = majority(&task.answers);
            match (task.stage, verdict) {
                (Stage::Adjudicate, _) => self.resolve(id, label, now),
                (Stage::Audit, Some((l, _))) => self.resolve(id, l, now),
                (Stage::Review, Some((l, conf))) if conf >= c.min_confidence => self.resolve(id, l, now),
                (Stage::Review, _) if task.answers.len() < usize::from(c.max_overlap) => {
                    task.needed += 1;
                    task.open += 1;
                    task.open_since = now;
                    let claim = Claimable {
                        priority: task.priority,
                        due: task.due.unwrap_or(f64::INFINITY),
                        created: task.created,
                        id,
                    };
                    self.extra_reviewers += 1;
                    self.tiers[usize::from(tier)].queue.push(claim);
                }
                _ => {
                    self.adjudications += 1;
                    let (item, queue, priority) = (task.item, task.queue, task.priority);
                    let up = tier.saturating_add(1).min(MAX_TIER);
                    self.close(id, now);
                    self.create(
                        now,
                        NewTask {
                            item,
                            queue,
                            tier: up,
                            priority,
                            stage: Stage::Adjudicate,
                            overlap: 1,
                        },
                    );
                }
            }
        }
        self.dispatch(tier, now);
    }

    fn resolve(&mut self, id: u32, label: u16, now: f64) {
        self.resolved += 1;
        if label == 0 {
            self.resolved_right += 1;
        }
        self.close(id, now);
    }

    /// The task has all its answers: its SLA outcome is known.
    fn close(&mut self, id: u32, now: f64) {
        let task = &self.tasks[id as usize];
        let q = task.queue as usize;
        self.open[q] -= 1;
        self.done[q] += 1;
        self.answer_seconds[q] += now - task.created;
        if let Some(due) = task.due {
            let s = self.sla.entry((task.queue, task.tier)).or_default();
            s.tasks += 1;
            if now > due {
                s.breaches += 1;
            }
        }
    }

    fn hour(&mut self, h: u32) {
        let by_queue: BTreeMap<String, u64> = self
            .queue_names
            .iter()
            .zip(&self.open)
            .map(|(q, n)| (q.clone(), *n))
            .collect();
        self.backlog.push(Backlog {
            hour: h,
            open: self.open.iter().sum(),
            by_queue,
        });
    }

    fn report(self) -> Report {
        let share = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let mut tasks: Vec<(&(u32, u8, Stage), &Counts)> = self.counts.iter().collect();
        tasks.sort_by_key(|(k, _)| **k);
        let tasks = tasks
            .into_iter()
            .map(|((q, tier, stage), c)| TaskCount {
                queue: self.queue_names[*q as usize].clone(),
                tier: *tier,
                stage: stage.as_str(),
                tasks: c.tasks,
                answers: c.answers,
            })
            .collect();
        let tiers = self
            .plan
            .tiers
            .iter()
            .map(|(&t, staff)| {
                let s = &self.tiers[usize::from(t)];
                let staffed = f64::from(staff.reviewers) * self.horizon;
                (
                    t.to_string(),
                    TierReport {
                        reviewers: staff.reviewers,
                        handle_seconds: staff.handle_seconds,
                        accuracy: staff.accuracy,
                        answers: s.answers,
                        occupancy: if staffed > 0.0 { s.busy / staffed } else { 0.0 },
                        waiting_probability: share(s.waited, s.claims).unwrap_or(0.0),
                        average_wait_seconds: if s.claims > 0 {
                            s.wait_sum / s.claims as f64
                        } else {
                            0.0
                        },
                    },
                )
            })
            .collect();
        let mut queues = BTreeMap::new();
        for (q, name) in self.queue_names.iter().enumerate() {
            let mut by_tier = BTreeMap::new();
            let (mut n, mut breaches) = (0, 0);
            for (&(_, tier), s) in self.sla.iter().filter(|((qq, _), _)| *qq as usize == q) {
                n += s.tasks;
                breaches += s.breaches;
                by_tier.insert(
                    tier.to_string(),
                    QueueTier {
                        tasks: s.tasks,
                        sla_breaches: s.breaches,
                        within_sla_share: share(s.tasks - s.breaches, s.tasks),
                    },
                );
            }
            let sla_seconds = self.queue_sla[q];
            queues.insert(
                name.clone(),
                QueueReport {
                    tasks: self.done[q],
                    sla_seconds,
                    sla_breaches: breaches,
                    sla_breach_share: sla_seconds.and(share(breaches, n)),
                    by_tier,
                    average_answer_seconds: if self.done[q] > 0 {
                        self.answer_seconds[q] / self.done[q] as f64
                    } else {
                        0.0
                    },
                },
            );
        }
        Report {
            seed: self.plan.seed,
            hours: self.plan.hours,
            arrivals_per_hour: self.plan.arrivals_per_hour,
            staffing: self
                .plan
                .tiers
                .iter()
                .map(|(t, s)| (t.to_string(), s.reviewers))
                .collect(),
            items: self.items,
            auto: self.auto,
            automation_rate: share(self.auto, self.items).unwrap_or(0.0),
            audits: self.audits,
            tasks,
            answers: self.answers,
            overlap_answers: self.overlap_answers,
            extra_reviewers: self.extra_reviewers,
            adjudications: self.adjudications,
            human_accuracy: share(self.resolved_right, self.resolved),
            tiers,
            queues,
            backlog: self.backlog,
            drained_at_hours: self.last_answer / 3600.0,
        }
    }
}

/// Runs `plan` once: arrivals during its hours, then until every task is answered.
pub fn run(plan: &Plan) -> Result<Report, String> {
    check(plan)?;
    let mut sim = Sim::new(plan);
    for h in 1..=(plan.hours.ceil() as u32) {
        sim.schedule((f64::from(h) * 3600.0).min(sim.horizon), Kind::Hour(h));
    }
    sim.next_arrival(0.0);
    while let Some(e) = sim.events.pop() {
        match e.kind {
            Kind::Arrival => sim.arrive(e.at),
            Kind::Answer { reviewer } => sim.answer(reviewer, e.at),
            Kind::Hour(h) => sim.hour(h),
        }
    }
    Ok(sim.report())
}
