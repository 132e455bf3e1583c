//! An admin's override of an item on SQLite, in the writer's transaction: load the item
//! and its open tasks, ask core's `overrides::plan`, write the plan. No rule lives here.

use flywheel_core::overrides::{self, CLOSED_REASON, OpenTask};
use flywheel_core::task::Source;
use flywheel_core::{Event, Stage, event as ev};
use rusqlite::{Connection, OptionalExtension, params};

use super::answers::insert_task;
use super::common::{event, opt_json};
use crate::*;

pub(super) fn override_item(c: &Connection, project_id: i64, o: NewOverride, now: Millis) -> Result<OverrideResult> {
    let item = c
        .prepare_cached(
            "SELECT id, resolution, model, model_version, policy_version FROM items
             WHERE project_id = ?1 AND external_id = ?2 AND gold_label IS NULL",
        )?
        .query_row(params![project_id, o.external_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                opt_json::<Resolution>(r, 1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, u32>(4)?,
            ))
        })
        .optional()?;
    let Some((item_id, resolution, model, model_version, policy_version)) = item else {
        return Err(StoreError::not_found(format!("item '{}'", o.external_id)));
    };
    let open = c
        .prepare_cached(
            "SELECT id, stage, queue, tier FROM tasks WHERE item_id = ?1 AND state = 'open' AND gold = 0 ORDER BY id",
        )?
        .query_map([item_id], |r| {
            Ok(OpenTask {
                task_id: r.get(0)?,
                stage: Stage::parse(&r.get::<_, String>(1)?).unwrap_or(Stage::Review),
                queue: r.get(2)?,
                tier: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let plan = overrides::plan(o.action, resolution.as_ref(), &open, &o.actor, &o.reason, now)
        .map_err(|r| StoreError::conflict(r.code(), r.message()))?;

    let mut cancelled_leases = Vec::new();
    for t in open.iter().filter(|t| plan.close.contains(&t.task_id)) {
        c.prepare_cached(
            "UPDATE tasks SET state = 'done', available = 0, closed_at = ?2, reason = ?3 WHERE id = ?1 AND state = 'open'",
        )?
        .execute(params![t.task_id, now, CLOSED_REASON])?;
        super::counts::open(project_id, &t.queue, -1);
        let leases = c
            .prepare_cached(
                "UPDATE leases SET state = 'cancelled', ended_at = ?2 WHERE task_id = ?1 AND state = 'active'
                 RETURNING id, reviewer_id",
            )?
            .query_map(params![t.task_id, now], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (lease_id, reviewer_id) in leases {
            // The reviewer gave nothing on the item: they may be handed it again.
            c.prepare_cached("DELETE FROM item_reviewers WHERE item_id = ?1 AND reviewer_id = ?2")?
                .execute(params![item_id, reviewer_id])?;
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
            )?;
            cancelled_leases.push(lease_id);
        }
    }
    if let Some(r) = &plan.resolution {
        c.prepare_cached("UPDATE items SET resolved_label = ?2, resolution = ?3, resolved_at = ?4 WHERE id = ?1")?
            .execute(params![item_id, r.label, serde_json::to_string(r)?, now])?;
        if resolution.is_none() {
            super::counts::resolved(project_id);
        }
        let fields = plan.feed_fields.as_ref().map(serde_json::to_string).transpose()?;
        c.prepare_cached(
            "INSERT INTO labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at, fields)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            project_id,
            item_id,
            r.label,
            Source::Human.as_str(),
            model,
            model_version,
            policy_version,
            now,
            fields
        ])?;
    }
    let task_id = match &plan.new_task {
        Some((stage, route)) => Some(insert_task(
            c,
            project_id,
            item_id,
            *stage,
            route,
            Some(o.reason.as_str()),
            now,
        )?),
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
        event(c, Some(project_id), Some(item_id), task_id, now, &o.actor, &e)?;
    }
    Ok(OverrideResult {
        item_id,
        closed_tasks: plan.close,
        cancelled_leases,
        task_id,
        resolution: plan.resolution,
    })
}
