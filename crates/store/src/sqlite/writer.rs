//! The one writer: a thread that owns the SQLite write connection and batches whatever
//! jobs are waiting into one transaction (group commit).
//!
//! Every job's caller is answered only after the commit that holds its writes is on disk.
//! Jobs check before they write (a lost lease, a wrong label), so an expected refusal
//! leaves no trace. A job that fails *after* writing (a database error, a panic) would
//! leave half its writes in the batch: then the whole batch is rolled back, the failing job
//! gets its error and the others a retryable one — nothing half-written is ever committed.
//! (This replaces a savepoint per job, which cost a copy of every page a job touched.)
//!
//! Durability is pipelined. The connection commits with `synchronous = NORMAL` (no fsync
//! inside COMMIT) and a syncer thread fsyncs the WAL file — once for every group commit
//! that finished meanwhile — before their callers are answered. So a 2xx still comes only
//! after its write is on disk, the guarantee `synchronous = FULL` gives, but the writer
//! builds the next group while the disk syncs the last. Readers wait for the sync too
//! ([`Durability::wait`]), so nothing that a power loss could still take back is shown.
//!
//! Item submissions are the one kind of job merged with others: every submission to the
//! same project by the same caller in a group commit becomes one call of
//! [`items::submit_items`], so 50 single-item decisions cost the writer three multi-row inserts
//! per table (of 32, 16 and 2 rows) instead of 50 single-row ones (a statement's start and end cost as much as a
//! row). Each caller still gets only its own items' results.
//!
//! Checkpoints (copying the WAL back into the database file) run passively on a separate
//! connection and thread, so the writer never stops for them — except, briefly, to let the
//! log start again from its beginning (see [`checkpoint`]).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::Connection;

use super::items::{self, PreparedItem};
use crate::observe::WriterStats;
use crate::{Millis, Result, StoreError, Submitted};

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
/// A write runs on the write connection and returns its reply and whether it failed after
/// writing something.
type Write = Box<dyn FnOnce(Result<&Connection>) -> (Reply, bool) + Send>;

enum Job {
    /// Any write, run on its own.
    Write(Write),
    /// Items submitted to a project, merged with the other submissions to the same project
    /// by the same actor in the same group commit.
    Submit(Submit),
}

struct Submit {
    project_id: i64,
    actor: String,
    now: Millis,
    items: Vec<PreparedItem>,
    tx: tokio::sync::oneshot::Sender<Result<Vec<Submitted>>>,
}

/// Most items one merged submission takes; an import's batches of 1,000 gain nothing from
/// merging, and a bound keeps a group commit's memory small.
const MAX_MERGED_ITEMS: usize = 4096;

/// Most jobs one transaction takes; more waiting jobs go in the next one.
const MAX_BATCH: usize = 1024;
/// A group commit at least this large means the server is busy: before starting the next
/// one the writer yields its core once, so that the request handlers it preempted can queue
/// their writes first and the group grows (see [`run`]).
const BUSY_GROUP: usize = 8;
/// How often the checkpointer copies the WAL into the database file. Often, so that each
/// checkpoint's fsync of the database file is small: the syncer's fsync of the WAL queues
/// behind it on the disk. Against 250 ms (`flywheel bench claims`, 64 reviewers, 1M open
/// tasks, alternating): claim p99 4.45–4.49 vs 4.83–5.01 ms, decisions p99 3.9 vs 4.1–4.2
/// ms, the same throughput.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// WAL frames (of 4 KiB pages: 64 MiB) past which the log is started again from its
/// beginning (`journal_size_limit` is set above this, so the file is reused, not regrown).
const RESTART_FRAMES: i64 = 16_384;

pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
    pub(crate) durability: Durability,
    /// Group-commit sizes and WAL fsync times, for the server's metrics.
    pub(crate) stats: Arc<WriterStats>,
}

