//! Answers on PostgreSQL, inside the caller's transaction: this module loads what
//! `flywheel_core::review` needs to decide an answer and writes the plan it returns, as
//! `sqlite/answers.rs` does; it decides nothing itself. An answer locks its task row
//! first, and so does lease expiry (`work.rs`), so the two never take locks in opposite
//! orders.

use std::collections::HashMap;

use flywheel_core::fields::Fields;
use flywheel_core::review::{self, GoldRecord, ItemState, Plan, Prior, TaskChange, TaskState};
use flywheel_core::task::Source;
use flywheel_core::{Answer, Event, Route, Stage, event as ev};
use sqlx::PgConnection;

use super::TxResult;
use super::common::{event, notify, parse};
use crate::*;

/// The stored result of this reviewer's `review_id` on this task, if any.
async fn stored_review(c: &mut PgConnection, r: &NewReview) -> TxResult<Option<ReviewResult>> {
    let row: Option<String> = sqlx::query_scalar(
        "SELECT result::text FROM reviews WHERE task_id = $1 AND reviewer_id = $2 AND review_id = $3",
    )
    .bind(r.task_id)
    .bind(r.reviewer_id)
    .bind(&r.review_id)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|s| parse(&s)).transpose()
}

/// Stores an answer and moves its task on as core's plan says.
pub(super) async fn submit_review(
    c: &mut PgConnection,
    channel: &str,
    r: &NewReview,
    now: Millis,
) -> TxResult<ReviewResult> {
    if let Some(done) = stored_review(c, r).await? {
        return Ok(done);
    }
    // Lock the task first: answers to one task (and lease expiry) take their turn here.
    let (project_id, task) = task_state(c, r.task_id).await?.ok_or_else(StoreError::lease_lost)?;
    if let Some(done) = stored_review(c, r).await? {
        return Ok(done);
    }
    let (item_id, granted_at) = answering_lease(c, r, now).await?;
    let judging = r.judging.get(&project_id).cloned().unwrap_or_default();
    // A label answer is checked against the project's labels and mode; a multi-label one
    // is judged and stored as its canonical encoding.
    let checked;
    let r = if matches!(r.answer, Answer::Label(_) | Answer::Labels(_)) {
        let labels: String = sqlx::query_scalar("SELECT labels::text FROM projects WHERE id = $1")
            .bind(project_id)
            .fetch_one(&mut *c)
            .await?;
        checked = NewReview {
            answer: review::check_answer(&parse::<Vec<String>>(&labels)?, &judging, r.answer.clone())?,
            ..r.clone()
        };
        &checked
    } else {
        r
    };
    let fields = review::check_fields(&judging, &r.answer, r.fields.as_ref())?;
    let a = r.answering(granted_at, now, &judging, &fields);
    let at = On {
        project_id,
        item_id,
        task_id: r.task_id,
        lease_id: r.lease_id,
        actor: format!("reviewer:{}", r.reviewer_name),
        now,
    };
    let plan = if task.gold {
        gold_answer(c, channel, &task, &a, &at, &judging).await?
    } else {
        let earlier = earlier_answers(c, r.task_id).await?;
        let records = if judging.weighs_reviewers() {
            let voters: Vec<i64> = earlier.iter().map(|p| p.reviewer_id).chain([r.reviewer_id]).collect();
            gold_records(c, project_id, &voters).await?
        } else {
            HashMap::new()
        };
        let next = review::judge(&task, &earlier, &a, &judging, &records);
        let item = if review::resolves(&next) {
            Some(item_state(c, item_id).await?)
        } else {
            None
        };
        let plan = review::plan(&task, &earlier, &a, next, item.as_ref().map(|(i, _)| i), &judging);
        write_plan(c, &plan, &at, item.map_or(0, |(_, v)| v)).await?;
        plan
    };
    record_review(c, r, &at, granted_at, &plan, &plan.submitted(&a), &fields).await?;
    if plan.result.freed_work() {
        notify(c, channel, &Notice::TasksAvailable { project_id }).await?;
    }
    Ok(plan.result)
}

/// The answering lease, locked: its item and when it was granted (`lease_lost` when it is
/// not this reviewer's active lease on this task).
async fn answering_lease(c: &mut PgConnection, r: &NewReview, now: Millis) -> TxResult<(i64, i64)> {
    let lease: Option<(i64, i64)> = sqlx::query_as(
        "SELECT item_id, granted_at FROM leases
         WHERE id = $1 AND task_id = $2 AND reviewer_id = $3 AND state = 'active' AND expires_at > $4 FOR UPDATE",
    )
    .bind(r.lease_id)
    .bind(r.task_id)
    .bind(r.reviewer_id)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    Ok(lease.ok_or_else(StoreError::lease_lost)?)
}

