//! `flywheel demo spam`: the data flywheel on the SMS Spam Collection, end to end.
//!
//! Messages stream, in the collection's order, through a real Flywheel server (in-process
//! on a fresh SQLite database, or `--server`) with no predictions of their own: the
//! project's built-in model scores them, starting cold. Simulated reviewers with a set
//! accuracy claim and answer through the API; their labels train the model (through the
//! label feed), thresholds calibrate to the target precision from human-verified items,
//! and the automation band widens as the evidence allows. The report shows it over time.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct SpamArgs {
    /// The SMS Spam Collection as JSON lines (default: $FLYWHEEL_DATA_DIR/sms_spam.jsonl,
    /// else ../shared/data/sms_spam.jsonl).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed of the simulated reviewers' mistakes and of the audit sample.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Reviewer accuracies, comma-separated (one reviewer each); one value means six
    /// reviewers of that accuracy. Two adjudicators get the first accuracy.
    #[arg(long, default_value = "0.97")]
    reviewers: String,
    /// Where summary.json and report.html go.
    #[arg(long, default_value = "flywheel-demo")]
    out: PathBuf,
    /// A running server instead of an in-process one (needs --admin-key).
    #[arg(long)]
    server: Option<String>,
    #[arg(long, env = "FLYWHEEL_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Active learning: least_confidence, margin, entropy, or random (the baseline).
    #[arg(long, default_value = "least_confidence")]
    strategy: String,
    /// Only the first N messages.
    #[arg(long)]
    limit: Option<usize>,
    /// `flywheel` (the whole loop) or `learning-curve`: the same stream with every item
    /// automated except active learning's picks, so that picks are the model's only labels;
    /// runs --strategy and `random` side by side and measures spam F1 on a held-out fifth of
    /// the collection against the labels used.
    #[arg(long, default_value = "flywheel")]
    mode: String,
    /// Active learning's budget per 1,000 messages in `learning-curve` mode.
    #[arg(long, default_value_t = 100)]
    budget_per_1000: u32,
}

#[derive(Deserialize)]
struct Sms {
    id: String,
    text: String,
    label: String,
}

/// SplitMix64, for the reviewers' mistakes.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .with_context(|| format!("{path}: the server did not answer"))?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        Ok((
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text)?
            },
        ))
    }

    async fn ok(&self, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let (status, v) = self.call(method, path, key, body).await?;
        if !(200..300).contains(&status) {
            bail!("{path}: {status} {v}");
        }
        Ok(v)
    }
}

fn data_path(args: &SpamArgs) -> anyhow::Result<PathBuf> {
    if let Some(p) = &args.data {
        if p.exists() {
            return Ok(p.clone());
        }
        bail!(
            "{} was not found: --data names a JSON-lines file of {{id, text, label}}",
            p.display()
        );
    }
    let candidates = [
        std::env::var_os("FLYWHEEL_DATA_DIR").map(|d| PathBuf::from(d).join("sms_spam.jsonl")),
        Some(PathBuf::from("../shared/data/sms_spam.jsonl")),
    ];
    candidates.into_iter().flatten().find(|p| p.exists()).context(
        "the SMS Spam Collection was not found: pass --data PATH (a JSON-lines file of {id, text, label}) or set FLYWHEEL_DATA_DIR",
    )
}

/// The policy the demo runs: auto only at or above the calibrated threshold of the model's
/// label; everything else to two reviewers (a tie to an adjudicator).
fn policy(strategy: &str) -> Value {
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

/// The collection, read and checked.
fn read_messages(args: &SpamArgs) -> anyhow::Result<(PathBuf, Vec<Sms>)> {
    let path = data_path(args)?;
    let file = std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut messages = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let m: Sms =
            serde_json::from_str(&line).with_context(|| format!("{}:{}: not an SMS record", path.display(), n + 1))?;
        messages.push(m);
    }
    if let Some(l) = args.limit {
        messages.truncate(l);
    }
    if messages.is_empty() {
        bail!("{} has no messages", path.display());
    }
    Ok((path, messages))
}

