//! `flywheel demo fraud`: a seeded stream of card transactions through rules, the
//! built-in model and investigators, with feedback and frozen side by side — the scenario
//! is `flywheel_sim::scenario::fraud`; this module is its command line and its report.
//! The server is `demo spam`'s (`demo::connect_to`): in-process on a fresh SQLite database
//! and a clock the scenario drives, or `--server`.

use std::path::PathBuf;

use flywheel_server::ui::chart::{Series, escape, line_chart};
use flywheel_sim::scenario::fraud::{self, stream::Spec};
use serde_json::Value;

use crate::demo::{connect_to, progress_bar, tick};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Runs are reproducible with the in-process server: the same flags give the same summary.json. \
With --server they are not: that server trains its model on its own timer and keeps its own clock."
)]
pub struct FraudArgs {
    /// Seed of the stream (cards, transactions, fraud) and of the investigators' mistakes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where summary.json and report.html go.
    #[arg(long, default_value = "flywheel-demo-fraud")]
    out: PathBuf,
    /// A running server instead of an in-process one (needs --admin-key).
    #[arg(long)]
    server: Option<String>,
    #[arg(long, env = "FLYWHEEL_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Hours of the stream (the new pattern starts at --drift-hour).
    #[arg(long, default_value_t = Spec::demo(1).hours)]
    hours: u32,
    /// The stream's hour at which the new fraud pattern starts.
    #[arg(long, default_value_t = Spec::demo(1).drift_hour)]
    drift_hour: u32,
    /// Hours of labelled history the model is trained on first.
    #[arg(long, default_value_t = Spec::demo(1).history_hours)]
    history_hours: u32,
    /// Transactions per hour on average.
    #[arg(long, default_value_t = Spec::demo(1).per_hour)]
    per_hour: u32,
    /// Cards in the population.
    #[arg(long, default_value_t = Spec::demo(1).cards)]
    cards: usize,
    /// Investigators.
    #[arg(long, default_value_t = fraud::Fraud::demo(1).investigators)]
    investigators: usize,
    /// Alerts one investigator works per hour (their capacity).
    #[arg(long, default_value_t = fraud::Fraud::demo(1).alerts_per_hour)]
    alerts_per_hour: u32,
}

impl FraudArgs {
    /// The flags' combinations clap cannot check: a usage error when they do not fit.
    pub fn check(&self) -> Result<(), String> {
        if self.hours == 0 || self.drift_hour >= self.hours {
            return Err("--drift-hour must be below --hours (and --hours above 0)".into());
        }
        if self.per_hour == 0 || self.cards == 0 || self.investigators == 0 || self.alerts_per_hour == 0 {
            return Err("--per-hour, --cards, --investigators and --alerts-per-hour are above 0".into());
        }
        Ok(())
    }
}

pub async fn fraud(args: FraudArgs) -> anyhow::Result<()> {
    args.check().map_err(anyhow::Error::msg)?;
    let mut run = fraud::Fraud::demo(args.seed);
    run.spec = Spec {
        hours: args.hours,
        drift_hour: args.drift_hour,
        history_hours: args.history_hours,
        per_hour: args.per_hour,
        cards: args.cards,
        ..run.spec
    };
    run.investigators = args.investigators;
    run.alerts_per_hour = args.alerts_per_hour;
    let dir = tempfile::tempdir()?;
    let (client, clock) = connect_to(args.server.as_deref(), args.admin_key.as_deref(), args.seed, dir.path()).await?;
    let bar = progress_bar("{bar:40} {pos}/{len} transactions · {msg}");
    let summary = fraud::run(&client, clock.as_ref(), &run, &mut tick(&bar)).await?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    std::fs::write(args.out.join("report.html"), report_html(&summary))?;
    let f = |k: &str| fmt(&summary[k]);
    println!(
        "{} transactions ({} fraud) over {} hours, the new pattern from hour {}; {} findings with feedback",
        summary["stream"]["transactions"],
        summary["stream"]["fraud"],
        summary["stream"]["hours"],
        summary["stream"]["drift_hour"],
        summary["feedback"]["findings"],
    );
    println!(
        "false-positive rate: {} before the drift, {} at the end with feedback, {} frozen",
        f("fpr_before_drift"),
        f("fpr_end"),
        f("fpr_frozen_end")
    );
    println!(
        "recall on the new pattern: {} in its first hour, {} in the last with feedback ({} frozen); missed {} with feedback, {} frozen",
        f("recall_new_pattern_first_hour"),
        f("recall_new_pattern_last_hour"),
        f("recall_new_pattern_frozen_last_hour"),
        summary["missed_new_pattern"],
        summary["missed_new_pattern_frozen"],
    );
    println!(
        "findings to recover the pre-drift recall ({}) and false-positive rate: {}; finding to model p50 {} ms, p99 {} ms (simulated)",
        f("recall_before_drift"),
        summary["findings_to_recover"],
        summary["finding_to_model_p50_ms"],
        summary["finding_to_model_p99_ms"],
    );
    println!(
        "wrote {} and {}",
        args.out.join("summary.json").display(),
        args.out.join("report.html").display()
    );
    Ok(())
}

