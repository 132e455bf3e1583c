//! The lease reaper: returns expired leases' tasks to their queues. On PostgreSQL the store
//! makes it a singleton across nodes (an advisory lock); it must not decide anything else.

use std::sync::Arc;
use std::time::Duration;

use flywheel_store::Result;
use tokio::sync::watch;

use crate::app::AppState;

/// Returns expired leases' tasks to their queues (and counts them in the metrics).
pub struct LeaseReaper {
    pub state: Arc<AppState>,
    pub batch: usize,
}

impl LeaseReaper {
    /// Expires what is due now, in batches until none is left. Returns how many.
    pub async fn try_run_once(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.state.store.expire_leases(self.state.now(), self.batch).await?;
            self.state.metrics.leases_expired(n);
            total += n;
            if n < self.batch {
                return Ok(total);
            }
        }
    }

    pub async fn run(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.try_run_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "returned expired leases to their queues"),
                Err(e) => tracing::warn!(error = %e, "lease expiry failed; will retry"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