/// The reason a lease ends with when its reviewer's gold answers put them on hold.
pub(super) const GOLD_HOLD: &str = "the reviewer was held for low gold accuracy";

/// A gold task's answer: core's gold plan written, then the answer counted in the
/// reviewer's gold record, scored, and (below the bar) the reviewer held.
async fn gold_answer(
    c: &mut PgConnection,
    channel: &str,
    task: &TaskState,
    a: &review::Answering<'_>,
    at: &On,
    judging: &Judging,
) -> TxResult<Plan> {
    let gold: String = sqlx::query_scalar("SELECT gold_label FROM items WHERE id = $1")
        .bind(at.item_id)
        .fetch_one(&mut *c)
        .await?;
    let (plan, correct) = review::gold_plan(task, a, &gold, judging);
    write_plan(c, &plan, at, 0).await?;
    if let Some(correct) = correct {
        let record = count_gold(c, at.project_id, a.reviewer_id, correct).await?;
        let (scored, hold) = review::gold_scored(a, correct, record, judging.quality.as_ref());
        let on_task = (Some(at.project_id), Some(at.item_id), Some(at.task_id));
        event(c, on_task.0, on_task.1, on_task.2, at.now, &at.actor, &scored).await?;
        if let Some((reason, held)) = hold {
            mark_held(c, at.project_id, a.reviewer_id, &reason, at.now).await?;
            event(c, Some(at.project_id), None, None, at.now, "system", &held).await?;
            // Held now means no more work here now: the reviewer's other leases in the
            // project end in this transaction, as an admin's hold ends them.
            let project_id = at.project_id;
            super::work::cancel_reviewer_leases(c, channel, a.reviewer_id, |p| p == project_id, GOLD_HOLD, at.now)
                .await?;
        }
    }
    Ok(plan)
}

/// Where an answer's writes go.
struct On {
    project_id: i64,
    item_id: i64,
    task_id: i64,
    lease_id: i64,
    actor: String,
    now: Millis,
}

/// Writes what core planned for an answer, but the answer itself (`record_review`).
/// `policy_version` is the item's, for a label-feed entry.
async fn write_plan(c: &mut PgConnection, plan: &Plan, at: &On, policy_version: u32) -> TxResult<()> {
    let (task_id, now) = (at.task_id, at.now);
    sqlx::query("UPDATE leases SET state = $2, ended_at = $3 WHERE id = $1")
        .bind(at.lease_id)
        .bind(plan.lease.as_str())
        .bind(now)
        .execute(&mut *c)
        .await?;
    let counters = match plan.task {
        TaskChange::Counted => "UPDATE tasks SET answered = answered + 1 WHERE id = $1",
        TaskChange::SlotBack => "UPDATE tasks SET available = available + 1 WHERE id = $1",
        TaskChange::MoreReviewers => {
            "UPDATE tasks SET answered = answered + 1, overlap = overlap + 1, available = available + 1 WHERE id = $1"
        }
        TaskChange::Close { counted, .. } if counted => {
            "UPDATE tasks SET state = 'done', available = 0, closed_at = $2, answered = answered + 1 WHERE id = $1"
        }
        TaskChange::Close { .. } => "UPDATE tasks SET state = 'done', available = 0, closed_at = $2 WHERE id = $1",
    };
    let closes = matches!(plan.task, TaskChange::Close { .. });
    let query = sqlx::query(counters).bind(task_id);
    if closes { query.bind(now) } else { query }.execute(&mut *c).await?;
    if let TaskChange::Close {
        others_may_hold: true, ..
    } = plan.task
    {
        cancel_other_leases(c, task_id, now).await?;
    }
    if let Some(e) = &plan.escalation {
        let new_task = insert_task(
            c,
            at.project_id,
            at.item_id,
            Stage::Adjudicate,
            &e.route,
            Some(&e.reason),
            now,
        )
        .await?;
        event(
            c,
            Some(at.project_id),
            Some(at.item_id),
            Some(new_task),
            now,
            &at.actor,
            &e.event,
        )
        .await?;
    }
    if let Some(res) = &plan.resolve_item {
        sqlx::query("UPDATE items SET resolved_label = $2, resolution = $3::jsonb, resolved_at = $4 WHERE id = $1")
            .bind(at.item_id)
            .bind(&res.label)
            .bind(serde_json::to_string(res)?)
            .bind(now)
            .execute(&mut *c)
            .await?;
    }
    if let Some((label, source)) = &plan.feed {
        // As `insert_label`, with the resolved answer fields.
        let fields = plan.feed_fields.as_ref().map(serde_json::to_string).transpose()?;
        sqlx::query(
            "INSERT INTO labels (project_id, item_id, label, source, policy_version, resolved_at, fields)
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        )
        .bind(at.project_id)
        .bind(at.item_id)
        .bind(label)
        .bind(source.as_str())
        .bind(policy_version as i32)
        .bind(now)
        .bind(fields)
        .execute(&mut *c)
        .await?;
    }
    for e in &plan.events {
        event(
            c,
            Some(at.project_id),
            Some(at.item_id),
            Some(task_id),
            now,
            &at.actor,
            e,
        )
        .await?;
    }
    Ok(())
}

