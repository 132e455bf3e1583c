//! The built-in model: its state and evaluation, and a full retrain.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::learning;

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
    let model = s
        .learning
        .model(s.store.as_ref(), &p)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project '{project}' has no built-in model (policy.model)")))?;
    let m = model.read().expect("model");
    Ok(Json(json!({
        "version": m.version,
        "examples_seen": m.model.examples_seen(),
        "trained_through": m.trained_through,
        "labels": m.model.labels(),
        "evaluation": m.evaluate(),
        "thresholds": *s.learning.thresholds(p.id),
    })))
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
    let snapshot = {
        let mut m = model.write().expect("model");
        m.version += 1;
        m.since_snapshot = 0;
        flywheel_store::ModelSnapshot {
            version: m.version,
            model: m.model.to_bytes(),
            examples_seen: m.model.examples_seen(),
            trained_through: m.trained_through,
            created_at: s.now(),
        }
    };
    let version = snapshot.version;
    s.store.save_model(p.id, snapshot, s.now()).await?;
    let evaluation = model.read().expect("model").evaluate();
    Ok(Json(
        json!({"version": version, "examples_used": used, "evaluation": evaluation}),
    ))
}
