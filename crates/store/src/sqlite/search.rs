//! Item search on SQLite: a project's items newest first (the rowid range below the
//! cursor), each condition given checked per row, until a page is full or the read's
//! bound is reached. Read only.

use rusqlite::{Connection, params};

use super::common::json_col;
use crate::*;

/// `+project_id` keeps SQLite off the `(project_id, external_id)` index, so that the
/// rowid range walks the items newest first and stops after `limit` matches.
const SEARCH: &str = "SELECT i.id, i.external_id, i.payload, i.outcome, json_extract(i.decision, '$.rule'),
        i.resolved_label, i.created_at,
        (SELECT count(*) FROM tasks t WHERE t.item_id = i.id AND t.state = 'open')
     FROM items i
     WHERE +i.project_id = ?1 AND i.id < ?2 AND i.gold_label IS NULL
       AND (?3 IS NULL OR instr(lower(i.external_id), ?3) > 0 OR instr(lower(i.payload), ?3) > 0)
       AND (?4 IS NULL OR i.resolved_label = ?4)
       AND (?5 IS NULL OR i.id IN (SELECT w.item_id FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id
                                    WHERE v.name = ?5))
       AND (?6 IS NULL
            OR (?6 = 'resolved' AND i.resolution IS NOT NULL)
            OR (?6 = 'unresolved' AND i.resolution IS NULL)
            OR (?6 = 'open' AND EXISTS (SELECT 1 FROM tasks t WHERE t.item_id = i.id AND t.state = 'open')))
       AND (?7 IS NULL OR i.created_at >= ?7) AND (?8 IS NULL OR i.created_at < ?8)
       AND i.id >= ?10
     ORDER BY i.id DESC LIMIT ?9";

/// The lowest and highest item ids (each an end of the rowid tree; a single `min` or
/// `max` is how SQLite reads it without a scan).
const ENDS: &str = "SELECT (SELECT min(id) FROM items), (SELECT max(id) FROM items)";

pub(super) fn search_items(
    c: &Connection,
    project_id: i64,
    s: &ItemSearch,
    before: Option<i64>,
    limit: usize,
    read: usize,
) -> Result<SearchHits> {
    let (lowest, highest): (Option<i64>, Option<i64>) =
        c.prepare_cached(ENDS)?.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(lowest), Some(highest)) = (lowest, highest) else {
        return Ok(SearchHits::default());
    };
    let window = ReadWindow::below(before, read, lowest, highest);
    let before = window.before;
    let hits = c
        .prepare_cached(SEARCH)?
        .query_map(
            params![
                project_id,
                before,
                s.text,
                s.label,
                s.reviewer,
                s.state.map(ItemState::as_str),
                s.since,
                s.until,
                limit as i64,
                window.from
            ],
            |r| {
                Ok(ItemHit {
                    item_id: r.get(0)?,
                    external_id: r.get(1)?,
                    payload: json_col(r, 2)?,
                    outcome: r.get(3)?,
                    rule: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    resolved_label: r.get(5)?,
                    created_at: r.get(6)?,
                    open_tasks: r.get(7)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(SearchHits {
        hits,
        read_to: window.read_to,
    })
}
