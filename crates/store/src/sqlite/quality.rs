//! Reviewer quality on SQLite: gold items, reviewers' records (gold accuracy, agreement
//! with resolutions, time on task), holding and releasing a reviewer, and the answers
//! agreement is computed from. [`fill_answer_stats`] is shared with the PostgreSQL backend.
//! (Scoring a gold answer happens as it is stored, in `answers.rs`.)

use std::collections::HashMap;

use flywheel_core::{Decision, Outcome, Route};
use rusqlite::{Connection, OptionalExtension, params};

use super::common::event;
use crate::*;
use flywheel_core::{Event, event as ev};

pub(super) fn add_gold(
    c: &Connection,
    project_id: i64,
    items: Vec<NewGold>,
    actor: &str,
    now: Millis,
) -> Result<usize> {
    let set = super::common::project_labels(c, project_id)?;
    for (i, g) in items.iter().enumerate() {
        set.check_stored(&format!("items[{i}].label"), &g.label)?;
    }
    let decision = serde_json::to_string(&Decision {
        outcome: Outcome::Review {
            route: Route::default_review(),
        },
        rule: "gold".into(),
        reasons: vec!["gold item".into()],
        policy_version: 0,
        audit: None,
    })?;
    let mut added = 0;
    for g in items {
        let n = c
            .prepare_cached(
                "INSERT INTO items (project_id, external_id, payload, attributes, decision, outcome, policy_version, created_at,
                                    gold_label, prediction)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'review', 0, ?6, ?7, ?8) ON CONFLICT (project_id, external_id) DO NOTHING",
            )?
            .execute(params![
                project_id,
                g.external_id,
                g.payload.to_string(),
                g.attributes.to_string(),
                decision,
                now,
                g.label,
                g.prediction.as_ref().map(serde_json::to_string).transpose()?
            ])?;
        added += n;
    }
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        actor,
        &Event::GoldAdded(ev::GoldAdded { added: added as u64 }),
    )?;
    Ok(added)
}

