//! Item submissions made at the same time are merged into one statement.
//!
//! PostgreSQL spends most of a single-item submission starting the statement (planning,
//! opening five tables and their indexes, foreign-key checks), not writing the rows: the
//! statement with 20 items cost it 1.9 ms against 1.8 ms with one (`EXPLAIN ANALYZE` on a
//! fresh connection), and with one statement per request PostgreSQL used ~450 µs of CPU a
//! decision. So, as the SQLite writer does with its group commit, submissions to one
//! project by one caller are queued, and one task per queue runs them one statement at a
//! time: each statement takes every submission that arrived while the last one ran (up to
//! [`MAX_MERGED_ITEMS`] items), and each caller gets its own items' results. A lone
//! submission runs at once. A merged statement that fails is run again caller by caller,
//! so an item PostgreSQL refuses fails only its own submission. The task is spawned, so a
//! caller that goes away (a dropped connection cancels its request) cannot strand the
//! others — its items are still written, as a retry of it would find.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use tokio::sync::oneshot;

use super::items::{self, PreparedItem};
use super::{MAX_ATTEMPTS, PgStore, TxError, TxResult};
use crate::{Millis, Result, StoreError, Submitted};

/// Most items one merged statement takes; submissions beyond it wait for the next one.
const MAX_MERGED_ITEMS: usize = 4096;

/// Submissions waiting for a statement, by project and caller.
#[derive(Default)]
pub(super) struct Waiting(Mutex<HashMap<(i64, String), Queue>>);

#[derive(Default)]
struct Queue {
    waiting: Vec<Submission>,
    /// Whether a task is running this queue's statements.
    running: bool,
}

struct Submission {
    items: Vec<PreparedItem>,
    now: Millis,
    tx: oneshot::Sender<Result<Vec<Submitted>>>,
}

impl PgStore {
    /// Submits `items`, merged with the submissions to the same project by the same actor
    /// that are waiting too.
    pub(super) async fn submit_merged(
        &self,
        project_id: i64,
        items: Vec<PreparedItem>,
        actor: &str,
        now: Millis,
    ) -> Result<Vec<Submitted>> {
        let (tx, rx) = oneshot::channel();
        let key = (project_id, actor.to_string());
        let start = {
            let mut waiting = self.waiting.0.lock().expect("waiting submissions");
            let queue = waiting.entry(key.clone()).or_default();
            queue.waiting.push(Submission { items, now, tx });
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(self.clone().run_merged(key));
        }
        rx.await
            .map_err(|_| StoreError::Backend("the merged submission was abandoned".into()))?
    }

    /// Runs the submissions waiting for `key`, as many as one statement takes at a time,
    /// until none are left: one statement at a time, so that those arriving meanwhile go
    /// together in the next (`flywheel bench decisions`, 64 connections: 13,600–20,100/s
    /// with one at a time, 11,100–15,400 with two, 5,000–7,300 with sixteen).
    async fn run_merged(self, key: (i64, String)) {
        let _unwedge = Unwedge(&self, &key);
        // Kept from one statement to the next while the queue has work (taking one from
        // the pool for each statement: 10,052–10,169 against 12,516–14,401 decisions/s,
        // alternating); dropped on an error, so a broken connection is not kept.
        let mut conn = None;
        loop {
            let batch = {
                let mut waiting = self.waiting.0.lock().expect("waiting submissions");
                let queue = waiting.get_mut(&key).expect("a running queue is kept");
                if queue.waiting.is_empty() {
                    waiting.remove(&key);
                    return;
                }
                take_items(&mut queue.waiting, MAX_MERGED_ITEMS)
            };
            let now = batch.iter().map(|s| s.now).max().unwrap_or_default();
            let mut sizes = Vec::with_capacity(batch.len());
            let mut senders = Vec::with_capacity(batch.len());
            let mut items = Vec::new();
            for s in batch {
                sizes.push(s.items.len());
                senders.push(s.tx);
                items.extend(s.items);
            }
            match self.submit_once(&mut conn, &key, &items, now).await {
                Ok(results) => {
                    let mut results = results.into_iter();
                    for (tx, n) in senders.into_iter().zip(sizes) {
                        let _ = tx.send(Ok(results.by_ref().take(n).collect()));
                    }
                }
                Err(e) if senders.len() == 1 => {
                    let _ = senders.pop().expect("one").send(Err(e));
                }
                Err(_) => {
                    // One caller's item may be what PostgreSQL refused (text the JSON
                    // allowed but PostgreSQL does not, such as a NUL): it must not fail the
                    // others, so each submission is tried again on its own.
                    let mut from = 0;
                    for (tx, n) in senders.into_iter().zip(sizes) {
                        let own = self.submit_once(&mut conn, &key, &items[from..from + n], now).await;
                        from += n;
                        let _ = tx.send(own);
                    }
                }
            }
        }
    }

