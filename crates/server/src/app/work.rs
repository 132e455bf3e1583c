//! The reviewer's loop: claim (with a long poll for work to arrive), heartbeat, answer,
//! and "answer and next" (the answer and the next lease in one commit).
//!
//! The store decides what an answer does to its task; this module checks the answer
//! (shape, texts, the projects' failure categories, the next project's grant) before
//! anything is written, and tells the store how each granted project judges answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flywheel_core::Answer;
use flywheel_core::policy::parse_queue;
use flywheel_store::{ClaimRequest, ClaimedTask, NewReview, Notice, ReviewResult, Reviewer, StoreError};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use super::accounts::require_granted;
use super::error::text_field;
use super::{AppError, AppState, ProjectRuntime};

/// Longest a claim may wait for work.
pub const MAX_WAIT_MS: u64 = 30_000;

/// What a claim by `r` in `p` asks the store for; `gold_draw` (uniform in [0, 1)) below
/// the policy's gold rate asks for a gold task, and the same draw, divided by the rate
/// (uniform in [0, 1) again below it), picks which one: every gold choice comes from the
/// server's draws, so seeded draws give the same gold tasks on every run.
pub fn claim_request(p: &ProjectRuntime, r: &Reviewer, queue: Option<String>, gold_draw: f64) -> ClaimRequest {
    ClaimRequest {
        project_id: p.id,
        reviewer_id: r.id,
        reviewer_name: r.name.clone(),
        tiers: r.tiers.clone(),
        queue,
        lease_ms: i64::from(p.policy.lease_seconds()) * 1000,
        gold: p
            .policy
            .quality()
            .filter(|q| gold_draw < q.gold_rate)
            .map(|q| gold_draw / q.gold_rate),
    }
}

/// A queue the policy routes to only at tiers reviewer `r` does not serve is refused
/// (403), as the console refuses its page: it is not "nothing to do now" but "never yours".
/// A queue the policy does not name is left to the claim (it may hold older tasks).
pub fn check_queue(p: &ProjectRuntime, r: &Reviewer, queue: &str) -> Result<(), AppError> {
    let tiers: Vec<u8> = p
        .policy
        .queues()
        .into_iter()
        .filter(|(q, _)| q == queue)
        .map(|(_, t)| t)
        .collect();
    if tiers.is_empty() || tiers.iter().any(|t| r.tiers.contains(t)) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "queue '{queue}' is worked at tiers {tiers:?}; reviewer '{}' serves tiers {:?}",
            r.name, r.tiers
        )))
    }
}

/// Leases reviewer `r`'s next task in `p` (priority, then deadline — none last — then age; only `queue` when given),
/// waiting up to `wait` for work to arrive; `None` when there is nothing to do (or the
/// server is stopping). The caller checked the grant and the queue's name.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name, reviewer = %r.name))]
pub async fn claim(
    s: &AppState,
    p: &ProjectRuntime,
    r: &Reviewer,
    queue: Option<String>,
    wait: Duration,
) -> Result<Option<ClaimedTask>, AppError> {
    super::fatigue::check_claim(s, p, r).await?;
    if let Some(q) = &queue {
        check_queue(p, r, q).map_err(|e| e.at("queue"))?;
    }
    let req = claim_request(p, r, queue, s.gold_draws.next());
    // Subscribe before the first attempt, so work that arrives in between is not missed.
    let mut notices = s.store.subscribe();
    let mut stopping = s.stopping.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(t) = s.store.claim(req.clone(), s.now()).await? {
            return Ok(Some(t));
        }
        if !wait_for_work(&mut notices, &mut stopping, p.id, deadline).await {
            return Ok(None);
        }
    }
}

/// What an adjudicator needs beside the item: why the task is theirs (the escalation's
/// reason, or the disagreement) and the answers given before on the item's other tasks,
/// with their reviewers, reasons and notes.
pub struct AdjudicationContext {
    /// The adjudication task's reason as it was created.
    pub reason: Option<String>,
    /// Earlier answers, oldest first.
    pub answers: Vec<flywheel_store::ReviewRecord>,
}