/// How far commits and syncs have come: generation `n` is the n-th group commit.
#[derive(Clone)]
pub(crate) struct Durability {
    committed: Arc<AtomicU64>,
    synced: tokio::sync::watch::Receiver<u64>,
}

impl Durability {
    /// Waits until every commit made so far is on disk.
    pub(crate) async fn wait(&self) {
        let target = self.committed.load(Ordering::Acquire);
        if *self.synced.borrow() >= target {
            return;
        }
        let mut rx = self.synced.clone();
        let _ = rx.wait_for(|s| *s >= target).await;
    }
}

/// A group commit waiting for the fsync that makes it durable.
struct Committed {
    generation: u64,
    replies: Vec<Reply>,
}

impl Writer {
    /// Starts the writer on `conn`, its syncer, and the checkpointer on a connection of its
    /// own to `path`. They stop when the `Writer` is dropped.
    pub(crate) fn spawn(conn: Connection, path: &Path) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (sync_tx, sync_rx) = mpsc::channel::<Committed>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (synced_tx, synced) = tokio::sync::watch::channel(0u64);
        let committed = Arc::new(AtomicU64::new(0));
        let generation = committed.clone();
        let wal = wal_path(path);
        let checkpointer = Connection::open(path).map_err(std::io::Error::other)?;
        let restart = Arc::new(AtomicBool::new(false));
        let restart_wanted = restart.clone();
        let stats = Arc::new(WriterStats::default());
        let (writer_stats, sync_stats) = (stats.clone(), stats.clone());
        // Names of at most 15 bytes, so that `top` and `/proc` (and `flywheel bench`) show
        // them whole.
        let thread = |name: &str| std::thread::Builder::new().name(name.to_string());
        thread("fw-sql-writer").spawn(move || {
            run(conn, rx, sync_tx, generation, &restart_wanted, &writer_stats);
            drop(stop_tx);
        })?;
        thread("fw-sql-sync").spawn(move || sync(wal, sync_rx, synced_tx, &sync_stats))?;
        thread("fw-sql-ckpt").spawn(move || checkpoint(checkpointer, stop_rx, &restart))?;
        Ok(Self {
            tx,
            durability: Durability { committed, synced },
            stats,
        })
    }

    /// Runs `f` in the next group commit and returns its result once durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T>>();
        let job: Write = Box::new(move |conn| match conn {
            Err(e) => (reply(tx, Err(e)), false),
            Ok(c) => {
                let (outcome, dirty) = guarded(c, f);
                (reply(tx, outcome), dirty)
            }
        });
        self.send(Job::Write(job), rx).await
    }

    /// Stores submitted items ([`items::submit_items`]) in the next group commit, merged with
    /// the other submissions to `project_id` by `actor` there, and returns this call's
    /// results, in order, once durable. The merged call stores every item with the latest
    /// `now` among them (a fraction of a millisecond later than this one's, at most a group
    /// commit's time).
    pub(crate) async fn submit(
        &self,
        project_id: i64,
        items: Vec<PreparedItem>,
        actor: String,
        now: Millis,
    ) -> Result<Vec<Submitted>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Submit {
            project_id,
            actor,
            now,
            items,
            tx,
        };
        self.send(Job::Submit(job), rx).await
    }

    async fn send<T>(&self, job: Job, rx: tokio::sync::oneshot::Receiver<Result<T>>) -> Result<T> {
        let stopped = || StoreError::Backend("the writer has stopped".into());
        self.tx.send(job).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Runs `f`, turning a panic into an error; returns its outcome and whether it failed after
/// writing something.
fn guarded<T>(c: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> (Result<T>, bool) {
    let before = c.total_changes();
    let outcome = match catch_unwind(AssertUnwindSafe(|| f(c))) {
        Ok(r) => r,
        Err(_) => Err(StoreError::Backend("a write panicked; it was rolled back".into())),
    };
    let dirty = outcome.is_err() && c.total_changes() != before;
    (outcome, dirty)
}

/// The reply that sends `outcome` to its caller once its group commit is durable (or the
/// commit's error, if it failed and the job itself did not).
fn reply<T: Send + 'static>(tx: tokio::sync::oneshot::Sender<Result<T>>, outcome: Result<T>) -> Reply {
    Box::new(move |durable: Result<()>| {
        let answer = match (durable, outcome) {
            (Ok(()), outcome) => outcome,
            (Err(_), Err(own)) => Err(own),
            (Err(e), Ok(_)) => Err(e),
        };
        let _ = tx.send(answer);
    })
}

/// What one group commit runs, in order: single writes, and merged submissions (at the
/// place of their first one).
enum Unit {
    Write(Write),
    Submits(Vec<Submit>),
}

impl Unit {
    /// Groups `jobs` into units.
    fn plan(jobs: Vec<Job>) -> Vec<Unit> {
        let mut units = Vec::with_capacity(jobs.len());
        // (project, actor) -> the unit collecting its submissions, and its item count.
        let mut open: HashMap<(i64, String), (usize, usize)> = HashMap::new();
        for job in jobs {
            match job {
                Job::Write(w) => units.push(Unit::Write(w)),
                Job::Submit(s) => {
                    let key = (s.project_id, s.actor.clone());
                    match open.get_mut(&key) {
                        Some((at, n)) if *n + s.items.len() <= MAX_MERGED_ITEMS => {
                            *n += s.items.len();
                            if let Unit::Submits(group) = &mut units[*at] {
                                group.push(s);
                            }
                        }
                        _ => {
                            open.insert(key, (units.len(), s.items.len()));
                            units.push(Unit::Submits(vec![s]));
                        }
                    }
                }
            }
        }
        units
    }

    /// Runs this unit in the open transaction, adding its replies; returns whether it
    /// failed after writing something.
    fn run(self, c: &Connection, replies: &mut Vec<Reply>) -> bool {
        match self {
            Unit::Write(w) => {
                let (r, dirty) = w(Ok(c));
                replies.push(r);
                dirty
            }
            Unit::Submits(group) => {
                // `plan` put only submissions with the same project and actor together.
                let (project_id, actor) = (group[0].project_id, group[0].actor.clone());
                let now = group.iter().map(|s| s.now).max().unwrap_or_default();
                let mut items = Vec::with_capacity(group.iter().map(|s| s.items.len()).sum());
                let mut callers = Vec::with_capacity(group.len());
                for s in group {
                    callers.push((s.items.len(), s.tx));
                    items.extend(s.items);
                }
                let (outcome, dirty) = guarded(c, |c| items::submit_items(c, project_id, items, &actor, now));
                match outcome {
                    Ok(all) => {
                        let mut all = all.into_iter();
                        for (n, tx) in callers {
                            replies.push(reply(tx, Ok(all.by_ref().take(n).collect())));
                        }
                    }
                    // Nothing of a failed call is kept: every caller in it gets its error.
                    Err(e) => replies.extend(callers.into_iter().map(|(_, tx)| reply(tx, Err(e.clone())))),
                }
                dirty
            }
        }
    }

    /// Answers this unit's callers with `e` without running it.
    fn refuse(self, e: &StoreError, replies: &mut Vec<Reply>) {
        match self {
            Unit::Write(w) => replies.push(w(Err(e.clone())).0),
            Unit::Submits(group) => replies.extend(group.into_iter().map(|s| reply(s.tx, Err(e.clone())))),
        }
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

fn run(
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    sync_tx: mpsc::Sender<Committed>,
    committed: Arc<AtomicU64>,
    restart: &AtomicBool,
    stats: &WriterStats,
) {
    let mut generation = 0u64;
    let mut last_group = 0usize;
    while let Ok(first) = rx.recv() {
        if restart.swap(false, Ordering::AcqRel) {
            finish_checkpoint(&conn);
        }
        // Woken by the first job of a new group while busy, the writer would otherwise take
        // the core from the handlers that are about to send the rest: yielding once makes
        // groups larger and every commit, fsync and statement serve more jobs. Measured
        // (alternating, one sitting): decisions with 64 connections 37.6–38.0k → 39.6–40.4k/s,
        // claim-and-answer with 64 reviewers 13.7–14.5k → 15.7–16.1k cycles/s; at moderate
        // load groups are small and nothing changes.
        if last_group >= BUSY_GROUP {
            std::thread::yield_now();
        }
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        last_group = jobs.len();
        let mut replies: Vec<Reply> = Vec::with_capacity(jobs.len());
        let units = Unit::plan(jobs);
        crate::error::take_storage_full();
        let commit: Result<()> = match conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut s| s.execute([])) {
            Ok(_) => {
                let mut poisoned = false;
                let mut units = units.into_iter();
                for unit in units.by_ref() {
                    let dirty = unit.run(&conn, &mut replies);
                    // SQLite may have rolled the whole transaction back itself (disk full,
                    // I/O error): later jobs would then commit statement by statement.
                    if dirty || conn.is_autocommit() {
                        poisoned = true;
                        break;
                    }
                }
                // A full disk is every job's cause, not only the one that hit it.
                let retry = |full: bool| {
                    let m = "a write in the same group commit failed; nothing was written, retry";
                    if full {
                        StoreError::StorageFull(m.into())
                    } else {
                        StoreError::Backend(m.into())
                    }
                };
                let full = crate::error::take_storage_full();
                for unit in units {
                    unit.refuse(&retry(full), &mut replies);
                }
                if poisoned {
                    tracing::error!("a write failed after writing; rolling its whole group commit back");
                    super::counts::discard();
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(retry(full))
                } else if let Err(e) = super::counts::flush(&conn) {
                    // The /stats counters commit with the rows they count, or nothing does.
                    tracing::error!(error = %e, "could not write the group's counters");
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(StoreError::from(e))
                } else {
                    // Readers that see this commit must wait for its sync: count it before
                    // it becomes visible.
                    generation += 1;
                    committed.store(generation, Ordering::Release);
                    conn.prepare_cached("COMMIT")
                        .and_then(|mut s| s.execute([]))
                        .map(|_| ())
                        .map_err(|e| {
                            tracing::error!(error = %e, "group commit failed");
                            let _ = conn.execute_batch("ROLLBACK");
                            StoreError::from(e)
                        })
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not begin a write transaction");
                super::counts::discard();
                let e = StoreError::from(e);
                for unit in units {
                    unit.refuse(&e, &mut replies);
                }
                Err(e)
            }
        };
        match commit {
            Ok(()) => {
                stats.group_commit_size.observe(last_group as f64);
                // Durable only once the syncer has fsynced the WAL; it answers then.
                if let Err(mpsc::SendError(lost)) = sync_tx.send(Committed { generation, replies }) {
                    for reply in lost.replies {
                        reply(Err(StoreError::Backend("the syncer has stopped".into())));
                    }
                }
            }
            Err(e) => {
                for reply in replies {
                    reply(Err(e.clone()));
                }
                // A counted generation whose COMMIT failed has nothing to sync; let its
                // waiters go.
                let _ = sync_tx.send(Committed {
                    generation,
                    replies: Vec::new(),
                });
            }
        }
    }
}

/// Fsyncs the WAL once for every group commit waiting, then answers their callers and
/// tells readers how far durability has come.
fn sync(wal: PathBuf, rx: mpsc::Receiver<Committed>, synced: tokio::sync::watch::Sender<u64>, stats: &WriterStats) {
    let mut file: Option<std::fs::File> = None;
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(b) = rx.try_recv() {
            batches.push(b);
        }
        if file.is_none() {
            file = std::fs::File::open(&wal).ok();
        }
        let result = match &file {
            Some(f) => {
                let started = std::time::Instant::now();
                let synced = f.sync_data();
                stats.wal_fsync_seconds.observe(started.elapsed().as_secs_f64());
                synced.map_err(|e| StoreError::Backend(format!("cannot sync the WAL: {e}")))
            }
            None => Err(StoreError::Backend(format!("cannot open {}", wal.display()))),
        };
        match &result {
            Ok(()) => {
                synced.send_replace(batches.last().map_or(0, |b| b.generation));
            }
            Err(e) => {
                // After a failed fsync the state of the disk is unknowable (the kernel may
                // have dropped the dirty pages): stop, as PostgreSQL does, and let the
                // restart recover from what is on disk. No caller of these batches was
                // answered, so nothing acknowledged is lost.
                tracing::error!(error = %e, "the WAL could not be synced; stopping to recover from disk");
                std::process::abort();
            }
        }
        for b in batches {
            for reply in b.replies {
                reply(result.clone());
            }
        }
    }
}

/// Run by the writer between two group commits when the checkpointer asks: copies the
/// frames its passive passes have not reached yet (those of the last moments). With the
/// whole log copied, the writer's next transaction starts the log from its beginning
/// (SQLite does that by itself). If not every frame could be copied (the checkpointer was
/// copying, or a reader still uses old frames), the checkpointer asks again on its next
/// pass: retrying before every group commit would put checkpoint fsyncs on the writer's
/// path again and again.
fn finish_checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "checkpoint before restarting the WAL failed; will retry");
    }
}

