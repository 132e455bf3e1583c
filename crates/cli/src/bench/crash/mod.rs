//! `flywheel bench crash`: a crash campaign. The bench starts its own `flywheel serve` on
//! a fresh database (a SQLite file, or a new schema of a PostgreSQL database), drives a
//! mixed load from several clients — submitters of items with external ids, reviewers
//! that claim, heartbeat and answer, a label-feed reader and an event-feed reader — and
//! SIGKILLs the server `--kills` times at moments drawn from `--seed`, restarting it on
//! the same database each time. The clients keep what the server acknowledged (a 2xx):
//! external ids, review ids, and the feed positions they read, resuming from their saved
//! cursors after each kill. A request that got no answer is retried with the same
//! idempotency keys (external ids, review id) while the load runs.
//!
//! Then [`audit`]: every acknowledged item present exactly once, every acknowledged answer
//! stored once, both feeds gap-free and without duplicates when read from the start, the
//! resumed readers missed nothing, no task ever had two live leases, and the open tasks'
//! counters agree with the items. Any violation fails the command with a report.
//!
//! The kill schedule (the pauses between kills) and the clients' choices come from the
//! seed; where in the server's work a kill lands still depends on the machine's timing.
//!
//! `load.rs` is the load (the clients and what they keep), `audit.rs` the audit (what
//! survived, read back and checked); this module starts, kills and restarts the server and
//! reports.

use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flywheel_sim::Rng;
use serde_json::{Value, json};

use super::{BenchArgs, Database, serve_child, stop_child};

mod audit;
mod load;

use audit::{audit, gather};
use load::{Ctx, Feed, FeedReader, Ledger, follow, reviewer, submitter};

const PROJECT: &str = "crash";
const ADMIN_KEY: &str = "crash-admin-key-0123456789abcdef";
const LEASE_SECONDS: i64 = 10;
const SUBMITTERS: usize = 2;
const REVIEWERS: usize = 4;
/// The pause before a request that got no answer is sent again.
const RETRY: Duration = Duration::from_millis(50);

/// The server under test: a child restarted on the same database after each kill. Its
/// base URL changes with each start (port 0); clients read it before every request.
struct Node {
    db: String,
    child: Child,
    url: Arc<RwLock<String>>,
}

impl Node {
    async fn start(db: String) -> anyhow::Result<Self> {
        let d = db.clone();
        let (child, url) = tokio::task::spawn_blocking(move || serve_child(&d, ADMIN_KEY)).await??;
        Ok(Self {
            db,
            child,
            url: Arc::new(RwLock::new(url)),
        })
    }

    /// SIGKILL, then a new server on the same database; how long until it listened.
    async fn kill_and_restart(&mut self) -> anyhow::Result<Duration> {
        self.child.kill().context("cannot kill the server")?;
        self.child.wait()?;
        let started = Instant::now();
        let db = self.db.clone();
        let (child, url) = tokio::task::spawn_blocking(move || serve_child(&db, ADMIN_KEY))
            .await?
            .context("the server did not come back after a kill")?;
        self.child = child;
        *self.url.write().expect("url") = url;
        Ok(started.elapsed())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

pub(super) async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if !args.server.is_empty() {
        bail!("the crash campaign runs (and kills) its own server");
    }
    let db = Database::fresh(&args.database, "crash").await?;
    let result = campaign(args, &db).await;
    db.drop_schema().await;
    let (report, failed) = result?;
    if args.json {
        println!("{report}");
    } else {
        print_report(&report);
    }
    if failed {
        bail!("the audit found violations (above)");
    }
    Ok(())
}

async fn campaign(args: &BenchArgs, db: &Database) -> anyhow::Result<(Value, bool)> {
    let started = Instant::now();
    let mut node = Node::start(db.url.clone()).await?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let setup = flywheel_sim::Client::with_http(http.clone(), vec![node.url.read().expect("url").clone()], ADMIN_KEY);
    setup
        .create_project(
            PROJECT,
            &["ham".into(), "spam".into()],
            &json!({"rules": [
                {"name": "confident", "when": "confidence >= 0.9", "action": "auto"},
                {"name": "review", "when": "true", "action": "review", "queue": "standard", "tier": 1}],
                "lease_seconds": LEASE_SECONDS}),
        )
        .await?;
    let svc = setup.service_key(PROJECT).await?;
    let mut keys = vec![];
    for i in 0..REVIEWERS {
        keys.push(setup.reviewer(&format!("crash-r{i}"), &[1], &[PROJECT]).await?);
    }
    let ctx = Arc::new(Ctx {
        http,
        url: node.url.clone(),
        stop: AtomicBool::new(false),
        ledger: Mutex::new(Ledger::default()),
        unanswered: AtomicU64::new(0),
        server_errors: AtomicU64::new(0),
        svc,
    });
    let mut clients = vec![];
    for w in 0..SUBMITTERS {
        clients.push(tokio::spawn(submitter(ctx.clone(), w)));
    }
    for (w, key) in keys.into_iter().enumerate() {
        clients.push(tokio::spawn(reviewer(ctx.clone(), w, key, args.seed)));
    }
    let labels = tokio::spawn(follow(ctx.clone(), FeedReader::new(Feed::Labels, false)));
    let events = tokio::spawn(follow(ctx.clone(), FeedReader::new(Feed::Events, false)));

    // The kill schedule: pauses of 0.5–2.5 s, from the seed.
    let mut rng = Rng::new(args.seed);
    let pauses: Vec<f64> = (0..args.kills).map(|_| 0.5 + 2.0 * rng.unit()).collect();
    let mut restarts = vec![];
    for pause in &pauses {
        tokio::time::sleep(Duration::from_secs_f64(*pause)).await;
        restarts.push(node.kill_and_restart().await?.as_secs_f64());
    }
    // A last stretch of load on the last server, then the clients stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    ctx.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await??;
    }
    let load_s = started.elapsed().as_secs_f64();
    let mut labels = labels.await??;
    let mut events = events.await??;

