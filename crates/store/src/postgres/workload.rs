//! Where reviewer time goes, on PostgreSQL (the same read as `sqlite/workload.rs`): one row
//! per answer in a window. The figures are computed in `flywheel_core::workload`.

use sqlx::PgConnection;

use super::TxResult;
use crate::*;
use flywheel_core::workload::Answer;

type Row = (String, String, i16, Option<String>, Option<String>, bool, bool, i64);

/// Every answer on the project's tasks (gold left out) answered in `[since, until)`,
/// oldest first; see the SQLite twin for what each row holds.
pub(super) async fn workload_answers(
    c: &mut PgConnection,
    project_id: i64,
    since: Millis,
    until: Millis,
) -> TxResult<Vec<Answer>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT v.name, t.queue, t.tier, w.failure_category, i.resolved_label, w.kind = 'escalate',
                (SELECT count(DISTINCT o.label) FROM reviews o WHERE o.task_id = w.task_id AND o.kind = 'label') > 1,
                w.answered_at - w.claimed_at
         FROM reviews w JOIN tasks t ON t.id = w.task_id JOIN items i ON i.id = w.item_id
              JOIN reviewers v ON v.id = w.reviewer_id
         WHERE t.project_id = $1 AND NOT t.gold AND w.answered_at >= $2 AND w.answered_at < $3
         ORDER BY w.answered_at, w.id",
    )
    .bind(project_id)
    .bind(since)
    .bind(until)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(reviewer, queue, tier, failure_category, label, escalated, disagreed, ms)| Answer {
                reviewer,
                queue,
                tier: u8::try_from(tier).unwrap_or(u8::MAX),
                failure_category,
                label,
                escalated,
                disagreed,
                ms,
            },
        )
        .collect())
}
