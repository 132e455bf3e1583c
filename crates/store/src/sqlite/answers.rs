//! Answers on SQLite: this module loads what `flywheel_core::review` needs to decide an
//! answer (the task, its earlier answers, gold records, the item) and writes the plan it
//! returns, inside the writer's transaction; every step appends its event. It decides
//! nothing itself. Claims and leases are `work.rs`'s.

use std::collections::HashMap;

use flywheel_core::fields::Fields;
use flywheel_core::review::{self, GoldRecord, ItemState, Plan, Prior, TaskChange, TaskState};
use flywheel_core::task::Source;
use flywheel_core::{Answer, Event, Route, Stage, event as ev};
use rusqlite::{Connection, OptionalExtension, params};

use super::common::event;
use super::work::active_lease;
use crate::*;

/// Stores an answer and moves its task on as core's plan says. Returns the result and the
/// task's project.
pub(super) fn submit_review(c: &Connection, r: NewReview, now: Millis) -> Result<(ReviewResult, i64)> {
    if let Some(done) = stored_review(c, &r)? {
        return Ok(done);
    }
    let lease = active_lease(c, r.task_id, r.lease_id, r.reviewer_id, now)?;
    let (project_id, item_id) = (lease.project_id, lease.item_id);
    let judging = r.judging.get(&project_id).cloned().unwrap_or_default();
    let task = task_state(c, r.task_id, project_id)?;
    // A label answer is checked against the project's labels and mode; a multi-label one
    // is judged and stored as its canonical encoding.
    let mut r = r;
    if matches!(r.answer, Answer::Label(_) | Answer::Labels(_)) {
        let labels: String = c
            .prepare_cached("SELECT labels FROM projects WHERE id = ?1")?
            .query_row([project_id], |row| row.get(0))?;
        r.answer = review::check_answer(&serde_json::from_str::<Vec<String>>(&labels)?, &judging, r.answer)?;
    }
    let fields = review::check_fields(&judging, &r.answer, r.fields.as_ref())?;
    let a = r.answering(lease.granted_at, now, &judging, &fields);
    let at = On {
        project_id,
        item_id,
        task_id: r.task_id,
        lease_id: r.lease_id,
        actor: format!("reviewer:{}", r.reviewer_name),
        now,
    };
    let plan = if task.gold {
        gold_answer(c, &task, &a, &at, &judging)?
    } else {
        let earlier = earlier_answers(c, r.task_id)?;
        let records = if judging.weighs_reviewers() {
            gold_records(
                c,
                project_id,
                earlier.iter().map(|p| p.reviewer_id).chain([r.reviewer_id]),
            )?
        } else {
            HashMap::new()
        };
        let next = review::judge(&task, &earlier, &a, &judging, &records);
        let item = if review::resolves(&next) {
            Some(item_state(c, item_id)?)
        } else {
            None
        };
        let plan = review::plan(&task, &earlier, &a, next, item.as_ref().map(|(i, _)| i), &judging);
        let first = item.as_ref().is_some_and(|(i, _)| i.resolved_label.is_none());
        write_plan(c, &plan, &at, item.map_or(0, |(_, v)| v), first, Some(&task.queue))?;
        plan
    };
    record_review(c, &r, &at, lease.granted_at, &plan, &plan.submitted(&a), &fields)?;
    Ok((plan.result, project_id))
}

/// The reason a lease ends with when its reviewer's gold answers put them on hold.
pub(super) const GOLD_HOLD: &str = "the reviewer was held for low gold accuracy";

/// A gold task's answer: core's gold plan written, then the answer counted in the
/// reviewer's gold record, scored, and (below the bar) the reviewer held.
fn gold_answer(
    c: &Connection,
    task: &TaskState,
    a: &review::Answering<'_>,
    at: &On,
    judging: &Judging,
) -> Result<Plan> {
    let gold: String = c
        .prepare_cached("SELECT gold_label FROM items WHERE id = ?1")?
        .query_row([at.item_id], |row| row.get(0))?;
    let (plan, correct) = review::gold_plan(task, a, &gold, judging);
    // A gold item is not counted in /stats, resolved or not.
    write_plan(c, &plan, at, 0, false, None)?;
    if let Some(correct) = correct {
        let record = count_gold(c, at.project_id, a.reviewer_id, correct)?;
        let (scored, hold) = review::gold_scored(a, correct, record, judging.quality.as_ref());
        event(
            c,
            Some(at.project_id),
            Some(at.item_id),
            Some(at.task_id),
            at.now,
            &at.actor,
            &scored,
        )?;
        if let Some((reason, held)) = hold {
            c.prepare_cached(
                "UPDATE reviewer_quality SET held_at = ?3, held_reason = ?4 WHERE project_id = ?1 AND reviewer_id = ?2",
            )?
            .execute(params![at.project_id, a.reviewer_id, at.now, reason])?;
            event(c, Some(at.project_id), None, None, at.now, "system", &held)?;
            // Held now means no more work here now: the reviewer's other leases in the
            // project end in this write, as an admin's hold ends them.
            super::work::cancel_reviewer_leases(c, a.reviewer_id, |p| p == at.project_id, GOLD_HOLD, at.now)?;
        }
    }
    Ok(plan)
}

