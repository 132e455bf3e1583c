//! The built-in model: its state and evaluation, training on demand, and a full retrain.

use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::app::{AppState, ProjectRuntime};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::learning::{self, ProjectModel};

/// The project's built-in model: version, examples seen, how far into the label feed it
/// has trained, its evaluation on held-back human labels, and the current thresholds.
#[utoipa::path(get, path = "/v1/projects/{project}/model", params(("project" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = super::dto::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_service(&p)?;
    let model = built_in(&s, &p).await?;
    Ok(Json(state_of(&s, &p, &model)))
}

/// Trains the model now on every human label of the feed it has not seen, recalibrates
/// the thresholds, and answers what `GET …/model` then shows. The same step the
/// background learner takes; with it off (`ServeOptions`), the only way a model learns,
/// so a simulation can train at fixed points of its stream.
#[utoipa::path(post, path = "/v1/projects/{project}/model/train", params(("project" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = super::dto::ErrorBody)), security(("bearer" = [])))]
pub async fn train(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let model = built_in(&s, &p).await?;
    s.learning.train_project(s.store.as_ref(), &p, &model, s.now()).await?;
    Ok(Json(state_of(&s, &p, &model)))
}

/// The project's built-in model, loaded on first use, or 404.
async fn built_in(s: &AppState, p: &ProjectRuntime) -> Result<Arc<RwLock<ProjectModel>>, ApiError> {
    s.learning
        .model(s.store.as_ref(), p)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project '{}' has no built-in model (policy.model)", p.name)))
}

/// The body of `GET …/model`.
fn state_of(s: &AppState, p: &ProjectRuntime, model: &RwLock<ProjectModel>) -> Value {
    let m = model.read().expect("model");
    json!({
        "version": m.version,
        "examples_seen": m.model.examples_seen(),
        "trained_through": m.trained_through,
        "labels": m.model.labels(),
        "evaluation": m.evaluate(),
        "thresholds": *s.learning.thresholds(p.id),
    })
}

/// Refits the model from every human label, from the start of the feed, and stores it as
/// a new version.
#[utoipa::path(post, path = "/v1/projects/{project}/model/retrain", params(("project" = String, Path)),
    responses((status = 200, body = Object)), security(("bearer" = [])))]
pub async fn retrain(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let spec = p
        .policy
        .model()
        .ok_or_else(|| ApiError::not_found(format!("project '{project}' has no built-in model (policy.model)")))?;
    let previous = s
        .learning
        .model(s.store.as_ref(), &p)
        .await?
        .map(|m| m.read().expect("model").version)
        .unwrap_or(0);
    let model = s.learning.reset(&p, spec.bits);
    model.write().expect("model").version = previous;
    let used = learning::train(s.store.as_ref(), p.id, &model, s.now()).await?;
    let snapshot = model.write().expect("model").snapshot(s.now());
    let version = snapshot.version;
    s.store.save_model(p.id, snapshot, s.now()).await?;
    let evaluation = model.read().expect("model").evaluate();
    Ok(Json(
        json!({"version": version, "examples_used": used, "evaluation": evaluation}),
    ))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictIn {
    /// Up to 10,000 items: `{payload, attributes?}`.
    pub items: Vec<PredictItem>,
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictItem {
    #[schema(value_type = Object)]
    pub payload: Value,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Option<Value>,
}

/// Scores items with the project's built-in model without storing or deciding anything:
/// for evaluating the model on a test set of your own, or for a dry run.
#[utoipa::path(post, path = "/v1/projects/{project}/model/predict", params(("project" = String, Path)),
    request_body = PredictIn, responses((status = 200, body = Object), (status = 404, body = super::dto::ErrorBody)),
    security(("bearer" = [])))]
pub async fn predict(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    super::ApiJson(body): super::ApiJson<PredictIn>,
) -> Result<Json<Value>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_service(&p)?;
    if body.items.is_empty() || body.items.len() > super::MAX_BATCH {
        return Err(ApiError::invalid(
            "items",
            format!("send 1 to {} items", super::MAX_BATCH),
        ));
    }
    for (i, it) in body.items.iter().enumerate() {
        if !it.payload.is_object() {
            return Err(ApiError::invalid(
                format!("items[{i}].payload"),
                "payload is a JSON object",
            ));
        }
        if it.attributes.as_ref().is_some_and(|a| !a.is_object() && !a.is_null()) {
            return Err(ApiError::invalid(
                format!("items[{i}].attributes"),
                "attributes is a JSON object",
            ));
        }
    }
    let model = s
        .learning
        .model(s.store.as_ref(), &p)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project '{project}' has no built-in model (policy.model)")))?;
    // Scoring thousands of items is CPU work: off the async threads.
    let out = tokio::task::spawn_blocking(move || {
        let m = model.read().expect("model");
        let empty = Value::Object(Default::default());
        let predictions: Vec<Value> = body
            .items
            .iter()
            .map(|it| {
                let attributes = it.attributes.as_ref().filter(|a| a.is_object()).unwrap_or(&empty);
                let pr = m.predict(&it.payload, attributes);
                let (label, confidence) = pr.top();
                let scores: std::collections::BTreeMap<_, _> = pr.scores.iter().cloned().collect();
                json!({"label": label, "confidence": confidence, "scores": scores})
            })
            .collect();
        json!({"model_version": m.version, "examples_seen": m.model.examples_seen(), "predictions": predictions})
    })
    .await
    .map_err(|e| ApiError::internal(format!("scoring failed: {e}")))?;
    Ok(Json(out))
}

/// Replays a proposed policy over the project's recent human-labelled items (`window`, at
/// most 50,000, default 5,000) with the current thresholds: automation rate, error of the
/// auto decisions against the human labels (with its 95% interval), human load per queue.
/// Nothing is stored. The items are those humans labelled — mostly the ones a policy sent
/// to review — so the error estimate is of those, not of all traffic.
#[utoipa::path(post, path = "/v1/projects/{project}/policy/backtest", params(("project" = String, Path)),
    request_body(content = Object, description = "{policy, window?}"),
    responses((status = 200, body = Object), (status = 422, body = super::dto::ErrorBody)), security(("bearer" = [])))]
pub async fn backtest(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    super::ApiJson(body): super::ApiJson<BacktestIn>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let policy =
        flywheel_core::Policy::from_json(&body.policy, &p.labels).map_err(|e| ApiError::from(e.within("policy")))?;
    let window = body.window.unwrap_or(5000);
    if !(1..=50_000).contains(&window) {
        return Err(ApiError::invalid("window", "window is between 1 and 50000 items"));
    }
    let history = s.store.history(p.id, window).await?;
    let thresholds = s.learning.thresholds(p.id);
    let report = tokio::task::spawn_blocking(move || flywheel_core::backtest::backtest(&policy, &thresholds, &history))
        .await
        .map_err(|e| ApiError::internal(format!("back-test failed: {e}")))?;
    Ok(Json(
        serde_json::to_value(report).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestIn {
    #[schema(value_type = Object)]
    pub policy: Value,
    #[serde(default)]
    pub window: Option<usize>,
}

/// The project's monitors now: value, level, firing. A monitor that crosses its level
/// writes a `monitor` event (checked every few seconds, and on this call).
#[utoipa::path(get, path = "/v1/projects/{project}/monitors", params(("project" = String, Path)),
    responses((status = 200, body = Object)), security(("bearer" = [])))]
pub async fn monitors(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_any(&p)?;
    let monitors = s.alarms.check(s.store.as_ref(), &p, s.now()).await?;
    Ok(Json(json!({"monitors": monitors})))
}
