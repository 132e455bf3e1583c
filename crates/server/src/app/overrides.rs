//! An admin's override of an item: resolve it with a label (and fields, when the project
//! declares them) or re-route it to a queue and tier, always with a reason. The request is
//! checked here against the project (its labels, its answer fields, the routes its policy
//! can hold); what the override does is core's `overrides::plan`, written by the store in
//! one transaction.

use flywheel_core::overrides::Action;
use flywheel_core::policy::Route;
use flywheel_store::{NewOverride, OverrideResult};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::text_field;
use super::{AppError, AppState, ProjectRuntime};

/// An override as sent (the request body; the wire format re-exports it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideIn {
    /// `resolve` (with `label`) or `reroute` (with `queue` and `tier`).
    #[schema(pattern = "^(resolve|reroute)$")]
    pub action: String,
    /// Why, in the admin's words (1 to 500 characters): written in `item.overridden`.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    /// `resolve` in a single-label project: one of the project's labels.
    #[serde(default)]
    pub label: Option<String>,
    /// `resolve` in a multi-label project: the set of present labels (`[]`: none of these),
    /// each one of the project's, none twice.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub labels: Option<Vec<String>>,
    /// `resolve`: the resolution's answer fields, checked against the project's
    /// `answer_fields` as an answer's are.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
    /// `reroute`: a queue the project's policy routes to ...
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub queue: Option<String>,
    /// ... at a tier it can hold there (a rule's tier, or one above for adjudication).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 255)]
    pub tier: Option<u8>,
    /// `reroute`: the new task's priority (default 0; higher is claimed first).
    #[serde(default)]
    pub priority: Option<i32>,
}

/// Checks an override against project `p` and has the store apply it to item
/// `external_id`.
#[tracing::instrument(level = "debug", skip(s, p, body, actor), fields(project = %p.name))]
pub async fn override_item(
    s: &AppState,
    p: &ProjectRuntime,
    external_id: &str,
    body: OverrideIn,
    actor: &str,
) -> Result<OverrideResult, AppError> {
    let reason = body.reason.trim().to_string();
    text_field("reason", &reason, 1, 500)?;
    let action = match body.action.as_str() {
        "resolve" => {
            for (field, given) in [
                ("queue", body.queue.is_some()),
                ("tier", body.tier.is_some()),
                ("priority", body.priority.is_some()),
            ] {
                if given {
                    return Err(AppError::invalid(
                        field,
                        format!("{field} goes with action reroute, not resolve"),
                    ));
                }
            }
            let multi = p.labels.is_multi();
            // `label` as stored: a label, or a multi-label set's encoding.
            let label = match (body.label, body.labels, multi) {
                (Some(label), None, false) => {
                    p.labels.answer("label", &label)?;
                    label
                }
                (None, Some(set), true) => p.labels.answer_set("labels", &set)?,
                (_, Some(_), false) => {
                    return Err(AppError::invalid(
                        "labels",
                        "this project is single-label: resolve with label",
                    ));
                }
                (Some(_), _, true) => {
                    return Err(AppError::invalid(
                        "label",
                        "this project is multi-label: resolve with labels: [..]",
                    ));
                }
                (None, None, multi) => {
                    let field = if multi { "labels" } else { "label" };
                    return Err(AppError::invalid(field, format!("action resolve needs {field}")));
                }
            };
            // The labels named, in project order: what the fields are checked against and,
            // in a multi-label project, the set the events carry.
            let named = flywheel_core::label::named(&label, multi);
            let fields = p.fields.check(
                body.fields.as_ref(),
                &named.iter().map(String::as_str).collect::<Vec<_>>(),
            )?;
            let labels = multi.then_some(named);
            Action::Resolve {
                label,
                labels,
                fields: (!p.fields.is_empty()).then_some(fields),
            }
        }
        "reroute" => {
            for (field, given) in [
                ("label", body.label.is_some()),
                ("labels", body.labels.is_some()),
                ("fields", body.fields.is_some()),
            ] {
                if given {
                    return Err(AppError::invalid(
                        field,
                        format!("{field} goes with action resolve, not reroute"),
                    ));
                }
            }
            let queue = body
                .queue
                .ok_or_else(|| AppError::invalid("queue", "action reroute needs a queue"))?;
            let tier = body
                .tier
                .ok_or_else(|| AppError::invalid("tier", "action reroute needs a tier"))?;
            let routes = p.policy.queues();
            if !routes.iter().any(|(q, _)| *q == queue) {
                return Err(AppError::invalid(
                    "queue",
                    format!("the policy routes no work to queue '{queue}'"),
                ));
            }
            if !routes.contains(&(queue.clone(), tier)) {
                return Err(AppError::invalid(
                    "tier",
                    format!("the policy holds no tier {tier} in queue '{queue}'"),
                ));
            }
            let route = Route {
                queue,
                tier,
                priority: body.priority.unwrap_or(0),
                overlap: 1,
                ..Route::default_review()
            }
            .with_sla(p.policy.slas(), None);
            Action::Reroute { route }
        }
        _ => return Err(AppError::invalid("action", "action is resolve or reroute")),
    };
    let o = NewOverride {
        external_id: external_id.to_string(),
        action,
        reason,
        actor: actor.to_string(),
    };
    Ok(s.store.override_item(p.id, o, s.now()).await?)
}
