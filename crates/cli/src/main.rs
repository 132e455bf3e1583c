//! The `flywheel` binary: the only place that knows argv, environment and exit codes.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flywheel_server::{AppState, SystemClock};

mod bench;
mod demo;
mod offline;

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
}

#[derive(Subcommand)]
enum DemoCommand {
    /// The SMS Spam Collection through the full flywheel: cold start, built-in model,
    /// simulated reviewers, calibrated thresholds; writes summary.json and report.html.
    Spam(demo::SpamArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FLYWHEEL_LISTEN", default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    /// Database URL: sqlite://PATH (embedded).
    #[arg(
        long,
        env = "FLYWHEEL_DATABASE",
        default_value = "sqlite://./flywheel-data/flywheel.db"
    )]
    database: String,
    /// The admin API key of a new database (otherwise one is generated and printed once).
    #[arg(long, env = "FLYWHEEL_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLYWHEEL_LOG")
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(serve(args))),
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(k) = &args.admin_key
        && k.len() < 16
    {
        anyhow::bail!("FLYWHEEL_ADMIN_KEY is too short: use at least 16 characters");
    }
    let store = flywheel_store::open(&args.database)
        .await
        .with_context(|| format!("cannot open database {}", args.database))?;
    let state = Arc::new(AppState::new(store, Arc::new(SystemClock)));
    if let Some(key) = flywheel_server::bootstrap_admin(&state, args.admin_key.as_deref()).await? {
        if args.admin_key.is_none() {
            println!("admin API key (shown once; keep it): {key}");
        } else {
            println!("admin API key: the one in FLYWHEEL_ADMIN_KEY");
        }
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal().context("cannot install the signal handlers")?;
    println!("flywheel listening on http://{addr} (database {})", args.database);
    println!("console: http://{addr}/login (the workbench and the dashboard)");
    flywheel_server::serve(listener, state, shutdown).await?;
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
