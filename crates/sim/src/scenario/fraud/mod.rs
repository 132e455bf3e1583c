//! Fraud investigation: findings that cut false positives and catch a new pattern in near
//! real time.
//!
//! A day of labelled history ([`stream`]) is imported and the built-in model trained on
//! it; then the stream's transactions arrive, a minute's worth at a time, through a policy
//! a fraud team writes ([`policy`]): rules on amount, velocity and country mismatch plus
//! the model's fraud score. A high score is blocked automatically; the uncertain band and
//! the rule hits the model does not clear go to investigators, ranked by score and amount
//! (the route's priority); everything else is approved. Investigators work the queue at a
//! fixed capacity (alerts per simulated hour), each answer a **finding**: `fraud` or
//! `legit`, with the pattern and a note. A fraud that slips through is disputed by its
//! cardholder later (most are), and the dispute is a task with top priority.
//!
//! The run is made twice on the same stream: with feedback — the model trains on every
//! new finding at the next tick of a [`TRAIN_EVERY_MS`] schedule of simulated time — and
//! frozen at the history's model. Each finding's time from its acknowledged answer to the
//! training step that took it in (the label feed's cursor at or below the step's
//! `trained_through`) is measured on the simulated clock.
//!
//! Everything is sequential (one request at a time) on a clock the scenario moves, and
//! every draw comes from the seed, so a seed gives the same summary on any machine.

pub mod stream;

use std::collections::HashMap;

use serde_json::{Value, json};

use self::stream::{HOUR_MS, Pattern, Spec, Transaction};
use super::{Progress, Tick, ratio};
use crate::Error;
use crate::client::Client;
use crate::clock::Clock;
use crate::reviewer::{Profile, Reviewer};
use crate::rng::Rng;

/// Transactions are submitted in micro-batches this far apart (simulated time).
pub const BATCH_MS: i64 = 60_000;
/// The learner's schedule: a training step at every multiple of this (simulated time)
/// that has a finding it has not taken in.
pub const TRAIN_EVERY_MS: i64 = 5_000;
/// The share of missed frauds their cardholders dispute.
pub const DISPUTE_RATE: f64 = 0.8;
/// A dispute arrives this long after the transaction, at the least (plus up to as much
/// again).
pub const DISPUTE_AFTER_MS: i64 = 30 * 60_000;
/// The queue investigators work.
pub const QUEUE: &str = "investigations";
/// The value of the `pattern` field for a pattern the investigator cannot name.
pub const UNKNOWN_PATTERN: &str = "new_pattern_unknown";

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Fraud {
    pub spec: Spec,
    pub investigators: usize,
    /// Alerts one investigator works per simulated hour.
    pub alerts_per_hour: u32,
    /// The chance an investigator's finding is right.
    pub accuracy: f64,
    /// Whether findings carry the `pattern` and `note` answer fields (else: the label, and
    /// the note as the review's note).
    pub fields: bool,
}

impl Fraud {
    pub fn demo(seed: u64) -> Self {
        Self {
            spec: Spec::demo(seed),
            investigators: 4,
            alerts_per_hour: 20,
            accuracy: 0.97,
            fields: true,
        }
    }
}

fn labels() -> Vec<String> {
    vec!["fraud".into(), "legit".into()]
}

/// The fraud team's rules: any of them is a hit.
pub const RULES: &str = "double(attributes.amount) >= 1000.0 || double(attributes.tx_last_hour) >= 3.0 || attributes.country_mismatch == true";

/// The score below which the model clears a rule hit.
pub const CLEAR_BELOW: f64 = 0.01;

/// The policy: disputes first; a fraud score of 0.9 or more blocked; a score of 0.5 or
/// more, then rule hits on large amounts, then the uncertain band (0.15 or more), then
/// other rule hits to investigators, in that priority — a rule hit only while the model
/// gives it at least [`CLEAR_BELOW`], so that findings can clear what the rules flag; the
/// rest approved.
pub fn policy() -> Value {
    let review = |name: &str, when: String, priority: i32| json!({"name": name, "when": when, "action": "review", "queue": QUEUE, "priority": priority, "overlap": 1});
    json!({
        "rules": [
            review("dispute", "payload.kind == 'dispute'".into(), 100),
            {"name": "block", "when": "scores.fraud >= 0.9", "action": "auto", "label": "fraud"},
            review("high_score", "scores.fraud >= 0.5".into(), 40),
            review("rule_hit_large", format!("({RULES}) && scores.fraud >= {CLEAR_BELOW} && double(attributes.amount) >= 500.0"), 30),
            review("uncertain", "scores.fraud >= 0.15".into(), 20),
            review("rule_hit", format!("({RULES}) && scores.fraud >= {CLEAR_BELOW}"), 10),
            {"name": "approve", "when": "true", "action": "auto", "label": "legit"}
        ],
        "lease_seconds": 3600,
        "show_suggestion": true,
        "consensus": {"method": "majority", "min_confidence": 0.0, "max_overlap": 1},
        "model": {"enabled": true, "bits": 18}
    })
}

