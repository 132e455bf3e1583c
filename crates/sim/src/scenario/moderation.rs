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

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Progress, Tick, ratio};
use crate::Error;
use crate::client::Client;
use crate::clock::Clock;
use crate::rng::Rng;

/// One tweet (`{id, text, label, votes}` per JSON line).
#[derive(Debug, Clone, Deserialize)]
pub struct Tweet {
    pub id: String,
    pub text: String,
    pub label: String,
    /// Crowd votes per label.
    pub votes: BTreeMap<String, u32>,
}

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

/// The tweets, read and checked; only the first `limit` with one.
pub fn read_tweets(path: &Path, limit: Option<usize>) -> Result<Vec<Tweet>, Error> {
    super::read_jsonl(
        path,
        limit,
        "a tweet record {id, text, label, votes}",
        "tweets",
        |t: &Tweet| {
            if !LABELS.contains(&t.label.as_str()) {
                return Err(format!("label '{}' is not one of {}", t.label, LABELS.join(", ")));
            }
            if let Some(l) = t.votes.keys().find(|l| !LABELS.contains(&l.as_str())) {
                return Err(format!("a vote for '{l}', not a label"));
            }
            if t.votes.values().sum::<u32>() == 0 {
                return Err("no votes".to_string());
            }
            Ok(())
        },
    )
}

/// Whether a tweet belongs to the held-out family: a word (a run of letters) starting
/// with [`TERM_FAMILY`].
pub fn in_family(text: &str) -> bool {
    text.split(|c: char| !c.is_alphabetic()).any(|w| {
        w.get(..TERM_FAMILY.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(TERM_FAMILY))
    })
}

/// Whether every voter gave the tweet its label.
fn unanimous(t: &Tweet) -> bool {
    t.votes.values().filter(|v| **v > 0).count() == 1
}

/// The order of the stream: the tweets outside the family shuffled, the first half of
/// the stream from them alone, then the family's tweets (shuffled) as one in three of the
/// tweets that follow, until they are spent.
pub fn stream_order(tweets: &[Tweet], seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed ^ 0x005E_ED0F_0DE5);
    let shuffle = |mut v: Vec<usize>, rng: &mut Rng| {
        for i in (1..v.len()).rev() {
            v.swap(i, rng.below(i + 1));
        }
        v
    };
    let (family, regular): (Vec<usize>, Vec<usize>) = (0..tweets.len()).partition(|&i| in_family(&tweets[i].text));
    let regular = shuffle(regular, &mut rng);
    let family = shuffle(family, &mut rng);
    let half = (tweets.len() / 2).min(regular.len());
    let mut order = regular[..half].to_vec();
    let (mut r, mut f) = (regular[half..].iter(), family.iter());
    loop {
        let mut any = false;
        for _ in 0..2 {
            if let Some(&i) = r.next() {
                order.push(i);
                any = true;
            }
        }
        if let Some(&i) = f.next() {
            order.push(i);
            any = true;
        }
        if !any {
            return order;
        }
    }
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

/// Who a simulated reviewer is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// Tier 1: draws from the votes, leaning toward a label by a factor (1: none);
    /// `careless` of the answers are a coin toss.
    L1 { lean: (usize, f64), careless: f64 },
    /// Tier 2: adjudications.
    L2,
    /// Tier 3: novel content.
    Expert,
}

struct Person {
    name: String,
    key: String,
    role: Role,
    held: bool,
}

/// The staff: six L1 reviewers (one careless), two L2 adjudicators, two experts.
async fn staff(client: &Client, project: &str) -> Result<Vec<Person>, Error> {
    let l1 = [
        ((0, 1.0), 0.0),
        ((0, 1.4), 0.0),
        ((1, 1.3), 0.0),
        ((2, 1.3), 0.0),
        ((0, 0.7), 0.0),
        ((1, 1.0), CARELESS),
    ];
    let mut people = Vec::new();
    for (i, (lean, careless)) in l1.into_iter().enumerate() {
        let name = format!("{project}-l1-{i}");
        let key = client.reviewer(&name, &[1], &[project]).await?;
        people.push(Person {
            name,
            key,
            role: Role::L1 { lean, careless },
            held: false,
        });
    }
    for (tier, role, n) in [(2u8, Role::L2, 2), (3, Role::Expert, 2)] {
        for i in 0..n {
            let name = format!("{project}-{}-{i}", if tier == 2 { "l2" } else { "expert" });
            let key = client.reviewer(&name, &[tier], &[project]).await?;
            people.push(Person {
                name,
                key,
                role,
                held: false,
            });
        }
    }
    Ok(people)
}

