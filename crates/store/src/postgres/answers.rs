//! Answers on PostgreSQL (the same model as `sqlite/answers.rs`), inside the caller's
//! transaction. An answer locks its task row first, and so does lease expiry (`work.rs`),
//! so the two never take locks in opposite orders.

use std::collections::HashMap;

use flywheel_core::consensus::Scorer;
use flywheel_core::policy::ConsensusMethod;
use flywheel_core::quality;
use flywheel_core::task::{self, Next, Source};
use flywheel_core::{Answer, LabelSet, Route, Stage};
use serde_json::json;
use sqlx::PgConnection;

use super::TxResult;
use super::common::{event, notify, parse};
use crate::*;

/// The stored result of this reviewer's `review_id` on this task, if any.
async fn stored_review(c: &mut PgConnection, r: &NewReview) -> TxResult<Option<ReviewResult>> {
    let row: Option<String> = sqlx::query_scalar(
        "SELECT result::text FROM reviews WHERE task_id = $1 AND reviewer_id = $2 AND review_id = $3",
    )
    .bind(r.task_id)
    .bind(r.reviewer_id)
    .bind(&r.review_id)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|s| parse(&s)).transpose()
}

pub(super) async fn submit_review(
    c: &mut PgConnection,
    channel: &str,
    r: &NewReview,
    now: Millis,
) -> TxResult<ReviewResult> {
    if let Some(done) = stored_review(c, r).await? {
        return Ok(done);
    }
    // Lock the task first: answers to one task (and lease expiry) take their turn here.
    let task: Option<(i64, String, String, i16, i32, i16, bool)> = sqlx::query_as(
        "SELECT project_id, stage, queue, tier, priority, overlap, gold FROM tasks WHERE id = $1 FOR UPDATE",
    )
    .bind(r.task_id)
    .fetch_optional(&mut *c)
    .await?;
    let (project_id, stage, queue, tier, priority, overlap, gold) = task.ok_or_else(StoreError::lease_lost)?;
    if let Some(done) = stored_review(c, r).await? {
        return Ok(done);
    }
    let stage = Stage::parse(&stage).unwrap_or(Stage::Review);
    let (tier, overlap) = (tier as u8, overlap as u8);
    let lease: Option<(i64, i64)> = sqlx::query_as(
        "SELECT item_id, granted_at FROM leases
         WHERE id = $1 AND task_id = $2 AND reviewer_id = $3 AND state = 'active' AND expires_at > $4 FOR UPDATE",
    )
    .bind(r.lease_id)
    .bind(r.task_id)
    .bind(r.reviewer_id)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    let (item_id, granted_at) = lease.ok_or_else(StoreError::lease_lost)?;
    let judging = r.judging.get(&project_id).cloned().unwrap_or_default();
    if let Answer::Label(l) = &r.answer {
        let labels: String = sqlx::query_scalar("SELECT labels::text FROM projects WHERE id = $1")
            .bind(project_id)
            .fetch_one(&mut *c)
            .await?;
        let names: Vec<String> = parse(&labels)?;
        LabelSet::parse(&names)?.answer("label", l)?;
    }
    if gold {
        return gold_answer(c, r, &judging, overlap, project_id, item_id, granted_at, now).await;
    }
    let earlier: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT reviewer_id, kind, label, reason FROM reviews WHERE task_id = $1 AND kind <> 'skip' ORDER BY id",
    )
    .bind(r.task_id)
    .fetch_all(&mut *c)
    .await?;
    let earlier: Vec<(i64, Answer)> = earlier
        .into_iter()
        .map(|(reviewer, kind, label, reason)| {
            let answer = match kind.as_str() {
                "label" => Answer::Label(label.unwrap_or_default()),
                _ => Answer::Escalate {
                    reason: reason.unwrap_or_default(),
                },
            };
            (reviewer, answer)
        })
        .collect();
    let mut voters: Vec<i64> = earlier.iter().map(|(v, _)| *v).collect();
    voters.push(r.reviewer_id);
    let scorer = scorer_for(c, project_id, &voters, &judging).await?;
    let rule = task::Rule {
        scorer: &scorer,
        min_confidence: judging.consensus.min_confidence,
        max_overlap: judging.consensus.max_overlap,
    };
    let next = task::after_answer(stage, tier, overlap, &earlier, (r.reviewer_id, &r.answer), &rule);
    let actor = format!("reviewer:{}", r.reviewer_name);
    let skip = matches!(r.answer, Answer::Skip { .. });
    sqlx::query("UPDATE leases SET state = $2, ended_at = $3 WHERE id = $1")
        .bind(r.lease_id)
        .bind(if skip { "skipped" } else { "answered" })
        .bind(now)
        .execute(&mut *c)
        .await?;
    let counter = if skip {
        "UPDATE tasks SET available = available + 1 WHERE id = $1"
    } else {
        "UPDATE tasks SET answered = answered + 1 WHERE id = $1"
    };
    sqlx::query(counter).bind(r.task_id).execute(&mut *c).await?;

    let mut resolution = None;
    let mut more_reviewers = false;
    let outcome = match &next {
        Next::Wait => "waiting",
        Next::Requeue => "requeued",
        Next::MoreReviewers => {
            sqlx::query("UPDATE tasks SET overlap = overlap + 1, available = available + 1 WHERE id = $1")
                .bind(r.task_id)
                .execute(&mut *c)
                .await?;
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(r.task_id),
                now,
                "task.overlap_increased",
                &actor,
                &json!({"overlap": overlap + 1, "reason": "consensus below min_confidence"}),
            )
            .await?;
            more_reviewers = true;
            "waiting"
        }
        Next::Adjudicate { tier, reason } => {
            close_task(c, r.task_id, now).await?;
            let route = Route {
                queue: queue.clone(),
                tier: *tier,
                priority,
                overlap: 1,
            };
            let new_task = insert_task(c, project_id, item_id, Stage::Adjudicate, &route, Some(reason), now).await?;
            event(
                c,
                Some(project_id),
                Some(item_id),
                Some(new_task),
                now,
                "task.escalated",
                &actor,
                &json!({"from_task": r.task_id, "tier": tier, "reason": reason}),
            )
            .await?;
            "adjudicate"
        }
        Next::Resolve {
            label,
            source,
            method,
            confidence,
        } => {
            close_task(c, r.task_id, now).await?;
            let mut reviewers: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT v.name FROM reviews w JOIN reviewers v ON v.id = w.reviewer_id
                 WHERE w.task_id = $1 AND w.kind = 'label' ORDER BY v.name",
            )
            .bind(r.task_id)
            .fetch_all(&mut *c)
            .await?;
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
            let (current, policy_version, was_auto): (Option<String>, i32, bool) =
                sqlx::query_as("SELECT resolved_label, policy_version, outcome = 'auto' FROM items WHERE id = $1")
                    .bind(item_id)
                    .fetch_one(&mut *c)
                    .await?;
            // An audit, or the adjudication of a contested audit: it confirms or corrects.
            let audit = stage == Stage::Audit || (stage == Stage::Adjudicate && was_auto);
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
                )
                .await?;
                insert_label(
                    c,
                    project_id,
                    item_id,
                    label,
                    Source::Human,
                    None,
                    None,
                    policy_version as u32,
                    now,
                )
                .await?;
                resolution = Some(res);
                "confirmed"
            } else {
                sqlx::query(
                    "UPDATE items SET resolved_label = $2, resolution = $3::jsonb, resolved_at = $4 WHERE id = $1",
                )
                .bind(item_id)
                .bind(label)
                .bind(serde_json::to_string(&res)?)
                .bind(now)
                .execute(&mut *c)
                .await?;
                insert_label(
                    c,
                    project_id,
                    item_id,
                    label,
                    *source,
                    None,
                    None,
                    policy_version as u32,
                    now,
                )
                .await?;
                event(
                    c,
                    Some(project_id),
                    Some(item_id),
                    Some(r.task_id),
                    now,
                    if audit { "item.corrected" } else { "item.resolved" },
                    &actor,
                    &json!({"label": label, "previous": current, "source": source, "method": method,
                            "confidence": confidence, "reviewers": res.reviewers}),
                )
                .await?;
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
    record_review(c, r, project_id, item_id, granted_at, &result, now).await?;
    if result.freed_work() {
        notify(c, channel, &Notice::TasksAvailable { project_id }).await?;
    }
    Ok(result)
}

