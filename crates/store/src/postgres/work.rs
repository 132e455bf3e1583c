//! Claims and leases on PostgreSQL (the same model as `sqlite/work.rs`); what differs is
//! how rows are locked. A claim takes its task with `FOR UPDATE SKIP LOCKED`, and without
//! gold is one statement ([`CLAIM`]), atomic without a transaction. Lease expiry locks the
//! task row before its leases, as an answer does (`answers.rs`), so the two never take
//! locks in opposite orders; it runs on one node at a time.

use flywheel_core::{Prediction, Stage};
use sqlx::{AssertSqlSafe, PgConnection};

use super::TxResult;
use super::common::{event, notify, parse};
use crate::*;
use flywheel_core::{Event, event as ev};

/// A claim without gold, in one statement (one round trip instead of seven): the held
/// check, the pick (`FOR UPDATE SKIP LOCKED`), the slot taken, the lease, the reviewer
/// marked as having seen the item, the event, and the item read back. `{queue}` is the
/// queue filter, written into the SQL so that the planner walks the right index.
const CLAIM: &str = "
WITH held AS (
    SELECT held_reason FROM reviewer_quality WHERE project_id = $1 AND reviewer_id = $2 AND held_at IS NOT NULL
), pick AS (
    SELECT t.id, t.item_id, t.stage, t.queue, t.tier FROM tasks t
    WHERE t.project_id = $1 AND t.available > 0 AND NOT t.gold AND t.tier = ANY($3) {queue}
      AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = t.item_id AND r.reviewer_id = $2)
      AND NOT EXISTS (SELECT 1 FROM held)
    ORDER BY t.priority DESC, t.due_at, t.item_id, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED
), taken AS (
    UPDATE tasks SET available = available - 1 FROM pick WHERE tasks.id = pick.id
), lease AS (
    INSERT INTO leases (task_id, item_id, reviewer_id, granted_at, expires_at, lease_ms, state)
    SELECT id, item_id, $2, $5, $6, $7, 'active' FROM pick
    RETURNING id, task_id, item_id
), seen AS (
    INSERT INTO item_reviewers (item_id, reviewer_id) SELECT item_id, $2 FROM pick ON CONFLICT DO NOTHING
), event AS (
    INSERT INTO events (project_id, item_id, task_id, at, kind, actor, data)
    SELECT $1, lease.item_id, lease.task_id, $5, $9, $8,
           jsonb_build_object('lease_id', lease.id, 'reviewer_id', $2::int8, 'expires_at', $6::int8, 'stage', pick.stage)
    FROM lease JOIN pick ON pick.id = lease.task_id
)
SELECT EXISTS (SELECT 1 FROM held), (SELECT held_reason FROM held),
       p.id, p.stage, p.queue, p.tier, lease.id, i.external_id, i.payload::text, i.attributes::text, i.prediction::text,
       i.decision->>'rule', (i.decision->'reasons')::text
FROM (SELECT 1) one
LEFT JOIN (pick p JOIN lease ON lease.task_id = p.id JOIN items i ON i.id = p.item_id) ON true";

