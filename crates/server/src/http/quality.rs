//! Quality control: gold items, reviewers' records (hold and release), agreement.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use flywheel_core::agreement;
use flywheel_core::crowd::CrowdData;
use flywheel_core::quality::wilson95;
use flywheel_store::NewGold;
use serde_json::Value;

use super::dto::*;
use super::{ApiJson, MAX_BATCH};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Adds gold items: known answers that reviewers are scored against. A claim hands one out
/// (at the policy's `quality.gold_rate`) in place of regular work, indistinguishable to the
/// reviewer; no reviewer gets the same gold twice. An `external_id` already stored is
/// skipped. To pass for regular items, gold should look like them (ids, payload shape).
#[utoipa::path(post, path = "/v1/projects/{project}/gold", params(("project" = String, Path)), request_body = AddGold,
    responses((status = 200, body = GoldAdded), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn add_gold(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    ApiJson(body): ApiJson<AddGold>,
) -> Result<Json<GoldAdded>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    if body.items.is_empty() || body.items.len() > MAX_BATCH {
        return Err(ApiError::invalid("items", format!("send 1 to {MAX_BATCH} gold items")));
    }
    let mut items = Vec::with_capacity(body.items.len());
    for (i, g) in body.items.into_iter().enumerate() {
        let (attributes, prediction) =
            super::item_parts(i, &g.external_id, &g.payload, g.attributes, g.prediction, &p.labels)?;
        p.labels.answer(&format!("items[{i}].label"), &g.label)?;
        items.push(NewGold {
            external_id: g.external_id,
            payload: g.payload,
            attributes,
            label: g.label,
            prediction,
        });
    }
    let added = s.store.add_gold(p.id, items, &caller.actor(), s.now()).await?;
    Ok(Json(GoldAdded { added }))
}

/// Every reviewer granted the project: answers, gold accuracy with its 95% Wilson interval,
/// agreement with the resolutions, the Dawid–Skene accuracy estimate (when the project
/// uses it), median time on task, and whether they are held.
#[utoipa::path(get, path = "/v1/projects/{project}/reviewers", params(("project" = String, Path)),
    responses((status = 200, body = ReviewerPage)), security(("bearer" = [])))]
pub async fn reviewers(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<ReviewerPage>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    // A fresh fit for this call when the project uses Dawid–Skene (an admin call, not a
    // hot path).
    let fresh = p.policy.consensus().method == flywheel_core::policy::ConsensusMethod::DawidSkene;
    Ok(Json(reviewer_page(&s, &p, fresh).await?))
}

/// Every reviewer's record in project `p`, with Dawid–Skene accuracies from a fit made
/// now (`fresh_fit`) or from whatever the last fit was.
pub(crate) async fn reviewer_page(
    s: &Arc<AppState>,
    p: &crate::app::ProjectRuntime,
    fresh_fit: bool,
) -> Result<ReviewerPage, ApiError> {
    let stats = s.store.reviewer_stats(p.id).await?;
    let model = if fresh_fit {
        s.refit_ds(p.id).await?
    } else {
        s.ds_model_now(p.id)
    };
    let reviewers = stats
        .into_iter()
        .map(|r| {
            let interval = wilson95(r.gold_correct as u64, r.gold_answers as u64);
            let ds_accuracy = model.as_ref().and_then(|m| {
                m.reviewers
                    .get(&r.reviewer_id)
                    .map(|w| m.params.accuracy_prior_weighted(*w))
            });
            ReviewerOut {
                name: r.name,
                answers: r.answers,
                gold_answers: r.gold_answers,
                gold_accuracy: (r.gold_answers > 0).then(|| r.gold_correct as f64 / r.gold_answers as f64),
                gold_accuracy_interval: interval.map(|i| [i.lower, i.upper]),
                agreement_with_consensus: (r.compared_with_resolution > 0)
                    .then(|| r.agree_with_resolution as f64 / r.compared_with_resolution as f64),
                ds_accuracy,
                median_time_on_task_s: r.median_time_on_task_ms.map(|ms| ms as f64 / 1000.0),
                held: r.held,
                held_reason: r.held_reason,
            }
        })
        .collect();
    Ok(ReviewerPage { reviewers })
}

/// Lets a held reviewer claim in this project again, with a fresh gold record.
#[utoipa::path(post, path = "/v1/projects/{project}/reviewers/{name}/release",
    params(("project" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Released), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn release(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
) -> Result<Json<Released>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    s.store.release_reviewer(p.id, &name, &caller.actor(), s.now()).await?;
    Ok(Json(Released { released: name }))
}

/// Agreement over the project's review answers: Fleiss' κ, Krippendorff's α (nominal,
/// missing answers allowed), per label (that label against the rest), and Cohen's κ for the
/// reviewer pairs that share the most items.
#[utoipa::path(get, path = "/v1/projects/{project}/agreement", params(("project" = String, Path)),
    responses((status = 200, body = Object)), security(("bearer" = [])))]
pub async fn agreement(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let answers = s.store.project_answers(p.id).await?;
    let report = tokio::task::spawn_blocking(move || {
        let data = CrowdData::from_answers(
            answers
                .iter()
                .map(|a| (a.reviewer.as_str(), a.external_id.as_str(), a.label.as_str())),
        )
        .ok()?;
        Some(agreement::report(&data, 20))
    })
    .await
    .map_err(|e| ApiError::internal(format!("agreement task failed: {e}")))?;
    Ok(Json(match report {
        Some(r) => serde_json::to_value(r).map_err(|e| ApiError::internal(e.to_string()))?,
        None => serde_json::json!({"answers": 0, "tasks": 0, "workers": 0, "fleiss_kappa": null,
            "krippendorff_alpha": null, "cohen_kappa_pairs": [], "per_label": BTreeMap::<String, Value>::new()}),
    }))
}
