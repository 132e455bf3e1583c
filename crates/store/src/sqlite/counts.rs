//! `/stats` counters on SQLite (`stat_counts`, migration 0010): what each write changes —
//! items by outcome, resolutions, audits, open and breached tasks per queue — is added here
//! in memory by the function that writes it, and the writer writes the sums of a whole
//! group commit just before its COMMIT ([`flush`]), or drops them with a rollback
//! ([`discard`]). So the counters commit exactly with the rows they count, for one small
//! upsert per project and queue a group touched rather than a statement (or a trigger) per
//! row: a claim-and-answer cycle's answer closes a task and resolves an item, and two
//! trigger programs cost it ~10 µs of the writer's ~50 µs.
//!
//! The pending sums live in the writer thread (a `thread_local`): every write runs there,
//! inside a group commit. Queue `""` (no queue name is empty) holds a project's own figures.

use std::cell::RefCell;
use std::collections::BTreeMap;

use rusqlite::{Connection, params};

/// What one project and queue's counters move by.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Delta {
    pub(super) items: i64,
    pub(super) auto: i64,
    pub(super) review: i64,
    pub(super) resolved: i64,
    pub(super) audits_confirmed: i64,
    pub(super) audits_corrected: i64,
    pub(super) open: i64,
    pub(super) breached: i64,
}

thread_local! {
    static PENDING: RefCell<BTreeMap<(i64, String), Delta>> = const { RefCell::new(BTreeMap::new()) };
}

/// Adds to the project's own figures (`queue` `None`) or a queue's.
pub(super) fn add(project_id: i64, queue: Option<&str>, f: impl FnOnce(&mut Delta)) {
    PENDING.with_borrow_mut(|p| {
        f(p.entry((project_id, queue.unwrap_or_default().to_string()))
            .or_default())
    });
}

/// An item stored (gold items are not counted).
pub(super) fn item(project_id: i64, auto: bool, resolved: bool) {
    add(project_id, None, |d| {
        d.items += 1;
        d.auto += i64::from(auto);
        d.review += i64::from(!auto);
        d.resolved += i64::from(resolved);
    });
}

/// An item resolved for the first time.
pub(super) fn resolved(project_id: i64) {
    add(project_id, None, |d| d.resolved += 1);
}

/// A regular (not gold) task opened (`1`) or closed (`-1`) in `queue`.
pub(super) fn open(project_id: i64, queue: &str, by: i64) {
    add(project_id, Some(queue), |d| d.open += by);
}

/// An event written: audits answered are counted.
pub(super) fn event(project_id: Option<i64>, kind: &str) {
    use flywheel_core::Event;
    if let Some(p) = project_id {
        if kind == Event::AUDIT_CONFIRMED {
            add(p, None, |d| d.audits_confirmed += 1);
        } else if kind == Event::ITEM_CORRECTED {
            add(p, None, |d| d.audits_corrected += 1);
        }
    }
}

/// Writes the group's sums; the writer calls it inside the transaction, before COMMIT.
pub(super) fn flush(c: &Connection) -> rusqlite::Result<()> {
    let pending = PENDING.take();
    let mut up = c.prepare_cached(
        "INSERT INTO stat_counts (project_id, queue, items, auto, review, resolved, audits_confirmed, audits_corrected,
                                  open, breached)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (project_id, queue) DO UPDATE SET items = items + excluded.items, auto = auto + excluded.auto,
             review = review + excluded.review, resolved = resolved + excluded.resolved,
             audits_confirmed = audits_confirmed + excluded.audits_confirmed,
             audits_corrected = audits_corrected + excluded.audits_corrected, open = open + excluded.open,
             breached = breached + excluded.breached",
    )?;
    for ((project_id, queue), d) in pending {
        up.execute(params![
            project_id,
            queue,
            d.items,
            d.auto,
            d.review,
            d.resolved,
            d.audits_confirmed,
            d.audits_corrected,
            d.open,
            d.breached
        ])?;
    }
    Ok(())
}

/// Drops the group's sums with its rollback.
pub(super) fn discard() {
    PENDING.take();
}
