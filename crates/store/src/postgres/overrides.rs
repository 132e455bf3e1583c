//! An admin's override of an item on PostgreSQL (the same model as `sqlite/overrides.rs`):
//! the item's open task rows locked first, as an answer locks its task before the item,
//! then the item read, core's `overrides::plan` asked, and the plan written.

use flywheel_core::overrides::{self, CLOSED_REASON, OpenTask};
use flywheel_core::task::Source;
use flywheel_core::{Event, Stage, event as ev};
use sqlx::PgConnection;

use super::TxResult;
use super::answers::insert_task;
use super::common::{event, notify, parse};
use crate::*;

type ItemRow = (i64, Option<String>, Option<String>, Option<String>, i32);

pub(super) async fn override_item(
    c: &mut PgConnection,
    channel: &str,
    project_id: i64,
    o: &NewOverride,
    now: Millis,
) -> TxResult<OverrideResult> {
    let item_id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM items WHERE project_id = $1 AND external_id = $2 AND gold_label IS NULL")
            .bind(project_id)
            .bind(&o.external_id)
            .fetch_optional(&mut *c)
            .await?;
    let Some(item_id) = item_id else {
        return Err(StoreError::not_found(format!("item '{}'", o.external_id)).into());
    };
    let open: Vec<(i64, String, String, i16)> = sqlx::query_as(
        "SELECT id, stage, queue, tier FROM tasks WHERE item_id = $1 AND state = 'open' AND NOT gold ORDER BY id FOR UPDATE",
    )
    .bind(item_id)
    .fetch_all(&mut *c)
    .await?;
    let open: Vec<OpenTask> = open
        .into_iter()
        .map(|(task_id, stage, queue, tier)| OpenTask {
            task_id,
            stage: Stage::parse(&stage).unwrap_or(Stage::Review),
            queue,
            tier: tier as u8,
        })
        .collect();
    let (_, resolution, model, model_version, policy_version): ItemRow = sqlx::query_as(
        "SELECT id, resolution::text, model, model_version, policy_version FROM items WHERE id = $1 FOR UPDATE",
    )
    .bind(item_id)
    .fetch_one(&mut *c)
    .await?;
    let resolution: Option<Resolution> = resolution.as_deref().map(parse::<Resolution>).transpose()?;
    let plan = overrides::plan(o.action.clone(), resolution.as_ref(), &open, &o.actor, &o.reason, now)
        .map_err(|r| StoreError::conflict(r.code(), r.message()))?;

    let mut cancelled_leases = Vec::new();
    for t in open.iter().filter(|t| plan.close.contains(&t.task_id)) {
        sqlx::query("UPDATE tasks SET state = 'done', available = 0, closed_at = $2, reason = $3 WHERE id = $1")
            .bind(t.task_id)
            .bind(now)
            .bind(CLOSED_REASON)
            .execute(&mut *c)
            .await?;
        let leases: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE leases SET state = 'cancelled', ended_at = $2 WHERE task_id = $1 AND state = 'active'
             RETURNING id, reviewer_id",
        )
        .bind(t.task_id)
        .bind(now)
        .fetch_all(&mut *c)
        .await?;
        for (lease_id, reviewer_id) in leases {
            // The reviewer gave nothing on the item: they may be handed it again.
            sqlx::query("DELETE FROM item_reviewers WHERE item_id = $1 AND reviewer_id = $2")
                .bind(item_id)
                .bind(reviewer_id)
                .execute(&mut *c)
                .await?;
            let cancelled = Event::LeaseCancelled(ev::LeaseCancelled {
                lease_id,
                reviewer_id,
                reason: CLOSED_REASON.into(),
            });
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(t.task_id),
                now,
                "system",
                &cancelled,
            )
            .await?;
            cancelled_leases.push(lease_id);
        }
    }
    if let Some(r) = &plan.resolution {
        sqlx::query("UPDATE items SET resolved_label = $2, resolution = $3::jsonb, resolved_at = $4 WHERE id = $1")
            .bind(item_id)
            .bind(&r.label)
            .bind(serde_json::to_string(r)?)
            .bind(now)
            .execute(&mut *c)
            .await?;
        let fields = plan.feed_fields.as_ref().map(serde_json::to_string).transpose()?;
        sqlx::query(
            "INSERT INTO labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at, fields)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)",
        )
        .bind(project_id)
        .bind(item_id)
        .bind(&r.label)
        .bind(Source::Human.as_str())
        .bind(model)
        .bind(model_version)
        .bind(policy_version)
        .bind(now)
        .bind(fields)
        .execute(&mut *c)
        .await?;
    }
    let task_id = match &plan.new_task {
        Some((stage, route)) => {
            let id = insert_task(c, project_id, item_id, *stage, route, Some(o.reason.as_str()), now).await?;
            notify(c, channel, &Notice::TasksAvailable { project_id }).await?;
            Some(id)
        }
        None => None,
    };
    for e in plan.events {
        let e = match e {
            Event::ItemOverridden(mut x) => {
                x.task_id = task_id;
                Event::ItemOverridden(x)
            }
            other => other,
        };
        event(c, Some(project_id), Some(item_id), task_id, now, &o.actor, &e).await?;
    }
    Ok(OverrideResult {
        item_id,
        closed_tasks: plan.close,
        cancelled_leases,
        task_id,
        resolution: plan.resolution,
    })
}
