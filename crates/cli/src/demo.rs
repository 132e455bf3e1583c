//! `flywheel demo spam`: the SMS Spam Collection through the whole loop — the scenario
//! is `flywheel_sim::scenario::spam`; this module is its command line, its server, and
//! its report. `flywheel demo triage` (`triage.rs`) shares the server and the progress
//! bar.
//!
//! Without `--server` the demo runs its own server in-process on a fresh SQLite database,
//! on a `ManualClock` the scenario moves and with the background learner off (the
//! scenario trains the model at fixed points of the stream), so a seed gives the same
//! figures on any machine at any load. With `--server` the server keeps its own clock and
//! learner, and figures vary with timing.

mod triage;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use flywheel_server::ManualClock;
use flywheel_sim::scenario::{Tick, spam};
use flywheel_sim::{Client, Clock, SimClock};
use serde_json::Value;
pub use triage::{TriageArgs, triage};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Runs are reproducible with the in-process server: the same --seed and data give the same \
summary.json. With --server they are not: that server trains its model on its own timer and keeps its own clock."
)]
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
    /// A running server instead of an in-process one (needs --admin-key). Its figures are
    /// not reproducible: it trains on its own timer.
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

fn data_path(args: &SpamArgs) -> anyhow::Result<PathBuf> {
    collection_path(args.data.as_deref())?.context(
        "the SMS Spam Collection was not found: pass --data PATH (a JSON-lines file of {id, text, label}) or set FLYWHEEL_DATA_DIR",
    )
}

/// Where the SMS Spam Collection is: `explicit` (which must exist), else
/// `$FLYWHEEL_DATA_DIR/sms_spam.jsonl`, else `../shared/data/sms_spam.jsonl`; `None` when
/// neither default exists.
pub fn collection_path(explicit: Option<&std::path::Path>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(p) = explicit {
        if p.exists() {
            return Ok(Some(p.to_path_buf()));
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
    Ok(candidates.into_iter().flatten().find(|p| p.exists()))
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

/// The in-process server's `ManualClock`, driven by the scenario.
struct ServerClock(Arc<ManualClock>);

impl Clock for ServerClock {
    fn now_ms(&self) -> i64 {
        flywheel_server::Clock::now_ms(self.0.as_ref())
    }

    fn advance_ms(&self, ms: i64) {
        self.0.advance_ms(ms);
    }
}

/// The spam demo's server (see [`server`]).
async fn connect(args: &SpamArgs, dir: &std::path::Path) -> anyhow::Result<(Client, Box<dyn Clock>)> {
    connect_to(args.server.as_deref(), args.admin_key.as_deref(), args.seed, dir).await
}

/// [`connect`] for any demo: `server` and `admin_key` are its `--server` and `--admin-key`;
/// an in-process server's gold draws are seeded by `seed`.
pub(crate) async fn connect_to(
    server: Option<&str>,
    admin_key: Option<&str>,
    seed: u64,
    dir: &std::path::Path,
) -> anyhow::Result<(Client, Box<dyn Clock>)> {
    if let Some(url) = server {
        let admin = admin_key
            .map(str::to_string)
            .context("--server needs the admin key (--admin-key or FLYWHEEL_ADMIN_KEY)")?;
        return Ok((Client::new(vec![url.to_string()], admin), Box::new(SimClock::default())));
    }
    let key = "demo-admin-key-0123456789abcdef";
    let store = flywheel_store::open(&format!("sqlite://{}", dir.join("demo.db").display())).await?;
    let clock = Arc::new(ManualClock::new(flywheel_sim::clock::EPOCH_MS));
    let mut state = flywheel_server::AppState::new(store, clock.clone());
    state.gold_draws = flywheel_server::app::Draws::seeded(seed);
    // No wall-clock deadline on the policy: on a loaded machine it would send some items to
    // review (`rule_budget_exceeded`) in one run and not the next. The step budget, which
    // counts reads, still bounds each item, the same on every run.
    state.rule_budget.per_item = None;
    let state = Arc::new(state);
    flywheel_server::bootstrap_admin(&state, Some(key)).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let options = flywheel_server::ServeOptions {
        background_learning: false,
        ..Default::default()
    };
    tokio::spawn(flywheel_server::serve_with(
        listener,
        state,
        std::future::pending(),
        options,
    ));
    Ok((Client::new(vec![base], key), Box::new(ServerClock(clock))))
}

/// A progress bar on a terminal (hidden otherwise), fed by the scenario's ticks.
pub(crate) fn progress_bar(template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(indicatif::ProgressStyle::with_template(template).unwrap_or(indicatif::ProgressStyle::default_bar()));
    bar
}

pub(crate) fn tick(bar: &indicatif::ProgressBar) -> impl FnMut(Tick<'_>) + '_ {
    move |t| match t {
        Tick::Total(n) => bar.set_length(n),
        Tick::Step => bar.inc(1),
        Tick::Note(s) => bar.set_message(s.to_string()),
    }
}

pub async fn spam(args: SpamArgs) -> anyhow::Result<()> {
    if !matches!(args.mode.as_str(), "flywheel" | "learning-curve") {
        bail!("--mode is flywheel or learning-curve, not '{}'", args.mode);
    }
    let path = data_path(&args)?;
    let messages = spam::read_messages(&path, args.limit)?;
    let accuracies = reviewer_accuracies(&args)?;
    let dir = tempfile::tempdir()?;
    let (client, clock) = connect(&args, dir.path()).await?;
    let dataset = path.display().to_string();
    let run = spam::Spam {
        dataset: &dataset,
        messages: &messages,
        seed: args.seed,
        accuracies: &accuracies,
        strategy: &args.strategy,
        budget_per_1000: args.budget_per_1000,
    };
    if args.mode == "learning-curve" {
        let bar = progress_bar("{bar:40} {pos}/{len} messages · {msg}");
        let summary = spam::learning_curve(&client, clock.as_ref(), &run, &mut tick(&bar)).await?;
        bar.finish_and_clear();
        return write_curve(&args, &summary);
    }
    let bar = progress_bar("{bar:40} {pos}/{len} messages · {msg}");
    let summary = spam::flywheel(&client, clock.as_ref(), &run, &mut tick(&bar)).await?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    std::fs::write(args.out.join("report.html"), report_html(&summary))?;
    println!(
        "{} messages: {} auto ({:.4} true precision), {} reviewed, {} human labels; automation over the last 1000: {:.3}; spam F1 on held-back labels: {}",
        summary["items"],
        summary["auto"],
        summary["auto_precision_true"].as_f64().unwrap_or(f64::NAN),
        summary["reviewed"],
        summary["human_labels"],
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

/// Writes the learning curve's summary and report, and prints its figures.
fn write_curve(args: &SpamArgs, summary: &Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("summary.json"), serde_json::to_string_pretty(summary)?)?;
    std::fs::write(args.out.join("report.html"), curve_html(summary))?;
    println!(
        "{} messages streamed, {} held out; active learning's budget {} per 1,000; human labels until spam F1 on the held-out set first reached:",
        summary["stream"], summary["test_set"], summary["budget_per_1000"]
    );
    let curves = summary["curves"].as_object().cloned().unwrap_or_default();
    let mut strategies: Vec<&String> = curves.keys().collect();
    // The chosen strategy first, the random baseline after it.
    strategies.sort_by_key(|s| *s == "random");
    for strategy in strategies {
        let last = curves[strategy]
            .as_array()
            .and_then(|c| c.last())
            .cloned()
            .unwrap_or_default();
        println!(
            "  {strategy:>16}: {} (final F1 {:.3} with {} labels)",
            spam::CURVE_TARGETS
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