/// Copies committed WAL frames into the database file, passively (it never blocks the
/// writer or readers), until the writer stops. Under steady writes a passive checkpoint
/// never catches the end of the log, and SQLite restarts the log only once it has: the WAL
/// grew without bound (4 GB in 30 s of decisions, and slower as it grew). A RESTART
/// checkpoint from this thread had to catch the writer between two commits — its busy
/// handler polls with sleeps, so it waited while the log grew to 400 MB, and then held
/// the writer back, which in turn slept in its own busy handler. So once the log passes
/// [`RESTART_FRAMES`], this thread asks the writer to copy the last few frames itself
/// between two group commits ([`finish_checkpoint`]); no lock is waited for.
fn checkpoint(conn: Connection, stop: mpsc::Receiver<()>, restart: &AtomicBool) {
    let _ = conn.busy_timeout(Duration::from_millis(100));
    let mut warn = Throttle::new(WARN_EVERY);
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) if frames > RESTART_FRAMES => restart.store(true, Ordering::Release),
            Ok(_) => {}
            // Every 50 ms while the disk is full: once per WARN_EVERY, with the count.
            Err(e) => {
                if let Some(failures) = warn.tick(std::time::Instant::now()) {
                    tracing::warn!(error = %e, failures, "checkpoint failed; will retry");
                }
            }
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// How often a failure that repeats every pass (a checkpoint on a full disk) is logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Lets a repeated warning through at most once per period, counting those held back.
struct Throttle {
    every: Duration,
    last: Option<std::time::Instant>,
    count: u64,
}

