//! The learner: trains the built-in models from the label feed, recalibrates thresholds,
//! and every few seconds evaluates the monitors. What a round does lives in
//! `app::learning` and `app::monitors`; this file is only the step and the loop.

use std::sync::Arc;
use std::time::Duration;

use flywheel_store::Result;
use tokio::sync::watch;

use crate::app::AppState;

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
