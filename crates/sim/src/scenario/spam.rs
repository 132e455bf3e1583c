//! The data flywheel on the SMS Spam Collection, end to end.
//!
//! Messages stream, in the collection's order, through a Flywheel server with no
//! predictions of their own: the project's built-in model scores them, starting cold.
//! Simulated reviewers claim and answer through the API; their labels train the model
//! (through the label feed) every [`TRAIN_EVERY`] messages, thresholds calibrate to the
//! target precision from human-verified items, and the automation band widens as the
//! evidence allows. [`flywheel`] returns the run's summary with its series over the
//! stream; [`learning_curve`] compares active learning with random selection.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Progress, Tick, f1, labels_to_reach, ratio, staff, work_queue};
use crate::Error;
use crate::client::Client;
use crate::clock::Clock;
use crate::reviewer::Profile;
use crate::rng::Rng;

/// One message of the collection (`{id, text, label}` per JSON line).
#[derive(Debug, Clone, Deserialize)]
pub struct Sms {
    pub id: String,
    pub text: String,
    pub label: String,
}

/// The model trains (and thresholds recalibrate) after every this many messages.
pub const TRAIN_EVERY: usize = 25;
/// The series takes a point (and the next segment of the stream is scored) every this
/// many messages: a multiple of [`TRAIN_EVERY`].
pub const SERIES_EVERY: usize = 50;
/// Simulated time between two messages.
pub const MESSAGE_EVERY_MS: i64 = 10_000;
/// Simulated time a review takes.
pub const REVIEW_MS: i64 = 20_000;

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Spam<'a> {
    /// Where the messages came from (for the summary).
    pub dataset: &'a str,
    pub messages: &'a [Sms],
    /// Seed of the reviewers' mistakes; also names the project, which keys its audit draws.
    pub seed: u64,
    /// One tier-1 reviewer per accuracy (two adjudicators get the first).
    pub accuracies: &'a [f64],
    /// Active learning's strategy.
    pub strategy: &'a str,
    /// Active learning's budget per 1,000 messages in the learning curve.
    pub budget_per_1000: u32,
}

impl Spam<'_> {
    fn profiles(&self) -> Vec<Profile> {
        self.accuracies
            .iter()
            .map(|&accuracy| Profile {
                accuracy,
                ms_per_review: REVIEW_MS,
            })
            .collect()
    }
}

fn labels() -> Vec<String> {
    vec!["ham".into(), "spam".into()]
}

/// The collection, read and checked; only the first `limit` messages with one.
pub fn read_messages(path: &Path, limit: Option<usize>) -> Result<Vec<Sms>, Error> {
    super::read_jsonl(path, limit, "an SMS record", "messages", |_: &Sms| Ok(()))
}

/// The policy of the whole loop: auto only at or above the calibrated threshold of the
/// model's label; everything else to two reviewers (a tie to an adjudicator).
pub fn policy(strategy: &str) -> Value {
    json!({
        "rules": [
            {"name": "calibrated", "when": "label in thresholds && confidence >= thresholds[label]", "action": "auto"},
            {"name": "review", "when": "true", "action": "review", "queue": "sms", "overlap": 2}
        ],
        "audit_rate": 0.05,
        "audit": {"queue": "audit", "tier": 1, "overlap": 2},
        "lease_seconds": 600,
        "show_suggestion": false,
        "consensus": {"method": "majority", "min_confidence": 0.0, "max_overlap": 2},
        "model": {"enabled": true, "bits": 18},
        "thresholds": {"target_precision": 0.99, "min_evidence": 200, "account_for_label_noise": true},
        "active_learning": {"strategy": strategy, "budget_per_1000": 50, "overlap": 2}
    })
}

/// Submits one message; returns its decision.
async fn submit(client: &Client, project: &str, svc: &str, m: &Sms) -> Result<Value, Error> {
    let mut d = client
        .submit(
            project,
            svc,
            vec![json!({"external_id": m.id, "payload": {"text": m.text}})],
        )
        .await?;
    Ok(d.pop().unwrap_or(Value::Null))
}

