//! Content moderation on real tweets (Davidson et al. 2017: hate / offensive / neither,
//! each tweet labelled by three or more crowd workers, with the votes), end to end.
//!
//! The tweets stream in a seeded random order through a Flywheel server with no
//! predictions of their own: the built-in model scores them, starting cold, and learns
//! from every human resolution (trained every [`BATCH`] tweets). The policy
//! ([`policy`]): novel content — `novelty` at or above the threshold — goes to an `expert`
//! queue (tier 3) whatever the model's confidence; a confident prediction above its
//! calibrated threshold is automated; everything else goes to two L1 reviewers, whose
//! disagreements and escalations go to L2 (tier 2).
//!
//! The people, simulated ([`Staff`]):
//!
//! - L1 reviewers answer by drawing from the tweet's real vote shares (hard tweets are
//!   hard for people too), each with a bias toward one label, and escalate when they are
//!   torn between hate and offensive. One of them is careless (half their answers are a
//!   coin toss); gold tasks — 5% of claims, copies of tweets all of whose voters agreed —
//!   find them out and the server holds them.
//! - L2 adjudicators are right [`L2_ACCURACY`] of the time and tag each adjudication with
//!   the boundary it settled (`hate_vs_offensive`, …: the workload report's failure
//!   category); the harder the tweet (the fewer votes for its label), the longer it takes.
//! - Experts take the novel tweets, right [`EXPERT_ACCURACY`] of the time.
//!
//! Two events in the stream:
//!
//! - **A new kind of content.** Tweets with a word starting with [`TERM_FAMILY`] (the
//!   dataset's homophobic slur and its variants: 830 tweets split between hate and
//!   offensive, the most ambiguous family of the set) are kept out of the first half,
//!   then arrive together — one in three of the tweets after the middle until they are
//!   spent. Their novelty rises, they go to experts, and novelty falls back as the model
//!   learns them.
//! - **A guideline clarification** at [`CLARIFY_AT`] of the stream: L1 reviewers' confusion
//!   between hate and offensive falls by [`CLARITY`] (that share of the votes for the wrong
//!   one of the two moves to the right one). The summary compares the stretch of
//!   [`WINDOW`] of the stream before it with the stretch after it (both before the new
//!   content arrives): L2's time share by category from the server's workload report, L2
//!   load, escalations and L1 agreement.
//!
//! Everything a run reports is reproducible per seed: one request at a time, simulated
//! time, training at fixed points, every draw from the seeded [`Rng`] (see the module
//! above).
//!
//! `data.rs` holds the tweets and the stream's order, `people.rs` the simulated staff and
//! how they work the queues, `summary.rs` what the run reports; this module is the
//! settings, the policy and the run.

use std::collections::{BTreeMap, HashMap};

use reqwest::Method;
use serde_json::{Value, json};

use super::{Progress, Tick, ratio};
use crate::Error;
use crate::client::Client;
use crate::clock::Clock;
use crate::rng::Rng;

mod data;
mod people;
mod summary;

use data::unanimous;
pub use data::{Tweet, in_family, read_tweets, stream_order};
use people::{Counts, staff, work};
use summary::{Fate, l2_time, point, precision};

/// The project's labels, in this order.
pub const LABELS: [&str; 3] = ["hate", "offensive", "neither"];
/// The held-out family of terms: words that start with this (case-insensitive).
pub const TERM_FAMILY: &str = "fag";
/// Tweets per batch: submitted together, then the queues are worked, then the model
/// trains.
pub const BATCH: usize = 50;
/// The series takes a point every this many tweets (a multiple of [`BATCH`]).
pub const SERIES_EVERY: usize = 500;
/// Simulated time between two tweets.
pub const TWEET_EVERY_MS: i64 = 5_000;
/// Where in the stream the guideline clarification comes (a share of it).
pub const CLARIFY_AT: f64 = 0.3;
/// The stretch before and after the clarification that is compared (a share of the
/// stream).
pub const WINDOW: f64 = 0.2;
/// The share of L1's hate/offensive confusion the clarification removes.
pub const CLARITY: f64 = 0.5;
/// How often an L1 reviewer torn evenly between hate and offensive escalates.
pub const ESCALATE: f64 = 0.3;
/// The careless L1 reviewer's share of coin-toss answers.
pub const CARELESS: f64 = 0.5;
pub const L2_ACCURACY: f64 = 0.92;
pub const EXPERT_ACCURACY: f64 = 0.95;
/// Gold tasks: copies of this many unanimous tweets.
pub const GOLD_ITEMS: usize = 300;
/// The policy's novelty threshold for the expert queue.
pub const NOVELTY_THRESHOLD: f64 = 0.2;
/// The target precision the thresholds calibrate to (against human labels).
pub const TARGET_PRECISION: f64 = 0.93;

