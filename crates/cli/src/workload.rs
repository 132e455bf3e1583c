//! `flywheel workload`: where reviewer time goes, from a server's
//! `GET /v1/projects/{p}/workload` — printed as one table per dimension with the findings
//! underneath, or the server's JSON as it is (`--json`). The figures are the server's.

use std::fmt::Write;

use anyhow::Context;
use serde_json::Value;

use crate::transfer::{ServerArgs, refusal, url};

#[derive(clap::Args, Debug)]
pub struct WorkloadArgs {
    #[command(flatten)]
    to: ServerArgs,
    /// Answers at or after this time (RFC 3339 or epoch milliseconds); default: a day
    /// before --until.
    #[arg(long)]
    since: Option<String>,
    /// Answers before this time; default: now.
    #[arg(long)]
    until: Option<String>,
    /// Print the server's JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// The dimensions in the order they are printed, with their headings.
const DIMENSIONS: [(&str, &str); 5] = [
    ("failure_category", "failure category"),
    ("label", "final label"),
    ("queue", "queue"),
    ("tier", "tier"),
    ("reviewer", "reviewer"),
];

pub async fn run(args: WorkloadArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    for (k, v) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = v {
            query.push((k, v.as_str()));
        }
    }
    let resp = reqwest::Client::new()
        .get(url(&args.to, "workload", &query)?)
        .bearer_auth(&args.to.key)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", args.to.server))?;
    if !resp.status().is_success() {
        return Err(refusal(resp).await);
    }
    let report: Value = resp.json().await.context("the server's reply is not JSON")?;
    if args.json {
        println!("{report}");
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

fn num(v: &Value, field: &str) -> f64 {
    v.get(field).and_then(Value::as_f64).unwrap_or(0.0)
}

/// The report as text: a heading line, one table per dimension (rows in the server's
/// order: by time share), then the findings.
pub fn table(r: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} answers, {:.1} s on task, from {} to {}",
        r.get("answers").and_then(Value::as_u64).unwrap_or(0),
        num(r, "seconds"),
        r.get("since").and_then(Value::as_str).unwrap_or("?"),
        r.get("until").and_then(Value::as_str).unwrap_or("?"),
    );
    for (field, heading) in DIMENSIONS {
        let rows = r.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
        let keys: Vec<String> = rows
            .iter()
            .map(|x| match x.get("key").and_then(Value::as_str) {
                Some(k) => k.to_string(),
                None => "-".into(),
            })
            .collect();
        let width = keys
            .iter()
            .map(|k| k.chars().count())
            .chain([heading.len()])
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "\n{heading:<width$}  {:>7}  {:>10}  {:>6}  {:>8}  {:>8}  {:>9}  {:>9}",
            "answers", "seconds", "share", "median", "p90", "disagreed", "escalated"
        );
        if rows.is_empty() {
            let _ = writeln!(out, "(no answers)");
        }
        for (x, key) in rows.iter().zip(&keys) {
            let _ = writeln!(
                out,
                "{key:<width$}  {:>7}  {:>10.1}  {:>5.1}%  {:>8.1}  {:>8.1}  {:>8.1}%  {:>8.1}%",
                x.get("answers").and_then(Value::as_u64).unwrap_or(0),
                num(x, "seconds"),
                num(x, "time_share") * 100.0,
                num(x, "median_seconds"),
                num(x, "p90_seconds"),
                num(x, "disagreement_rate") * 100.0,
                num(x, "escalation_rate") * 100.0,
            );
        }
    }
    let findings = r.get("findings").and_then(Value::as_array).cloned().unwrap_or_default();
    if findings.is_empty() {
        let _ = writeln!(out, "\nNothing stands out.");
    } else {
        let _ = writeln!(out, "\nWhat stands out:");
        for f in findings {
            let _ = writeln!(out, "- {}", f.get("text").and_then(Value::as_str).unwrap_or(""));
        }
    }
    out
}
