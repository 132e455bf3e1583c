//! The SQLite backend: embedded, one file, WAL mode.
//!
//! Writes go through one writer thread that batches concurrent requests into group
//! commits (`writer.rs`); a write is answered only after the WAL holding it has been
//! fsynced, so an acknowledged write survives power loss. Reads use a small pool of read-only connections, which WAL lets run beside the
//! writer. Claims are writes, so the single writer serialises them: no two reviewers can
//! be handed the same slot.

mod accounts;
mod amend;
mod answers;
mod common;
mod counts;
mod dashboard;
mod export;
mod fatigue;
mod feeds;
mod items;
mod models;
mod overrides;
mod quality;
mod search;
mod sla;
mod webhooks;
mod work;
mod workload;
mod writer;

pub(crate) use quality::fill_answer_stats;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::*;
use writer::Writer;

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_quality.sql"),
    include_str!("../../migrations/sqlite/0003_learning.sql"),
    include_str!("../../migrations/sqlite/0004_console.sql"),
    include_str!("../../migrations/sqlite/0005_checks.sql"),
    include_str!("../../migrations/sqlite/0006_answer_indexes.sql"),
    include_str!("../../migrations/sqlite/0007_webhooks.sql"),
    include_str!("../../migrations/sqlite/0008_sla.sql"),
    include_str!("../../migrations/sqlite/0009_fatigue.sql"),
    include_str!("../../migrations/sqlite/0010_perf.sql"),
    include_str!("../../migrations/sqlite/0011_fields.sql"),
    include_str!("../../migrations/sqlite/0012_amend.sql"),
    include_str!("../../migrations/sqlite/0013_deactivation.sql"),
    include_str!("../../migrations/sqlite/0014_label_mode.sql"),
    include_str!("../../migrations/sqlite/0015_key_names.sql"),
];

/// The schema version (`PRAGMA user_version`) of a database this build has migrated.
pub(crate) const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Prepared statements kept per connection (more than the store has).
const STATEMENT_CACHE: usize = 128;

/// Most idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    notices: tokio::sync::broadcast::Sender<Notice>,
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// Endpoints a delivery round holds (one node has the file, so in-process is enough).
    webhook_rounds: Mutex<std::collections::HashSet<i64>>,
}

impl SqliteStore {
    /// Opens (creating the file if needed) the database at `path` and brings its schema up
    /// to date. Its directory must exist: a mistyped path is refused rather than created
    /// (the CLI creates only its default directory).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.is_dir()
        {
            return Err(StoreError::Backend(format!(
                "the directory {} does not exist (create it first)",
                dir.display()
            )));
        }
        let conn = Connection::open(&path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 10000;
             PRAGMA cache_size = -16384;
             PRAGMA temp_store = MEMORY;
             PRAGMA mmap_size = 0;
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA journal_size_limit = 268435456;",
        )?;
        // rusqlite keeps 16 prepared statements by default; the writer uses more than that,
        // and re-parsing SQL cost 8% of its time in the claims benchmark.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // synchronous = NORMAL: COMMIT does not fsync; the writer's syncer does, before
        // any caller is answered (see writer.rs). Migrations run before it exists, so
        // they sync at commit.
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let writer =
            Writer::spawn(conn, &path).map_err(|e| StoreError::Backend(format!("cannot start the writer: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                notices: tokio::sync::broadcast::channel(1024).0,
                path,
                readers: Mutex::new(Vec::new()),
                webhook_rounds: Mutex::default(),
            }),
        })
    }

    /// Opens `sqlite://PATH` (or `sqlite:PATH`).
    pub fn open_url(url: &str) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::Backend(format!("not a sqlite URL: {url}")))?;
        if path.is_empty() {
            return Err(StoreError::Backend("the sqlite URL names no file".into()));
        }
        Self::open(path)
    }

    /// Caps the database file at `pages` pages (`PRAGMA max_page_count` on the writer's
    /// connection): a write past it fails as on a full disk (`SQLITE_FULL`, which the
    /// store reports as [`StoreError::StorageFull`]). Returns the cap SQLite applied (never
    /// below the pages already used). For a quota, and to test a full disk.
    pub async fn set_max_pages(&self, pages: u64) -> Result<u64> {
        self.write(move |c| Ok(c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| r.get(0))?))
            .await
    }

    /// The pages the database file holds now.
    pub async fn page_count(&self) -> Result<u64> {
        self.write(|c| Ok(c.query_row("PRAGMA page_count", [], |r| r.get(0))?))
            .await
    }

    fn notify(&self, n: Notice) {
        // No subscriber is fine: nobody is waiting.
        let _ = self.inner.notices.send(n);
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }

    /// Runs `f` on a read connection, inside one read transaction (a consistent snapshot).
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let out = tokio::task::spawn_blocking(move || {
            let conn = match inner.readers.lock().expect("reader pool").pop() {
                Some(c) => c,
                None => open_reader(&inner.path)?,
            };
            conn.execute_batch("BEGIN")?;
            let out = f(&conn);
            let _ = conn.execute_batch("COMMIT");
            let mut pool = inner.readers.lock().expect("reader pool");
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?;
        // Show only what is durable: a commit this read saw was counted before it became
        // visible, so waiting now for every commit counted so far covers it.
        self.inner.writer.durability.wait().await;
        out
    }
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA cache_size = -16384; PRAGMA mmap_size = 0;")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current as usize > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database is at schema version {current}, newer than this build knows ({}); upgrade flywheel",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i + 1;
        apply(conn, sql, version).map_err(|e| StoreError::Backend(format!("migration {version} failed: {e}")))?;
    }
    Ok(())
}

