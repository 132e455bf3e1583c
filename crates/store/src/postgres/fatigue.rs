//! Fatigue and pacing on PostgreSQL (the same queries as `sqlite/fatigue.rs`): a reviewer's
//! answers with their correctness signals, and the monitor's findings, one per session.

use sqlx::PgConnection;

use super::TxResult;
use super::common::event;
use crate::*;

pub(super) async fn reviewer_answers(
    c: &mut PgConnection,
    project_id: i64,
    reviewer_id: i64,
    limit: u32,
) -> TxResult<Vec<SessionAnswer>> {
    let rows: Vec<(i64, i64, bool, Option<bool>)> = sqlx::query_as(
        "SELECT w.answered_at, w.answered_at - w.claimed_at, w.too_fast,
                CASE WHEN w.kind <> 'label' THEN NULL
                     WHEN i.gold_label IS NOT NULL THEN w.label = i.gold_label
                     WHEN i.outcome = 'review' AND i.resolved_label IS NOT NULL
                          AND EXISTS (SELECT 1 FROM reviews o WHERE o.item_id = w.item_id
                                      AND o.reviewer_id <> w.reviewer_id AND o.kind <> 'skip')
                     THEN w.label = i.resolved_label END
         FROM reviews w JOIN items i ON i.id = w.item_id
         WHERE w.reviewer_id = $1 AND i.project_id = $2
         ORDER BY w.answered_at DESC LIMIT $3",
    )
    .bind(reviewer_id)
    .bind(project_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .rev()
        .map(|(answered_at, time_ms, too_fast, correct)| SessionAnswer {
            answered_at,
            time_ms,
            too_fast,
            correct,
        })
        .collect())
}

pub(super) async fn record_fatigue(c: &mut PgConnection, f: &NewFatigue, now: Millis) -> TxResult<bool> {
    let changed = sqlx::query(
        "INSERT INTO reviewer_fatigue (project_id, reviewer_id, session_started_at, fatigued_at, break_until)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (project_id, reviewer_id) DO UPDATE SET session_started_at = excluded.session_started_at,
             fatigued_at = excluded.fatigued_at, break_until = excluded.break_until
         WHERE reviewer_fatigue.session_started_at <> excluded.session_started_at",
    )
    .bind(f.project_id)
    .bind(f.reviewer_id)
    .bind(f.session_started_at)
    .bind(now)
    .bind(f.break_until)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    event(c, Some(f.project_id), None, None, now, "system", &f.event).await?;
    Ok(true)
}

pub(super) async fn fatigue_states(
    c: &mut PgConnection,
    project_id: i64,
    reviewer_id: Option<i64>,
) -> TxResult<Vec<FatigueState>> {
    let rows: Vec<(i64, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT reviewer_id, session_started_at, fatigued_at, break_until FROM reviewer_fatigue
         WHERE project_id = $1 AND ($2::BIGINT IS NULL OR reviewer_id = $2) ORDER BY reviewer_id",
    )
    .bind(project_id)
    .bind(reviewer_id)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(reviewer_id, session_started_at, fatigued_at, break_until)| FatigueState {
                reviewer_id,
                session_started_at,
                fatigued_at,
                break_until,
            },
        )
        .collect())
}