/// The task, locked for this transaction, and its project.
async fn task_state(c: &mut PgConnection, task_id: i64) -> TxResult<Option<(i64, TaskState)>> {
    let row: Option<(i64, String, String, i16, i32, i16, bool)> = sqlx::query_as(
        "SELECT project_id, stage, queue, tier, priority, overlap, gold FROM tasks WHERE id = $1 FOR UPDATE",
    )
    .bind(task_id)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(|(project_id, stage, queue, tier, priority, overlap, gold)| {
        let task = TaskState {
            id: task_id,
            project_id,
            stage: Stage::parse(&stage).unwrap_or(Stage::Review),
            queue,
            tier: tier as u8,
            priority,
            overlap: overlap as u8,
            gold,
        };
        (project_id, task)
    }))
}

/// reviewer id, reviewer name, kind, label, reason, too fast, fields.
type PriorRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    bool,
    Option<String>,
);

/// The task's answers so far but skips, in the order given, with their reviewers' names.
async fn earlier_answers(c: &mut PgConnection, task_id: i64) -> TxResult<Vec<Prior>> {
    let rows: Vec<PriorRow> = sqlx::query_as(
        "SELECT w.reviewer_id, v.name, w.kind, w.label, w.reason, w.too_fast, w.fields::text FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id
         WHERE w.task_id = $1 AND w.kind <> 'skip' ORDER BY w.id",
    )
    .bind(task_id)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(reviewer_id, reviewer, kind, label, reason, too_fast, fields)| Prior {
            reviewer_id,
            reviewer,
            too_fast,
            fields: fields.and_then(|f| serde_json::from_str(&f).ok()).unwrap_or_default(),
            answer: match kind.as_str() {
                "label" => Answer::Label(label.unwrap_or_default()),
                _ => Answer::Escalate {
                    reason: reason.unwrap_or_default(),
                },
            },
        })
        .collect())
}

/// (gold answers, gold correct) of each voter who has a record in the project.
async fn gold_records(c: &mut PgConnection, project_id: i64, voters: &[i64]) -> TxResult<HashMap<i64, (u64, u64)>> {
    let rows: Vec<(i64, i32, i32)> = sqlx::query_as(
        "SELECT reviewer_id, gold_answers, gold_correct FROM reviewer_quality WHERE project_id = $1 AND reviewer_id = ANY($2)",
    )
    .bind(project_id)
    .bind(voters)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(v, answered, correct)| (v, (answered as u64, correct as u64)))
        .collect())
}

/// The item as an answer that resolves it needs it, and its policy version.
async fn item_state(c: &mut PgConnection, item_id: i64) -> TxResult<(ItemState, u32)> {
    let (resolved_label, policy_version, was_auto): (Option<String>, i32, bool) =
        sqlx::query_as("SELECT resolved_label, policy_version, outcome = 'auto' FROM items WHERE id = $1")
            .bind(item_id)
            .fetch_one(&mut *c)
            .await?;
    Ok((
        ItemState {
            resolved_label,
            was_auto,
        },
        policy_version as u32,
    ))
}

/// Counts a gold answer in the reviewer's record and returns the record with it.
async fn count_gold(c: &mut PgConnection, project_id: i64, reviewer_id: i64, correct: bool) -> TxResult<GoldRecord> {
    let (answers, right, held): (i32, i32, Option<i64>) = sqlx::query_as(
        "INSERT INTO reviewer_quality (project_id, reviewer_id, gold_answers, gold_correct) VALUES ($1, $2, 1, $3)
         ON CONFLICT (project_id, reviewer_id) DO UPDATE SET gold_answers = reviewer_quality.gold_answers + 1,
             gold_correct = reviewer_quality.gold_correct + excluded.gold_correct
         RETURNING gold_answers, gold_correct, held_at",
    )
    .bind(project_id)
    .bind(reviewer_id)
    .bind(i32::from(correct))
    .fetch_one(&mut *c)
    .await?;
    Ok(GoldRecord {
        answers: answers as u64,
        correct: right as u64,
        held: held.is_some(),
    })
}

