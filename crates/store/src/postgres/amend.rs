//! Undo and amend on PostgreSQL, inside the caller's transaction: loads the answer a
//! reviewer wants to change, asks `flywheel_core::amend`, and writes the plan, as
//! `sqlite/amend.rs` does; it decides nothing itself. The answer's task row is locked
//! first, as an answer and lease expiry lock it, so a change and a concurrent answer to
//! the same task take turns.

use flywheel_core::amend::{self, Amending, Stored};
use flywheel_core::review::TaskState;
use flywheel_core::{Answer, Stage};
use sqlx::PgConnection;

use super::TxResult;
use super::answers::insert_task;
use super::common::{event, notify, parse};
use crate::*;

/// The stored result of this reviewer's `amend_id`, if any.
async fn stored_amendment(c: &mut PgConnection, a: &NewAmendment) -> TxResult<Option<AmendResult>> {
    let row: Option<String> =
        sqlx::query_scalar("SELECT result::text FROM amendments WHERE reviewer_id = $1 AND amend_id = $2")
            .bind(a.reviewer_id)
            .bind(&a.amend_id)
            .fetch_optional(&mut *c)
            .await?;
    row.map(|s| parse(&s)).transpose()
}

/// Changes one of a reviewer's answers as core's plan says.
pub(super) async fn amend_review(
    c: &mut PgConnection,
    channel: &str,
    a: &NewAmendment,
    now: Millis,
) -> TxResult<AmendResult> {
    if let Some(done) = stored_amendment(c, a).await? {
        return Ok(done);
    }
    let task_id: Option<i64> = sqlx::query_scalar(
        "SELECT task_id FROM reviews WHERE reviewer_id = $1 AND review_id = $2 ORDER BY answered_at DESC LIMIT 1",
    )
    .bind(a.reviewer_id)
    .bind(&a.review_id)
    .fetch_optional(&mut *c)
    .await?;
    let task_id = task_id.ok_or_else(|| StoreError::not_found(format!("review '{}'", a.review_id)))?;
    sqlx::query("SELECT id FROM tasks WHERE id = $1 FOR UPDATE")
        .bind(task_id)
        .execute(&mut *c)
        .await?;
    // A change committed while this one waited for the lock.
    if let Some(done) = stored_amendment(c, a).await? {
        return Ok(done);
    }
    let (row, item_id, s) = stored_answer(c, a, task_id).await?;
    let project_id = s.task.project_id;
    let labels: String = sqlx::query_scalar("SELECT labels::text FROM projects WHERE id = $1")
        .bind(project_id)
        .fetch_one(&mut *c)
        .await?;
    let rules = a.rules.get(&project_id).cloned().unwrap_or_default();
    let label = amend::check_label(
        &parse::<Vec<String>>(&labels)?,
        &rules,
        a.label.as_deref(),
        a.labels.as_deref(),
    )?;
    let fields = amend::check_fields(&rules, &label, a.fields.as_ref())?;
    let amending = Amending {
        amend_id: &a.amend_id,
        label: &label,
        reason: a.reason.as_deref(),
        fields: fields.as_ref(),
        now,
    };
    let mut plan = amend::plan(&s, &amending, &rules).map_err(|r| StoreError::conflict(r.code, r.message))?;
    if !plan.relabel {
        return Ok(plan.result);
    }
    let actor = format!("reviewer:{}", a.reviewer_name);
    sqlx::query("UPDATE reviews SET kind = 'label', label = $2 WHERE id = $1")
        .bind(row)
        .bind(&label)
        .execute(&mut *c)
        .await?;
    if let Some(f) = &fields {
        let text = (!f.is_empty()).then(|| serde_json::to_string(f)).transpose()?;
        sqlx::query("UPDATE reviews SET fields = $2::jsonb WHERE id = $1")
            .bind(row)
            .bind(text)
            .execute(&mut *c)
            .await?;
    }
    if let Some(e) = &plan.escalation {
        let task = insert_task(
            c,
            project_id,
            item_id,
            Stage::Adjudicate,
            &e.route,
            Some(&e.reason),
            now,
        )
        .await?;
        event(c, Some(project_id), Some(item_id), Some(task), now, &actor, &e.event).await?;
        plan.result.adjudication_task_id = Some(task);
    }
    for e in &plan.events {
        event(c, Some(project_id), Some(item_id), Some(s.task.id), now, &actor, e).await?;
    }
    sqlx::query(
        "INSERT INTO amendments (amend_id, reviewer_id, review, previous, label, outcome, reason, result, amended_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)",
    )
    .bind(&a.amend_id)
    .bind(a.reviewer_id)
    .bind(row)
    .bind(&plan.result.previous)
    .bind(&label)
    .bind(&plan.result.outcome)
    .bind(&a.reason)
    .bind(serde_json::to_string(&plan.result)?)
    .bind(now)
    .execute(&mut *c)
    .await?;
    if plan.escalation.is_some() {
        notify(c, channel, &Notice::TasksAvailable { project_id }).await?;
    }
    Ok(plan.result)
}

/// review id, item, kind, label, reason, answered at, project, stage, queue, tier,
/// priority, overlap, gold, open.
type AnswerRow = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    String,
    String,
    i16,
    i32,
    i16,
    bool,
    bool,
);

/// The reviewer's newest answer with this `review_id` on `task_id` (locked): its row, its
/// item, and what core needs of it.
async fn stored_answer(c: &mut PgConnection, a: &NewAmendment, task_id: i64) -> TxResult<(i64, i64, Stored)> {
    let r: AnswerRow = sqlx::query_as(
        "SELECT w.id, w.item_id, w.kind, w.label, w.reason, w.answered_at, t.project_id, t.stage, t.queue,
                t.tier, t.priority, t.overlap, t.gold, t.state = 'open'
         FROM reviews w JOIN tasks t ON t.id = w.task_id
         WHERE w.task_id = $1 AND w.reviewer_id = $2 AND w.review_id = $3",
    )
    .bind(task_id)
    .bind(a.reviewer_id)
    .bind(&a.review_id)
    .fetch_one(&mut *c)
    .await?;
    let (row, item_id, kind, label, reason, answered_at, project_id, stage, queue, tier, priority, overlap, gold, open) =
        r;
    let answer = match kind.as_str() {
        "label" => Answer::Label(label.unwrap_or_default()),
        "escalate" => Answer::Escalate {
            reason: reason.unwrap_or_default(),
        },
        _ => Answer::Skip {
            reason: reason.unwrap_or_default(),
        },
    };
    let adjudication_open: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM tasks WHERE item_id = $1 AND stage = 'adjudicate' AND state = 'open')",
    )
    .bind(item_id)
    .fetch_one(&mut *c)
    .await?;
    let stored = Stored {
        review_id: a.review_id.clone(),
        reviewer_id: a.reviewer_id,
        answer,
        answered_at,
        task: TaskState {
            id: task_id,
            project_id,
            stage: Stage::parse(&stage).unwrap_or(Stage::Review),
            queue,
            tier: tier as u8,
            priority,
            overlap: overlap as u8,
            gold,
        },
        task_open: open,
        adjudication_open,
    };
    Ok((row, item_id, stored))
}
