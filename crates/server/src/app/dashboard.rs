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
    let queues = by_name
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

    // The last day (or the project's life, if shorter) in about 48 slices.
    let since = (now - 86_400_000).max(p.created_at);
    let bucket_ms = ((now - since) / 48).max(60_000);
    let activity = s.store.activity(p.id, since, bucket_ms).await?;
    let events = s.store.latest_events(p.id, 20).await?;
    Ok(Dashboard {
        now,
        stats,
        queues,
        reviewers,
        agreement,
        monitors,
        since,
        bucket_ms,
        activity,
        events,
    })
}