/// The investigators' structured finding beside its label: the pattern (one the team
/// knows, `new_pattern_unknown`, or `none` for a legitimate transaction) and a note.
pub fn answer_fields() -> Value {
    let mut patterns: Vec<&str> = Pattern::KNOWN.iter().map(|p| p.name()).collect();
    patterns.extend([UNKNOWN_PATTERN, "none"]);
    json!([
        {"name": "pattern", "type": "enum", "values": patterns, "required": true},
        {"name": "note", "type": "text", "max_length": 500}
    ])
}

/// What the policy did with a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Blocked,
    Alerted,
    Approved,
}

/// An item as an investigator's truth: fraud (and how) or legit.
#[derive(Debug, Clone, Copy)]
struct Truth {
    fraud: Option<Pattern>,
}

impl Truth {
    fn label(self) -> &'static str {
        if self.fraud.is_some() { "fraud" } else { "legit" }
    }
}

fn payload(t: &Transaction) -> Value {
    json!({"kind": "transaction", "text": t.text(), "card": t.card})
}

/// The history as Flywheel JSON lines, each resolved by a person.
fn history_jsonl(history: &[Transaction]) -> String {
    let mut out = String::new();
    for t in history {
        let label = if t.fraud.is_some() { "fraud" } else { "legit" };
        let row = json!({
            "external_id": t.id,
            "payload": payload(t),
            "attributes": t.attributes,
            "resolution": {"source": "human", "label": label, "reviewers": ["chargebacks"]},
        });
        out.push_str(&row.to_string());
        out.push('\n');
    }
    out
}

/// What an investigator answers for an item whose truth is `truth` (the label already
/// drawn, with the investigator's accuracy).
fn finding(label: &str, truth: Truth, fields: bool) -> Value {
    let pattern = match (label, truth.fraud) {
        ("fraud", Some(p)) if !p.is_new() => p.name(),
        ("fraud", _) => UNKNOWN_PATTERN,
        _ => "none",
    };
    let note = match (label, truth.fraud) {
        ("legit", _) => "cardholder confirmed the purchase".to_string(),
        (_, Some(p)) if p.is_new() => "gift cards bought online in round amounts; owner's own device".to_string(),
        _ => format!("matches {pattern}"),
    };
    if fields {
        json!({"label": label, "fields": {"pattern": pattern, "note": note}})
    } else {
        json!({"label": label, "note": note})
    }
}

/// Counts of one stream hour.
#[derive(Debug, Clone, Default)]
struct Hour {
    transactions: u64,
    legit: u64,
    legit_flagged: u64,
    fraud: u64,
    fraud_caught: u64,
    new_pattern: u64,
    new_pattern_caught: u64,
    alerts: u64,
    alerts_fraud: u64,
    blocked: u64,
    disputes: u64,
    findings: u64,
    backlog: u64,
}

impl Hour {
    fn json(&self, hour: usize) -> Value {
        json!({
            "hour": hour,
            "transactions": self.transactions,
            "legit": self.legit,
            "fraud": self.fraud,
            "new_pattern": self.new_pattern,
            "blocked": self.blocked,
            "alerts": self.alerts,
            "disputes": self.disputes,
            "alert_precision": ratio(self.alerts_fraud, self.alerts),
            "fpr": ratio(self.legit_flagged, self.legit),
            "recall": ratio(self.fraud_caught, self.fraud),
            "recall_new_pattern": ratio(self.new_pattern_caught, self.new_pattern),
            "missed_new_pattern": self.new_pattern - self.new_pattern_caught,
            "findings": self.findings,
            "backlog_at_end": self.backlog,
        })
    }
}

/// An investigator and the task in hand (due at a simulated time).
struct Investigator {
    reviewer: Reviewer,
    task: Option<(i64, Value)>,
}

