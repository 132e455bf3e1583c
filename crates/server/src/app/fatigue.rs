//! Reviewer fatigue and pacing on a node: the monitor run after each stored answer, the
//! breaks a claim must respect, and each reviewer's current session for `GET …/reviewers`.
//!
//! A reviewer's work sessions are read from their answers (`Store::reviewer_answers`,
//! newest first, at most [`READ_LIMIT`]) and cut by core (`fatigue::session_start`); the
//! monitor is core's (`fatigue::assess`). Its finding is written once per session
//! (`Store::record_fatigue`, with `reviewer.fatigued`); with `on_fatigue: break` the
//! reviewer's claims are refused until `break_until`. Pacing's `max_tasks_per_session`
//! refuses claims once the session holds that many answers, until a gap of
//! `session_gap_seconds` after the last one starts a new session. A break the monitor
//! called ends the session too: the answers after it start a fresh one (with its own
//! baseline, and once more the chance to fire).

use flywheel_core::event::{self, Event};
use flywheel_core::fatigue::{self, SessionSummary};
use flywheel_core::policy::OnFatigue;
use flywheel_store::{NewFatigue, Reviewer, SessionAnswer, StoredAnswer};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppError, AppState, ProjectRuntime};

/// The most answers read back for one reviewer: a session longer than this is judged on
/// its newest part.
pub const READ_LIMIT: u32 = 2_000;

/// Why claims are refused for now, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakDue {
    pub until: i64,
    pub reason: String,
}

/// The current session of `answers` (oldest first) at `now`, or none when the last answer
/// is older than the gap. A break the monitor called and that is over (`rested_until`)
/// ends a session as a gap does: answers after it start a new one.
fn current(answers: &[SessionAnswer], gap_ms: i64, now: i64, rested_until: Option<i64>) -> &[SessionAnswer] {
    match answers.last() {
        Some(last) if fatigue::ongoing(last.answered_at, now, gap_ms) => {
            let after_break = rested_until
                .filter(|u| *u <= now)
                .map_or(0, |u| answers.partition_point(|a| a.answered_at < u));
            &answers[fatigue::session_start(answers, gap_ms).max(after_break)..]
        }
        _ => &[],
    }
}

/// When reviewer `reviewer_id`'s last break in `p` ended (or ends).
async fn rested_until(s: &AppState, project_id: i64, reviewer_id: i64) -> Result<Option<i64>, AppError> {
    Ok(s.store
        .fatigue_states(project_id, Some(reviewer_id))
        .await?
        .first()
        .and_then(|f| f.break_until))
}

/// Runs the fatigue monitor on the session the answer `stored` belongs to, writing
/// `reviewer.fatigued` the first time it fires in that session.
pub async fn after_answer(
    s: &AppState,
    p: &ProjectRuntime,
    r: &Reviewer,
    stored: StoredAnswer,
) -> Result<(), AppError> {
    let Some(spec) = p.policy.fatigue() else {
        return Ok(());
    };
    let now = s.now();
    let answers = s.store.reviewer_answers(stored.project_id, r.id, READ_LIMIT).await?;
    let rested = rested_until(s, p.id, r.id).await?;
    let session = current(&answers, p.policy.session_gap_ms(), now, rested);
    let (Some(first), Some(finding)) = (session.first(), fatigue::assess(&spec, session)) else {
        return Ok(());
    };
    let break_until = (spec.on_fatigue == OnFatigue::Break).then(|| now + i64::from(spec.break_minutes) * 60_000);
    let e = Event::ReviewerFatigued(event::ReviewerFatigued {
        reviewer_id: r.id,
        reviewer: r.name.clone(),
        session_started_at: first.answered_at,
        session_answers: session.len() as u64,
        reason: finding.reason.to_string(),
        baseline_from: "session".into(),
        baseline: finding.baseline,
        recent: finding.recent,
        p_value: finding.p_value,
        on_fatigue: match spec.on_fatigue {
            OnFatigue::Notify => "notify",
            OnFatigue::Break => "break",
        }
        .into(),
        break_until,
    });
    let written = s
        .store
        .record_fatigue(
            NewFatigue {
                project_id: p.id,
                reviewer_id: r.id,
                session_started_at: first.answered_at,
                break_until,
                event: e,
            },
            now,
        )
        .await?;
    if written {
        tracing::info!(project = %p.name, reviewer = %r.name, reason = finding.reason, "reviewer fatigued");
    }
    Ok(())
}

