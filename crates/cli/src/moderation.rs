//! `flywheel demo moderation`: Davidson et al.'s tweets (hate / offensive / neither)
//! through the whole loop — the scenario is `flywheel_sim::scenario::moderation`; this
//! module is its command line and its report. The server is `demo.rs`'s: in-process on a
//! fresh SQLite database, on a `ManualClock` the scenario drives, without the background
//! learner (or `--server`, whose figures vary with timing).

use std::path::PathBuf;

use anyhow::{Context, bail};
use flywheel_server::ui::chart::{Series, bar_chart, escape, line_chart};
use flywheel_sim::scenario::moderation;
use serde_json::Value;

use crate::demo::{connect_to, progress_bar, tick};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Runs are reproducible with the in-process server: the same --seed and data give the same \
summary.json. With --server they are not: that server trains its model on its own timer and keeps its own clock."
)]
pub struct ModerationArgs {
    /// The tweets as JSON lines of {id, text, label, votes} (default:
    /// $FLYWHEEL_DATA_DIR/moderation/davidson2017.jsonl, else
    /// ../shared/data/moderation/davidson2017.jsonl).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed of the stream's order, the simulated answers and the gold draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where summary.json and report.html go.
    #[arg(long, default_value = "flywheel-demo")]
    out: PathBuf,
    /// A running server instead of an in-process one (needs --admin-key). Its figures are
    /// not reproducible: it trains on its own timer.
    #[arg(long)]
    server: Option<String>,
    #[arg(long, env = "FLYWHEEL_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Only the first N tweets of the file.
    #[arg(long)]
    limit: Option<usize>,
    /// The policy's novelty threshold: items at or above it go to the expert queue.
    #[arg(long, default_value_t = moderation::NOVELTY_THRESHOLD)]
    novelty_threshold: f64,
}

/// Where the tweets are: `explicit` (which must exist), else the data directory's, else
/// `../shared/data`'s.
fn data_path(explicit: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if p.exists() {
            return Ok(p.to_path_buf());
        }
        bail!(
            "{} was not found: --data names a JSON-lines file of {{id, text, label, votes}}",
            p.display()
        );
    }
    let rel = "moderation/davidson2017.jsonl";
    [
        std::env::var_os("FLYWHEEL_DATA_DIR").map(|d| PathBuf::from(d).join(rel)),
        Some(PathBuf::from("../shared/data").join(rel)),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.exists())
    .context("the moderation tweets were not found: pass --data PATH (JSON lines of {id, text, label, votes}) or set FLYWHEEL_DATA_DIR")
}

pub async fn run(args: ModerationArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.novelty_threshold) {
        bail!("--novelty-threshold is a number in [0, 1]");
    }
    let path = data_path(args.data.as_deref())?;
    let tweets = moderation::read_tweets(&path, args.limit)?;
    let dir = tempfile::tempdir()?;
    let (client, clock) = connect_to(args.server.as_deref(), args.admin_key.as_deref(), args.seed, dir.path()).await?;
    let dataset = path.display().to_string();
    let run = moderation::Moderation {
        dataset: &dataset,
        tweets: &tweets,
        seed: args.seed,
        novelty_threshold: args.novelty_threshold,
    };
    let bar = progress_bar("{bar:40} {pos}/{len} tweets · {msg}");
    let summary = moderation::moderation(&client, clock.as_ref(), &run, &mut tick(&bar)).await?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    std::fs::write(args.out.join("report.html"), report_html(&summary))?;
    let f = |v: &Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.3}"));
    println!(
        "{} tweets: automation {} ({} over the last 5,000), true precision of auto decisions {} (hate {}, offensive {}, neither {}); {} human answers",
        summary["items"],
        f(&summary["automation_rate"]),
        f(&summary["automation_rate_last_5000"]),
        f(&summary["auto_precision_true"]["overall"]),
        f(&summary["auto_precision_true"]["hate"]),
        f(&summary["auto_precision_true"]["offensive"]),
        f(&summary["auto_precision_true"]["neither"]),
        summary["human_answers"],
    );
    println!(
        "clear violations caught automatically (last half): {}; novel items to experts: {} ({} of the {} '{}' tweets); reviewers held: {}",
        f(&summary["clear_violations_auto_caught"]),
        summary["novel_items_to_experts"],
        summary["term_family"]["to_experts"],
        summary["term_family"]["tweets"],
        moderation::TERM_FAMILY,
        summary["reviewers_held"],
    );
    let c = &summary["clarification"];
    println!(
        "guideline clarification: L2 time on hate_vs_offensive {} → {}, L2 load {:+.1}%, escalations per 1,000 {} → {}, L1 agreement {} → {}",
        f(&summary["l2_time_share_by_category"]["before"]["hate_vs_offensive"]),
        f(&summary["l2_time_share_by_category"]["after"]["hate_vs_offensive"]),
        summary["l2_load_change"].as_f64().unwrap_or(f64::NAN) * 100.0,
        f(&c["before"]["escalations_per_1000"]),
        f(&c["after"]["escalations_per_1000"]),
        f(&c["before"]["l1_pair_agreement"]),
        f(&c["after"]["l1_pair_agreement"]),
    );
    println!(
        "wrote {} and {}",
        args.out.join("summary.json").display(),
        args.out.join("report.html").display()
    );
    Ok(())
}