/// Whether the project's model labels each message spam, scored without storing anything.
async fn predict_spam(client: &Client, project: &str, svc: &str, messages: &[&Sms]) -> Result<Vec<bool>, Error> {
    let payloads: Vec<Value> = messages.iter().map(|m| json!({"text": m.text})).collect();
    Ok(client
        .predict(project, svc, &payloads)
        .await?
        .iter()
        .map(|p| p["label"] == "spam")
        .collect())
}

/// The whole loop. The summary holds the totals, the final figures, and a point of the
/// series every [`SERIES_EVERY`] messages. F1 is measured on the stream: each segment is
/// scored by the model as it is just before the segment arrives, so every prediction is of
/// a message whose label the model has not seen.
pub async fn flywheel(
    client: &Client,
    clock: &dyn Clock,
    run: &Spam<'_>,
    progress: Progress<'_>,
) -> Result<Value, Error> {
    let messages = run.messages;
    let project = format!("sms-{}-{}", run.strategy, run.seed);
    let labels = labels();
    client.create_project(&project, &labels, &policy(run.strategy)).await?;
    let svc = client.service_key(&project).await?;
    let mut reviewers = staff(client, &project, &run.profiles()).await?;
    let truth: HashMap<String, String> = messages.iter().map(|m| (m.id.clone(), m.label.clone())).collect();

    progress(Tick::Total(messages.len() as u64));
    let mut rng = Rng::new(run.seed);
    let (mut auto, mut auto_right, mut reviewed, mut human_labels) = (0u64, 0u64, 0u64, 0u64);
    let mut outcomes: Vec<bool> = Vec::with_capacity(messages.len()); // true = auto
    let mut predicted_spam: Vec<bool> = Vec::with_capacity(messages.len());
    let mut series = Vec::new();
    let mut model = Value::Null;
    for (n, m) in messages.iter().enumerate() {
        if n % SERIES_EVERY == 0 {
            let segment: Vec<&Sms> = messages[n..(n + SERIES_EVERY).min(messages.len())].iter().collect();
            predicted_spam.extend(predict_spam(client, &project, &svc, &segment).await?);
        }
        clock.advance_ms(MESSAGE_EVERY_MS);
        let d = submit(client, &project, &svc, m).await?;
        let is_auto = d["outcome"] == "auto";
        if is_auto {
            auto += 1;
            auto_right += u64::from(d["label"] == m.label.as_str());
        } else {
            reviewed += 1;
        }
        outcomes.push(is_auto);
        human_labels += work_queue(client, clock, &project, &mut reviewers, &labels, &truth, &mut rng).await?;
        let last = n + 1 == messages.len();
        if (n + 1) % TRAIN_EVERY == 0 || last {
            model = client.train(&project).await?;
        }
        if (n + 1) % SERIES_EVERY == 0 || last {
            let window = &outcomes[outcomes.len().saturating_sub(1000)..];
            let from = (n + 1).saturating_sub(1000);
            let f1_stream = f1(
                messages[from..=n].iter().map(|m| m.label == "spam"),
                predicted_spam[from..=n].iter().copied(),
            );
            let rate = window.iter().filter(|a| **a).count() as f64 / window.len() as f64;
            series.push(json!({
                "messages": n + 1,
                "automation_rate_last_1000": rate,
                "auto_precision_true": ratio(auto_right, auto),
                "human_labels": human_labels,
                "f1_spam": model["evaluation"]["f1"]["spam"],
                "f1_spam_stream": f1_stream,
                "thresholds": model["thresholds"],
            }));
            progress(Tick::Note(&format!(
                "automation {:.0}% · {human_labels} human labels",
                rate * 100.0
            )));
        }
        progress(Tick::Step);
    }
    let last = series.last().cloned().unwrap_or(Value::Null);
    let stats = client.stats(&project).await?;
    Ok(json!({
        "dataset": run.dataset,
        "strategy": run.strategy,
        "seed": run.seed,
        "reviewer_accuracies": run.accuracies,
        "items": messages.len(),
        "auto": auto,
        "reviewed": reviewed,
        "human_labels": human_labels,
        "auto_precision_true": ratio(auto_right, auto),
        "automation_rate_last_1000": last["automation_rate_last_1000"],
        "final_f1": last["f1_spam"],
        "final_f1_stream": last["f1_spam_stream"],
        "labels_to_f1_stream": labels_to_reach(&series, "f1_spam_stream", 500, &[0.85, 0.9, 0.925, 0.95]),
        "thresholds": last["thresholds"],
        "auto_precision_from_audits": stats["auto_precision_from_audits"],
        "auto_precision_interval": stats["auto_precision_interval"],
        "series": series,
    }))
}