/// Where an answer's writes go.
struct On {
    project_id: i64,
    item_id: i64,
    task_id: i64,
    lease_id: i64,
    actor: String,
    now: Millis,
}

/// Writes what core planned for an answer, but the answer itself (`record_review`).
/// `policy_version` is the item's, for a label-feed entry. For /stats: `first_resolution`
/// says the item was unresolved (and not gold), `queue` is a regular task's (a gold task's
/// closing is not counted).
fn write_plan(
    c: &Connection,
    plan: &Plan,
    at: &On,
    policy_version: u32,
    first_resolution: bool,
    queue: Option<&str>,
) -> Result<()> {
    let (task_id, now) = (at.task_id, at.now);
    c.prepare_cached("UPDATE leases SET state = ?2, ended_at = ?3 WHERE id = ?1")?
        .execute(params![at.lease_id, plan.lease.as_str(), now])?;
    let counters = match plan.task {
        TaskChange::Counted => "UPDATE tasks SET answered = answered + 1 WHERE id = ?1",
        TaskChange::SlotBack => "UPDATE tasks SET available = available + 1 WHERE id = ?1",
        TaskChange::MoreReviewers => {
            "UPDATE tasks SET answered = answered + 1, overlap = overlap + 1, available = available + 1 WHERE id = ?1"
        }
        TaskChange::Close {
            counted,
            others_may_hold,
        } => {
            if let Some(q) = queue {
                super::counts::open(at.project_id, q, -1);
            }
            return close_task(c, task_id, now, others_may_hold, counted)
                .and_then(|()| rest(c, plan, at, policy_version, first_resolution));
        }
    };
    c.prepare_cached(counters)?.execute([task_id])?;
    rest(c, plan, at, policy_version, first_resolution)
}

/// The plan's writes after the task's own.
fn rest(c: &Connection, plan: &Plan, at: &On, policy_version: u32, first_resolution: bool) -> Result<()> {
    let (task_id, now) = (at.task_id, at.now);
    if let Some(e) = &plan.escalation {
        let new_task = insert_task(
            c,
            at.project_id,
            at.item_id,
            Stage::Adjudicate,
            &e.route,
            Some(&e.reason),
            now,
        )?;
        event(
            c,
            Some(at.project_id),
            Some(at.item_id),
            Some(new_task),
            now,
            &at.actor,
            &e.event,
        )?;
    }
    if let Some(res) = &plan.resolve_item {
        c.prepare_cached("UPDATE items SET resolved_label = ?2, resolution = ?3, resolved_at = ?4 WHERE id = ?1")?
            .execute(params![at.item_id, res.label, serde_json::to_string(res)?, now])?;
        if first_resolution {
            super::counts::resolved(at.project_id);
        }
    }
    if let Some((label, source)) = &plan.feed {
        // As `insert_label`, with the resolved answer fields.
        let fields = plan.feed_fields.as_ref().map(serde_json::to_string).transpose()?;
        c.prepare_cached(
            "INSERT INTO labels (project_id, item_id, label, source, policy_version, resolved_at, fields)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            at.project_id,
            at.item_id,
            label,
            source.as_str(),
            policy_version,
            now,
            fields
        ])?;
    }
    for e in &plan.events {
        event(
            c,
            Some(at.project_id),
            Some(at.item_id),
            Some(task_id),
            now,
            &at.actor,
            e,
        )?;
    }
    Ok(())
}

