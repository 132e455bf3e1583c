//! Claims and leases on SQLite: leasing the next task (or a gold task in its place),
//! extending a lease, and giving expired leases' slots back. Claims are writes, so the
//! single writer serialises them: a slot is never leased twice. Storing an answer is
//! `answers.rs`'s.

use flywheel_core::{Prediction, Stage};
use rusqlite::{Connection, OptionalExtension, params};

use super::common::{event, json_col, opt_json};
use crate::*;
use flywheel_core::{Event, event as ev};

/// The gold items of project ?1 reviewer ?2 has not seen (the pick's `FROM` and `WHERE`).
const UNSEEN_GOLD: &str = "FROM items i WHERE i.project_id = ?1 AND i.gold_label IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = i.id AND r.reviewer_id = ?2)";

pub(super) fn claim(c: &Connection, req: &ClaimRequest, now: Millis) -> Result<Option<ClaimedTask>> {
    if req.tiers.is_empty() {
        return Ok(None);
    }
    let held: Option<Option<String>> = c
        .prepare_cached(
            "SELECT held_reason FROM reviewer_quality WHERE project_id = ?1 AND reviewer_id = ?2 AND held_at IS NOT NULL",
        )?
        .query_row(params![req.project_id, req.reviewer_id], |r| r.get(0))
        .optional()?;
    if let Some(reason) = held {
        return Err(StoreError::held(&req.reviewer_name, reason.as_deref()));
    }
    let sql = claim_sql(&req.tiers, req.queue.is_some());
    let row: Option<(i64, i64, String, String, u8, i32, u8)> = c
        .prepare_cached(&sql)?
        .query_row(params![req.project_id, req.reviewer_id, req.queue], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .optional()?;
    let Some((mut task_id, mut item_id, stage, queue, tier, priority, overlap)) = row else {
        return Ok(None);
    };
    let stage = Stage::parse(&stage).ok_or_else(|| StoreError::Backend(format!("unknown stage {stage}")))?;
    // Gold passes for the regular task it replaces: same queue, tier and stage, and it is
    // handed out only when such a task exists. Which one the caller's draw says (never the
    // database's own random(), which no seed reaches).
    let gold_item: Option<i64> = match req.gold {
        Some(pick) if stage == Stage::Review => {
            let unseen: i64 = c
                .prepare_cached(&format!("SELECT count(*) {UNSEEN_GOLD}"))?
                .query_row(params![req.project_id, req.reviewer_id], |r| r.get(0))?;
            if unseen == 0 {
                None
            } else {
                c.prepare_cached(&format!("SELECT i.id {UNSEEN_GOLD} ORDER BY i.id LIMIT 1 OFFSET ?3"))?
                    .query_row(
                        params![req.project_id, req.reviewer_id, gold_pick_offset(pick, unseen)],
                        |r| r.get(0),
                    )
                    .optional()?
            }
        }
        _ => None,
    };
    // Everything that can fail on the stored data is read before anything is written, so
    // that a claim that fails has written nothing ("submit and next" keeps the answer then).
    let (external_id, payload, attributes, prediction, mut why) = c
        .prepare_cached("SELECT external_id, payload, attributes, prediction, decision FROM items WHERE id = ?1")?
        .query_row([gold_item.unwrap_or(item_id)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                json_col(r, 1)?,
                json_col(r, 2)?,
                opt_json::<Prediction>(r, 3)?,
                opt_json::<Why>(r, 4)?,
            ))
        })?;
    if gold_item.is_some() {
        // A gold task shows the why of the task it stands in for.
        why = c
            .prepare_cached("SELECT decision FROM items WHERE id = ?1")?
            .query_row([item_id], |r| opt_json::<Why>(r, 0))?;
    }
    let expires = now + req.lease_ms;
    match gold_item {
        Some(gold) => {
            c.prepare_cached(
                "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, created_at, gold)
                 VALUES (?1, ?2, 'review', ?3, ?4, ?5, ?6, 0, 'open', ?7, 1)",
            )?
            .execute(params![req.project_id, gold, queue, tier, priority, overlap, now])?;
            task_id = c.last_insert_rowid();
            item_id = gold;
        }
        None => {
            c.prepare_cached("UPDATE tasks SET available = available - 1 WHERE id = ?1")?
                .execute([task_id])?;
        }
    }
    c.prepare_cached(
        "INSERT INTO leases (task_id, item_id, reviewer_id, granted_at, expires_at, lease_ms, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active')",
    )?
    .execute(params![task_id, item_id, req.reviewer_id, now, expires, req.lease_ms])?;
    let lease_id = c.last_insert_rowid();
    c.prepare_cached("INSERT OR IGNORE INTO item_reviewers (item_id, reviewer_id) VALUES (?1, ?2)")?
        .execute(params![item_id, req.reviewer_id])?;
    event(
        c,
        Some(req.project_id),
        Some(item_id),
        Some(task_id),
        now,
        &format!("reviewer:{}", req.reviewer_name),
        &Event::LeaseGranted(ev::LeaseGranted {
            lease_id,
            reviewer_id: req.reviewer_id,
            expires_at: expires,
            stage,
        }),
    )?;
    Ok(Some(ClaimedTask {
        task_id,
        lease_id,
        lease_expires_at: expires,
        stage,
        queue,
        tier,
        external_id,
        payload,
        attributes,
        prediction,
        why,
    }))
}