/// The failure categories L2 tags its adjudications with: the boundary settled.
pub const CATEGORIES: [&str; 4] = ["hate_vs_offensive", "offensive_vs_neither", "hate_vs_neither", "other"];

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Moderation<'a> {
    /// Where the tweets came from (for the summary).
    pub dataset: &'a str,
    pub tweets: &'a [Tweet],
    /// Seed of the stream's order and of every simulated answer; also names the project.
    pub seed: u64,
    /// The policy's novelty threshold.
    pub novelty_threshold: f64,
}

/// The moderation policy: novel content to experts whatever the confidence, calibrated
/// confidence to auto, the rest to two L1 reviewers (a split or an escalation to L2).
pub fn policy(novelty_threshold: f64) -> Value {
    json!({
        "rules": [
            {"name": "novel", "when": format!("novelty >= {novelty_threshold:?}"), "action": "review", "queue": "expert", "tier": 3, "overlap": 1},
            {"name": "calibrated", "when": "label in thresholds && confidence >= thresholds[label]", "action": "auto"},
            {"name": "review", "when": "true", "action": "review", "queue": "l1", "overlap": 2}
        ],
        "audit_rate": 0.02,
        "audit": {"queue": "audit", "tier": 1, "overlap": 1},
        "lease_seconds": 600,
        "show_suggestion": false,
        "consensus": {"method": "majority", "min_confidence": 0.0, "max_overlap": 2},
        "quality": {"gold_rate": 0.05, "min_accuracy": 0.8, "min_gold": 20},
        "model": {"enabled": true, "bits": 20},
        "thresholds": {"target_precision": TARGET_PRECISION, "min_evidence": 200},
        "workbench": {"failure_categories": CATEGORIES}
    })
}

