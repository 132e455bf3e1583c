//! Background work. Each worker is a step function (`try_run_once`) that tests drive
//! directly, plus a loop that runs it on an interval until shutdown.

use std::sync::Arc;
use std::time::Duration;

use flywheel_store::{Notice, Result, Store};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::app::AppState;
use crate::clock::Clock;

/// Drops cached projects when the store says they changed (on this node or another).
pub async fn follow_notices(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut notices = state.store.subscribe();
    loop {
        tokio::select! {
            n = notices.recv() => match n {
                Ok(Notice::ProjectChanged { name }) => state.forget(&name),
                Ok(Notice::TasksAvailable { .. }) => {}
                Err(RecvError::Lagged(_)) => state.forget_all(),
                Err(RecvError::Closed) => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Returns expired leases' tasks to their queues.
pub struct LeaseReaper {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub batch: usize,
}

impl LeaseReaper {
    /// Expires what is due now, in batches until none is left. Returns how many.
    pub async fn try_run_once(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.store.expire_leases(self.clock.now_ms(), self.batch).await?;
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

/// Trains the built-in models from the label feed and recalibrates thresholds.
pub struct LearningWorker {
    pub state: Arc<AppState>,
}

impl LearningWorker {
    /// One round over the projects this node has loaded a model for. Returns the number
    /// of training examples used.
    pub async fn try_run_once(&self) -> Result<usize> {
        let projects = self.state.cached_projects();
        self.state
            .learning
            .step(self.state.store.as_ref(), &projects, self.state.now())
            .await
    }

    /// Evaluates the monitors of projects that set levels, writing an event on each change.
    pub async fn check_monitors(&self) -> Result<()> {
        for p in self.state.cached_projects() {
            if p.policy.monitors().is_some() {
                self.state
                    .alarms
                    .check(self.state.store.as_ref(), &p, self.state.now())
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn run(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut round = 0u64;
        loop {
            if let Err(e) = self.try_run_once().await {
                tracing::warn!(error = %e, "training failed; will retry");
            }
            // Monitors every 25 rounds (5 s at the default pace).
            if round.is_multiple_of(25)
                && let Err(e) = self.check_monitors().await
            {
                tracing::warn!(error = %e, "monitors failed; will retry");
            }
            round += 1;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