impl Throttle {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            count: 0,
        }
    }

    /// Counts one occurrence at `now`; `Some(occurrences since the last warning,
    /// this one included)` when it is time to warn.
    fn tick(&mut self, now: std::time::Instant) -> Option<u64> {
        self.count += 1;
        match self.last {
            Some(at) if now.duration_since(at) < self.every => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.count))
            }
        }
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    #[test]
    fn a_repeated_warning_is_let_through_once_per_period_with_its_count() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let start = std::time::Instant::now();
        assert_eq!(t.tick(start), Some(1), "the first is logged at once");
        // Twenty a second for ten seconds: held back, counted.
        let held = (1..200)
            .filter_map(|i| t.tick(start + Duration::from_millis(50 * i)))
            .count();
        assert_eq!(held, 0);
        assert_eq!(t.tick(start + Duration::from_secs(10)), Some(200));
        assert_eq!(t.tick(start + Duration::from_secs(11)), None);
    }
}

#[cfg(test)]
mod tests {
    use flywheel_core::{Decision, Outcome};
    use serde_json::json;

    use super::*;
    use crate::NewItem;

    type Answer = tokio::sync::oneshot::Receiver<Result<Vec<Submitted>>>;

    fn submit(project_id: i64, actor: &str, now: Millis, ids: &[&str]) -> (Job, Answer) {
        let items = ids
            .iter()
            .map(|id| {
                PreparedItem::new(NewItem {
                    external_id: id.to_string(),
                    payload: json!({"text": id}),
                    attributes: json!({}),
                    prediction: None,
                    decision: Decision {
                        outcome: Outcome::Auto { label: "ham".into() },
                        rule: "r".into(),
                        reasons: vec![],
                        policy_version: 1,
                        audit: None,
                    },
                })
                .unwrap()
            })
            .collect();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Submit {
            project_id,
            actor: actor.into(),
            now,
            items,
            tx,
        };
        (Job::Submit(job), rx)
    }