async fn mark_held(c: &mut PgConnection, project_id: i64, reviewer_id: i64, reason: &str, now: Millis) -> TxResult<()> {
    sqlx::query(
        "UPDATE reviewer_quality SET held_at = $3, held_reason = $4 WHERE project_id = $1 AND reviewer_id = $2",
    )
    .bind(project_id)
    .bind(reviewer_id)
    .bind(now)
    .bind(reason)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Stores an answer and its `review.submitted` event; the plan's result is kept so that a
/// retry of the same `review_id` gets it again.
async fn record_review(
    c: &mut PgConnection,
    r: &NewReview,
    at: &On,
    granted_at: Millis,
    plan: &Plan,
    submitted: &Event,
    fields: &Fields,
) -> TxResult<()> {
    let (label, reason) = match &r.answer {
        Answer::Label(l) => (Some(l.as_str()), None),
        Answer::Escalate { reason } | Answer::Skip { reason } => (None, Some(reason.as_str())),
        Answer::Labels(_) => {
            return Err(StoreError::Backend("a multi-label answer reached the store unchecked".into()).into());
        }
    };
    sqlx::query(
        "INSERT INTO reviews (review_id, reviewer_id, task_id, item_id, lease_id, kind, label, reason, failure_category, note,
                              claimed_at, answered_at, result, too_fast, fields)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15::jsonb)",
    )
    .bind(&r.review_id)
    .bind(r.reviewer_id)
    .bind(r.task_id)
    .bind(at.item_id)
    .bind(r.lease_id)
    .bind(r.answer.kind())
    .bind(label)
    .bind(reason)
    .bind(&r.failure_category)
    .bind(&r.note)
    .bind(granted_at)
    .bind(at.now)
    .bind(serde_json::to_string(&plan.result)?)
    .bind(plan.result.stored.is_some_and(|s| s.too_fast))
    .bind((!fields.is_empty()).then(|| serde_json::to_string(fields)).transpose()?)
    .execute(&mut *c)
    .await?;
    event(
        c,
        Some(at.project_id),
        Some(at.item_id),
        Some(r.task_id),
        at.now,
        &at.actor,
        submitted,
    )
    .await
}

/// Ends every other reviewer's active lease on a task that closed, with an event each.
async fn cancel_other_leases(c: &mut PgConnection, task_id: i64, now: Millis) -> TxResult<()> {
    let cancelled: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "UPDATE leases SET state = 'cancelled', ended_at = $2 WHERE task_id = $1 AND state = 'active'
         RETURNING id, item_id, reviewer_id, (SELECT project_id FROM tasks WHERE id = $1)",
    )
    .bind(task_id)
    .bind(now)
    .fetch_all(&mut *c)
    .await?;
    for (lease_id, item_id, reviewer_id, project_id) in cancelled {
        let cancelled = Event::LeaseCancelled(ev::LeaseCancelled {
            lease_id,
            reviewer_id,
            reason: "the task closed".into(),
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
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_task(
    c: &mut PgConnection,
    project_id: i64,
    item_id: i64,
    stage: Stage,
    route: &Route,
    reason: Option<&str>,
    now: Millis,
) -> TxResult<i64> {
    let (warn_at, due_at) = flywheel_core::sla::deadlines(route, now);
    Ok(sqlx::query_scalar(
        "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, reason, created_at,
                            warn_at, due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 'open', $8, $9, $10, $11) RETURNING id",
    )
    .bind(project_id)
    .bind(item_id)
    .bind(stage.as_str())
    .bind(&route.queue)
    .bind(i16::from(route.tier))
    .bind(route.priority)
    .bind(i16::from(route.overlap))
    .bind(reason)
    .bind(now)
    .bind(warn_at)
    .bind(due_at)
    .fetch_one(&mut *c)
    .await?)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_label(
    c: &mut PgConnection,
    project_id: i64,
    item_id: i64,
    label: &str,
    source: Source,
    model: Option<&str>,
    model_version: Option<&str>,
    policy_version: u32,
    now: Millis,
) -> TxResult<()> {
    sqlx::query(
        "INSERT INTO labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(project_id)
    .bind(item_id)
    .bind(label)
    .bind(source.as_str())
    .bind(model)
    .bind(model_version)
    .bind(policy_version as i32)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}
