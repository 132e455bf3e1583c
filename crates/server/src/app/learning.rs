//! The learning loop on the server: the built-in model of each project, trained from the
//! label feed, its thresholds calibrated from human-verified predictions, and the
//! active-learning budget.
//!
//! Training reads the label feed (human and adjudicated labels only: never the model's own
//! auto decisions) in feed order, so every node that trains from the same feed ends with
//! the same model; snapshots go to the store every [`SNAPSHOT_EVERY`] examples, and a node
//! that starts loads the latest and continues from its cursor. A tenth of the examples
//! (by a hash of the item's external id) are held back for evaluation, never trained on.
//! Nothing here is on the decision path except `predict`, which takes a read lock.
//!
//! A multi-label project's model is one-vs-rest (`Output::OneVsRest`): it learns each
//! feed row's set of labels, and its scores are independent per label; its thresholds are
//! calibrated per label (the score at or above which the label is present).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use flywheel_core::active;
use flywheel_core::calibrate::{self, Strategy};
use flywheel_core::learn::{Featurizer, OnlineModel, Output, fnv1a};
use flywheel_core::{Event, Prediction, ValidationError, event};
use flywheel_store::{ModelSnapshot, Store};
use serde_json::{Value, json};

use crate::app::ProjectRuntime;

/// A snapshot every this many training examples.
pub const SNAPSHOT_EVERY: u64 = 500;
/// Examples fetched from the feed per step.
const BATCH: usize = 2000;
/// Held-back examples kept for evaluation.
const MAX_HOLDOUT: usize = 5000;
/// Human-verified predictions used for calibration.
const CALIBRATION_WINDOW: usize = 20_000;

/// One project's model and its training state.
pub struct ProjectModel {
    pub model: OnlineModel,
    pub featurizer: Featurizer,
    /// The snapshot version this model continues from (0 before the first).
    pub version: u32,
    pub trained_through: i64,
    pub since_snapshot: u64,
    pub holdout: Vec<Example>,
}

/// A held-back example: its features and label indices (one index, or a multi-label
/// project's set).
pub type Example = (Vec<(u32, f32)>, Vec<usize>);

/// The model output of a project: one-vs-rest when its answers are sets.
pub fn output_of(p: &ProjectRuntime) -> Output {
    if p.labels.is_multi() {
        Output::OneVsRest
    } else {
        Output::Softmax
    }
}

/// The label indices of a feed row's stored label in `labels`: the one label, or a
/// multi-label project's decoded set; `None` when it names something else.
fn label_indices(model: &OnlineModel, stored: &str) -> Option<Vec<usize>> {
    let find = |l: &str| model.labels().iter().position(|x| x == l);
    match model.output() {
        Output::Softmax => find(stored).map(|i| vec![i]),
        Output::OneVsRest => flywheel_core::label::decode_set(stored)?
            .iter()
            .map(|l| find(l))
            .collect(),
    }
}

impl ProjectModel {
    pub fn fresh(labels: Vec<String>, bits: u32, output: Output) -> Self {
        Self {
            model: OnlineModel::with_output(labels, bits, output),
            featurizer: Featurizer::new(bits),
            version: 0,
            trained_through: 0,
            since_snapshot: 0,
            holdout: Vec::new(),
        }
    }

    pub fn from_snapshot(s: &ModelSnapshot) -> Result<Self, ValidationError> {
        let model = OnlineModel::from_bytes(&s.model)?;
        let bits = model.bits();
        Ok(Self {
            featurizer: Featurizer::new(bits),
            model,
            version: s.version,
            trained_through: s.trained_through,
            since_snapshot: 0,
            holdout: Vec::new(),
        })
    }

    /// The model's prediction for an item, labelled with the model's version.
    pub fn predict(&self, payload: &Value, attributes: &Value) -> Prediction {
        let features = self.featurizer.features(payload, attributes);
        let probs = self.model.predict(&features);
        Prediction {
            model: "flywheel".into(),
            version: Some(format!("{}+{}", self.version, self.model.examples_seen())),
            scores: self.model.labels().iter().cloned().zip(probs).collect(),
            novelty: flywheel_core::novelty::of(&self.model, &features),
        }
    }

    /// The model as a new version, to store.
    pub fn snapshot(&mut self, now: i64) -> ModelSnapshot {
        self.version += 1;
        self.since_snapshot = 0;
        ModelSnapshot {
            version: self.version,
            model: self.model.to_bytes(),
            examples_seen: self.model.examples_seen(),
            trained_through: self.trained_through,
            created_at: now,
        }
    }

