//! Answers on SQLite: a review stored and its task moved on as `flywheel_core::task`
//! decides (more reviewers, adjudication, a resolution), a gold answer scored, the task
//! closed. Runs inside the writer's transaction, and every step appends its event. Claims
//! and leases are `work.rs`'s.

use std::collections::HashMap;

use flywheel_core::consensus::Scorer;
use flywheel_core::policy::ConsensusMethod;
use flywheel_core::quality;
use flywheel_core::task::{self, Next, Source};
use flywheel_core::{Answer, LabelSet, Route, Stage};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::common::event;
use super::work::active_lease;
use crate::*;

struct TaskRow {
    stage: Stage,
    queue: String,
    tier: u8,
    priority: i32,
    overlap: u8,
    gold: bool,
}

/// The scorer for a task's voters: weights come from the reviewers' gold records.
fn scorer_for(c: &Connection, project_id: i64, voters: &[i64], judging: &Judging) -> Result<Scorer> {
    Ok(match judging.consensus.method {
        ConsensusMethod::Majority => Scorer::Majority,
        ConsensusMethod::DawidSkene => judging
            .ds_model
            .clone()
            .map(Scorer::DawidSkene)
            .unwrap_or(Scorer::Majority),
        ConsensusMethod::Weighted => {
            let mut weights = HashMap::new();
            for v in voters {
                let (answered, correct): (u64, u64) = c
                    .prepare_cached(
                        "SELECT gold_answers, gold_correct FROM reviewer_quality WHERE project_id = ?1 AND reviewer_id = ?2",
                    )?
                    .query_row(params![project_id, v], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?
                    .unwrap_or((0, 0));
                weights.insert(*v, quality::reliability(correct, answered));
            }
            Scorer::Weighted(weights)
        }
    })
}

/// An answer to a gold task: scored against the known label, never resolved or fed to the
/// label feed, and answered exactly as a regular task of the same overlap would be.
#[allow(clippy::too_many_arguments)]
fn gold_answer(
    c: &Connection,
    r: &NewReview,
    judging: &Judging,
    t: &TaskRow,
    project_id: i64,
    item_id: i64,
    granted_at: Millis,
    now: Millis,
) -> Result<ReviewResult> {
    if let Answer::Label(l) = &r.answer {
        let labels: String = c
            .prepare_cached("SELECT labels FROM projects WHERE id = ?1")?
            .query_row([project_id], |row| row.get(0))?;
        let names: Vec<String> = serde_json::from_str(&labels)?;
        LabelSet::parse(&names).map_err(StoreError::from)?.answer("label", l)?;
    }
    let actor = format!("reviewer:{}", r.reviewer_name);
    let skip = matches!(r.answer, Answer::Skip { .. });
    c.prepare_cached("UPDATE leases SET state = ?2, ended_at = ?3 WHERE id = ?1")?
        .execute(params![r.lease_id, if skip { "skipped" } else { "answered" }, now])?;
    close_task(c, r.task_id, now, t.overlap > 1, false)?;
    let (outcome, resolution) = match &r.answer {
        Answer::Skip { .. } => ("requeued", None),
        Answer::Escalate { .. } => ("adjudicate", None),
        Answer::Label(l) => {
            let gold: String = c
                .prepare_cached("SELECT gold_label FROM items WHERE id = ?1")?
                .query_row([item_id], |row| row.get(0))?;
            let correct = *l == gold;
            c.prepare_cached(
                "INSERT INTO reviewer_quality (project_id, reviewer_id, gold_answers, gold_correct) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (project_id, reviewer_id) DO UPDATE SET gold_answers = gold_answers + 1,
                     gold_correct = gold_correct + excluded.gold_correct",
            )?
            .execute(params![project_id, r.reviewer_id, i64::from(correct)])?;
            let (answered, right, held): (u64, u64, Option<i64>) = c
                .prepare_cached(
                    "SELECT gold_answers, gold_correct, held_at FROM reviewer_quality WHERE project_id = ?1 AND reviewer_id = ?2",
                )?
                .query_row(params![project_id, r.reviewer_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(r.task_id),
                now,
                "gold.answered",
                &actor,
                &json!({"reviewer_id": r.reviewer_id, "correct": correct, "gold_answers": answered, "gold_correct": right}),
            )?;
            if let Some(q) = judging.quality
                && held.is_none()
                && quality::should_hold(right, answered, q.min_accuracy, u64::from(q.min_gold))
            {
                let reason = format!(
                    "gold accuracy {right}/{answered}: its 95% upper bound is below {}",
                    q.min_accuracy
                );
                c.prepare_cached(
                    "UPDATE reviewer_quality SET held_at = ?3, held_reason = ?4 WHERE project_id = ?1 AND reviewer_id = ?2",
                )?
                .execute(params![project_id, r.reviewer_id, now, reason])?;
                event(
                    c,
                    Some(project_id),
                    None,
                    None,
                    now,
                    "reviewer.held",
                    "system",
                    &json!({"reviewer_id": r.reviewer_id, "reviewer": r.reviewer_name, "reason": reason}),
                )?;
            }
            if t.overlap > 1 {
                ("waiting", None)
            } else {
                let method = judging.method();
                (
                    "resolved",
                    Some(Resolution {
                        label: l.clone(),
                        source: Source::Human,
                        method: method.to_string(),
                        confidence: 1.0,
                        reviewers: vec![r.reviewer_name.clone()],
                        resolved_at: now,
                    }),
                )
            }
        }
    };
    let result = ReviewResult {
        review_id: r.review_id.clone(),
        outcome: outcome.to_string(),
        resolution,
        more_reviewers: false,
    };
    record_review(c, r, project_id, item_id, granted_at, &result, now)?;
    Ok(result)
}

/// Returns the result and the task's project.
pub(super) fn submit_review(c: &Connection, r: NewReview, now: Millis) -> Result<(ReviewResult, i64)> {
    let stored: Option<(String, i64)> = c
        .prepare_cached(
            "SELECT w.result, t.project_id FROM reviews w JOIN tasks t ON t.id = w.task_id
             WHERE w.task_id = ?1 AND w.reviewer_id = ?2 AND w.review_id = ?3",
        )?
        .query_row(params![r.task_id, r.reviewer_id, r.review_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    if let Some((s, project_id)) = stored {
        return Ok((serde_json::from_str(&s)?, project_id));
    }
    let lease = active_lease(c, r.task_id, r.lease_id, r.reviewer_id, now)?;
    let (project_id, item_id) = (lease.project_id, lease.item_id);
    let judging = r.judging.get(&project_id).cloned().unwrap_or_default();
    let t = c
        .prepare_cached("SELECT stage, queue, tier, priority, overlap, gold FROM tasks WHERE id = ?1")?
        .query_row([r.task_id], |row| {
            let stage: String = row.get(0)?;
            Ok(TaskRow {
                stage: Stage::parse(&stage).unwrap_or(Stage::Review),
                queue: row.get(1)?,
                tier: row.get(2)?,
                priority: row.get(3)?,
                overlap: row.get(4)?,
                gold: row.get(5)?,
            })
        })?;
    if let Answer::Label(l) = &r.answer {
        let labels: String = c
            .prepare_cached("SELECT labels FROM projects WHERE id = ?1")?
            .query_row([project_id], |row| row.get(0))?;
        let names: Vec<String> = serde_json::from_str(&labels)?;
        LabelSet::parse(&names).map_err(StoreError::from)?.answer("label", l)?;
    }
    if t.gold {
        return gold_answer(c, &r, &judging, &t, project_id, item_id, lease.granted_at, now)
            .map(|res| (res, project_id));
    }
    // In the order given; sorted here, not by `ORDER BY id`: the task's index is
    // (task_id, reviewer_id, review_id), so SQLite would open a sorter for every answer.
    let mut earlier = c
        .prepare_cached(
            "SELECT reviewer_id, kind, label, reason, id FROM reviews WHERE task_id = ?1 AND kind != 'skip'",
        )?
        .query_map([r.task_id], |row| {
            let kind: String = row.get(1)?;
            let answer = match kind.as_str() {
                "label" => Answer::Label(row.get::<_, Option<String>>(2)?.unwrap_or_default()),
                _ => Answer::Escalate {
                    reason: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                },
            };
            Ok((row.get::<_, i64>(4)?, row.get::<_, i64>(0)?, answer))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    earlier.sort_unstable_by_key(|(id, _, _)| *id);
    let earlier: Vec<(i64, Answer)> = earlier.into_iter().map(|(_, v, a)| (v, a)).collect();
    let mut voters: Vec<i64> = earlier.iter().map(|(v, _)| *v).collect();
    voters.push(r.reviewer_id);
    let scorer = scorer_for(c, project_id, &voters, &judging)?;
    let rule = task::Rule {
        scorer: &scorer,
        min_confidence: judging.consensus.min_confidence,
        max_overlap: judging.consensus.max_overlap,
    };
    let next = task::after_answer(t.stage, t.tier, t.overlap, &earlier, (r.reviewer_id, &r.answer), &rule);
    let actor = format!("reviewer:{}", r.reviewer_name);
    let skip = matches!(r.answer, Answer::Skip { .. });
    let lease_state = if skip { "skipped" } else { "answered" };
    c.prepare_cached("UPDATE leases SET state = ?2, ended_at = ?3 WHERE id = ?1")?
        .execute(params![r.lease_id, lease_state, now])?;
    // An answer that closes the task is counted by the same UPDATE that closes it.
    let closes = matches!(next, Next::Adjudicate { .. } | Next::Resolve { .. });
    if skip {
        c.prepare_cached("UPDATE tasks SET available = available + 1 WHERE id = ?1")?
            .execute([r.task_id])?;
    } else if !closes {
        c.prepare_cached("UPDATE tasks SET answered = answered + 1 WHERE id = ?1")?
            .execute([r.task_id])?;
    }

    let mut resolution = None;
    let mut more_reviewers = false;
    let outcome = match &next {
        Next::Wait => "waiting",
        Next::Requeue => "requeued",
        Next::MoreReviewers => {
            c.prepare_cached("UPDATE tasks SET overlap = overlap + 1, available = available + 1 WHERE id = ?1")?
                .execute([r.task_id])?;
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(r.task_id),
                now,
                "task.overlap_increased",
                &actor,
                &json!({"overlap": t.overlap + 1, "reason": "consensus below min_confidence"}),
            )?;
            more_reviewers = true;
            "waiting"
        }
        Next::Adjudicate { tier, reason } => {
            close_task(c, r.task_id, now, t.overlap > 1, !skip)?;
            let route = Route {
                queue: t.queue.clone(),
                tier: *tier,
                priority: t.priority,
                overlap: 1,
            };
            let new_task = insert_task(c, project_id, item_id, Stage::Adjudicate, &route, Some(reason), now)?;
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(new_task),
                now,
                "task.escalated",
                &actor,
                &json!({"from_task": r.task_id, "tier": tier, "reason": reason}),
            )?;
            "adjudicate"
        }
        Next::Resolve {
            label,
            source,
            method,
            confidence,
        } => {
            close_task(c, r.task_id, now, t.overlap > 1, !skip)?;
            // The first label on a task (overlap 1, the common case) has no one to look up.
            let mut reviewers = if earlier.iter().any(|(_, a)| matches!(a, Answer::Label(_))) {
                c.prepare_cached(
                    "SELECT DISTINCT v.name FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id
                     WHERE w.task_id = ?1 AND w.kind = 'label' ORDER BY v.name",
                )?
                .query_map([r.task_id], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?
            } else {
                Vec::new()
            };
            if !reviewers.contains(&r.reviewer_name) {
                reviewers.push(r.reviewer_name.clone());
            }
            let res = Resolution {
                label: label.clone(),
                source: *source,
                method: method.to_string(),
                confidence: *confidence,
                reviewers,
                resolved_at: now,
            };
            let (current, policy_version, was_auto): (Option<String>, u32, bool) = c
                .prepare_cached("SELECT resolved_label, policy_version, outcome = 'auto' FROM items WHERE id = ?1")?
                .query_row([item_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            // An audit, or the adjudication of a contested audit (only audited items of an
            // auto decision have tasks): it confirms or corrects the auto label.
            let audit = t.stage == Stage::Audit || (t.stage == Stage::Adjudicate && was_auto);
            if audit && current.as_deref() == Some(label.as_str()) {
                event(
                    c,
                    Some(project_id),
                    Some(item_id),
                    Some(r.task_id),
                    now,
                    "audit.confirmed",
                    &actor,
                    &json!({"label": label}),
                )?;
                // A human has now verified the label: the feed says so (and the model may
                // learn from it).
                insert_label(
                    c,
                    project_id,
                    item_id,
                    label,
                    Source::Human,
                    None,
                    None,
                    policy_version,
                    now,
                )?;
                resolution = Some(res);
                "confirmed"
            } else {
                c.prepare_cached(
                    "UPDATE items SET resolved_label = ?2, resolution = ?3, resolved_at = ?4 WHERE id = ?1",
                )?
                .execute(params![item_id, label, serde_json::to_string(&res)?, now])?;
                insert_label(c, project_id, item_id, label, *source, None, None, policy_version, now)?;
                let kind = if audit { "item.corrected" } else { "item.resolved" };
                event(
                    c,
                    Some(project_id),
                    Some(item_id),
                    Some(r.task_id),
                    now,
                    kind,
                    &actor,
                    &json!({"label": label, "previous": current, "source": source, "method": method, "confidence": confidence, "reviewers": res.reviewers}),
                )?;
                resolution = Some(res);
                if audit { "corrected" } else { "resolved" }
            }
        }
    };
    let result = ReviewResult {
        review_id: r.review_id.clone(),
        outcome: outcome.to_string(),
        resolution,
        more_reviewers,
    };
    record_review(c, &r, project_id, item_id, lease.granted_at, &result, now)?;
    Ok((result, project_id))
}

/// Stores an answer, counts it in the reviewer's day, and writes its `review.submitted`
/// event; `result` is what the reviewer was told, kept so that a retry of the same
/// `review_id` gets it again.
fn record_review(
    c: &Connection,
    r: &NewReview,
    project_id: i64,
    item_id: i64,
    granted_at: Millis,
    result: &ReviewResult,
    now: Millis,
) -> Result<()> {
    let (label, reason) = match &r.answer {
        Answer::Label(l) => (Some(l.as_str()), None),
        Answer::Escalate { reason } | Answer::Skip { reason } => (None, Some(reason.as_str())),
    };
    c.prepare_cached(
        "INSERT INTO reviews (review_id, reviewer_id, task_id, item_id, lease_id, kind, label, reason, failure_category, note,
                              claimed_at, answered_at, result)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        r.review_id, r.reviewer_id, r.task_id, item_id, r.lease_id, r.answer.kind(), label, reason,
        r.failure_category, r.note, granted_at, now, serde_json::to_string(result)?
    ])?;
    c.prepare_cached(
        "INSERT INTO reviewer_days (day, reviewer_id, answers) VALUES (?1, ?2, 1)
         ON CONFLICT (day, reviewer_id) DO UPDATE SET answers = answers + 1",
    )?
    .execute(params![now.div_euclid(DAY_MS), r.reviewer_id])?;
    event(
        c,
        Some(project_id),
        Some(item_id),
        Some(r.task_id),
        now,
        "review.submitted",
        &format!("reviewer:{}", r.reviewer_name),
        &json!({"review_id": r.review_id, "lease_id": r.lease_id, "answer": r.answer.kind(), "label": label,
                "reason": reason, "failure_category": r.failure_category, "outcome": result.outcome,
                "time_on_task_ms": now - granted_at}),
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
        event(
            c,
            Some(project_id),
            Some(item_id),
            Some(task_id),
            now,
            "lease.cancelled",
            "system",
            &json!({"lease_id": lease_id, "reviewer_id": reviewer_id, "reason": "the task closed"}),
        )?;
    }
    Ok(())
}

fn insert_task(
    c: &Connection,
    project_id: i64,
    item_id: i64,
    stage: Stage,
    route: &Route,
    reason: Option<&str>,
    now: Millis,
) -> Result<i64> {
    c.prepare_cached(
        "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 'open', ?8, ?9)",
    )?
    .execute(params![project_id, item_id, stage.as_str(), route.queue, route.tier, route.priority, route.overlap, reason, now])?;
    Ok(c.last_insert_rowid())
}

#[allow(clippy::too_many_arguments)]
fn insert_label(
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