/// The vote shares of a tweet, in [`LABELS`] order, with the clarification applied when
/// `clarified`: of the votes for the wrong one of hate and offensive, [`CLARITY`] move to
/// the right one.
fn shares(t: &Tweet, clarified: bool) -> [f64; 3] {
    let total: u32 = t.votes.values().sum();
    let mut s = LABELS.map(|l| f64::from(*t.votes.get(l).unwrap_or(&0)) / f64::from(total.max(1)));
    if clarified {
        let (right, wrong) = match t.label.as_str() {
            "hate" => (0, 1),
            "offensive" => (1, 0),
            _ => return s,
        };
        let moved = s[wrong] * CLARITY;
        s[wrong] -= moved;
        s[right] += moved;
    }
    s
}

/// A label drawn from `weights` (not all zero).
fn draw(weights: &[f64; 3], rng: &mut Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.unit() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

/// What a person does with a task.
#[derive(Debug, Clone, PartialEq)]
enum Act {
    Label {
        label: usize,
        category: Option<&'static str>,
    },
    Escalate,
}

/// An L1 answer: maybe an escalation (torn between hate and offensive, on a regular
/// review), else a draw from the biased shares, or a coin toss.
fn l1_answer(t: &Tweet, lean: (usize, f64), careless: f64, may_escalate: bool, clarified: bool, rng: &mut Rng) -> Act {
    let s = shares(t, clarified);
    let torn = if s[0] + s[1] > 0.0 {
        2.0 * s[0].min(s[1]) / (s[0] + s[1])
    } else {
        0.0
    };
    if may_escalate && rng.chance(ESCALATE * torn) {
        return Act::Escalate;
    }
    if rng.chance(careless) {
        return Act::Label {
            label: rng.below(LABELS.len()),
            category: None,
        };
    }
    let mut w = s;
    w[lean.0] *= lean.1;
    Act::Label {
        label: draw(&w, rng),
        category: None,
    }
}

/// The label index of `t`'s dataset label.
fn truth(t: &Tweet) -> usize {
    LABELS.iter().position(|l| *l == t.label).unwrap_or(0)
}

/// A label right with `accuracy`, else drawn from the raw shares (the plausible mistakes).
fn careful(t: &Tweet, accuracy: f64, rng: &mut Rng) -> usize {
    if rng.chance(accuracy) {
        truth(t)
    } else {
        draw(&shares(t, false), rng)
    }
}

/// The boundary an adjudication settles, from the labels its task's earlier answers gave
/// (an escalation counts as torn between hate and offensive).
fn category(task: &Value) -> &'static str {
    let mut seen = [false; 3];
    for a in task["context"]["answers"].as_array().into_iter().flatten() {
        match a["answer"].as_str() {
            Some("escalate") => {
                seen[0] = true;
                seen[1] = true;
            }
            _ => {
                if let Some(i) = LABELS.iter().position(|l| a["label"] == *l) {
                    seen[i] = true;
                }
            }
        }
    }
    match seen {
        [true, true, false] => CATEGORIES[0],
        [false, true, true] => CATEGORIES[1],
        [true, false, true] => CATEGORIES[2],
        _ => CATEGORIES[3],
    }
}

/// Simulated time a task takes a person: L1 10–20 s, L2 30–90 s, experts 60 s, each
/// longer the fewer of the votes went to the tweet's label.
fn took_ms(role: Role, t: &Tweet) -> i64 {
    let s = shares(t, false);
    let hard = 1.0 - s.iter().copied().fold(0.0, f64::max);
    let (base, extra) = match role {
        Role::L1 { .. } => (10_000.0, 15_000.0),
        Role::L2 => (30_000.0, 90_000.0),
        Role::Expert => (60_000.0, 30_000.0),
    };
    (base + extra * hard).round() as i64
}

/// What the run counts per stream position of the tweet a task is about.
#[derive(Debug, Default, Clone)]
struct Counts {
    /// L1 labels given on the tweet's regular (`l1`) review task.
    l1_labels: Vec<usize>,
    l1_escalations: u32,
    l2_answers: u32,
}

