//! Undo and amend on SQLite: loads the answer a reviewer wants to change (and whether its
//! item has an adjudication open), asks `flywheel_core::amend`, and writes the plan in the
//! writer's transaction — the review's new label, the adjudication task, the events and
//! the amendment record. It decides nothing itself.

use flywheel_core::amend::{self, Amending, Stored};
use flywheel_core::review::TaskState;
use flywheel_core::{Answer, Stage};
use rusqlite::{Connection, OptionalExtension, params};

use super::answers::insert_task;
use super::common::event;
use crate::*;

/// Changes one of a reviewer's answers as core's plan says. Returns the result, the
/// answer's project, and whether claimable work was made (an adjudication).
pub(super) fn amend_review(c: &Connection, a: NewAmendment, now: Millis) -> Result<(AmendResult, i64, bool)> {
    let stored: Option<(String, i64)> = c
        .prepare_cached(
            "SELECT m.result, t.project_id FROM amendments m JOIN reviews w ON w.id = m.review
             JOIN tasks t ON t.id = w.task_id WHERE m.reviewer_id = ?1 AND m.amend_id = ?2",
        )?
        .query_row(params![a.reviewer_id, a.amend_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((result, project_id)) = stored {
        return Ok((serde_json::from_str(&result)?, project_id, false));
    }
    let (row, item_id, s) = stored_answer(c, &a)?;
    let project_id = s.task.project_id;
    let labels: String = c
        .prepare_cached("SELECT labels FROM projects WHERE id = ?1")?
        .query_row([project_id], |r| r.get(0))?;
    let rules = a.rules.get(&project_id).cloned().unwrap_or_default();
    let label = amend::check_label(
        &serde_json::from_str::<Vec<String>>(&labels)?,
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
        return Ok((plan.result, project_id, false));
    }
    let actor = format!("reviewer:{}", a.reviewer_name);
    c.prepare_cached("UPDATE reviews SET kind = 'label', label = ?2 WHERE id = ?1")?
        .execute(params![row, label])?;
    if let Some(f) = &fields {
        let text = (!f.is_empty()).then(|| serde_json::to_string(f)).transpose()?;
        c.prepare_cached("UPDATE reviews SET fields = ?2 WHERE id = ?1")?
            .execute(params![row, text])?;
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
        )?;
        event(c, Some(project_id), Some(item_id), Some(task), now, &actor, &e.event)?;
        plan.result.adjudication_task_id = Some(task);
    }
    for e in &plan.events {
        event(c, Some(project_id), Some(item_id), Some(s.task.id), now, &actor, e)?;
    }
    c.prepare_cached(
        "INSERT INTO amendments (amend_id, reviewer_id, review, previous, label, outcome, reason, result, amended_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        a.amend_id,
        a.reviewer_id,
        row,
        plan.result.previous,
        label,
        plan.result.outcome,
        a.reason,
        serde_json::to_string(&plan.result)?,
        now
    ])?;
    Ok((plan.result, project_id, plan.escalation.is_some()))
}

/// The reviewer's newest answer with this `review_id`: its row, its item, and what core
/// needs of it.
fn stored_answer(c: &Connection, a: &NewAmendment) -> Result<(i64, i64, Stored)> {
    // Through reviews_reviewer_time, newest first: a review_id is unique per task, so the
    // same key on two tasks means the newer answer.
    let row = c
        .prepare_cached(
            "SELECT w.id, w.item_id, w.kind, w.label, w.reason, w.answered_at, w.task_id, t.project_id, t.stage, t.queue,
                    t.tier, t.priority, t.overlap, t.gold, t.state = 'open'
             FROM reviews w JOIN tasks t ON t.id = w.task_id
             WHERE w.reviewer_id = ?1 AND w.review_id = ?2 ORDER BY w.answered_at DESC LIMIT 1",
        )?
        .query_row(params![a.reviewer_id, a.review_id], |r| {
            let kind: String = r.get(2)?;
            let text = |i| r.get::<_, Option<String>>(i).map(Option::unwrap_or_default);
            let answer = match kind.as_str() {
                "label" => Answer::Label(text(3)?),
                "escalate" => Answer::Escalate { reason: text(4)? },
                _ => Answer::Skip { reason: text(4)? },
            };
            let stage: String = r.get(8)?;
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                Stored {
                    review_id: a.review_id.clone(),
                    reviewer_id: a.reviewer_id,
                    answer,
                    answered_at: r.get(5)?,
                    task: TaskState {
                        id: r.get(6)?,
                        project_id: r.get(7)?,
                        stage: Stage::parse(&stage).unwrap_or(Stage::Review),
                        queue: r.get(9)?,
                        tier: r.get(10)?,
                        priority: r.get(11)?,
                        overlap: r.get(12)?,
                        gold: r.get(13)?,
                    },
                    task_open: r.get(14)?,
                    adjudication_open: false,
                },
            ))
        })
        .optional()?;
    let (row, item_id, mut s) = row.ok_or_else(|| StoreError::not_found(format!("review '{}'", a.review_id)))?;
    s.adjudication_open = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE item_id = ?1 AND stage = 'adjudicate' AND state = 'open')",
        )?
        .query_row([item_id], |r| r.get(0))?;
    Ok((row, item_id, s))
}
