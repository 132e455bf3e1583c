//! What a project's operations dashboard shows: the counters, each queue with its SLA and
//! how many open tasks breach it, reviewers' records, agreement, monitors, the activity of
//! the last day, and the latest events. Rendering (formats, charts) is the console's.

use flywheel_core::agreement::AgreementReport;
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
    /// Open tasks older than the SLA (with an SLA).
    pub breaches: Option<i64>,
}

/// Everything on the dashboard, read at `now`.
pub struct Dashboard {
    pub now: i64,
    pub stats: ProjectStats,
    /// By name.
    pub queues: Vec<QueueStatus>,
    pub reviewers: Vec<ReviewerQuality>,
    pub agreement: Option<AgreementReport>,
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

    // SLA breaches: per queue with an SLA, the open tasks created before `now − SLA`.
    let sla = &p.policy.spec().sla_seconds;
    let mut by_name: Vec<_> = stats.counts.queues.iter().collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    let cutoffs: Vec<(String, i64)> = by_name
        .iter()
        .filter_map(|q| {
            sla.get(&q.name)
                .map(|secs| (q.name.clone(), now - i64::from(*secs) * 1000))
        })
        .collect();
    let overdue = s.store.overdue_tasks(p.id, cutoffs.clone()).await?;
    let queues = by_name
        .iter()
        .map(|q| QueueStatus {
            name: q.name.clone(),
            open: q.open,
            oldest_age_s: q.oldest_age_ms as f64 / 1000.0,
            sla_seconds: sla.get(&q.name).copied(),
            breaches: cutoffs.iter().position(|(n, _)| *n == q.name).map(|i| overdue[i]),
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