/// The context of an `adjudicate` task (`None` for any other stage: a first reviewer must
/// judge unanchored by others' votes). One read of the item's story, only for adjudications,
/// so the claim's hot path is unchanged.
pub async fn adjudication_context(
    s: &AppState,
    p: &ProjectRuntime,
    t: &ClaimedTask,
) -> Result<Option<AdjudicationContext>, AppError> {
    if t.stage != flywheel_core::Stage::Adjudicate {
        return Ok(None);
    }
    let Some(item) = s.store.item(p.id, &t.external_id).await? else {
        return Ok(None);
    };
    let reason = item
        .tasks
        .iter()
        .find(|x| x.task_id == t.task_id)
        .and_then(|x| x.reason.clone());
    let mut answers: Vec<_> = item.reviews.into_iter().filter(|r| r.task_id != t.task_id).collect();
    answers.sort_by_key(|r| r.answered_at);
    Ok(Some(AdjudicationContext { reason, answers }))
}

/// Waits until the store says `project_id` has new work (true) or the deadline passes or
/// the server is stopping (false).
async fn wait_for_work(
    notices: &mut tokio::sync::broadcast::Receiver<Notice>,
    stopping: &mut tokio::sync::watch::Receiver<bool>,
    project_id: i64,
    deadline: tokio::time::Instant,
) -> bool {
    loop {
        if *stopping.borrow() {
            return false;
        }
        tokio::select! {
            n = notices.recv() => match n {
                Ok(Notice::TasksAvailable { project_id: p }) if p == project_id => return true,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return true,
                Err(RecvError::Closed) => return false,
            },
            _ = stopping.changed() => return false,
            _ = tokio::time::sleep_until(deadline) => return false,
        }
    }
}

/// Extends reviewer `r`'s lease by the project's lease length; returns when it now ends.
#[tracing::instrument(level = "debug", skip(s, r), fields(reviewer = %r.name))]
pub async fn heartbeat(s: &AppState, r: &Reviewer, task_id: i64, lease_id: i64) -> Result<i64, AppError> {
    Ok(s.store.heartbeat(task_id, lease_id, r.id, s.now()).await?)
}

