//! The console's pages. Data comes from the same use cases (`app`) the JSON API calls, so
//! a page shows what the API says; pages format it (numbers, ages, charts) and nothing
//! more. Lists of accounts and keys reuse the API's wire types.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use flywheel_store::Principal;
use serde::Deserialize;

use super::chart::{Series, time_chart};
use super::{Nav, Session, UiError, html};
use crate::app::webhooks as app_webhooks;
use crate::app::{AppState, ProjectRuntime, accounts, dashboard, projects};
use crate::error::ApiError;
use crate::http::accounts::{Account, KeyOut};
use crate::http::ts;
use crate::http::webhooks::{DeliveryOut, WebhookOut, delivery_out};

/// The queues a reviewer with `tiers` may open in a project: those the policy routes work
/// to at one of their tiers.
pub fn queues_for(p: &ProjectRuntime, tiers: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = p
        .policy
        .queues()
        .into_iter()
        .filter(|(_, t)| tiers.contains(t))
        .map(|(q, _)| q)
        .collect();
    out.dedup();
    out
}

/// A project on the home page: its queues with work open (and how much), and the names
/// of those with none right now.
struct ProjectQueues {
    name: String,
    busy: Vec<(String, i64)>,
    empty: Vec<String>,
}

/// Project `p`'s `queues` with their open tasks (gold left out) at the given `tiers`
/// (`None`: every tier), busiest first.
async fn queue_counts(
    s: &AppState,
    p: &ProjectRuntime,
    queues: Vec<String>,
    tiers: Option<&[u8]>,
) -> Result<ProjectQueues, UiError> {
    let depths = s.store.queue_depths(p.id, s.now(), Vec::new()).await?;
    let mut counts: Vec<(String, i64)> = queues.into_iter().map(|q| (q, 0)).collect();
    for d in depths.iter().filter(|d| tiers.is_none_or(|t| t.contains(&d.tier))) {
        match counts.iter_mut().find(|(q, _)| *q == d.queue) {
            Some((_, n)) => *n += d.open,
            // Work in a queue the policy no longer routes to (admins see it too).
            None if tiers.is_none() => counts.push((d.queue.clone(), d.open)),
            None => {}
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let (busy, empty): (Vec<_>, Vec<_>) = counts.into_iter().partition(|(_, n)| *n > 0);
    Ok(ProjectQueues {
        name: p.name.clone(),
        busy,
        empty: empty.into_iter().map(|(q, _)| q).collect(),
    })
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    nav: Nav,
    /// Reviewers: their projects and queues at their tiers.
    work: Vec<ProjectQueues>,
    /// Admins: every project and its queues.
    projects: Vec<ProjectQueues>,
    answers_today: i64,
}

pub async fn home(State(s): State<Arc<AppState>>, session: Session) -> Result<Response, UiError> {
    let mut page = Home {
        nav: session.nav(),
        work: vec![],
        projects: vec![],
        answers_today: 0,
    };
    match &session.principal {
        Principal::Admin => {
            for name in projects::list(&s).await?.into_iter().map(|p| p.name) {
                let p = s.project(&name).await?;
                let mut queues: Vec<String> = p.policy.queues().into_iter().map(|(q, _)| q).collect();
                queues.dedup();
                page.projects.push(queue_counts(&s, &p, queues, None).await?);
            }
        }
        Principal::Reviewer(r) => {
            for name in &r.project_names {
                let p = s.project(name).await?;
                let queues = queues_for(&p, &r.tiers);
                page.work.push(queue_counts(&s, &p, queues, Some(&r.tiers)).await?);
            }
            page.answers_today = accounts::answers_today(&s, r).await?;
        }
        Principal::Service { .. } => {
            return Err(ApiError::forbidden("service keys have no console").into());
        }
    }
    Ok(html(&page, &[]))
}

#[derive(Template)]
#[template(path = "work.html")]
struct Workbench {
    nav: Nav,
    project: String,
    queue: String,
    labels: Vec<String>,
    categories: Vec<String>,
    origins_json: String,
    lease_seconds: u32,
    /// The project's guidelines as safe HTML (`ui::guidelines`), empty for none.
    guidelines_html: String,
    /// Words the workbench highlights in an item's text, as JSON.
    highlight_json: String,
    /// The project's answer fields (JSON), rendered as controls by the workbench.
    fields_json: String,
    /// A multi-label project: the labels are toggles and an answer is the set toggled on.
    multi: bool,
}

pub async fn workbench_any(
    state: State<Arc<AppState>>,
    session: Session,
    Path(project): Path<String>,
) -> Result<Response, UiError> {
    open_workbench(state, session, project, None).await
}

pub async fn workbench(
    state: State<Arc<AppState>>,
    session: Session,
    Path((project, queue)): Path<(String, String)>,
) -> Result<Response, UiError> {
    open_workbench(state, session, project, Some(queue)).await
}

/// The work loop for one project (and queue): 403 unless the reviewer is granted the
/// project and one of the queue's tiers.
async fn open_workbench(
    State(s): State<Arc<AppState>>,
    session: Session,
    project: String,
    queue: Option<String>,
) -> Result<Response, UiError> {
    let p = s.project(&project).await?;
    let r = session.caller().require_reviewer(&p)?.clone();
    if let Some(q) = &queue
        && !queues_for(&p, &r.tiers).contains(q)
    {
        return Err(ApiError::forbidden(format!(
            "queue '{q}' of project '{project}' is not worked at your tiers ({:?})",
            r.tiers
        ))
        .into());
    }
    let spec = p.policy.workbench();
    let page = Workbench {
        nav: session.nav(),
        project: p.name.clone(),
        queue: queue.unwrap_or_default(),
        labels: p.labels.names(),
        categories: spec.failure_categories.clone(),
        origins_json: serde_json::to_string(&spec.image_origins).unwrap_or_else(|_| "[]".into()),
        lease_seconds: p.policy.lease_seconds(),
        guidelines_html: spec
            .guidelines
            .as_deref()
            .map(super::guidelines::render)
            .unwrap_or_default(),
        highlight_json: serde_json::to_string(&spec.highlight).unwrap_or_else(|_| "[]".into()),
        fields_json: p.fields.to_json().to_string(),
        multi: p.labels.is_multi(),
    };
    Ok(html(&page, &spec.image_origins))
}

struct QueueRow {
    name: String,
    open: i64,
    oldest: String,
    sla: String,
    breaches: Option<i64>,
    due_soon: i64,
    breached_total: i64,
    /// The share of the last day's tasks with a deadline closed by it, or "—".
    within_sla: String,
}

struct ReviewerRow {
    name: String,
    answers: i64,
    /// Answers since midnight UTC, skips included (as the workbench counts them).
    today: i64,
    gold: String,
    /// Agreement with the final label (which the reviewer's own answer helped make).
    agreement: String,
    /// Dawid–Skene's estimate of the reviewer's accuracy, from every answer.
    estimated: String,
    time_on_task: String,
    held: bool,
    held_reason: String,
    /// The current work session, in words ("—" when none).
    session: String,
    /// The fatigue badge's text: fired this session, and a break running ("" when neither).
    fatigue: String,
}

struct EventRow {
    /// The clock time (UTC), and the full timestamp for its title.
    time: String,
    at: String,
    kind: String,
    /// What happened, in a short sentence (`ui::events`).
    sentence: String,
    /// The reviewer who did it, if a reviewer did.
    reviewer: Option<String>,
    actor: String,
    item: Option<String>,
}

struct MonitorRow {
    name: String,
    value: String,
    threshold: String,
    firing: bool,
    basis: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    nav: Nav,
    project: String,
    live: Live,
    workload: super::workload::WorkloadPanel,
}

#[derive(Template)]
#[template(path = "live.html")]
struct Live {
    project: String,
    csrf: String,
    items: i64,
    auto: i64,
    review: i64,
    resolved: i64,
    open_tasks: i64,
    automation: String,
    audits: u64,
    audit_precision: String,
    thresholds: Vec<(String, String)>,
    queues: Vec<QueueRow>,
    /// Open tasks no active reviewer can claim, by queue and tier.
    stranded: Vec<StrandedRow>,
    reviewers: Vec<ReviewerRow>,
    kappa: String,
    alpha: String,
    events: Vec<EventRow>,
    monitors: Vec<MonitorRow>,
    chart_rate: String,
    chart_load: String,
    chart_novelty: String,
}

/// A queue and tier whose open tasks nobody can claim.
struct StrandedRow {
    queue: String,
    tier: u8,
    open: i64,
    oldest: String,
    message: String,
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    fragment: Option<String>,
    /// The workload panel's window: `1h`, `24h` (the default) or `7d`.
    #[serde(default)]
    window: Option<String>,
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.filter(|v| v.is_finite())
        .map_or("—".into(), |v| format!("{v:.digits$}"))
}

fn age(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

/// A project's operations dashboard (admin). `?fragment=live` answers only the part that
/// refreshes itself every few seconds; `?window=` picks the workload panel's window.
pub async fn dashboard(
    State(s): State<Arc<AppState>>,
    session: Session,
    Path(project): Path<String>,
    Query(q): Query<DashboardQuery>,
) -> Result<Response, UiError> {
    let caller = session.caller();
    caller.require_admin()?;
    let p = s.project(&project).await?;
    let d = dashboard::dashboard(&s, &p).await?;
    let (now, since, bucket) = (d.now, d.since, d.bucket_ms);
    let stats = &d.stats;
    let queues = d
        .queues
        .iter()
        .map(|q| QueueRow {
            name: q.name.clone(),
            open: q.open,
            // An empty queue has no oldest task: "—", not "0 s".
            oldest: if q.open == 0 { "—".into() } else { age(q.oldest_age_s) },
            sla: q.sla_seconds.map_or("—".into(), |s| age(f64::from(s))),
            breaches: q.breaches,
            due_soon: q.due_soon,
            breached_total: q.breached_total,
            within_sla: q.within_sla_24h.map_or("—".into(), |w| format!("{:.0}%", w * 100.0)),
        })
        .collect();

    let series = &d.activity;
    let at = |t: i64| t as f64;
    let rate: Vec<(f64, Option<f64>)> = series
        .iter()
        .map(|b| {
            let n = b.auto + b.review;
            (at(b.start), (n > 0).then(|| b.auto as f64 / n as f64))
        })
        .collect();
    let peak = series.iter().map(|b| b.review.max(b.answers)).max().unwrap_or(0).max(1) as f64;
    let chart_rate = time_chart(
        "automation rate",
        &[Series {
            name: "auto share",
            color: "#1f6feb",
            points: rate,
        }],
        (since, now),
        (0.0, 1.0),
    );
    let chart_load = time_chart(
        &format!("human load per {} min", bucket / 60_000),
        &[
            Series {
                name: "to review",
                color: "#d1242f",
                points: series.iter().map(|b| (at(b.start), Some(b.review as f64))).collect(),
            },
            Series {
                name: "answers",
                color: "#1a7f37",
                points: series.iter().map(|b| (at(b.start), Some(b.answers as f64))).collect(),
            },
        ],
        (since, now),
        (0.0, peak),
    );

    // Mean novelty of the items decided in each slice (those whose model gave one): a
    // rising line is a new kind of content.
    let chart_novelty = time_chart(
        "mean novelty of new items",
        &[Series {
            name: "novelty",
            color: "#8250df",
            points: series.iter().map(|b| (at(b.start), b.novelty)).collect(),
        }],
        (since, now),
        (0.0, 1.0),
    );

    let events = d
        .events
        .into_iter()
        .map(|e| EventRow {
            time: super::chart::clock(e.at, now - e.at > 86_400_000),
            at: ts(e.at),
            sentence: super::events::sentence(&e.kind, &e.data),
            kind: e.kind,
            reviewer: e.actor.strip_prefix("reviewer:").map(str::to_string),
            actor: e.actor,
            item: e.external_id,
        })
        .collect();
    let monitors = d
        .monitors
        .into_iter()
        .map(|m| MonitorRow {
            name: m.name,
            value: fmt(m.value, 3),
            threshold: fmt(m.threshold, 3),
            firing: m.firing,
            basis: m.basis,
        })
        .collect();
    let mut thresholds: Vec<(String, String)> = stats
        .thresholds
        .iter()
        .map(|(l, t)| (l.clone(), format!("{t:.3}")))
        .collect();
    thresholds.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let live = Live {
        project: p.name.clone(),
        csrf: session.csrf.clone(),
        items: stats.counts.items,
        auto: stats.counts.auto,
        review: stats.counts.review,
        resolved: stats.counts.resolved,
        open_tasks: stats.counts.open_tasks,
        automation: format!("{:.1}%", stats.automation_rate() * 100.0),
        audits: stats.audits,
        audit_precision: match (stats.audit.value, stats.audit.interval) {
            (Some(v), Some((lo, hi))) => format!("{v:.3} (95% CI {lo:.3}–{hi:.3})"),
            (Some(v), None) => format!("{v:.3}"),
            _ => "— (no audits yet)".into(),
        },
        thresholds,
        queues,
        stranded: stats
            .stranded
            .iter()
            .map(|w| StrandedRow {
                queue: w.queue.clone(),
                tier: w.tier,
                open: w.open,
                oldest: age(w.oldest_age_ms as f64 / 1000.0),
                message: w.sentence(),
            })
            .collect(),
        reviewers: d
            .reviewers
            .into_iter()
            .map(|r| ReviewerRow {
                today: d.answers_today.get(&r.name).copied().unwrap_or(0),
                estimated: fmt(r.ds_accuracy, 2),
                name: r.name,
                answers: r.answers,
                gold: match (r.gold_accuracy, r.gold_accuracy_interval) {
                    (Some(a), Some([lo, hi])) => format!("{a:.2} ({lo:.2}–{hi:.2}) of {}", r.gold_answers),
                    _ => "—".into(),
                },
                agreement: fmt(r.agreement_with_consensus, 2),
                time_on_task: r.median_time_on_task_s.map_or("—".into(), |t| format!("{t:.1} s")),
                held: r.held,
                held_reason: r.held_reason.unwrap_or_default(),
                session: r.session.as_ref().map_or("—".into(), |x| {
                    format!(
                        "{} answer{} · {:.0} min · median {} · {} too fast · accuracy {}",
                        x.answers,
                        if x.answers == 1 { "" } else { "s" },
                        x.minutes,
                        x.median_seconds.map_or("—".into(), |t| format!("{t:.1} s")),
                        x.too_fast,
                        fmt(x.accuracy, 2)
                    )
                }),
                fatigue: {
                    let mut words = Vec::new();
                    if r.fatigue.this_session
                        && let Some(at) = r.fatigue.fatigued_since
                    {
                        words.push(format!("fatigued since {}", ts(at)));
                    }
                    if let Some(until) = r.fatigue.break_until {
                        words.push(format!("break until {}", ts(until)));
                    }
                    words.join(", ")
                },
            })
            .collect(),
        kappa: fmt(d.agreement.as_ref().and_then(|a| a.headline().0), 3),
        alpha: fmt(d.agreement.as_ref().and_then(|a| a.headline().1), 3),
        events,
        monitors,
        chart_rate,
        chart_load,
        chart_novelty,
    };
    if q.fragment.as_deref() == Some("live") {
        return Ok(html(&live, &[]));
    }
    let workload = super::workload::panel(&s, &p, q.window.as_deref()).await?;
    Ok(html(
        &Dashboard {
            nav: session.nav(),
            project: p.name.clone(),
            live,
            workload,
        },
        &[],
    ))
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    nav: Nav,
    project: String,
    version: u32,
    policy: String,
    labels: Vec<String>,
    /// Every stored version, newest first.
    versions: Vec<VersionRow>,
}

/// One row of the policy's history.
struct VersionRow {
    version: u32,
    created_at: String,
    created_by: String,
}

/// The policy editor (admin): edit, check, back-test, save as a new version; its history
/// with a diff between any two versions and rollback.
pub async fn policy(
    State(s): State<Arc<AppState>>,
    session: Session,
    Path(project): Path<String>,
) -> Result<Response, UiError> {
    session.caller().require_admin()?;
    let p = s.project(&project).await?;
    let page = PolicyPage {
        nav: session.nav(),
        project: p.name.clone(),
        version: p.policy_version,
        policy: serde_json::to_string_pretty(&p.policy_json).unwrap_or_default(),
        labels: p.labels.names(),
        versions: projects::policy_versions(&s, &p)
            .await?
            .into_iter()
            .map(|v| VersionRow {
                version: v.version,
                created_at: ts(v.created_at),
                created_by: v.created_by,
            })
            .collect(),
    };
    Ok(html(&page, &[]))
}

#[derive(Template)]
#[template(path = "reviewers.html")]
struct ReviewersPage {
    nav: Nav,
    accounts: Vec<Account>,
    projects: Vec<String>,
}

/// Reviewers: create, grant tiers and projects, passwords, new keys (admin).
pub async fn reviewers(State(s): State<Arc<AppState>>, session: Session) -> Result<Response, UiError> {
    session.caller().require_admin()?;
    let accounts = accounts::reviewers(&s).await?.into_iter().map(Account::from).collect();
    let projects = projects::list(&s).await?.into_iter().map(|p| p.name).collect();
    Ok(html(
        &ReviewersPage {
            nav: session.nav(),
            accounts,
            projects,
        },
        &[],
    ))
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    nav: Nav,
    keys: Vec<KeyOut>,
    projects: Vec<String>,
}

/// Keys: list, create service keys, revoke (admin).
pub async fn keys(State(s): State<Arc<AppState>>, session: Session) -> Result<Response, UiError> {
    session.caller().require_admin()?;
    let keys = accounts::keys(&s).await?.into_iter().map(KeyOut::from).collect();
    let projects = projects::list(&s).await?.into_iter().map(|p| p.name).collect();
    Ok(html(
        &KeysPage {
            nav: session.nav(),
            keys,
            projects,
        },
        &[],
    ))
}

/// An endpoint and its latest attempts, as the webhooks page shows them.
struct EndpointView {
    hook: WebhookOut,
    deliveries: Vec<DeliveryOut>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    nav: Nav,
    project: String,
    endpoints: Vec<EndpointView>,
}

/// Attempts shown per endpoint on the webhooks page.
const DELIVERIES_SHOWN: usize = 20;

/// A project's webhook endpoints with their latest attempts (admin).
pub async fn webhooks(
    State(s): State<Arc<AppState>>,
    session: Session,
    Path(project): Path<String>,
) -> Result<Response, UiError> {
    session.caller().require_admin()?;
    let p = s.project(&project).await?;
    let now = s.now();
    let mut endpoints = Vec::new();
    for h in app_webhooks::list(&s, &p).await? {
        let deliveries = app_webhooks::deliveries(&s, &p, h.id, DELIVERIES_SHOWN).await?;
        endpoints.push(EndpointView {
            hook: WebhookOut::from(h, now),
            deliveries: deliveries.into_iter().map(delivery_out).collect(),
        });
    }
    let page = WebhooksPage {
        nav: session.nav(),
        project: p.name.clone(),
        endpoints,
    };
    Ok(html(&page, &[]))
}
