//! Console and dashboard: counts per queue, queue depths and traffic over time.

use serde::Serialize;

use crate::Millis;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueStats {
    pub name: String,
    pub open: i64,
    pub oldest_age_ms: i64,
    /// Open tasks whose `sla.warning` was written and whose deadline has not passed.
    pub due_soon: i64,
    /// Open tasks past their deadline (`due_at <= now`).
    pub overdue: i64,
    /// Tasks ever breached (`sla.breached` written), open or not.
    pub breached_total: i64,
    /// Of the tasks with a deadline closed in the last hour / day, the share closed by it
    /// (`None` when none closed).
    pub within_sla_1h: Option<f64>,
    pub within_sla_24h: Option<f64>,
}

impl QueueStats {
    /// Both backends' rows put together, by queue name: `open` is `(queue, open, oldest
    /// created_at, due_soon, overdue)`, `breached` `(queue, count)`, `closed` `(queue,
    /// closed in the last hour, of which in time, closed in the last day, of which in time)`.
    pub(crate) fn assemble(
        open: Vec<(String, i64, Millis, i64, i64)>,
        breached: Vec<(String, i64)>,
        closed: Vec<(String, i64, i64, i64, i64)>,
        now: Millis,
    ) -> Vec<QueueStats> {
        let mut by: std::collections::BTreeMap<String, QueueStats> = std::collections::BTreeMap::new();
        for (q, n, oldest, due_soon, overdue) in open {
            let e = by.entry(q.clone()).or_insert_with(|| QueueStats {
                name: q,
                ..QueueStats::default()
            });
            e.open = n;
            e.oldest_age_ms = (now - oldest).max(0);
            e.due_soon = due_soon;
            e.overdue = overdue;
        }
        for (q, n) in breached {
            by.entry(q.clone())
                .or_insert_with(|| QueueStats {
                    name: q,
                    ..QueueStats::default()
                })
                .breached_total = n;
        }
        let share = |ok: i64, n: i64| (n > 0).then(|| ok as f64 / n as f64);
        for (q, n1, ok1, n24, ok24) in closed {
            let e = by.entry(q.clone()).or_insert_with(|| QueueStats {
                name: q,
                ..QueueStats::default()
            });
            e.within_sla_1h = share(ok1, n1);
            e.within_sla_24h = share(ok24, n24);
        }
        by.into_values().collect()
    }
}

/// Open tasks of one queue and tier (see `Store::queue_depths`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDepth {
    pub queue: String,
    pub tier: u8,
    pub open: i64,
    pub oldest_age_ms: i64,
    /// Open tasks past their deadline (`due_at <= now`); `None` for a queue not named in
    /// the call's `sla_queues`.
    pub breaches: Option<i64>,
}

impl QueueDepth {
    /// Both backends' rows put together: `open` is `(queue, tier, open, oldest created_at,
    /// past their deadline)`.
    pub(crate) fn assemble(
        open: Vec<(String, u8, i64, Millis, i64)>,
        sla_queues: &[String],
        now: Millis,
    ) -> Vec<QueueDepth> {
        open.into_iter()
            .map(|(queue, tier, n, oldest, overdue)| QueueDepth {
                breaches: sla_queues.contains(&queue).then_some(overdue),
                queue,
                tier,
                open: n,
                oldest_age_ms: (now - oldest).max(0),
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub items: i64,
    pub auto: i64,
    pub review: i64,
    pub resolved: i64,
    pub open_tasks: i64,
    pub queues: Vec<QueueStats>,
    /// Audits answered: agreeing with the auto label, and correcting it.
    pub audits_confirmed: i64,
    pub audits_corrected: i64,
}

/// A project's traffic in one slice of time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ActivityBucket {
    pub start: Millis,
    /// Items decided auto and sent to review in this slice.
    pub auto: i64,
    pub review: i64,
    /// Answers given by reviewers (labels, escalations, skips).
    pub answers: i64,
    /// The mean novelty of the slice's items whose prediction carried one (none: no such
    /// item). A rising line is a new kind of content.
    pub novelty: Option<f64>,
}

impl ActivityBucket {
    /// Buckets in time order from `(start, auto, review, mean novelty)` and
    /// `(start, answers)` rows.
    pub fn merge(decided: Vec<(Millis, i64, i64, Option<f64>)>, answered: Vec<(Millis, i64)>) -> Vec<ActivityBucket> {
        let mut out = std::collections::BTreeMap::<Millis, ActivityBucket>::new();
        for (start, auto, review, novelty) in decided {
            let b = out.entry(start).or_insert(ActivityBucket::empty(start));
            b.auto += auto;
            b.review += review;
            b.novelty = novelty;
        }
        for (start, answers) in answered {
            out.entry(start).or_insert(ActivityBucket::empty(start)).answers += answers;
        }
        out.into_values().collect()
    }

    fn empty(start: Millis) -> Self {
        ActivityBucket {
            start,
            auto: 0,
            review: 0,
            answers: 0,
            novelty: None,
        }
    }
}
