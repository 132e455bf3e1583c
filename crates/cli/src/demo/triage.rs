//! `flywheel demo triage`: clinical triage, prevent / detect / correct — the scenario is
//! `flywheel_sim::scenario::triage`; this module is its command line and its report.
//! The server is the spam demo's (`super::server`): in-process on a fresh SQLite database
//! and a `ManualClock` the scenario moves, without the background learner, unless
//! `--server` names one.

use std::path::PathBuf;

use anyhow::bail;
use flywheel_server::ui::chart::{Series, escape, line_chart};
use flywheel_sim::scenario::triage::{self, messages::FAILURE_CATEGORIES};
use serde_json::Value;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Runs are reproducible with the in-process server: the same --seed gives the same summary.json. \
With --server they are not: that server trains and keeps time on its own."
)]
pub struct TriageArgs {
    /// Seed of the messages, their arrival times and the nurses' answers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated weeks (the model retrains at the start of each).
    #[arg(long, default_value_t = 8)]
    weeks: usize,
    /// Patient messages per week.
    #[arg(long, default_value_t = 1000)]
    per_week: usize,
    /// Nurse practitioners on shift, working in parallel.
    #[arg(long, default_value_t = 3)]
    nurses: usize,
    /// How often a nurse's label is right (a mistake is one class off).
    #[arg(long, default_value_t = 0.97)]
    nurse_accuracy: f64,
    /// Where summary.json and report.html go.
    #[arg(long, default_value = "flywheel-demo")]
    out: PathBuf,
    /// A running server instead of an in-process one (needs --admin-key).
    #[arg(long)]
    server: Option<String>,
    #[arg(long, env = "FLYWHEEL_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
}

pub async fn triage(args: TriageArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.nurse_accuracy) {
        bail!("--nurse-accuracy is in [0, 1]");
    }
    if args.weeks == 0 || args.per_week == 0 || args.nurses == 0 {
        bail!("--weeks, --per-week and --nurses are at least 1");
    }
    let dir = tempfile::tempdir()?;
    let (client, clock) =
        super::connect_to(args.server.as_deref(), args.admin_key.as_deref(), args.seed, dir.path()).await?;
    let run = triage::Triage {
        seed: args.seed,
        weeks: args.weeks,
        per_week: args.per_week,
        nurses: args.nurses,
        accuracy: args.nurse_accuracy,
    };
    let bar = super::progress_bar("{bar:40} {pos}/{len} messages · {msg}");
    let summary = triage::run(&client, clock.as_ref(), &run, &mut super::tick(&bar)).await?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    std::fs::write(args.out.join("report.html"), report_html(&summary))?;
    let f = |k: &str| summary[k].as_f64().map_or("–".to_string(), |v| format!("{v:.4}"));
    println!(
        "{} messages over {} weeks: automation {}, under-triage by automation {}, over-triage {}, \
distress escalations {} ({} within the 5-minute SLA), conflicts detected {}",
        summary["messages"],
        summary["weeks"],
        f("automation_rate"),
        summary["under_triage_auto"],
        f("over_triage_rate"),
        summary["distress_escalations"],
        f("distress_escalated_within_sla"),
        summary["conflicts_detected"],
    );
    for w in summary["failure_categories"].as_array().into_iter().flatten() {
        let cats = w["categories"].as_object().cloned().unwrap_or_default();
        let shown: Vec<String> = FAILURE_CATEGORIES
            .iter()
            .map(|c| {
                format!(
                    "{c} {} ({:.1}%)",
                    cats.get(*c).map_or(Value::Null, |v| v["count"].clone()),
                    100.0 * cats.get(*c).and_then(|v| v["time_share"].as_f64()).unwrap_or(0.0)
                )
            })
            .collect();
        println!("week {}: {}", w["week"], shown.join(", "));
    }
    println!("monitor events (firing): {}", summary["monitor_events"]);
    println!(
        "wrote {} and {}",
        args.out.join("summary.json").display(),
        args.out.join("report.html").display()
    );
    Ok(())
}

const COLORS: [&str; 6] = ["#cf222e", "#1f6feb", "#8250df", "#bf8700", "#1a7f37", "#57606a"];

