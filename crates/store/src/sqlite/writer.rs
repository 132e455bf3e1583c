//! The one writer: a thread that owns the SQLite write connection and batches whatever
//! jobs are waiting into one transaction (group commit).
//!
//! Every job's caller is answered only after the COMMIT that made its writes durable.
//! Jobs check before they write (a lost lease, a wrong label), so an expected refusal
//! leaves no trace. A job that fails *after* writing (a database error, a panic) would
//! leave half its writes in the batch: then the whole batch is rolled back, the failing job
//! gets its error and the others a retryable one — nothing half-written is ever committed.
//! (This replaces a savepoint per job, which cost a copy of every page a job touched.)
//!
//! Checkpoints (copying the WAL back into the database file) run on a separate connection
//! and thread, so the writer never stops for them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

use crate::{Result, StoreError};

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
/// A job runs on the write connection and returns its reply and whether it failed after
/// writing something.
type Job = Box<dyn FnOnce(Result<&Connection>) -> (Reply, bool) + Send>;

/// Most jobs one transaction takes; more waiting jobs go in the next one.
const MAX_BATCH: usize = 1024;
/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer on `conn` and the checkpointer on a connection of its own to
    /// `path`. Both stop when the `Writer` is dropped.
    pub(crate) fn spawn(conn: Connection, path: &Path) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("flywheel-sqlite-writer".into())
            .spawn(move || {
                run(conn, rx);
                drop(stop_tx);
            })?;
        let checkpointer = Connection::open(path).map_err(std::io::Error::other)?;
        std::thread::Builder::new()
            .name("flywheel-sqlite-checkpoint".into())
            .spawn(move || checkpoint(checkpointer, stop_rx))?;
        Ok(Self { tx })
    }

    /// Runs `f` in the next group commit and returns its result once durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let (outcome, wrote_then_failed) = match conn {
                Err(e) => (Err(e), false),
                Ok(c) => {
                    let before = c.total_changes();
                    let outcome = match catch_unwind(AssertUnwindSafe(|| f(c))) {
                        Ok(r) => r,
                        Err(_) => Err(StoreError::Backend("a write panicked; it was rolled back".into())),
                    };
                    let dirty = outcome.is_err() && c.total_changes() != before;
                    (outcome, dirty)
                }
            };
            let reply: Reply = Box::new(move |commit: Result<()>| {
                let answer = match (commit, outcome) {
                    (Ok(()), outcome) => outcome,
                    (Err(_), Err(own)) => Err(own),
                    (Err(e), Ok(_)) => Err(e),
                };
                let _ = tx.send(answer);
            });
            (reply, wrote_then_failed)
        });
        self.tx
            .send(job)
            .map_err(|_| StoreError::Backend("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the writer has stopped".into()))?
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut replies: Vec<Reply> = Vec::with_capacity(jobs.len());
        let commit: Result<()> = match conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut s| s.execute([])) {
            Ok(_) => {
                let mut poisoned = false;
                for job in jobs {
                    let (reply, dirty) = job(Ok(&conn));
                    poisoned |= dirty;
                    replies.push(reply);
                }
                if poisoned {
                    tracing::error!("a write failed after writing; rolling its whole group commit back");
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(StoreError::Backend(
                        "a write in the same group commit failed; nothing was written, retry".into(),
                    ))
                } else {
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
                let e = StoreError::from(e);
                for job in jobs {
                    replies.push(job(Err(e.clone())).0);
                }
                Err(e)
            }
        };
        for reply in replies {
            reply(commit.clone());
        }
    }
}

/// Copies committed WAL frames into the database file, passively (it never blocks the
/// writer or readers), until the writer stops.
fn checkpoint(conn: Connection, stop: mpsc::Receiver<()>) {
    let _ = conn.busy_timeout(Duration::from_millis(100));
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed; will retry");
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}
