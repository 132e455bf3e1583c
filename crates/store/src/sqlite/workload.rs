//! Where reviewer time goes, on SQLite: one row per answer in a window (read only). The
//! figures are computed in `flywheel_core::workload`.

use rusqlite::{Connection, params};

use crate::*;
use flywheel_core::workload::Answer;

/// Every answer on the project's regular, adjudication and audit tasks (gold left out)
/// answered in `[since, until)`, oldest first: its reviewer, the task's queue and tier, the
/// failure category, the item's final label, whether it escalated, whether its task's label
/// answers disagreed (all of them, in the window or not), and its time on task.
pub(super) fn workload_answers(c: &Connection, project_id: i64, since: Millis, until: Millis) -> Result<Vec<Answer>> {
    c.prepare_cached(
        "SELECT v.name, t.queue, t.tier, w.failure_category, i.resolved_label, w.kind = 'escalate',
                (SELECT count(DISTINCT o.label) FROM reviews o WHERE o.task_id = w.task_id AND o.kind = 'label') > 1,
                w.answered_at - w.claimed_at
         FROM reviews w JOIN tasks t ON t.id = w.task_id JOIN items i ON i.id = w.item_id
              JOIN reviewers v ON v.id = w.reviewer_id
         WHERE t.project_id = ?1 AND t.gold = 0 AND w.answered_at >= ?2 AND w.answered_at < ?3
         ORDER BY w.answered_at, w.id",
    )?
    .query_map(params![project_id, since, until], |r| {
        Ok(Answer {
            reviewer: r.get(0)?,
            queue: r.get(1)?,
            tier: r.get(2)?,
            failure_category: r.get(3)?,
            label: r.get(4)?,
            escalated: r.get(5)?,
            disagreed: r.get(6)?,
            ms: r.get(7)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(Into::into)
}
