//! Flywheel's persistence: one [`Store`] interface, in domain terms, with one backend per
//! database (SQLite embedded, PostgreSQL for several nodes).
//!
//! Only this crate knows SQL. Every method that changes state appends its events in the
//! same transaction as the change, and returns only after that transaction is durable.
//! The state machine itself (what an answer does to a task) lives in `flywheel-core`; a
//! backend loads the rows, asks core, and writes what core decided.

pub mod copy;
mod error;
mod model;
pub mod observe;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use flywheel_core::Prediction;

pub use error::StoreError;
pub use model::*;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Opens the store a URL names: `sqlite://PATH` (embedded) or `postgres://…` (several
/// nodes, one database). Brings the schema up to date.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        return Ok(std::sync::Arc::new(sqlite::SqliteStore::open_url(url)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(std::sync::Arc::new(postgres::PgStore::connect(url, None).await?));
    }
    Err(StoreError::Backend(format!(
        "unknown database URL '{url}': use sqlite://PATH or postgres://…"
    )))
}

/// A change other parts of the server (on every node) should hear about at once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// A project's queues gained claimable work (new tasks, a skip, an expired lease).
    TasksAvailable { project_id: i64 },
    /// A project's policy (or another setting) changed: drop cached copies.
    ProjectChanged { name: String },
}

/// Milliseconds since the Unix epoch. The store never reads the clock: callers pass `now`.
pub type Millis = i64;

/// Milliseconds in a day: answers are counted per UTC day (`at.div_euclid(DAY_MS)`).
pub const DAY_MS: Millis = 86_400_000;

/// One delivery round's hold on an endpoint: on SQLite an in-process claim, on
/// PostgreSQL a transaction holding the endpoint's advisory lock (so one node delivers
/// each endpoint, and a dead node's hold ends with its connection).
#[async_trait]
pub trait WebhookLease: Send {
    fn target(&self) -> &WebhookTarget;
    /// Writes the round's attempts and the endpoint's new state (unless the API changed
    /// the endpoint meanwhile: then only the attempts), with its events, and lets go.
    async fn finish(self: Box<Self>, round: DeliveryRound, now: Millis) -> Result<()>;
}