/// One pass of the stream; `feedback` says whether the model trains on findings.
#[allow(clippy::too_many_lines)]
async fn pass(
    client: &Client,
    clock: &dyn Clock,
    run: &Fraud,
    txs: &[Transaction],
    feedback: bool,
    progress: Progress<'_>,
) -> Result<Value, Error> {
    let spec = &run.spec;
    let project = format!("fraud-{}-{}", if feedback { "feedback" } else { "frozen" }, spec.seed);
    let labels = labels();
    if run.fields {
        client
            .create_project_with_fields(&project, &labels, &policy(), &answer_fields())
            .await?;
    } else {
        client.create_project(&project, &labels, &policy()).await?;
    }
    let svc = client.service_key(&project).await?;
    let split = txs.partition_point(|t| t.stream_hour(spec) < 0);
    let (history, stream) = txs.split_at(split);
    progress(Tick::Note(&format!(
        "{project}: importing {} labelled transactions",
        history.len()
    )));
    client.import_history(&project, &svc, history_jsonl(history)).await?;
    let model = client.train(&project).await?;
    let history_model = json!({"examples_seen": model["examples_seen"], "evaluation": model["evaluation"]});

    let mut investigators = Vec::with_capacity(run.investigators);
    let ms_per_review = HOUR_MS / i64::from(run.alerts_per_hour.max(1));
    for i in 0..run.investigators {
        let name = format!("{project}-inv{i}");
        let key = client.reviewer(&name, &[1], &[&project]).await?;
        investigators.push(Investigator {
            reviewer: Reviewer::new(
                name,
                key,
                Profile {
                    accuracy: run.accuracy,
                    ms_per_review,
                },
            ),
            task: None,
        });
    }

    let mut truth: HashMap<String, Truth> = stream
        .iter()
        .map(|t| (t.id.clone(), Truth { fraud: t.fraud }))
        .collect();
    let index: HashMap<&str, usize> = stream.iter().enumerate().map(|(i, t)| (t.id.as_str(), i)).collect();
    // Stream times are measured from the stream's start.
    let offset = i64::from(spec.history_hours) * HOUR_MS;
    let end = i64::from(spec.hours) * HOUR_MS;
    let mut rng = Rng::new(spec.seed ^ 0x1A7E_5700);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; stream.len()];
    let mut hours = vec![Hour::default(); spec.hours as usize];
    // Disputes waiting for their time: (due, transaction index).
    let mut disputes: Vec<(i64, usize)> = Vec::new();
    // Findings acknowledged and not yet taken in by a training step: external id → time.
    let mut pending: HashMap<String, i64> = HashMap::new();
    let mut latencies: Vec<i64> = Vec::new();
    // Findings the model took in whose resolved `pattern` field is `new_pattern_unknown`.
    let mut unknown_pattern = 0u64;
    let (mut feed_cursor, mut train_at): (i64, Option<i64>) = (0, None);
    let (mut raised, mut worked) = (0u64, 0u64);
    let mut next_tx = 0usize;
    let mut now = 0i64;
    let mut next_batch = BATCH_MS;
    let hour_of = |t: i64| ((t / HOUR_MS) as usize).min(spec.hours as usize - 1);

    progress(Tick::Note(&project));
    loop {
        let due = investigators.iter().filter_map(|i| i.task.as_ref().map(|t| t.0)).min();
        // Ties: a batch first, then answers, then training.
        let batch_next = (next_batch <= end).then_some(next_batch);
        let t = [batch_next, due, train_at].into_iter().flatten().min();
        let Some(t) = t.filter(|t| *t <= end) else { break };
        if t > now {
            clock.advance_ms(t - now);
            now = t;
        }
        if batch_next == Some(t) {
            next_batch += BATCH_MS;
            let from = next_tx;
            while next_tx < stream.len() && stream[next_tx].at_ms - offset < t {
                next_tx += 1;
            }
            let mut items: Vec<Value> = stream[from..next_tx]
                .iter()
                .map(|tx| json!({"external_id": tx.id, "payload": payload(tx), "attributes": tx.attributes}))
                .collect();
            disputes.sort_unstable();
            let ready = disputes.partition_point(|d| d.0 <= t);
            for (_, i) in disputes.drain(..ready) {
                let tx = &stream[i];
                let id = format!("dispute-{}", tx.id);
                truth.insert(id.clone(), Truth { fraud: tx.fraud });
                items.push(json!({
                    "external_id": id,
                    "payload": {"kind": "dispute", "text": format!("cardholder disputes: {}", tx.text()), "card": tx.card},
                    "attributes": tx.attributes,
                }));
                hours[hour_of(t)].disputes += 1;
                raised += 1;
            }
            if !items.is_empty() {
                let decisions = client.submit(&project, &svc, items).await?;
                for d in &decisions {
                    let id = d["external_id"].as_str().unwrap_or_default();
                    let Some(&i) = index.get(id) else { continue };
                    let tx = &stream[i];
                    let outcome = match (d["outcome"].as_str(), d["label"].as_str()) {
                        (Some("auto"), Some("fraud")) => Outcome::Blocked,
                        (Some("auto"), _) => Outcome::Approved,
                        _ => Outcome::Alerted,
                    };
                    outcomes[i] = Some(outcome);
                    let h = &mut hours[hour_of(tx.at_ms - offset)];
                    h.transactions += 1;
                    let caught = outcome != Outcome::Approved;
                    match tx.fraud {
                        None => {
                            h.legit += 1;
                            h.legit_flagged += u64::from(caught);
                        }
                        Some(p) => {
                            h.fraud += 1;
                            h.fraud_caught += u64::from(caught);
                            if p.is_new() {
                                h.new_pattern += 1;
                                h.new_pattern_caught += u64::from(caught);
                            }
                            if !caught && rng.chance(DISPUTE_RATE) {
                                let after = DISPUTE_AFTER_MS + rng.below(DISPUTE_AFTER_MS as usize) as i64;
                                disputes.push((tx.at_ms - offset + after, i));
                            }
                        }
                    }
                    match outcome {
                        Outcome::Blocked => h.blocked += 1,
                        Outcome::Alerted => {
                            h.alerts += 1;
                            h.alerts_fraud += u64::from(tx.fraud.is_some());
                            raised += 1;
                        }
                        Outcome::Approved => {}
                    }
                    progress(Tick::Step);
                }
            }
            // Idle investigators look for work.
            for inv in investigators.iter_mut().filter(|i| i.task.is_none()) {
                if let Some(task) = client.claim(&project, &inv.reviewer.key).await? {
                    let took = jitter(ms_per_review, &mut rng);
                    inv.task = Some((t + took, task));
                }
            }
        } else if due == Some(t) {
            for inv in investigators.iter_mut() {
                let Some((at, task)) = inv.task.take_if(|(at, _)| *at == t) else {
                    continue;
                };
                debug_assert_eq!(at, t);
                let id = task["item"]["external_id"].as_str().unwrap_or_default().to_string();
                let right = truth.get(&id).copied().unwrap_or(Truth { fraud: None });
                let answer = inv.reviewer.answer(right.label(), &labels, &mut rng);
                client
                    .answer_with(&inv.reviewer.key, &task, finding(&answer.label, right, run.fields))
                    .await?;
                worked += 1;
                hours[hour_of(t)].findings += 1;
                if feedback {
                    pending.insert(id, t);
                    train_at.get_or_insert((t / TRAIN_EVERY_MS + 1) * TRAIN_EVERY_MS);
                }
                if let Some(next) = client.claim(&project, &inv.reviewer.key).await? {
                    let took = jitter(ms_per_review, &mut rng);
                    inv.task = Some((t + took, next));
                }
            }
        } else {
            train_at = None;
            let model = client.train(&project).await?;
            let through = model["trained_through"].as_i64().unwrap_or(0);
            // Which findings this step took in: the label feed up to its cursor.
            while feed_cursor < through {
                let (rows, _) = client.labels(&project, &svc, feed_cursor).await?;
                let mut moved = false;
                for row in &rows {
                    let cursor = row["cursor"].as_i64().unwrap_or(i64::MAX);
                    if cursor > through {
                        break;
                    }
                    (feed_cursor, moved) = (cursor, true);
                    unknown_pattern += u64::from(row["fields"]["pattern"] == UNKNOWN_PATTERN);
                    if let Some(acked) = row["external_id"].as_str().and_then(|id| pending.remove(id)) {
                        latencies.push(t - acked);
                    }
                }
                if !moved {
                    break;
                }
            }
            if !pending.is_empty() {
                train_at = Some(t + TRAIN_EVERY_MS);
            }
        }
        // The backlog at the end of each hour.
        let h = hour_of(now);
        hours[h].backlog = raised - worked;
        if batch_next == Some(t) && t % HOUR_MS == 0 && t > 0 {
            let h = &hours[hour_of(t - 1)];
            progress(Tick::Note(&format!(
                "{project} hour {}: recall {}, FPR {}",
                t / HOUR_MS,
                fmt(ratio(h.fraud_caught, h.fraud)),
                fmt(ratio(h.legit_flagged, h.legit))
            )));
        }
    }
    latencies.sort_unstable();
    let series: Vec<Value> = hours.iter().enumerate().map(|(i, h)| h.json(i)).collect();
    let sum = |range: std::ops::Range<usize>| {
        let mut s = Hour::default();
        for h in &hours[range] {
            s.legit += h.legit;
            s.legit_flagged += h.legit_flagged;
            s.fraud += h.fraud;
            s.fraud_caught += h.fraud_caught;
            s.new_pattern += h.new_pattern;
            s.new_pattern_caught += h.new_pattern_caught;
            s.alerts += h.alerts;
            s.alerts_fraud += h.alerts_fraud;
            s.findings += h.findings;
        }
        s
    };
    let drift = spec.drift_hour as usize;
    let before = sum(0..drift);
    let after = sum(drift..hours.len());
    Ok(json!({
        "project": project,
        "feedback": feedback,
        "history_model": history_model,
        "fpr_before_drift": ratio(before.legit_flagged, before.legit),
        "recall_before_drift": ratio(before.fraud_caught, before.fraud),
        "alert_precision_before_drift": ratio(before.alerts_fraud, before.alerts),
        "fpr_after_drift": ratio(after.legit_flagged, after.legit),
        "recall_after_drift": ratio(after.fraud_caught, after.fraud),
        "recall_new_pattern": ratio(after.new_pattern_caught, after.new_pattern),
        "missed_new_pattern": after.new_pattern - after.new_pattern_caught,
        "findings": worked,
        "alerts_and_disputes": raised,
        "backlog_at_end": raised - worked,
        "finding_latencies_ms": latencies.len(),
        "finding_to_model_p50_ms": percentile(&latencies, 0.50),
        "finding_to_model_p99_ms": percentile(&latencies, 0.99),
        "findings_not_taken_in": pending.len(),
        "findings_taken_in_new_pattern_unknown": unknown_pattern,
        "hours": series,
    }))
}

