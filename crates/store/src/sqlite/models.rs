//! The built-in model's data on SQLite: its training stream, its snapshots, and the
//! predictions that back-tests and drift monitors compare with human labels.

use flywheel_core::Prediction;
use rusqlite::{Connection, OptionalExtension, params};

use super::common::{event, json_col, opt_json};
use crate::*;
use flywheel_core::{Event, event as ev};

pub(super) fn training_examples(
    c: &Connection,
    project_id: i64,
    after: i64,
    limit: usize,
) -> Result<Vec<TrainingExample>> {
    c.prepare_cached(
        "SELECT l.cursor, i.external_id, i.payload, i.attributes, l.label FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = ?1 AND l.cursor > ?2 AND l.source IN ('human', 'adjudicated') ORDER BY l.cursor LIMIT ?3",
    )?
    .query_map(params![project_id, after, limit as i64], |r| {
        Ok(TrainingExample {
            cursor: r.get(0)?,
            external_id: r.get(1)?,
            payload: json_col(r, 2)?,
            attributes: json_col(r, 3)?,
            label: r.get(4)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

pub(super) fn save_model(c: &Connection, project_id: i64, m: ModelSnapshot, now: Millis) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO model_snapshots (project_id, version, model, examples_seen, trained_through, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (project_id, version) DO NOTHING",
    )?
    .execute(params![
        project_id,
        m.version,
        m.model,
        m.examples_seen as i64,
        m.trained_through,
        now
    ])?;
    event(
        c,
        Some(project_id),
        None,
        None,
        now,
        "system",
        &Event::ModelSnapshot(ev::ModelSnapshot {
            version: m.version,
            examples_seen: m.examples_seen,
            trained_through: m.trained_through,
        }),
    )
}

pub(super) fn latest_model(c: &Connection, project_id: i64) -> Result<Option<ModelSnapshot>> {
    c.prepare_cached(
        "SELECT version, model, examples_seen, trained_through, created_at FROM model_snapshots
         WHERE project_id = ?1 ORDER BY version DESC LIMIT 1",
    )?
    .query_row([project_id], |r| {
        Ok(ModelSnapshot {
            version: r.get(0)?,
            model: r.get(1)?,
            examples_seen: r.get::<_, i64>(2)? as u64,
            trained_through: r.get(3)?,
            created_at: r.get(4)?,
        })
    })
    .optional()
    .map_err(Into::into)
}

pub(super) fn verified_predictions(c: &Connection, project_id: i64, limit: usize) -> Result<Vec<VerifiedPrediction>> {
    let rows = c
        .prepare_cached(
            "SELECT i.external_id, i.prediction, l.label, i.outcome = 'auto', l.resolved_at,
                    instr(i.decision, 'active_learning: chosen') > 0, l.source = 'adjudicated',
                    (SELECT count(*) FROM reviews w WHERE w.item_id = i.id AND w.kind = 'label')
             FROM labels l JOIN items i ON i.id = l.item_id
             WHERE l.project_id = ?1 AND l.source IN ('human', 'adjudicated') AND i.prediction IS NOT NULL
             ORDER BY l.cursor DESC LIMIT ?2",
        )?
        .query_map(params![project_id, limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                opt_json::<Prediction>(r, 1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, bool>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(external_id, p, human_label, auto, resolved_at, chosen_for_learning, adjudicated, votes)| {
                p.map(|prediction| VerifiedPrediction {
                    external_id,
                    prediction,
                    human_label,
                    auto,
                    resolved_at,
                    chosen_for_learning,
                    votes: votes as u32,
                    adjudicated,
                })
            },
        )
        .collect())
}

pub(super) fn history(
    c: &Connection,
    project_id: i64,
    limit: usize,
) -> Result<Vec<flywheel_core::backtest::HistoryItem>> {
    c.prepare_cached(
        "SELECT i.payload, i.attributes, i.prediction, l.label FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = ?1 AND l.source IN ('human', 'adjudicated') ORDER BY l.cursor DESC LIMIT ?2",
    )?
    .query_map(params![project_id, limit as i64], |r| {
        Ok(flywheel_core::backtest::HistoryItem {
            payload: json_col(r, 0)?,
            attributes: json_col(r, 1)?,
            prediction: opt_json::<Prediction>(r, 2)?,
            human_label: r.get(3)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}

pub(super) fn recent_rules(c: &Connection, project_id: i64, limit: usize) -> Result<Vec<String>> {
    Ok(c.prepare_cached(
        "SELECT json_extract(decision, '$.rule') FROM items WHERE project_id = ?1 AND gold_label IS NULL
         ORDER BY id DESC LIMIT ?2",
    )?
    .query_map(params![project_id, limit as i64], |r| r.get::<_, String>(0))?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn recent_predictions(c: &Connection, project_id: i64, limit: usize) -> Result<Vec<Prediction>> {
    let rows = c
        .prepare_cached(
            "SELECT prediction FROM items WHERE project_id = ?1 AND prediction IS NOT NULL AND gold_label IS NULL
             ORDER BY id DESC LIMIT ?2",
        )?
        .query_map(params![project_id, limit as i64], |r| opt_json::<Prediction>(r, 0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().flatten().collect())
}
