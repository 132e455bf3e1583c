//! The application state shared by use cases and workers, and its caches: projects,
//! key holders, Dawid–Skene fits. Nothing here knows HTTP.
//!
//! A project's policy is compiled once per version and kept here; handlers ask
//! [`AppState::project`]. A `ProjectChanged` notice from the store (sent by whichever node
//! stored the change) drops the cached copy at once; as a safety net against a lost
//! notice, a cached project is also re-read after [`PROJECT_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use std::sync::Mutex;

use flywheel_core::aggregate::{DsInit, Stopping, dawid_skene};
use flywheel_core::consensus::DsModel;
use flywheel_core::crowd::CrowdData;
use flywheel_core::fields::FieldSchema;
use flywheel_core::policy::ConsensusMethod;
use flywheel_core::{LabelSet, Policy};
use flywheel_store::{Judging, Principal, Project, ProjectAnswer, Store};

use super::AppError;
use crate::clock::Clock;

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
    /// Per project: the last Dawid–Skene fit, when it was made, and whether a refit runs.
    ds_models: Mutex<HashMap<i64, DsSlot>>,
    /// The built-in models, calibrated thresholds and active-learning budgets.
    pub learning: super::learning::Learning,
    /// Which monitors are firing.
    pub alarms: super::monitors::Alarms,
    /// Failed sign-ins per name and per client IP (the brake on password guessing).
    pub sign_in_brake: super::signin::Brake,
    /// How many password hashes may run at once.
    pub hash_gate: super::signin::HashGate,
    /// The request header that carries the client's address, set by a trusted reverse
    /// proxy (say `x-forwarded-for`; its first entry is used). `None`: the socket's peer.
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// Where outbound webhook requests may go.
    pub webhooks: super::webhooks::Settings,
    /// Whom webhook requests over https trust: the webpki roots, plus the operator's CA
    /// file (`webhooks.ca_file`) when there is one (`flywheel_tls::client_config`).
    pub webhook_tls: Arc<rustls::ClientConfig>,
    /// The Prometheus metrics this server exposes (`crate::metrics`).
    pub metrics: crate::metrics::Metrics,
    /// The draws that decide which claims hand out a gold task.
    pub gold_draws: Draws,
}

/// Uniform draws in [0, 1) from SplitMix64, behind a lock: seeded from the OS at start
/// ([`Draws::default`]), so that a reviewer cannot foresee which claim is gold, or from a
/// given seed ([`Draws::seeded`]) by a simulation, so that a seed gives the same gold
/// tasks on every run (its requests come one at a time).
pub struct Draws(Mutex<u64>);

impl Default for Draws {
    fn default() -> Self {
        Self::seeded(rand::random())
    }
}

impl Draws {
    pub fn seeded(seed: u64) -> Self {
        Self(Mutex::new(seed))
    }

    /// The next draw.
    pub fn next(&self) -> f64 {
        let mut s = self.0.lock().expect("draws");
        *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Default)]
struct DsSlot {
    model: Option<Arc<DsModel>>,
    fitted: Option<Instant>,
    fitting: bool,
}

/// How often a project's Dawid–Skene model is refitted (in the background) while answers
/// arrive.
pub const DS_REFIT_EVERY: Duration = Duration::from_secs(10);

/// A project ready to decide: its labels parsed and its policy compiled.
#[derive(Debug)]
pub struct ProjectRuntime {
    pub id: i64,
    pub name: String,
    pub labels: LabelSet,
    pub policy: Policy,
    pub policy_json: serde_json::Value,
    pub policy_version: u32,
    pub created_at: i64,
    /// The answer fields an answer here may (or must) carry.
    pub fields: Arc<FieldSchema>,
}

