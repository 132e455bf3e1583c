//! Quality control: gold items, reviewers' records (gold accuracy, agreement with the
//! resolutions, Dawid–Skene estimates, holds and release), and agreement over a project's
//! answers. Statistics are computed by core; this module gathers their inputs.

use flywheel_core::agreement::{self, AgreementReport};
use flywheel_core::crowd::CrowdData;
use flywheel_core::multi_agreement::{self, MultiAgreementReport, SetDistance};
use flywheel_core::quality::wilson95;
use flywheel_store::NewGold;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::items::{PredictionIn, item_parts};
use super::{AppError, AppState, ProjectRuntime};

/// A gold item as submitted (the wire format re-exports it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoldIn {
    pub external_id: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
    /// The known answer in a single-label project: one of its labels (a 422 names
    /// `items[i].label` in a multi-label project).
    #[serde(default)]
    pub label: Option<String>,
    /// The known answer in a multi-label project: the set of labels present, each a label
    /// of the project, none twice (`[]`: none of these). A 422 names `items[i].labels[j]`
    /// for an unknown or repeated label, and `items[i].labels` in a single-label project.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub labels: Option<Vec<String>>,
    /// Scores like regular items carry (recommended where suggestions are shown, so gold
    /// does not stand out by lacking one).
    #[serde(default)]
    pub prediction: Option<PredictionIn>,
}

/// Checks and stores gold items in project `p` (the caller checked the batch's size);
/// returns how many were new.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name, items = items.len()))]
pub async fn add_gold(s: &AppState, p: &ProjectRuntime, actor: &str, items: Vec<GoldIn>) -> Result<usize, AppError> {
    let mut new = Vec::with_capacity(items.len());
    for (i, g) in items.into_iter().enumerate() {
        let (attributes, prediction) =
            item_parts(i, &g.external_id, &g.payload, g.attributes, g.prediction, &p.labels)?;
        // As stored: the label, or a multi-label set's canonical encoding.
        let label = p
            .labels
            .known_answer(&format!("items[{i}]."), g.label.as_deref(), g.labels.as_deref())?;
        new.push(NewGold {
            external_id: g.external_id,
            payload: g.payload,
            attributes,
            label,
            prediction,
        });
    }
    Ok(s.store.add_gold(p.id, new, actor, s.now()).await?)
}

/// One reviewer's record in a project (served as is: `ReviewerOut` in the API's schema).
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = ReviewerOut)]
pub struct ReviewerQuality {
    pub name: String,
    pub answers: i64,
    pub gold_answers: i64,
    pub gold_accuracy: Option<f64>,
    /// 95% Wilson score interval of the gold accuracy.
    pub gold_accuracy_interval: Option<[f64; 2]>,
    /// Share of the reviewer's answers on resolved items that match the resolution.
    pub agreement_with_consensus: Option<f64>,
    /// Dawid–Skene's estimate (prior-weighted diagonal of the reviewer's confusion matrix).
    pub ds_accuracy: Option<f64>,
    pub median_time_on_task_s: Option<f64>,
    pub held: bool,
    pub held_reason: Option<String>,
    /// The current work session (`null` when the last answer is older than the session gap).
    pub session: Option<super::fatigue::SessionOut>,
    pub fatigue: super::fatigue::FatigueOut,
}

/// Every reviewer's record in project `p`, with Dawid–Skene accuracies from a fit made
/// now (`fresh_fit`) or from whatever the last fit was.
#[tracing::instrument(level = "debug", skip(s, p), fields(project = %p.name))]
pub async fn reviewers(s: &AppState, p: &ProjectRuntime, fresh_fit: bool) -> Result<Vec<ReviewerQuality>, AppError> {
    let stats = s.store.reviewer_stats(p.id).await?;
    let model = if fresh_fit {
        s.refit_ds(p.id).await?
    } else {
        s.ds_model_now(p.id)
    };
    let states = s.store.fatigue_states(p.id, None).await?;
    let mut sessions = Vec::with_capacity(stats.len());
    for r in &stats {
        sessions.push(super::fatigue::state(s, p, r.reviewer_id, &states).await?);
    }
    Ok(stats
        .into_iter()
        .zip(sessions)
        .map(|(r, (session, fatigue))| {
            let interval = wilson95(r.gold_correct as u64, r.gold_answers as u64);
            let ds_accuracy = model.as_ref().and_then(|m| {
                m.reviewers
                    .get(&r.reviewer_id)
                    .map(|w| m.params.accuracy_prior_weighted(*w))
            });
            ReviewerQuality {
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
                session,
                fatigue,
            }
        })
        .collect())
}

/// Lets held reviewer `name` claim in project `p` again, with a fresh gold record.
#[tracing::instrument(level = "debug", skip(s, p, actor), fields(project = %p.name))]
pub async fn release(s: &AppState, p: &ProjectRuntime, name: &str, actor: &str) -> Result<(), AppError> {
    Ok(s.store.release_reviewer(p.id, name, actor, s.now()).await?)
}

/// The set distance of a multi-label project's overall α: MASI, which counts a subset
/// (one reviewer saw less) as closer than a mere overlap, as Passonneau recommends for
/// set-valued annotation.
pub const SET_DISTANCE: SetDistance = SetDistance::Masi;

/// A project's agreement: over single labels, or (`label_mode: "multi"`) per label and
/// over the answered sets.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Agreement {
    Single(AgreementReport),
    Multi(MultiAgreementReport),
}

impl Agreement {
    /// The headline figures (Fleiss' κ, Krippendorff's α): a multi-label project has no
    /// one κ (it has one per label) and its α is over the sets.
    pub fn headline(&self) -> (Option<f64>, Option<f64>) {
        match self {
            Agreement::Single(r) => (r.fleiss_kappa, r.krippendorff_alpha),
            Agreement::Multi(r) => (None, r.krippendorff_alpha),
        }
    }
}

/// Agreement over project `p`'s review answers (computed off the async threads); `None`
/// when there are none. A multi-label project's answers are decoded into their sets.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name))]
pub async fn agreement(s: &AppState, p: &ProjectRuntime) -> Result<Option<Agreement>, AppError> {
    let answers = s.store.project_answers(p.id).await?;
    let multi = p.labels.is_multi().then(|| p.labels.names());
    tokio::task::spawn_blocking(move || {
        if let Some(labels) = multi {
            let sets: Vec<Vec<String>> = answers
                .iter()
                .map(|a| flywheel_core::label::decode_set(&a.label).unwrap_or_default())
                .collect();
            let report = multi_agreement::report(
                &labels,
                answers
                    .iter()
                    .zip(&sets)
                    .map(|(a, set)| (a.reviewer.as_str(), a.external_id.as_str(), set.as_slice())),
                SET_DISTANCE,
            )
            .ok()?;
            return Some(Agreement::Multi(report));
        }
        let data = CrowdData::from_answers(
            answers
                .iter()
                .map(|a| (a.reviewer.as_str(), a.external_id.as_str(), a.label.as_str())),
        )
        .ok()?;
        Some(Agreement::Single(agreement::report(&data, 20)))
    })
    .await
    .map_err(|e| AppError::Internal(format!("agreement task failed: {e}")))
}
