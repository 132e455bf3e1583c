//! The built-in model's data on PostgreSQL: its training stream, its snapshots, and the
//! predictions that back-tests and drift monitors compare with human labels.

use flywheel_core::Prediction;
use sqlx::PgConnection;

use super::TxResult;
use super::common::{event, parse};
use crate::*;
use flywheel_core::{Event, event as ev};

pub(super) async fn training_examples(
    c: &mut PgConnection,
    project_id: i64,
    after: i64,
    limit: usize,
) -> TxResult<Vec<TrainingExample>> {
    let rows: Vec<(i64, String, String, String, String)> = sqlx::query_as(
        "SELECT l.cursor, i.external_id, i.payload::text, i.attributes::text, l.label FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = $1 AND l.cursor > $2 AND l.source IN ('human', 'adjudicated') ORDER BY l.cursor LIMIT $3",
    )
    .bind(project_id)
    .bind(after)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(|(cursor, external_id, payload, attributes, label)| {
            Ok(TrainingExample {
                cursor,
                external_id,
                payload: parse(&payload)?,
                attributes: parse(&attributes)?,
                label,
            })
        })
        .collect()
}

pub(super) async fn save_model(c: &mut PgConnection, project_id: i64, m: &ModelSnapshot, now: Millis) -> TxResult<()> {
    sqlx::query(
        "INSERT INTO model_snapshots (project_id, version, model, examples_seen, trained_through, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id, version) DO NOTHING",
    )
    .bind(project_id)
    .bind(m.version as i32)
    .bind(&m.model)
    .bind(m.examples_seen as i64)
    .bind(m.trained_through)
    .bind(now)
    .execute(&mut *c)
    .await?;
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
    .await
}

pub(super) async fn latest_model(c: &mut PgConnection, project_id: i64) -> TxResult<Option<ModelSnapshot>> {
    let row: Option<(i32, Vec<u8>, i64, i64, i64)> = sqlx::query_as(
        "SELECT version, model, examples_seen, trained_through, created_at FROM model_snapshots
         WHERE project_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(project_id)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(
        |(version, model, examples_seen, trained_through, created_at)| ModelSnapshot {
            version: version as u32,
            model,
            examples_seen: examples_seen as u64,
            trained_through,
            created_at,
        },
    ))
}

/// external id, prediction, human label, auto, resolved at, chosen for learning,
/// adjudicated, label answers
type VerifiedRow = (String, String, String, bool, i64, bool, bool, i64);

pub(super) async fn verified_predictions(
    c: &mut PgConnection,
    project_id: i64,
    limit: usize,
) -> TxResult<Vec<VerifiedPrediction>> {
    let rows: Vec<VerifiedRow> = sqlx::query_as(
        "SELECT i.external_id, i.prediction::text, l.label, i.outcome = 'auto', l.resolved_at,
                position('active_learning: chosen' in i.decision::text) > 0, l.source = 'adjudicated',
                (SELECT count(*) FROM reviews w WHERE w.item_id = i.id AND w.kind = 'label')
         FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = $1 AND l.source IN ('human', 'adjudicated') AND i.prediction IS NOT NULL
         ORDER BY l.cursor DESC NULLS FIRST, l.id DESC LIMIT $2",
    )
    .bind(project_id)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(
            |(external_id, p, human_label, auto, resolved_at, chosen_for_learning, adjudicated, votes)| {
                Ok(VerifiedPrediction {
                    external_id,
                    prediction: parse(&p)?,
                    human_label,
                    auto,
                    resolved_at,
                    chosen_for_learning,
                    votes: votes as u32,
                    adjudicated,
                })
            },
        )
        .collect()
}

pub(super) async fn history(
    c: &mut PgConnection,
    project_id: i64,
    limit: usize,
) -> TxResult<Vec<flywheel_core::backtest::HistoryItem>> {
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT i.payload::text, i.attributes::text, i.prediction::text, l.label FROM labels l JOIN items i ON i.id = l.item_id
         WHERE l.project_id = $1 AND l.source IN ('human', 'adjudicated') ORDER BY l.id DESC LIMIT $2",
    )
    .bind(project_id)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(|(payload, attributes, prediction, human_label)| {
            Ok(flywheel_core::backtest::HistoryItem {
                payload: parse(&payload)?,
                attributes: parse(&attributes)?,
                prediction: prediction.as_deref().map(parse::<Prediction>).transpose()?,
                human_label,
            })
        })
        .collect()
}

pub(super) async fn recent_rules(c: &mut PgConnection, project_id: i64, limit: usize) -> TxResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT decision->>'rule' FROM items WHERE project_id = $1 AND gold_label IS NULL
         ORDER BY id DESC LIMIT $2",
    )
    .bind(project_id)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?)
}

pub(super) async fn recent_predictions(
    c: &mut PgConnection,
    project_id: i64,
    limit: usize,
) -> TxResult<Vec<Prediction>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT prediction::text FROM items WHERE project_id = $1 AND prediction IS NOT NULL AND gold_label IS NULL
         ORDER BY id DESC LIMIT $2",
    )
    .bind(project_id)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(|p| parse::<Prediction>(p)).collect()
}
