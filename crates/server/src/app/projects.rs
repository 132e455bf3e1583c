//! Projects and their policies: create, list, store a new policy version, check one
//! without storing it. A policy is compiled before anything is stored; a stored change is
//! put in this node's cache at once (other nodes drop theirs on the store's notice).

use std::sync::Arc;

use flywheel_core::policy::parse_queue;
use flywheel_core::{LabelSet, Policy};
use flywheel_store::{NewProject, Project};
use serde_json::Value;

use super::{AppError, AppState, ProjectRuntime};

/// What creating a project stored.
pub struct CreatedProject {
    pub name: String,
    pub labels: Vec<String>,
    pub policy_version: u32,
}

/// Creates a project after checking its name, labels and policy.
#[tracing::instrument(level = "debug", skip(s, labels, policy, actor))]
pub async fn create(
    s: &AppState,
    name: &str,
    labels: &[String],
    policy: Value,
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
    let labels = LabelSet::parse(&labels)?;
    Policy::from_json(&policy, &labels).map_err(|e| AppError::from(e.within("policy")))?;
    let project = s
        .store
        .create_project(
            NewProject {
                name,
                labels: labels.names(),
                policy,
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

/// Compiles a policy for project `p` without storing it: the queues it routes to, with
/// the tier that works each.
#[tracing::instrument(level = "debug", skip(p, policy), fields(project = %p.name))]
pub fn check_policy(p: &ProjectRuntime, policy: &Value) -> Result<Vec<(String, u8)>, AppError> {
    Ok(Policy::from_json(policy, &p.labels)?.queues())
}
