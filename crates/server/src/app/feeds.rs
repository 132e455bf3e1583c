//! The label feed, the event log and the project's counters, cursor-paged and replayable
//! from the start. Reads only; the caller checks who may read.

use std::collections::HashMap;
use std::sync::Arc;

use flywheel_core::calibrate::{Estimate, audit_precision};
use flywheel_core::stranded::{OpenWork, Stranded, stranded};
use flywheel_store::{EventRecord, LabelRecord, Stats};

use super::{AppError, AppState, ProjectRuntime};

/// Project `p`'s resolutions after cursor `after`, at most `limit`, in feed order.
#[tracing::instrument(level = "debug", skip(s, p), fields(project = %p.name))]
pub async fn labels(s: &AppState, p: &ProjectRuntime, after: i64, limit: usize) -> Result<Vec<LabelRecord>, AppError> {
    Ok(s.store.labels(p.id, after, limit).await?)
}

/// Events after `after` (at most `limit`) of one project, or of everything with `None`.
#[tracing::instrument(level = "debug", skip(s))]
pub async fn events(
    s: &AppState,
    project_id: Option<i64>,
    after: i64,
    limit: usize,
) -> Result<Vec<EventRecord>, AppError> {
    Ok(s.store.events(project_id, after, limit).await?)
}

/// A project's counters now, with the precision of its auto decisions from audits, the
/// calibrated thresholds, and the stranded work.
pub struct ProjectStats {
    pub counts: Stats,
    /// Audits answered.
    pub audits: u64,
    /// Share of audits that confirmed the auto label, with its 95% interval.
    pub audit: Estimate,
    pub thresholds: Arc<HashMap<String, f64>>,
    /// Open tasks no active reviewer of the project can claim (core's `stranded`), by
    /// queue and tier.
    pub stranded: Vec<Stranded>,
}

impl ProjectStats {
    /// Share of items decided auto (0 with no items).
    pub fn automation_rate(&self) -> f64 {
        if self.counts.items > 0 {
            self.counts.auto as f64 / self.counts.items as f64
        } else {
            0.0
        }
    }
}

/// Project `p`'s counters now.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name))]
pub async fn stats(s: &AppState, p: &ProjectRuntime) -> Result<ProjectStats, AppError> {
    let now = s.now();
    let counts = s.store.stats(p.id, now).await?;
    let audits = (counts.audits_confirmed + counts.audits_corrected) as u64;
    let audit = audit_precision(counts.audits_confirmed as u64, audits);
    // Stranded work: only open tasks are read (through the open-task index), so this
    // costs the backlog, like a metrics scrape, not the project's history.
    let held = s.store.active_tiers(p.id).await?;
    let open = s.store.queue_depths(p.id, now, Vec::new()).await?;
    let stranded = stranded(
        open.into_iter().map(|d| OpenWork {
            queue: d.queue,
            tier: d.tier,
            open: d.open,
            oldest_age_ms: d.oldest_age_ms,
        }),
        &held,
    );
    Ok(ProjectStats {
        counts,
        audits,
        audit,
        thresholds: s.learning.thresholds(p.id),
        stranded,
    })
}