    // The audit's reads: the feeds from the start, then the resumed readers catch up.
    let mut all_labels = FeedReader::new(Feed::Labels, true);
    all_labels.catch_up(&ctx).await?;
    let mut all_events = FeedReader::new(Feed::Events, true);
    all_events.catch_up(&ctx).await?;
    labels.catch_up(&ctx).await?;
    events.catch_up(&ctx).await?;
    let record = gather(&ctx, all_labels, all_events, labels, events).await?;
    let checks = audit(&record);
    let failed = checks.iter().any(|c| !c.ok);
    let ledger = ctx.ledger.lock().expect("ledger");
    let report = json!({
        "scenario": "crash",
        "database": if db.pg.is_some() { "postgres" } else { "sqlite" },
        "seed": args.seed,
        "kills": args.kills,
        "kill_pauses_s": pauses,
        "restart_s_mean": restarts.iter().sum::<f64>() / restarts.len().max(1) as f64,
        "restart_s_max": restarts.iter().copied().fold(0.0, f64::max),
        "items_acknowledged": ledger.items.len(),
        "items_stored": record.exported.len(),
        "answers_acknowledged": ledger.answers.len(),
        "answers_refused": ledger.answers_refused,
        "heartbeats_acknowledged": ledger.heartbeats,
        "events": record.events.len(),
        "labels": record.labels.len(),
        "open_tasks": record.open_tasks,
        "open_items_detailed": record.details.len(),
        "requests_unanswered": ctx.unanswered.load(Ordering::Relaxed),
        "server_errors": ctx.server_errors.load(Ordering::Relaxed),
        "load_s": load_s,
        "duration_s": started.elapsed().as_secs_f64(),
        "audit": checks,
        "ok": !failed,
    });
    Ok((report, failed))
}

fn print_report(r: &Value) {
    println!(
        "crash campaign on {} · seed {} · {} kills (restart {:.2} s mean, {:.2} s max) · {:.1} s of load",
        r["database"].as_str().unwrap_or_default(),
        r["seed"],
        r["kills"],
        r["restart_s_mean"].as_f64().unwrap_or(0.0),
        r["restart_s_max"].as_f64().unwrap_or(0.0),
        r["load_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "acknowledged: {} items, {} answers, {} heartbeats ({} answers refused); stored: {} items, {} events, {} labels; {} requests unanswered, {} 5xx",
        r["items_acknowledged"],
        r["answers_acknowledged"],
        r["heartbeats_acknowledged"],
        r["answers_refused"],
        r["items_stored"],
        r["events"],
        r["labels"],
        r["requests_unanswered"],
        r["server_errors"]
    );
    let empty = vec![];
    for c in r["audit"].as_array().unwrap_or(&empty) {
        let ok = c["ok"].as_bool().unwrap_or(false);
        println!(
            "  {:<32} {}",
            c["name"].as_str().unwrap_or_default(),
            if ok { "ok" } else { "VIOLATED" }
        );
        for v in c["violations"].as_array().unwrap_or(&empty) {
            println!("      {}", v.as_str().unwrap_or_default());
        }
    }
}
