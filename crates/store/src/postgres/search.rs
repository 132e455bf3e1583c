//! Item search on PostgreSQL (the same model as `sqlite/search.rs`): a project's items
//! newest first below the cursor, each condition given checked per row, until a page is
//! full or the read's bound is reached. Read only.

use sqlx::PgConnection;

use super::TxResult;
use super::common::parse;
use crate::*;

type HitRow = (i64, String, String, String, Option<String>, Option<String>, i64, i64);

pub(super) async fn search_items(
    c: &mut PgConnection,
    project_id: i64,
    s: &ItemSearch,
    before: Option<i64>,
    limit: usize,
    read: usize,
) -> TxResult<SearchHits> {
    // The lowest and highest item ids: the ends of the primary key.
    let ends: (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT (SELECT min(id) FROM items), (SELECT max(id) FROM items)")
            .fetch_one(&mut *c)
            .await?;
    let (Some(lowest), Some(highest)) = ends else {
        return Ok(SearchHits::default());
    };
    let window = ReadWindow::below(before, read, lowest, highest);
    let rows: Vec<HitRow> = sqlx::query_as(
        "SELECT i.id, i.external_id, i.payload::text, i.outcome, i.decision->>'rule', i.resolved_label, i.created_at,
                (SELECT count(*) FROM tasks t WHERE t.item_id = i.id AND t.state = 'open')
         FROM items i
         WHERE i.project_id = $1 AND i.id < $2 AND i.gold_label IS NULL
           AND ($3::text IS NULL OR strpos(lower(i.external_id), $3) > 0 OR strpos(lower(i.payload::text), $3) > 0)
           AND ($4::text IS NULL OR i.resolved_label = $4)
           AND ($5::text IS NULL OR i.id IN (SELECT w.item_id FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id
                                              WHERE v.name = $5))
           AND ($6::text IS NULL
                OR ($6 = 'resolved' AND i.resolution IS NOT NULL)
                OR ($6 = 'unresolved' AND i.resolution IS NULL)
                OR ($6 = 'open' AND EXISTS (SELECT 1 FROM tasks t WHERE t.item_id = i.id AND t.state = 'open')))
           AND ($7::bigint IS NULL OR i.created_at >= $7) AND ($8::bigint IS NULL OR i.created_at < $8)
           AND i.id >= $10
         ORDER BY i.id DESC LIMIT $9",
    )
    .bind(project_id)
    .bind(window.before)
    .bind(s.text.as_deref())
    .bind(s.label.as_deref())
    .bind(s.reviewer.as_deref())
    .bind(s.state.map(ItemState::as_str))
    .bind(s.since)
    .bind(s.until)
    .bind(limit as i64)
    .bind(window.from)
    .fetch_all(&mut *c)
    .await?;
    let hits = rows
        .into_iter()
        .map(
            |(item_id, external_id, payload, outcome, rule, resolved_label, created_at, open_tasks)| {
                Ok(ItemHit {
                    item_id,
                    external_id,
                    payload: parse(&payload)?,
                    outcome,
                    rule: rule.unwrap_or_default(),
                    resolved_label,
                    open_tasks,
                    created_at,
                })
            },
        )
        .collect::<TxResult<Vec<_>>>()?;
    Ok(SearchHits {
        hits,
        read_to: window.read_to,
    })
}
