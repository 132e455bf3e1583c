//! `flywheel bench`: a load generator in the same binary. A real HTTP client over loopback
//! drives a real server — its own child `flywheel serve` on a fresh SQLite database, or
//! the nodes named with `--server` — and reports throughput and latency percentiles, so
//! every figure can be set beside the `baseline` (what the HTTP stack alone does here).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod crash;
mod search;
mod webhooks;

use anyhow::{Context, bail};
use flywheel_sim::{Client as Api, Rng};

mod export;
use serde::Serialize;
use serde_json::{Value, json};

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

/// Times one Dawid–Skene fit over `answers` synthetic answers (five per task) from
/// `workers` reviewers of accuracy 0.55–0.95, with `labels` labels.
fn ds_fit(answers: usize, workers: usize, labels: usize, json: bool) -> anyhow::Result<()> {
    use flywheel_core::aggregate::{DsInit, Stopping, dawid_skene};
    use flywheel_core::crowd::CrowdData;
    if workers < 5 || labels < 2 || answers < 5 {
        bail!("ds-fit needs at least 5 workers, 2 labels and 5 answers");
    }
    let mut rng = Rng::new(7);
    let accuracy: Vec<f64> = (0..workers).map(|_| 0.55 + 0.4 * rng.unit()).collect();
    let names: Vec<String> = (0..workers).map(|w| format!("w{w}")).collect();
    let label_names: Vec<String> = (0..labels).map(|l| l.to_string()).collect();
    let tasks = answers / 5;
    let task_names: Vec<String> = (0..tasks).map(|t| format!("t{t}")).collect();
    let mut rows = Vec::with_capacity(tasks * 5);
    for task in &task_names {
        let truth = rng.below(labels);
        let mut seen = [usize::MAX; 5];
        for slot in 0..5 {
            let mut w = rng.below(workers);
            while seen.contains(&w) {
                w = rng.below(workers);
            }
            seen[slot] = w;
            let l = if rng.unit() < accuracy[w] {
                truth
            } else {
                (truth + 1 + rng.below(labels - 1)) % labels
            };
            rows.push((names[w].as_str(), task.as_str(), label_names[l].as_str()));
        }
    }
    let t0 = Instant::now();
    let data = CrowdData::from_answers(rows.iter().copied()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let build_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let fit = dawid_skene(&data, DsInit::MajorityVote, Stopping::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let fit_s = t1.elapsed().as_secs_f64();
    let report = json!({"scenario": "ds-fit", "answers": data.n_answers(), "tasks": data.n_tasks(), "workers": data.n_workers(),
        "labels": data.n_labels(), "rounds": fit.rounds, "fit_s": fit_s, "per_round_ms": fit_s * 1000.0 / fit.rounds.max(1) as f64,
        "build_index_s": build_s, "log_likelihood": fit.log_likelihood});
    if json {
        println!("{report}");
    } else {
        println!(
            "Dawid–Skene over {} answers, {} workers, {} labels: {} rounds in {:.3} s ({:.1} ms a round); indexing the answers took {:.3} s",
            data.n_answers(),
            data.n_workers(),
            data.n_labels(),
            fit.rounds,
            fit_s,
            fit_s * 1000.0 / fit.rounds.max(1) as f64,
            build_s
        );
    }
    Ok(())
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

/// The server a load runs against: its own child on a fresh SQLite database (with the
/// admin key it was given), or the `--server` nodes with `--admin-key`.
fn target(args: &BenchArgs) -> anyhow::Result<(Option<OwnServer>, Vec<String>, String)> {
    const OWN_KEY: &str = "bench-admin-key-0123456789abcdef";
    if args.server.is_empty() {
        let own = OwnServer::start(OWN_KEY)?;
        let nodes = vec![own.url.clone()];
        return Ok((Some(own), nodes, OWN_KEY.to_string()));
    }
    let nodes = args
        .server
        .iter()
        .map(|s| s.trim_end_matches('/').to_string())
        .collect();
    let admin = args
        .admin_key
        .clone()
        .context("--server needs the admin key (--admin-key or FLYWHEEL_ADMIN_KEY)")?;
    Ok((None, nodes, admin))
}

/// Starts `flywheel serve` on `db` on a free loopback port and waits until it listens;
/// the child and its base URL. Its stdout is drained on a thread of its own.
fn serve_child(db: &str, admin_key: &str) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", db])
        .env("FLYWHEEL_ADMIN_KEY", admin_key)
        .env("FLYWHEEL_LOG", "warn")
        // The webhooks scenario's receiver is on loopback.
        .env("FLYWHEEL_WEBHOOKS_ALLOW_PRIVATE", "true")
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start a server to bench")?;
    let mut out = BufReader::new(child.stdout.take().context("no stdout")?);
    loop {
        let mut line = String::new();
        if out.read_line(&mut line)? == 0 {
            let _ = child.wait();
            bail!("the benchmark server exited before listening");
        }
        if let Some(rest) = line.trim().strip_prefix("flywheel listening on ") {
            let url = rest.split_whitespace().next().unwrap_or_default().to_string();
            std::thread::spawn(move || for _ in out.lines() {});
            return Ok((child, url));
        }
    }
}

/// A fresh database for a scenario that needs its own: a SQLite file, or a fresh schema
/// (named after `purpose` and this process) of the PostgreSQL database the URL names,
/// dropped afterwards with [`Database::drop_schema`].
struct Database {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Database {
    async fn fresh(spec: &str, purpose: &str) -> anyhow::Result<Self> {
        if spec == "sqlite" {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join(format!("{purpose}.db")).display());
            return Ok(Self {
                url,
                _dir: Some(dir),
                pg: None,
            });
        }
        if !(spec.starts_with("postgres://") || spec.starts_with("postgresql://")) {
            bail!("--database is sqlite or a postgres:// URL, not '{spec}'");
        }
        let schema = format!("fw_{purpose}_{}", std::process::id());
        flywheel_store::postgres::PgStore::drop_schema(spec, &schema).await?;
        // Creates the schema and runs the migrations, once, before any server starts.
        drop(flywheel_store::postgres::PgStore::connect(spec, Some(&schema)).await?);
        let sep = if spec.contains('?') { '&' } else { '?' };
        Ok(Self {
            url: format!("{spec}{sep}options=-c%20search_path%3D{schema}"),
            _dir: None,
            pg: Some((spec.to_string(), schema)),
        })
    }

    async fn drop_schema(&self) {
        if let Some((url, schema)) = &self.pg
            && let Err(e) = flywheel_store::postgres::PgStore::drop_schema(url, schema).await
        {
            eprintln!("could not drop schema {schema}: {e}");
        }
    }
}

/// A `flywheel serve` child on a fresh SQLite database; stopped (SIGTERM, by PID) on drop.
struct OwnServer {
    child: Child,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl OwnServer {
    fn start(admin_key: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = format!("sqlite://{}", dir.path().join("bench.db").display());
        let (child, url) = serve_child(&db, admin_key)?;
        Ok(Self {
            child,
            url,
            _dir: Some(dir),
        })
    }

    /// A server on the database at `db` (which the caller keeps).
    fn on(db: &str, admin_key: &str) -> anyhow::Result<Self> {
        let (child, url) = serve_child(db, admin_key)?;
        Ok(Self { child, url, _dir: None })
    }

    /// Resident memory of the server process, MB (Linux).
    /// On-CPU time of each of the server's threads so far, in seconds, summed by kind.
    fn cpu_by_thread(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return out;
        };
        for t in tasks.flatten() {
            let path = t.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            // schedstat: nanoseconds on the CPU, then waiting, then timeslices.
            let Some(ns) = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            else {
                continue;
            };
            let kind = match comm.trim() {
                "fw-sql-writer" => "writer",
                "fw-sql-sync" => "syncer",
                "fw-sql-ckpt" => "checkpointer",
                c if c.starts_with("tokio") => "workers",
                _ => "other",
            };
            *out.entry(kind.to_string()).or_insert(0.0) += ns / 1e9;
            *out.entry("total".to_string()).or_insert(0.0) += ns / 1e9;
        }
        out
    }

    fn rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Stops a server child the way an operator would (SIGTERM, by its PID) and reaps it.
fn stop_child(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// A fresh project with the three-rule policy, and a service key for it.
async fn bench_project(api: &Api, name: &str) -> anyhow::Result<String> {
    api.create_project(
        name,
        &["ham".into(), "spam".into()],
        &json!({"rules": [
            {"name": "urgent", "when": "payload.text.contains('urgent')", "action": "review", "queue": "urgent", "tier": 2, "priority": 10},
            {"name": "confident", "when": "confidence >= 0.9", "action": "auto"},
            {"name": "uncertain", "when": "true", "action": "review", "queue": "standard", "tier": 1}],
            "lease_seconds": 600}),
    )
    .await?;
    Ok(api.service_key(name).await?)
}

/// `n` tier-1 reviewers of `project`; their keys.
async fn bench_reviewers(api: &Api, project: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        keys.push(api.reviewer(&format!("{project}-r{i}"), &[1], &[project]).await?);
    }
    Ok(keys)
}

/// The spam score of item `id`: with `spread`, spread over [0, 1) so that the policy sends
/// about 60% of ids to auto; otherwise 0.5, which it sends to review (`uncertain`).
fn spam_score(id: u64, spread: bool) -> f64 {
    if spread {
        (id.wrapping_mul(2654435761) % 1000) as f64 / 1000.0
    } else {
        0.5
    }
}

/// Appends item `id` as JSON. Written by hand: the client shares the machine's two cores
/// with the server, so it should spend as little as it can (building a `serde_json::Value`
/// per item and serialising it cost the import's client ~3.3 µs an item; this ~0.6 µs).
fn write_item(out: &mut String, id: u64, spread: bool) {
    use std::fmt::Write;
    let spam = spam_score(id, spread);
    let _ = write!(
        out,
        r#"{{"external_id":"b{id}","payload":{{"text":"message number {id}"}},"prediction":{{"model":"bench","version":"1","scores":{{"ham":{},"spam":{spam}}}}}}}"#,
        1.0 - spam
    );
}

/// A request body of `n` fresh items.
fn items_body(n: usize, spread: bool) -> String {
    let mut body = String::with_capacity(n * 160 + 16);
    body.push_str(r#"{"items":["#);
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        write_item(&mut body, NEXT_ID.fetch_add(1, Ordering::Relaxed), spread);
    }
    body.push_str("]}");
    body
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

async fn decide_loop(api: Api, worker: usize, svc: String, project: String, until: Instant) -> Recorder {
    let mut rec = Recorder::default();
    let url = format!("{}/v1/projects/{project}/items", api.node(worker));
    let auth = format!("Bearer {svc}");
    while Instant::now() < until {
        let body = items_body(1, true);
        let t = Instant::now();
        let req = api
            .http
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(body);
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                rec.ok("decide", t, 1);
            }
            _ => rec.err("decide"),
        }
    }
    rec
}

async fn import_loop(
    api: Api,
    worker: usize,
    svc: String,
    project: String,
    until: Instant,
    batches: Option<usize>,
    batch: usize,
) -> Recorder {
    let mut rec = Recorder::default();
    let url = format!("{}/v1/projects/{project}/items", api.node(worker));
    let mut done = 0;
    while Instant::now() < until && batches.is_none_or(|b| done < b) {
        let body = items_body(batch, batches.is_none());
        let t = Instant::now();
        let req = api
            .http
            .post(&url)
            .bearer_auth(&svc)
            .header("content-type", "application/json")
            .body(body);
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                rec.ok("batch", t, batch as u64);
            }
            _ => rec.err("batch"),
        }
        done += 1;
    }
    rec
}