/// Spam F1 levels the learning curve reports the labels for.
pub const CURVE_TARGETS: [f64; 4] = [0.7, 0.8, 0.85, 0.9];

/// Active learning against random selection, each with the same budget on the same
/// stream: every message is automated except the strategy's picks, which go to one
/// reviewer, so the picks are all the model learns from. The model trains every
/// [`TRAIN_EVERY`] messages; every [`SERIES_EVERY`] it scores a held-out fifth of the
/// collection (never streamed), and its spam F1 is recorded against the human labels used
/// so far.
pub async fn learning_curve(
    client: &Client,
    clock: &dyn Clock,
    run: &Spam<'_>,
    progress: Progress<'_>,
) -> Result<Value, Error> {
    if !(1..=1000).contains(&run.budget_per_1000) {
        return Err(Error::Input("--budget-per-1000 is between 1 and 1000".into()));
    }
    let labels = labels();
    // Every fifth message is held out for evaluation and never streamed.
    let test: Vec<&Sms> = run.messages.iter().skip(4).step_by(5).collect();
    let stream: Vec<&Sms> = run
        .messages
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 != 4)
        .map(|(_, m)| m)
        .collect();
    let truth: HashMap<String, String> = stream.iter().map(|m| (m.id.clone(), m.label.clone())).collect();
    let mut strategies = vec![run.strategy.to_string()];
    if run.strategy != "random" {
        strategies.push("random".into());
    }
    progress(Tick::Total((stream.len() * strategies.len()) as u64));
    let mut curves = serde_json::Map::new();
    let mut reached = serde_json::Map::new();
    for strategy in &strategies {
        let project = format!("curve-{strategy}-{}", run.seed);
        let policy = json!({
            "rules": [{"name": "everything", "when": "true", "action": "auto"}],
            "lease_seconds": 600,
            "show_suggestion": false,
            "model": {"enabled": true, "bits": 18},
            "active_learning": {"strategy": strategy, "budget_per_1000": run.budget_per_1000, "overlap": 1}
        });
        client.create_project(&project, &labels, &policy).await?;
        let svc = client.service_key(&project).await?;
        let mut reviewers = staff(client, &project, &run.profiles()).await?;
        let mut rng = Rng::new(run.seed);
        let (mut human_labels, mut points) = (0u64, Vec::new());
        progress(Tick::Note(strategy));
        for (n, m) in stream.iter().enumerate() {
            clock.advance_ms(MESSAGE_EVERY_MS);
            submit(client, &project, &svc, m).await?;
            human_labels += work_queue(client, clock, &project, &mut reviewers, &labels, &truth, &mut rng).await?;
            let last = n + 1 == stream.len();
            if (n + 1) % TRAIN_EVERY == 0 || last {
                client.train(&project).await?;
            }
            if (n + 1) % SERIES_EVERY == 0 || last {
                let predicted = predict_spam(client, &project, &svc, &test).await?;
                let f1 = f1(test.iter().map(|m| m.label == "spam"), predicted.into_iter());
                points.push(json!({"messages": n + 1, "human_labels": human_labels, "f1_spam": f1}));
            }
            progress(Tick::Step);
        }
        reached.insert(strategy.clone(), labels_to_reach(&points, "f1_spam", 0, &CURVE_TARGETS));
        curves.insert(strategy.clone(), Value::Array(points));
    }
    Ok(json!({
        "mode": "learning-curve",
        "dataset": run.dataset,
        "seed": run.seed,
        "reviewer_accuracies": run.accuracies,
        "stream": stream.len(),
        "test_set": test.len(),
        "budget_per_1000": run.budget_per_1000,
        "labels_to_f1": reached,
        "curves": curves,
    }))
}