/// Whether reviewer `r` must rest before claiming in `p` at `now`: a fatigue break not
/// over, or a session at pacing's cap (`answering`: an answer about to be stored counts,
/// for "answer and next").
pub async fn break_due(
    s: &AppState,
    p: &ProjectRuntime,
    r: &Reviewer,
    answering: bool,
) -> Result<Option<BreakDue>, AppError> {
    let cap = p.policy.pacing().and_then(|x| x.max_tasks_per_session);
    if p.policy.fatigue().is_none() && cap.is_none() {
        return Ok(None);
    }
    let now = s.now();
    let rested = rested_until(s, p.id, r.id).await?;
    if let Some(until) = rested.filter(|u| *u > now) {
        return Ok(Some(BreakDue {
            until,
            reason: "the fatigue monitor called a break".into(),
        }));
    }
    let Some(cap) = cap else {
        return Ok(None);
    };
    let gap = p.policy.session_gap_ms();
    let answers = s.store.reviewer_answers(p.id, r.id, cap + 1).await?;
    let session = current(&answers, gap, now, rested);
    let done = session.len() as u64 + u64::from(answering);
    match session.last() {
        Some(last) if done >= u64::from(cap) => Ok(Some(BreakDue {
            until: last.answered_at + gap + 1,
            reason: format!("{cap} tasks in this session: the next session starts after a break"),
        })),
        _ => Ok(None),
    }
}

/// Refuses a claim while a break is due ([`break_due`]).
pub async fn check_claim(s: &AppState, p: &ProjectRuntime, r: &Reviewer) -> Result<(), AppError> {
    match break_due(s, p, r, false).await? {
        Some(b) => Err(AppError::BreakDue {
            retry_after_s: ((b.until - s.now()).max(0) as u64).div_ceil(1000).max(1),
            message: b.reason,
        }),
        None => Ok(()),
    }
}

/// A reviewer's current work session, as `GET …/reviewers` serves it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ReviewerSessionOut)]
pub struct SessionOut {
    /// When the session's first answer came (ms since the epoch).
    pub started_at: i64,
    pub answers: u64,
    /// From the first claim to the last answer.
    pub minutes: f64,
    pub median_seconds: Option<f64>,
    /// Answers faster than pacing's `min_seconds_per_task`.
    pub too_fast: u64,
    /// Answers with a correctness signal (gold, or a resolution others took part in).
    pub signals: u64,
    /// Share of those that were right.
    pub accuracy: Option<f64>,
}

/// A reviewer's fatigue state, as `GET …/reviewers` serves it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ReviewerFatigueOut)]
pub struct FatigueOut {
    /// When the monitor last fired (ms since the epoch); `null` when it never has.
    pub fatigued_since: Option<i64>,
    /// Whether that was in the current session.
    pub this_session: bool,
    /// Claims are refused until then (a fatigue break or pacing's session cap).
    pub break_until: Option<i64>,
}

impl From<SessionSummary> for SessionOut {
    fn from(x: SessionSummary) -> Self {
        Self {
            started_at: x.started_at,
            answers: x.answers,
            minutes: x.minutes,
            median_seconds: x.median_seconds,
            too_fast: x.too_fast,
            signals: x.signals,
            accuracy: x.accuracy(),
        }
    }
}

/// Reviewer `reviewer_id`'s current session and fatigue state in `p`.
pub async fn state(
    s: &AppState,
    p: &ProjectRuntime,
    reviewer_id: i64,
    fatigue_states: &[flywheel_store::FatigueState],
) -> Result<(Option<SessionOut>, FatigueOut), AppError> {
    let now = s.now();
    let answers = s.store.reviewer_answers(p.id, reviewer_id, READ_LIMIT).await?;
    let f = fatigue_states.iter().find(|f| f.reviewer_id == reviewer_id);
    let session = current(&answers, p.policy.session_gap_ms(), now, f.and_then(|f| f.break_until));
    let summary = fatigue::summarize(session);
    let mut break_until = f.and_then(|f| f.break_until).filter(|u| *u > now);
    if let (Some(cap), Some(x)) = (p.policy.pacing().and_then(|x| x.max_tasks_per_session), &summary)
        && x.answers >= u64::from(cap)
    {
        break_until = break_until.max(Some(x.last_answer_at + p.policy.session_gap_ms() + 1));
    }
    let out = FatigueOut {
        fatigued_since: f.map(|f| f.fatigued_at),
        this_session: f.is_some_and(|f| summary.as_ref().is_some_and(|x| x.started_at == f.session_started_at)),
        break_until,
    };
    Ok((summary.map(SessionOut::from), out))
}