/// A self-contained page a moderation lead reads: the figures, then automation and
/// precision over the stream, agreement per label, L2's time by category before and
/// after the clarification, and novelty over the stream. No scripts.
fn report_html(s: &Value) -> String {
    let series = s["series"].as_array().cloned().unwrap_or_default();
    let x: Vec<f64> = series.iter().map(|p| p["tweets"].as_f64().unwrap_or(0.0)).collect();
    let xmax = x.iter().copied().fold(1.0, f64::max);
    let col =
        |k: &str| -> Vec<(f64, Option<f64>)> { x.iter().copied().zip(series.iter().map(|p| p[k].as_f64())).collect() };
    let automation = line_chart(
        "Automation (each 500 tweets) and true precision of auto decisions (cumulative)",
        "tweets",
        &[
            Series {
                name: "automation",
                color: "#1f6feb",
                points: col("automation_rate"),
            },
            Series {
                name: "true precision",
                color: "#1a7f37",
                points: col("auto_precision_true"),
            },
        ],
        (0.0, xmax),
        (0.0, 1.0),
    );
    let novelty = line_chart(
        &format!(
            "Novelty (mean, each 500 tweets) and the share sent to experts; '{}' tweets arrive after the middle",
            moderation::TERM_FAMILY
        ),
        "tweets",
        &[
            Series {
                name: "novelty, all",
                color: "#8250df",
                points: col("novelty_mean"),
            },
            Series {
                name: "novelty, new family",
                color: "#cf222e",
                points: col("novelty_mean_family"),
            },
            Series {
                name: "to experts",
                color: "#9a6700",
                points: col("expert_share"),
            },
        ],
        (0.0, xmax),
        (0.0, 1.0),
    );
    let labels = moderation::LABELS;
    let alpha = bar_chart(
        "Agreement per label (Krippendorff's α, the label against the others, all answers)",
        &labels,
        &[("α", "#1f6feb")],
        &labels
            .iter()
            .map(|l| vec![s["alpha_by_label"][l].as_f64()])
            .collect::<Vec<_>>(),
        (0.0, 1.0),
    );
    let share = &s["l2_time_share_by_category"];
    let l2 = bar_chart(
        "L2 time share by category, before and after the guideline clarification",
        &moderation::CATEGORIES,
        &[("before", "#9a6700"), ("after", "#1a7f37")],
        &moderation::CATEGORIES
            .iter()
            .map(|c| vec![share["before"][c].as_f64(), share["after"][c].as_f64()])
            .collect::<Vec<_>>(),
        (0.0, 1.0),
    );
    let f = |v: &Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.4}"));
    let c = &s["clarification"];
    let row = |name: &str, k: &str| {
        format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            f(&c["before"][k]),
            f(&c["after"][k])
        )
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Flywheel · moderation demo</title>\
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}svg{{background:#fafafa;border:1px solid #ddd;margin:0 1em 1em 0}}\
td,th{{padding:2px 12px 2px 0;text-align:left}}</style></head><body><h1>Content moderation on {items} real tweets</h1>\
<table><tr><td>automation (all / last 5,000)</td><td>{auto} / {auto5}</td></tr>\
<tr><td>true precision of auto decisions (overall / hate / offensive / neither)</td><td>{p} / {ph} / {po} / {pn}</td></tr>\
<tr><td>clear violations caught automatically (last half)</td><td>{caught}</td></tr>\
<tr><td>novel items to experts (of them, '{family}' tweets)</td><td>{experts} ({fam_exp} of {fam})</td></tr>\
<tr><td>reviewers held for low gold accuracy</td><td>{held}</td></tr><tr><td>human answers</td><td>{answers}</td></tr>\
<tr><td>L2 load change after the clarification</td><td>{load}</td></tr></table>\
<h2>The guideline clarification (at tweet {at})</h2><table><tr><th></th><th>before</th><th>after</th></tr>{r1}{r2}{r3}{r4}</table>\
{automation}{alpha}{l2}{novelty}</body></html>",
        items = s["items"],
        auto = f(&s["automation_rate"]),
        auto5 = f(&s["automation_rate_last_5000"]),
        p = f(&s["auto_precision_true"]["overall"]),
        ph = f(&s["auto_precision_true"]["hate"]),
        po = f(&s["auto_precision_true"]["offensive"]),
        pn = f(&s["auto_precision_true"]["neither"]),
        caught = f(&s["clear_violations_auto_caught"]),
        family = escape(moderation::TERM_FAMILY),
        experts = s["novel_items_to_experts"],
        fam_exp = s["term_family"]["to_experts"],
        fam = s["term_family"]["tweets"],
        held = escape(&s["reviewers_held"].to_string()),
        answers = s["human_answers"],
        load = f(&s["l2_load_change"]),
        at = c["at"],
        r1 = row("L2 answers per 1,000 tweets", "l2_answers_per_1000"),
        r2 = row("escalations per 1,000 tweets", "escalations_per_1000"),
        r3 = row("L1 pairs agreeing", "l1_pair_agreement"),
        r4 = row("L1 hate/offensive pairs split", "l1_hate_offensive_split"),
    )
}
