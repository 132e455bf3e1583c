//! Webhooks on SQLite: endpoints, their cursors into the event log, and the attempts of
//! each delivery round. A round's bookkeeping (its attempts, the new cursor, its events)
//! is one job of the writer, so a page of deliveries costs one group commit. Rounds hold
//! an endpoint in-process (`SqliteStore::lease_webhook`): one node has the file.

use async_trait::async_trait;
use flywheel_core::Event;
use flywheel_core::event::{WebhookChanged, WebhookDeleted, WebhookReplayed, WebhookRotated};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::common::event;
use crate::*;

const COLUMNS: &str = "id, project_id, url, events, enabled, failing, cursor, attempts, next_attempt_at,
                       previous_until, created_at, updated_at, secret, previous_secret, generation";

fn hook_row(r: &Row<'_>) -> rusqlite::Result<(Webhook, String, Option<String>, i64)> {
    let events: String = r.get(3)?;
    let events: Vec<String> = serde_json::from_str(&events)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok((
        Webhook {
            id: r.get(0)?,
            project_id: r.get(1)?,
            url: r.get(2)?,
            events,
            enabled: r.get(4)?,
            failing: r.get(5)?,
            cursor: r.get(6)?,
            attempts: r.get(7)?,
            next_attempt_at: r.get(8)?,
            previous_until: r.get(9)?,
            created_at: r.get(10)?,
            updated_at: r.get(11)?,
        },
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
    ))
}

type Stored = (Webhook, String, Option<String>, i64);

fn stored(c: &Connection, project_id: i64, id: i64) -> Result<Stored> {
    c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE id = ?1 AND project_id = ?2"
    ))?
    .query_row(params![id, project_id], hook_row)
    .optional()?
    .ok_or_else(|| StoreError::not_found(format!("webhook {id}")))
}

fn changed(hook: &Webhook) -> WebhookChanged {
    WebhookChanged {
        webhook_id: hook.id,
        url: hook.url.clone(),
        events: hook.events.clone(),
        enabled: hook.enabled,
    }
}

pub(super) fn create(c: &Connection, project_id: i64, new: NewWebhook, actor: &str, now: Millis) -> Result<Webhook> {
    let id: i64 = c
        .prepare_cached(
            "INSERT INTO webhooks (project_id, url, events, enabled, secret, cursor, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, (SELECT coalesce(max(seq), 0) FROM events WHERE project_id = ?1), ?6, ?6)
             RETURNING id",
        )?
        .query_row(
            params![
                project_id,
                new.url,
                serde_json::to_string(&new.events)?,
                new.enabled,
                new.secret,
                now
            ],
            |r| r.get(0),
        )?;
    let (hook, ..) = stored(c, project_id, id)?;
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        actor,
        &Event::WebhookCreated(changed(&hook)),
    )?;
    Ok(hook)
}

pub(super) fn list(c: &Connection, project_id: i64) -> Result<Vec<Webhook>> {
    c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE project_id = ?1 ORDER BY id"
    ))?
    .query_map([project_id], hook_row)?
    .map(|r| r.map(|(h, ..)| h))
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