fn fmt(v: &Value) -> String {
    v.as_f64().map_or("–".into(), |x| format!("{x:.4}"))
}

/// One chart of an hourly figure, feedback and frozen.
fn hourly(summary: &Value, title: &str, key: &str, y: (f64, f64)) -> String {
    let points = |run: &str| -> Vec<(f64, Option<f64>)> {
        summary[run]["hours"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| (h["hour"].as_f64().unwrap_or(0.0) + 1.0, h[key].as_f64()))
            .collect()
    };
    let hours = summary["stream"]["hours"].as_f64().unwrap_or(1.0);
    line_chart(
        title,
        "hour of the stream",
        &[
            Series {
                name: "with feedback",
                color: "#1a7f37",
                points: points("feedback"),
            },
            Series {
                name: "model frozen",
                color: "#cf222e",
                points: points("frozen"),
            },
        ],
        (0.0, hours),
        y,
    )
}

/// The report: the fixed figures, then hourly charts of both runs. No scripts, no
/// external resources.
fn report_html(summary: &Value) -> String {
    let max = |k: &str| {
        ["feedback", "frozen"]
            .iter()
            .flat_map(|r| summary[*r]["hours"].as_array().cloned().unwrap_or_default())
            .filter_map(|h| h[k].as_f64())
            .fold(1.0, f64::max)
    };
    let fpr_max = max("fpr").min(1.0);
    let charts = [
        hourly(
            summary,
            "Alert precision (share of alerts that were fraud)",
            "alert_precision",
            (0.0, 1.0),
        ),
        hourly(
            summary,
            "False-positive rate among legitimate transactions",
            "fpr",
            (0.0, fpr_max),
        ),
        hourly(summary, "Recall (fraud blocked or alerted)", "recall", (0.0, 1.0)),
        hourly(summary, "Recall on the new pattern", "recall_new_pattern", (0.0, 1.0)),
        hourly(
            summary,
            "New-pattern frauds missed",
            "missed_new_pattern",
            (0.0, max("missed_new_pattern")),
        ),
        hourly(
            summary,
            "Investigator load: findings per hour",
            "findings",
            (0.0, max("findings")),
        ),
        hourly(
            summary,
            "Open alerts and disputes at the hour's end",
            "backlog_at_end",
            (0.0, max("backlog_at_end")),
        ),
    ];
    let rows: Vec<String> = [
        ("false-positive rate before the drift", "fpr_before_drift"),
        ("false-positive rate, last hour, with feedback", "fpr_end"),
        ("false-positive rate, last hour, model frozen", "fpr_frozen_end"),
        ("recall before the drift", "recall_before_drift"),
        ("new pattern's recall, its first hour", "recall_new_pattern_first_hour"),
        (
            "new pattern's recall, last hour, with feedback",
            "recall_new_pattern_last_hour",
        ),
        (
            "new pattern's recall, last hour, model frozen",
            "recall_new_pattern_frozen_last_hour",
        ),
        ("new-pattern frauds missed, with feedback", "missed_new_pattern"),
        ("new-pattern frauds missed, model frozen", "missed_new_pattern_frozen"),
        ("findings to recover pre-drift recall and FPR", "findings_to_recover"),
        ("finding to model, p50 (simulated ms)", "finding_to_model_p50_ms"),
        ("finding to model, p99 (simulated ms)", "finding_to_model_p99_ms"),
    ]
    .iter()
    .map(|(name, k)| {
        let v = &summary[*k];
        let shown = if v.is_f64() { fmt(v) } else { v.to_string() };
        format!("<tr><td>{}</td><td>{}</td></tr>", escape(name), escape(&shown))
    })
    .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Flywheel · fraud demo</title>\
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}svg{{background:#fafafa;border:1px solid #ddd;margin:0 1em 1em 0}}\
td{{padding:2px 12px 2px 0}}</style></head><body><h1>Fraud investigation: findings against false positives and a new pattern</h1>\
<p>{txs} transactions ({fraud} fraud) over {hours} hours; the new pattern <code>{new}</code> starts at hour {drift}. \
Seed {seed}. Green: the model trains on each finding within {every} ms of simulated time; red: the same stream with the model frozen at the history's.</p>\
<table>{rows}</table>{charts}</body></html>",
        txs = summary["stream"]["transactions"],
        fraud = summary["stream"]["fraud"],
        hours = summary["stream"]["hours"],
        new = escape(summary["stream"]["new_pattern"].as_str().unwrap_or_default()),
        drift = summary["stream"]["drift_hour"],
        seed = summary["seed"],
        every = summary["train_every_ms"],
        rows = rows.join(""),
        charts = charts.join(""),
    )
}