fn fmt(v: Value) -> String {
    v.as_f64().map_or("–".into(), |x| format!("{x:.3}"))
}

/// A review's time: ±25% around `ms`.
fn jitter(ms: i64, rng: &mut Rng) -> i64 {
    (ms as f64 * (0.75 + 0.5 * rng.unit())).round() as i64
}

/// The nearest-rank percentile of sorted values (null when there are none).
fn percentile(sorted: &[i64], q: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    json!(sorted[rank - 1])
}

/// The first hour from the drift on whose recall is back at the pre-drift recall and
/// whose false-positive rate is at or below the pre-drift rate, and the findings made from
/// the drift's start to that hour's end.
fn recovery(run: &Value, drift: usize) -> (Value, Value) {
    let (Some(recall), Some(fpr)) = (run["recall_before_drift"].as_f64(), run["fpr_before_drift"].as_f64()) else {
        return (Value::Null, Value::Null);
    };
    let hours = run["hours"].as_array().cloned().unwrap_or_default();
    let mut findings = 0;
    for h in hours.iter().skip(drift) {
        findings += h["findings"].as_u64().unwrap_or(0);
        let ok = h["recall"].as_f64().is_some_and(|r| r >= recall) && h["fpr"].as_f64().is_some_and(|f| f <= fpr);
        if ok {
            return (h["hour"].clone(), json!(findings));
        }
    }
    (Value::Null, Value::Null)
}

