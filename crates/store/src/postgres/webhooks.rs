//! Webhooks on PostgreSQL: endpoints, their cursors into the event log (whose positions
//! the sequencer hands out after commit, so a cursor never passes an event that commits
//! late), and the attempts of each delivery round. A round holds its endpoint with a
//! transaction-scoped advisory lock in a transaction that lasts the round and writes its
//! bookkeeping at the end: one node delivers each endpoint, and a node that dies lets go
//! with its connection.

use async_trait::async_trait;
use flywheel_core::Event;
use flywheel_core::event::{WebhookChanged, WebhookDeleted, WebhookReplayed, WebhookRotated};
use sqlx::PgConnection;

use super::TxResult;
use super::common::{event, parse};
use crate::*;

const COLUMNS: &str = "id, project_id, url, events::text, enabled, failing, cursor, attempts, next_attempt_at,
                       previous_until, created_at, updated_at, secret, previous_secret, generation";

type Row = (
    i64,
    i64,
    String,
    String,
    bool,
    bool,
    i64,
    i32,
    i64,
    Option<i64>,
    i64,
    i64,
    String,
    Option<String>,
    i64,
);

type Stored = (Webhook, String, Option<String>, i64);

fn hook(r: Row) -> TxResult<Stored> {
    Ok((
        Webhook {
            id: r.0,
            project_id: r.1,
            url: r.2,
            events: parse(&r.3)?,
            enabled: r.4,
            failing: r.5,
            cursor: r.6,
            attempts: r.7 as u32,
            next_attempt_at: r.8,
            previous_until: r.9,
            created_at: r.10,
            updated_at: r.11,
        },
        r.12,
        r.13,
        r.14,
    ))
}

async fn stored(c: &mut PgConnection, project_id: i64, id: i64) -> TxResult<Stored> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND project_id = $2"
    )))
    .bind(id)
    .bind(project_id)
    .fetch_optional(&mut *c)
    .await?;
    match row {
        Some(r) => hook(r),
        None => Err(StoreError::not_found(format!("webhook {id}")).into()),
    }
}

fn changed(hook: &Webhook) -> WebhookChanged {
    WebhookChanged {
        webhook_id: hook.id,
        url: hook.url.clone(),
        events: hook.events.clone(),
        enabled: hook.enabled,
    }
}

pub(super) async fn create(
    c: &mut PgConnection,
    project_id: i64,
    new: &NewWebhook,
    actor: &str,
    now: Millis,
) -> TxResult<Webhook> {
    // Sequence first, so that the cursor is past every event committed before this one.
    super::feeds::sequence_feeds(&mut *c).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO webhooks (project_id, url, events, enabled, secret, cursor, created_at, updated_at)
         VALUES ($1, $2, $3::jsonb, $4, $5, (SELECT coalesce(max(seq), 0) FROM events WHERE project_id = $1), $6, $6)
         RETURNING id",
    )
    .bind(project_id)
    .bind(&new.url)
    .bind(serde_json::to_string(&new.events)?)
    .bind(new.enabled)
    .bind(&new.secret)
    .bind(now)
    .fetch_one(&mut *c)
    .await?;
    let (hook, ..) = stored(c, project_id, id).await?;
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        actor,
        &Event::WebhookCreated(changed(&hook)),
    )
    .await?;
    Ok(hook)
}

pub(super) async fn list(c: &mut PgConnection, project_id: i64) -> TxResult<Vec<Webhook>> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE project_id = $1 ORDER BY id"
    )))
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter().map(|r| hook(r).map(|h| h.0)).collect()
}