type ClaimRow = (
    bool,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i16>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn claim_without_gold(c: &mut PgConnection, req: &ClaimRequest, now: Millis) -> TxResult<Option<ClaimedTask>> {
    let queue = if req.queue.is_some() {
        "AND t.queue = $4"
    } else {
        "AND $4::text IS NULL"
    };
    let sql = CLAIM.replace("{queue}", queue);
    let tiers: Vec<i16> = req.tiers.iter().map(|t| i16::from(*t)).collect();
    let expires = now + req.lease_ms;
    let row: ClaimRow = sqlx::query_as(AssertSqlSafe(sql))
        .bind(req.project_id)
        .bind(req.reviewer_id)
        .bind(&tiers)
        .bind(&req.queue)
        .bind(now)
        .bind(expires)
        .bind(req.lease_ms)
        .bind(format!("reviewer:{}", req.reviewer_name))
        .bind(Event::LEASE_GRANTED)
        .fetch_one(&mut *c)
        .await?;
    let (
        held,
        reason,
        task_id,
        stage,
        queue,
        tier,
        lease_id,
        external_id,
        payload,
        attributes,
        prediction,
        rule,
        reasons,
    ) = row;
    if held {
        return Err(StoreError::held(&req.reviewer_name, reason.as_deref()).into());
    }
    let (
        Some(task_id),
        Some(stage),
        Some(queue),
        Some(tier),
        Some(lease_id),
        Some(external_id),
        Some(payload),
        Some(attributes),
    ) = (task_id, stage, queue, tier, lease_id, external_id, payload, attributes)
    else {
        return Ok(None);
    };
    Ok(Some(ClaimedTask {
        task_id,
        lease_id,
        lease_expires_at: expires,
        stage: Stage::parse(&stage).ok_or_else(|| StoreError::Backend(format!("unknown stage {stage}")))?,
        queue,
        tier: tier as u8,
        external_id,
        payload: parse(&payload)?,
        attributes: parse(&attributes)?,
        prediction: prediction.as_deref().map(parse::<Prediction>).transpose()?,
        why: match rule {
            Some(rule) => Some(Why {
                rule,
                reasons: reasons
                    .as_deref()
                    .map(parse::<Vec<String>>)
                    .transpose()?
                    .unwrap_or_default(),
            }),
            None => None,
        },
    }))
}

/// The gold items of project $1 reviewer $2 has not seen (the pick's `FROM` and `WHERE`).
const UNSEEN_GOLD: &str = "FROM items i WHERE i.project_id = $1 AND i.gold_label IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = i.id AND r.reviewer_id = $2)";

pub(super) async fn claim(c: &mut PgConnection, req: &ClaimRequest, now: Millis) -> TxResult<Option<ClaimedTask>> {
    if req.tiers.is_empty() {
        return Ok(None);
    }
    let Some(pick) = req.gold else {
        return claim_without_gold(c, req, now).await;
    };
    let held: Option<Option<String>> = sqlx::query_scalar(
        "SELECT held_reason FROM reviewer_quality WHERE project_id = $1 AND reviewer_id = $2 AND held_at IS NOT NULL",
    )
    .bind(req.project_id)
    .bind(req.reviewer_id)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(reason) = held {
        return Err(StoreError::held(&req.reviewer_name, reason.as_deref()).into());
    }
    let tiers: Vec<i16> = req.tiers.iter().map(|t| i16::from(*t)).collect();
    let sql = if req.queue.is_some() {
        "SELECT t.id, t.item_id, t.stage, t.queue, t.tier, t.priority, t.overlap FROM tasks t
         WHERE t.project_id = $1 AND t.available > 0 AND NOT t.gold AND t.tier = ANY($3) AND t.queue = $4
           AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = t.item_id AND r.reviewer_id = $2)
         ORDER BY t.priority DESC, t.due_at, t.item_id, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED"
    } else {
        "SELECT t.id, t.item_id, t.stage, t.queue, t.tier, t.priority, t.overlap FROM tasks t
         WHERE t.project_id = $1 AND t.available > 0 AND NOT t.gold AND t.tier = ANY($3) AND $4::text IS NULL
           AND NOT EXISTS (SELECT 1 FROM item_reviewers r WHERE r.item_id = t.item_id AND r.reviewer_id = $2)
         ORDER BY t.priority DESC, t.due_at, t.item_id, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED"
    };
    let row: Option<(i64, i64, String, String, i16, i32, i16)> = sqlx::query_as(sql)
        .bind(req.project_id)
        .bind(req.reviewer_id)
        .bind(&tiers)
        .bind(&req.queue)
        .fetch_optional(&mut *c)
        .await?;
    let Some((mut task_id, mut item_id, stage, queue, tier, priority, overlap)) = row else {
        return Ok(None);
    };
    let stage = Stage::parse(&stage).ok_or_else(|| StoreError::Backend(format!("unknown stage {stage}")))?;
    // Gold passes for the regular task it replaces (see the SQLite backend).
    // Which one the caller's draw says (see the SQLite backend).
    let gold_item: Option<i64> = if stage == Stage::Review {
        let unseen: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) {UNSEEN_GOLD}")))
            .bind(req.project_id)
            .bind(req.reviewer_id)
            .fetch_one(&mut *c)
            .await?;
        if unseen == 0 {
            None
        } else {
            sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT i.id {UNSEEN_GOLD} ORDER BY i.id LIMIT 1 OFFSET $3"
            )))
            .bind(req.project_id)
            .bind(req.reviewer_id)
            .bind(gold_pick_offset(pick, unseen))
            .fetch_optional(&mut *c)
            .await?
        }
    } else {
        None
    };
    let expires = now + req.lease_ms;
    let why_item = item_id;
    match gold_item {
        Some(gold) => {
            task_id = sqlx::query_scalar(
                "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, created_at, gold)
                 VALUES ($1, $2, 'review', $3, $4, $5, $6, 0, 'open', $7, true) RETURNING id",
            )
            .bind(req.project_id)
            .bind(gold)
            .bind(&queue)
            .bind(tier)
            .bind(priority)
            .bind(overlap)
            .bind(now)
            .fetch_one(&mut *c)
            .await?;
            item_id = gold;
        }
        None => {
            sqlx::query("UPDATE tasks SET available = available - 1 WHERE id = $1")
                .bind(task_id)
                .execute(&mut *c)
                .await?;
        }
    }
    let lease_id: i64 = sqlx::query_scalar(
        "INSERT INTO leases (task_id, item_id, reviewer_id, granted_at, expires_at, lease_ms, state)
         VALUES ($1, $2, $3, $4, $5, $6, 'active') RETURNING id",
    )
    .bind(task_id)
    .bind(item_id)
    .bind(req.reviewer_id)
    .bind(now)
    .bind(expires)
    .bind(req.lease_ms)
    .fetch_one(&mut *c)
    .await?;
    sqlx::query("INSERT INTO item_reviewers (item_id, reviewer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(item_id)
        .bind(req.reviewer_id)
        .execute(&mut *c)
        .await?;
    let (external_id, payload, attributes, prediction): (String, String, String, Option<String>) = sqlx::query_as(
        "SELECT external_id, payload::text, attributes::text, prediction::text FROM items WHERE id = $1",
    )
    .bind(item_id)
    .fetch_one(&mut *c)
    .await?;
    // A gold task shows the why of the task it stands in for.
    let why: Option<String> = sqlx::query_scalar("SELECT decision::text FROM items WHERE id = $1")
        .bind(why_item)
        .fetch_optional(&mut *c)
        .await?;
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
    )
    .await?;
    Ok(Some(ClaimedTask {
        task_id,
        lease_id,
        lease_expires_at: expires,
        stage,
        queue,
        tier: tier as u8,
        external_id,
        payload: parse(&payload)?,
        attributes: parse(&attributes)?,
        prediction: prediction.as_deref().map(parse::<Prediction>).transpose()?,
        why: why.as_deref().map(parse::<Why>).transpose()?,
    }))
}