pub(super) fn get(c: &Connection, project_id: i64, id: i64) -> Result<Option<Webhook>> {
    match stored(c, project_id, id) {
        Ok((h, ..)) => Ok(Some(h)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn update(
    c: &Connection,
    project_id: i64,
    id: i64,
    change: WebhookChange,
    actor: &str,
    now: Millis,
) -> Result<Webhook> {
    let (old, ..) = stored(c, project_id, id)?;
    let url = change.url.unwrap_or(old.url);
    let events = change.events.unwrap_or(old.events);
    let enabled = change.enabled.unwrap_or(old.enabled);
    let reenabled = enabled && !old.enabled;
    c.prepare_cached(
        "UPDATE webhooks SET url = ?2, events = ?3, enabled = ?4, updated_at = ?5, generation = generation + 1,
                attempts = CASE WHEN ?6 THEN 0 ELSE attempts END,
                next_attempt_at = CASE WHEN ?6 THEN 0 ELSE next_attempt_at END
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        url,
        serde_json::to_string(&events)?,
        enabled,
        now,
        reenabled
    ])?;
    let (hook, ..) = stored(c, project_id, id)?;
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        actor,
        &Event::WebhookUpdated(changed(&hook)),
    )?;
    Ok(hook)
}

pub(super) fn delete(c: &Connection, project_id: i64, id: i64, actor: &str, now: Millis) -> Result<()> {
    let (old, ..) = stored(c, project_id, id)?;
    c.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?.execute([id])?;
    let e = Event::WebhookDeleted(WebhookDeleted {
        webhook_id: id,
        url: old.url,
    });
    event(c, Some(project_id), None, None, now, actor, &e)
}

pub(super) fn rotate(
    c: &Connection,
    project_id: i64,
    id: i64,
    secret: &str,
    previous_until: Millis,
    actor: &str,
    now: Millis,
) -> Result<Webhook> {
    stored(c, project_id, id)?;
    c.prepare_cached(
        "UPDATE webhooks SET previous_secret = secret, previous_until = ?2, secret = ?3, updated_at = ?4,
                generation = generation + 1
         WHERE id = ?1",
    )?
    .execute(params![id, previous_until, secret, now])?;
    let e = Event::WebhookRotated(WebhookRotated {
        webhook_id: id,
        previous_until,
    });
    event(c, Some(project_id), None, None, now, actor, &e)?;
    Ok(stored(c, project_id, id)?.0)
}

pub(super) fn replay(
    c: &Connection,
    project_id: i64,
    id: i64,
    from_seq: i64,
    actor: &str,
    now: Millis,
) -> Result<Webhook> {
    stored(c, project_id, id)?;
    c.prepare_cached(
        "UPDATE webhooks SET cursor = ?2, attempts = 0, next_attempt_at = 0, updated_at = ?3,
                generation = generation + 1
         WHERE id = ?1",
    )?
    .execute(params![id, (from_seq - 1).max(0), now])?;
    let e = Event::WebhookReplayed(WebhookReplayed {
        webhook_id: id,
        from_seq,
    });
    event(c, Some(project_id), None, None, now, actor, &e)?;
    Ok(stored(c, project_id, id)?.0)
}

pub(super) fn deliveries(c: &Connection, project_id: i64, id: i64, limit: usize) -> Result<Vec<DeliveryRecord>> {
    stored(c, project_id, id)?;
    c.prepare_cached(
        "SELECT id, webhook_id, event_seq, kind, message_id, attempt, at, status, latency_ms, response, outcome,
                next_attempt_at
         FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?
    .query_map(params![id, limit as i64], |r| {
        let outcome: String = r.get(10)?;
        Ok(DeliveryRecord {
            id: r.get(0)?,
            webhook_id: r.get(1)?,
            attempt: DeliveryAttempt {
                event_seq: r.get(2)?,
                kind: r.get(3)?,
                message_id: r.get(4)?,
                attempt: r.get(5)?,
                at: r.get(6)?,
                status: r.get(7)?,
                latency_ms: r.get(8)?,
                response: r.get(9)?,
                outcome: AttemptOutcome::parse(&outcome).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        10,
                        rusqlite::types::Type::Text,
                        format!("unknown outcome {outcome}").into(),
                    )
                })?,
                next_attempt_at: r.get(11)?,
            },
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

pub(super) fn due(c: &Connection, now: Millis) -> Result<Vec<i64>> {
    c.prepare_cached(
        "SELECT w.id FROM webhooks w
         WHERE w.enabled AND w.next_attempt_at <= ?1
           AND EXISTS (SELECT 1 FROM events e WHERE e.project_id = w.project_id AND e.seq > w.cursor)
         ORDER BY w.id",
    )?
    .query_map([now], |r| r.get(0))?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

pub(super) fn backlog(c: &Connection) -> Result<Vec<(i64, i64)>> {
    c.prepare_cached(
        "SELECT w.project_id,
                SUM((SELECT COUNT(*) FROM events e WHERE e.project_id = w.project_id AND e.seq > w.cursor))
         FROM webhooks w WHERE w.enabled
         GROUP BY w.project_id ORDER BY w.project_id",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

/// The endpoint as a round needs it, if it is enabled and due.
pub(super) fn target(c: &Connection, id: i64, now: Millis) -> Result<Option<WebhookTarget>> {
    let row = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM webhooks WHERE id = ?1 AND enabled AND next_attempt_at <= ?2"
        ))?
        .query_row(params![id, now], hook_row)
        .optional()?;
    Ok(row.map(|(hook, secret, previous, generation)| {
        let mut secrets = vec![secret];
        if let (Some(p), Some(until)) = (previous, hook.previous_until)
            && until > now
        {
            secrets.push(p);
        }
        WebhookTarget {
            hook,
            secrets,
            generation,
        }
    }))
}

/// Writes a round: its attempts (while the endpoint exists), the endpoint's new state and
/// events (unless the API changed it meanwhile), and drops attempts past the newest
/// [`DELIVERIES_KEPT`].
pub(super) fn finish(c: &Connection, target: &WebhookTarget, round: &DeliveryRound, now: Millis) -> Result<()> {
    let id = target.hook.id;
    let exists: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = ?1)")?
        .query_row([id], |r| r.get(0))?;
    if !exists {
        return Ok(());
    }
    if !round.attempts.is_empty() {
        let mut insert = c.prepare_cached(
            "INSERT INTO webhook_deliveries (webhook_id, event_seq, kind, message_id, attempt, at, status, latency_ms,
                                             response, outcome, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for a in &round.attempts {
            insert.execute(params![
                id,
                a.event_seq,
                a.kind,
                a.message_id,
                a.attempt,
                a.at,
                a.status,
                a.latency_ms,
                a.response,
                a.outcome.as_str(),
                a.next_attempt_at
            ])?;
        }
        c.prepare_cached(
            "DELETE FROM webhook_deliveries WHERE webhook_id = ?1 AND id <
                 (SELECT id FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )?
        .execute(params![id, DELIVERIES_KEPT - 1])?;
    }
    let updated = c
        .prepare_cached(
            "UPDATE webhooks SET cursor = ?3, attempts = ?4, next_attempt_at = ?5, failing = ?6,
                    enabled = enabled AND NOT ?7
             WHERE id = ?1 AND generation = ?2",
        )?
        .execute(params![
            id,
            target.generation,
            round.cursor,
            round.head_attempts,
            round.next_attempt_at,
            round.failing,
            round.disable
        ])?;
    if updated == 1 {
        for e in &round.events {
            event(c, Some(target.hook.project_id), None, None, now, "webhooks", e)?;
        }
    }
    Ok(())
}

/// A delivery round's in-process hold on an endpoint.
pub(super) struct SqliteWebhookLease {
    pub(super) store: SqliteStore,
    pub(super) id: i64,
    pub(super) target: Option<WebhookTarget>,
}

impl Drop for SqliteWebhookLease {
    fn drop(&mut self) {
        self.store
            .inner
            .webhook_rounds
            .lock()
            .expect("webhook rounds")
            .remove(&self.id);
    }
}

#[async_trait]
impl WebhookLease for SqliteWebhookLease {
    fn target(&self) -> &WebhookTarget {
        self.target.as_ref().expect("a lease has its target until dropped")
    }

    async fn finish(self: Box<Self>, round: DeliveryRound, now: Millis) -> Result<()> {
        let target = self.target().clone();
        self.store.write(move |c| finish(c, &target, &round, now)).await
        // `self` drops here, after the write: the endpoint is let go.
    }
}