pub(super) async fn get(c: &mut PgConnection, project_id: i64, id: i64) -> TxResult<Option<Webhook>> {
    match stored(c, project_id, id).await {
        Ok((h, ..)) => Ok(Some(h)),
        Err(super::TxError::Store(StoreError::NotFound { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) async fn update(
    c: &mut PgConnection,
    project_id: i64,
    id: i64,
    change: &WebhookChange,
    actor: &str,
    now: Millis,
) -> TxResult<Webhook> {
    let (old, ..) = stored(c, project_id, id).await?;
    let url = change.url.clone().unwrap_or(old.url);
    let events = change.events.clone().unwrap_or(old.events);
    let enabled = change.enabled.unwrap_or(old.enabled);
    let reenabled = enabled && !old.enabled;
    sqlx::query(
        "UPDATE webhooks SET url = $2, events = $3::jsonb, enabled = $4, updated_at = $5, generation = generation + 1,
                attempts = CASE WHEN $6 THEN 0 ELSE attempts END,
                next_attempt_at = CASE WHEN $6 THEN 0 ELSE next_attempt_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(&url)
    .bind(serde_json::to_string(&events)?)
    .bind(enabled)
    .bind(now)
    .bind(reenabled)
    .execute(&mut *c)
    .await?;
    let (hook, ..) = stored(c, project_id, id).await?;
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        actor,
        &Event::WebhookUpdated(changed(&hook)),
    )
    .await?;
    Ok(hook)
}

pub(super) async fn delete(c: &mut PgConnection, project_id: i64, id: i64, actor: &str, now: Millis) -> TxResult<()> {
    let (old, ..) = stored(c, project_id, id).await?;
    sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    let e = Event::WebhookDeleted(WebhookDeleted {
        webhook_id: id,
        url: old.url,
    });
    event(c, Some(project_id), None, None, now, actor, &e).await
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn rotate(
    c: &mut PgConnection,
    project_id: i64,
    id: i64,
    secret: &str,
    previous_until: Millis,
    actor: &str,
    now: Millis,
) -> TxResult<Webhook> {
    stored(c, project_id, id).await?;
    sqlx::query(
        "UPDATE webhooks SET previous_secret = secret, previous_until = $2, secret = $3, updated_at = $4,
                generation = generation + 1
         WHERE id = $1",
    )
    .bind(id)
    .bind(previous_until)
    .bind(secret)
    .bind(now)
    .execute(&mut *c)
    .await?;
    let e = Event::WebhookRotated(WebhookRotated {
        webhook_id: id,
        previous_until,
    });
    event(c, Some(project_id), None, None, now, actor, &e).await?;
    Ok(stored(c, project_id, id).await?.0)
}

pub(super) async fn replay(
    c: &mut PgConnection,
    project_id: i64,
    id: i64,
    from_seq: i64,
    actor: &str,
    now: Millis,
) -> TxResult<Webhook> {
    stored(c, project_id, id).await?;
    sqlx::query(
        "UPDATE webhooks SET cursor = $2, attempts = 0, next_attempt_at = 0, updated_at = $3,
                generation = generation + 1
         WHERE id = $1",
    )
    .bind(id)
    .bind((from_seq - 1).max(0))
    .bind(now)
    .execute(&mut *c)
    .await?;
    let e = Event::WebhookReplayed(WebhookReplayed {
        webhook_id: id,
        from_seq,
    });
    event(c, Some(project_id), None, None, now, actor, &e).await?;
    Ok(stored(c, project_id, id).await?.0)
}

type DeliveryRow = (
    i64,
    i64,
    i64,
    String,
    String,
    i32,
    i64,
    Option<i32>,
    i64,
    String,
    String,
    Option<i64>,
);

pub(super) async fn deliveries(
    c: &mut PgConnection,
    project_id: i64,
    id: i64,
    limit: usize,
) -> TxResult<Vec<DeliveryRecord>> {
    stored(c, project_id, id).await?;
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT id, webhook_id, event_seq, kind, message_id, attempt, at, status, latency_ms, response, outcome,
                next_attempt_at
         FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(DeliveryRecord {
                id: r.0,
                webhook_id: r.1,
                attempt: DeliveryAttempt {
                    event_seq: r.2,
                    kind: r.3,
                    message_id: r.4,
                    attempt: r.5 as u32,
                    at: r.6,
                    status: r.7.map(|s| s as u16),
                    latency_ms: r.8,
                    response: r.9,
                    outcome: AttemptOutcome::parse(&r.10)
                        .ok_or_else(|| StoreError::Backend(format!("unknown delivery outcome {}", r.10)))?,
                    next_attempt_at: r.11,
                },
            })
        })
        .collect()
}

/// Whether any enabled endpoint's next attempt is due (whatever the log holds).
pub(super) async fn any_due(c: &mut PgConnection, now: Millis) -> TxResult<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhooks WHERE enabled AND next_attempt_at <= $1)")
            .bind(now)
            .fetch_one(&mut *c)
            .await?,
    )
}

pub(super) async fn due(c: &mut PgConnection, now: Millis) -> TxResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT w.id FROM webhooks w
         WHERE w.enabled AND w.next_attempt_at <= $1
           AND EXISTS (SELECT 1 FROM events e WHERE e.project_id = w.project_id AND e.seq > w.cursor)
         ORDER BY w.id",
    )
    .bind(now)
    .fetch_all(&mut *c)
    .await?)
}