async fn review_loop(api: Api, worker: usize, key: String, project: String, until: Instant) -> Recorder {
    let mut rec = Recorder::default();
    let node = api.node(worker).to_string();
    let claim_url = format!("{node}/v1/projects/{project}/claim");
    let mut n = 0u64;
    while Instant::now() < until {
        let cycle = Instant::now();
        let Some(task) = claim_once(&api, &claim_url, &key, &mut rec).await else {
            continue;
        };
        n += 1;
        let body = json!({"lease_id": task["lease_id"], "review_id": format!("w{worker}-{n}"), "label": "ham"});
        let t = Instant::now();
        match api
            .http
            .post(format!("{node}/v1/tasks/{}/reviews", task["task_id"]))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                rec.ok("answer", t, 1);
                rec.ok("cycle", cycle, 1);
            }
            _ => rec.err("answer"),
        }
    }
    rec
}

/// One claim, recorded as `claim`, `claim_empty` (204) or an error; the task if one came.
async fn claim_once(api: &Api, url: &str, key: &str, rec: &mut Recorder) -> Option<Value> {
    let t = Instant::now();
    match api.http.post(url).bearer_auth(key).json(&json!({})).send().await {
        Ok(r) if r.status() == 200 => match r.json::<Value>().await {
            Ok(v) => {
                rec.ok("claim", t, 1);
                Some(v)
            }
            Err(_) => {
                rec.err("claim");
                None
            }
        },
        Ok(r) if r.status() == 204 => {
            rec.ok("claim_empty", t, 1);
            None
        }
        _ => {
            rec.err("claim");
            None
        }
    }
}

