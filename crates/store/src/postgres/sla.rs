//! The SLA worker's run on PostgreSQL (the same model as `sqlite/sla.rs`): under a
//! transaction-scoped advisory lock (one node runs it at a time), the open tasks whose
//! warning time or deadline has passed are locked (`FOR UPDATE OF t SKIP LOCKED`: task rows
//! first, as answers and lease expiry take them), core's `sla::step` says what each needs,
//! and the marks, events and action are written in the same transaction.

use std::collections::HashMap;
use std::sync::Arc;

use flywheel_core::sla::{self, SlaChange, SlaStep, SlaTask, Slas};
use flywheel_core::task::Source;
use flywheel_core::{Event, Prediction, event as ev};
use sqlx::PgConnection;

use super::TxResult;
use super::answers::insert_label;
use super::common::{event, notify, parse};
use crate::*;

type Row = (
    i64,
    i64,
    i64,
    String,
    i16,
    i32,
    i64,
    i64,
    i64,
    bool,
    bool,
    Option<String>,
);

pub(super) async fn run_sla(
    c: &mut PgConnection,
    channel: &str,
    slas: &HashMap<i64, Arc<Slas>>,
    now: Millis,
    limit: usize,
) -> TxResult<SlaRun> {
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.sla'))")
        .fetch_one(&mut *c)
        .await?;
    if !got {
        return Ok(SlaRun::default());
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT t.id, t.project_id, t.item_id, t.queue, t.tier, t.priority, t.created_at, t.warn_at, t.due_at,
                t.warned_at IS NOT NULL, i.resolved_label IS NOT NULL, i.prediction::text
         FROM tasks t JOIN items i ON i.id = t.item_id
         WHERE t.state = 'open' AND t.breached_at IS NULL AND t.warn_at IS NOT NULL AND t.warn_at <= $1
           AND (t.warned_at IS NULL OR t.due_at <= $1)
         ORDER BY t.warn_at LIMIT $2 FOR UPDATE OF t SKIP LOCKED",
    )
    .bind(now)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    let none = Slas::default();
    let mut run = SlaRun::default();
    let mut escalated = Vec::new();
    for r in rows {
        let t = SlaTask {
            task_id: r.0,
            project_id: r.1,
            item_id: r.2,
            queue: r.3,
            tier: u8::try_from(r.4).unwrap_or(u8::MAX),
            priority: r.5,
            created_at: r.6,
            warn_at: r.7,
            due_at: r.8,
            warned: r.9,
            resolved: r.10,
            prediction: r.11.as_deref().map(parse::<Prediction>).transpose()?,
        };
        let slas = slas.get(&t.project_id).map_or(&none, AsRef::as_ref);
        let Some(step) = sla::step(&t, slas, now) else {
            continue;
        };
        let (warned, breached, climbed) = write_step(c, &step, now).await?;
        run.warnings += usize::from(warned);
        run.breaches += usize::from(breached);
        if climbed {
            escalated.push(t.project_id);
        }
    }
    escalated.sort_unstable();
    escalated.dedup();
    for project_id in escalated {
        notify(c, channel, &Notice::TasksAvailable { project_id }).await?;
    }
    Ok(run)
}

/// Writes one task's step; returns (warning written, breach written, escalated).
async fn write_step(c: &mut PgConnection, s: &SlaStep, now: Millis) -> TxResult<(bool, bool, bool)> {
    let (p, i, t) = (Some(s.project_id), Some(s.item_id), Some(s.task_id));
    let mut warned = false;
    if let Some(w) = &s.warning {
        warned = sqlx::query("UPDATE tasks SET warned_at = $2 WHERE id = $1 AND state = 'open' AND warned_at IS NULL")
            .bind(s.task_id)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected()
            == 1;
        if warned {
            event(c, p, i, t, now, "system", w).await?;
        }
    }
    let Some((breach, change)) = &s.breach else {
        return Ok((warned, false, false));
    };
    let marked =
        sqlx::query("UPDATE tasks SET breached_at = $2 WHERE id = $1 AND state = 'open' AND breached_at IS NULL")
            .bind(s.task_id)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected()
            == 1;
    if !marked {
        return Ok((warned, false, false));
    }
    event(c, p, i, t, now, "system", breach).await?;
    match change {
        SlaChange::None => Ok((warned, true, false)),
        SlaChange::Escalate { tier, priority, due_at } => {
            sqlx::query("UPDATE tasks SET tier = $2, priority = $3, due_at = $4 WHERE id = $1")
                .bind(s.task_id)
                .bind(i16::from(*tier))
                .bind(priority)
                .bind(due_at)
                .execute(&mut *c)
                .await?;
            Ok((warned, true, true))
        }
        SlaChange::Resolve {
            resolution,
            model,
            model_version,
        } => {
            let policy_version: i32 = sqlx::query_scalar(
                "UPDATE items SET resolved_label = $2, resolution = $3::jsonb, resolved_at = $4 WHERE id = $1
                 RETURNING policy_version",
            )
            .bind(s.item_id)
            .bind(&resolution.label)
            .bind(serde_json::to_string(resolution)?)
            .bind(now)
            .fetch_one(&mut *c)
            .await?;
            sqlx::query(
                "UPDATE tasks SET state = 'done', available = 0, closed_at = $2, reason = 'sla_expired'
                 WHERE item_id = $1 AND state = 'open'",
            )
            .bind(s.item_id)
            .bind(now)
            .execute(&mut *c)
            .await?;
            let cancelled: Vec<(i64, i64, i64)> = sqlx::query_as(
                "UPDATE leases SET state = 'cancelled', ended_at = $2 WHERE item_id = $1 AND state = 'active'
                 RETURNING id, task_id, reviewer_id",
            )
            .bind(s.item_id)
            .bind(now)
            .fetch_all(&mut *c)
            .await?;
            for (lease_id, task_id, reviewer_id) in cancelled {
                let e = Event::LeaseCancelled(ev::LeaseCancelled {
                    lease_id,
                    reviewer_id,
                    reason: "the item was resolved when its SLA expired".into(),
                });
                event(c, p, i, Some(task_id), now, "system", &e).await?;
            }
            insert_label(
                c,
                s.project_id,
                s.item_id,
                &resolution.label,
                Source::Auto,
                Some(model),
                model_version.as_deref(),
                policy_version as u32,
                now,
            )
            .await?;
            if let Some(e) = change.resolved_event() {
                event(c, p, i, t, now, "system", &e).await?;
            }
            Ok((warned, true, false))
        }
    }
}
