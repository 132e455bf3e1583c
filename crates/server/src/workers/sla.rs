//! The SLA worker: writes `sla.warning` when an open task's warning time passes and
//! `sla.breached` at its deadline — each once per task — applying the queue's
//! `sla_action` in the same transaction (`app::sla`). On PostgreSQL the store makes a run a
//! singleton across nodes (an advisory lock).

use std::sync::Arc;
use std::time::Duration;

use flywheel_store::SlaRun;
use tokio::sync::watch;

use crate::app::{AppError, AppState, sla};

/// How often the loop looks for due tasks.
pub const SLA_EVERY: Duration = Duration::from_secs(1);

pub struct SlaWorker {
    pub state: Arc<AppState>,
    pub batch: usize,
}

impl SlaWorker {
    /// Writes everything due at `now`, in batches until none is left.
    pub async fn try_run_once(&self, now: i64) -> Result<SlaRun, AppError> {
        let mut total = SlaRun::default();
        loop {
            let run = sla::run(&self.state, now, self.batch).await?;
            total.warnings += run.warnings;
            total.breaches += run.breaches;
            if run.warnings + run.breaches < self.batch {
                return Ok(total);
            }
        }
    }

    pub async fn run(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.try_run_once(self.state.now()).await {
                Ok(r) if r == SlaRun::default() => {}
                Ok(r) => tracing::info!(warnings = r.warnings, breaches = r.breaches, "SLA events written"),
                Err(e) => tracing::warn!(error = %e, "the SLA run failed; will retry"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