/// Reviewers answering with "submit and next": a claim to start, then each answer leases
/// the next task in the same request. `cycle` is one such round trip.
async fn review_next_loop(api: Api, worker: usize, key: String, project: String, until: Instant) -> Recorder {
    let mut rec = Recorder::default();
    let node = api.node(worker).to_string();
    let claim_url = format!("{node}/v1/projects/{project}/claim");
    let mut task = Value::Null;
    let mut n = 0u64;
    while Instant::now() < until {
        if task.is_null() {
            task = claim_once(&api, &claim_url, &key, &mut rec)
                .await
                .unwrap_or(Value::Null);
            continue;
        }
        n += 1;
        let body = json!({"lease_id": task["lease_id"], "review_id": format!("w{worker}-{n}"), "label": "ham",
                          "next": {"project": project}});
        let t = Instant::now();
        let url = format!("{node}/v1/tasks/{}/reviews", task["task_id"]);
        match api.http.post(url).bearer_auth(&key).json(&body).send().await {
            Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                Ok(mut v) => {
                    rec.ok("cycle", t, 1);
                    task = v["next"].take();
                }
                Err(_) => rec.err("cycle"),
            },
            _ => {
                rec.err("cycle");
                task = Value::Null;
            }
        }
    }
    rec
}

/// The scenario as the command line spells it (`claims-next`).
fn scenario_name(s: Scenario) -> String {
    use clap::ValueEnum;
    s.to_possible_value()
        .map_or_else(|| format!("{s:?}"), |v| v.get_name().to_string())
}

