//! Fatigue and pacing on SQLite: a reviewer's answers with their correctness signals (read
//! newest first through `reviews_reviewer_time`), and the monitor's findings, one per work
//! session, written with their `reviewer.fatigued` event. Core's `fatigue` decides.

use rusqlite::{Connection, params};

use super::common::event;
use crate::*;

/// The signal is a gold answer's rightness, or agreement with the item's human resolution
/// when another reviewer answered the item too (alone, a reviewer agrees with themselves).
pub(super) fn reviewer_answers(
    c: &Connection,
    project_id: i64,
    reviewer_id: i64,
    limit: u32,
) -> Result<Vec<SessionAnswer>> {
    let mut rows = c
        .prepare_cached(
            "SELECT w.answered_at, w.answered_at - w.claimed_at, w.too_fast,
                    CASE WHEN w.kind <> 'label' THEN NULL
                         WHEN i.gold_label IS NOT NULL THEN w.label = i.gold_label
                         WHEN i.outcome = 'review' AND i.resolved_label IS NOT NULL
                              AND EXISTS (SELECT 1 FROM reviews o WHERE o.item_id = w.item_id
                                          AND o.reviewer_id <> w.reviewer_id AND o.kind <> 'skip')
                         THEN w.label = i.resolved_label END
             FROM reviews w JOIN items i ON i.id = w.item_id
             WHERE w.reviewer_id = ?1 AND i.project_id = ?2
             ORDER BY w.answered_at DESC LIMIT ?3",
        )?
        .query_map(params![reviewer_id, project_id, limit], |row| {
            Ok(SessionAnswer {
                answered_at: row.get(0)?,
                time_ms: row.get(1)?,
                too_fast: row.get(2)?,
                correct: row.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.reverse();
    Ok(rows)
}

pub(super) fn record_fatigue(c: &Connection, f: &NewFatigue, now: Millis) -> Result<bool> {
    let changed = c
        .prepare_cached(
            "INSERT INTO reviewer_fatigue (project_id, reviewer_id, session_started_at, fatigued_at, break_until)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (project_id, reviewer_id) DO UPDATE SET session_started_at = excluded.session_started_at,
                 fatigued_at = excluded.fatigued_at, break_until = excluded.break_until
             WHERE reviewer_fatigue.session_started_at <> excluded.session_started_at",
        )?
        .execute(params![
            f.project_id,
            f.reviewer_id,
            f.session_started_at,
            now,
            f.break_until
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    event(c, Some(f.project_id), None, None, now, "system", &f.event)?;
    Ok(true)
}

pub(super) fn fatigue_states(c: &Connection, project_id: i64, reviewer_id: Option<i64>) -> Result<Vec<FatigueState>> {
    Ok(c.prepare_cached(
        "SELECT reviewer_id, session_started_at, fatigued_at, break_until FROM reviewer_fatigue
             WHERE project_id = ?1 AND (?2 IS NULL OR reviewer_id = ?2) ORDER BY reviewer_id",
    )?
    .query_map(params![project_id, reviewer_id], |row| {
        Ok(FatigueState {
            reviewer_id: row.get(0)?,
            session_started_at: row.get(1)?,
            fatigued_at: row.get(2)?,
            break_until: row.get(3)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}
