//! The SLA worker's run on SQLite: load the open tasks whose warning time or deadline has
//! passed (the `tasks_sla_pending` index range), ask `flywheel_core::sla::step` what each
//! needs, and write it — the once-per-task marks, the events and the breach's action — in
//! the writer's transaction. It decides nothing itself.

use std::collections::HashMap;
use std::sync::Arc;

use flywheel_core::sla::{self, SlaChange, SlaStep, SlaTask, Slas};
use flywheel_core::task::Source;
use flywheel_core::{Event, Prediction, event as ev};
use rusqlite::{Connection, OptionalExtension, params};

use super::answers::insert_label;
use super::common::{event, opt_json};
use crate::*;

/// Open tasks whose warning time has passed, not yet breached, that need a warning or a
/// breach at `?1` (the `tasks_sla_pending` index range, earliest warning first).
const DUE: &str =
    "SELECT t.id, t.project_id, t.item_id, t.queue, t.tier, t.priority, t.created_at, t.warn_at, t.due_at,
        t.warned_at IS NOT NULL, i.resolved_label IS NOT NULL, i.prediction
    FROM tasks t JOIN items i ON i.id = t.item_id
    WHERE t.state = 'open' AND t.breached_at IS NULL AND t.warn_at IS NOT NULL AND t.warn_at <= ?1
      AND (t.warned_at IS NULL OR t.due_at <= ?1)
    ORDER BY t.warn_at LIMIT ?2";