    /// Submissions to one project by one actor in a group commit become one call; each
    /// caller gets its own items back, in order, with a duplicate across callers answered
    /// as one; a write between them and another actor's submission keep their own units.
    #[test]
    fn submissions_are_merged_per_project_and_actor() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO projects (name, labels, policy, policy_version, created_at) VALUES ('p', '[\"ham\"]', '{}', 1, 0)",
        )
        .unwrap();
        let (a, rx_a) = submit(1, "svc", 10, &["a", "b"]);
        let (other, rx_other) = submit(1, "other", 11, &["d"]);
        let (b, rx_b) = submit(1, "svc", 12, &["c", "a"]);
        let (wrote_tx, wrote_rx) = tokio::sync::oneshot::channel();
        let write: Write = Box::new(move |c| {
            let n = c.map(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0)));
            let outcome = n.and_then(|n| n.map_err(StoreError::from));
            (reply(wrote_tx, outcome), false)
        });
        let units = Unit::plan(vec![a, Job::Write(write), other, b]);
        let shape: Vec<usize> = units
            .iter()
            .map(|u| match u {
                Unit::Write(_) => 0,
                Unit::Submits(g) => g.len(),
            })
            .collect();
        assert_eq!(shape, [2, 0, 1]);

        let mut replies = Vec::new();
        conn.execute_batch("BEGIN").unwrap();
        for unit in units {
            assert!(!unit.run(&conn, &mut replies));
        }
        conn.execute_batch("COMMIT").unwrap();
        for r in replies {
            r(Ok(()));
        }
        let got = |rx: Answer| -> Vec<(String, i64, bool)> {
            rx.blocking_recv()
                .unwrap()
                .unwrap()
                .into_iter()
                .map(|s| (s.external_id, s.item_id, s.duplicate))
                .collect()
        };
        let a = got(rx_a);
        let b = got(rx_b);
        assert_eq!(a.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(b.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["c", "a"]);
        assert!(!a[0].2 && !a[1].2 && !b[0].2);
        assert_eq!(
            (b[1].1, b[1].2),
            (a[0].1, true),
            "the second 'a' is the first one's duplicate"
        );
        assert_eq!(got(rx_other).len(), 1);
        // The write ran after the merged submission (at the place of its first part).
        assert_eq!(wrote_rx.blocking_recv().unwrap().unwrap(), 3);
        // The merged call stored its items with the latest `now` among its callers.
        let times: Vec<(String, i64)> = conn
            .prepare("SELECT external_id, created_at FROM items ORDER BY external_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let want = [("a", 12), ("b", 12), ("c", 12), ("d", 11)].map(|(k, t)| (k.to_string(), t));
        assert_eq!(times, want);
        let events: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
        assert_eq!(events, 4, "one event per new item, none for the duplicate");
    }
}
