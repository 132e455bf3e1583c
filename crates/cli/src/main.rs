//! The `flywheel` binary: the only place that knows argv, environment and exit codes.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flywheel_server::{AppState, SystemClock};

use crate::config::{ServeArgs, Settings};

mod bench;
mod config;
mod copy;
mod demo;
mod demo_fraud;
mod live_demo;
mod moderation;
mod offline;
mod simulate;
mod transfer;
mod workload;

/// mimalloc instead of the system allocator: requests allocate many small short-lived
/// buffers, and glibc's malloc showed up at ~8% of the server's CPU in the decisions bench.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "flywheel",
    version,
    about = "Human-in-the-loop decisions: policy, review, and the labels that flow back"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP API and background workers).
    Serve(ServeArgs),
    /// Load a server over HTTP and report throughput and latency.
    Bench(bench::BenchArgs),
    /// Run a demo scenario end to end and write its report.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Inter-annotator agreement of a crowd answers file (JSON on stdout).
    Agreement(offline::AgreementArgs),
    /// Aggregate a crowd answers file into one label per task (JSON on stdout).
    Aggregate(offline::AggregateArgs),
    /// Write a project's items (decisions, labels, answers) to stdout: jsonl, csv or
    /// label-studio.
    Export(transfer::ExportArgs),
    /// Read a Label Studio export or a `flywheel export --format jsonl` file into a
    /// project (idempotent by external id; a bad row refuses the file, naming its line).
    Import(transfer::ImportArgs),
    /// Where reviewer time goes in a window: time on task by failure category, final
    /// label, queue, tier and reviewer, and what stands out (a table, or `--json`).
    Workload(workload::WorkloadArgs),
    /// Copy a SQLite database into an empty PostgreSQL one, verified table by table.
    Copy(copy::CopyArgs),
    /// The capacity planner: Erlang C staffing for one queue, or a policy simulated on a
    /// score distribution with tiers of reviewers.
    #[command(subcommand)]
    Simulate(simulate::SimulateCommand),
    /// The settings file of `flywheel serve --config`.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a commented flywheel.toml with every setting at its default.
    Example,
}

#[derive(Subcommand)]
enum DemoCommand {
    /// The SMS Spam Collection through the full flywheel: cold start, built-in model,
    /// simulated reviewers, calibrated thresholds; writes summary.json and report.html.
    Spam(demo::SpamArgs),
    /// Card transactions through rules, the built-in model and investigators whose
    /// findings train it within seconds; a new fraud pattern mid-stream; the same stream
    /// with the model frozen beside it. Writes summary.json and report.html.
    Fraud(demo_fraud::FraudArgs),
    /// Clinical triage, prevent / detect / correct: synthetic patient messages, distress
    /// keywords and vital signs escalating to nurses, a conflicting-outcomes check, weekly
    /// retraining; writes summary.json and report.html.
    Triage(demo::TriageArgs),
    /// Real tweets (hate / offensive / neither) through tiered review: L1 with overlap,
    /// L2 adjudication, experts for novel content, gold and holds, a new kind of content
    /// and a guideline clarification; writes summary.json and report.html.
    Moderation(moderation::ModerationArgs),
}