/// The reviewers work the queues until nothing is left: in rounds, each in turn claims
/// one task and answers it, the clock moving by the time it took. Held reviewers drop
/// out. Returns the answers given.
#[allow(clippy::too_many_arguments)]
async fn work(
    client: &Client,
    clock: &dyn Clock,
    people: &mut [Person],
    tweets: &[Tweet],
    index: &HashMap<String, usize>,
    counts: &mut HashMap<usize, Counts>,
    clarified: bool,
    rng: &mut Rng,
) -> Result<u64, Error> {
    let mut answers = 0;
    loop {
        let mut any = false;
        for p in people.iter_mut().filter(|p| !p.held) {
            let path = format!("/v1/projects/{}/claim", project_of(&p.name));
            let task = match client.call(Method::POST, &path, &p.key, Some(&json!({}))).await? {
                (204, _) => continue,
                (200, task) => task,
                (_, body) if body["error"]["code"] == "reviewer_held" => {
                    p.held = true;
                    continue;
                }
                (status, body) => return Err(Error::Status { path, status, body }),
            };
            any = true;
            let id = task["item"]["external_id"].as_str().unwrap_or_default();
            let i = *index
                .get(id)
                .ok_or_else(|| Error::Unexpected(format!("a task about an unknown item '{id}'")))?;
            let t = &tweets[i];
            let gold = id.starts_with("gold-");
            let regular = task["stage"] == "review" && task["queue"] == "l1" && !gold;
            let act = match p.role {
                Role::L1 { lean, careless } => l1_answer(t, lean, careless, regular, clarified, rng),
                // A gold copy of an adjudication settles no boundary of its own.
                Role::L2 => Act::Label {
                    label: careful(t, L2_ACCURACY, rng),
                    category: (!gold).then(|| category(&task)),
                },
                Role::Expert => Act::Label {
                    label: careful(t, EXPERT_ACCURACY, rng),
                    category: None,
                },
            };
            clock.advance_ms(took_ms(p.role, t));
            let mut body = json!({
                "lease_id": task["lease_id"],
                "review_id": format!("{}-{}", task["task_id"], task["lease_id"]),
            });
            match &act {
                Act::Label { label, category } => {
                    body["label"] = json!(LABELS[*label]);
                    if let Some(c) = category {
                        body["failure_category"] = json!(c);
                    }
                }
                Act::Escalate => body["escalate"] = json!({"reason": "hate or offensive? the guideline does not say"}),
            }
            let path = format!("/v1/tasks/{}/reviews", task["task_id"]);
            match client.call(Method::POST, &path, &p.key, Some(&body)).await? {
                (200, _) => {}
                // The answer that placed a hold is stored; a lease cancelled meanwhile is not.
                (_, body) if body["error"]["code"] == "lease_lost" => continue,
                (status, body) => return Err(Error::Status { path, status, body }),
            }
            answers += 1;
            if !gold {
                let c = counts.entry(i).or_default();
                match (&act, p.role) {
                    (Act::Label { label, .. }, Role::L1 { .. }) if regular => c.l1_labels.push(*label),
                    (Act::Escalate, _) => c.l1_escalations += 1,
                    (_, Role::L2) => c.l2_answers += 1,
                    _ => {}
                }
            }
        }
        if !any {
            return Ok(answers);
        }
    }
}

/// The project a staff member's name starts with (`{project}-l1-0`).
fn project_of(name: &str) -> &str {
    name.rsplitn(3, '-').nth(2).unwrap_or(name)
}

/// What happened to one tweet of the stream.
#[derive(Debug, Clone)]
struct Fate {
    tweet: usize,
    auto: Option<String>,
    expert: bool,
    novelty: Option<f64>,
    family: bool,
}