fn reviewer_accuracies(args: &SpamArgs) -> anyhow::Result<Vec<f64>> {
    let accuracies: Vec<f64> = args
        .reviewers
        .split(',')
        .map(|a| a.trim().parse::<f64>().ok().filter(|a| (0.0..=1.0).contains(a)))
        .collect::<Option<Vec<_>>>()
        .context("--reviewers is a comma-separated list of accuracies in [0, 1]")?;
    Ok(if accuracies.len() == 1 {
        vec![accuracies[0]; 6]
    } else {
        accuracies
    })
}

/// The server: in-process on a fresh database in `dir`, or the one named. Returns the
/// client and the admin key.
async fn connect(args: &SpamArgs, dir: &std::path::Path) -> anyhow::Result<(Client, String)> {
    let (base, admin) = match &args.server {
        Some(url) => (
            url.trim_end_matches('/').to_string(),
            args.admin_key
                .clone()
                .context("--server needs the admin key (--admin-key or FLYWHEEL_ADMIN_KEY)")?,
        ),
        None => {
            let key = "demo-admin-key-0123456789abcdef".to_string();
            let store = flywheel_store::open(&format!("sqlite://{}", dir.join("demo.db").display())).await?;
            let state = Arc::new(flywheel_server::AppState::new(
                store,
                Arc::new(flywheel_server::SystemClock),
            ));
            flywheel_server::bootstrap_admin(&state, Some(&key)).await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let base = format!("http://{}", listener.local_addr()?);
            tokio::spawn(flywheel_server::serve(listener, state, std::future::pending()));
            (base, key)
        }
    };
    Ok((
        Client {
            http: reqwest::Client::new(),
            base,
        },
        admin,
    ))
}

/// A project with `policy`, a service key for it, and reviewers of the given accuracies
/// (tier 1) plus two tier-2 adjudicators. Returns the service key and the reviewers.
async fn setup_project(
    api: &Client,
    admin: &str,
    project: &str,
    policy: Value,
    accuracies: &[f64],
) -> anyhow::Result<(String, Vec<(String, f64)>)> {
    api.ok(
        reqwest::Method::POST,
        "/v1/projects",
        admin,
        Some(json!({"name": project, "labels": ["ham", "spam"], "policy": policy})),
    )
    .await?;
    let svc = api
        .ok(
            reqwest::Method::POST,
            "/v1/keys",
            admin,
            Some(json!({"scope": "service", "projects": [project]})),
        )
        .await?;
    let svc = svc["api_key"].as_str().unwrap_or_default().to_string();
    let mut reviewers = Vec::new();
    for (i, acc) in accuracies.iter().enumerate() {
        let v = api
            .ok(
                reqwest::Method::POST,
                "/v1/reviewers",
                admin,
                Some(json!({"name": format!("{project}-r{i}"), "tiers": [1], "projects": [project]})),
            )
            .await?;
        reviewers.push((v["api_key"].as_str().unwrap_or_default().to_string(), *acc));
    }
    for i in 0..2 {
        let v = api
            .ok(
                reqwest::Method::POST,
                "/v1/reviewers",
                admin,
                Some(json!({"name": format!("{project}-lead{i}"), "tiers": [2], "projects": [project]})),
            )
            .await?;
        reviewers.push((v["api_key"].as_str().unwrap_or_default().to_string(), accuracies[0]));
    }
    Ok((svc, reviewers))
}

pub async fn spam(args: SpamArgs) -> anyhow::Result<()> {
    match args.mode.as_str() {
        "flywheel" => flywheel(args).await,
        "learning-curve" => learning_curve(args).await,
        other => bail!("--mode is flywheel or learning-curve, not '{other}'"),
    }
}

