//! Projects and their policies: create, list, store a new policy version, check one
//! without storing it. A policy is compiled before anything is stored; a stored change is
//! put in this node's cache at once (other nodes drop theirs on the store's notice).

use std::sync::Arc;

use flywheel_core::fields::FieldSchema;
use flywheel_core::policy::parse_queue;
use flywheel_core::{LabelMode, LabelSet, Policy};
use flywheel_store::{NewProject, PolicyVersion, Project};
use serde_json::Value;

use super::{AppError, AppState, ProjectRuntime};

/// What creating a project stored.
pub struct CreatedProject {
    pub name: String,
    pub labels: Vec<String>,
    pub policy_version: u32,
}

/// Creates a project after checking its name, labels and policy (no answer fields).
pub async fn create(
    s: &AppState,
    name: &str,
    labels: &[String],
    policy: Value,
    actor: &str,
) -> Result<CreatedProject, AppError> {
    create_with_fields(s, name, labels, LabelMode::Single, policy, &Value::Null, actor).await
}

/// Creates a project after checking its name, labels (one per answer, or a set of them in
/// `mode` multi), policy and `answer_fields` (the declared fields of an answer; `null` for
/// none: see `flywheel_core::fields`).
#[tracing::instrument(level = "debug", skip(s, labels, policy, answer_fields, actor))]
pub async fn create_with_fields(
    s: &AppState,
    name: &str,
    labels: &[String],
    mode: LabelMode,
    policy: Value,
    answer_fields: &Value,
    actor: &str,
) -> Result<CreatedProject, AppError> {
    let name = parse_queue(name).map_err(|m| AppError::invalid("name", m.replace("queue name", "project name")))?;
    // Labels are names people read: NFKC, no invisible or bidi controls (so two labels
    // that look alike are one label, refused as listed twice).
    let labels = labels
        .iter()
        .enumerate()
        .map(|(i, l)| flywheel_core::name::normalise(&format!("labels[{i}]"), l))
        .collect::<Result<Vec<_>, _>>()?;
    let labels = LabelSet::parse(&labels)?.with_mode(mode);
    Policy::from_json(&policy, &labels).map_err(|e| AppError::from(e.within("policy")))?;
    let fields = FieldSchema::parse(answer_fields, &labels)?;
    let project = s
        .store
        .create_project(
            NewProject {
                name,
                labels: labels.names(),
                policy,
                answer_fields: fields.to_json(),
                label_mode: mode,
            },
            actor,
            s.now(),
        )
        .await?;
    let out = CreatedProject {
        name: project.name.clone(),
        labels: project.labels.clone(),
        policy_version: project.policy_version,
    };
    s.remember(Arc::new(ProjectRuntime::from_project(project)?));
    Ok(out)
}

/// Every project.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(s: &AppState) -> Result<Vec<Project>, AppError> {
    Ok(s.store.projects().await?)
}

/// Stores a new version of project `p`'s policy after compiling it; returns the version.
#[tracing::instrument(level = "debug", skip(s, p, policy, actor), fields(project = %p.name))]
pub async fn set_policy(s: &AppState, p: &ProjectRuntime, policy: Value, actor: &str) -> Result<u32, AppError> {
    Policy::from_json(&policy, &p.labels)?;
    let version = s.store.set_policy(&p.name, policy, actor, s.now()).await?;
    if let Some(fresh) = s.store.project(&p.name).await? {
        s.remember(Arc::new(ProjectRuntime::from_project(fresh)?));
    }
    Ok(version)
}

/// Every stored version of project `p`'s policy, newest first.
pub async fn policy_versions(s: &AppState, p: &ProjectRuntime) -> Result<Vec<PolicyVersion>, AppError> {
    Ok(s.store.policy_versions(p.id).await?)
}

/// Rolls project `p`'s policy back to `version`: a new version equal to that one (history is
/// never rewritten), checked against today's labels like any other policy.
#[tracing::instrument(level = "debug", skip(s, p, actor), fields(project = %p.name))]
pub async fn rollback(s: &AppState, p: &ProjectRuntime, version: u32, actor: &str) -> Result<u32, AppError> {
    let old = s
        .store
        .policy_versions(p.id)
        .await?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(|| AppError::NotFound(format!("policy version {version} of project '{}'", p.name)))?;
    set_policy(s, p, old.policy, actor).await
}

/// One line of a policy diff: `" "` kept, `"-"` only in the older, `"+"` only in the newer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct DiffLine {
    pub op: &'static str,
    pub text: String,
}

/// The line diff of two policies, each pretty-printed (2-space indent, keys in order).
pub fn policy_diff(from: &Value, to: &Value) -> Vec<DiffLine> {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    let (a, b) = (pretty(from), pretty(to));
    similar::TextDiff::from_lines(&a, &b)
        .iter_all_changes()
        .map(|c| DiffLine {
            op: match c.tag() {
                similar::ChangeTag::Equal => " ",
                similar::ChangeTag::Delete => "-",
                similar::ChangeTag::Insert => "+",
            },
            text: c.value().trim_end_matches('\n').to_string(),
        })
        .collect()
}

/// Compiles a policy for project `p` without storing it: the queues it routes to, with
/// the tier that works each.
#[tracing::instrument(level = "debug", skip(p, policy), fields(project = %p.name))]
pub fn check_policy(p: &ProjectRuntime, policy: &Value) -> Result<Vec<(String, u8)>, AppError> {
    Ok(Policy::from_json(policy, &p.labels)?.queues())
}
