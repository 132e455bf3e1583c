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

use std::collections::{HashMap, HashSet};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flywheel_sim::Rng;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use super::{BenchArgs, Database, serve_child, stop_child};

const PROJECT: &str = "crash";
const ADMIN_KEY: &str = "crash-admin-key-0123456789abcdef";
const LEASE_SECONDS: i64 = 10;
const SUBMITTERS: usize = 2;
const REVIEWERS: usize = 4;
const BATCH: usize = 10;
/// The pause before a request that got no answer is sent again.
const RETRY: Duration = Duration::from_millis(50);
/// Open items whose detail (tasks and their counters) the audit reads, at most.
const DETAIL_LIMIT: usize = 1000;

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

/// What the clients were told, kept across kills.
#[derive(Default)]
struct Ledger {
    items: Vec<String>,
    /// (review id, external id)
    answers: Vec<(String, String)>,
    /// Answers the server refused (a lease that ended while the server was down, …).
    answers_refused: u64,
    heartbeats: u64,
}

enum Reply {
    Ok(u16, Value),
    /// No answer (the server is down or was killed mid-request), or a 5xx: try again.
    Down,
    Refused(u16, Value),
}

struct Ctx {
    http: reqwest::Client,
    url: Arc<RwLock<String>>,
    stop: AtomicBool,
    ledger: Mutex<Ledger>,
    unanswered: AtomicU64,
    server_errors: AtomicU64,
    svc: String,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    async fn send(&self, method: Method, path: &str, key: &str, body: Option<&Value>) -> Reply {
        let base = self.url.read().expect("url").clone();
        let mut req = self.http.request(method, format!("{base}{path}")).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = match req.send().await {
            Ok(r) => r,
            Err(_) => {
                self.unanswered.fetch_add(1, Ordering::Relaxed);
                return Reply::Down;
            }
        };
        let status = r.status().as_u16();
        let Ok(text) = r.text().await else {
            self.unanswered.fetch_add(1, Ordering::Relaxed);
            return Reply::Down;
        };
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            200..=299 => Reply::Ok(status, body),
            500.. => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
                Reply::Down
            }
            _ => Reply::Refused(status, body),
        }
    }

    /// Sends until the server answers (or the load stops): the 2xx body, or `None`.
    async fn until_answered(&self, method: Method, path: &str, key: &str, body: Option<&Value>) -> Option<Value> {
        loop {
            match self.send(method.clone(), path, key, body).await {
                Reply::Ok(_, v) => return Some(v),
                Reply::Refused(..) => return None,
                Reply::Down if self.stopped() => return None,
                Reply::Down => tokio::time::sleep(RETRY).await,
            }
        }
    }
}

/// Items of ids `s{w}-{n}`, in batches; a batch without an answer is sent again with the
/// same ids (a resubmitted id gets its first decision back), so each id is stored once.
async fn submitter(ctx: Arc<Ctx>, w: usize) -> anyhow::Result<()> {
    let path = format!("/v1/projects/{PROJECT}/items");
    let mut n = 0usize;
    while !ctx.stopped() {
        let ids: Vec<String> = (n..n + BATCH).map(|i| format!("s{w}-{i}")).collect();
        n += BATCH;
        let items: Vec<Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                // About half confident (auto, a label at once), half to review.
                let spam = if (n + i).is_multiple_of(2) { 0.97 } else { 0.5 };
                json!({"external_id": id, "payload": {"text": format!("message {id}")},
                       "prediction": {"model": "crash", "version": "1", "scores": {"ham": 1.0 - spam, "spam": spam}}})
            })
            .collect();
        let body = json!({ "items": items });
        match ctx.send(Method::POST, &path, &ctx.svc, Some(&body)).await {
            Reply::Ok(..) => ctx.ledger.lock().expect("ledger").items.extend(ids),
            Reply::Refused(status, body) => bail!("items refused: {status} {body}"),
            Reply::Down => {
                if ctx
                    .until_answered(Method::POST, &path, &ctx.svc, Some(&body))
                    .await
                    .is_some()
                {
                    ctx.ledger.lock().expect("ledger").items.extend(ids);
                }
            }
        }
    }
    Ok(())
}