/// An answer as sent (the request body; the wire format re-exports it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewIn {
    pub lease_id: i64,
    /// The client's idempotency key for this answer (1 to 128 characters), per task: a
    /// retry sends the same `review_id` to the same task.
    pub review_id: String,
    /// Exactly one of `label`, `labels`, `escalate`, `skip`. `label`: a single-label
    /// project's answer (in a multi-label project a 422 naming `label`).
    #[serde(default)]
    pub label: Option<String>,
    /// A multi-label project's answer: the set of labels present, each a label of the
    /// project, none twice (`[]`: none of these). A 422 names `labels[i]` for an unknown or
    /// repeated label, and `labels` in a single-label project.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub labels: Option<Vec<String>>,
    #[serde(default)]
    pub escalate: Option<ReasonIn>,
    #[serde(default)]
    pub skip: Option<ReasonIn>,
    #[serde(default)]
    pub failure_category: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// With `label`: the answer's fields, `{name: value}`, checked against the project's
    /// `answer_fields` (a 422 names `fields.<name>`: unknown, wrong type, not a listed
    /// value, out of range, too long, or required and missing).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
    /// "Submit and next": lease the reviewer's next task in the same commit as this
    /// answer (one round trip instead of two). The reply's `next` holds it, or `null` when
    /// there is nothing to do now (claim with `wait_ms` to wait for work).
    #[serde(default)]
    pub next: Option<NextIn>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NextIn {
    /// The project to claim from.
    pub project: String,
    /// Only this queue; any queue of the reviewer's tiers when absent.
    #[serde(default)]
    pub queue: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonIn {
    pub reason: String,
}

/// What an answer did, and with "next", the claim made in the same commit.
pub struct Answered {
    pub result: ReviewResult,
    /// Present when "next" was asked for.
    pub next: Option<NextClaim>,
}

/// The claim "answer and next" made in the answer's commit.
pub struct NextClaim {
    /// The project claimed in.
    pub project: Arc<ProjectRuntime>,
    /// The claim's own result: a refused claim (a held reviewer) leaves the answer stored.
    pub claimed: Result<Option<ClaimedTask>, StoreError>,
}

/// Answers task `task_id` as reviewer `r`: a label, an escalation or a skip. Everything is
/// checked before anything is written; a `review_id` already stored for this task returns
/// the stored result and changes nothing.
#[tracing::instrument(level = "debug", skip_all, fields(task_id = task_id, reviewer = %r.name, review_id = %body.review_id))]
pub async fn answer(s: &Arc<AppState>, r: &Reviewer, task_id: i64, body: ReviewIn) -> Result<Answered, AppError> {
    text_field("review_id", &body.review_id, 1, 128)?;
    // The task's project is known only to the store: judge by each granted project's rule.
    let mut judging = HashMap::new();
    let mut taxonomy = Vec::new();
    let mut projects = HashMap::new();
    for name in &r.project_names {
        let p = s.project(name).await?;
        judging.insert(p.id, s.judging(&p));
        taxonomy.extend(p.policy.workbench().failure_categories);
        projects.insert(p.id, p);
    }
    let answer = match (body.label, body.labels, body.escalate, body.skip) {
        (Some(l), None, None, None) => Answer::Label(l),
        (None, Some(set), None, None) => {
            if set.len() > 100 {
                return Err(AppError::invalid("labels", "an answer names at most 100 labels"));
            }
            Answer::Labels(set)
        }
        (None, None, Some(e), None) => {
            text_field("escalate.reason", &e.reason, 1, 2000)?;
            Answer::Escalate { reason: e.reason }
        }
        (None, None, None, Some(k)) => {
            text_field("skip.reason", &k.reason, 0, 2000)?;
            Answer::Skip { reason: k.reason }
        }
        (None, Some(_), _, _) => {
            return Err(AppError::invalid(
                "labels",
                "give exactly one of label, labels, escalate or skip",
            ));
        }
        _ => {
            return Err(AppError::invalid(
                "label",
                "give exactly one of label, labels, escalate or skip",
            ));
        }
    };
    if let Some(c) = &body.failure_category {
        text_field("failure_category", c, 1, 128)?;
        // Where projects define a taxonomy, a category is one of theirs.
        if !taxonomy.is_empty() && !taxonomy.contains(c) {
            return Err(AppError::invalid(
                "failure_category",
                format!(
                    "'{c}' is not a failure category of your projects: {}",
                    taxonomy.join(", ")
                ),
            ));
        }
    }
    if let Some(n) = &body.note {
        text_field("note", n, 0, 10_000)?;
    }
    // "Submit and next": the next task's project is checked (a grant, a queue name)
    // before anything is written.
    let next = match body.next {
        Some(n) => {
            let p = s.project(&n.project).await.map_err(|e| e.at("next.project"))?;
            require_granted(r, &p).map_err(|e| e.at("next.project"))?;
            let queue = n
                .queue
                .map(|q| parse_queue(&q).map_err(|m| AppError::invalid("next.queue", m)))
                .transpose()?;
            if let Some(q) = &queue {
                check_queue(&p, r, q).map_err(|e| e.at("next.queue"))?;
            }
            let req = claim_request(&p, r, queue, s.gold_draws.next());
            // A break due (counting this answer) refuses the next claim, not the answer.
            let due = super::fatigue::break_due(s, &p, r, true).await?;
            Some((p, req, due))
        }
        None => None,
    };
    let kind = answer.kind();
    let review = NewReview {
        task_id,
        lease_id: body.lease_id,
        reviewer_id: r.id,
        reviewer_name: r.name.clone(),
        review_id: body.review_id,
        answer,
        failure_category: body.failure_category,
        note: body.note,
        fields: body.fields,
        judging,
    };
    let answered = match next {
        None => Answered {
            result: s.store.submit_review(review, s.now()).await?,
            next: None,
        },
        Some((p, _, Some(due))) => Answered {
            result: s.store.submit_review(review, s.now()).await?,
            next: Some(NextClaim {
                project: p,
                claimed: Err(StoreError::Forbidden {
                    code: "break_due",
                    message: format!("{} (claims are taken again at {} ms)", due.reason, due.until),
                }),
            }),
        },
        Some((p, req, None)) => {
            let (result, claimed) = s.store.submit_review_and_claim(review, req, s.now()).await?;
            Answered {
                result,
                next: Some(NextClaim { project: p, claimed }),
            }
        }
    };
    if let Some(stored) = answered.result.stored {
        s.metrics.answered(stored.tier, kind, stored.time_on_task_ms);
        // The answer is stored: a monitor that fails is logged, not reported as the
        // answer's failure.
        if let Some(p) = projects.get(&stored.project_id)
            && let Err(e) = super::fatigue::after_answer(s, p, r, stored).await
        {
            tracing::warn!(error = %e, reviewer = %r.name, "fatigue monitor failed");
        }
    }
    Ok(answered)
}