pub(super) fn reviewer_stats(c: &Connection, project_id: i64) -> Result<Vec<ReviewerStats>> {
    let mut reviewers = c
        .prepare_cached(
            "SELECT v.id, v.name, coalesce(q.gold_answers, 0), coalesce(q.gold_correct, 0), q.held_at IS NOT NULL, q.held_reason
             FROM reviewer_projects p JOIN reviewers v ON v.id = p.reviewer_id
             LEFT JOIN reviewer_quality q ON q.project_id = p.project_id AND q.reviewer_id = v.id
             WHERE p.project_id = ?1 ORDER BY v.name",
        )?
        .query_map([project_id], |r| {
            Ok(ReviewerStats {
                reviewer_id: r.get(0)?,
                name: r.get(1)?,
                answers: 0,
                gold_answers: r.get(2)?,
                gold_correct: r.get(3)?,
                agree_with_resolution: 0,
                compared_with_resolution: 0,
                median_time_on_task_ms: None,
                held: r.get(4)?,
                held_reason: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // One pass over the project's answers (reviews has no index by reviewer: see
    // migration 0006), grouped here.
    let mut rows: HashMap<i64, Vec<AnswerRow>> = HashMap::new();
    let mut stmt = c.prepare_cached(
        "SELECT w.reviewer_id, w.label, i.resolved_label, w.answered_at - w.claimed_at FROM reviews w
         JOIN tasks t ON t.id = w.task_id JOIN items i ON i.id = w.item_id
         WHERE t.project_id = ?1 AND t.gold = 0 AND w.kind = 'label'",
    )?;
    let mut q = stmt.query([project_id])?;
    while let Some(r) = q.next()? {
        rows.entry(r.get(0)?)
            .or_default()
            .push((r.get(1)?, r.get(2)?, r.get(3)?));
    }
    for s in &mut reviewers {
        fill_answer_stats(s, rows.remove(&s.reviewer_id).unwrap_or_default());
    }
    Ok(reviewers)
}

/// An answer as reviewer statistics see it: (label, resolved label, time on task).
pub(crate) type AnswerRow = (Option<String>, Option<String>, i64);

/// Counts, agreement with resolutions and the median time on task from a reviewer's
/// (label, resolved label, time on task) rows.
pub(crate) fn fill_answer_stats(s: &mut ReviewerStats, rows: Vec<AnswerRow>) {
    s.answers = rows.len() as i64;
    for (label, resolved, _) in &rows {
        if let (Some(l), Some(r)) = (label, resolved) {
            s.compared_with_resolution += 1;
            s.agree_with_resolution += i64::from(l == r);
        }
    }
    let mut times: Vec<i64> = rows.iter().map(|r| r.2).collect();
    times.sort_unstable();
    s.median_time_on_task_ms = (!times.is_empty()).then(|| times[times.len() / 2]);
}

/// The id of reviewer `name` if granted the project; `NotFound` otherwise.
pub(super) fn reviewer_in_project(c: &Connection, name: &str, project_id: i64) -> Result<i64> {
    c.prepare_cached(
        "SELECT v.id FROM reviewers v JOIN reviewer_projects p ON p.reviewer_id = v.id WHERE v.name = ?1 AND p.project_id = ?2",
    )?
    .query_row(params![name, project_id], |r| r.get(0))
    .optional()?
    .ok_or_else(|| StoreError::not_found(format!("reviewer '{name}' in this project")))
}

pub(super) fn hold_reviewer(
    c: &Connection,
    project_id: i64,
    name: &str,
    reason: &str,
    actor: &str,
    now: Millis,
) -> Result<Vec<i64>> {
    let id = reviewer_in_project(c, name, project_id)?;
    c.prepare_cached(
        "INSERT INTO reviewer_quality (project_id, reviewer_id, held_at, held_reason) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, reviewer_id) DO UPDATE SET held_at = excluded.held_at, held_reason = excluded.held_reason",
    )?
    .execute(params![project_id, id, now, reason])?;
    let data = Event::ReviewerHeld(ev::ReviewerHeld {
        reviewer_id: id,
        reviewer: name.to_string(),
        reason: reason.to_string(),
    });
    event(c, Some(project_id), None, None, now, actor, &data)?;
    // A hold ends the reviewer's leases in the project now, not at expiry.
    super::work::cancel_reviewer_leases(c, id, |p| p == project_id, "the reviewer was held", now)
}

pub(super) fn release_reviewer(
    c: &Connection,
    project_id: i64,
    reviewer: &str,
    actor: &str,
    now: Millis,
) -> Result<()> {
    let id = reviewer_in_project(c, reviewer, project_id)?;
    c.prepare_cached(
        "UPDATE reviewer_quality SET held_at = NULL, held_reason = NULL, gold_answers = 0, gold_correct = 0
         WHERE project_id = ?1 AND reviewer_id = ?2",
    )?
    .execute(params![project_id, id])?;
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        actor,
        &Event::ReviewerReleased(ev::ReviewerReleased {
            reviewer_id: id,
            reviewer: reviewer.to_string(),
        }),
    )?;
    Ok(())
}

pub(super) fn project_answers(c: &Connection, project_id: i64) -> Result<Vec<ProjectAnswer>> {
    c.prepare_cached(
        "SELECT w.reviewer_id, v.name, i.external_id, w.label FROM reviews w
         JOIN tasks t ON t.id = w.task_id JOIN reviewers v ON v.id = w.reviewer_id JOIN items i ON i.id = w.item_id
         WHERE t.project_id = ?1 AND t.stage = 'review' AND t.gold = 0 AND w.kind = 'label' ORDER BY w.id",
    )?
    .query_map([project_id], |r| {
        Ok(ProjectAnswer {
            reviewer_id: r.get(0)?,
            reviewer: r.get(1)?,
            external_id: r.get(2)?,
            label: r.get(3)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}