fn main() -> ExitCode {
    // Before any HTTP client is built (bench, transfer, copy, serve's webhooks): see flywheel-tls.
    flywheel_tls::install();
    let cli = Cli::parse();
    // `serve` takes its log filter from its settings; the other commands from FLYWHEEL_LOG.
    let log = match &cli.command {
        Command::Serve(_) | Command::Config(_) => None,
        _ => Some(
            tracing_subscriber::EnvFilter::try_from_env("FLYWHEEL_LOG").unwrap_or_else(|_| config::DEFAULT_LOG.into()),
        ),
    };
    if let Some(filter) = log {
        init_tracing(filter, config::LogFormat::Text);
    }
    let result = match cli.command {
        Command::Serve(mut args) => {
            let demo = args.demo.take().map(|d| (d, args.data.take()));
            let settings = match Settings::resolve(args) {
                Ok(s) => s,
                Err(e) => {
                    // A usage error, like clap's own: exit code 2.
                    eprintln!("flywheel: {e}");
                    return ExitCode::from(2);
                }
            };
            init_tracing(settings.log_filter(), settings.log_format);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")
                .and_then(|rt| rt.block_on(serve(settings, demo)))
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::Bench(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(bench::run(args))),
        Command::Demo(DemoCommand::Spam(args)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(demo::spam(args))),
        Command::Demo(DemoCommand::Fraud(args)) => {
            if let Err(e) = args.check() {
                // A usage error, like clap's own: exit code 2.
                eprintln!("flywheel: {e}");
                return ExitCode::from(2);
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")
                .and_then(|rt| rt.block_on(demo_fraud::fraud(args)))
        }
        Command::Demo(DemoCommand::Triage(args)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(demo::triage(args))),
        Command::Demo(DemoCommand::Moderation(args)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(moderation::run(args))),
        Command::Export(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(transfer::export(args))),
        Command::Import(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(transfer::import(args))),
        Command::Workload(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(workload::run(args))),
        Command::Copy(args) => {
            return match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt.block_on(copy::run(args)),
                Err(e) => {
                    eprintln!("flywheel: cannot start the async runtime: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Simulate(cmd) => return simulate::run(cmd),
        Command::Agreement(args) => offline::agreement(args),
        Command::Aggregate(args) => offline::aggregate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flywheel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: tracing_subscriber::EnvFilter, format: config::LogFormat) {
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Text => log.init(),
        config::LogFormat::Json => log.json().init(),
    }
}

async fn serve(args: Settings, demo: Option<(live_demo::Demo, Option<std::path::PathBuf>)>) -> anyhow::Result<()> {
    if let Some(k) = &args.admin_key
        && k.len() < 16
    {
        anyhow::bail!(
            "the admin key (FLYWHEEL_ADMIN_KEY, --admin-key or admin_key) is too short: use at least 16 characters"
        );
    }
    // A CA file that cannot be used stops the start, before the database is touched.
    let webhook_tls = match &args.webhooks_ca_file {
        Some(path) => Some(Arc::new(
            flywheel_tls::read_ca_file(path)
                .and_then(|certs| flywheel_tls::client_config(&certs))
                .map_err(|e| {
                    anyhow::anyhow!("webhooks.ca_file (--webhooks-ca-file, FLYWHEEL_WEBHOOKS_CA_FILE): {e}")
                })?,
        )),
        None => None,
    };
    // The ports are taken before the database is touched: a port in use stops the start
    // before a new database is made, its admin key printed "once" by a start that then
    // fails, or a demo seeded.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let metrics_listener = match args.metrics_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} for metrics"))?,
        ),
        None => None,
    };
    // The default database's directory is made on first start; any other path's directory
    // must exist (the store refuses a missing one, so a typo is not silently created).
    if args.database == config::DEFAULT_DATABASE
        && let Some(dir) = std::path::Path::new(args.database.trim_start_matches("sqlite://")).parent()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let store = flywheel_store::open(&args.database)
        .await
        .with_context(|| format!("cannot open database {}", args.database))?;
    let mut state = AppState::new(store, Arc::new(SystemClock));
    state.webhooks.allow_private = args.webhooks_allow_private;
    state.client_ip_header = args.client_ip_header.clone();
    state.rule_budget.per_item = Some(std::time::Duration::from_millis(args.rule_budget_ms));
    state.rule_budget.blocking_batch = args.blocking_batch;
    state.rate_limits = flywheel_server::app::ratelimit::RateLimits::new(args.rate_limits);
    if let Some(tls) = webhook_tls {
        state.webhook_tls = tls;
    }
    let state = Arc::new(state);
    if let Some(key) = flywheel_server::bootstrap_admin(&state, args.admin_key.as_deref()).await? {
        if args.admin_key.is_none() {
            println!("admin API key (shown once; keep it): {key}");
        } else {
            println!("admin API key: the one given (FLYWHEEL_ADMIN_KEY, --admin-key or admin_key)");
        }
    }
    let demo = match demo {
        Some((live_demo::Demo::Spam, data)) => {
            let (messages, source) = live_demo::messages(data.as_deref())?;
            let seeded = live_demo::seed(&state, &messages)
                .await
                .context("cannot seed the demo")?;
            println!(
                "demo: project {} ({}), messages from {source}, one every {} s",
                live_demo::PROJECT,
                if seeded.created { "new" } else { "reused" },
                live_demo::EVERY.as_secs()
            );
            for (name, password) in &seeded.reviewers {
                println!("demo: reviewer {name}, password {password}");
            }
            Some(messages)
        }
        None => None,
    };
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal().context("cannot install the signal handlers")?;
    // One signal stops both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let metrics = match metrics_listener {
        Some(listener) => {
            println!("metrics: http://{}/metrics", listener.local_addr()?);
            let mut stop = stop_rx.clone();
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            Some(tokio::spawn(flywheel_server::serve_metrics(
                listener,
                state.clone(),
                stopped,
            )))
        }
        None => None,
    };
    if let Some(messages) = demo {
        tokio::spawn(live_demo::stream(state.clone(), messages));
    }
    println!("flywheel listening on http://{addr} (database {})", args.database);
    println!("console: http://{addr}/login (the workbench and the dashboard)");
    let options = flywheel_server::ServeOptions {
        limits: args.limits(),
        ..Default::default()
    };
    flywheel_server::serve_with(listener, state, shutdown, options).await?;
    if let Some(m) = metrics {
        m.await.context("the metrics listener failed")??;
    }
    println!("flywheel stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called (before
/// the server says it is listening), so a signal sent right after start is not lost to the
/// default action.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}