/// L2's time share by failure category over `[since, until)` (simulated epoch ms), from
/// the server's workload report, and L2's answers there.
async fn l2_time(client: &Client, project: &str, since: i64, until: i64) -> Result<(Value, u64), Error> {
    let w = client
        .ok(
            Method::GET,
            &format!("/v1/projects/{project}/workload?since={since}&until={until}"),
            client.admin_key(),
            None,
        )
        .await?;
    let rows = w["failure_category"].as_array().cloned().unwrap_or_default();
    let tagged: Vec<&Value> = rows.iter().filter(|r| r["key"].is_string()).collect();
    let total: f64 = tagged.iter().filter_map(|r| r["seconds"].as_f64()).sum();
    let answers: u64 = tagged.iter().filter_map(|r| r["answers"].as_u64()).sum();
    let mut out = serde_json::Map::new();
    for c in CATEGORIES {
        let s = tagged
            .iter()
            .find(|r| r["key"] == c)
            .and_then(|r| r["seconds"].as_f64())
            .unwrap_or(0.0);
        out.insert(c.into(), if total > 0.0 { json!(s / total) } else { json!(0.0) });
    }
    Ok((Value::Object(out), answers))
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

/// The true precision of the auto decisions per label and overall (against the dataset's
/// labels); a label never automated is null.
fn precision(fates: &[Fate], tweets: &[Tweet]) -> Value {
    let mut out = serde_json::Map::new();
    let (mut all, mut all_right) = (0u64, 0u64);
    for l in LABELS {
        let (mut n, mut right) = (0u64, 0u64);
        for f in fates.iter().filter(|f| f.auto.as_deref() == Some(l)) {
            n += 1;
            right += u64::from(tweets[f.tweet].label == l);
        }
        all += n;
        all_right += right;
        out.insert(l.into(), ratio(right, n));
    }
    out.insert("overall".into(), ratio(all_right, all));
    Value::Object(out)
}

/// A point of the series after `done` tweets: the last segment's automation, expert share
/// and mean novelty (all tweets, and the family's), cumulative true precision and human
/// answers, and the model's thresholds.
fn point(done: usize, seg: &[Fate], all: &[Fate], tweets: &[Tweet], human_answers: u64, model: &Value) -> Value {
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let auto = seg.iter().filter(|f| f.auto.is_some()).count() as u64;
    json!({
        "tweets": done,
        "automation_rate": ratio(auto, seg.len() as u64),
        "auto_precision_true": precision(all, tweets)["overall"],
        "expert_share": ratio(seg.iter().filter(|f| f.expert).count() as u64, seg.len() as u64),
        "family_tweets": seg.iter().filter(|f| f.family).count(),
        "family_to_experts": seg.iter().filter(|f| f.family && f.expert).count(),
        "novelty_mean": mean(seg.iter().filter_map(|f| f.novelty).collect()),
        "novelty_mean_family": mean(seg.iter().filter(|f| f.family).filter_map(|f| f.novelty).collect()),
        "human_answers": human_answers,
        "thresholds": model["thresholds"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tweet(id: &str, text: &str, label: &str, votes: [u32; 3]) -> Tweet {
        Tweet {
            id: id.into(),
            text: text.into(),
            label: label.into(),
            votes: LABELS.iter().map(|l| l.to_string()).zip(votes).collect(),
        }
    }

    #[test]
    fn the_family_is_words_starting_with_the_prefix() {
        assert!(in_family("you FAGGOT"));
        assert!(in_family("fags."));
        assert!(!in_family("leafage and befag"));
        assert!(!in_family("fa g"));
        assert!(!in_family("fäg é"), "a prefix cut inside a character is no match");
    }

    #[test]
    fn the_family_arrives_after_the_middle_one_in_three() {
        let tweets: Vec<Tweet> = (0..30)
            .map(|i| {
                let text = if i % 5 == 0 {
                    format!("fagx {i}")
                } else {
                    format!("t {i}")
                };
                tweet(&format!("{i}"), &text, "neither", [0, 0, 3])
            })
            .collect();
        let order = stream_order(&tweets, 7);
        assert_eq!(order, stream_order(&tweets, 7), "seeded");
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..30).collect::<Vec<_>>(), "every tweet once");
        let family: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, i)| *i % 5 == 0)
            .map(|(p, _)| p)
            .collect();
        // Fifteen regular tweets, then two regular to one of the family's until both run out.
        assert_eq!(family, vec![17, 20, 23, 26, 28, 29]);
    }

    #[test]
    fn clarification_moves_the_hate_offensive_confusion() {
        let t = tweet("a", "x", "offensive", [2, 4, 0]);
        let before = shares(&t, false);
        let after = shares(&t, true);
        assert!((before[0] - 1.0 / 3.0).abs() < 1e-12);
        assert!((after[0] - 1.0 / 6.0).abs() < 1e-12 && (after[1] - 5.0 / 6.0).abs() < 1e-12);
        let n = tweet("b", "x", "neither", [1, 1, 4]);
        assert_eq!(shares(&n, true), shares(&n, false), "only hate and offensive move");
    }

    #[test]
    fn adjudications_are_tagged_by_the_boundary() {
        let task = |a: Value| json!({"context": {"answers": a}});
        assert_eq!(
            category(&task(
                json!([{"answer": "label", "label": "hate"}, {"answer": "label", "label": "offensive"}])
            )),
            "hate_vs_offensive"
        );
        assert_eq!(
            category(&task(
                json!([{"answer": "escalate"}, {"answer": "label", "label": "offensive"}])
            )),
            "hate_vs_offensive"
        );
        assert_eq!(
            category(&task(
                json!([{"answer": "label", "label": "neither"}, {"answer": "label", "label": "offensive"}])
            )),
            "offensive_vs_neither"
        );
        assert_eq!(category(&json!({})), "other");
    }

    #[test]
    fn project_names_come_back_from_staff_names() {
        assert_eq!(project_of("moderation-1-l1-3"), "moderation-1");
        assert_eq!(project_of("moderation-12-expert-0"), "moderation-12");
    }
}
