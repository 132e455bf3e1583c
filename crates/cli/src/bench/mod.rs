//! `flywheel bench`: a load generator in the same binary. A real HTTP client over loopback
//! drives a real server — its own child `flywheel serve` on a fresh SQLite database, or
//! the nodes named with `--server` — and reports throughput and latency percentiles, so
//! every figure can be set beside the `baseline` (what the HTTP stack alone does here).
//!
//! `server.rs` starts the server a load runs against, `load.rs` is the load (the project,
//! its items and reviewers, the loops that time each request), `offline.rs` the scenarios
//! without a server (`ds-fit`, `model`); `crash/`, `export.rs` and `webhooks.rs` are
//! scenarios of their own. This module parses the arguments, runs a load and reports it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod crash;
mod export;
mod load;
mod offline;
mod search;
mod server;
mod webhooks;

use anyhow::bail;
use flywheel_sim::Client as Api;
use serde::Serialize;

use load::{bench_project, bench_reviewers, decide_loop, import_loop, prefill, review_loop, review_next_loop};
use offline::{ds_fit, model};
use server::{Database, OwnServer, serve_child, stop_child, target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `GET /healthz`: the HTTP stack alone, for ratios.
    Baseline,
    /// Single-item submits with predictions, policy of three rules.
    Decisions,
    /// Batches of `--batch` items (1,000 unless told).
    Import,
    /// Reviewers in claim → answer loops on a queue pre-filled with `--items` tasks.
    Claims,
    /// As `claims`, but each answer leases the next task in the same request and commit
    /// ("submit and next", as the workbench does): one round trip per cycle.
    ClaimsNext,
    /// Decisions and claim → answer loops together.
    Mixed,
    /// No server: one Dawid–Skene fit (crowd-kit's stopping rule) over synthetic answers
    /// (`--items` answers from `--workers` reviewers, `--labels` labels), timed on one core.
    DsFit,
    /// Webhook deliveries: `--concurrency` endpoints each deliver a backlog of `--items`
    /// events to a receiver in this process that answers at once.
    Webhooks,
    /// No server: the built-in model on one core — featurise and score `--items` short
    /// synthetic texts, then learn from them one at a time.
    Model,
    /// `--items` items, then one streamed export per format (rows/s, server RSS).
    Export,
    /// Mixed load while the server is SIGKILLed `--kills` times at seeded moments and
    /// restarted on the same database; then an audit of everything acknowledged.
    Crash,
    /// `--items` items, then the item search's worst cases (text or a label no item has)
    /// and a search every item matches, on `--database`.
    Search,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[arg(value_enum)]
    scenario: Scenario,
    /// A running node to load (repeat for several nodes; connections are spread over
    /// them). Without it, the bench starts its own server on a fresh SQLite database.
    #[arg(long)]
    server: Vec<String>,
    /// The admin key of `--server` (a started server gets one of its own).
    #[arg(long, env = "FLYWHEEL_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Concurrent connections (reviewers, in `claims`).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of load, after setup.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Open tasks to pre-fill for `claims` (a tenth of it for `mixed`; items to export for
    /// `export`). BENCHMARKS.md's claim figures pass 1,000,000 (a pre-fill of minutes).
    #[arg(long, default_value_t = 100_000)]
    items: usize,
    /// Items per request in `import`.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1000))]
    batch: u64,
    /// One JSON line instead of a table.
    #[arg(long)]
    json: bool,
    /// Reviewers in the synthetic `ds-fit` data.
    #[arg(long, default_value_t = 10_000)]
    workers: usize,
    /// Labels in the synthetic `ds-fit` data.
    #[arg(long, default_value_t = 5)]
    labels: usize,
    /// `crash`: how many times the server is killed.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// `crash`, `search`: `sqlite` (a fresh file) or a `postgres://…` URL (a fresh schema
    /// in it, dropped afterwards).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// `crash`: the seed of the kill schedule and the clients' choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Latency samples (µs) and errors of one kind of operation.
#[derive(Default)]
struct Samples {
    micros: Vec<u32>,
    errors: u64,
    /// How many units one sample stands for (items in a batch).
    units: u64,
}

#[derive(Default)]
struct Recorder(BTreeMap<&'static str, Samples>);

impl Recorder {
    fn ok(&mut self, op: &'static str, started: Instant, units: u64) {
        let s = self.0.entry(op).or_default();
        s.micros
            .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        s.units += units;
    }

    fn err(&mut self, op: &'static str) {
        self.0.entry(op).or_default().errors += 1;
    }

    fn merge(&mut self, other: Recorder) {
        for (k, v) in other.0 {
            let s = self.0.entry(k).or_default();
            s.micros.extend(v.micros);
            s.errors += v.errors;
            s.units += v.units;
        }
    }
}

#[derive(Debug, Serialize)]
struct OpStats {
    count: u64,
    throughput_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    errors: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    scenario: String,
    throughput_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    errors: u64,
    operations: BTreeMap<String, OpStats>,
    concurrency: usize,
    duration_s: f64,
    nodes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_rss_idle_mb: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_rss_loaded_mb: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    open_tasks_at_start: Option<usize>,
    /// CPU time of the started server per unit of throughput, in microseconds, by thread
    /// (`total`, the SQLite `writer`, the async `workers`, ...): a figure that varies far
    /// less with a noisy machine than throughput does.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    server_cpu_us_per_op: BTreeMap<String, f64>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn stats(s: &mut Samples, secs: f64) -> OpStats {
    s.micros.sort_unstable();
    OpStats {
        count: s.units,
        throughput_per_s: s.units as f64 / secs,
        p50_ms: percentile(&s.micros, 0.50),
        p95_ms: percentile(&s.micros, 0.95),
        p99_ms: percentile(&s.micros, 0.99),
        errors: s.errors,
    }
}

/// The scenario as the command line spells it (`claims-next`).
fn scenario_name(s: Scenario) -> String {
    use clap::ValueEnum;
    s.to_possible_value()
        .map_or_else(|| format!("{s:?}"), |v| v.get_name().to_string())
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.scenario == Scenario::DsFit {
        return ds_fit(args.items, args.workers, args.labels, args.json);
    }
    if args.scenario == Scenario::Model {
        return model(args.items, args.json);
    }
    if args.scenario == Scenario::Webhooks {
        return webhooks::run(&args).await;
    }
    if args.scenario == Scenario::Export {
        return export::run(&args).await;
    }
    if args.scenario == Scenario::Crash {
        return crash::run(&args).await;
    }
    if args.scenario == Scenario::Search {
        return search::run(&args).await;
    }
    if args.concurrency == 0 || args.duration <= 0.0 {
        bail!("--concurrency and --duration must be positive");
    }
    let (own, nodes, admin) = target(&args)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency + 8)
        .build()?;
    let api = Api::with_http(http, nodes, admin);
    let project = format!("bench-{}-{}", scenario_name(args.scenario), std::process::id());
    let svc = bench_project(&api, &project).await?;
    let rss_idle = own.as_ref().and_then(OwnServer::rss_mb);
    let mut open_at_start = None;
    let reviewers = match args.scenario {
        Scenario::Claims | Scenario::ClaimsNext | Scenario::Mixed => {
            let n = if args.scenario != Scenario::Mixed {
                args.items
            } else {
                args.items / 10
            };
            prefill(&api, &svc, &project, n).await?;
            open_at_start = Some(n.div_ceil(1000) * 1000);
            let k = if args.scenario != Scenario::Mixed {
                args.concurrency
            } else {
                args.concurrency.div_ceil(2)
            };
            bench_reviewers(&api, &project, k).await?
        }
        _ => vec![],
    };
    let rss_loaded_before = own.as_ref().and_then(OwnServer::rss_mb);
    let cpu_before = own.as_ref().map(OwnServer::cpu_by_thread).unwrap_or_default();

    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.duration);
    let mut handles = vec![];
    for w in 0..args.concurrency {
        let (api, svc, project) = (api.clone(), svc.clone(), project.clone());
        handles.push(match args.scenario {
            Scenario::Baseline => tokio::spawn(async move {
                let mut rec = Recorder::default();
                let url = format!("{}/healthz", api.node(w));
                while Instant::now() < until {
                    let t = Instant::now();
                    match api.http.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            rec.ok("healthz", t, 1);
                        }
                        _ => rec.err("healthz"),
                    }
                }
                rec
            }),
            Scenario::Decisions => tokio::spawn(decide_loop(api, w, svc, project, until)),
            Scenario::Import => tokio::spawn(import_loop(api, w, svc, project, until, None, args.batch as usize)),
            Scenario::Claims => tokio::spawn(review_loop(api, w, reviewers[w].clone(), project, until)),
            Scenario::ClaimsNext => tokio::spawn(review_next_loop(api, w, reviewers[w].clone(), project, until)),
            Scenario::Mixed if w % 2 == 1 => tokio::spawn(decide_loop(api, w, svc, project, until)),
            Scenario::Mixed => tokio::spawn(review_loop(api, w, reviewers[w / 2].clone(), project, until)),
            Scenario::DsFit
            | Scenario::Model
            | Scenario::Webhooks
            | Scenario::Export
            | Scenario::Crash
            | Scenario::Search => {
                unreachable!("returned before the load")
            }
        });
    }
    let mut all = Recorder::default();
    for h in handles {
        all.merge(h.await?);
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = own.as_ref().map(OwnServer::cpu_by_thread).unwrap_or_default();
    let rss_loaded = match (own.as_ref().and_then(OwnServer::rss_mb), rss_loaded_before) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut operations: BTreeMap<String, OpStats> =
        all.0.iter_mut().map(|(k, v)| (k.to_string(), stats(v, secs))).collect();
    let main = match args.scenario {
        Scenario::Baseline => vec!["healthz"],
        Scenario::Decisions => vec!["decide"],
        Scenario::Import => vec!["batch"],
        Scenario::Claims | Scenario::ClaimsNext => vec!["cycle"],
        Scenario::Mixed => vec!["decide", "cycle"],
        Scenario::DsFit
        | Scenario::Model
        | Scenario::Webhooks
        | Scenario::Export
        | Scenario::Crash
        | Scenario::Search => vec![],
    };
    let mut merged = Samples::default();
    for m in &main {
        if let Some(s) = all.0.get(m) {
            merged.micros.extend(&s.micros);
            merged.units += s.units;
        }
    }
    let head = stats(&mut merged, secs);
    let units = merged.units as f64;
    let server_cpu_us_per_op: BTreeMap<String, f64> = cpu_after
        .iter()
        .filter(|_| units > 0.0)
        .map(|(k, after)| (k.clone(), (after - cpu_before.get(k).unwrap_or(&0.0)) * 1e6 / units))
        .collect();
    let errors = operations.values().map(|o| o.errors).sum();
    if let Some(o) = operations.get_mut("claim_empty") {
        o.errors = 0;
    }
    let report = Report {
        scenario: scenario_name(args.scenario),
        throughput_per_s: head.throughput_per_s,
        p50_ms: head.p50_ms,
        p95_ms: head.p95_ms,
        p99_ms: head.p99_ms,
        errors,
        operations,
        concurrency: args.concurrency,
        duration_s: secs,
        nodes: api.node_count(),
        server_rss_idle_mb: rss_idle,
        server_rss_loaded_mb: rss_loaded,
        open_tasks_at_start: open_at_start,
        server_cpu_us_per_op,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    if report.throughput_per_s == 0.0 {
        bail!("no operation succeeded ({} errors)", report.errors);
    }
    Ok(())
}

fn print_table(r: &Report) {
    println!(
        "scenario {} · {} connections · {:.1} s · {} node(s)",
        r.scenario, r.concurrency, r.duration_s, r.nodes
    );
    println!(
        "{:<12} {:>10} {:>12} {:>9} {:>9} {:>9} {:>7}",
        "operation", "count", "per second", "p50 ms", "p95 ms", "p99 ms", "errors"
    );
    for (name, o) in &r.operations {
        println!(
            "{:<12} {:>10} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            name, o.count, o.throughput_per_s, o.p50_ms, o.p95_ms, o.p99_ms, o.errors
        );
    }
    println!(
        "throughput {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
        r.throughput_per_s, r.p50_ms, r.p99_ms, r.errors
    );
    if let (Some(idle), Some(loaded)) = (r.server_rss_idle_mb, r.server_rss_loaded_mb) {
        println!("server RSS: {idle:.1} MB idle, {loaded:.1} MB loaded");
    }
    if !r.server_cpu_us_per_op.is_empty() {
        let parts: Vec<String> = r
            .server_cpu_us_per_op
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect();
        println!("server CPU µs per op: {}", parts.join(", "));
    }
}
