//! What a project's operations dashboard shows: the counters, each queue with its SLA state
//! (overdue, due soon, breached so far, share answered in time), reviewers' records, agreement, monitors, the activity of
//! the last day, and the latest events. Rendering (formats, charts) is the console's.

use flywheel_store::{ActivityBucket, EventRecord};

use super::feeds::{self, ProjectStats};
use super::monitors::{self, Monitor};
use super::quality::{self, ReviewerQuality};
use super::{AppError, AppState, ProjectRuntime};

/// A queue as the dashboard shows it.
pub struct QueueStatus {
    pub name: String,
    pub open: i64,
    pub oldest_age_s: f64,
    /// The policy's SLA for this queue, if it sets one.
    pub sla_seconds: Option<u32>,
    /// Open tasks past their deadline (`due_at`), for a queue some route gives one.
    pub breaches: Option<i64>,
    /// Open tasks warned and not yet due.
    pub due_soon: i64,
    /// Tasks ever breached.
    pub breached_total: i64,
    /// Share of the tasks with a deadline closed in the last day that closed by it.
    pub within_sla_24h: Option<f64>,
}

/// Everything on the dashboard, read at `now`.
pub struct Dashboard {
    pub now: i64,
    pub stats: ProjectStats,
    /// By name.
    pub queues: Vec<QueueStatus>,
    pub reviewers: Vec<ReviewerQuality>,
    /// Each reviewer's answers since midnight UTC, by name: every answer sent (labels,
    /// escalations and skips), the count the workbench shows.
    pub answers_today: std::collections::HashMap<String, i64>,
    pub agreement: Option<quality::Agreement>,
    pub monitors: Vec<Monitor>,
    /// The activity series starts here (a day ago, or the project's start if later) ...
    pub since: i64,
    /// ... in slices this long (about 48 of them, at least a minute).
    pub bucket_ms: i64,
    pub activity: Vec<ActivityBucket>,
    /// The 20 latest, newest first.
    pub events: Vec<EventRecord>,
}

/// Reads project `p`'s dashboard. Reviewer records use the last Dawid–Skene fit: the
/// dashboard re-renders every few seconds and must not refit. Evaluating the monitors
/// writes an event for each that changed, as the monitors endpoint does.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name))]
pub async fn dashboard(s: &AppState, p: &ProjectRuntime) -> Result<Dashboard, AppError> {
    let now = s.now();
    let stats = feeds::stats(s, p).await?;
    let reviewers = quality::reviewers(s, p, false).await?;
    let agreement = quality::agreement(s, p).await?;
    let monitors = monitors::check(s, p).await?;

    // SLA state per queue, from the stats' deadlines (`due_at`): what is overdue now is
    // shown for the queues some route gives a deadline.
    let sla = &p.policy.spec().sla_seconds;
    let sla_queues = p.policy.sla_queues();
    let mut by_name: Vec<_> = stats.counts.queues.iter().collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    let mut queues: Vec<QueueStatus> = by_name
        .iter()
        .map(|q| QueueStatus {
            name: q.name.clone(),
            open: q.open,
            oldest_age_s: q.oldest_age_ms as f64 / 1000.0,
            sla_seconds: sla.get(&q.name).copied(),
            breaches: (sla_queues.contains(&q.name) || q.overdue > 0).then_some(q.overdue),
            due_soon: q.due_soon,
            breached_total: q.breached_total,
            within_sla_24h: q.within_sla_24h,
        })
        .collect();
    // A queue stays listed when it empties: every queue the policy routes to or gives an
    // SLA is shown, with zeros when nothing is open (the store reports only queues that
    // hold, or recently held, work).
    let mut routed: Vec<String> = p.policy.queues().into_iter().map(|(q, _)| q).collect();
    routed.extend(sla.keys().cloned());
    routed.extend(sla_queues.iter().cloned());
    for name in routed {
        if !queues.iter().any(|q| q.name == name) {
            queues.push(QueueStatus {
                sla_seconds: sla.get(&name).copied(),
                breaches: sla_queues.contains(&name).then_some(0),
                name,
                open: 0,
                oldest_age_s: 0.0,
                due_soon: 0,
                breached_total: 0,
                within_sla_24h: None,
            });
        }
    }
    queues.sort_by(|a, b| a.name.cmp(&b.name));

    // The last day (or the project's life, if shorter) in about 48 slices.
    let since = (now - 86_400_000).max(p.created_at);
    let bucket_ms = ((now - since) / 48).max(60_000);
    let activity = s.store.activity(p.id, since, bucket_ms).await?;
    let events = s.store.latest_events(p.id, 20).await?;
    let today = now.div_euclid(flywheel_store::DAY_MS);
    let mut answers_today = std::collections::HashMap::new();
    for a in s.store.reviewers().await? {
        if reviewers.iter().any(|r| r.name == a.reviewer.name) {
            let n = s.store.answers_on_day(a.reviewer.id, today).await?;
            answers_today.insert(a.reviewer.name, n);
        }
    }
    Ok(Dashboard {
        now,
        stats,
        queues,
        reviewers,
        answers_today,
        agreement,
        monitors,
        since,
        bucket_ms,
        activity,
        events,
    })
}
