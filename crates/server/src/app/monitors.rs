//! Monitors on a node: reads what `flywheel_core::monitor` computes them from, and writes a
//! `monitor` event when one crosses its level (and another when it recovers).

use std::collections::HashMap;
use std::sync::Mutex;

use flywheel_core::monitor::{self, Inputs};
use flywheel_core::{Event, event};
use flywheel_store::{Store, StoreError};

use crate::app::ProjectRuntime;

pub use flywheel_core::monitor::Monitor;

/// Computes the project's monitors now: reads their inputs, and core computes them.
pub async fn evaluate(store: &dyn Store, p: &ProjectRuntime, now: i64) -> Result<Vec<Monitor>, StoreError> {
    let spec = p.policy.monitors().unwrap_or_else(monitor::unset);
    let window = spec.window as usize;
    let verified = store.verified_predictions(p.id, window).await?;
    let stats = store.stats(p.id, now).await?;
    let recent = store.recent_predictions(p.id, 2 * window).await?;
    let recent_rules = if spec.distress_rate.is_some() {
        store.recent_rules(p.id, window).await?
    } else {
        Vec::new()
    };
    let inputs = Inputs {
        verified: verified.len(),
        disagreements: verified
            .iter()
            .filter(|v| v.prediction.top().0 != v.human_label)
            .count(),
        audits_confirmed: stats.audits_confirmed,
        audits_corrected: stats.audits_corrected,
        recent_top_scores: recent.iter().map(|p| p.top().1).collect(),
        queues: stats.queues.iter().map(|q| (q.open, q.oldest_age_ms)).collect(),
        recent_rules,
    };
    Ok(monitor::evaluate(&spec, &inputs))
}

/// Which monitors are firing, per project, so that an event is written on each change.
#[derive(Default)]
pub struct Alarms(Mutex<HashMap<(i64, String), bool>>);

impl Alarms {
    /// Evaluates the project's monitors and writes an event for each that started or
    /// stopped firing.
    pub async fn check(&self, store: &dyn Store, p: &ProjectRuntime, now: i64) -> Result<Vec<Monitor>, StoreError> {
        let monitors = evaluate(store, p, now).await?;
        for m in &monitors {
            let changed = {
                let mut state = self.0.lock().expect("alarms");
                let was = state.insert((p.id, m.name.clone()), m.firing).unwrap_or(false);
                was != m.firing
            };
            if changed {
                store
                    .append_event(
                        p.id,
                        Event::Monitor(event::Monitor {
                            monitor: m.name.clone(),
                            state: if m.firing { "firing" } else { "resolved" }.into(),
                            value: m.value,
                            threshold: m.threshold,
                            basis: m.basis.clone(),
                        }),
                        "system",
                        now,
                    )
                    .await?;
            }
        }
        Ok(monitors)
    }
}

/// Project `p`'s monitors now, writing an event for each that started or stopped firing.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name))]
pub async fn check(s: &crate::app::AppState, p: &ProjectRuntime) -> Result<Vec<Monitor>, StoreError> {
    s.alarms.check(s.store.as_ref(), p, s.now()).await
}
