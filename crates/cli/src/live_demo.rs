//! `flywheel serve --demo spam`: the running server gets work a newcomer can see within a
//! minute — a project, two reviewers with passwords (printed at each start), gold items,
//! and SMS messages that keep arriving (one every [`EVERY`]) while the server runs, scored
//! by the built-in model as it learns from the reviewers' answers.
//!
//! Everything goes through the server's use cases (`flywheel_server::app`), as an HTTP
//! request would, never through the store. A restart reuses what is there: the project
//! is created once, the reviewers get fresh passwords, the stream skips the messages the
//! database already holds and carries on.
//!
//! The messages are the SMS Spam Collection when it can be found (see
//! [`crate::demo::collection_path`]), else a small sample compiled in
//! (`demo_sample.jsonl`, written for this demo), replayed round after round under new ids.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use flywheel_server::AppState;
use flywheel_server::app::items::ItemIn;
use flywheel_server::app::quality::GoldIn;
use flywheel_server::app::{AppError, accounts, items, projects, quality};
use flywheel_sim::scenario::spam::{Sms, read_messages};
use serde_json::{Value, json};

/// The demo project's name.
pub const PROJECT: &str = "spam-demo";
/// Its reviewers (tier 1).
pub const REVIEWERS: [&str; 2] = ["alice", "bob"];
/// How often a new message arrives.
pub const EVERY: Duration = Duration::from_secs(3);
/// Messages submitted in one batch by [`seed`], so the queues have work before the server
/// listens.
const FIRST_BATCH: usize = 30;
/// Gold items: this many known answers, half spam where the data allows.
const GOLD: usize = 10;
/// Who the demo's writes are by, in the event log.
const ACTOR: &str = "demo";

/// The demos `serve --demo` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Demo {
    /// SMS messages, spam or ham.
    Spam,
}

/// The built-in sample: a few dozen short messages, for a clone without the collection.
const SAMPLE: &str = include_str!("demo_sample.jsonl");

/// The messages the demo streams, and where they came from.
pub fn messages(data: Option<&std::path::Path>) -> anyhow::Result<(Vec<Sms>, String)> {
    match crate::demo::collection_path(data)? {
        Some(path) => Ok((read_messages(&path, None)?, path.display().to_string())),
        None => {
            let sample = SAMPLE
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<Vec<Sms>, _>>()
                .context("the built-in sample does not parse")?;
            Ok((sample, "the built-in sample".into()))
        }
    }
}

/// The demo's policy: auto only at or above the calibrated threshold of the model's label,
/// everything else to one reviewer; a 5% audit of auto decisions, a little gold, active
/// learning, and an SLA the dashboard can show breaching.
fn policy() -> Value {
    json!({
        "rules": [
            {"name": "calibrated", "when": "label in thresholds && confidence >= thresholds[label]", "action": "auto"},
            {"name": "review", "when": "true", "action": "review", "queue": "sms", "overlap": 1}
        ],
        "audit_rate": 0.05,
        "audit": {"queue": "audit", "tier": 1, "overlap": 1},
        "lease_seconds": 300,
        "show_suggestion": true,
        "sla_seconds": {"sms": 600},
        "quality": {"gold_rate": 0.05},
        "model": {"enabled": true, "bits": 18},
        "thresholds": {"target_precision": 0.95, "min_evidence": 50},
        "active_learning": {"strategy": "least_confidence", "budget_per_1000": 50, "overlap": 1}
    })
}

/// What [`seed`] set up.
pub struct Seeded {
    /// Whether this start created the project (false: an earlier start did).
    pub created: bool,
    /// Each reviewer's name and password (new at every start).
    pub reviewers: Vec<(String, String)>,
}

/// Creates the project, its reviewers and gold, and submits the first messages, on the
/// first start; on a later one, finds them and gives the reviewers new passwords (the old
/// ones were shown only once).
pub async fn seed(s: &AppState, messages: &[Sms]) -> anyhow::Result<Seeded> {
    let created = match s.project(PROJECT).await {
        Ok(_) => false,
        Err(AppError::NotFound(_)) => {
            let labels = vec!["ham".to_string(), "spam".to_string()];
            projects::create(s, PROJECT, &labels, policy(), ACTOR).await?;
            true
        }
        Err(e) => return Err(e.into()),
    };
    let mut reviewers = Vec::new();
    for name in REVIEWERS {
        // 20 random hex digits: well past the minimum length, easy to type.
        let password = accounts::generate_key()[3..23].to_string();
        match accounts::account(s, name).await {
            Ok(_) => {
                let change = accounts::ReviewerChange {
                    password: Some(password.clone()),
                    ..Default::default()
                };
                accounts::update_reviewer(s, name, change, ACTOR).await?;
            }
            Err(AppError::NotFound(_)) => {
                accounts::create_reviewer(s, name, &[1], vec![PROJECT.into()], Some(password.clone()), ACTOR).await?;
            }
            Err(e) => return Err(e.into()),
        }
        reviewers.push((name.to_string(), password));
    }
    if created {
        let p = s.project(PROJECT).await?;
        let spam = messages.iter().filter(|m| m.label == "spam").take(GOLD / 2);
        let ham = messages.iter().filter(|m| m.label == "ham");
        let gold = spam
            .chain(ham)
            .take(GOLD)
            .map(|m| GoldIn {
                external_id: format!("gold-{}", m.id),
                payload: json!({"text": m.text}),
                attributes: None,
                label: Some(m.label.clone()),
                labels: None,
                prediction: None,
            })
            .collect();
        quality::add_gold(s, &p, ACTOR, gold).await?;
        let first = messages
            .iter()
            .take(FIRST_BATCH)
            .map(|m| item(m.id.clone(), &m.text))
            .collect();
        items::submit(s, &p, ACTOR, first).await?;
    }
    Ok(Seeded { created, reviewers })
}

/// Submits the messages after [`seed`]'s first batch one at a time, [`EVERY`] apart, then
/// all of them again round after round under new ids, until the server stops. A message
/// already stored (by an earlier start) is skipped without waiting.
pub async fn stream(s: Arc<AppState>, messages: Vec<Sms>) {
    let mut stopping = s.stopping.subscribe();
    for round in 0u64.. {
        let skip = if round == 0 { FIRST_BATCH } else { 0 };
        for m in messages.iter().skip(skip) {
            if *stopping.borrow() {
                return;
            }
            let external_id = match round {
                0 => m.id.clone(),
                r => format!("{}~{r}", m.id),
            };
            let wait = match submit(&s, external_id, &m.text).await {
                Ok(new) => new,
                Err(e) => {
                    tracing::warn!(error = %e, "the demo could not submit a message; will retry the next");
                    true
                }
            };
            if wait {
                tokio::select! {
                    _ = tokio::time::sleep(EVERY) => {}
                    _ = stopping.changed() => return,
                }
            }
        }
    }
}

/// Submits one message; returns whether it was new.
async fn submit(s: &AppState, external_id: String, text: &str) -> Result<bool, AppError> {
    let p = s.project(PROJECT).await?;
    let out = items::submit(s, &p, ACTOR, vec![item(external_id, text)]).await?;
    Ok(out.iter().any(|d| !d.duplicate))
}

fn item(external_id: String, text: &str) -> ItemIn {
    ItemIn {
        external_id,
        payload: json!({"text": text}),
        attributes: None,
        prediction: None,
    }
}
