//! The built-in model: its state and evaluation, training on demand, a full retrain,
//! score-only predict, back-test, and the monitors (`app::model`, `app::monitors`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::dto::ErrorBody;
use crate::app::{AppState, model, monitors};
use crate::auth::Caller;
use crate::error::ApiError;

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
    Ok(Json(status_body(model::status(&s, &p).await?)))
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
    Ok(Json(status_body(model::train(&s, &p).await?)))
}

/// The body of `GET …/model`.
fn status_body(m: model::ModelStatus) -> Value {
    json!({
        "version": m.version,
        "examples_seen": m.examples_seen,
        "trained_through": m.trained_through,
        "labels": m.labels,
        "evaluation": m.evaluation,
        "thresholds": *m.thresholds,
    })
}

/// Refits the model from every human label, from the start of the feed, and stores it as
/// a new version.
#[utoipa::path(post, path = "/v1/projects/{project}/model/retrain", params(("project" = String, Path)),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = Object)), security(("bearer" = [])))]
pub async fn retrain(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let r = model::retrain(&s, &p).await?;
    Ok(Json(
        json!({"version": r.version, "examples_used": r.examples_used, "evaluation": r.evaluation}),
    ))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictIn {
    /// Up to 10,000 items: `{payload, attributes?}`.
    pub items: Vec<PredictItem>,
}

pub use crate::app::model::PredictItem;

/// Scores items with the project's built-in model without storing or deciding anything:
/// for evaluating the model on a test set of your own, or for a dry run.
#[utoipa::path(post, path = "/v1/projects/{project}/model/predict", params(("project" = String, Path)),
    request_body = PredictIn, responses((status = 413, body = ErrorBody, description = "an item has more than 1 MiB of JSON (`field`: `items[i].member`)"), (status = 200, body = Object), (status = 404, body = super::dto::ErrorBody)),
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
    Ok(Json(model::predict(&s, &p, body.items).await?))
}

/// Replays a proposed policy, and the policy in force, over the project's recent
/// human-labelled items (`window`, 1 to 50,000, default 5,000) with the current
/// thresholds: automation rate, error of the auto decisions against the human labels
/// (with its 95% interval), human load per queue — the proposal's figures at the top
/// level, the current policy's under `current`, for a side-by-side reading. Nothing is
/// stored. The items are those humans labelled — mostly the ones a policy sent to review
/// — so the error estimate is of those, not of all traffic.
#[utoipa::path(post, path = "/v1/projects/{project}/policy/backtest", params(("project" = String, Path)),
    request_body = BacktestIn,
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = BacktestOut),
        (status = 400, body = ErrorBody, description = "malformed JSON"), (status = 403, body = ErrorBody, description = "not the admin key"),
        (status = 422, body = ErrorBody, description = "the policy does not compile (`policy.rules[0].when`), or `window` is out of range")),
    security(("bearer" = [])))]
pub async fn backtest(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    super::ApiJson(body): super::ApiJson<BacktestIn>,
) -> Result<Json<BacktestOut>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let c = model::backtest(&s, &p, &body.policy, body.window.unwrap_or(5000)).await?;
    Ok(Json(BacktestOut {
        proposed: c.proposed.into(),
        current: c.current.into(),
        current_version: p.policy_version,
    }))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestIn {
    /// The proposed policy.
    #[schema(value_type = Object)]
    pub policy: Value,
    /// How many of the latest human-labelled items to replay (default 5,000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 50000)]
    pub window: Option<usize>,
}

/// A proposed policy's back-test, with the policy in force's over the same items.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BacktestOut {
    #[serde(flatten)]
    pub proposed: BacktestFigures,
    /// The policy in force (`current_version`), replayed over the same items.
    pub current: BacktestFigures,
    pub current_version: u32,
}

/// What one policy would have done over the replayed items.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BacktestFigures {
    pub items: u64,
    pub auto: u64,
    pub review: u64,
    /// auto / items; absent with no items.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub automation_rate: Option<f64>,
    /// Auto decisions whose label differs from the human label.
    pub auto_errors: u64,
    /// auto_errors / auto; absent with no auto decisions. Precision is one minus it.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub auto_error_rate: Option<f64>,
    /// The 95% Wilson interval of `auto_error_rate`: [low, high].
    pub auto_error_interval: Option<Vec<f64>>,
    /// Per queue: the items sent there and the answers they would have needed.
    pub load: std::collections::BTreeMap<String, QueueLoadOut>,
    /// How many items each rule decided.
    pub rules: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct QueueLoadOut {
    pub items: u64,
    /// Items × their route's overlap.
    pub human_answers: u64,
}

impl From<flywheel_core::backtest::BacktestReport> for BacktestFigures {
    fn from(r: flywheel_core::backtest::BacktestReport) -> Self {
        Self {
            items: r.items,
            auto: r.auto,
            review: r.review,
            automation_rate: r.automation_rate,
            auto_errors: r.auto_errors,
            auto_error_rate: r.auto_error_rate,
            auto_error_interval: r.auto_error_interval.map(|(lo, hi)| vec![lo, hi]),
            load: r
                .load
                .into_iter()
                .map(|(q, l)| {
                    (
                        q,
                        QueueLoadOut {
                            items: l.items,
                            human_answers: l.human_answers,
                        },
                    )
                })
                .collect(),
            rules: r.rules,
        }
    }
}

/// The project's monitors now: value, level, firing. A monitor that crosses its level
/// writes a `monitor` event (checked every few seconds, and on this call).
#[utoipa::path(get, path = "/v1/projects/{project}/monitors", params(("project" = String, Path)),
    responses((status = 403, body = ErrorBody, description = "a reviewer: only the admin and the project's service key read this"), (status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = Object)), security(("bearer" = [])))]
pub async fn monitors(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_service(&p)?;
    let monitors = monitors::check(&s, &p).await?;
    Ok(Json(json!({"monitors": monitors})))
}