async fn flywheel(args: SpamArgs) -> anyhow::Result<()> {
    let (path, messages) = read_messages(&args)?;
    let accuracies = reviewer_accuracies(&args)?;
    let dir = tempfile::tempdir()?;
    let (api, admin) = connect(&args, dir.path()).await?;
    let project = format!("sms-{}-{}", args.strategy, args.seed);
    let (svc, reviewers) = setup_project(&api, &admin, &project, policy(&args.strategy), &accuracies).await?;
    let truth: std::collections::HashMap<String, String> =
        messages.iter().map(|m| (m.id.clone(), m.label.clone())).collect();

    let bar = indicatif::ProgressBar::new(messages.len() as u64);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} messages · {msg}")
            .unwrap_or(indicatif::ProgressStyle::default_bar()),
    );
    let mut rng = Rng(args.seed);
    let (mut auto, mut auto_right, mut reviewed, mut human_labels) = (0u64, 0u64, 0u64, 0u64);
    let mut outcomes: Vec<bool> = Vec::new(); // true = auto, per message
    let mut series = Vec::new();
    const CHECKPOINT: usize = 50;
    // Prequential evaluation: each segment of the stream is scored by the model as it is
    // just before the segment arrives, so every prediction is of a message whose label the
    // model has not seen. Same stream, same measure for every strategy.
    let mut predicted_spam: Vec<bool> = Vec::with_capacity(messages.len());
    for (n, m) in messages.iter().enumerate() {
        if n % CHECKPOINT == 0 {
            let segment: Vec<&Sms> = messages[n..(n + CHECKPOINT).min(messages.len())].iter().collect();
            predicted_spam.extend(predict_spam(&api, &project, &svc, &segment).await?);
        }
        let d = api
            .ok(
                reqwest::Method::POST,
                &format!("/v1/projects/{project}/items"),
                &svc,
                Some(json!({"items": [{"external_id": m.id, "payload": {"text": m.text}}]})),
            )
            .await?;
        let d = &d["decisions"][0];
        if d["outcome"] == "auto" {
            auto += 1;
            auto_right += u64::from(d["label"] == m.label.as_str());
            outcomes.push(true);
        } else {
            reviewed += 1;
            outcomes.push(false);
        }
        human_labels += work_queue(&api, &project, &reviewers, &truth, &mut rng).await?;
        if (n + 1) % CHECKPOINT == 0 || n + 1 == messages.len() {
            let model = catch_up(&api, &project, &svc).await?;
            let window = &outcomes[outcomes.len().saturating_sub(1000)..];
            let from = (n + 1).saturating_sub(1000);
            let f1_stream = f1(
                messages[from..=n].iter().map(|m| m.label == "spam"),
                predicted_spam[from..=n].iter().copied(),
            );
            let point = json!({
                "messages": n + 1,
                "automation_rate_last_1000": window.iter().filter(|a| **a).count() as f64 / window.len() as f64,
                "auto_precision_true": if auto > 0 { Some(auto_right as f64 / auto as f64) } else { None },
                "human_labels": human_labels,
                "f1_spam": model["evaluation"]["f1"]["spam"],
                "f1_spam_stream": f1_stream,
                "thresholds": model["thresholds"],
            });
            bar.set_message(format!(
                "automation {:.0}% · {} human labels",
                point["automation_rate_last_1000"].as_f64().unwrap_or(0.0) * 100.0,
                human_labels
            ));
            series.push(point);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let last = series.last().cloned().unwrap_or(Value::Null);
    let stats = api
        .ok(
            reqwest::Method::GET,
            &format!("/v1/projects/{project}/stats"),
            &admin,
            None,
        )
        .await?;
    let summary = json!({
        "dataset": path.display().to_string(),
        "strategy": args.strategy,
        "seed": args.seed,
        "reviewer_accuracies": accuracies,
        "items": messages.len(),
        "auto": auto,
        "reviewed": reviewed,
        "human_labels": human_labels,
        "auto_precision_true": if auto > 0 { Some(auto_right as f64 / auto as f64) } else { None },
        "automation_rate_last_1000": last["automation_rate_last_1000"],
        "final_f1": last["f1_spam"],
        "final_f1_stream": last["f1_spam_stream"],
        "labels_to_f1_stream": labels_to_reach(&series, "f1_spam_stream", 500, &[0.85, 0.9, 0.925, 0.95]),
        "thresholds": last["thresholds"],
        "auto_precision_from_audits": stats["auto_precision_from_audits"],
        "auto_precision_interval": stats["auto_precision_interval"],
        "series": series,
    });
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    std::fs::write(args.out.join("report.html"), report_html(&summary))?;
    println!(
        "{} messages: {} auto ({:.4} true precision), {} reviewed, {} human labels; automation over the last 1000: {:.3}; spam F1 on held-back labels: {}",
        messages.len(),
        auto,
        summary["auto_precision_true"].as_f64().unwrap_or(f64::NAN),
        reviewed,
        human_labels,
        summary["automation_rate_last_1000"].as_f64().unwrap_or(f64::NAN),
        summary["final_f1"]
    );
    println!(
        "spam F1 on the stream (last 1000, scored before their labels): {}; human labels when it first reached {}",
        summary["final_f1_stream"], summary["labels_to_f1_stream"]
    );
    println!(
        "wrote {} and {}",
        args.out.join("summary.json").display(),
        args.out.join("report.html").display()
    );
    Ok(())
}

/// F1 of the positive class from (truth, predicted) flags; `None` with no positives at all.
fn f1(truth: impl Iterator<Item = bool>, predicted: impl Iterator<Item = bool>) -> Option<f64> {
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    for (t, p) in truth.zip(predicted) {
        match (t, p) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
    }
    (tp + fp + fn_ > 0).then(|| f64::from(2 * tp) / f64::from(2 * tp + fp + fn_))
}

/// For each F1 target, the human labels used when `key` (once at least `min_messages`
/// have streamed) first reached it, or null.
fn labels_to_reach(series: &[Value], key: &str, min_messages: u64, targets: &[f64]) -> Value {
    let mut out = serde_json::Map::new();
    for t in targets {
        let hit = series
            .iter()
            .filter(|p| p["messages"].as_u64().unwrap_or(0) >= min_messages)
            .find(|p| p[key].as_f64().is_some_and(|f| f >= *t));
        out.insert(format!("{t}"), hit.map_or(Value::Null, |p| p["human_labels"].clone()));
    }
    Value::Object(out)
}

/// Active learning against random selection, each with the same budget on the same
/// stream: every message is automated except the strategy's picks, which go to one
/// reviewer, so the picks are all the model learns from. Every 50 messages the model
/// scores a held-out fifth of the collection (never streamed) and its spam F1 is recorded
/// against the human labels used so far.
async fn learning_curve(args: SpamArgs) -> anyhow::Result<()> {
    const EVERY: usize = 50;
    const TARGETS: [f64; 4] = [0.7, 0.8, 0.85, 0.9];
    let (path, messages) = read_messages(&args)?;
    let accuracies = reviewer_accuracies(&args)?;
    if !(1..=1000).contains(&args.budget_per_1000) {
        bail!("--budget-per-1000 is between 1 and 1000");
    }
    let dir = tempfile::tempdir()?;
    let (api, admin) = connect(&args, dir.path()).await?;
    // Every fifth message is held out for evaluation and never streamed.
    let test: Vec<&Sms> = messages.iter().skip(4).step_by(5).collect();
    let stream: Vec<&Sms> = messages
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 != 4)
        .map(|(_, m)| m)
        .collect();
    let truth: std::collections::HashMap<String, String> =
        stream.iter().map(|m| (m.id.clone(), m.label.clone())).collect();
    let mut strategies = vec![args.strategy.clone()];
    if args.strategy != "random" {
        strategies.push("random".into());
    }
    let bar = indicatif::ProgressBar::new((stream.len() * strategies.len()) as u64);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut curves = serde_json::Map::new();
    let mut reached = serde_json::Map::new();
    for strategy in &strategies {
        let project = format!("curve-{strategy}-{}", args.seed);
        let policy = json!({
            "rules": [{"name": "everything", "when": "true", "action": "auto"}],
            "lease_seconds": 600,
            "show_suggestion": false,
            "model": {"enabled": true, "bits": 18},
            "active_learning": {"strategy": strategy, "budget_per_1000": args.budget_per_1000, "overlap": 1}
        });
        let (svc, reviewers) = setup_project(&api, &admin, &project, policy, &accuracies).await?;
        let mut rng = Rng(args.seed);
        let (mut labels, mut points) = (0u64, Vec::new());
        bar.set_message(strategy.clone());
        for (n, m) in stream.iter().enumerate() {
            api.ok(
                reqwest::Method::POST,
                &format!("/v1/projects/{project}/items"),
                &svc,
                Some(json!({"items": [{"external_id": m.id, "payload": {"text": m.text}}]})),
            )
            .await?;
            labels += work_queue(&api, &project, &reviewers, &truth, &mut rng).await?;
            if (n + 1) % EVERY == 0 || n + 1 == stream.len() {
                catch_up(&api, &project, &svc).await?;
                let predicted = predict_spam(&api, &project, &svc, &test).await?;
                let f1 = f1(test.iter().map(|m| m.label == "spam"), predicted.into_iter());
                points.push(json!({"messages": n + 1, "human_labels": labels, "f1_spam": f1}));
            }
            bar.inc(1);
        }
        reached.insert(strategy.clone(), labels_to_reach(&points, "f1_spam", 0, &TARGETS));
        curves.insert(strategy.clone(), Value::Array(points));
    }
    bar.finish_and_clear();
    let summary = json!({
        "mode": "learning-curve",
        "dataset": path.display().to_string(),
        "seed": args.seed,
        "reviewer_accuracies": accuracies,
        "stream": stream.len(),
        "test_set": test.len(),
        "budget_per_1000": args.budget_per_1000,
        "labels_to_f1": reached,
        "curves": curves,
    });
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    std::fs::write(args.out.join("report.html"), curve_html(&summary))?;
    println!(
        "{} messages streamed, {} held out; active learning's budget {} per 1,000; human labels until spam F1 on the held-out set first reached:",
        stream.len(),
        test.len(),
        args.budget_per_1000
    );
    for strategy in &strategies {
        let last = summary["curves"][strategy]
            .as_array()
            .and_then(|c| c.last())
            .cloned()
            .unwrap_or_default();
        println!(
            "  {strategy:>16}: {} (final F1 {:.3} with {} labels)",
            TARGETS
                .iter()
                .map(|t| format!("{t}: {}", summary["labels_to_f1"][strategy][format!("{t}")]))
                .collect::<Vec<_>>()
                .join(", "),
            last["f1_spam"].as_f64().unwrap_or(f64::NAN),
            last["human_labels"]
        );
    }
    println!(
        "wrote {} and {}",
        args.out.join("summary.json").display(),
        args.out.join("report.html").display()
    );
    Ok(())
}

