//! The one writer: a thread that owns the SQLite write connection and batches whatever
//! jobs are waiting into one transaction (group commit).
//!
//! Each job runs inside its own savepoint, so a job that fails (bad input found against
//! stored state) rolls back only its own writes. Every job's caller is answered only after
//! the COMMIT that made its writes durable; if that COMMIT fails, every job in the batch
//! gets the error and nothing of the batch was written.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use rusqlite::Connection;

use crate::{Result, StoreError};

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(Result<&Connection>) -> Reply + Send>;

/// Most jobs one transaction takes; more waiting jobs go in the next one.
const MAX_BATCH: usize = 512;

pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub(crate) fn spawn(conn: Connection) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("flywheel-sqlite-writer".into())
            .spawn(move || run(conn, rx))?;
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
            let outcome = conn.and_then(|c| in_savepoint(c, f));
            Box::new(move |commit: Result<()>| {
                let _ = tx.send(commit.and(outcome));
            })
        });
        self.tx
            .send(job)
            .map_err(|_| StoreError::Backend("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the writer has stopped".into()))?
    }
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT job")?;
    let outcome = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
        Ok(r) => r,
        Err(_) => Err(StoreError::Backend("a write panicked; it was rolled back".into())),
    };
    match &outcome {
        Ok(_) => conn.execute_batch("RELEASE job")?,
        Err(_) => conn.execute_batch("ROLLBACK TO job; RELEASE job")?,
    }
    outcome
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
        let replies: Vec<Reply>;
        let commit: Result<()>;
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                replies = jobs.into_iter().map(|j| j(Ok(&conn))).collect();
                commit = conn.execute_batch("COMMIT").map_err(|e| {
                    tracing::error!(error = %e, "group commit failed");
                    let _ = conn.execute_batch("ROLLBACK");
                    StoreError::from(e)
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "could not begin a write transaction");
                let e = StoreError::from(e);
                replies = jobs.into_iter().map(|j| j(Err(e.clone()))).collect();
                commit = Err(e);
            }
        }
        for reply in replies {
            reply(commit.clone());
        }
    }
}