pub(super) async fn heartbeat(
    c: &mut PgConnection,
    task_id: i64,
    lease_id: i64,
    reviewer_id: i64,
    now: Millis,
) -> TxResult<Millis> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "UPDATE leases SET expires_at = $4 + lease_ms
         WHERE id = $1 AND task_id = $2 AND reviewer_id = $3 AND state = 'active' AND expires_at > $4
         RETURNING expires_at, item_id, (SELECT project_id FROM tasks WHERE tasks.id = leases.task_id)",
    )
    .bind(lease_id)
    .bind(task_id)
    .bind(reviewer_id)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    let (expires, item_id, project_id) = row.ok_or_else(StoreError::lease_lost)?;
    event(
        c,
        Some(project_id),
        Some(item_id),
        Some(task_id),
        now,
        &format!("reviewer_id:{reviewer_id}"),
        &Event::LeaseExtended(ev::LeaseExtended {
            lease_id,
            expires_at: expires,
        }),
    )
    .await?;
    Ok(expires)
}

/// Runs on one node at a time (a transaction-scoped advisory lock: if the node holding it
/// dies, its transaction ends and the next node's attempt takes over).
pub(super) async fn expire_leases(c: &mut PgConnection, channel: &str, now: Millis, limit: usize) -> TxResult<usize> {
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.expire'))")
        .fetch_one(&mut *c)
        .await?;
    if !got {
        return Ok(0);
    }
    let due: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT l.id, l.task_id, l.item_id, l.reviewer_id, t.project_id FROM leases l JOIN tasks t ON t.id = l.task_id
         WHERE l.state = 'active' AND l.expires_at <= $1 ORDER BY l.expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    let mut projects = Vec::new();
    let mut count = 0;
    for (lease_id, task_id, item_id, reviewer_id, project_id) in due {
        // Task first, then lease: the same order as an answer takes them.
        sqlx::query("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE")
            .bind(task_id)
            .execute(&mut *c)
            .await?;
        let expired = sqlx::query(
            "UPDATE leases SET state = 'expired', ended_at = $2 WHERE id = $1 AND state = 'active' AND expires_at <= $2",
        )
        .bind(lease_id)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected();
        if expired == 0 {
            continue; // answered or extended meanwhile
        }
        count += 1;
        slot_back(c, task_id, item_id, reviewer_id, now).await?;
        event(
            c,
            Some(project_id),
            Some(item_id),
            Some(task_id),
            now,
            "system",
            &Event::LeaseExpired(ev::LeaseExpired { lease_id, reviewer_id }),
        )
        .await?;
        if !projects.contains(&project_id) {
            projects.push(project_id);
        }
    }
    for project_id in &projects {
        notify(
            c,
            channel,
            &Notice::TasksAvailable {
                project_id: *project_id,
            },
        )
        .await?;
    }
    Ok(count)
}