/// The learning-curve report: spam F1 on the held-out set against human labels, one line
/// per strategy.
fn curve_html(summary: &Value) -> String {
    use flywheel_server::ui::chart::{Series, escape, line_chart};
    let colors = ["#1a7f37", "#cf222e", "#1f6feb", "#8250df"];
    let curves = summary["curves"].as_object().cloned().unwrap_or_default();
    let max_labels = curves
        .values()
        .flat_map(|c| c.as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["human_labels"].as_f64())
        .fold(1.0, f64::max);
    let series: Vec<Series<'_>> = curves
        .iter()
        .enumerate()
        .map(|(i, (name, c))| Series {
            name,
            color: colors[i % colors.len()],
            points: c
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| (p["human_labels"].as_f64().unwrap_or(0.0), p["f1_spam"].as_f64()))
                .collect(),
        })
        .collect();
    let chart = line_chart(
        "Spam F1 on the held-out set against human labels",
        "human labels",
        &series,
        (0.0, max_labels),
        (0.0, 1.0),
    );
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Flywheel · active learning</title>\
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}svg{{background:#fafafa;border:1px solid #ddd}}</style></head>\
<body><h1>Active learning against random selection on the SMS Spam Collection</h1>\
<p>{stream} messages streamed, {test} held out; budget {budget} per 1,000 messages; every other message automated.</p>\
<p>Human labels until spam F1 first reached each level: <code>{reached}</code></p>{chart}</body></html>",
        stream = summary["stream"],
        test = summary["test_set"],
        budget = summary["budget_per_1000"],
        reached = escape(&summary["labels_to_f1"].to_string()),
    )
}

