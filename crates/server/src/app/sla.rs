//! SLA deadlines on a node: one run of the SLA worker — every project's SLA settings (from
//! its current policy) handed to the store, which loads the tasks whose warning time or
//! deadline has passed, asks core (`flywheel_core::sla::step`) and writes the events and
//! actions in one transaction.

use std::collections::HashMap;

use flywheel_store::SlaRun;

use super::{AppError, AppState};

/// Writes what is due at `now` (at most `limit` tasks). A project whose policy cannot be
/// read is left out, so its tasks take no action until it can (their events still fire).
#[tracing::instrument(level = "debug", skip(s))]
pub async fn run(s: &AppState, now: i64, limit: usize) -> Result<SlaRun, AppError> {
    let mut slas = HashMap::new();
    for project in s.store.projects().await? {
        match s.project(&project.name).await {
            Ok(p) => {
                slas.insert(p.id, p.policy.slas().clone());
            }
            Err(e) => tracing::warn!(project = %project.name, error = %e, "no SLA settings for this project"),
        }
    }
    Ok(s.store.run_sla(slas, now, limit).await?)
}