/// The pick of a claim: priority, then deadline (none last: `ifnull` to i64::MAX, as the
/// claim indexes key it), then age — walked in the `tasks_claim` or `tasks_claim_queue`
/// index's order, with no sort. Tiers are small integers (u8), so writing them into the
/// SQL is safe, and it lets the planner walk the claim index in order.
pub(super) fn claim_sql(tiers: &[u8], queue: bool) -> String {
    let tiers = tiers.iter().map(u8::to_string).collect::<Vec<_>>().join(",");
    let queue_filter = if queue { "AND t.queue = ?3" } else { "AND ?3 IS NULL" };
    format!(
        "SELECT t.id, t.item_id, t.stage, t.queue, t.tier, t.priority, t.overlap FROM tasks t
         WHERE t.project_id = ?1 AND t.available > 0 AND t.gold = 0 {queue_filter} AND t.tier IN ({tiers})
           AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = t.item_id AND r.reviewer_id = ?2)
         ORDER BY t.priority DESC, ifnull(t.due_at, 9223372036854775807), t.item_id, t.id LIMIT 1"
    )
}

pub(super) struct ActiveLease {
    pub(super) project_id: i64,
    pub(super) item_id: i64,
    pub(super) granted_at: Millis,
    pub(super) lease_ms: i64,
}

/// The lease if it is active, unexpired, and held by this reviewer on this task.
pub(super) fn active_lease(
    c: &Connection,
    task_id: i64,
    lease_id: i64,
    reviewer_id: i64,
    now: Millis,
) -> Result<ActiveLease> {
    c.prepare_cached(
        "SELECT t.project_id, l.item_id, l.granted_at, l.lease_ms FROM leases l JOIN tasks t ON t.id = l.task_id
         WHERE l.id = ?1 AND l.task_id = ?2 AND l.reviewer_id = ?3 AND l.state = 'active' AND l.expires_at > ?4",
    )?
    .query_row(params![lease_id, task_id, reviewer_id, now], |r| {
        Ok(ActiveLease {
            project_id: r.get(0)?,
            item_id: r.get(1)?,
            granted_at: r.get(2)?,
            lease_ms: r.get(3)?,
        })
    })
    .optional()?
    .ok_or_else(StoreError::lease_lost)
}

pub(super) fn heartbeat(c: &Connection, task_id: i64, lease_id: i64, reviewer_id: i64, now: Millis) -> Result<Millis> {
    let lease = active_lease(c, task_id, lease_id, reviewer_id, now)?;
    let expires = now + lease.lease_ms;
    c.prepare_cached("UPDATE leases SET expires_at = ?2 WHERE id = ?1")?
        .execute(params![lease_id, expires])?;
    event(
        c,
        Some(lease.project_id),
        Some(lease.item_id),
        Some(task_id),
        now,
        &format!("reviewer_id:{reviewer_id}"),
        &Event::LeaseExtended(ev::LeaseExtended {
            lease_id,
            expires_at: expires,
        }),
    )?;
    Ok(expires)
}

