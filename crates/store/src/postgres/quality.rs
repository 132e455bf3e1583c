//! Reviewer quality on PostgreSQL (the same model as `sqlite/quality.rs`, whose
//! `fill_answer_stats` it shares): gold items, reviewers' records, holding and releasing a
//! reviewer, and the answers agreement is computed from.

use flywheel_core::{Decision, Outcome, Route};
use sqlx::PgConnection;

use super::TxResult;
use super::common::event;
use crate::*;
use flywheel_core::{Event, event as ev};

pub(super) async fn add_gold(
    c: &mut PgConnection,
    project_id: i64,
    items: &[NewGold],
    actor: &str,
    now: Millis,
) -> TxResult<usize> {
    let set = super::common::project_labels(c, project_id).await?;
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
        added += sqlx::query(
            "INSERT INTO items (project_id, external_id, payload, attributes, decision, outcome, policy_version, created_at,
                                gold_label, prediction)
             VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, 'review', 0, $6, $7, $8::jsonb)
             ON CONFLICT (project_id, external_id) DO NOTHING",
        )
        .bind(project_id)
        .bind(&g.external_id)
        .bind(g.payload.to_string())
        .bind(g.attributes.to_string())
        .bind(&decision)
        .bind(now)
        .bind(&g.label)
        .bind(g.prediction.as_ref().map(serde_json::to_string).transpose()?)
        .execute(&mut *c)
        .await?
        .rows_affected() as usize;
    }
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        actor,
        &Event::GoldAdded(ev::GoldAdded { added: added as u64 }),
    )
    .await?;
    Ok(added)
}

pub(super) async fn reviewer_stats(c: &mut PgConnection, project_id: i64) -> TxResult<Vec<ReviewerStats>> {
    let rows: Vec<(i64, String, i32, i32, bool, Option<String>)> = sqlx::query_as(
        "SELECT v.id, v.name, coalesce(q.gold_answers, 0), coalesce(q.gold_correct, 0), q.held_at IS NOT NULL, q.held_reason
         FROM reviewer_projects p JOIN reviewers v ON v.id = p.reviewer_id
         LEFT JOIN reviewer_quality q ON q.project_id = p.project_id AND q.reviewer_id = v.id
         WHERE p.project_id = $1 ORDER BY v.name",
    )
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, name, gold_answers, gold_correct, held, held_reason) in rows {
        let mut s = ReviewerStats {
            reviewer_id: id,
            name,
            answers: 0,
            gold_answers: gold_answers.into(),
            gold_correct: gold_correct.into(),
            agree_with_resolution: 0,
            compared_with_resolution: 0,
            median_time_on_task_ms: None,
            held,
            held_reason,
        };
        let answers: Vec<(Option<String>, Option<String>, i64)> = sqlx::query_as(
            "SELECT w.label, i.resolved_label, w.answered_at - w.claimed_at FROM reviews w
             JOIN tasks t ON t.id = w.task_id JOIN items i ON i.id = w.item_id
             WHERE w.reviewer_id = $1 AND t.project_id = $2 AND NOT t.gold AND w.kind = 'label'",
        )
        .bind(id)
        .bind(project_id)
        .fetch_all(&mut *c)
        .await?;
        crate::sqlite::fill_answer_stats(&mut s, answers);
        out.push(s);
    }
    Ok(out)
}

/// The id of reviewer `name` if granted the project; `NotFound` otherwise.
pub(super) async fn reviewer_in_project(c: &mut PgConnection, name: &str, project_id: i64) -> TxResult<i64> {
    sqlx::query_scalar(
        "SELECT v.id FROM reviewers v JOIN reviewer_projects p ON p.reviewer_id = v.id WHERE v.name = $1 AND p.project_id = $2",
    )
    .bind(name)
    .bind(project_id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::not_found(format!("reviewer '{name}' in this project")).into())
}

pub(super) async fn hold_reviewer(
    c: &mut PgConnection,
    channel: &str,
    project_id: i64,
    name: &str,
    reason: &str,
    actor: &str,
    now: Millis,
) -> TxResult<()> {
    let id = reviewer_in_project(c, name, project_id).await?;
    sqlx::query(
        "INSERT INTO reviewer_quality (project_id, reviewer_id, held_at, held_reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (project_id, reviewer_id) DO UPDATE SET held_at = excluded.held_at, held_reason = excluded.held_reason",
    )
    .bind(project_id)
    .bind(id)
    .bind(now)
    .bind(reason)
    .execute(&mut *c)
    .await?;
    let data = Event::ReviewerHeld(ev::ReviewerHeld {
        reviewer_id: id,
        reviewer: name.to_string(),
        reason: reason.to_string(),
    });
    event(c, Some(project_id), None, None, now, actor, &data).await?;
    // A hold ends the reviewer's leases in the project now, not at expiry.
    super::work::cancel_reviewer_leases(c, channel, id, |p| p == project_id, "the reviewer was held", now).await
}

pub(super) async fn release_reviewer(
    c: &mut PgConnection,
    project_id: i64,
    reviewer: &str,
    actor: &str,
    now: Millis,
) -> TxResult<()> {
    let id = reviewer_in_project(c, reviewer, project_id).await?;
    sqlx::query(
        "UPDATE reviewer_quality SET held_at = NULL, held_reason = NULL, gold_answers = 0, gold_correct = 0
         WHERE project_id = $1 AND reviewer_id = $2",
    )
    .bind(project_id)
    .bind(id)
    .execute(&mut *c)
    .await?;
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
    )
    .await?;
    Ok(())
}

pub(super) async fn project_answers(c: &mut PgConnection, project_id: i64) -> TxResult<Vec<ProjectAnswer>> {
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT w.reviewer_id, v.name, i.external_id, w.label FROM reviews w
         JOIN tasks t ON t.id = w.task_id JOIN reviewers v ON v.id = w.reviewer_id JOIN items i ON i.id = w.item_id
         WHERE t.project_id = $1 AND t.stage = 'review' AND NOT t.gold AND w.kind = 'label' ORDER BY w.id",
    )
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(reviewer_id, reviewer, external_id, label)| ProjectAnswer {
            reviewer_id,
            reviewer,
            external_id,
            label,
        })
        .collect())
}
