//! Undo and amend: a reviewer changes the label of one of their answers
//! (`POST /v1/reviews/{review_id}/amend`). This module checks the request and hands the
//! store each granted project's rules (the undo window, the SLAs an adjudication gets);
//! what the change does is core's `amend::plan`, written by the store.

use std::collections::HashMap;

use flywheel_core::amend::AmendRules;
use flywheel_store::{AmendResult, NewAmendment, Reviewer};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::text_field;
use super::{AppError, AppState};

/// A change of mind (the request body; the wire format re-exports it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendIn {
    /// The change's idempotency key (1 to 128 characters), per reviewer: a retry sends
    /// the same `amend_id` and gets the stored result.
    pub amend_id: String,
    /// The label the answer should have (a single-label project; in a multi-label one a
    /// 422 naming `label`).
    #[serde(default)]
    pub label: Option<String>,
    /// The labels the answer should have (a multi-label project: each a label of the
    /// project, none twice, `[]` for none of these; in a single-label one a 422 naming
    /// `labels`).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub labels: Option<Vec<String>>,
    /// Why (shown to the adjudicator when the change re-opens the item).
    #[serde(default)]
    pub reason: Option<String>,
    /// The answer's new fields, `{name: value}`, checked as an answer's are against the
    /// project's `answer_fields` for the new label (a 422 names `fields.<name>`); they
    /// replace the stored ones. Absent: the answer keeps its fields.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
}

/// Changes reviewer `r`'s answer `review_id` to `body.label`.
#[tracing::instrument(level = "debug", skip_all, fields(reviewer = %r.name, review_id = %review_id))]
pub async fn amend(s: &AppState, r: &Reviewer, review_id: String, body: AmendIn) -> Result<AmendResult, AppError> {
    text_field("review_id", &review_id, 1, 128)?;
    text_field("amend_id", &body.amend_id, 1, 128)?;
    if let Some(l) = &body.label {
        text_field("label", l, 1, 128)?;
    }
    if body.labels.as_ref().is_some_and(|l| l.len() > 100) {
        return Err(AppError::invalid("labels", "an answer names at most 100 labels"));
    }
    if let Some(reason) = &body.reason {
        text_field("reason", reason, 0, 2000)?;
    }
    let mut rules = HashMap::new();
    for name in &r.project_names {
        let p = s.project(name).await?;
        rules.insert(
            p.id,
            AmendRules {
                undo_seconds: p.policy.workbench().undo_seconds(),
                slas: p.policy.slas().clone(),
                multi: p.labels.is_multi(),
                fields: p.fields.clone(),
            },
        );
    }
    let amendment = NewAmendment {
        reviewer_id: r.id,
        reviewer_name: r.name.clone(),
        review_id,
        amend_id: body.amend_id,
        label: body.label,
        labels: body.labels,
        reason: body.reason.filter(|x| !x.trim().is_empty()),
        fields: body.fields.filter(|f| !f.is_null()),
        rules,
    };
    Ok(s.store.amend_review(amendment, s.now()).await?)
}