/// Returns the project of each lease expired.
pub(super) fn expire_leases(c: &Connection, now: Millis, limit: usize) -> Result<Vec<i64>> {
    let expired = c
        .prepare_cached(
            "SELECT l.id, l.task_id, l.item_id, l.reviewer_id, t.project_id FROM leases l JOIN tasks t ON t.id = l.task_id
             WHERE l.state = 'active' AND l.expires_at <= ?1 ORDER BY l.expires_at LIMIT ?2",
        )?
        .query_map(params![now, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (lease_id, task_id, item_id, reviewer_id, project_id) in &expired {
        c.prepare_cached("UPDATE leases SET state = 'expired', ended_at = ?2 WHERE id = ?1")?
            .execute(params![lease_id, now])?;
        // A gold task exists only for the reviewer it was made for: it closes, it does not
        // go back to a queue.
        c.prepare_cached(
            "UPDATE tasks SET available = CASE WHEN gold = 1 THEN 0 ELSE available + 1 END,
                              state = CASE WHEN gold = 1 THEN 'done' ELSE state END,
                              closed_at = CASE WHEN gold = 1 THEN ?2 ELSE closed_at END
             WHERE id = ?1 AND state = 'open'",
        )?
        .execute(params![task_id, now])?;
        c.prepare_cached("DELETE FROM item_reviewers WHERE item_id = ?1 AND reviewer_id = ?2")?
            .execute(params![item_id, reviewer_id])?;
        event(
            c,
            Some(*project_id),
            Some(*item_id),
            Some(*task_id),
            now,
            "system",
            &Event::LeaseExpired(ev::LeaseExpired {
                lease_id: *lease_id,
                reviewer_id: *reviewer_id,
            }),
        )?;
    }
    Ok(expired.into_iter().map(|e| e.4).collect())
}

/// Ends reviewer `reviewer_id`'s active leases on the projects `revoked` picks (a grant
/// withdrawn, a hold), in the caller's transaction: each slot goes back as on expiry (a
/// gold task closes), the reviewer may be served the item again, and a `lease.cancelled`
/// event is written per lease. Returns the project of each lease cancelled.
pub(super) fn cancel_reviewer_leases(
    c: &Connection,
    reviewer_id: i64,
    revoked: impl Fn(i64) -> bool,
    reason: &str,
    now: Millis,
) -> Result<Vec<i64>> {
    let active = c
        .prepare_cached(
            "SELECT l.id, l.task_id, l.item_id, t.project_id FROM leases l JOIN tasks t ON t.id = l.task_id
             WHERE l.reviewer_id = ?1 AND l.state = 'active' ORDER BY l.id",
        )?
        .query_map(params![reviewer_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut projects = Vec::new();
    for (lease_id, task_id, item_id, project_id) in active.into_iter().filter(|l| revoked(l.3)) {
        c.prepare_cached("UPDATE leases SET state = 'cancelled', ended_at = ?2 WHERE id = ?1")?
            .execute(params![lease_id, now])?;
        c.prepare_cached(
            "UPDATE tasks SET available = CASE WHEN gold = 1 THEN 0 ELSE available + 1 END,
                              state = CASE WHEN gold = 1 THEN 'done' ELSE state END,
                              closed_at = CASE WHEN gold = 1 THEN ?2 ELSE closed_at END
             WHERE id = ?1 AND state = 'open'",
        )?
        .execute(params![task_id, now])?;
        c.prepare_cached("DELETE FROM item_reviewers WHERE item_id = ?1 AND reviewer_id = ?2")?
            .execute(params![item_id, reviewer_id])?;
        let cancelled = Event::LeaseCancelled(ev::LeaseCancelled {
            lease_id,
            reviewer_id,
            reason: reason.to_string(),
        });
        event(
            c,
            Some(project_id),
            Some(item_id),
            Some(task_id),
            now,
            "system",
            &cancelled,
        )?;
        projects.push(project_id);
    }
    projects.sort_unstable();
    projects.dedup();
    Ok(projects)
}