    /// Accuracy and per-label F1 on the held-back examples. A one-vs-rest model predicts
    /// the labels scoring above 1/2, and its accuracy is the share of exactly right sets.
    pub fn evaluate(&self) -> Value {
        let k = self.model.labels().len();
        let (mut tp, mut fp, mut fnn) = (vec![0u64; k], vec![0u64; k], vec![0u64; k]);
        let mut right = 0u64;
        for (f, y) in &self.holdout {
            let p = self.model.predict(f);
            let guess: Vec<usize> = match self.model.output() {
                Output::Softmax => vec![p.iter().enumerate().fold(0, |b, (i, x)| if *x > p[b] { i } else { b })],
                Output::OneVsRest => (0..k).filter(|&i| p[i] > 0.5).collect(),
            };
            right += u64::from(guess == *y);
            for i in 0..k {
                match (guess.contains(&i), y.contains(&i)) {
                    (true, true) => tp[i] += 1,
                    (true, false) => fp[i] += 1,
                    (false, true) => fnn[i] += 1,
                    (false, false) => {}
                }
            }
        }
        let n = self.holdout.len() as u64;
        let f1: serde_json::Map<String, Value> = self
            .model
            .labels()
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let d = 2 * tp[i] + fp[i] + fnn[i];
                (
                    l.clone(),
                    if d == 0 {
                        Value::Null
                    } else {
                        json!(2.0 * tp[i] as f64 / d as f64)
                    },
                )
            })
            .collect();
        json!({"n": n, "accuracy": (n > 0).then(|| right as f64 / n as f64), "f1": f1})
    }
}

/// Whether an example is held back from training (a tenth, by external id).
pub fn held_back(external_id: &str) -> bool {
    fnv1a(external_id.as_bytes()).is_multiple_of(10)
}

/// The models, thresholds and active-learning state of the projects this node serves.
#[derive(Default)]
pub struct Learning {
    models: RwLock<HashMap<i64, Arc<RwLock<ProjectModel>>>>,
    thresholds: RwLock<HashMap<i64, Arc<HashMap<String, f64>>>>,
    budgets: std::sync::Mutex<HashMap<i64, active::Budget>>,
    /// For projects that retrain on a schedule: the period of the last training.
    periods: std::sync::Mutex<HashMap<i64, i64>>,
}

/// What a training call may do under the project's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheduled {
    /// Train on new labels and recalibrate.
    Train,
    /// The node's first look at a scheduled project: recalibrate (thresholds start empty
    /// on a node), but keep the model until the next boundary.
    CalibrateOnly,
    /// Between two scheduled times: nothing changes.
    Wait,
}

impl Learning {
    /// The project's model, loading the latest snapshot (or starting fresh) on first use.
    pub async fn model(
        &self,
        store: &dyn Store,
        p: &ProjectRuntime,
    ) -> Result<Option<Arc<RwLock<ProjectModel>>>, flywheel_store::StoreError> {
        let Some(spec) = p.policy.model() else {
            return Ok(None);
        };
        if let Some(m) = self.models.read().expect("models").get(&p.id) {
            return Ok(Some(m.clone()));
        }
        let output = output_of(p);
        let fresh = || ProjectModel::fresh(p.labels.names(), spec.bits, output);
        let loaded = match store.latest_model(p.id).await? {
            Some(s) => match ProjectModel::from_snapshot(&s) {
                Ok(m) if m.model.labels() == p.labels.names().as_slice() && m.model.output() == output => m,
                Ok(_) => fresh(),
                Err(e) => {
                    tracing::warn!(project = %p.name, error = %e, "stored model does not load; starting fresh");
                    fresh()
                }
            },
            None => fresh(),
        };
        let mut models = self.models.write().expect("models");
        Ok(Some(
            models
                .entry(p.id)
                .or_insert_with(|| Arc::new(RwLock::new(loaded)))
                .clone(),
        ))
    }