/// The whole scenario: the stream with feedback, then frozen, and the summary that sets
/// them side by side.
pub async fn run(client: &Client, clock: &dyn Clock, run: &Fraud, progress: Progress<'_>) -> Result<Value, Error> {
    let spec = &run.spec;
    if spec.hours == 0 || spec.drift_hour >= spec.hours || run.investigators == 0 {
        return Err(Error::Input(
            "the stream needs at least one hour after the drift, and an investigator".into(),
        ));
    }
    let txs = stream::generate(spec);
    let in_stream = txs.iter().filter(|t| t.stream_hour(spec) >= 0).count();
    progress(Tick::Total(2 * in_stream as u64));
    let feedback = pass(client, clock, run, &txs, true, progress).await?;
    let frozen = pass(client, clock, run, &txs, false, progress).await?;
    let last = |r: &Value, k: &str| {
        r["hours"]
            .as_array()
            .and_then(|h| h.last())
            .map_or(Value::Null, |h| h[k].clone())
    };
    let at = |r: &Value, i: usize, k: &str| r["hours"][i][k].clone();
    let drift = spec.drift_hour as usize;
    let (recovered_hour, findings_to_recover) = recovery(&feedback, drift);
    let mut patterns = serde_json::Map::new();
    for p in Pattern::KNOWN.iter().chain([&Pattern::GiftCardDrain]) {
        let n = txs
            .iter()
            .filter(|t| t.stream_hour(spec) >= 0 && t.fraud == Some(*p))
            .count();
        patterns.insert(p.name().into(), json!(n));
    }
    let stream_txs = &txs[txs.len() - in_stream..];
    Ok(json!({
        "scenario": "fraud",
        "seed": spec.seed,
        "stream": {
            "cards": spec.cards,
            "history_transactions": txs.len() - in_stream,
            "history_fraud": txs[..txs.len() - in_stream].iter().filter(|t| t.fraud.is_some()).count(),
            "transactions": in_stream,
            "fraud": stream_txs.iter().filter(|t| t.fraud.is_some()).count(),
            "fraud_by_pattern": patterns,
            "hours": spec.hours,
            "drift_hour": spec.drift_hour,
            "new_pattern": Pattern::GiftCardDrain.name(),
        },
        "investigators": run.investigators,
        "alerts_per_investigator_hour": run.alerts_per_hour,
        "investigator_accuracy": run.accuracy,
        "train_every_ms": TRAIN_EVERY_MS,
        "findings_with_fields": run.fields,
        "fpr_before_drift": feedback["fpr_before_drift"],
        "recall_before_drift": feedback["recall_before_drift"],
        "fpr_end": last(&feedback, "fpr"),
        "fpr_frozen_end": last(&frozen, "fpr"),
        "recall_end": last(&feedback, "recall"),
        "recall_frozen_end": last(&frozen, "recall"),
        "recall_new_pattern_first_hour": at(&feedback, drift, "recall_new_pattern"),
        "recall_new_pattern_last_hour": last(&feedback, "recall_new_pattern"),
        "recall_new_pattern_frozen_first_hour": at(&frozen, drift, "recall_new_pattern"),
        "recall_new_pattern_frozen_last_hour": last(&frozen, "recall_new_pattern"),
        "missed_new_pattern": feedback["missed_new_pattern"],
        "missed_new_pattern_frozen": frozen["missed_new_pattern"],
        "findings_to_recover": findings_to_recover,
        "recovered_in_hour": recovered_hour,
        "finding_to_model_p50_ms": feedback["finding_to_model_p50_ms"],
        "finding_to_model_p99_ms": feedback["finding_to_model_p99_ms"],
        "feedback": feedback,
        "frozen": frozen,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let xs: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&xs, 0.5), json!(50));
        assert_eq!(percentile(&xs, 0.99), json!(99));
        assert_eq!(percentile(&[7], 0.99), json!(7));
        assert_eq!(percentile(&[], 0.5), Value::Null);
    }

    #[test]
    fn recovery_is_the_first_hour_back_at_the_pre_drift_figures() {
        let run = json!({
            "recall_before_drift": 0.8, "fpr_before_drift": 0.02,
            "hours": [
                {"hour": 0, "recall": 0.8, "fpr": 0.02, "findings": 10},
                {"hour": 1, "recall": 0.5, "fpr": 0.02, "findings": 7},
                {"hour": 2, "recall": 0.85, "fpr": 0.03, "findings": 8},
                {"hour": 3, "recall": 0.81, "fpr": 0.019, "findings": 9},
            ]
        });
        assert_eq!(recovery(&run, 1), (json!(3), json!(24)));
        assert_eq!(recovery(&run, 4), (Value::Null, Value::Null));
    }

    #[test]
    fn a_finding_names_the_pattern_or_calls_it_unknown() {
        let known = Truth {
            fraud: Some(Pattern::CardTesting),
        };
        let new = Truth {
            fraud: Some(Pattern::GiftCardDrain),
        };
        assert_eq!(finding("fraud", known, true)["fields"]["pattern"], "card_testing");
        assert_eq!(finding("fraud", new, true)["fields"]["pattern"], UNKNOWN_PATTERN);
        assert_eq!(
            finding("legit", Truth { fraud: None }, true)["fields"]["pattern"],
            "none"
        );
        assert_eq!(finding("legit", known, false)["label"], "legit");
        assert!(finding("legit", known, false).get("fields").is_none());
    }
}