    /// One statement for `items`, on `conn` (see `autocommit!`).
    async fn submit_once(
        &self,
        conn: &mut Option<PoolConnection<Postgres>>,
        key: &(i64, String),
        items: &[PreparedItem],
        now: Millis,
    ) -> Result<Vec<Submitted>> {
        let (project_id, actor) = key;
        let results: Vec<Submitted> = autocommit!(self.pool, conn, |c| {
            items::submit_items(c, &self.channel, *project_id, items, actor, now).await
        })?;
        let tasks = results.iter().filter(|r| !r.duplicate && r.created_task()).count();
        self.stats.note_new_tasks(self, tasks);
        Ok(results)
    }
}

/// Keeps the planner's statistics of `items` and `tasks` up to date while items pour in.
///
/// With statistics taken when `tasks` was small, PostgreSQL claims by sorting every open
/// task instead of walking the claim index (`EXPLAIN ANALYZE` after a fresh import of
/// 20,000 items: 20 ms a claim, a sort of 19,135 rows; `flywheel bench claims` 44–93
/// cycles/s), and autovacuum's own ANALYZE can be a minute or more away. So once the tasks
/// this node added since the last ANALYZE pass a fifth of the table (and at least 1,000),
/// it runs one in the background.
#[derive(Default)]
pub(super) struct Statistics {
    new_tasks: AtomicI64,
    rows_at_last: AtomicI64,
    running: AtomicBool,
}

impl Statistics {
    fn note_new_tasks(&self, store: &PgStore, n: usize) {
        let pending = self.new_tasks.fetch_add(n as i64, Ordering::Relaxed) + n as i64;
        let due = pending >= (self.rows_at_last.load(Ordering::Relaxed) / 5).max(1000);
        if due && !self.running.swap(true, Ordering::AcqRel) {
            let store = store.clone();
            tokio::spawn(async move {
                let stats = &store.stats;
                stats.new_tasks.store(0, Ordering::Relaxed);
                match analyze(&store.pool).await {
                    Ok(rows) => stats.rows_at_last.store(rows, Ordering::Relaxed),
                    Err(e) => tracing::warn!(error = %e, "ANALYZE of items and tasks failed"),
                }
                stats.running.store(false, Ordering::Release);
            });
        }
    }
}

/// Analyzes `items` and `tasks`; returns the rows `tasks` has by the new statistics.
async fn analyze(pool: &sqlx::PgPool) -> std::result::Result<i64, sqlx::Error> {
    sqlx::query("ANALYZE items, tasks").execute(pool).await?;
    let rows: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'tasks'::regclass")
        .fetch_one(pool)
        .await?;
    Ok(rows.max(0.0) as i64)
}

/// Should a statement's task panic, forgets its queue: the callers waiting in it get an
/// error (their senders are dropped), and the next submission starts a new queue instead
/// of waiting for a task that is gone.
struct Unwedge<'a>(&'a PgStore, &'a (i64, String));

impl Drop for Unwedge<'_> {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(mut waiting) = self.0.waiting.0.lock()
        {
            waiting.remove(self.1);
        }
    }
}

/// Takes the first submissions of `waiting` up to `max` items (always at least one).
fn take_items(waiting: &mut Vec<Submission>, max: usize) -> Vec<Submission> {
    let mut total = 0;
    let mut keep = 0;
    for s in waiting.iter() {
        if keep > 0 && total + s.items.len() > max {
            break;
        }
        total += s.items.len();
        keep += 1;
    }
    let rest = waiting.split_off(keep);
    std::mem::replace(waiting, rest)
}