/// The stored result of a `review_id` this reviewer already sent for this task, with
/// the task's project.
fn stored_review(c: &Connection, r: &NewReview) -> Result<Option<(ReviewResult, i64)>> {
    let stored: Option<(String, i64)> = c
        .prepare_cached(
            "SELECT w.result, t.project_id FROM reviews w JOIN tasks t ON t.id = w.task_id
             WHERE w.task_id = ?1 AND w.reviewer_id = ?2 AND w.review_id = ?3",
        )?
        .query_row(params![r.task_id, r.reviewer_id, r.review_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    stored
        .map(|(s, project_id)| Ok((serde_json::from_str(&s)?, project_id)))
        .transpose()
}

fn task_state(c: &Connection, task_id: i64, project_id: i64) -> Result<TaskState> {
    Ok(
        c.prepare_cached("SELECT stage, queue, tier, priority, overlap, gold FROM tasks WHERE id = ?1")?
            .query_row([task_id], |row| {
                let stage: String = row.get(0)?;
                Ok(TaskState {
                    id: task_id,
                    project_id,
                    stage: Stage::parse(&stage).unwrap_or(Stage::Review),
                    queue: row.get(1)?,
                    tier: row.get(2)?,
                    priority: row.get(3)?,
                    overlap: row.get(4)?,
                    gold: row.get(5)?,
                })
            })?,
    )
}

/// The task's answers so far but skips, in the order given, with their reviewers' names.
fn earlier_answers(c: &Connection, task_id: i64) -> Result<Vec<Prior>> {
    // Sorted here, not by `ORDER BY w.id`: the task's index is (task_id, reviewer_id,
    // review_id), so SQLite would open a sorter for every answer.
    let mut earlier = c
        .prepare_cached(
            "SELECT w.id, w.reviewer_id, v.name, w.kind, w.label, w.reason, w.too_fast, w.fields FROM reviews w
             JOIN reviewers v ON v.id = w.reviewer_id WHERE w.task_id = ?1 AND w.kind != 'skip'",
        )?
        .query_map([task_id], |row| {
            let kind: String = row.get(3)?;
            let answer = match kind.as_str() {
                "label" => Answer::Label(row.get::<_, Option<String>>(4)?.unwrap_or_default()),
                _ => Answer::Escalate {
                    reason: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                },
            };
            let prior = Prior {
                reviewer_id: row.get(1)?,
                reviewer: row.get(2)?,
                answer,
                too_fast: row.get(6)?,
                fields: row
                    .get::<_, Option<String>>(7)?
                    .and_then(|f| serde_json::from_str(&f).ok())
                    .unwrap_or_default(),
            };
            Ok((row.get::<_, i64>(0)?, prior))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    earlier.sort_unstable_by_key(|(id, _)| *id);
    Ok(earlier.into_iter().map(|(_, p)| p).collect())
}

/// (gold answers, gold correct) of each voter who has a record in the project.
fn gold_records(
    c: &Connection,
    project_id: i64,
    voters: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, (u64, u64)>> {
    let mut records = HashMap::new();
    for v in voters {
        let row: Option<(u64, u64)> = c
            .prepare_cached(
                "SELECT gold_answers, gold_correct FROM reviewer_quality WHERE project_id = ?1 AND reviewer_id = ?2",
            )?
            .query_row(params![project_id, v], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        records.extend(row.map(|r| (v, r)));
    }
    Ok(records)
}

/// The item as an answer that resolves it needs it, and its policy version.
fn item_state(c: &Connection, item_id: i64) -> Result<(ItemState, u32)> {
    Ok(
        c.prepare_cached("SELECT resolved_label, policy_version, outcome = 'auto' FROM items WHERE id = ?1")?
            .query_row([item_id], |row| {
                Ok((
                    ItemState {
                        resolved_label: row.get(0)?,
                        was_auto: row.get(2)?,
                    },
                    row.get(1)?,
                ))
            })?,
    )
}

/// Counts a gold answer in the reviewer's record and returns the record with it.
fn count_gold(c: &Connection, project_id: i64, reviewer_id: i64, correct: bool) -> Result<GoldRecord> {
    c.prepare_cached(
        "INSERT INTO reviewer_quality (project_id, reviewer_id, gold_answers, gold_correct) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (project_id, reviewer_id) DO UPDATE SET gold_answers = gold_answers + 1,
             gold_correct = gold_correct + excluded.gold_correct",
    )?
    .execute(params![project_id, reviewer_id, i64::from(correct)])?;
    Ok(c.prepare_cached(
        "SELECT gold_answers, gold_correct, held_at FROM reviewer_quality WHERE project_id = ?1 AND reviewer_id = ?2",
    )?
    .query_row(params![project_id, reviewer_id], |row| {
        Ok(GoldRecord {
            answers: row.get(0)?,
            correct: row.get(1)?,
            held: row.get::<_, Option<i64>>(2)?.is_some(),
        })
    })?)
}

/// Stores an answer, counts it in the reviewer's day, and writes its `review.submitted`
/// event; the plan's result is what the reviewer was told, kept so that a retry of the
/// same `review_id` gets it again.
fn record_review(
    c: &Connection,
    r: &NewReview,
    at: &On,
    granted_at: Millis,
    plan: &Plan,
    submitted: &Event,
    fields: &Fields,
) -> Result<()> {
    let (label, reason) = match &r.answer {
        Answer::Label(l) => (Some(l.as_str()), None),
        Answer::Escalate { reason } | Answer::Skip { reason } => (None, Some(reason.as_str())),
        Answer::Labels(_) => {
            return Err(StoreError::Backend(
                "a multi-label answer reached the store unchecked".into(),
            ));
        }
    };
    c.prepare_cached(
        "INSERT INTO reviews (review_id, reviewer_id, task_id, item_id, lease_id, kind, label, reason, failure_category, note,
                              claimed_at, answered_at, result, too_fast, fields)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        r.review_id, r.reviewer_id, r.task_id, at.item_id, r.lease_id, r.answer.kind(), label, reason,
        r.failure_category, r.note, granted_at, at.now, serde_json::to_string(&plan.result)?,
        plan.result.stored.is_some_and(|s| s.too_fast),
        (!fields.is_empty()).then(|| serde_json::to_string(fields)).transpose()?
    ])?;
    c.prepare_cached(
        "INSERT INTO reviewer_days (day, reviewer_id, answers) VALUES (?1, ?2, 1)
         ON CONFLICT (day, reviewer_id) DO UPDATE SET answers = answers + 1",
    )?
    .execute(params![at.now.div_euclid(DAY_MS), r.reviewer_id])?;
    event(
        c,
        Some(at.project_id),
        Some(at.item_id),
        Some(r.task_id),
        at.now,
        &at.actor,
        submitted,
    )
}

/// Closes a task: no more slots, and any other reviewer's active lease on it ends (with an
/// event each). Called as an answer is stored: with an overlap of 1 that answer's lease was
/// the only one the task could have (`available` counts the rest), so `others_may_hold`
/// is false and the search for other leases (~4% of the writer's time in a claim-and-answer
/// loop, by `perf`) is skipped. With `answered`, the answer that closes it is counted too.
fn close_task(c: &Connection, task_id: i64, now: Millis, others_may_hold: bool, answered: bool) -> Result<()> {
    c.prepare_cached(
        "UPDATE tasks SET state = 'done', available = 0, closed_at = ?2, answered = answered + ?3 WHERE id = ?1",
    )?
    .execute(params![task_id, now, i64::from(answered)])?;
    if !others_may_hold {
        return Ok(());
    }
    let cancelled = c
        .prepare_cached(
            "UPDATE leases SET state = 'cancelled', ended_at = ?2 WHERE task_id = ?1 AND state = 'active'
             RETURNING id, item_id, reviewer_id, (SELECT project_id FROM tasks WHERE id = ?1)",
        )?
        .query_map(params![task_id, now], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (lease_id, item_id, reviewer_id, project_id) in cancelled {
        let cancelled = Event::LeaseCancelled(ev::LeaseCancelled {
            lease_id,
            reviewer_id,
            reason: "the task closed".into(),
        });
        event(
            c,
            Some(project_id),
            Some(item_id),
            Some(task_id),
            now,
            "system",
            &cancelled,
        )?;
    }
    Ok(())
}

pub(super) fn insert_task(
    c: &Connection,
    project_id: i64,
    item_id: i64,
    stage: Stage,
    route: &Route,
    reason: Option<&str>,
    now: Millis,
) -> Result<i64> {
    let (warn_at, due_at) = flywheel_core::sla::deadlines(route, now);
    c.prepare_cached(
        "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, reason, created_at,
                            warn_at, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 'open', ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        project_id,
        item_id,
        stage.as_str(),
        route.queue,
        route.tier,
        route.priority,
        route.overlap,
        reason,
        now,
        warn_at,
        due_at
    ])?;
    super::counts::open(project_id, &route.queue, 1);
    Ok(c.last_insert_rowid())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn insert_label(
    c: &Connection,
    project_id: i64,
    item_id: i64,
    label: &str,
    source: Source,
    model: Option<&str>,
    model_version: Option<&str>,
    policy_version: u32,
    now: Millis,
) -> Result<i64> {
    c.prepare_cached(
        "INSERT INTO labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        project_id,
        item_id,
        label,
        source.as_str(),
        model,
        model_version,
        policy_version,
        now
    ])?;
    Ok(c.last_insert_rowid())
}