    pub fn loaded(&self) -> Vec<(i64, Arc<RwLock<ProjectModel>>)> {
        self.models
            .read()
            .expect("models")
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// Replaces a project's model with a fresh one (for a full retrain).
    pub fn reset(&self, p: &ProjectRuntime, bits: u32) -> Arc<RwLock<ProjectModel>> {
        let m = Arc::new(RwLock::new(ProjectModel::fresh(p.labels.names(), bits, output_of(p))));
        self.models.write().expect("models").insert(p.id, m.clone());
        m
    }

    pub fn thresholds(&self, project_id: i64) -> Arc<HashMap<String, f64>> {
        self.thresholds
            .read()
            .expect("thresholds")
            .get(&project_id)
            .cloned()
            .unwrap_or_default()
    }

    fn set_thresholds(&self, project_id: i64, t: HashMap<String, f64>) {
        self.thresholds
            .write()
            .expect("thresholds")
            .insert(project_id, Arc::new(t));
    }

    /// Whether an auto-eligible item this informative goes to review for learning: the
    /// most informative items, within `budget_per_1000` of the last 1,000 decisions.
    /// `score` is `None` for items the policy already sends to review (they count toward
    /// the window, never toward the budget).
    pub fn choose_for_learning(&self, project_id: i64, budget_per_1000: u32, score: Option<f64>) -> bool {
        let mut budgets = self.budgets.lock().expect("budgets");
        budgets.entry(project_id).or_default().choose(budget_per_1000, score)
    }

    /// Trains every loaded model on the feed's new human labels, snapshots, and
    /// recalibrates thresholds. Returns how many examples were used.
    pub async fn step(
        &self,
        store: &dyn Store,
        projects: &[Arc<ProjectRuntime>],
        now: i64,
    ) -> Result<usize, flywheel_store::StoreError> {
        let mut total = 0;
        for p in projects {
            let Some(model) = self.models.read().expect("models").get(&p.id).cloned() else {
                continue;
            };
            total += self.train_project(store, p, &model, now).await?;
        }
        Ok(total)
    }

    /// Trains project `p`'s model on every new human label of the feed, then recalibrates
    /// its thresholds (when the policy asks for them). Returns how many examples were used.
    ///
    /// Under a schedule (`policy.model.retrain`), only the first call after a period
    /// boundary trains (and snapshots, so that a node that starts later loads this
    /// version); other calls change nothing.
    pub async fn train_project(
        &self,
        store: &dyn Store,
        p: &ProjectRuntime,
        model: &Arc<RwLock<ProjectModel>>,
        now: i64,
    ) -> Result<usize, flywheel_store::StoreError> {
        let retrain = p.policy.model().map_or_else(Default::default, |m| m.retrain);
        let scheduled = self.scheduled(p.id, retrain, now);
        let used = match scheduled {
            Scheduled::Wait => return Ok(0),
            Scheduled::CalibrateOnly => 0,
            Scheduled::Train => {
                let used = train(store, p.id, model, now).await?;
                if retrain.period(now).is_some() {
                    let snapshot = {
                        let mut m = model.write().expect("model");
                        (m.since_snapshot > 0).then(|| m.snapshot(now))
                    };
                    if let Some(s) = snapshot {
                        store.save_model(p.id, s, now).await?;
                    }
                }
                used
            }
        };
        if let Some(spec) = p.policy.thresholds() {
            self.calibrate(store, p, spec, now).await?;
        }
        Ok(used)
    }

    /// Whether project `project_id` trains at `now` under `retrain`, marking the period
    /// trained when it does.
    fn scheduled(&self, project_id: i64, retrain: flywheel_core::policy::Retrain, now: i64) -> Scheduled {
        let Some(period) = retrain.period(now) else {
            return Scheduled::Train;
        };
        let mut periods = self.periods.lock().expect("periods");
        let last = periods.get(&project_id).copied();
        if retrain.due(last, now) {
            periods.insert(project_id, period);
            Scheduled::Train
        } else if last.is_none() {
            periods.insert(project_id, period);
            Scheduled::CalibrateOnly
        } else {
            Scheduled::Wait
        }
    }

    async fn calibrate(
        &self,
        store: &dyn Store,
        p: &ProjectRuntime,
        spec: flywheel_core::policy::ThresholdSpec,
        now: i64,
    ) -> Result<(), flywheel_store::StoreError> {
        let verified = store.verified_predictions(p.id, CALIBRATION_WINDOW).await?;
        // Items active learning chose are the least confident of the auto band unless the
        // strategy is random: counted as evidence they would make the band look worse
        // than it is just above the threshold. Audits are the band's uniform sample.
        let uniform_picks = p.policy.active_learning().is_none_or(|a| a.strategy == "random");
        let used: Vec<&flywheel_store::VerifiedPrediction> = verified
            .iter()
            .filter(|v| uniform_picks || !v.chosen_for_learning)
            .collect();
        // With `account_for_label_noise`: reviewers' error rate r from how often the two
        // answers of an item split (a split under majority goes to adjudication: three
        // label answers), read on the low side; and from it each label's chance of being
        // wrong: two answers that agreed under majority are wrong together with
        // probability r² / (r² + (1 − r)²); anything else (one answer, a settled split, a
        // majority of three) is taken as r.
        let majority = p.policy.consensus().method == flywheel_core::policy::ConsensusMethod::Majority;
        let reviewer_error = if spec.account_for_label_noise {
            let pairs = used.iter().filter(|v| v.votes >= 2).count() as u64;
            let split = used.iter().filter(|v| v.adjudicated && v.votes >= 3).count() as u64;
            calibrate::reviewer_error_from_splits(split, pairs)
        } else {
            None
        };
        let label_error = |v: &flywheel_store::VerifiedPrediction, r: f64| {
            if majority && v.votes == 2 && !v.adjudicated {
                r * r / (r * r + (1.0 - r) * (1.0 - r))
            } else {
                r
            }
        };
        let mut by_label: HashMap<String, Vec<calibrate::NoisyCheck>> = HashMap::new();
        for v in &used {
            let error = reviewer_error.map_or(0.0, |r| label_error(v, r));
            if p.labels.is_multi() {
                // Per label: the score at or above which the label is present, checked
                // against whether the human set has it.
                let Some(human) = flywheel_core::label::decode_set(&v.human_label) else {
                    continue;
                };
                for (label, score) in &v.prediction.scores {
                    by_label.entry(label.clone()).or_default().push(calibrate::NoisyCheck {
                        confidence: *score,
                        agrees: human.contains(label),
                        label_error: error,
                    });
                }
                continue;
            }
            let (label, confidence) = v.prediction.top();
            by_label
                .entry(label.to_string())
                .or_default()
                .push(calibrate::NoisyCheck {
                    confidence,
                    agrees: label == v.human_label,
                    label_error: error,
                });
        }
        let mut fresh = HashMap::new();
        for (label, checks) in &by_label {
            if let Some(t) = calibrate::threshold_noisy(checks, spec.target_precision, spec.min_evidence as usize) {
                fresh.insert(label.clone(), t);
            }
        }
        let old = self.thresholds(p.id);
        if *old != fresh {
            store
                .append_event(
                    p.id,
                    Event::ThresholdsChanged(event::ThresholdsChanged {
                        from: old.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                        to: fresh.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                        target_precision: spec.target_precision,
                        min_evidence: spec.min_evidence,
                        verified: verified.len() as u64,
                    }),
                    "system",
                    now,
                )
                .await?;
            self.set_thresholds(p.id, fresh);
        }
        Ok(())
    }
}

/// Trains one model on the feed's new examples and snapshots it when due.
pub async fn train(
    store: &dyn Store,
    project_id: i64,
    model: &Arc<RwLock<ProjectModel>>,
    now: i64,
) -> Result<usize, flywheel_store::StoreError> {
    let mut total = 0;
    loop {
        let after = model.read().expect("model").trained_through;
        let batch = store.training_examples(project_id, after, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        let snapshot = {
            let mut m = model.write().expect("model");
            for ex in &batch {
                // Another caller (the background learner, `POST …/model/train`) may have
                // trained through this example while the batch was read.
                if ex.cursor <= m.trained_through {
                    continue;
                }
                let Some(y) = label_indices(&m.model, &ex.label) else {
                    m.trained_through = ex.cursor;
                    continue;
                };
                let f = m.featurizer.features(&ex.payload, &ex.attributes);
                if held_back(&ex.external_id) {
                    if m.holdout.len() < MAX_HOLDOUT {
                        m.holdout.push((f, y));
                    }
                } else {
                    m.model.update_set(&f, &y);
                    m.since_snapshot += 1;
                    total += 1;
                }
                m.trained_through = ex.cursor;
            }
            (m.since_snapshot >= SNAPSHOT_EVERY).then(|| m.snapshot(now))
        };
        if let Some(s) = snapshot {
            store.save_model(project_id, s, now).await?;
        }
        if batch.len() < BATCH {
            break;
        }
    }
    Ok(total)
}

/// Parses an active-learning strategy name (checked when the policy was stored).
pub fn strategy(name: &str) -> Strategy {
    match name {
        "margin" => Strategy::Margin,
        "entropy" => Strategy::Entropy,
        "random" => Strategy::Random,
        _ => Strategy::LeastConfidence,
    }
}