/// A self-contained page: the safety figures, the figures per week and the failure
/// categories per week, as SVG line charts. No scripts.
fn report_html(summary: &Value) -> String {
    let weeks = summary["by_week"].as_array().cloned().unwrap_or_default();
    let n = weeks.len() as f64;
    let per_week = |k: &str| -> Vec<(f64, Option<f64>)> {
        weeks
            .iter()
            .map(|w| (w["week"].as_f64().unwrap_or(0.0), w["figures"][k].as_f64()))
            .collect()
    };
    let one = |title: &str, k: &str, color: &str| {
        line_chart(
            title,
            "week",
            &[Series {
                name: "",
                color,
                points: per_week(k),
            }],
            (1.0, n.max(2.0)),
            (0.0, 1.0),
        )
    };
    let fw = summary["failure_categories"].as_array().cloned().unwrap_or_default();
    let by_category = |field: &str| -> Vec<Series<'static>> {
        FAILURE_CATEGORIES
            .iter()
            .enumerate()
            .map(|(i, c)| Series {
                name: c,
                color: COLORS[i % COLORS.len()],
                points: fw
                    .iter()
                    .map(|w| (w["week"].as_f64().unwrap_or(0.0), w["categories"][*c][field].as_f64()))
                    .collect(),
            })
            .collect()
    };
    let max_count = fw
        .iter()
        .flat_map(|w| FAILURE_CATEGORIES.map(|c| w["categories"][c]["count"].as_f64().unwrap_or(0.0)))
        .fold(1.0, f64::max);
    let max_share = fw
        .iter()
        .flat_map(|w| FAILURE_CATEGORIES.map(|c| w["categories"][c]["time_share"].as_f64().unwrap_or(0.0)))
        .fold(0.05, f64::max);
    let charts = [
        one("Automation rate", "automation_rate", "#1f6feb"),
        one(
            "Over-triage rate (final label more urgent than the truth)",
            "over_triage_rate",
            "#bf8700",
        ),
        one(
            "Distress escalations answered within the 5-minute SLA",
            "distress_escalated_within_sla",
            "#1a7f37",
        ),
        line_chart(
            "Failure categories recorded by nurses, per week",
            "week",
            &by_category("count"),
            (1.0, n.max(2.0)),
            (0.0, max_count),
        ),
        line_chart(
            "Failure categories' share of nurse time, per week",
            "week",
            &by_category("time_share"),
            (1.0, n.max(2.0)),
            (0.0, max_share),
        ),
    ];
    let mut rows = String::new();
    for w in &weeks {
        let f = &w["figures"];
        let fmt = |k: &str| f[k].as_f64().map_or("–".to_string(), |v| format!("{v:.3}"));
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            w["week"],
            f["messages"],
            fmt("automation_rate"),
            fmt("auto_precision_true"),
            f["under_triage_auto"],
            fmt("over_triage_rate"),
            f["distress_escalations"],
            fmt("distress_escalated_within_sla"),
            f["conflicts_detected"],
        ));
    }
    let retrains: Vec<String> = summary["retrains"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("week {} ({} examples)", r["week"], r["examples_seen"]))
        .collect();
    let fmt = |k: &str| summary[k].as_f64().map_or("–".to_string(), |v| format!("{v:.4}"));
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Flywheel · triage demo</title>\
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}svg{{background:#fafafa;border:1px solid #ddd;margin:0 1em 1em 0}}\
td,th{{padding:2px 12px 2px 0;text-align:left}}</style></head><body>\
<h1>Clinical triage: prevent, detect, correct</h1>\
<p>Synthetic patient messages (seed {seed}), {messages} over {weeks} weeks, {nurses} nurse practitioners; \
the model retrains weekly: {retrains}.</p>\
<table><tr><td>emergencies resolved automatically as less urgent (must be 0)</td><td><b>{under}</b></td></tr>\
<tr><td>automation rate</td><td>{auto}</td></tr><tr><td>true precision of auto decisions</td><td>{prec}</td></tr>\
<tr><td>over-triage rate</td><td>{over}</td></tr>\
<tr><td>distress escalations answered within 5 minutes</td><td>{sla} of {distress}</td></tr>\
<tr><td>conflicting outcomes sent to review</td><td>{conflicts}</td></tr>\
<tr><td>monitor events (firing)</td><td>{monitors}</td></tr></table>\
<h2>By week</h2><table><tr><th>week</th><th>messages</th><th>automation</th><th>auto precision</th>\
<th>under-triage (auto)</th><th>over-triage</th><th>distress</th><th>within SLA</th><th>conflicts</th></tr>{rows}</table>\
{charts}</body></html>",
        seed = summary["seed"],
        messages = summary["messages"],
        weeks = summary["weeks"],
        nurses = summary["nurses"],
        retrains = escape(&retrains.join(", ")),
        under = summary["under_triage_auto"],
        auto = fmt("automation_rate"),
        prec = fmt("auto_precision_true"),
        over = fmt("over_triage_rate"),
        sla = fmt("distress_escalated_within_sla"),
        distress = summary["distress_escalations"],
        conflicts = summary["conflicts_detected"],
        monitors = escape(&summary["monitor_events"].to_string()),
        charts = charts.join(""),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use flywheel_core::policy::{ItemView, Outcome, Policy};
    use flywheel_core::{LabelSet, Prediction};
    use flywheel_sim::scenario::triage::messages::CLASSES;
    use flywheel_sim::scenario::triage::policy;
    use serde_json::{Value, json};

    fn compiled() -> Policy {
        let labels = LabelSet::parse(&CLASSES.map(String::from)).unwrap();
        Policy::from_json(&policy::policy(), &labels).unwrap()
    }

    /// Scores with `top` at `p` and the rest shared, `emergency` at least `e`.
    fn scores(top: &str, p: f64, e: f64) -> Prediction {
        let rest = (1.0 - p - if top == "emergency" { 0.0 } else { e }) / 2.0;
        Prediction {
            model: "m".into(),
            version: None,
            scores: CLASSES
                .iter()
                .map(|c| {
                    let s = if *c == top {
                        p
                    } else if *c == "emergency" {
                        e
                    } else {
                        rest
                    };
                    (c.to_string(), s)
                })
                .collect(),
            novelty: None,
        }
    }

    fn normal() -> Value {
        json!({"age": 40, "heart_rate": 72.0, "temp_c": 36.8, "spo2": 98.0, "systolic_bp": 120.0})
    }

    /// The triage policy, compiled by core, on a hand-made table of messages: which rule
    /// decides each, and that nothing suggesting an emergency is automated.
    #[test]
    fn the_triage_policy_on_a_table_of_cases() {
        let policy = compiled();
        let thresholds: HashMap<String, f64> = CLASSES.iter().map(|c| (c.to_string(), 0.9)).collect();
        let sure = |l: &str| scores(l, 0.97, 0.01);
        let cases: Vec<(&str, Value, Prediction, &str)> = vec![
            (
                "I have crushing chest pain since this morning",
                normal(),
                sure("self_care"),
                "distress",
            ),
            (
                "Heartburn after dinner, no chest pain.",
                normal(),
                sure("self_care"),
                "calibrated",
            ),
            (
                "Heartburn, no chest pain or shortness of breath.",
                normal(),
                sure("self_care"),
                "calibrated",
            ),
            (
                "no fever but chest pain all night",
                normal(),
                sure("self_care"),
                "distress",
            ),
            ("I CAN'T BREATHE", json!({"age": 60}), sure("self_care"), "distress"),
            (
                "not short of breath, just a cold",
                normal(),
                sure("self_care"),
                "calibrated",
            ),
            (
                "no thoughts of harming myself, just tired",
                normal(),
                sure("self_care"),
                "distress",
            ),
            ("took an overdose", json!({}), sure("self_care"), "distress"),
            (
                "feeling odd",
                json!({"age": 70, "heart_rate": 141.0, "spo2": 97.0}),
                sure("self_care"),
                "vitals_red",
            ),
            (
                "feeling odd",
                json!({"age": 70, "heart_rate": 80.0, "spo2": 88.0}),
                sure("self_care"),
                "vitals_red",
            ),
            // The conflict check: model, keywords and vital signs disagree.
            ("a runny nose", normal(), sure("urgent"), "conflict"),
            (
                "a high fever since last night",
                json!({"age": 30}),
                sure("self_care"),
                "conflict",
            ),
            (
                "a runny nose",
                json!({"age": 30, "heart_rate": 80.0, "temp_c": 38.6, "spo2": 98.0, "systolic_bp": 120.0}),
                sure("self_care"),
                "conflict",
            ),
            (
                "a high fever since last night",
                json!({"age": 30, "heart_rate": 110.0, "temp_c": 39.1, "spo2": 97.0, "systolic_bp": 118.0}),
                sure("urgent"),
                "calibrated",
            ),
            ("a high fever since last night", normal(), sure("urgent"), "conflict"),
            // Nothing suggesting an emergency is automated.
            (
                "a runny nose",
                normal(),
                scores("self_care", 0.9, 0.08),
                "suggests_emergency",
            ),
            (
                "my jaw aches",
                json!({"age": 60}),
                scores("emergency", 0.99, 0.99),
                "conflict",
            ),
            (
                "my jaw aches and I have a fever",
                json!({"age": 60}),
                scores("emergency", 0.99, 0.99),
                "suggests_emergency",
            ),
            // Below the threshold: review.
            ("a runny nose", normal(), scores("self_care", 0.6, 0.01), "review"),
        ];
        for (text, attributes, prediction, want) in cases {
            let payload = json!({"text": text});
            let d = policy.decide(
                &ItemView {
                    payload: &payload,
                    attributes: &attributes,
                    prediction: Some(&prediction),
                    thresholds: Some(&thresholds),
                },
                1,
                0.5,
            );
            assert_eq!(d.rule, want, "{text} {attributes} {prediction:?}: {:?}", d.reasons);
            assert!(
                d.reasons.iter().all(|r| !r.contains("could not be evaluated")),
                "{text}: {:?}",
                d.reasons
            );
            if let Outcome::Auto { label } = &d.outcome {
                assert_ne!(label, "emergency");
                assert_eq!(want, "calibrated");
            }
        }
    }

    #[test]
    fn the_distress_routes_are_top_priority_with_a_five_minute_sla() {
        let p = policy::policy();
        let distress = &p["rules"][0];
        assert_eq!(distress["name"], "distress");
        assert_eq!(distress["priority"], 100);
        assert_eq!(distress["sla_seconds"], 300);
        let max_other = p["rules"].as_array().unwrap()[1..]
            .iter()
            .filter_map(|r| r["priority"].as_i64())
            .max()
            .unwrap();
        assert!(max_other < 100);
    }
}