/// Everything Flywheel keeps. Handlers take `Arc<dyn Store>`, so the server compiles once
/// whatever the backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Accounts and projects: keys, projects and policies, reviewers, passwords and sessions.
    /// Stores the admin key's hash if the database has no admin key yet. Returns whether
    /// it did.
    async fn bootstrap_admin(&self, key_hash: &str, now: Millis) -> Result<bool>;
    /// Who holds the key with this hash, if anyone (revoked keys hold nothing).
    async fn principal(&self, key_hash: &str) -> Result<Option<Principal>>;
    async fn create_project(&self, new: NewProject, actor: &str, now: Millis) -> Result<Project>;
    async fn project(&self, name: &str) -> Result<Option<Project>>;
    /// Stores a new version of a project's policy (already checked by the caller) and
    /// returns that version.
    async fn set_policy(&self, project: &str, policy: serde_json::Value, actor: &str, now: Millis) -> Result<u32>;
    async fn projects(&self) -> Result<Vec<Project>>;
    /// Every stored version of a project's policy, newest first.
    async fn policy_versions(&self, project_id: i64) -> Result<Vec<PolicyVersion>>;
    /// Creates a reviewer with its key. Unknown project names are a `Invalid` error on
    /// `projects`; a taken name is a `Conflict`.
    async fn create_reviewer(&self, new: NewReviewer, actor: &str, now: Millis) -> Result<Reviewer>;
    async fn create_service_key(&self, new: NewServiceKey, actor: &str, now: Millis) -> Result<()>;
    async fn reviewers(&self) -> Result<Vec<ReviewerAccount>>;
    /// Replaces a reviewer's tiers and granted projects. Their active leases on a project
    /// no longer granted are cancelled in the same write (slots back, `lease.cancelled`).
    async fn update_reviewer(
        &self,
        name: &str,
        tiers: Vec<u8>,
        projects: Vec<String>,
        actor: &str,
        now: Millis,
    ) -> Result<Reviewer>;
    /// Deactivates (`active: false`) or reactivates a reviewer. A deactivated reviewer's
    /// keys and sessions stop working (`principal` and `session` give `None`), their
    /// password no longer signs in, and their active leases in every project are cancelled
    /// in the same write (slots back, `lease.cancelled` each), with `reviewer.deactivated`
    /// (or `reviewer.reactivated`). Asking for the state the reviewer is in changes nothing.
    async fn set_reviewer_active(&self, name: &str, active: bool, actor: &str, now: Millis) -> Result<Reviewer>;
    /// The tiers held in a project by its active reviewers (granted the project, not
    /// deactivated, not held there), ascending: an open task of any other tier is stranded.
    async fn active_tiers(&self, project_id: i64) -> Result<Vec<u8>>;
    /// Gives an existing reviewer another key, named `key_name` if given.
    async fn add_reviewer_key(
        &self,
        reviewer: &str,
        key_hash: &str,
        key_name: Option<&str>,
        actor: &str,
        now: Millis,
    ) -> Result<()>;
    async fn keys(&self) -> Result<Vec<KeyRecord>>;
    /// Records that the key with this hash was used at `now` (no event; nothing if no
    /// such key). The caller decides how often: the server writes at most once a minute
    /// per key, never once per request.
    async fn touch_key(&self, key_hash: &str, now: Millis) -> Result<()>;
    /// Revokes a key by its hash (`NotFound` if there is none, revoked or not).
    async fn revoke_key(&self, key_hash: &str, actor: &str, now: Millis) -> Result<()>;
    /// Sets (or, with `None`, removes) a reviewer's password, as an Argon2id PHC string.
    async fn set_password(&self, reviewer: &str, password_hash: Option<&str>, actor: &str, now: Millis) -> Result<()>;
    /// A reviewer's id and password hash, if the reviewer exists and has a password.
    async fn password_hash(&self, reviewer: &str) -> Result<Option<(i64, String)>>;
    /// Opens a browser session (stored as the hash of its cookie); drops expired ones.
    async fn create_session(
        &self,
        token_hash: &str,
        owner: SessionOwner,
        expires_at: Millis,
        now: Millis,
    ) -> Result<()>;
    /// Who an unexpired session acts as (`None` once its key is revoked).
    async fn session(&self, token_hash: &str, now: Millis) -> Result<Option<Principal>>;
    async fn end_session(&self, token_hash: &str) -> Result<()>;

    // Items: decided items stored with their tasks, and one item's whole record.
    /// Stores items with their decisions, creating their tasks and (for auto decisions)
    /// their resolutions. An external id already stored returns the stored decision with
    /// `duplicate: true` and creates nothing.
    async fn submit_items(
        &self,
        project_id: i64,
        items: Vec<NewItem>,
        actor: &str,
        now: Millis,
    ) -> Result<Vec<Submitted>>;
    async fn item(&self, project_id: i64, external_id: &str) -> Result<Option<ItemDetail>>;
    /// Up to `limit` of the project's items (gold left out) that pass `search`, newest
    /// first, with ids below `before` (a keyset page: the next starts below the last
    /// row's `item_id`). Items are read newest first until the page is full or the `read`
    /// ids below `before` (items of every project) have been read — text is not indexed,
    /// so the bound is what keeps a search that matches little from reading the whole
    /// table; [`SearchHits::read_to`] says where the next page starts then.
    async fn search_items(
        &self,
        project_id: i64,
        search: ItemSearch,
        before: Option<i64>,
        limit: usize,
        read: usize,
    ) -> Result<SearchHits>;

    /// An admin's override of an item, as core's `overrides::plan` decides it, in one
    /// transaction: the item's open tasks closed (reason "the item was overridden") with
    /// their active leases cancelled (`lease.cancelled` each; a late answer gets
    /// `lease_lost`), then either a resolution (source `human`, method `override`) with
    /// its label-feed entry, or a new task on the route given; `item.overridden` (and
    /// `item.resolved`). `NotFound` for an unknown (or gold) item; `Conflict`
    /// (`item_resolved`, `already_routed`) for a re-route core refuses.
    async fn override_item(&self, project_id: i64, o: NewOverride, now: Millis) -> Result<OverrideResult>;

    // Work: claims, leases and answers.
    /// Leases the next task the reviewer may take, or `None`: highest priority first, then
    /// the earliest deadline (tasks without one last), then age (item, then task id).
    async fn claim(&self, req: ClaimRequest, now: Millis) -> Result<Option<ClaimedTask>>;
    /// Extends a lease by its own duration (set at claim). `Conflict` with code
    /// `lease_lost` when the lease is not active.
    async fn heartbeat(&self, task_id: i64, lease_id: i64, reviewer_id: i64, now: Millis) -> Result<Millis>;
    /// Stores a review and moves the task on. A `review_id` already stored by this
    /// reviewer for this task returns the stored result and changes nothing.
    async fn submit_review(&self, review: NewReview, now: Millis) -> Result<ReviewResult>;
    /// Stores a review and, in the same commit, leases the reviewer's next task ("submit
    /// and next": one commit and one round trip where answer-then-claim takes two). The
    /// answer stands when the claim fails before writing anything (a held reviewer's
    /// refusal; on SQLite also an item whose stored JSON cannot be read): the inner result
    /// is the claim's own. A claim that fails after writing fails the whole transaction,
    /// answer included (nothing half-written is committed). A retried `review_id` claims afresh; a
    /// task leased by an attempt whose reply was lost goes back when its lease expires.
    async fn submit_review_and_claim(
        &self,
        review: NewReview,
        next: ClaimRequest,
        now: Millis,
    ) -> Result<(ReviewResult, Result<Option<ClaimedTask>>)>;
    /// Changes the label of one of the reviewer's answers, as core's `amend::plan` says:
    /// within the undo window while its task is open the label is replaced
    /// (`review.undone`); once the task has closed the item goes back to adjudication one
    /// tier up (`review.amended`, and a new `adjudicate` task unless one is open). An
    /// `amend_id` already stored by this reviewer returns the stored result and changes
    /// nothing. `NotFound` for a `review_id` the reviewer never sent; `Conflict`
    /// (`undo_expired`, `not_amendable`) for a change core refuses.
    async fn amend_review(&self, amendment: NewAmendment, now: Millis) -> Result<AmendResult>;
    /// Returns expired leases' tasks to their queues; at most `limit` at a time.
    async fn expire_leases(&self, now: Millis, limit: usize) -> Result<usize>;

    // Feeds: the label feed and the event log.
    async fn labels(&self, project_id: i64, after: i64, limit: usize) -> Result<Vec<LabelRecord>>;
    /// The event log of one project, or of everything when `project_id` is `None`.
    async fn events(&self, project_id: Option<i64>, after: i64, limit: usize) -> Result<Vec<EventRecord>>;
    /// Appends an event of the server's own (a threshold changed, a monitor fired).
    async fn append_event(&self, project_id: i64, event: flywheel_core::Event, actor: &str, now: Millis) -> Result<()>;

    // Quality: gold items and reviewers' records.
    /// Adds gold items (an external id already stored is skipped). Returns how many were
    /// added.
    async fn add_gold(&self, project_id: i64, items: Vec<NewGold>, actor: &str, now: Millis) -> Result<usize>;
    /// Every reviewer granted the project, with their record.
    async fn reviewer_stats(&self, project_id: i64) -> Result<Vec<ReviewerStats>>;
    /// Stops a reviewer claiming in a project until released, and cancels their active
    /// leases there in the same write (slots back, `lease.cancelled` each).
    async fn hold_reviewer(
        &self,
        project_id: i64,
        reviewer: &str,
        reason: &str,
        actor: &str,
        now: Millis,
    ) -> Result<()>;
    /// Lets a held reviewer claim again, with a fresh gold record.
    async fn release_reviewer(&self, project_id: i64, reviewer: &str, actor: &str, now: Millis) -> Result<()>;
    /// Every label answer on the project's regular review tasks.
    async fn project_answers(&self, project_id: i64) -> Result<Vec<ProjectAnswer>>;

    // Fatigue and pacing: reviewers' work sessions and the monitor's findings.
    /// The reviewer's newest `limit` answers in the project (any kind), oldest first, each
    /// with its time on task, `too_fast`, and a correctness signal where one exists: a gold
    /// label answered right or wrong, or agreement with the item's human resolution when
    /// another reviewer took part in it.
    async fn reviewer_answers(&self, project_id: i64, reviewer_id: i64, limit: u32) -> Result<Vec<SessionAnswer>>;
    /// Records that the fatigue monitor fired on a session, with its event; `false` (and
    /// nothing written) when it already fired on that session.
    async fn record_fatigue(&self, f: NewFatigue, now: Millis) -> Result<bool>;
    /// The fatigue states in a project: every reviewer's, or only `reviewer_id`'s.
    async fn fatigue_states(&self, project_id: i64, reviewer_id: Option<i64>) -> Result<Vec<FatigueState>>;

    // Models: the built-in model's training data, snapshots and predictions.
    /// Human labels (sources `human`, `adjudicated`) after `after` in feed order, with the
    /// items' payloads: the built-in model's training stream.
    async fn training_examples(&self, project_id: i64, after: i64, limit: usize) -> Result<Vec<TrainingExample>>;
    /// Stores a model snapshot (a new version) and writes a `model.snapshot` event.
    async fn save_model(&self, project_id: i64, snapshot: ModelSnapshot, now: Millis) -> Result<()>;
    async fn latest_model(&self, project_id: i64) -> Result<Option<ModelSnapshot>>;
    /// The most recent items that have both a prediction and a human label.
    async fn verified_predictions(&self, project_id: i64, limit: usize) -> Result<Vec<VerifiedPrediction>>;
    /// The most recent items with a human label, as they were decided, for back-tests.
    async fn history(&self, project_id: i64, limit: usize) -> Result<Vec<flywheel_core::backtest::HistoryItem>>;
    /// The predictions of the project's most recent items (newest first), for drift.
    async fn recent_predictions(&self, project_id: i64, limit: usize) -> Result<Vec<Prediction>>;
    /// The rule that decided each of the project's most recent items (newest first), for
    /// the distress-rate monitor.
    async fn recent_rules(&self, project_id: i64, limit: usize) -> Result<Vec<String>>;

    // Console and dashboard: counts and time series.
    /// A project's counts and queues, from counters kept with each write (O(1) in the
    /// project's history; the SLA figures that depend on `now` read only open tasks near or
    /// past their deadline and tasks closed in the last day).
    async fn stats(&self, project_id: i64, now: Millis) -> Result<Stats>;
    /// The same figures recounted from every row of the project — a check of the counters
    /// (the conformance suite compares the two), O(the project's history).
    async fn stats_recount(&self, project_id: i64, now: Millis) -> Result<Stats>;
    /// Answers a reviewer gave on a UTC day (`at.div_euclid(DAY_MS)`), in every project.
    async fn answers_on_day(&self, reviewer_id: i64, day: i64) -> Result<i64>;
    /// Decisions and answers per slice of `bucket_ms` since `since` (slices with none left out).
    async fn activity(&self, project_id: i64, since: Millis, bucket_ms: i64) -> Result<Vec<ActivityBucket>>;
    /// The project's most recent events, newest first.
    async fn latest_events(&self, project_id: i64, limit: usize) -> Result<Vec<EventRecord>>;
    /// The project's open tasks (gold left out) by queue and tier, each with the age of its
    /// oldest at `now` and, for each queue named in `sla_queues`, how many are past their
    /// deadline (`due_at <= now`). Reads only open tasks (an index holds them), so its cost
    /// follows the backlog, not the project's history.
    async fn queue_depths(&self, project_id: i64, now: Millis, sla_queues: Vec<String>) -> Result<Vec<QueueDepth>>;

    // SLA deadlines.
    /// One run of the SLA worker, in one transaction: open tasks (gold left out) whose
    /// warning time or deadline has passed at `now` and whose event is not yet written, at
    /// most `limit`, earliest warning first; for each, core's `sla::step` under its
    /// project's SLAs in `slas` (a project missing there: no action) is written —
    /// `sla.warning`, `sla.breached` and the action — each at most once per task.
    async fn run_sla(
        &self,
        slas: std::collections::HashMap<i64, std::sync::Arc<flywheel_core::sla::Slas>>,
        now: Millis,
        limit: usize,
    ) -> Result<SlaRun>;
    /// Where reviewer time goes: one row per answer on the project's tasks (gold left out)
    /// answered in `[since, until)`, oldest first — reviewer, queue, tier, failure category,
    /// the item's final label, escalated, whether the task's label answers disagreed, time
    /// on task. `flywheel_core::workload` computes the figures.
    async fn workload_answers(
        &self,
        project_id: i64,
        since: Millis,
        until: Millis,
    ) -> Result<Vec<flywheel_core::workload::Answer>>;

    // Observability.
    /// The SQLite writer's group-commit and fsync figures; `None` on a backend without one.
    fn writer_stats(&self) -> Option<std::sync::Arc<observe::WriterStats>> {
        None
    }

    // Webhooks: endpoints, their outbox cursors (into the event log) and attempts.
    /// Creates an endpoint whose cursor is the project's last event: it gets what happens
    /// from now on (`webhook.created` included, if its patterns want it).
    async fn create_webhook(&self, project_id: i64, new: NewWebhook, actor: &str, now: Millis) -> Result<Webhook>;
    async fn webhooks(&self, project_id: i64) -> Result<Vec<Webhook>>;
    async fn webhook(&self, project_id: i64, id: i64) -> Result<Option<Webhook>>;
    /// Changes an endpoint. Re-enabling one tries its next event at once.
    async fn update_webhook(
        &self,
        project_id: i64,
        id: i64,
        change: WebhookChange,
        actor: &str,
        now: Millis,
    ) -> Result<Webhook>;
    /// Deletes an endpoint with its attempts.
    async fn delete_webhook(&self, project_id: i64, id: i64, actor: &str, now: Millis) -> Result<()>;
    /// Gives an endpoint a new secret; the current one keeps signing until
    /// `previous_until` (a secret older than that is dropped).
    async fn rotate_webhook(
        &self,
        project_id: i64,
        id: i64,
        secret: &str,
        previous_until: Millis,
        actor: &str,
        now: Millis,
    ) -> Result<Webhook>;
    /// Moves an endpoint's cursor so that events from `from_seq` on are sent (again).
    async fn replay_webhook(
        &self,
        project_id: i64,
        id: i64,
        from_seq: i64,
        actor: &str,
        now: Millis,
    ) -> Result<Webhook>;
    /// An endpoint's attempts, newest first.
    async fn webhook_deliveries(&self, project_id: i64, id: i64, limit: usize) -> Result<Vec<DeliveryRecord>>;
    /// Enabled endpoints with an event after their cursor that is due by `now`.
    async fn due_webhooks(&self, now: Millis) -> Result<Vec<i64>>;
    /// Per project with an enabled endpoint, `(project_id, events)`: the events after each
    /// enabled endpoint's cursor, summed over its endpoints (kinds an endpoint did not ask
    /// for included: they are skipped in the next round). Each count reads the index range
    /// of the project's log after the cursor, so its cost follows the backlog, not the
    /// log's length.
    async fn webhook_backlog(&self) -> Result<Vec<(i64, i64)>>;
    /// Takes an endpoint for one delivery round, or `None` if it is gone, disabled, not
    /// due, or another round (on any node) holds it. The round ends with
    /// [`WebhookLease::finish`], which writes what it did and lets the endpoint go.
    async fn lease_webhook(&self, id: i64, now: Millis) -> Result<Option<Box<dyn WebhookLease>>>;
    // Exports: a project's items page by page, and labels given elsewhere.
    /// Up to `limit` of the project's items with ids above `after` that pass `filter`, in
    /// id order (a keyset page: the next page starts after the last row's `item_id`), each
    /// with its answers. Gold items are left out.
    async fn export_items(
        &self,
        project_id: i64,
        filter: ExportFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ExportRow>>;
    /// Resolves stored items with labels given elsewhere: each gets a human resolution with
    /// method `imported`, a label-feed entry, its open tasks closed (active leases
    /// cancelled) and an `item.resolved` event. An item a human (or an earlier import)
    /// already resolved is left as it is, so a re-import changes nothing; an auto label is
    /// replaced. Returns how many items were resolved. An unknown external id is `Invalid`.
    async fn import_labels(
        &self,
        project_id: i64,
        labels: Vec<ImportedLabel>,
        actor: &str,
        now: Millis,
    ) -> Result<usize>;

    // Notices.
    /// Notices of changes made through this store or, for a shared database, any node.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Notice>;
}