/// Claim, sometimes heartbeat, answer with review id `r{w}-{n}`; an answer without a
/// reply is sent again with the same review id.
async fn reviewer(ctx: Arc<Ctx>, w: usize, key: String, seed: u64) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(w as u64 + 1));
    let claim = format!("/v1/projects/{PROJECT}/claim");
    let mut n = 0u64;
    while !ctx.stopped() {
        let task = match ctx.send(Method::POST, &claim, &key, Some(&json!({}))).await {
            Reply::Ok(200, task) => task,
            Reply::Ok(..) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Reply::Down => {
                tokio::time::sleep(RETRY).await;
                continue;
            }
            Reply::Refused(status, body) => bail!("a claim refused: {status} {body}"),
        };
        let task_id = task["task_id"].as_i64().context("a claim without task_id")?;
        let external_id = task["item"]["external_id"].as_str().unwrap_or_default().to_string();
        if rng.chance(0.3) {
            let body = json!({"lease_id": task["lease_id"]});
            let path = format!("/v1/tasks/{task_id}/heartbeat");
            if ctx
                .until_answered(Method::POST, &path, &key, Some(&body))
                .await
                .is_some()
            {
                ctx.ledger.lock().expect("ledger").heartbeats += 1;
            }
        }
        n += 1;
        let review_id = format!("r{w}-{n}");
        let label = if rng.chance(0.5) { "ham" } else { "spam" };
        let body = json!({"lease_id": task["lease_id"], "review_id": review_id, "label": label});
        let path = format!("/v1/tasks/{task_id}/reviews");
        let answered = ctx.until_answered(Method::POST, &path, &key, Some(&body)).await;
        let mut ledger = ctx.ledger.lock().expect("ledger");
        match answered {
            Some(_) => ledger.answers.push((review_id, external_id)),
            None if !ctx.stopped() => ledger.answers_refused += 1,
            None => {}
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Feed {
    Labels,
    Events,
}

/// A feed read page by page from a cursor it keeps (across kills): the positions it got,
/// in order, and with `keep`, the rows.
struct FeedReader {
    feed: Feed,
    after: i64,
    positions: Vec<i64>,
    rows: Vec<Value>,
    keep: bool,
}

impl FeedReader {
    fn new(feed: Feed, keep: bool) -> Self {
        Self {
            feed,
            after: 0,
            positions: vec![],
            rows: vec![],
            keep,
        }
    }

    /// One page after the saved cursor: how many rows came, or `None` without an answer.
    async fn page(&mut self, ctx: &Ctx) -> anyhow::Result<Option<usize>> {
        let (path, key, list, pos) = match self.feed {
            Feed::Labels => (
                format!("/v1/projects/{PROJECT}/labels?after={}&limit=1000", self.after),
                ctx.svc.as_str(),
                "labels",
                "cursor",
            ),
            Feed::Events => (
                format!("/v1/events?after={}&limit=1000", self.after),
                ADMIN_KEY,
                "events",
                "seq",
            ),
        };
        let mut v = match ctx.send(Method::GET, &path, key, None).await {
            Reply::Ok(_, v) => v,
            Reply::Down => return Ok(None),
            Reply::Refused(status, body) => bail!("a {list} read refused: {status} {body}"),
        };
        let Value::Array(rows) = v[list].take() else {
            bail!("a {list} page without {list}: {v}");
        };
        for r in &rows {
            self.positions
                .push(r[pos].as_i64().context("a row without its position")?);
        }
        if let Some(next) = v["next_cursor"].as_i64() {
            self.after = next;
        }
        let n = rows.len();
        if self.keep {
            self.rows.extend(rows);
        }
        Ok(Some(n))
    }

    /// Reads until a page comes back empty (retrying while the server is away).
    async fn catch_up(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        loop {
            match self.page(ctx).await? {
                Some(0) => return Ok(()),
                Some(_) => {}
                None => tokio::time::sleep(RETRY).await,
            }
        }
    }
}

async fn follow(ctx: Arc<Ctx>, mut reader: FeedReader) -> anyhow::Result<FeedReader> {
    while !ctx.stopped() {
        match reader.page(&ctx).await? {
            Some(1000) => {}
            Some(_) | None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(reader)
}

/// Everything the audit looks at.
#[derive(Debug, Default, Clone)]
pub(super) struct Record {
    pub acked_items: Vec<String>,
    /// (review id, external id)
    pub acked_answers: Vec<(String, String)>,
    /// The export from the start: (external id, resolved, reviews).
    pub exported: Vec<(String, bool, usize)>,
    /// The label feed read from the start: (cursor, external id).
    pub labels: Vec<(i64, String)>,
    /// What the label reader that resumed across the kills got.
    pub labels_resumed: Vec<i64>,
    /// The event feed read from the start.
    pub events: Vec<AuditEvent>,
    pub events_resumed: Vec<i64>,
    /// `stats`: open tasks, and the open count of each queue.
    pub open_tasks: i64,
    pub queue_open: i64,
    /// Open items' details, from `GET …/items/{id}`.
    pub details: Vec<OpenItem>,
    pub lease_ms: i64,
}

/// An unresolved item: its tasks' counters and how many answers it holds.
#[derive(Debug, Clone)]
pub(super) struct OpenItem {
    pub external_id: String,
    /// (overlap, answered, open) of each task.
    pub tasks: Vec<(i64, i64, bool)>,
    pub reviews: usize,
}

#[derive(Debug, Clone)]
pub(super) struct AuditEvent {
    pub seq: i64,
    pub kind: String,
    pub task_id: Option<i64>,
    pub external_id: Option<String>,
    pub data: Value,
}

#[derive(Debug, Serialize)]
pub(super) struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// The first few violations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
}

/// Up to this many violations are named per check.
const SHOWN: usize = 5;

fn check(name: &'static str, found: Vec<String>) -> Check {
    Check {
        name,
        ok: found.is_empty(),
        violations: found.into_iter().take(SHOWN).collect(),
    }
}

/// The positions must be 1, 2, 3, … in order: no gap, no duplicate, no step back.
fn gap_free(positions: &[i64]) -> Vec<String> {
    let mut found = vec![];
    let mut prev = 0;
    for &p in positions {
        if p == prev {
            found.push(format!("position {p} twice"));
        } else if p < prev {
            found.push(format!("position {p} after {prev}"));
        } else if p > prev + 1 {
            found.push(format!("positions {}..{} missing before {p}", prev + 1, p - 1));
        }
        prev = p;
    }
    found
}

/// The reader that resumed across kills must have got exactly the positions the full read
/// has, up to where it stopped.
fn resumed_complete(full: &[i64], resumed: &[i64]) -> Vec<String> {
    let mut found = vec![];
    let mut seen = HashSet::new();
    for p in resumed {
        if !seen.insert(*p) {
            found.push(format!("position {p} read twice"));
        }
    }
    let last = resumed.iter().copied().max().unwrap_or(0);
    for p in full.iter().filter(|p| **p <= last) {
        if !seen.contains(p) {
            found.push(format!("position {p} missed"));
        }
    }
    let full: HashSet<i64> = full.iter().copied().collect();
    for p in resumed.iter().filter(|p| !full.contains(p)) {
        found.push(format!("position {p} read but not in the feed"));
    }
    found
}

fn counts<'a>(ids: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for id in ids {
        *m.entry(id).or_insert(0) += 1;
    }
    m
}

/// Checks the record; one entry per invariant, `ok` or with the violations found.
pub(super) fn audit(r: &Record) -> Vec<Check> {
    let mut out = vec![];

    // A campaign where nothing was acknowledged or read would pass every check below.
    let mut found = vec![];
    for (what, n) in [
        ("items acknowledged", r.acked_items.len()),
        ("answers acknowledged", r.acked_answers.len()),
        ("labels read by the resumed reader", r.labels_resumed.len()),
        ("events read by the resumed reader", r.events_resumed.len()),
    ] {
        if n == 0 {
            found.push(format!("no {what}"));
        }
    }
    out.push(check("load_reached_the_server", found));

    // Items: every acknowledged id exported once; no id exported twice.
    let exported = counts(r.exported.iter().map(|(id, ..)| id.as_str()));
    let mut found: Vec<String> = r
        .acked_items
        .iter()
        .filter_map(|id| match exported.get(id.as_str()) {
            None => Some(format!("item {id} acknowledged but missing")),
            _ => None,
        })
        .collect();
    let mut twice: Vec<_> = exported.iter().filter(|(_, n)| **n > 1).collect();
    twice.sort();
    found.extend(twice.iter().map(|(id, n)| format!("item {id} stored {n} times")));
    out.push(check("items_present_once", found));

    // Answers: every acknowledged review id submitted once, and each item's stored answers
    // are the answers its events record.
    let submitted: Vec<&AuditEvent> = r.events.iter().filter(|e| e.kind == "review.submitted").collect();
    let by_review = counts(submitted.iter().filter_map(|e| e.data["review_id"].as_str()));
    let mut found = vec![];
    for (review, item) in &r.acked_answers {
        match by_review.get(review.as_str()) {
            None => found.push(format!("answer {review} (item {item}) acknowledged but not stored")),
            Some(1) => {}
            Some(n) => found.push(format!("answer {review} stored {n} times")),
        }
    }
    let mut again: Vec<_> = by_review.iter().filter(|(_, n)| **n > 1).collect();
    again.sort();
    let acked: HashSet<&str> = r.acked_answers.iter().map(|(id, _)| id.as_str()).collect();
    found.extend(
        again
            .iter()
            .filter(|(id, _)| !acked.contains(**id))
            .map(|(id, n)| format!("answer {id} stored {n} times")),
    );
    let per_item = counts(submitted.iter().filter_map(|e| e.external_id.as_deref()));
    for (id, _, reviews) in &r.exported {
        let events = per_item.get(id.as_str()).copied().unwrap_or(0);
        if events != *reviews {
            found.push(format!(
                "item {id}: {reviews} answers stored, {events} in the event feed"
            ));
        }
    }
    out.push(check("answers_stored_once", found));

    let seqs: Vec<i64> = r.events.iter().map(|e| e.seq).collect();
    out.push(check("event_feed_gap_free", gap_free(&seqs)));
    out.push(check(
        "event_reader_resumed_complete",
        resumed_complete(&seqs, &r.events_resumed),
    ));
    let cursors: Vec<i64> = r.labels.iter().map(|l| l.0).collect();
    let mut found = gap_free(&cursors);
    let labelled: HashSet<&str> = r.labels.iter().map(|l| l.1.as_str()).collect();
    found.extend(
        r.exported
            .iter()
            .filter(|(id, resolved, _)| *resolved && !labelled.contains(id.as_str()))
            .map(|(id, ..)| format!("item {id} resolved but not in the label feed")),
    );
    out.push(check("label_feed_gap_free", found));
    out.push(check(
        "label_reader_resumed_complete",
        resumed_complete(&cursors, &r.labels_resumed),
    ));

    // Leases, replayed from the event feed: a grant while another lease of the task is
    // still live (not answered, cancelled or expired, and not past its expiry at the time
    // of the grant) is a task leased twice.
    let mut live: HashMap<i64, (i64, i64)> = HashMap::new(); // lease → (task, expires_at)
    let mut found = vec![];
    for e in &r.events {
        let lease = e.data["lease_id"].as_i64();
        match (e.kind.as_str(), lease, e.task_id) {
            ("lease.granted", Some(l), Some(task)) => {
                let expires = e.data["expires_at"].as_i64().unwrap_or(0);
                let granted_at = expires - r.lease_ms;
                for (other, (t, until)) in &live {
                    if *t == task && *until > granted_at {
                        found.push(format!(
                            "task {task}: lease {l} granted (event {}) while lease {other} was live",
                            e.seq
                        ));
                    }
                }
                live.insert(l, (task, expires));
            }
            ("lease.extended", Some(l), _) => {
                if let Some(v) = live.get_mut(&l) {
                    v.1 = e.data["expires_at"].as_i64().unwrap_or(v.1);
                }
            }
            ("lease.cancelled" | "lease.expired" | "review.submitted", Some(l), _) => {
                live.remove(&l);
            }
            _ => {}
        }
    }
    out.push(check("no_task_leased_twice", found));

    // Counters: the open tasks the stats count are the items not resolved yet (one review
    // task each in this campaign's policy), and each open task's answers are fewer than
    // its overlap and match the item's stored answers.
    let unresolved = r.exported.iter().filter(|(_, resolved, _)| !resolved).count() as i64;
    let mut found = vec![];
    if r.open_tasks != unresolved {
        found.push(format!(
            "stats count {} open tasks; {unresolved} items are unresolved",
            r.open_tasks
        ));
    }
    if r.queue_open != r.open_tasks {
        found.push(format!(
            "the queue counts {} open; stats {} open tasks",
            r.queue_open, r.open_tasks
        ));
    }
    for OpenItem {
        external_id: id,
        tasks,
        reviews,
    } in &r.details
    {
        let answered: i64 = tasks.iter().map(|t| t.1).sum();
        if answered != *reviews as i64 {
            found.push(format!("item {id}: tasks count {answered} answers, {reviews} stored"));
        }
        if !tasks.iter().any(|t| t.2) {
            found.push(format!("item {id}: unresolved without an open task"));
        }
        for (overlap, answered, open) in tasks {
            if *open && answered >= overlap {
                found.push(format!("item {id}: an open task with {answered} of {overlap} answers"));
            }
        }
    }
    out.push(check("open_task_counters", found));
    out
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

/// Reads the rest of what the audit needs (export, stats, open items' details) and puts
/// it beside what the clients kept.
async fn gather(
    ctx: &Ctx,
    all_labels: FeedReader,
    all_events: FeedReader,
    labels: FeedReader,
    events: FeedReader,
) -> anyhow::Result<Record> {
    let export = loop {
        let base = ctx.url.read().expect("url").clone();
        let r = ctx
            .http
            .get(format!("{base}/v1/projects/{PROJECT}/export?format=jsonl"))
            .bearer_auth(&ctx.svc)
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => break r.text().await?,
            Ok(r) => bail!("export: {}", r.status()),
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    };
    let mut exported = vec![];
    for line in export.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).context("an export line")?;
        exported.push((
            v["external_id"].as_str().unwrap_or_default().to_string(),
            !v["resolution"].is_null(),
            v["reviews"].as_array().map_or(0, Vec::len),
        ));
    }
    let stats = ctx
        .until_answered(Method::GET, &format!("/v1/projects/{PROJECT}/stats"), ADMIN_KEY, None)
        .await
        .context("stats")?;
    let mut details = vec![];
    let mut open: Vec<&String> = exported.iter().filter(|e| !e.1).map(|e| &e.0).collect();
    open.sort();
    for id in open.into_iter().take(DETAIL_LIMIT) {
        let d = ctx
            .until_answered(
                Method::GET,
                &format!("/v1/projects/{PROJECT}/items/{id}"),
                ADMIN_KEY,
                None,
            )
            .await
            .with_context(|| format!("item {id}"))?;
        let tasks = d["tasks"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        (
                            t["overlap"].as_i64().unwrap_or(0),
                            t["answered"].as_i64().unwrap_or(0),
                            t["state"] == "open",
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        details.push(OpenItem {
            external_id: id.clone(),
            tasks,
            reviews: d["reviews"].as_array().map_or(0, Vec::len),
        });
    }
    let ledger = ctx.ledger.lock().expect("ledger");
    Ok(Record {
        acked_items: ledger.items.clone(),
        acked_answers: ledger.answers.clone(),
        exported,
        labels: all_labels
            .rows
            .iter()
            .map(|r| {
                (
                    r["cursor"].as_i64().unwrap_or(0),
                    r["external_id"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        labels_resumed: labels.positions,
        events: all_events
            .rows
            .into_iter()
            .map(|mut e| AuditEvent {
                seq: e["seq"].as_i64().unwrap_or(0),
                kind: e["kind"].as_str().unwrap_or_default().to_string(),
                task_id: e["task_id"].as_i64(),
                external_id: e["external_id"].as_str().map(str::to_string),
                data: e["data"].take(),
            })
            .collect(),
        events_resumed: events.positions,
        open_tasks: stats["open_tasks"].as_i64().unwrap_or(-1),
        queue_open: stats["queues"]
            .as_object()
            .map_or(0, |q| q.values().filter_map(|v| v["open"].as_i64()).sum()),
        details,
        lease_ms: LEASE_SECONDS * 1000,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, kind: &str, task: i64, item: &str, data: Value) -> AuditEvent {
        AuditEvent {
            seq,
            kind: kind.into(),
            task_id: Some(task),
            external_id: Some(item.into()),
            data,
        }
    }

    /// A campaign's record where everything held: two items, one auto (a label at once),
    /// one reviewed (lease, answer, label).
    fn sound() -> Record {
        Record {
            acked_items: vec!["a".into(), "b".into()],
            acked_answers: vec![("r1".into(), "b".into())],
            exported: vec![("a".into(), true, 0), ("b".into(), true, 1)],
            labels: vec![(1, "a".into()), (2, "b".into())],
            labels_resumed: vec![1, 2],
            events: vec![
                event(1, "item.decided", 0, "a", json!({})),
                event(2, "item.decided", 1, "b", json!({"tasks": [1]})),
                event(3, "lease.granted", 1, "b", json!({"lease_id": 7, "expires_at": 20_000})),
                event(4, "review.submitted", 1, "b", json!({"lease_id": 7, "review_id": "r1"})),
                event(5, "lease.granted", 1, "b", json!({"lease_id": 8, "expires_at": 21_000})),
            ],
            events_resumed: vec![1, 2, 3, 4],
            open_tasks: 0,
            queue_open: 0,
            details: vec![],
            lease_ms: 10_000,
        }
    }

    fn failed(r: &Record) -> Vec<(&'static str, Vec<String>)> {
        audit(r)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| (c.name, c.violations))
            .collect()
    }

    #[test]
    fn a_sound_record_passes() {
        assert_eq!(failed(&sound()), vec![]);
    }

    #[test]
    fn a_campaign_without_load_fails() {
        let r = Record {
            lease_ms: 10_000,
            ..Record::default()
        };
        assert_eq!(
            failed(&r),
            vec![(
                "load_reached_the_server",
                vec![
                    "no items acknowledged".into(),
                    "no answers acknowledged".into(),
                    "no labels read by the resumed reader".into(),
                    "no events read by the resumed reader".into()
                ]
            )]
        );
    }

    #[test]
    fn a_missing_or_duplicated_item_fails() {
        let mut r = sound();
        r.acked_items.push("c".into());
        r.exported.push(("a".into(), true, 0));
        assert_eq!(
            failed(&r),
            vec![(
                "items_present_once",
                vec!["item c acknowledged but missing".into(), "item a stored 2 times".into()]
            )]
        );
    }

    #[test]
    fn a_lost_or_doubled_answer_fails() {
        let mut r = sound();
        r.acked_answers.push(("r2".into(), "a".into()));
        assert_eq!(failed(&r)[0].0, "answers_stored_once");
        let mut r = sound();
        r.events.push(event(
            6,
            "review.submitted",
            1,
            "b",
            json!({"lease_id": 8, "review_id": "r1"}),
        ));
        let f = failed(&r);
        assert_eq!(f[0].0, "answers_stored_once");
        assert!(f[0].1.contains(&"answer r1 stored 2 times".to_string()), "{f:?}");
    }

    #[test]
    fn a_gap_or_duplicate_in_a_feed_fails() {
        let mut r = sound();
        r.events.remove(2);
        assert!(failed(&r).iter().any(
            |(name, v)| *name == "event_feed_gap_free" && v == &vec!["positions 3..3 missing before 4".to_string()]
        ));
        let mut r = sound();
        r.labels.insert(1, (1, "a".into()));
        assert_eq!(
            failed(&r),
            vec![("label_feed_gap_free", vec!["position 1 twice".into()])]
        );
    }

    #[test]
    fn a_resumed_reader_that_skipped_or_repeated_fails() {
        let mut r = sound();
        r.events_resumed = vec![1, 3, 4];
        assert_eq!(
            failed(&r),
            vec![("event_reader_resumed_complete", vec!["position 2 missed".into()])]
        );
        let mut r = sound();
        r.labels_resumed = vec![1, 1, 2];
        assert_eq!(
            failed(&r),
            vec![("label_reader_resumed_complete", vec!["position 1 read twice".into()])]
        );
    }

    #[test]
    fn a_task_leased_twice_fails() {
        let mut r = sound();
        // Lease 9 granted at 11.5 s while lease 8 (granted at 11 s) runs to 21 s.
        r.events.push(event(
            6,
            "lease.granted",
            1,
            "b",
            json!({"lease_id": 9, "expires_at": 21_500}),
        ));
        assert_eq!(
            failed(&r),
            vec![(
                "no_task_leased_twice",
                vec!["task 1: lease 9 granted (event 6) while lease 8 was live".into()]
            )]
        );
        // Granted after lease 8's expiry time, it is not a second lease.
        r.events[5].data["expires_at"] = json!(31_500);
        assert_eq!(failed(&r), vec![]);
        // Nor after lease 8 was cancelled.
        r.events[5].data["expires_at"] = json!(21_500);
        r.events
            .insert(5, event(6, "lease.cancelled", 1, "b", json!({"lease_id": 8})));
        r.events[6].seq = 7;
        assert_eq!(failed(&r), vec![]);
    }

    #[test]
    fn counters_that_disagree_fail() {
        let mut r = sound();
        r.exported[1].1 = false;
        r.open_tasks = 1;
        r.queue_open = 1;
        r.details = vec![OpenItem {
            external_id: "b".into(),
            tasks: vec![(1, 1, true)],
            reviews: 1,
        }];
        let f = failed(&r);
        assert_eq!(
            f,
            vec![(
                "open_task_counters",
                vec!["item b: an open task with 1 of 1 answers".into()]
            )]
        );
        r.open_tasks = 0;
        assert_eq!(failed(&r)[0].1[0], "stats count 0 open tasks; 1 items are unresolved");
    }
}