pub(super) async fn backlog(c: &mut PgConnection) -> TxResult<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT w.project_id,
                SUM((SELECT COUNT(*) FROM events e WHERE e.project_id = w.project_id AND e.seq > w.cursor))::bigint
         FROM webhooks w WHERE w.enabled
         GROUP BY w.project_id ORDER BY w.project_id",
    )
    .fetch_all(&mut *c)
    .await?)
}

/// Takes the endpoint's advisory lock (for the caller's transaction) and reads it, if no
/// other round holds it and it is enabled and due.
pub(super) async fn target(c: &mut PgConnection, id: i64, now: Millis) -> TxResult<Option<WebhookTarget>> {
    let got: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.webhook'), $1::int)")
            .bind(id as i32)
            .fetch_one(&mut *c)
            .await?;
    if !got {
        return Ok(None);
    }
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND enabled AND next_attempt_at <= $2"
    )))
    .bind(id)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (hook, secret, previous, generation) = hook(row)?;
    let mut secrets = vec![secret];
    if let (Some(p), Some(until)) = (previous, hook.previous_until)
        && until > now
    {
        secrets.push(p);
    }
    Ok(Some(WebhookTarget {
        hook,
        secrets,
        generation,
    }))
}

/// Writes a round (see the SQLite twin): attempts in one statement, the endpoint's new
/// state unless the API changed it meanwhile, and the round's events.
pub(super) async fn finish(
    c: &mut PgConnection,
    target: &WebhookTarget,
    round: &DeliveryRound,
    now: Millis,
) -> TxResult<()> {
    let id = target.hook.id;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1)")
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
    if !exists {
        return Ok(());
    }
    if !round.attempts.is_empty() {
        let a = &round.attempts;
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event_seq, kind, message_id, attempt, at, status, latency_ms,
                                             response, outcome, next_attempt_at)
             SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::int[],
                                      $8::bigint[], $9::text[], $10::text[], $11::bigint[])",
        )
        .bind(id)
        .bind(a.iter().map(|a| a.event_seq).collect::<Vec<_>>())
        .bind(a.iter().map(|a| a.kind.clone()).collect::<Vec<_>>())
        .bind(a.iter().map(|a| a.message_id.clone()).collect::<Vec<_>>())
        .bind(a.iter().map(|a| a.attempt as i32).collect::<Vec<_>>())
        .bind(a.iter().map(|a| a.at).collect::<Vec<_>>())
        .bind(a.iter().map(|a| a.status.map(i32::from)).collect::<Vec<_>>())
        .bind(a.iter().map(|a| a.latency_ms).collect::<Vec<_>>())
        .bind(a.iter().map(|a| a.response.clone()).collect::<Vec<_>>())
        .bind(a.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|a| a.next_attempt_at).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND id <
                 (SELECT id FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(id)
        .bind(DELIVERIES_KEPT - 1)
        .execute(&mut *c)
        .await?;
    }
    let updated = sqlx::query(
        "UPDATE webhooks SET cursor = $3, attempts = $4, next_attempt_at = $5, failing = $6,
                enabled = enabled AND NOT $7
         WHERE id = $1 AND generation = $2",
    )
    .bind(id)
    .bind(target.generation)
    .bind(round.cursor)
    .bind(round.head_attempts as i32)
    .bind(round.next_attempt_at)
    .bind(round.failing)
    .bind(round.disable)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if updated == 1 {
        for e in &round.events {
            event(c, Some(target.hook.project_id), None, None, now, "webhooks", e).await?;
        }
    }
    Ok(())
}

/// A delivery round's hold on an endpoint: a transaction holding the endpoint's advisory
/// lock, which writes the round's bookkeeping and commits when the round finishes.
pub(super) struct PgWebhookLease {
    pub(super) tx: sqlx::Transaction<'static, sqlx::Postgres>,
    pub(super) target: WebhookTarget,
}

#[async_trait]
impl WebhookLease for PgWebhookLease {
    fn target(&self) -> &WebhookTarget {
        &self.target
    }

    async fn finish(self: Box<Self>, round: DeliveryRound, now: Millis) -> Result<()> {
        let PgWebhookLease { mut tx, target } = *self;
        match finish(&mut tx, &target, &round, now).await {
            Ok(()) => Ok(tx.commit().await?),
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e.into_store())
            }
        }
    }
}