/// Runs one migration in a transaction. Foreign keys (enforced: the bundled SQLite turns
/// them on) are off meanwhile so that a table can be rebuilt — SQLite's documented way to
/// change a constraint — and checked as a whole before the commit.
fn apply(conn: &Connection, sql: &str, version: usize) -> std::result::Result<(), String> {
    let text = |e: rusqlite::Error| e.to_string();
    let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).map_err(text)?;
    conn.execute_batch("PRAGMA foreign_keys = OFF; BEGIN IMMEDIATE;")
        .map_err(text)?;
    let run = || -> std::result::Result<(), String> {
        conn.execute_batch(&format!("{sql}; PRAGMA user_version = {version};"))
            .map_err(text)?;
        let broken: Option<String> = conn
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()
            .map_err(text)?;
        match broken {
            Some(table) => Err(format!("a row of {table} refers to a row that does not exist")),
            None => conn.execute_batch("COMMIT").map_err(text),
        }
    };
    let done = run();
    if done.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn.pragma_update(None, "foreign_keys", enforced).map_err(text)?;
    done
}

#[async_trait]
impl Store for SqliteStore {
    // Accounts and projects: keys, projects and policies, reviewers, passwords and sessions.
    async fn bootstrap_admin(&self, key_hash: &str, now: Millis) -> Result<bool> {
        let key_hash = key_hash.to_string();
        self.write(move |c| accounts::bootstrap_admin(c, &key_hash, now)).await
    }

    async fn principal(&self, key_hash: &str) -> Result<Option<Principal>> {
        let key_hash = key_hash.to_string();
        self.read(move |c| accounts::principal(c, &key_hash)).await
    }

    async fn create_project(&self, new: NewProject, actor: &str, now: Millis) -> Result<Project> {
        let actor = actor.to_string();
        let p = self
            .write(move |c| accounts::create_project(c, new, &actor, now))
            .await?;
        self.notify(Notice::ProjectChanged { name: p.name.clone() });
        Ok(p)
    }

    async fn project(&self, name: &str) -> Result<Option<Project>> {
        let name = name.to_string();
        self.read(move |c| accounts::project(c, &name)).await
    }

    async fn policy_versions(&self, project_id: i64) -> Result<Vec<PolicyVersion>> {
        self.read(move |c| accounts::policy_versions(c, project_id)).await
    }

    async fn set_policy(&self, project: &str, policy: serde_json::Value, actor: &str, now: Millis) -> Result<u32> {
        let (name, actor) = (project.to_string(), actor.to_string());
        let version = self
            .write(move |c| accounts::set_policy(c, &name, &policy, &actor, now))
            .await?;
        self.notify(Notice::ProjectChanged {
            name: project.to_string(),
        });
        Ok(version)
    }