/// Ends reviewer `reviewer_id`'s active leases on the projects `revoked` picks (a grant
/// withdrawn, a hold), in the caller's transaction: each slot goes back as on expiry (a
/// gold task closes), the reviewer may be served the item again, a `lease.cancelled` event
/// is written per lease, and claimers of the project are told. Task row before lease, as
/// expiry and answers lock them.
pub(super) async fn cancel_reviewer_leases(
    c: &mut PgConnection,
    channel: &str,
    reviewer_id: i64,
    revoked: impl Fn(i64) -> bool,
    reason: &str,
    now: Millis,
) -> TxResult<()> {
    let active: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT l.id, l.task_id, l.item_id, t.project_id FROM leases l JOIN tasks t ON t.id = l.task_id
         WHERE l.reviewer_id = $1 AND l.state = 'active' ORDER BY l.id",
    )
    .bind(reviewer_id)
    .fetch_all(&mut *c)
    .await?;
    let mut projects = Vec::new();
    for (lease_id, task_id, item_id, project_id) in active.into_iter().filter(|l| revoked(l.3)) {
        sqlx::query("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE")
            .bind(task_id)
            .execute(&mut *c)
            .await?;
        let ended =
            sqlx::query("UPDATE leases SET state = 'cancelled', ended_at = $2 WHERE id = $1 AND state = 'active'")
                .bind(lease_id)
                .bind(now)
                .execute(&mut *c)
                .await?
                .rows_affected();
        if ended == 0 {
            continue; // answered or expired meanwhile
        }
        slot_back(c, task_id, item_id, reviewer_id, now).await?;
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
        )
        .await?;
        if !projects.contains(&project_id) {
            projects.push(project_id);
        }
    }
    for project_id in projects {
        notify(c, channel, &Notice::TasksAvailable { project_id }).await?;
    }
    Ok(())
}

/// A lease that ended unanswered (expired or cancelled) gives its slot back — a gold task,
/// which exists only for the reviewer it was made for, closes — and the item may come back
/// to that reviewer.
async fn slot_back(c: &mut PgConnection, task_id: i64, item_id: i64, reviewer_id: i64, now: Millis) -> TxResult<()> {
    sqlx::query(
        "UPDATE tasks SET available = CASE WHEN gold THEN 0 ELSE available + 1 END,
                          state = CASE WHEN gold THEN 'done' ELSE state END,
                          closed_at = CASE WHEN gold THEN $2 ELSE closed_at END
         WHERE id = $1 AND state = 'open'",
    )
    .bind(task_id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    sqlx::query("DELETE FROM item_reviewers WHERE item_id = $1 AND reviewer_id = $2")
        .bind(item_id)
        .bind(reviewer_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}