/// The scorer for a task's voters: weights come from the reviewers' gold records.
async fn scorer_for(c: &mut PgConnection, project_id: i64, voters: &[i64], judging: &Judging) -> TxResult<Scorer> {
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
                let row: Option<(i32, i32)> = sqlx::query_as(
                    "SELECT gold_answers, gold_correct FROM reviewer_quality WHERE project_id = $1 AND reviewer_id = $2",
                )
                .bind(project_id)
                .bind(v)
                .fetch_optional(&mut *c)
                .await?;
                let (answered, correct) = row.unwrap_or((0, 0));
                weights.insert(*v, quality::reliability(correct as u64, answered as u64));
            }
            Scorer::Weighted(weights)
        }
    })
}

/// An answer to a gold task (see the SQLite backend's `gold_answer`).
#[allow(clippy::too_many_arguments)]
async fn gold_answer(
    c: &mut PgConnection,
    r: &NewReview,
    judging: &Judging,
    overlap: u8,
    project_id: i64,
    item_id: i64,
    granted_at: Millis,
    now: Millis,
) -> TxResult<ReviewResult> {
    let actor = format!("reviewer:{}", r.reviewer_name);
    let skip = matches!(r.answer, Answer::Skip { .. });
    sqlx::query("UPDATE leases SET state = $2, ended_at = $3 WHERE id = $1")
        .bind(r.lease_id)
        .bind(if skip { "skipped" } else { "answered" })
        .bind(now)
        .execute(&mut *c)
        .await?;
    close_task(c, r.task_id, now).await?;
    let (outcome, resolution) = match &r.answer {
        Answer::Skip { .. } => ("requeued", None),
        Answer::Escalate { .. } => ("adjudicate", None),
        Answer::Label(l) => {
            let gold: String = sqlx::query_scalar("SELECT gold_label FROM items WHERE id = $1")
                .bind(item_id)
                .fetch_one(&mut *c)
                .await?;
            let correct = *l == gold;
            let (answered, right, held): (i32, i32, Option<i64>) = sqlx::query_as(
                "INSERT INTO reviewer_quality (project_id, reviewer_id, gold_answers, gold_correct) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (project_id, reviewer_id) DO UPDATE SET gold_answers = reviewer_quality.gold_answers + 1,
                     gold_correct = reviewer_quality.gold_correct + excluded.gold_correct
                 RETURNING gold_answers, gold_correct, held_at",
            )
            .bind(project_id)
            .bind(r.reviewer_id)
            .bind(i32::from(correct))
            .fetch_one(&mut *c)
            .await?;
            event(c, Some(project_id), Some(item_id), Some(r.task_id), now, "gold.answered", &actor,
                &json!({"reviewer_id": r.reviewer_id, "correct": correct, "gold_answers": answered, "gold_correct": right}))
            .await?;
            if let Some(q) = judging.quality
                && held.is_none()
                && quality::should_hold(right as u64, answered as u64, q.min_accuracy, u64::from(q.min_gold))
            {
                let reason = format!(
                    "gold accuracy {right}/{answered}: its 95% upper bound is below {}",
                    q.min_accuracy
                );
                sqlx::query(
                    "UPDATE reviewer_quality SET held_at = $3, held_reason = $4 WHERE project_id = $1 AND reviewer_id = $2",
                )
                .bind(project_id)
                .bind(r.reviewer_id)
                .bind(now)
                .bind(&reason)
                .execute(&mut *c)
                .await?;
                event(
                    c,
                    Some(project_id),
                    None,
                    None,
                    now,
                    "reviewer.held",
                    "system",
                    &json!({"reviewer_id": r.reviewer_id, "reviewer": r.reviewer_name, "reason": reason}),
                )
                .await?;
            }
            if overlap > 1 {
                ("waiting", None)
            } else {
                let method = judging.method();
                let res = Resolution {
                    label: l.clone(),
                    source: Source::Human,
                    method: method.to_string(),
                    confidence: 1.0,
                    reviewers: vec![r.reviewer_name.clone()],
                    resolved_at: now,
                };
                ("resolved", Some(res))
            }
        }
    };
    let result = ReviewResult {
        review_id: r.review_id.clone(),
        outcome: outcome.to_string(),
        resolution,
        more_reviewers: false,
    };
    record_review(c, r, project_id, item_id, granted_at, &result, now).await?;
    Ok(result)
}

