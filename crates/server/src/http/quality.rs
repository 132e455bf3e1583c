//! Quality control: gold items, reviewers' records (hold and release), agreement
//! (`app::quality` computes them).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use super::dto::*;
use super::{ApiJson, MAX_BATCH};
use crate::app::AppState;
use crate::app::quality;
use crate::auth::Caller;
use crate::error::ApiError;

/// Adds gold items: known answers that reviewers are scored against. A claim hands one out
/// (at the policy's `quality.gold_rate`) in place of regular work, indistinguishable to the
/// reviewer; no reviewer gets the same gold twice. An `external_id` already stored is
/// skipped. To pass for regular items, gold should look like them (ids, payload shape).
#[utoipa::path(post, path = "/v1/projects/{project}/gold", params(("project" = String, Path)), request_body = AddGold,
    responses((status = 413, body = ErrorBody, description = "an item has more than 1 MiB of JSON (`field`: `items[i].member`)"), (status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = GoldAdded), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
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
    let added = quality::add_gold(&s, &p, &caller.actor(), body.items).await?;
    Ok(Json(GoldAdded { added }))
}

/// Every reviewer granted the project: answers, gold accuracy with its 95% Wilson interval,
/// agreement with the resolutions, the Dawid–Skene accuracy estimate (when the project
/// uses it), median time on task, and whether they are held.
#[utoipa::path(get, path = "/v1/projects/{project}/reviewers", params(("project" = String, Path)),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = ReviewerPage)), security(("bearer" = [])))]
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
    let reviewers = quality::reviewers(&s, &p, fresh).await?;
    Ok(Json(ReviewerPage { reviewers }))
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
    quality::release(&s, &p, &name, &caller.actor()).await?;
    Ok(Json(Released { released: name }))
}

/// Agreement over the project's review answers.
///
/// A single-label project: Fleiss' κ, Krippendorff's α (nominal, missing answers allowed),
/// per label (that label against the rest), and Cohen's κ for the reviewer pairs that share
/// the most items.
///
/// A multi-label project (`label_mode: "multi"` in the answer): `per_label` holds each
/// label's Fleiss' κ and Krippendorff's α on its yes/no (did the reviewer include it), and
/// `krippendorff_alpha` is over the answered sets with the set distance named in `distance`
/// (`masi`, Passonneau 2006; or `jaccard`). Figures that are undefined (0/0) are null.
#[utoipa::path(get, path = "/v1/projects/{project}/agreement", params(("project" = String, Path)),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"),
        (status = 200, body = AgreementOut)), security(("bearer" = [])))]
pub async fn agreement(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<AgreementOut>, ApiError> {
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let report = quality::agreement(&s, &p).await?;
    Ok(Json(AgreementOut::new(report, p.labels.is_multi(), p.labels.names())))
}