    async fn projects(&self) -> Result<Vec<Project>> {
        self.read(accounts::projects).await
    }

    async fn create_reviewer(&self, new: NewReviewer, actor: &str, now: Millis) -> Result<Reviewer> {
        let actor = actor.to_string();
        self.write(move |c| accounts::create_reviewer(c, new, &actor, now))
            .await
    }

    async fn create_service_key(&self, new: NewServiceKey, actor: &str, now: Millis) -> Result<()> {
        let actor = actor.to_string();
        self.write(move |c| accounts::create_service_key(c, new, &actor, now))
            .await
    }

    async fn reviewers(&self) -> Result<Vec<ReviewerAccount>> {
        self.read(accounts::reviewers).await
    }

    async fn update_reviewer(
        &self,
        name: &str,
        tiers: Vec<u8>,
        projects: Vec<String>,
        actor: &str,
        now: Millis,
    ) -> Result<Reviewer> {
        let (name, actor) = (name.to_string(), actor.to_string());
        let (reviewer, freed) = self
            .write(move |c| accounts::update_reviewer(c, &name, &tiers, &projects, &actor, now))
            .await?;
        for project_id in freed {
            self.notify(Notice::TasksAvailable { project_id });
        }
        Ok(reviewer)
    }

    async fn set_reviewer_active(&self, name: &str, active: bool, actor: &str, now: Millis) -> Result<Reviewer> {
        let (name, actor) = (name.to_string(), actor.to_string());
        let (reviewer, freed) = self
            .write(move |c| accounts::set_reviewer_active(c, &name, active, &actor, now))
            .await?;
        for project_id in freed {
            self.notify(Notice::TasksAvailable { project_id });
        }
        Ok(reviewer)
    }

    async fn active_tiers(&self, project_id: i64) -> Result<Vec<u8>> {
        self.read(move |c| accounts::active_tiers(c, project_id)).await
    }