impl ProjectRuntime {
    pub fn from_project(p: Project) -> Result<Self, AppError> {
        let labels = LabelSet::parse(&p.labels)
            .map_err(|e| AppError::Internal(format!("stored labels of '{}' do not parse: {e}", p.name)))?
            .with_mode(p.label_mode);
        let policy = Policy::from_json(&p.policy, &labels)
            .map_err(|e| AppError::Internal(format!("stored policy of '{}' does not compile: {e}", p.name)))?;
        let fields = FieldSchema::parse(&p.answer_fields, &labels)
            .map_err(|e| AppError::Internal(format!("stored answer fields of '{}' do not parse: {e}", p.name)))?;
        Ok(Self {
            fields: Arc::new(fields),
            id: p.id,
            name: p.name,
            labels,
            policy,
            policy_json: p.policy,
            policy_version: p.policy_version,
            created_at: p.created_at,
        })
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            metrics: crate::metrics::Metrics::new(store.writer_stats()),
            store,
            clock,
            projects: RwLock::new(HashMap::new()),
            principals: RwLock::new(HashMap::new()),
            stopping: tokio::sync::watch::channel(false).0,
            ds_models: Mutex::new(HashMap::new()),
            learning: Default::default(),
            alarms: Default::default(),
            sign_in_brake: Default::default(),
            hash_gate: Default::default(),
            client_ip_header: None,
            webhooks: Default::default(),
            webhook_tls: Arc::new(flywheel_tls::client_config(&[]).expect("the webpki roots make a TLS configuration")),
            gold_draws: Draws::default(),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The project named, or 404.
    pub async fn project(&self, name: &str) -> Result<Arc<ProjectRuntime>, AppError> {
        if let Some((at, p)) = self.projects.read().expect("project cache").get(name)
            && at.elapsed() < PROJECT_TTL
        {
            return Ok(p.clone());
        }
        let p = self
            .store
            .project(name)
            .await?
            .ok_or_else(|| AppError::NotFound(super::project_not_found(name)))?;
        let runtime = Arc::new(ProjectRuntime::from_project(p)?);
        self.remember(runtime.clone());
        Ok(runtime)
    }

    /// How answers are judged in project `p`: its consensus rule and quality bar, and for
    /// Dawid–Skene the latest fit (a refit starts in the background when it is stale).
    pub fn judging(self: &Arc<Self>, p: &ProjectRuntime) -> Judging {
        let consensus = p.policy.consensus();
        // Dawid–Skene is fitted over single labels: a multi-label project is judged by
        // per-label majority instead (`Judging::multi`), so no fit is made for it.
        let ds_model = if consensus.method == ConsensusMethod::DawidSkene && !p.labels.is_multi() {
            self.ds_model(p.id)
        } else {
            None
        };
        Judging {
            consensus,
            ds_model,
            quality: p.policy.quality(),
            pacing: p.policy.pacing(),
            slas: p.policy.slas().clone(),
            fields: p.fields.clone(),
            multi: p.labels.is_multi().then(|| p.labels.names().into()),
        }
    }

    fn ds_model(self: &Arc<Self>, project_id: i64) -> Option<Arc<DsModel>> {
        let mut slots = self.ds_models.lock().expect("ds models");
        let slot = slots.entry(project_id).or_default();
        let stale = slot.fitted.is_none_or(|t| t.elapsed() >= DS_REFIT_EVERY);
        if stale && !slot.fitting {
            slot.fitting = true;
            let state = self.clone();
            tokio::spawn(async move {
                let fitted = state.fit_ds(project_id).await;
                let mut slots = state.ds_models.lock().expect("ds models");
                let slot = slots.entry(project_id).or_default();
                slot.fitting = false;
                slot.fitted = Some(Instant::now());
                match fitted {
                    Ok(Some(m)) => slot.model = Some(Arc::new(m)),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(project_id, error = %e, "Dawid-Skene refit failed"),
                }
            });
        }
        slot.model.clone()
    }

    /// Fits Dawid–Skene over every label answer of the project (off the async threads).
    pub async fn fit_ds(&self, project_id: i64) -> Result<Option<DsModel>, AppError> {
        let answers = self.store.project_answers(project_id).await?;
        tokio::task::spawn_blocking(move || fit_ds_model(&answers))
            .await
            .map_err(|e| AppError::Internal(format!("refit task failed: {e}")))
    }

    /// Fits now, keeps the fit for the project's answers, and returns it.
    pub async fn refit_ds(&self, project_id: i64) -> Result<Option<Arc<DsModel>>, AppError> {
        let model = self.fit_ds(project_id).await?.map(Arc::new);
        let mut slots = self.ds_models.lock().expect("ds models");
        let slot = slots.entry(project_id).or_default();
        slot.fitted = Some(Instant::now());
        if model.is_some() {
            slot.model = model.clone();
        }
        Ok(slot.model.clone())
    }

    /// The last fit of project `p`, if any (for reviewer statistics).
    pub fn ds_model_now(&self, project_id: i64) -> Option<Arc<DsModel>> {
        self.ds_models
            .lock()
            .expect("ds models")
            .get(&project_id)
            .and_then(|s| s.model.clone())
    }

    /// Who holds the key with this hash, from the cache or the store.
    pub async fn principal(&self, key_hash: &str) -> Result<Option<Principal>, AppError> {
        if let Some((at, p)) = self.principals.read().expect("principal cache").get(key_hash)
            && at.elapsed() < PRINCIPAL_TTL
        {
            return Ok(Some(p.clone()));
        }
        let found = self.store.principal(key_hash).await?;
        if let Some(p) = &found {
            self.cache_principal(key_hash.to_string(), p);
        }
        Ok(found)
    }

    /// Who a browser session (by its token's hash) acts as, cached like keys.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Principal>, AppError> {
        let cache_key = format!("session:{token_hash}");
        if let Some((at, p)) = self.principals.read().expect("principal cache").get(&cache_key)
            && at.elapsed() < PRINCIPAL_TTL
        {
            return Ok(Some(p.clone()));
        }
        let found = self.store.session(token_hash, self.now()).await?;
        if let Some(p) = &found {
            self.cache_principal(cache_key, p);
        }
        Ok(found)
    }