/// The whole run; returns its summary.
pub async fn moderation(
    client: &Client,
    clock: &dyn Clock,
    run: &Moderation<'_>,
    progress: Progress<'_>,
) -> Result<Value, Error> {
    let tweets = run.tweets;
    let project = format!("moderation-{}", run.seed);
    let labels: Vec<String> = LABELS.iter().map(|l| l.to_string()).collect();
    client
        .create_project(&project, &labels, &policy(run.novelty_threshold))
        .await?;
    let svc = client.service_key(&project).await?;
    let mut people = staff(client, &project).await?;
    let order = stream_order(tweets, run.seed);
    let mut index: HashMap<String, usize> = tweets.iter().enumerate().map(|(i, t)| (t.id.clone(), i)).collect();

    // Gold: copies of the stream's first unanimous tweets outside the family (a twentieth
    // of the stream at most).
    let gold: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| unanimous(&tweets[i]) && !in_family(&tweets[i].text))
        .take(GOLD_ITEMS.min(tweets.len() / 20).max(1))
        .collect();
    let gold_items: Vec<Value> = gold
        .iter()
        .map(|&i| {
            let id = format!("gold-{}", tweets[i].id);
            index.insert(id.clone(), i);
            json!({"external_id": id, "payload": {"text": tweets[i].text}, "label": tweets[i].label})
        })
        .collect();
    client
        .ok(
            Method::POST,
            &format!("/v1/projects/{project}/gold"),
            client.admin_key(),
            Some(&json!({ "items": gold_items })),
        )
        .await?;

    let n = order.len();
    let at_batch = |share: f64| ((n as f64 * share) as usize / BATCH) * BATCH;
    let (clarify_at, window) = (at_batch(CLARIFY_AT), at_batch(WINDOW));
    let (before_from, after_to) = (clarify_at.saturating_sub(window), (clarify_at + window).min(n));
    let mut marks: BTreeMap<usize, i64> = BTreeMap::new();

    progress(Tick::Total(n as u64));
    let mut rng = Rng::new(run.seed);
    let mut counts: HashMap<usize, Counts> = HashMap::new();
    let mut fates: Vec<Fate> = Vec::with_capacity(n);
    let mut human_answers = 0u64;
    let mut series = Vec::new();
    for start in (0..n).step_by(BATCH) {
        let batch = &order[start..(start + BATCH).min(n)];
        for pos in [before_from, clarify_at, after_to] {
            if pos == start {
                marks.insert(pos, clock.now_ms());
            }
        }
        clock.advance_ms(TWEET_EVERY_MS * batch.len() as i64);
        // The model's novelty for each tweet, as the decision will see it (nothing trains
        // in between).
        let payloads: Vec<Value> = batch.iter().map(|&i| json!({"text": tweets[i].text})).collect();
        let scored = client.predict(&project, &svc, &payloads).await?;
        let items: Vec<Value> = batch
            .iter()
            .map(|&i| json!({"external_id": tweets[i].id, "payload": {"text": tweets[i].text}}))
            .collect();
        let decisions = client.submit(&project, &svc, items).await?;
        for ((&i, d), p) in batch.iter().zip(&decisions).zip(&scored) {
            fates.push(Fate {
                tweet: i,
                auto: (d["outcome"] == "auto").then(|| d["label"].as_str().unwrap_or_default().to_string()),
                expert: d["route"]["queue"] == "expert",
                novelty: p["novelty"].as_f64(),
                family: in_family(&tweets[i].text),
            });
        }
        let clarified = start >= clarify_at;
        human_answers += work(
            client,
            clock,
            &mut people,
            tweets,
            &index,
            &mut counts,
            clarified,
            &mut rng,
        )
        .await?;
        let model = client.train(&project).await?;
        let done = fates.len();
        if done.is_multiple_of(SERIES_EVERY) || done == n {
            let seg = &fates[done.saturating_sub(SERIES_EVERY).max(series.len() * SERIES_EVERY)..];
            series.push(point(done, seg, &fates, tweets, human_answers, &model));
            progress(Tick::Note(&format!(
                "automation {:.0}% · {human_answers} human answers",
                series
                    .last()
                    .and_then(|p: &Value| p["automation_rate"].as_f64())
                    .unwrap_or(0.0)
                    * 100.0
            )));
        }
        for _ in batch {
            progress(Tick::Step);
        }
    }
    if after_to >= n {
        marks.insert(n, clock.now_ms());
    }
    let mark = |pos: usize| marks.get(&pos).copied().unwrap_or_else(|| clock.now_ms());

    // Before and after the clarification.
    let (share_before, l2_before) = l2_time(client, &project, mark(before_from), mark(clarify_at)).await?;
    let (share_after, l2_after) = l2_time(client, &project, mark(clarify_at), mark(after_to)).await?;
    let stretch = |from: usize, to: usize| {
        let (mut pairs, mut agreed, mut escalations, mut l2) = (0u64, 0u64, 0u64, 0u64);
        let (mut ho_pairs, mut ho_split) = (0u64, 0u64);
        for f in &fates[from..to] {
            let Some(c) = counts.get(&f.tweet) else { continue };
            escalations += u64::from(c.l1_escalations);
            l2 += u64::from(c.l2_answers);
            if let [a, b] = c.l1_labels[..] {
                pairs += 1;
                agreed += u64::from(a == b);
                if a < 2 && b < 2 {
                    ho_pairs += 1;
                    ho_split += u64::from(a != b);
                }
            }
        }
        let per_1000 = |x: u64| x as f64 * 1000.0 / (to - from).max(1) as f64;
        json!({
            "tweets": to - from,
            "l2_answers": l2,
            "l2_answers_per_1000": per_1000(l2),
            "escalations": escalations,
            "escalations_per_1000": per_1000(escalations),
            "l1_pair_agreement": ratio(agreed, pairs),
            "l1_hate_offensive_split": ratio(ho_split, ho_pairs),
        })
    };
    let before = stretch(before_from, clarify_at);
    let after = stretch(clarify_at, after_to);
    let l2_load_change = match (
        before["l2_answers_per_1000"].as_f64(),
        after["l2_answers_per_1000"].as_f64(),
    ) {
        (Some(b), Some(a)) if b > 0.0 => json!((a - b) / b),
        _ => Value::Null,
    };

    let agreement = client
        .ok(
            Method::GET,
            &format!("/v1/projects/{project}/agreement"),
            client.admin_key(),
            None,
        )
        .await?;
    let alpha_by_label: serde_json::Map<String, Value> = LABELS
        .iter()
        .map(|l| (l.to_string(), agreement["per_label"][l]["krippendorff_alpha"].clone()))
        .collect();
    let reviewers = client
        .ok(
            Method::GET,
            &format!("/v1/projects/{project}/reviewers"),
            client.admin_key(),
            None,
        )
        .await?;
    let held: Vec<Value> = reviewers["reviewers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["held"] == true)
        .map(|r| r["name"].clone())
        .collect();

    let auto_n = fates.iter().filter(|f| f.auto.is_some()).count() as u64;
    let last = &fates[n.saturating_sub(5000)..];
    let second_half = &fates[n / 2..];
    let clear: Vec<&Fate> = second_half
        .iter()
        .filter(|f| unanimous(&tweets[f.tweet]) && tweets[f.tweet].label != "neither")
        .collect();
    let caught = clear
        .iter()
        .filter(|f| f.auto.as_deref().is_some_and(|l| l != "neither"))
        .count() as u64;
    let experts: Vec<&Fate> = fates.iter().filter(|f| f.expert).collect();
    let family_n = fates.iter().filter(|f| f.family).count() as u64;
    // Novelty in the second half, the family's against the rest: mean, median, 90th
    // percentile and the share at or above the policy's threshold.
    let mut novelty_when = serde_json::Map::new();
    for (name, family) in [("family", true), ("other", false)] {
        let mut v: Vec<f64> = fates[n / 2..]
            .iter()
            .filter(|f| f.family == family)
            .filter_map(|f| f.novelty)
            .collect();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        novelty_when.insert(
            name.into(),
            if v.is_empty() {
                Value::Null
            } else {
                json!({
                    "mean": v.iter().sum::<f64>() / v.len() as f64,
                    "median": q(0.5),
                    "p90": q(0.9),
                    "at_or_above_threshold": v.iter().filter(|x| **x >= run.novelty_threshold).count() as f64 / v.len() as f64,
                })
            },
        );
    }
    Ok(json!({
        "dataset": run.dataset,
        "seed": run.seed,
        "items": n,
        "auto": auto_n,
        "automation_rate": ratio(auto_n, n as u64),
        "automation_rate_last_5000": ratio(last.iter().filter(|f| f.auto.is_some()).count() as u64, last.len() as u64),
        "auto_precision_true": precision(&fates, tweets),
        "clear_violations_auto_caught": ratio(caught, clear.len() as u64),
        "l2_time_share_by_category": {"before": share_before, "after": share_after},
        "l2_load_change": l2_load_change,
        "alpha_by_label": alpha_by_label,
        "novel_items_to_experts": experts.len(),
        "reviewers_held": held,
        "human_answers": human_answers,
        "term_family": {
            "prefix": TERM_FAMILY,
            "tweets": family_n,
            "to_experts": experts.iter().filter(|f| f.family).count(),
            "novelty_second_half": novelty_when,
        },
        "clarification": {
            "at": clarify_at,
            "clarity": CLARITY,
            "before": before,
            "after": after,
            "l2_adjudications_in_workload": {"before": l2_before, "after": l2_after},
        },
        "policy": {"novelty_threshold": run.novelty_threshold, "target_precision": TARGET_PRECISION},
        "series": series,
    }))
}