    async fn add_reviewer_key(
        &self,
        reviewer: &str,
        key_hash: &str,
        key_name: Option<&str>,
        actor: &str,
        now: Millis,
    ) -> Result<()> {
        let (reviewer, key_hash, actor) = (reviewer.to_string(), key_hash.to_string(), actor.to_string());
        let key_name = key_name.map(str::to_string);
        self.write(move |c| accounts::add_reviewer_key(c, &reviewer, &key_hash, key_name.as_deref(), &actor, now))
            .await
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>> {
        self.read(accounts::keys).await
    }

    async fn touch_key(&self, key_hash: &str, now: Millis) -> Result<()> {
        let key_hash = key_hash.to_string();
        self.write(move |c| accounts::touch_key(c, &key_hash, now)).await
    }

    async fn revoke_key(&self, key_hash: &str, actor: &str, now: Millis) -> Result<()> {
        let (key_hash, actor) = (key_hash.to_string(), actor.to_string());
        self.write(move |c| accounts::revoke_key(c, &key_hash, &actor, now))
            .await
    }

    async fn set_password(&self, reviewer: &str, password_hash: Option<&str>, actor: &str, now: Millis) -> Result<()> {
        let (reviewer, hash, actor) = (
            reviewer.to_string(),
            password_hash.map(str::to_string),
            actor.to_string(),
        );
        self.write(move |c| accounts::set_password(c, &reviewer, hash.as_deref(), &actor, now))
            .await
    }

    async fn password_hash(&self, reviewer: &str) -> Result<Option<(i64, String)>> {
        let reviewer = reviewer.to_string();
        self.read(move |c| accounts::password_hash(c, &reviewer)).await
    }

    async fn create_session(
        &self,
        token_hash: &str,
        owner: SessionOwner,
        expires_at: Millis,
        now: Millis,
    ) -> Result<()> {
        let token_hash = token_hash.to_string();
        self.write(move |c| accounts::create_session(c, &token_hash, &owner, expires_at, now))
            .await
    }

    async fn session(&self, token_hash: &str, now: Millis) -> Result<Option<Principal>> {
        let token_hash = token_hash.to_string();
        self.read(move |c| accounts::session(c, &token_hash, now)).await
    }

    async fn end_session(&self, token_hash: &str) -> Result<()> {
        let token_hash = token_hash.to_string();
        self.write(move |c| accounts::end_session(c, &token_hash)).await
    }

    // Items: decided items stored with their tasks, and one item's whole record.
    async fn submit_items(
        &self,
        project_id: i64,
        items: Vec<NewItem>,
        actor: &str,
        now: Millis,
    ) -> Result<Vec<Submitted>> {
        // Serialise outside the writer thread: it should only run SQL.
        let prepared = items
            .into_iter()
            .map(items::PreparedItem::new)
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .inner
            .writer
            .submit(project_id, prepared, actor.to_string(), now)
            .await?;
        if out.iter().any(Submitted::created_task) {
            self.notify(Notice::TasksAvailable { project_id });
        }
        Ok(out)
    }

    async fn item(&self, project_id: i64, external_id: &str) -> Result<Option<ItemDetail>> {
        let external_id = external_id.to_string();
        self.read(move |c| items::item(c, project_id, &external_id)).await
    }

    async fn override_item(&self, project_id: i64, o: NewOverride, now: Millis) -> Result<OverrideResult> {
        let rerouted = matches!(o.action, flywheel_core::overrides::Action::Reroute { .. });
        let result = self
            .write(move |c| overrides::override_item(c, project_id, o, now))
            .await?;
        if rerouted {
            self.notify(Notice::TasksAvailable { project_id });
        }
        Ok(result)
    }

    async fn search_items(
        &self,
        project_id: i64,
        search: ItemSearch,
        before: Option<i64>,
        limit: usize,
        read: usize,
    ) -> Result<SearchHits> {
        self.read(move |c| search::search_items(c, project_id, &search, before, limit, read))
            .await
    }

    // Work: claims, leases and answers.
    async fn claim(&self, req: ClaimRequest, now: Millis) -> Result<Option<ClaimedTask>> {
        self.write(move |c| work::claim(c, &req, now)).await
    }

    async fn heartbeat(&self, task_id: i64, lease_id: i64, reviewer_id: i64, now: Millis) -> Result<Millis> {
        self.write(move |c| work::heartbeat(c, task_id, lease_id, reviewer_id, now))
            .await
    }

    async fn submit_review(&self, review: NewReview, now: Millis) -> Result<ReviewResult> {
        let (result, project_id) = self.write(move |c| answers::submit_review(c, review, now)).await?;
        if result.freed_work() {
            self.notify(Notice::TasksAvailable { project_id });
        }
        Ok(result)
    }

    async fn amend_review(&self, amendment: NewAmendment, now: Millis) -> Result<AmendResult> {
        let (result, project_id, freed) = self.write(move |c| amend::amend_review(c, amendment, now)).await?;
        if freed {
            self.notify(Notice::TasksAvailable { project_id });
        }
        Ok(result)
    }

    async fn submit_review_and_claim(
        &self,
        review: NewReview,
        next: ClaimRequest,
        now: Millis,
    ) -> Result<(ReviewResult, Result<Option<ClaimedTask>>)> {
        let ((result, project_id), next) = self
            .write(move |c| {
                let answered = answers::submit_review(c, review, now)?;
                // A claim that fails before writing (a held reviewer, an item whose stored
                // JSON cannot be read) leaves the answer standing; one that fails after
                // writing fails the whole job, and the writer rolls its group back.
                let before = c.total_changes();
                let claimed = match work::claim(c, &next, now) {
                    Err(e) if c.total_changes() == before => Err(e),
                    other => Ok(other?),
                };
                Ok((answered, claimed))
            })
            .await?;
        if result.freed_work() {
            self.notify(Notice::TasksAvailable { project_id });
        }
        Ok((result, next))
    }

    async fn expire_leases(&self, now: Millis, limit: usize) -> Result<usize> {
        let projects = self.write(move |c| work::expire_leases(c, now, limit)).await?;
        let mut distinct = projects.clone();
        distinct.sort_unstable();
        distinct.dedup();
        for project_id in distinct {
            self.notify(Notice::TasksAvailable { project_id });
        }
        Ok(projects.len())
    }

    // Feeds: the label feed and the event log.
    async fn labels(&self, project_id: i64, after: i64, limit: usize) -> Result<Vec<LabelRecord>> {
        self.read(move |c| feeds::labels(c, project_id, after, limit)).await
    }

    async fn events(&self, project_id: Option<i64>, after: i64, limit: usize) -> Result<Vec<EventRecord>> {
        self.read(move |c| feeds::events(c, project_id, after, limit)).await
    }

    async fn append_event(&self, project_id: i64, event: flywheel_core::Event, actor: &str, now: Millis) -> Result<()> {
        let actor = actor.to_string();
        self.write(move |c| feeds::append_event(c, project_id, &event, &actor, now))
            .await
    }

    // Quality: gold items and reviewers' records.
    async fn add_gold(&self, project_id: i64, items: Vec<NewGold>, actor: &str, now: Millis) -> Result<usize> {
        let actor = actor.to_string();
        self.write(move |c| quality::add_gold(c, project_id, items, &actor, now))
            .await
    }

    async fn reviewer_stats(&self, project_id: i64) -> Result<Vec<ReviewerStats>> {
        self.read(move |c| quality::reviewer_stats(c, project_id)).await
    }

    async fn hold_reviewer(
        &self,
        project_id: i64,
        reviewer: &str,
        reason: &str,
        actor: &str,
        now: Millis,
    ) -> Result<()> {
        let (reviewer, reason, actor) = (reviewer.to_string(), reason.to_string(), actor.to_string());
        let freed = self
            .write(move |c| quality::hold_reviewer(c, project_id, &reviewer, &reason, &actor, now))
            .await?;
        for project_id in freed {
            self.notify(Notice::TasksAvailable { project_id });
        }
        Ok(())
    }

    async fn release_reviewer(&self, project_id: i64, reviewer: &str, actor: &str, now: Millis) -> Result<()> {
        let (reviewer, actor) = (reviewer.to_string(), actor.to_string());
        self.write(move |c| quality::release_reviewer(c, project_id, &reviewer, &actor, now))
            .await
    }

    async fn project_answers(&self, project_id: i64) -> Result<Vec<ProjectAnswer>> {
        self.read(move |c| quality::project_answers(c, project_id)).await
    }

    // Fatigue and pacing.
    async fn reviewer_answers(&self, project_id: i64, reviewer_id: i64, limit: u32) -> Result<Vec<SessionAnswer>> {
        self.read(move |c| fatigue::reviewer_answers(c, project_id, reviewer_id, limit))
            .await
    }

    async fn record_fatigue(&self, f: NewFatigue, now: Millis) -> Result<bool> {
        self.write(move |c| fatigue::record_fatigue(c, &f, now)).await
    }

    async fn fatigue_states(&self, project_id: i64, reviewer_id: Option<i64>) -> Result<Vec<FatigueState>> {
        self.read(move |c| fatigue::fatigue_states(c, project_id, reviewer_id))
            .await
    }

    // Models: the built-in model's training data, snapshots and predictions.
    async fn training_examples(&self, project_id: i64, after: i64, limit: usize) -> Result<Vec<TrainingExample>> {
        self.read(move |c| models::training_examples(c, project_id, after, limit))
            .await
    }

    async fn save_model(&self, project_id: i64, snapshot: ModelSnapshot, now: Millis) -> Result<()> {
        self.write(move |c| models::save_model(c, project_id, snapshot, now))
            .await
    }

    async fn latest_model(&self, project_id: i64) -> Result<Option<ModelSnapshot>> {
        self.read(move |c| models::latest_model(c, project_id)).await
    }

    async fn verified_predictions(&self, project_id: i64, limit: usize) -> Result<Vec<VerifiedPrediction>> {
        self.read(move |c| models::verified_predictions(c, project_id, limit))
            .await
    }

    async fn history(&self, project_id: i64, limit: usize) -> Result<Vec<flywheel_core::backtest::HistoryItem>> {
        self.read(move |c| models::history(c, project_id, limit)).await
    }

    async fn recent_predictions(&self, project_id: i64, limit: usize) -> Result<Vec<flywheel_core::Prediction>> {
        self.read(move |c| models::recent_predictions(c, project_id, limit))
            .await
    }

    async fn recent_rules(&self, project_id: i64, limit: usize) -> Result<Vec<String>> {
        self.read(move |c| models::recent_rules(c, project_id, limit)).await
    }

    // Console and dashboard: counts and time series.
    async fn stats(&self, project_id: i64, now: Millis) -> Result<Stats> {
        self.read(move |c| dashboard::stats(c, project_id, now)).await
    }

    async fn stats_recount(&self, project_id: i64, now: Millis) -> Result<Stats> {
        self.read(move |c| dashboard::stats_recount(c, project_id, now)).await
    }

    async fn answers_on_day(&self, reviewer_id: i64, day: i64) -> Result<i64> {
        self.read(move |c| dashboard::answers_on_day(c, reviewer_id, day)).await
    }

    async fn activity(&self, project_id: i64, since: Millis, bucket_ms: i64) -> Result<Vec<ActivityBucket>> {
        self.read(move |c| dashboard::activity(c, project_id, since, bucket_ms))
            .await
    }

    async fn latest_events(&self, project_id: i64, limit: usize) -> Result<Vec<EventRecord>> {
        self.read(move |c| dashboard::latest_events(c, project_id, limit)).await
    }

    async fn queue_depths(&self, project_id: i64, now: Millis, sla_queues: Vec<String>) -> Result<Vec<QueueDepth>> {
        self.read(move |c| dashboard::queue_depths(c, project_id, now, &sla_queues))
            .await
    }

    async fn run_sla(
        &self,
        slas: std::collections::HashMap<i64, Arc<flywheel_core::sla::Slas>>,
        now: Millis,
        limit: usize,
    ) -> Result<SlaRun> {
        let (run, escalated) = self.write(move |c| sla::run_sla(c, &slas, now, limit)).await?;
        let mut projects = escalated;
        projects.sort_unstable();
        projects.dedup();
        for project_id in projects {
            self.notify(Notice::TasksAvailable { project_id });
        }
        Ok(run)
    }

    async fn workload_answers(
        &self,
        project_id: i64,
        since: Millis,
        until: Millis,
    ) -> Result<Vec<flywheel_core::workload::Answer>> {
        self.read(move |c| workload::workload_answers(c, project_id, since, until))
            .await
    }

    fn writer_stats(&self) -> Option<Arc<crate::observe::WriterStats>> {
        Some(self.inner.writer.stats.clone())
    }

    // Webhooks: endpoints, their outbox cursors (into the event log) and attempts.
    async fn create_webhook(&self, project_id: i64, new: NewWebhook, actor: &str, now: Millis) -> Result<Webhook> {
        let actor = actor.to_string();
        self.write(move |c| webhooks::create(c, project_id, new, &actor, now))
            .await
    }

    async fn webhooks(&self, project_id: i64) -> Result<Vec<Webhook>> {
        self.read(move |c| webhooks::list(c, project_id)).await
    }

    async fn webhook(&self, project_id: i64, id: i64) -> Result<Option<Webhook>> {
        self.read(move |c| webhooks::get(c, project_id, id)).await
    }

    async fn update_webhook(
        &self,
        project_id: i64,
        id: i64,
        change: WebhookChange,
        actor: &str,
        now: Millis,
    ) -> Result<Webhook> {
        let actor = actor.to_string();
        self.write(move |c| webhooks::update(c, project_id, id, change, &actor, now))
            .await
    }

    async fn delete_webhook(&self, project_id: i64, id: i64, actor: &str, now: Millis) -> Result<()> {
        let actor = actor.to_string();
        self.write(move |c| webhooks::delete(c, project_id, id, &actor, now))
            .await
    }

    async fn rotate_webhook(
        &self,
        project_id: i64,
        id: i64,
        secret: &str,
        previous_until: Millis,
        actor: &str,
        now: Millis,
    ) -> Result<Webhook> {
        let (secret, actor) = (secret.to_string(), actor.to_string());
        self.write(move |c| webhooks::rotate(c, project_id, id, &secret, previous_until, &actor, now))
            .await
    }

    async fn replay_webhook(
        &self,
        project_id: i64,
        id: i64,
        from_seq: i64,
        actor: &str,
        now: Millis,
    ) -> Result<Webhook> {
        let actor = actor.to_string();
        self.write(move |c| webhooks::replay(c, project_id, id, from_seq, &actor, now))
            .await
    }

    async fn webhook_deliveries(&self, project_id: i64, id: i64, limit: usize) -> Result<Vec<DeliveryRecord>> {
        self.read(move |c| webhooks::deliveries(c, project_id, id, limit)).await
    }

    async fn due_webhooks(&self, now: Millis) -> Result<Vec<i64>> {
        self.read(move |c| webhooks::due(c, now)).await
    }

    async fn webhook_backlog(&self) -> Result<Vec<(i64, i64)>> {
        self.read(webhooks::backlog).await
    }

    async fn lease_webhook(&self, id: i64, now: Millis) -> Result<Option<Box<dyn WebhookLease>>> {
        if !self.inner.webhook_rounds.lock().expect("webhook rounds").insert(id) {
            return Ok(None);
        }
        // From here the claim is released when `lease` drops, whatever happens.
        let mut lease = webhooks::SqliteWebhookLease {
            store: self.clone(),
            id,
            target: None,
        };
        lease.target = self.read(move |c| webhooks::target(c, id, now)).await?;
        Ok(lease.target.is_some().then(|| Box::new(lease) as Box<dyn WebhookLease>))
    }

    // Exports.
    async fn export_items(
        &self,
        project_id: i64,
        filter: ExportFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ExportRow>> {
        self.read(move |c| export::export_items(c, project_id, &filter, after, limit))
            .await
    }

    async fn import_labels(
        &self,
        project_id: i64,
        labels: Vec<ImportedLabel>,
        actor: &str,
        now: Millis,
    ) -> Result<usize> {
        let actor = actor.to_string();
        self.write(move |c| export::import_labels(c, project_id, labels, &actor, now))
            .await
    }

    // Notices.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Notice> {
        self.inner.notices.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 5 rebuilds four tables: every row and index survives, the constraints
    /// still hold, and the hot statements no longer build a temporary B-tree per row.
    #[test]
    fn rebuilt_tables_keep_rows_indexes_and_checks() {
        let conn = Connection::open_in_memory().unwrap();
        for (i, sql) in MIGRATIONS[..4].iter().enumerate() {
            conn.execute_batch(&format!("BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;", i + 1))
                .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO projects (name, labels, policy, policy_version, created_at) VALUES ('p', '[]', '{}', 1, 0);
             INSERT INTO items (project_id, external_id, payload, attributes, decision, outcome, policy_version, created_at)
                 VALUES (1, 'a', '{}', '{}', '{}', 'review', 1, 0), (1, 'b', '{}', '{}', '{}', 'review', 1, 0);
             INSERT INTO reviewers (name, tiers, created_at) VALUES ('r', '[1]', 0);
             INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, created_at, gold)
                 VALUES (1, 1, 'audit', 'q', 1, 0, 1, 1, 'open', 5, 1);
             INSERT INTO leases (task_id, item_id, reviewer_id, granted_at, expires_at, lease_ms, state)
                 VALUES (1, 1, 1, 1, 2, 3, 'expired');
             INSERT INTO reviews (review_id, reviewer_id, task_id, item_id, lease_id, kind, claimed_at, answered_at, result)
                 VALUES ('r', 1, 1, 1, 1, 'skip', 1, 2, '{}');
             INSERT INTO labels (project_id, item_id, label, source, policy_version, resolved_at)
                 VALUES (1, 1, 'ham', 'adjudicated', 1, 1);",
        )
        .unwrap();
        let indexes = |c: &Connection| -> Vec<String> {
            c.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' ORDER BY name")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let before = indexes(&conn);
        apply(&conn, MIGRATIONS[4], 5).unwrap();
        assert_eq!(indexes(&conn), before);
        let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert!(enforced, "foreign keys are enforced again after the migration");
        let row: (String, i64, String, String, String) = conn
            .query_row(
                "SELECT t.stage, t.gold, l.state, r.kind, b.source FROM tasks t, leases l, reviews r, labels b",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(
            row,
            ("audit".into(), 1, "expired".into(), "skip".into(), "adjudicated".into())
        );
        let refused = conn.execute("UPDATE leases SET state = 'lost' WHERE id = 1", []);
        assert!(refused.unwrap_err().to_string().contains("CHECK"));
        for sql in [
            "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, created_at)
                 VALUES (1, 2, 'review', 'q', 1, 0, 1, 1, 'open', 6)",
            "UPDATE leases SET state = 'answered' WHERE id = 1",
            "INSERT INTO reviews (review_id, reviewer_id, task_id, item_id, lease_id, kind, claimed_at, answered_at, result)
                 VALUES ('s', 1, 1, 1, 1, 'label', 1, 2, '{}')",
            "INSERT INTO labels (project_id, item_id, label, source, policy_version, resolved_at)
                 VALUES (1, 2, 'ham', 'auto', 1, 1)",
        ] {
            let ops: Vec<String> = conn
                .prepare(&format!("EXPLAIN {sql}"))
                .unwrap()
                .query_map([], |r| r.get(1))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(!ops.iter().any(|o| o == "OpenEphemeral"), "{sql}");
        }
        // Migration 6: reviews keep their rows, the idempotency key is per task, and the
        // answers of each reviewer's day are counted.
        conn.execute(
            "INSERT INTO reviews (review_id, reviewer_id, task_id, item_id, lease_id, kind, claimed_at, answered_at, result)
                 VALUES ('s', 1, 1, 1, 1, 'label', 1, 86400001, '{}')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, created_at)
                 VALUES (1, 2, 'review', 'q', 1, 0, 1, 1, 'open', 6)",
            [],
        )
        .unwrap();
        migrate(&conn).unwrap();
        let days: Vec<(i64, i64, i64)> = conn
            .prepare("SELECT day, reviewer_id, answers FROM reviewer_days ORDER BY day")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(days, vec![(0, 1, 1), (1, 1, 1)]);
        let reviews: i64 = conn
            .query_row("SELECT count(*) FROM reviews", [], |r| r.get(0))
            .unwrap();
        assert_eq!(reviews, 2);
        let insert = "INSERT INTO reviews (review_id, reviewer_id, task_id, item_id, lease_id, kind, claimed_at, answered_at, result)
                      VALUES ('s', 1, ?1, 1, 1, 'label', 1, 2, '{}')";
        let again = conn.execute(insert, [1]);
        assert!(
            again.unwrap_err().to_string().contains("UNIQUE"),
            "one review_id per task and reviewer"
        );
        assert_eq!(
            conn.execute(insert, [2]).unwrap(),
            1,
            "the same review_id on another task is another answer"
        );
        let after = indexes(&conn);
        assert!(!after.iter().any(|i| i == "reviews_task"));
        // 0009 (fatigue) brings reviews_reviewer_time back: sessions are read by reviewer.
        assert!(after.iter().any(|i| i == "reviews_reviewer_time"));
    }

    /// `item.decided` events leave the decision in the item and get it back when read;
    /// events stored before that keep the one they carry.
    #[test]
    fn decided_events_read_their_items_decision() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        conn.execute_batch(
            r#"INSERT INTO projects (name, labels, policy, policy_version, created_at) VALUES ('p', '[]', '{}', 1, 0);
             INSERT INTO items (project_id, external_id, payload, attributes, decision, outcome, policy_version, created_at)
                 VALUES (1, 'a', '{}', '{}', '{"rule":"now"}', 'review', 1, 0);
             INSERT INTO events (project_id, item_id, task_id, at, kind, actor, data) VALUES
                 (1, 1, NULL, 0, 'item.decided', 's', '{"tasks":[],"resolved":null}'),
                 (1, 1, NULL, 0, 'item.decided', 's', '{"decision":{"rule":"then"},"tasks":[],"resolved":null}'),
                 (1, 1, NULL, 0, 'item.noted', 's', '{"note":1}');"#,
        )
        .unwrap();
        let data: Vec<serde_json::Value> = feeds::events(&conn, Some(1), 0, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(data[0]["decision"]["rule"], "now");
        assert_eq!(data[1]["decision"]["rule"], "then");
        assert_eq!(data[2], serde_json::json!({"note": 1}));
    }
}