/// One run; returns what it wrote and the projects whose tasks an escalation made
/// claimable by other tiers.
pub(super) fn run_sla(
    c: &Connection,
    slas: &HashMap<i64, Arc<Slas>>,
    now: Millis,
    limit: usize,
) -> Result<(SlaRun, Vec<i64>)> {
    let tasks = c
        .prepare_cached(DUE)?
        .query_map(params![now, limit as i64], |r| {
            Ok(SlaTask {
                task_id: r.get(0)?,
                project_id: r.get(1)?,
                item_id: r.get(2)?,
                queue: r.get(3)?,
                tier: r.get(4)?,
                priority: r.get(5)?,
                created_at: r.get(6)?,
                warn_at: r.get(7)?,
                due_at: r.get(8)?,
                warned: r.get(9)?,
                resolved: r.get(10)?,
                prediction: opt_json::<Prediction>(r, 11)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let none = Slas::default();
    let mut run = SlaRun::default();
    let mut escalated = Vec::new();
    for t in &tasks {
        let slas = slas.get(&t.project_id).map_or(&none, AsRef::as_ref);
        let Some(step) = sla::step(t, slas, now) else {
            continue;
        };
        let (warned, breached, climbed) = write_step(c, &step, now)?;
        run.warnings += usize::from(warned);
        run.breaches += usize::from(breached);
        if climbed {
            escalated.push(t.project_id);
        }
    }
    Ok((run, escalated))
}

/// Writes one task's step; returns (warning written, breach written, escalated).
fn write_step(c: &Connection, s: &SlaStep, now: Millis) -> Result<(bool, bool, bool)> {
    let on = |e: &Event| {
        event(
            c,
            Some(s.project_id),
            Some(s.item_id),
            Some(s.task_id),
            now,
            "system",
            e,
        )
    };
    let mut warned = false;
    if let Some(w) = &s.warning {
        warned = c
            .prepare_cached("UPDATE tasks SET warned_at = ?2 WHERE id = ?1 AND state = 'open' AND warned_at IS NULL")?
            .execute(params![s.task_id, now])?
            == 1;
        if warned {
            on(w)?;
        }
    }
    let Some((breach, change)) = &s.breach else {
        return Ok((warned, false, false));
    };
    let marked: Option<String> = c
        .prepare_cached(
            "UPDATE tasks SET breached_at = ?2 WHERE id = ?1 AND state = 'open' AND breached_at IS NULL RETURNING queue",
        )?
        .query_row(params![s.task_id, now], |r| r.get(0))
        .optional()?;
    let Some(queue) = marked else {
        return Ok((warned, false, false));
    };
    super::counts::add(s.project_id, Some(&queue), |d| d.breached += 1);
    on(breach)?;
    match change {
        SlaChange::None => Ok((warned, true, false)),
        SlaChange::Escalate { tier, priority, due_at } => {
            c.prepare_cached("UPDATE tasks SET tier = ?2, priority = ?3, due_at = ?4 WHERE id = ?1")?
                .execute(params![s.task_id, tier, priority, due_at])?;
            Ok((warned, true, true))
        }
        SlaChange::Resolve {
            resolution,
            model,
            model_version,
        } => {
            let (policy_version, first): (u32, bool) = c
                .prepare_cached(
                    "SELECT policy_version, resolved_label IS NULL AND gold_label IS NULL FROM items WHERE id = ?1",
                )?
                .query_row([s.item_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if first {
                super::counts::resolved(s.project_id);
            }
            c.prepare_cached("UPDATE items SET resolved_label = ?2, resolution = ?3, resolved_at = ?4 WHERE id = ?1")?
                .execute(params![
                    s.item_id,
                    resolution.label,
                    serde_json::to_string(resolution)?,
                    now
                ])?;
            let closed = c
                .prepare_cached(
                    "UPDATE tasks SET state = 'done', available = 0, closed_at = ?2, reason = 'sla_expired'
                     WHERE item_id = ?1 AND state = 'open' RETURNING queue, gold",
                )?
                .query_map(params![s.item_id, now], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(String, bool)>>>()?;
            for (queue, _) in closed.iter().filter(|(_, gold)| !gold) {
                super::counts::open(s.project_id, queue, -1);
            }
            let cancelled = c
                .prepare_cached(
                    "UPDATE leases SET state = 'cancelled', ended_at = ?2 WHERE item_id = ?1 AND state = 'active'
                     RETURNING id, task_id, reviewer_id",
                )?
                .query_map(params![s.item_id, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<(i64, i64, i64)>>>()?;
            for (lease_id, task_id, reviewer_id) in cancelled {
                let e = Event::LeaseCancelled(ev::LeaseCancelled {
                    lease_id,
                    reviewer_id,
                    reason: "the item was resolved when its SLA expired".into(),
                });
                event(c, Some(s.project_id), Some(s.item_id), Some(task_id), now, "system", &e)?;
            }
            insert_label(
                c,
                s.project_id,
                s.item_id,
                &resolution.label,
                Source::Auto,
                Some(model),
                model_version.as_deref(),
                policy_version,
                now,
            )?;
            if let Some(e) = change.resolved_event() {
                on(&e)?;
            }
            Ok((warned, true, false))
        }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// The claim with deadlines walks its index in order (no temporary B-tree for the
    /// ORDER BY), with and without a queue; the SLA scan uses its partial index.
    #[test]
    fn claims_and_the_sla_scan_use_their_indexes_without_a_sort() {
        let c = Connection::open_in_memory().unwrap();
        super::super::migrate(&c).unwrap();
        let plan = |sql: &str| -> Vec<String> {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let nulls = vec![rusqlite::types::Null; st.parameter_count()];
            st.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        for (queue, index) in [(false, "tasks_claim "), (true, "tasks_claim_queue ")] {
            let p = plan(&super::super::work::claim_sql(&[1, 2], queue));
            assert!(p.iter().any(|l| l.contains(index)), "{p:?}");
            assert!(!p.iter().any(|l| l.contains("TEMP B-TREE")), "{p:?}");
        }
        let p = plan(super::DUE);
        assert!(p.iter().any(|l| l.contains("tasks_sla_pending")), "{p:?}");
        assert!(!p.iter().any(|l| l.contains("TEMP B-TREE")), "{p:?}");
    }
}
