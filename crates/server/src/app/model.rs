//! The built-in model's use cases: its state and evaluation, a full retrain, scoring
//! without deciding, and a proposed policy replayed over history. Training itself is
//! `learning`'s; this module only asks it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use flywheel_core::backtest::BacktestReport;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::learning::{self, ProjectModel};
use super::{AppError, AppState, ProjectRuntime};

/// Project `p`'s model, or not found when its policy has none.
async fn model_of(s: &AppState, p: &ProjectRuntime) -> Result<Arc<RwLock<ProjectModel>>, AppError> {
    s.learning
        .model(s.store.as_ref(), p)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("project '{}' has no built-in model (policy.model)", p.name)))
}

/// The model's state now.
pub struct ModelStatus {
    pub version: u32,
    pub examples_seen: u64,
    pub trained_through: i64,
    pub labels: Vec<String>,
    /// Accuracy and per-label F1 on the held-back examples.
    pub evaluation: Value,
    pub thresholds: Arc<HashMap<String, f64>>,
}

/// Project `p`'s model: version, examples seen, how far into the label feed it has
/// trained, its evaluation, and the current thresholds.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name))]
pub async fn status(s: &AppState, p: &ProjectRuntime) -> Result<ModelStatus, AppError> {
    let model = model_of(s, p).await?;
    let m = model.read().expect("model");
    Ok(ModelStatus {
        version: m.version,
        examples_seen: m.model.examples_seen(),
        trained_through: m.trained_through,
        labels: m.model.labels().to_vec(),
        evaluation: m.evaluate(),
        thresholds: s.learning.thresholds(p.id),
    })
}

/// Trains project `p`'s model now on every human label of the feed it has not seen and
/// recalibrates its thresholds — the background learner's step, on demand — and returns
/// the model's state after it.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name))]
pub async fn train(s: &AppState, p: &ProjectRuntime) -> Result<ModelStatus, AppError> {
    let model = model_of(s, p).await?;
    s.learning.train_project(s.store.as_ref(), p, &model, s.now()).await?;
    status(s, p).await
}

/// What a retrain made.
pub struct Retrained {
    pub version: u32,
    pub examples_used: usize,
    pub evaluation: Value,
}

/// Refits project `p`'s model from every human label, from the start of the feed, and
/// stores it as a new version.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name))]
pub async fn retrain(s: &AppState, p: &ProjectRuntime) -> Result<Retrained, AppError> {
    let spec = p
        .policy
        .model()
        .ok_or_else(|| AppError::NotFound(format!("project '{}' has no built-in model (policy.model)", p.name)))?;
    let previous = s
        .learning
        .model(s.store.as_ref(), p)
        .await?
        .map(|m| m.read().expect("model").version)
        .unwrap_or(0);
    let model = s.learning.reset(p, spec.bits);
    model.write().expect("model").version = previous;
    let used = learning::train(s.store.as_ref(), p.id, &model, s.now()).await?;
    let snapshot = model.write().expect("model").snapshot(s.now());
    let version = snapshot.version;
    s.store.save_model(p.id, snapshot, s.now()).await?;
    let evaluation = model.read().expect("model").evaluate();
    Ok(Retrained {
        version,
        examples_used: used,
        evaluation,
    })
}

/// An item to score (the wire format re-exports it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictItem {
    #[schema(value_type = Object)]
    pub payload: Value,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Option<Value>,
}

/// Scores items with project `p`'s model without storing or deciding anything (the
/// caller checked them). The reply is built off the async threads: scoring thousands of
/// items is CPU work.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name, items = items.len()))]
pub async fn predict(s: &AppState, p: &ProjectRuntime, items: Vec<PredictItem>) -> Result<Value, AppError> {
    let model = model_of(s, p).await?;
    tokio::task::spawn_blocking(move || {
        let m = model.read().expect("model");
        let empty = Value::Object(Default::default());
        let predictions: Vec<Value> = items
            .iter()
            .map(|it| {
                let attributes = it.attributes.as_ref().filter(|a| a.is_object()).unwrap_or(&empty);
                let pr = m.predict(&it.payload, attributes);
                let (label, confidence) = pr.top();
                let scores: std::collections::BTreeMap<_, _> = pr.scores.iter().cloned().collect();
                json!({"label": label, "confidence": confidence, "scores": scores, "novelty": pr.novelty})
            })
            .collect();
        json!({"model_version": m.version, "examples_seen": m.model.examples_seen(), "predictions": predictions})
    })
    .await
    .map_err(|e| AppError::Internal(format!("scoring failed: {e}")))
}

/// A proposed policy and the one in force, replayed over the same items.
pub struct Comparison {
    pub proposed: BacktestReport,
    pub current: BacktestReport,
}

/// Replays `policy` and the policy in force over project `p`'s `window` most recent
/// human-labelled items with the current thresholds, so the two can be read side by side.
/// Nothing is stored.
#[tracing::instrument(level = "debug", skip(s, p, policy), fields(project = %p.name))]
pub async fn backtest(s: &AppState, p: &ProjectRuntime, policy: &Value, window: usize) -> Result<Comparison, AppError> {
    let policy = flywheel_core::Policy::from_json(policy, &p.labels).map_err(|e| AppError::from(e.within("policy")))?;
    if !(1..=50_000).contains(&window) {
        return Err(AppError::invalid("window", "window is between 1 and 50000 items"));
    }
    let history = s.store.history(p.id, window).await?;
    let thresholds = s.learning.thresholds(p.id);
    // The policy in force, compiled afresh: the runtime is borrowed and a compiled policy
    // is not `Clone`.
    let current = flywheel_core::Policy::from_json(&p.policy_json, &p.labels)
        .map_err(|e| AppError::Internal(format!("the policy in force does not compile: {e}")))?;
    tokio::task::spawn_blocking(move || Comparison {
        proposed: flywheel_core::backtest::backtest(&policy, &thresholds, &history),
        current: flywheel_core::backtest::backtest(&current, &thresholds, &history),
    })
    .await
    .map_err(|e| AppError::Internal(format!("back-test failed: {e}")))
}