/// Whether the project's model labels each message spam, scored without storing anything
/// (in chunks the endpoint takes).
async fn predict_spam(api: &Client, project: &str, svc: &str, messages: &[&Sms]) -> anyhow::Result<Vec<bool>> {
    let mut out = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(5000) {
        let items: Vec<Value> = chunk.iter().map(|m| json!({"payload": {"text": m.text}})).collect();
        let scored = api
            .ok(
                reqwest::Method::POST,
                &format!("/v1/projects/{project}/model/predict"),
                svc,
                Some(json!({"items": items})),
            )
            .await?;
        let got = scored["predictions"].as_array().map_or(&[][..], Vec::as_slice);
        if got.len() != chunk.len() {
            bail!("asked to score {} messages, got {} predictions", chunk.len(), got.len());
        }
        out.extend(got.iter().map(|p| p["label"] == "spam"));
    }
    Ok(out)
}

/// The simulated reviewers work the queue until it is empty. Returns the labels given.
async fn work_queue(
    api: &Client,
    project: &str,
    reviewers: &[(String, f64)],
    truth: &std::collections::HashMap<String, String>,
    rng: &mut Rng,
) -> anyhow::Result<u64> {
    let mut labels = 0;
    loop {
        let mut any = false;
        for (key, accuracy) in reviewers {
            let (status, t) = api
                .call(
                    reqwest::Method::POST,
                    &format!("/v1/projects/{project}/claim"),
                    key,
                    Some(json!({})),
                )
                .await?;
            if status == 204 {
                continue;
            }
            if status != 200 {
                bail!("claim: {status} {t}");
            }
            any = true;
            let right = truth
                .get(t["item"]["external_id"].as_str().unwrap_or_default())
                .cloned()
                .unwrap_or_default();
            let answer = if rng.unit() < *accuracy {
                right
            } else if right == "spam" {
                "ham".into()
            } else {
                "spam".into()
            };
            let body = json!({"lease_id": t["lease_id"], "review_id": format!("{}-{}", t["task_id"], t["lease_id"]), "label": answer});
            api.ok(
                reqwest::Method::POST,
                &format!("/v1/tasks/{}/reviews", t["task_id"]),
                key,
                Some(body),
            )
            .await?;
            labels += 1;
        }
        if !any {
            return Ok(labels);
        }
    }
}