/// Stores an answer and its `review.submitted` event (see the SQLite backend).
async fn record_review(
    c: &mut PgConnection,
    r: &NewReview,
    project_id: i64,
    item_id: i64,
    granted_at: Millis,
    result: &ReviewResult,
    now: Millis,
) -> TxResult<()> {
    let (label, reason) = match &r.answer {
        Answer::Label(l) => (Some(l.as_str()), None),
        Answer::Escalate { reason } | Answer::Skip { reason } => (None, Some(reason.as_str())),
    };
    sqlx::query(
        "INSERT INTO reviews (review_id, reviewer_id, task_id, item_id, lease_id, kind, label, reason, failure_category, note,
                              claimed_at, answered_at, result)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)",
    )
    .bind(&r.review_id)
    .bind(r.reviewer_id)
    .bind(r.task_id)
    .bind(item_id)
    .bind(r.lease_id)
    .bind(r.answer.kind())
    .bind(label)
    .bind(reason)
    .bind(&r.failure_category)
    .bind(&r.note)
    .bind(granted_at)
    .bind(now)
    .bind(serde_json::to_string(result)?)
    .execute(&mut *c)
    .await?;
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
    .await
}

async fn close_task(c: &mut PgConnection, task_id: i64, now: Millis) -> TxResult<()> {
    sqlx::query("UPDATE tasks SET state = 'done', available = 0, closed_at = $2 WHERE id = $1")
        .bind(task_id)
        .bind(now)
        .execute(&mut *c)
        .await?;
    let cancelled: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "UPDATE leases SET state = 'cancelled', ended_at = $2 WHERE task_id = $1 AND state = 'active'
         RETURNING id, item_id, reviewer_id, (SELECT project_id FROM tasks WHERE id = $1)",
    )
    .bind(task_id)
    .bind(now)
    .fetch_all(&mut *c)
    .await?;
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
        )
        .await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_task(
    c: &mut PgConnection,
    project_id: i64,
    item_id: i64,
    stage: Stage,
    route: &Route,
    reason: Option<&str>,
    now: Millis,
) -> TxResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO tasks (project_id, item_id, stage, queue, tier, priority, overlap, available, state, reason, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 'open', $8, $9) RETURNING id",
    )
    .bind(project_id)
    .bind(item_id)
    .bind(stage.as_str())
    .bind(&route.queue)
    .bind(i16::from(route.tier))
    .bind(route.priority)
    .bind(i16::from(route.overlap))
    .bind(reason)
    .bind(now)
    .fetch_one(&mut *c)
    .await?)
}

#[allow(clippy::too_many_arguments)]
async fn insert_label(
    c: &mut PgConnection,
    project_id: i64,
    item_id: i64,
    label: &str,
    source: Source,
    model: Option<&str>,
    model_version: Option<&str>,
    policy_version: u32,
    now: Millis,
) -> TxResult<()> {
    sqlx::query(
        "INSERT INTO labels (project_id, item_id, label, source, model, model_version, policy_version, resolved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(project_id)
    .bind(item_id)
    .bind(label)
    .bind(source.as_str())
    .bind(model)
    .bind(model_version)
    .bind(policy_version as i32)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}
