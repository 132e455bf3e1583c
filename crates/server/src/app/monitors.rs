//! Monitors, the "detect" part: model–human disagreement, the error of auto decisions from
//! audits, drift of the model's scores, backlog. Each has a level in the policy; crossing
//! it writes a `monitor` event (and another when it recovers).

use std::collections::HashMap;
use std::sync::Mutex;

use flywheel_core::calibrate::psi;
use flywheel_core::{Event, event};
use flywheel_store::{Store, StoreError};
use serde::Serialize;

use crate::app::ProjectRuntime;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Monitor {
    pub name: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub firing: bool,
    /// What the value was computed from (items, audits, queue).
    pub basis: String,
}

/// Computes the project's monitors now.
pub async fn evaluate(store: &dyn Store, p: &ProjectRuntime, now: i64) -> Result<Vec<Monitor>, StoreError> {
    let spec = p.policy.monitors().unwrap_or(flywheel_core::policy::MonitorSpec {
        disagreement_rate: None,
        audit_error_rate: None,
        psi: None,
        backlog: None,
        oldest_age_s: None,
        window: 500,
    });
    let window = spec.window as usize;
    let verified = store.verified_predictions(p.id, window).await?;
    let disagree = verified
        .iter()
        .filter(|v| v.prediction.top().0 != v.human_label)
        .count();
    let stats = store.stats(p.id, now).await?;
    let audited = stats.audits_confirmed + stats.audits_corrected;
    let recent = store.recent_predictions(p.id, 2 * window).await?;
    let top: Vec<f64> = recent.iter().map(|p| p.top().1).collect();
    let drift = (top.len() >= 2 * window).then(|| psi(&top[window..], &top[..window], 10));
    let backlog = stats.queues.iter().map(|q| q.open).max();
    let oldest = stats
        .queues
        .iter()
        .map(|q| q.oldest_age_ms as f64 / 1000.0)
        .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
    let make = |name: &str, value: Option<f64>, threshold: Option<f64>, basis: String| Monitor {
        name: name.into(),
        firing: matches!((value, threshold), (Some(v), Some(t)) if v > t),
        value,
        threshold,
        basis,
    };
    Ok(vec![
        make(
            "disagreement_rate",
            (!verified.is_empty()).then(|| disagree as f64 / verified.len() as f64),
            spec.disagreement_rate,
            format!("{} recent human-verified items", verified.len()),
        ),
        make(
            "audit_error_rate",
            (audited > 0).then(|| stats.audits_corrected as f64 / audited as f64),
            spec.audit_error_rate,
            format!("{audited} audits"),
        ),
        make(
            "psi",
            drift,
            spec.psi,
            format!("top score of the last {window} items vs the {window} before"),
        ),
        make(
            "backlog",
            backlog.map(|b| b as f64),
            spec.backlog.map(|b| b as f64),
            "open tasks in the fullest queue".into(),
        ),
        make(
            "oldest_age_s",
            oldest,
            spec.oldest_age_s,
            "oldest open task in any queue".into(),
        ),
    ])
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