/// Waits until the model has trained on every human label so far (the server trains in
/// the background), and returns its state.
async fn catch_up(api: &Client, project: &str, key: &str) -> anyhow::Result<Value> {
    let mut newest = 0;
    let mut after = 0;
    loop {
        let page = api
            .ok(
                reqwest::Method::GET,
                &format!("/v1/projects/{project}/labels?after={after}&limit=1000"),
                key,
                None,
            )
            .await?;
        let rows = page["labels"].as_array().cloned().unwrap_or_default();
        for l in &rows {
            if l["source"] != "auto" {
                newest = l["cursor"].as_i64().unwrap_or(newest);
            }
        }
        if rows.is_empty() {
            break;
        }
        after = page["next_cursor"].as_i64().unwrap_or(after);
    }
    for _ in 0..200 {
        let m = api
            .ok(
                reqwest::Method::GET,
                &format!("/v1/projects/{project}/model"),
                key,
                None,
            )
            .await?;
        if m["trained_through"].as_i64().unwrap_or(0) >= newest {
            return Ok(m);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the model did not catch up with the label feed within 5 s")
}

/// A self-contained page: four SVG line charts over the stream. No scripts, no external
/// resources, so it reads offline.
fn report_html(summary: &Value) -> String {
    let series = summary["series"].as_array().cloned().unwrap_or_default();
    let x: Vec<f64> = series.iter().map(|p| p["messages"].as_f64().unwrap_or(0.0)).collect();
    let col = |k: &str| -> Vec<Option<f64>> { series.iter().map(|p| p[k].as_f64()).collect() };
    let labels_max = series
        .iter()
        .filter_map(|p| p["human_labels"].as_f64())
        .fold(1.0, f64::max);
    let charts = [
        chart(
            "Automation rate (last 1,000 messages)",
            &x,
            &col("automation_rate_last_1000"),
            0.0,
            1.0,
        ),
        chart(
            "True precision of auto decisions (against the dataset's labels)",
            &x,
            &col("auto_precision_true"),
            0.9,
            1.0,
        ),
        chart(
            "Human labels used (cumulative)",
            &x,
            &col("human_labels"),
            0.0,
            labels_max,
        ),
        chart(
            "Model F1 on spam, held-back human labels",
            &x,
            &col("f1_spam"),
            0.0,
            1.0,
        ),
        flywheel_server::ui::chart::line_chart(
            "Spam F1 on the stream (last 1,000 messages, scored before their labels) against human labels",
            "human labels",
            &[flywheel_server::ui::chart::Series {
                name: "",
                color: "#1a7f37",
                points: series
                    .iter()
                    .map(|p| (p["human_labels"].as_f64().unwrap_or(0.0), p["f1_spam_stream"].as_f64()))
                    .collect(),
            }],
            (0.0, labels_max),
            (0.5, 1.0),
        ),
    ];
    let fmt = |k: &str| summary[k].as_f64().map_or("–".to_string(), |v| format!("{v:.4}"));
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Flywheel · spam demo</title>\
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}svg{{background:#fafafa;border:1px solid #ddd;margin:0 1em 1em 0}}\
td{{padding:2px 12px 2px 0}}</style></head><body><h1>The data flywheel on the SMS Spam Collection</h1>\
<table><tr><td>messages</td><td>{items}</td></tr><tr><td>auto</td><td>{auto}</td></tr><tr><td>reviewed</td><td>{reviewed}</td></tr>\
<tr><td>human labels</td><td>{labels}</td></tr><tr><td>true precision of auto decisions</td><td>{prec}</td></tr>\
<tr><td>automation over the last 1,000</td><td>{rate}</td></tr><tr><td>spam F1 (held back)</td><td>{f1}</td></tr>\
<tr><td>spam F1 on the stream (last 1,000)</td><td>{f1s}</td></tr><tr><td>human labels to reach stream F1</td><td>{to_f1}</td></tr>\
<tr><td>active learning</td><td>{strategy}</td></tr></table>{charts}</body></html>",
        items = summary["items"],
        auto = summary["auto"],
        reviewed = summary["reviewed"],
        labels = summary["human_labels"],
        prec = fmt("auto_precision_true"),
        rate = fmt("automation_rate_last_1000"),
        f1 = fmt("final_f1"),
        f1s = fmt("final_f1_stream"),
        to_f1 = flywheel_server::ui::chart::escape(&summary["labels_to_f1_stream"].to_string()),
        strategy = summary["strategy"].as_str().unwrap_or_default(),
        charts = charts.join(""),
    )
}

fn chart(title: &str, x: &[f64], y: &[Option<f64>], lo: f64, hi: f64) -> String {
    use flywheel_server::ui::chart::{Series, line_chart};
    let xmax = x.iter().copied().fold(1.0, f64::max);
    line_chart(
        title,
        "messages",
        &[Series {
            name: "",
            color: "#1f6feb",
            points: x.iter().copied().zip(y.iter().copied()).collect(),
        }],
        (0.0, xmax),
        (lo, hi),
    )
}