/// Pre-fills `n` open review tasks (batches of 1,000, four at a time), with a progress bar
/// on a terminal.
async fn prefill(api: &Api, svc: &str, project: &str, n: usize) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(n as u64);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_message("pre-filling open tasks");
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    let mut handles = vec![];
    for (w, count) in shares(n.div_ceil(1000), 4).into_iter().enumerate() {
        handles.push(tokio::spawn(import_loop(
            api.clone(),
            w,
            svc.to_string(),
            project.to_string(),
            far,
            Some(count),
            1000,
        )));
    }
    for h in handles {
        let rec = h.await?;
        if let Some(s) = rec.0.get("batch") {
            if s.errors > 0 {
                bail!("pre-fill failed: {} batches refused", s.errors);
            }
            bar.inc(s.units);
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Splits `batches` among at most `workers` importers as evenly as can be: every share is
/// at least 1, they sum to `batches`, and none is larger than another by more than 1.
fn shares(batches: usize, workers: usize) -> Vec<usize> {
    let workers = workers.min(batches);
    (0..workers)
        .map(|w| batches / workers + usize::from(w < batches % workers))
        .collect()
}

/// Times the built-in model on one core: scoring (features from the JSON payload, then
/// the logistic regression) and learning (one AdaGrad step per labelled example).
fn model(items: usize, json: bool) -> anyhow::Result<()> {
    use flywheel_core::learn::{Featurizer, OnlineModel};
    if items < 100 {
        bail!("model needs at least 100 items");
    }
    // Short texts like SMS: 5 to 30 words from a 5,000-word vocabulary, a tenth of them
    // "spam" with words of their own.
    let mut rng = Rng::new(11);
    let word = |rng: &mut Rng, spam: bool| {
        let w = rng.below(5000);
        if spam && rng.unit() < 0.3 {
            format!("offer{}", w % 200)
        } else {
            format!("w{w}")
        }
    };
    let texts: Vec<(serde_json::Value, usize)> = (0..items)
        .map(|_| {
            let spam = rng.unit() < 0.1;
            let n = 5 + rng.below(26);
            let text: Vec<String> = (0..n).map(|_| word(&mut rng, spam)).collect();
            (json!({"text": text.join(" ")}), usize::from(spam))
        })
        .collect();
    let attributes = json!({});
    let featurizer = Featurizer::new(18);
    let mut m = OnlineModel::new(vec!["ham".into(), "spam".into()], 18);
    for (payload, y) in texts.iter().take(items / 10) {
        m.update(&featurizer.features(payload, &attributes), *y);
    }
    let t0 = Instant::now();
    let mut spam = 0usize;
    for (payload, _) in &texts {
        let p = m.predict(&featurizer.features(payload, &attributes));
        spam += usize::from(p[1] > p[0]);
    }
    let score_s = t0.elapsed().as_secs_f64();
    let features: Vec<Vec<(u32, f32)>> = texts.iter().map(|(p, _)| featurizer.features(p, &attributes)).collect();
    let t1 = Instant::now();
    for (f, (_, y)) in features.iter().zip(&texts) {
        m.update(f, *y);
    }
    let update_s = t1.elapsed().as_secs_f64();
    let mean_features = features.iter().map(Vec::len).sum::<usize>() as f64 / items as f64;
    let report = json!({"scenario": "model", "texts": items, "mean_features": mean_features,
        "score_per_s": items as f64 / score_s, "score_us": score_s * 1e6 / items as f64,
        "update_us": update_s * 1e6 / items as f64, "predicted_spam": spam});
    if json {
        println!("{report}");
    } else {
        println!(
            "built-in model, one core: {:.0} texts/s scored ({:.2} µs each, features from JSON included; {:.0} features a text), an update {:.2} µs",
            items as f64 / score_s,
            score_s * 1e6 / items as f64,
            mean_features,
            update_s * 1e6 / items as f64
        );
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn shares_cover_every_batch_once() {
        // 5,000 items (5 batches) once overflowed: 4 workers of 2 asked for 5 - 6.
        assert_eq!(shares(5, 4), vec![2, 1, 1, 1]);
        assert_eq!(shares(0, 4), Vec::<usize>::new());
        assert_eq!(shares(3, 4), vec![1, 1, 1]);
        for batches in 0..50 {
            let s = shares(batches, 4);
            assert_eq!(s.iter().sum::<usize>(), batches, "{batches}");
            assert!(s.iter().all(|&c| c > 0), "{batches}: {s:?}");
            let (lo, hi) = (s.iter().min(), s.iter().max());
            assert!(hi.zip(lo).is_none_or(|(h, l)| h - l <= 1), "{batches}: {s:?}");
        }
    }
}