    fn cache_principal(&self, key: String, p: &Principal) {
        let mut cache = self.principals.write().expect("principal cache");
        if cache.len() >= MAX_CACHED_PRINCIPALS {
            cache.retain(|_, (at, _)| at.elapsed() < PRINCIPAL_TTL);
        }
        cache.insert(key, (Instant::now(), p.clone()));
    }

    /// Forgets every cached key and session holder (a key was revoked, a session ended,
    /// grants changed): this node sees the change at once, others within [`PRINCIPAL_TTL`].
    pub fn forget_principals(&self) {
        self.principals.write().expect("principal cache").clear();
    }

    /// Drops a cached project (its policy changed, here or on another node).
    pub fn forget(&self, name: &str) {
        self.projects.write().expect("project cache").remove(name);
    }

    pub fn forget_all(&self) {
        self.projects.write().expect("project cache").clear();
    }

    /// Every project in the cache (those this node has served recently).
    pub fn cached_projects(&self) -> Vec<Arc<ProjectRuntime>> {
        self.projects
            .read()
            .expect("project cache")
            .values()
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Puts a freshly stored project in the cache.
    pub fn remember(&self, p: Arc<ProjectRuntime>) {
        self.projects
            .write()
            .expect("project cache")
            .insert(p.name.clone(), (Instant::now(), p));
    }
}

/// Dawid–Skene over a project's answers (workers are reviewer ids); `None` with no answers.
pub fn fit_ds_model(answers: &[ProjectAnswer]) -> Option<DsModel> {
    let ids: Vec<String> = answers.iter().map(|a| a.reviewer_id.to_string()).collect();
    let data = CrowdData::from_answers(
        answers
            .iter()
            .zip(&ids)
            .map(|(a, id)| (id.as_str(), a.external_id.as_str(), a.label.as_str())),
    )
    .ok()?;
    let fit = dawid_skene(&data, DsInit::MajorityVote, Stopping::default()).ok()?;
    let reviewers = data
        .workers()
        .iter()
        .enumerate()
        .filter_map(|(w, id)| id.parse::<i64>().ok().map(|id| (id, w)))
        .collect();
    Some(DsModel {
        labels: data.labels().to_vec(),
        reviewers,
        params: fit.params,
    })
}
