//! The application state shared by handlers and workers, and the project cache.
//!
//! A project's policy is compiled once per version and kept here; handlers ask
//! [`AppState::project`]. A `ProjectChanged` notice from the store (sent by whichever node
//! stored the change) drops the cached copy at once; as a safety net against a lost
//! notice, a cached project is also re-read after [`PROJECT_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use flywheel_core::{LabelSet, Policy};
use flywheel_store::{Principal, Project, Store};

use crate::clock::Clock;
use crate::error::ApiError;

/// How long a cached project is trusted before it is read again.
pub const PROJECT_TTL: Duration = Duration::from_secs(2);

/// How long a key's holder is remembered. Unknown keys are never cached, so a new key
/// works at once; a change to a key's grants takes effect within this time.
pub const PRINCIPAL_TTL: Duration = Duration::from_secs(5);
const MAX_CACHED_PRINCIPALS: usize = 100_000;

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    projects: RwLock<HashMap<String, (Instant, Arc<ProjectRuntime>)>>,
    /// Who holds a key (by its hash), for [`PRINCIPAL_TTL`]: a read of the store per
    /// request costs more than the rest of a decision.
    principals: RwLock<HashMap<String, (Instant, Principal)>>,
    /// Turns true when the server starts shutting down: long polls end at once.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

/// A project ready to decide: its labels parsed and its policy compiled.
#[derive(Debug)]
pub struct ProjectRuntime {
    pub id: i64,
    pub name: String,
    pub labels: LabelSet,
    pub policy: Policy,
    pub policy_json: serde_json::Value,
    pub policy_version: u32,
}

impl ProjectRuntime {
    pub fn from_project(p: Project) -> Result<Self, ApiError> {
        let labels = LabelSet::parse(&p.labels)
            .map_err(|e| ApiError::internal(format!("stored labels of '{}' do not parse: {e}", p.name)))?;
        let policy = Policy::from_json(&p.policy, &labels)
            .map_err(|e| ApiError::internal(format!("stored policy of '{}' does not compile: {e}", p.name)))?;
        Ok(Self {
            id: p.id,
            name: p.name,
            labels,
            policy,
            policy_json: p.policy,
            policy_version: p.policy_version,
        })
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            projects: RwLock::new(HashMap::new()),
            principals: RwLock::new(HashMap::new()),
            stopping: tokio::sync::watch::channel(false).0,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The project named, or 404.
    pub async fn project(&self, name: &str) -> Result<Arc<ProjectRuntime>, ApiError> {
        if let Some((at, p)) = self.projects.read().expect("project cache").get(name)
            && at.elapsed() < PROJECT_TTL
        {
            return Ok(p.clone());
        }
        let p = self
            .store
            .project(name)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("project '{name}' not found")))?;
        let runtime = Arc::new(ProjectRuntime::from_project(p)?);
        self.remember(runtime.clone());
        Ok(runtime)
    }

    /// Who holds the key with this hash, from the cache or the store.
    pub async fn principal(&self, key_hash: &str) -> Result<Option<Principal>, ApiError> {
        if let Some((at, p)) = self.principals.read().expect("principal cache").get(key_hash)
            && at.elapsed() < PRINCIPAL_TTL
        {
            return Ok(Some(p.clone()));
        }
        let found = self.store.principal(key_hash).await?;
        if let Some(p) = &found {
            let mut cache = self.principals.write().expect("principal cache");
            if cache.len() >= MAX_CACHED_PRINCIPALS {
                cache.retain(|_, (at, _)| at.elapsed() < PRINCIPAL_TTL);
            }
            cache.insert(key_hash.to_string(), (Instant::now(), p.clone()));
        }
        Ok(found)
    }

    /// Drops a cached project (its policy changed, here or on another node).
    pub fn forget(&self, name: &str) {
        self.projects.write().expect("project cache").remove(name);
    }

    pub fn forget_all(&self) {
        self.projects.write().expect("project cache").clear();
    }

    /// Puts a freshly stored project in the cache.
    pub fn remember(&self, p: Arc<ProjectRuntime>) {
        self.projects
            .write()
            .expect("project cache")
            .insert(p.name.clone(), (Instant::now(), p));
    }
}
