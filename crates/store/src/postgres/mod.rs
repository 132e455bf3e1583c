//! The PostgreSQL backend: several `flywheel serve` nodes on one database.
//!
//! Each operation is one transaction, events included. Claims take the next task with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers never queue on one row. Changes that
//! other nodes must hear about are sent with `pg_notify` inside the transaction (delivered
//! only if it commits) and forwarded by each node's listener to its local subscribers.
//! Singleton work (lease expiry, feed sequencing) runs under transaction-scoped advisory
//! locks, so it moves to another node the moment a node dies.

#[macro_use]
mod tx;

mod accounts;
mod amend;
mod answers;
mod common;
mod dashboard;
mod export;
mod fatigue;
mod feeds;
mod items;
mod merge;
mod models;
mod overrides;
mod quality;
mod search;
mod sla;
mod webhooks;
mod work;
mod workload;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use crate::*;
use tx::{MAX_ATTEMPTS, retryable};
pub(crate) use tx::{TxError, TxResult};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
    (2, "quality", include_str!("../../migrations/postgres/0002_quality.sql")),
    (
        3,
        "learning",
        include_str!("../../migrations/postgres/0003_learning.sql"),
    ),
    (4, "console", include_str!("../../migrations/postgres/0004_console.sql")),
    (
        5,
        "answer_scope",
        include_str!("../../migrations/postgres/0005_answer_scope.sql"),
    ),
    (
        6,
        "webhooks",
        include_str!("../../migrations/postgres/0006_webhooks.sql"),
    ),
    (7, "sla", include_str!("../../migrations/postgres/0007_sla.sql")),
    (8, "fatigue", include_str!("../../migrations/postgres/0008_fatigue.sql")),
    (9, "perf", include_str!("../../migrations/postgres/0009_perf.sql")),
    (10, "fields", include_str!("../../migrations/postgres/0010_fields.sql")),
    (11, "amend", include_str!("../../migrations/postgres/0011_amend.sql")),
    (
        12,
        "deactivation",
        include_str!("../../migrations/postgres/0012_deactivation.sql"),
    ),
    (
        13,
        "label_mode",
        include_str!("../../migrations/postgres/0013_label_mode.sql"),
    ),
    (
        14,
        "key_names",
        include_str!("../../migrations/postgres/0014_key_names.sql"),
    ),
];

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    channel: String,
    notices: tokio::sync::broadcast::Sender<Notice>,
    waiting: std::sync::Arc<merge::Waiting>,
    stats: std::sync::Arc<merge::Statistics>,
    _listener: std::sync::Arc<ListenerGuard>,
}

/// Stops the notice listener (and frees its connection) when the last clone of the store
/// is dropped.
struct ListenerGuard(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            let _ = s.send(());
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, runs migrations (safely when several nodes start at once: the migrator
    /// holds an advisory lock) and starts the notice listener. `schema` puts every table
    /// in that schema (created if missing); tests use one schema each.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<Self> {
        let mut opts =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?;
        if let Some(s) = schema {
            if !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                || s.is_empty()
                || s.len() > 50
            {
                return Err(StoreError::Backend(format!("bad schema name '{s}'")));
            }
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(opts.clone())
                .await?;
            sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {s}")).into_sql_str())
                .execute(&admin)
                .await?;
            admin.close().await;
            opts = opts.options([("search_path", s)]);
        }
        // One connection first, so that a server that is down or refuses the role is named
        // at once ("Connection refused") — the pool would retry for its whole acquire
        // timeout and then say only that it timed out.
        let first = tokio::time::timeout(Duration::from_secs(30), PgConnection::connect_with(&opts))
            .await
            .map_err(|_| StoreError::Backend("cannot connect to PostgreSQL: no answer within 30 s".into()))?
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        first.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        let migrations = MIGRATIONS
            .iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    (*d).into(),
                    MigrationType::Simple,
                    AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        // One channel per schema, so deployments that share a database do not hear each
        // other. The schema is the URL's (`options=-c search_path=…`) or `schema`.
        let current: Option<String> = sqlx::query_scalar("SELECT current_schema()").fetch_one(&pool).await?;
        let channel = match current.as_deref() {
            None | Some("public") => "flywheel".to_string(),
            Some(s) => format!("flywheel_{s}").chars().take(63).collect(),
        };
        let (notices, _) = tokio::sync::broadcast::channel(1024);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(&channel).await?;
        let tx = notices.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    r = listener.recv() => r,
                    _ = &mut stopped => return,
                };
                match received {
                    Ok(n) => match serde_json::from_str::<Notice>(n.payload()) {
                        Ok(notice) => {
                            let _ = tx.send(notice);
                        }
                        Err(e) => tracing::warn!(error = %e, "ignoring a malformed notice"),
                    },
                    Err(e) => {
                        // PgListener reconnects on the next recv; wait a little first.
                        tracing::warn!(error = %e, "notice listener lost its connection; reconnecting");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(Self {
            pool,
            channel,
            notices,
            waiting: Default::default(),
            stats: Default::default(),
            _listener: std::sync::Arc::new(ListenerGuard(Some(stop))),
        })
    }

    /// Drops the schema (tests clean up after themselves with this).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
        let opts = PgConnectOptions::from_str(url).map_err(|e| StoreError::Backend(e.to_string()))?;
        let admin = PgPoolOptions::new().max_connections(1).connect_with(opts).await?;
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).into_sql_str())
            .execute(&admin)
            .await?;
        admin.close().await;
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    // Accounts and projects: keys, projects and policies, reviewers, passwords and sessions.
    async fn bootstrap_admin(&self, key_hash: &str, now: Millis) -> Result<bool> {
        transaction!(self, |tx| accounts::bootstrap_admin(&mut tx, key_hash, now).await)
    }

    async fn principal(&self, key_hash: &str) -> Result<Option<Principal>> {
        let mut c = self.pool.acquire().await?;
        accounts::principal(&mut c, key_hash).await.map_err(TxError::into_store)
    }

    async fn create_project(&self, new: NewProject, actor: &str, now: Millis) -> Result<Project> {
        let ch = &self.channel;
        transaction!(self, |tx| accounts::create_project(
            &mut tx,
            ch,
            new.clone(),
            actor,
            now
        )
        .await)
    }

    async fn project(&self, name: &str) -> Result<Option<Project>> {
        let mut c = self.pool.acquire().await?;
        accounts::project(&mut c, name).await.map_err(TxError::into_store)
    }

    async fn policy_versions(&self, project_id: i64) -> Result<Vec<PolicyVersion>> {
        let mut c = self.pool.acquire().await?;
        accounts::policy_versions(&mut c, project_id)
            .await
            .map_err(TxError::into_store)
    }

    async fn set_policy(&self, project: &str, policy: serde_json::Value, actor: &str, now: Millis) -> Result<u32> {
        let ch = &self.channel;
        transaction!(self, |tx| accounts::set_policy(
            &mut tx, ch, project, &policy, actor, now
        )
        .await)
    }

    async fn projects(&self) -> Result<Vec<Project>> {
        let mut c = self.pool.acquire().await?;
        accounts::projects(&mut c).await.map_err(TxError::into_store)
    }

    async fn create_reviewer(&self, new: NewReviewer, actor: &str, now: Millis) -> Result<Reviewer> {
        transaction!(self, |tx| accounts::create_reviewer(&mut tx, new.clone(), actor, now)
            .await)
    }

    async fn create_service_key(&self, new: NewServiceKey, actor: &str, now: Millis) -> Result<()> {
        transaction!(self, |tx| accounts::create_service_key(
            &mut tx,
            new.clone(),
            actor,
            now
        )
        .await)
    }

    async fn reviewers(&self) -> Result<Vec<ReviewerAccount>> {
        let mut c = self.pool.acquire().await?;
        accounts::reviewers(&mut c).await.map_err(TxError::into_store)
    }

    async fn update_reviewer(
        &self,
        name: &str,
        tiers: Vec<u8>,
        projects: Vec<String>,
        actor: &str,
        now: Millis,
    ) -> Result<Reviewer> {
        let ch = &self.channel;
        transaction!(self, |tx| accounts::update_reviewer(
            &mut tx, ch, name, &tiers, &projects, actor, now
        )
        .await)
    }

    async fn set_reviewer_active(&self, name: &str, active: bool, actor: &str, now: Millis) -> Result<Reviewer> {
        let ch = &self.channel;
        transaction!(self, |tx| accounts::set_reviewer_active(
            &mut tx, ch, name, active, actor, now
        )
        .await)
    }

    async fn active_tiers(&self, project_id: i64) -> Result<Vec<u8>> {
        let mut c = self.pool.acquire().await?;
        accounts::active_tiers(&mut c, project_id)
            .await
            .map_err(TxError::into_store)
    }

    async fn add_reviewer_key(
        &self,
        reviewer: &str,
        key_hash: &str,
        key_name: Option<&str>,
        actor: &str,
        now: Millis,
    ) -> Result<()> {
        transaction!(self, |tx| accounts::add_reviewer_key(
            &mut tx, reviewer, key_hash, key_name, actor, now
        )
        .await)
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>> {
        let mut c = self.pool.acquire().await?;
        accounts::keys(&mut c).await.map_err(TxError::into_store)
    }

    async fn touch_key(&self, key_hash: &str, now: Millis) -> Result<()> {
        let mut c = self.pool.acquire().await?;
        accounts::touch_key(&mut c, key_hash, now)
            .await
            .map_err(TxError::into_store)
    }

    async fn revoke_key(&self, key_hash: &str, actor: &str, now: Millis) -> Result<()> {
        transaction!(self, |tx| accounts::revoke_key(&mut tx, key_hash, actor, now).await)
    }

    async fn set_password(&self, reviewer: &str, password_hash: Option<&str>, actor: &str, now: Millis) -> Result<()> {
        transaction!(self, |tx| accounts::set_password(
            &mut tx,
            reviewer,
            password_hash,
            actor,
            now
        )
        .await)
    }

    async fn password_hash(&self, reviewer: &str) -> Result<Option<(i64, String)>> {
        let mut c = self.pool.acquire().await?;
        accounts::password_hash(&mut c, reviewer)
            .await
            .map_err(TxError::into_store)
    }

    async fn create_session(
        &self,
        token_hash: &str,
        owner: SessionOwner,
        expires_at: Millis,
        now: Millis,
    ) -> Result<()> {
        transaction!(self, |tx| accounts::create_session(
            &mut tx, token_hash, &owner, expires_at, now
        )
        .await)
    }

    async fn session(&self, token_hash: &str, now: Millis) -> Result<Option<Principal>> {
        let mut c = self.pool.acquire().await?;
        accounts::session(&mut c, token_hash, now)
            .await
            .map_err(TxError::into_store)
    }

    async fn end_session(&self, token_hash: &str) -> Result<()> {
        transaction!(self, |tx| accounts::end_session(&mut tx, token_hash).await)
    }

    // Items: decided items stored with their tasks, and one item's whole record.
    async fn submit_items(
        &self,
        project_id: i64,
        items: Vec<NewItem>,
        actor: &str,
        now: Millis,
    ) -> Result<Vec<Submitted>> {
        let prepared = items
            .into_iter()
            .map(items::PreparedItem::new)
            .collect::<Result<Vec<_>>>()?;
        self.submit_merged(project_id, prepared, actor, now).await
    }

    async fn item(&self, project_id: i64, external_id: &str) -> Result<Option<ItemDetail>> {
        let mut c = self.pool.acquire().await?;
        feeds::settle(&mut c).await.map_err(TxError::into_store)?;
        drop(c);
        transaction!(self, |tx| items::item(&mut tx, project_id, external_id).await)
    }

    // Work: claims, leases and answers.
    async fn claim(&self, req: ClaimRequest, now: Millis) -> Result<Option<ClaimedTask>> {
        if req.gold.is_some() {
            return transaction!(self, |tx| work::claim(&mut tx, &req, now).await);
        }
        // Without gold a claim is one statement, atomic on its own: no BEGIN and COMMIT
        // round trips around it.
        autocommit!(self.pool, &mut None, |c| work::claim(c, &req, now).await)
    }

    async fn heartbeat(&self, task_id: i64, lease_id: i64, reviewer_id: i64, now: Millis) -> Result<Millis> {
        transaction!(self, |tx| work::heartbeat(&mut tx, task_id, lease_id, reviewer_id, now)
            .await)
    }

    async fn submit_review(&self, review: NewReview, now: Millis) -> Result<ReviewResult> {
        let ch = &self.channel;
        transaction!(self, |tx| answers::submit_review(&mut tx, ch, &review, now).await)
    }

    async fn amend_review(&self, amendment: NewAmendment, now: Millis) -> Result<AmendResult> {
        let ch = &self.channel;
        transaction!(self, |tx| amend::amend_review(&mut tx, ch, &amendment, now).await)
    }

    async fn submit_review_and_claim(
        &self,
        review: NewReview,
        next: ClaimRequest,
        now: Millis,
    ) -> Result<(ReviewResult, Result<Option<ClaimedTask>>)> {
        let ch = &self.channel;
        transaction!(self, |tx| {
            let answered = answers::submit_review(&mut tx, ch, &review, now).await?;
            // A refusal (a held reviewer) is decided before the claim writes anything, so
            // the answer stands; any other error rolls the whole transaction back.
            let claimed = match work::claim(&mut tx, &next, now).await {
                Ok(t) => Ok(t),
                Err(TxError::Store(e @ StoreError::Forbidden { .. })) => Err(e),
                Err(e) => return Err(e),
            };
            Ok((answered, claimed))
        })
    }

    async fn expire_leases(&self, now: Millis, limit: usize) -> Result<usize> {
        let ch = &self.channel;
        transaction!(self, |tx| work::expire_leases(&mut tx, ch, now, limit).await)
    }

    // Feeds: the label feed and the event log.
    async fn labels(&self, project_id: i64, after: i64, limit: usize) -> Result<Vec<LabelRecord>> {
        // No transaction and no lock: positions are committed in contiguous blocks (see
        // `feeds`), so one statement's snapshot never shows a position past a hole.
        let mut c = self.pool.acquire().await?;
        feeds::settle(&mut c).await.map_err(TxError::into_store)?;
        feeds::labels(&mut c, project_id, after, limit)
            .await
            .map_err(TxError::into_store)
    }

    async fn events(&self, project_id: Option<i64>, after: i64, limit: usize) -> Result<Vec<EventRecord>> {
        let mut c = self.pool.acquire().await?;
        feeds::settle(&mut c).await.map_err(TxError::into_store)?;
        feeds::events(&mut c, project_id, after, limit)
            .await
            .map_err(TxError::into_store)
    }

    async fn append_event(&self, project_id: i64, event: flywheel_core::Event, actor: &str, now: Millis) -> Result<()> {
        transaction!(self, |tx| feeds::append_event(&mut tx, project_id, &event, actor, now)
            .await)
    }

    // Quality: gold items and reviewers' records.
    async fn add_gold(&self, project_id: i64, items: Vec<NewGold>, actor: &str, now: Millis) -> Result<usize> {
        transaction!(self, |tx| quality::add_gold(&mut tx, project_id, &items, actor, now)
            .await)
    }

    async fn reviewer_stats(&self, project_id: i64) -> Result<Vec<ReviewerStats>> {
        let mut c = self.pool.acquire().await?;
        quality::reviewer_stats(&mut c, project_id)
            .await
            .map_err(TxError::into_store)
    }

    async fn hold_reviewer(
        &self,
        project_id: i64,
        reviewer: &str,
        reason: &str,
        actor: &str,
        now: Millis,
    ) -> Result<()> {
        let ch = &self.channel;
        transaction!(self, |tx| quality::hold_reviewer(
            &mut tx, ch, project_id, reviewer, reason, actor, now
        )
        .await)
    }

    async fn release_reviewer(&self, project_id: i64, reviewer: &str, actor: &str, now: Millis) -> Result<()> {
        transaction!(self, |tx| quality::release_reviewer(
            &mut tx, project_id, reviewer, actor, now
        )
        .await)
    }

    async fn project_answers(&self, project_id: i64) -> Result<Vec<ProjectAnswer>> {
        let mut c = self.pool.acquire().await?;
        quality::project_answers(&mut c, project_id)
            .await
            .map_err(TxError::into_store)
    }

    // Fatigue and pacing.
    async fn reviewer_answers(&self, project_id: i64, reviewer_id: i64, limit: u32) -> Result<Vec<SessionAnswer>> {
        let mut c = self.pool.acquire().await?;
        fatigue::reviewer_answers(&mut c, project_id, reviewer_id, limit)
            .await
            .map_err(TxError::into_store)
    }

    async fn record_fatigue(&self, f: NewFatigue, now: Millis) -> Result<bool> {
        transaction!(self, |tx| fatigue::record_fatigue(&mut tx, &f, now).await)
    }

    async fn fatigue_states(&self, project_id: i64, reviewer_id: Option<i64>) -> Result<Vec<FatigueState>> {
        let mut c = self.pool.acquire().await?;
        fatigue::fatigue_states(&mut c, project_id, reviewer_id)
            .await
            .map_err(TxError::into_store)
    }

    // Models: the built-in model's training data, snapshots and predictions.
    async fn training_examples(&self, project_id: i64, after: i64, limit: usize) -> Result<Vec<TrainingExample>> {
        let mut c = self.pool.acquire().await?;
        feeds::settle(&mut c).await.map_err(TxError::into_store)?;
        drop(c);
        transaction!(self, |tx| models::training_examples(&mut tx, project_id, after, limit)
            .await)
    }

    async fn save_model(&self, project_id: i64, snapshot: ModelSnapshot, now: Millis) -> Result<()> {
        transaction!(self, |tx| models::save_model(&mut tx, project_id, &snapshot, now).await)
    }

    async fn latest_model(&self, project_id: i64) -> Result<Option<ModelSnapshot>> {
        let mut c = self.pool.acquire().await?;
        models::latest_model(&mut c, project_id)
            .await
            .map_err(TxError::into_store)
    }

    async fn verified_predictions(&self, project_id: i64, limit: usize) -> Result<Vec<VerifiedPrediction>> {
        let mut c = self.pool.acquire().await?;
        models::verified_predictions(&mut c, project_id, limit)
            .await
            .map_err(TxError::into_store)
    }

    async fn history(&self, project_id: i64, limit: usize) -> Result<Vec<flywheel_core::backtest::HistoryItem>> {
        let mut c = self.pool.acquire().await?;
        models::history(&mut c, project_id, limit)
            .await
            .map_err(TxError::into_store)
    }

    async fn recent_predictions(&self, project_id: i64, limit: usize) -> Result<Vec<flywheel_core::Prediction>> {
        let mut c = self.pool.acquire().await?;
        models::recent_predictions(&mut c, project_id, limit)
            .await
            .map_err(TxError::into_store)
    }

    async fn recent_rules(&self, project_id: i64, limit: usize) -> Result<Vec<String>> {
        let mut c = self.pool.acquire().await?;
        models::recent_rules(&mut c, project_id, limit)
            .await
            .map_err(TxError::into_store)
    }

    // Console and dashboard: counts and time series.
    async fn stats(&self, project_id: i64, now: Millis) -> Result<Stats> {
        let mut c = self.pool.acquire().await?;
        dashboard::stats(&mut c, project_id, now)
            .await
            .map_err(TxError::into_store)
    }

    async fn stats_recount(&self, project_id: i64, now: Millis) -> Result<Stats> {
        let mut c = self.pool.acquire().await?;
        dashboard::stats_recount(&mut c, project_id, now)
            .await
            .map_err(TxError::into_store)
    }

    async fn answers_on_day(&self, reviewer_id: i64, day: i64) -> Result<i64> {
        let mut c = self.pool.acquire().await?;
        dashboard::answers_on_day(&mut c, reviewer_id, day)
            .await
            .map_err(TxError::into_store)
    }

    async fn activity(&self, project_id: i64, since: Millis, bucket_ms: i64) -> Result<Vec<ActivityBucket>> {
        let mut c = self.pool.acquire().await?;
        dashboard::activity(&mut c, project_id, since, bucket_ms)
            .await
            .map_err(TxError::into_store)
    }

    async fn latest_events(&self, project_id: i64, limit: usize) -> Result<Vec<EventRecord>> {
        let mut c = self.pool.acquire().await?;
        feeds::settle(&mut c).await.map_err(TxError::into_store)?;
        drop(c);
        transaction!(self, |tx| dashboard::latest_events(&mut tx, project_id, limit).await)
    }

    async fn queue_depths(&self, project_id: i64, now: Millis, sla_queues: Vec<String>) -> Result<Vec<QueueDepth>> {
        let mut c = self.pool.acquire().await?;
        dashboard::queue_depths(&mut c, project_id, now, &sla_queues)
            .await
            .map_err(TxError::into_store)
    }

    async fn run_sla(
        &self,
        slas: std::collections::HashMap<i64, std::sync::Arc<flywheel_core::sla::Slas>>,
        now: Millis,
        limit: usize,
    ) -> Result<SlaRun> {
        let ch = &self.channel;
        transaction!(self, |tx| sla::run_sla(&mut tx, ch, &slas, now, limit).await)
    }

    async fn workload_answers(
        &self,
        project_id: i64,
        since: Millis,
        until: Millis,
    ) -> Result<Vec<flywheel_core::workload::Answer>> {
        let mut c = self.pool.acquire().await?;
        workload::workload_answers(&mut c, project_id, since, until)
            .await
            .map_err(TxError::into_store)
    }

    // Webhooks: endpoints, their outbox cursors (into the event log) and attempts.
    async fn create_webhook(&self, project_id: i64, new: NewWebhook, actor: &str, now: Millis) -> Result<Webhook> {
        transaction!(self, |tx| webhooks::create(&mut tx, project_id, &new, actor, now).await)
    }

    async fn webhooks(&self, project_id: i64) -> Result<Vec<Webhook>> {
        let mut c = self.pool.acquire().await?;
        webhooks::list(&mut c, project_id).await.map_err(TxError::into_store)
    }

    async fn webhook(&self, project_id: i64, id: i64) -> Result<Option<Webhook>> {
        let mut c = self.pool.acquire().await?;
        webhooks::get(&mut c, project_id, id).await.map_err(TxError::into_store)
    }

    async fn update_webhook(
        &self,
        project_id: i64,
        id: i64,
        change: WebhookChange,
        actor: &str,
        now: Millis,
    ) -> Result<Webhook> {
        transaction!(self, |tx| webhooks::update(
            &mut tx, project_id, id, &change, actor, now
        )
        .await)
    }

    async fn delete_webhook(&self, project_id: i64, id: i64, actor: &str, now: Millis) -> Result<()> {
        transaction!(self, |tx| webhooks::delete(&mut tx, project_id, id, actor, now).await)
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
        transaction!(self, |tx| webhooks::rotate(
            &mut tx,
            project_id,
            id,
            secret,
            previous_until,
            actor,
            now
        )
        .await)
    }

    async fn replay_webhook(
        &self,
        project_id: i64,
        id: i64,
        from_seq: i64,
        actor: &str,
        now: Millis,
    ) -> Result<Webhook> {
        transaction!(self, |tx| webhooks::replay(
            &mut tx, project_id, id, from_seq, actor, now
        )
        .await)
    }

    async fn webhook_deliveries(&self, project_id: i64, id: i64, limit: usize) -> Result<Vec<DeliveryRecord>> {
        let mut c = self.pool.acquire().await?;
        webhooks::deliveries(&mut c, project_id, id, limit)
            .await
            .map_err(TxError::into_store)
    }

    async fn due_webhooks(&self, now: Millis) -> Result<Vec<i64>> {
        // Every node asks several times a second: without an endpoint that could be due,
        // skip the sequencer's lock.
        let mut c = self.pool.acquire().await?;
        if !webhooks::any_due(&mut c, now).await.map_err(TxError::into_store)? {
            return Ok(vec![]);
        }
        drop(c);
        let mut c = self.pool.acquire().await?;
        feeds::settle(&mut c).await.map_err(TxError::into_store)?;
        drop(c);
        transaction!(self, |tx| webhooks::due(&mut tx, now).await)
    }

    async fn webhook_backlog(&self) -> Result<Vec<(i64, i64)>> {
        // Like `due_webhooks`: committed events get their place first, so they count.
        let mut c = self.pool.acquire().await?;
        feeds::settle(&mut c).await.map_err(TxError::into_store)?;
        drop(c);
        transaction!(self, |tx| webhooks::backlog(&mut tx).await)
    }

    async fn lease_webhook(&self, id: i64, now: Millis) -> Result<Option<Box<dyn WebhookLease>>> {
        let mut tx = self.pool.begin().await?;
        match webhooks::target(&mut tx, id, now).await {
            Ok(Some(target)) => Ok(Some(Box::new(webhooks::PgWebhookLease { tx, target }))),
            Ok(None) => {
                let _ = tx.rollback().await;
                Ok(None)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e.into_store())
            }
        }
    }

    // Exports.
    async fn override_item(&self, project_id: i64, o: NewOverride, now: Millis) -> Result<OverrideResult> {
        let ch = &self.channel;
        transaction!(self, |tx| overrides::override_item(&mut tx, ch, project_id, &o, now)
            .await)
    }

    async fn search_items(
        &self,
        project_id: i64,
        search: ItemSearch,
        before: Option<i64>,
        limit: usize,
        read: usize,
    ) -> Result<SearchHits> {
        let mut c = self.pool.acquire().await?;
        search::search_items(&mut c, project_id, &search, before, limit, read)
            .await
            .map_err(TxError::into_store)
    }

    async fn export_items(
        &self,
        project_id: i64,
        filter: ExportFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ExportRow>> {
        let mut c = self.pool.acquire().await?;
        export::export_items(&mut c, project_id, &filter, after, limit)
            .await
            .map_err(TxError::into_store)
    }

    async fn import_labels(
        &self,
        project_id: i64,
        labels: Vec<ImportedLabel>,
        actor: &str,
        now: Millis,
    ) -> Result<usize> {
        transaction!(self, |tx| export::import_labels(
            &mut tx, project_id, &labels, actor, now
        )
        .await)
    }

    // Notices.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }
}
