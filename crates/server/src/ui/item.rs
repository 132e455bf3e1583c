//! Items in the console. The search (`/ui/projects/{p}/items?q=…`): the form and a page of
//! hits from `app::items::search`, what `GET /v1/projects/{p}/items` answers. One item's
//! page (`/ui/projects/{p}/items/{external_id}`): its payload, the decision that routed it
//! (rule, reasons, the prediction's scores), its tasks with their leases, the answers with
//! their reviewers, the resolution, and its events as sentences — `app::items::detail`,
//! what `GET /v1/projects/{p}/items/{id}` answers; leases and amendments are read from the
//! item's events, which hold them.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use flywheel_core::Event;
use flywheel_core::policy::Outcome;
use flywheel_store::EventRecord;

use super::{Nav, Session, UiError, html};
use crate::app::{AppState, accounts, items};
use crate::http::ts;

#[derive(Template)]
#[template(path = "item.html")]
struct ItemPage {
    nav: Nav,
    project: String,
    external_id: String,
    created_at: String,
    /// Pretty-printed JSON, escaped by the template.
    payload: String,
    attributes: String,
    outcome: String,
    rule: String,
    reasons: Vec<String>,
    policy_version: u32,
    model: String,
    scores: Vec<(String, String)>,
    tasks: Vec<TaskRow>,
    answers: Vec<AnswerRow>,
    resolution: Option<ResolutionRow>,
    events: Vec<EventRow>,
    /// The override form's choices: the project's labels, whether it declares answer
    /// fields, the queues its policy routes to, and the tiers it holds in them.
    labels: Vec<String>,
    has_fields: bool,
    queues: Vec<String>,
    max_tier: u8,
}

struct TaskRow {
    id: i64,
    stage: &'static str,
    queue: String,
    tier: u8,
    state: String,
    answered: String,
    due: String,
    reason: String,
    /// Each lease of the task: who, granted when, how it ended.
    leases: Vec<String>,
}

struct AnswerRow {
    reviewer: String,
    task_id: i64,
    answer: String,
    label: String,
    fields: String,
    reason: String,
    failure_category: String,
    note: String,
    claimed_at: String,
    answered_at: String,
    seconds: String,
}

struct ResolutionRow {
    label: String,
    source: &'static str,
    method: String,
    confidence: String,
    reviewers: String,
    at: String,
}

/// An event as a row: when, what, a sentence, who.
pub struct EventRow {
    pub at: String,
    pub kind: String,
    pub sentence: String,
    pub actor: String,
    pub task: String,
    /// The reviewer the event is about, when it names one (a lease, a change of answer).
    pub reviewer: Option<String>,
}

#[derive(Template)]
#[template(path = "items.html")]
struct SearchPage {
    nav: Nav,
    project: String,
    /// The project's labels and the states, the ones asked for marked.
    labels: Vec<Choice>,
    states: Vec<Choice>,
    q: String,
    reviewer: String,
    since: String,
    until: String,
    /// A parameter refused, said as the API says it; empty when the search ran.
    error: String,
    hits: Vec<HitRow>,
    /// The next page's address; empty on the last page.
    next: String,
}

/// An option of a select: its value, what it says, whether the request asked for it.
struct Choice {
    value: String,
    name: String,
    selected: bool,
}

struct HitRow {
    external_id: String,
    created_at: String,
    preview: String,
    outcome: String,
    rule: String,
    label: String,
    open_tasks: i64,
}

/// The payload as one line of at most 120 characters: its `text` when it has one.
fn preview(payload: &serde_json::Value) -> String {
    let text = match payload.get("text").and_then(|t| t.as_str()) {
        Some(t) => t.to_string(),
        None => payload.to_string(),
    };
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(120).collect::<String>())
    } else {
        line
    }
}

/// The item search (admin): the form, and a page of what it found.
pub async fn search(
    State(s): State<Arc<AppState>>,
    session: Session,
    Path(project): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    session.caller().require_admin()?;
    let p = s.project(&project).await?;
    let param = |k: &str| params.get(k).cloned().unwrap_or_default();
    let mut page = SearchPage {
        nav: session.nav(),
        project: p.name.clone(),
        labels: p
            .labels
            .names()
            .into_iter()
            .map(|l| Choice {
                selected: l == param("label"),
                value: l.clone(),
                name: l,
            })
            .collect(),
        states: [
            ("", "any"),
            ("open", "open"),
            ("resolved", "resolved"),
            ("unresolved", "unresolved"),
        ]
        .into_iter()
        .map(|(v, name)| Choice {
            value: v.into(),
            name: name.into(),
            selected: v == param("state"),
        })
        .collect(),
        q: param("q"),
        reviewer: param("reviewer"),
        since: param("since"),
        until: param("until"),
        error: String::new(),
        hits: Vec::new(),
        next: String::new(),
    };
    match items::SearchRequest::parse(&p, &params) {
        Err(e) => page.error = format!("{}: {}", e.field, e.message),
        Ok(req) => {
            let found = items::search(&s, &p, req).await?;
            page.hits = found
                .hits
                .iter()
                .map(|h| HitRow {
                    external_id: h.external_id.clone(),
                    created_at: ts(h.created_at),
                    preview: preview(&h.payload),
                    outcome: h.outcome.clone(),
                    rule: h.rule.clone(),
                    label: h.resolved_label.clone().unwrap_or_default(),
                    open_tasks: h.open_tasks,
                })
                .collect();
            if let Some(cursor) = found.next_cursor {
                let mut url = reqwest::Url::parse("http://console/").expect("a constant URL");
                {
                    let mut q = url.query_pairs_mut();
                    for k in ["q", "label", "reviewer", "state", "since", "until", "limit"] {
                        if let Some(v) = params.get(k).filter(|v| !v.is_empty()) {
                            q.append_pair(k, v);
                        }
                    }
                    q.append_pair("cursor", &cursor.to_string());
                }
                page.next = format!("/ui/projects/{}/items?{}", p.name, url.query().unwrap_or(""));
            }
        }
    }
    Ok(html(&page, &[]))
}

/// An item's page (admin).
pub async fn item(
    State(s): State<Arc<AppState>>,
    session: Session,
    Path((project, external_id)): Path<(String, String)>,
) -> Result<Response, UiError> {
    session.caller().require_admin()?;
    let p = s.project(&project).await?;
    let d = items::detail(&s, &p, &external_id).await?;
    let names: HashMap<i64, String> = accounts::reviewers(&s)
        .await?
        .into_iter()
        .map(|a| (a.reviewer.id, a.reviewer.name))
        .collect();
    let name = |id: i64| names.get(&id).cloned().unwrap_or_else(|| format!("reviewer #{id}"));

    // Leases, from the events that granted and ended them.
    let mut leases: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    let mut lease_task: HashMap<i64, i64> = HashMap::new();
    for e in &d.events {
        let (Some(task), Ok(ev)) = (e.task_id, Event::parse(&e.kind, e.data.clone())) else {
            continue;
        };
        let (lease, line) = match ev {
            Event::LeaseGranted(g) => {
                lease_task.insert(g.lease_id, task);
                (
                    g.lease_id,
                    format!("{} from {} until {}", name(g.reviewer_id), ts(e.at), ts(g.expires_at)),
                )
            }
            Event::LeaseExtended(x) => (x.lease_id, format!("extended to {}", ts(x.expires_at))),
            Event::LeaseExpired(x) => (x.lease_id, format!("expired at {}", ts(e.at))),
            Event::LeaseCancelled(x) => (x.lease_id, format!("cancelled at {}: {}", ts(e.at), x.reason)),
            Event::ReviewSubmitted(r) => (r.lease_id, format!("answered at {}", ts(e.at))),
            _ => continue,
        };
        let task = lease_task.get(&lease).copied().unwrap_or(task);
        let list = leases.entry(task).or_default();
        match list.iter_mut().find(|(id, _)| *id == lease) {
            Some((_, text)) => {
                text.push_str("; ");
                text.push_str(&line);
            }
            None => list.push((lease, line)),
        }
    }

    let (outcome, rule, reasons, policy_version) = (
        match &d.decision.outcome {
            Outcome::Auto { label } => format!("auto: {label}"),
            Outcome::Review { route } => format!(
                "review in '{}' at tier {} (overlap {}, priority {})",
                route.queue, route.tier, route.overlap, route.priority
            ),
        },
        d.decision.rule.clone(),
        d.decision.reasons.clone(),
        d.decision.policy_version,
    );
    let page = ItemPage {
        nav: session.nav(),
        project: p.name.clone(),
        external_id: d.external_id.clone(),
        created_at: ts(d.created_at),
        payload: serde_json::to_string_pretty(&d.payload).unwrap_or_default(),
        attributes: serde_json::to_string_pretty(&d.attributes).unwrap_or_default(),
        outcome,
        rule,
        reasons,
        policy_version,
        model: d.prediction.as_ref().map_or("none".into(), |p| {
            format!(
                "{}{}",
                p.model,
                p.version.as_ref().map_or(String::new(), |v| format!(" v{v}"))
            )
        }),
        scores: d.prediction.as_ref().map_or(Vec::new(), |p| {
            p.scores
                .iter()
                .map(|(l, s)| (l.clone(), format!("{:.1}%", s * 100.0)))
                .collect()
        }),
        tasks: d
            .tasks
            .iter()
            .map(|t| TaskRow {
                id: t.task_id,
                stage: t.stage.as_str(),
                queue: t.queue.clone(),
                tier: t.tier,
                state: t.state.clone(),
                answered: format!("{} of {}", t.answered, t.overlap),
                due: t.due_at.map_or("—".into(), ts),
                reason: t.reason.clone().unwrap_or_default(),
                leases: leases
                    .remove(&t.task_id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(_, l)| l)
                    .collect(),
            })
            .collect(),
        answers: d
            .reviews
            .iter()
            .map(|r| AnswerRow {
                reviewer: r.reviewer.clone(),
                task_id: r.task_id,
                answer: r.answer.clone(),
                label: r.label.clone().unwrap_or_default(),
                fields: r.fields.as_ref().map_or(String::new(), |f| f.to_string()),
                reason: r.reason.clone().unwrap_or_default(),
                failure_category: r.failure_category.clone().unwrap_or_default(),
                note: r.note.clone().unwrap_or_default(),
                claimed_at: ts(r.claimed_at),
                answered_at: ts(r.answered_at),
                seconds: format!("{:.1} s", (r.answered_at - r.claimed_at) as f64 / 1000.0),
            })
            .collect(),
        resolution: d.resolution.as_ref().map(|r| ResolutionRow {
            label: r.label.clone(),
            source: r.source.as_str(),
            method: r.method.clone(),
            confidence: format!("{:.2}", r.confidence),
            reviewers: r.reviewers.join(", "),
            at: ts(r.resolved_at),
        }),
        events: d.events.iter().map(|e| event_row(e, &name)).collect(),
        labels: p.labels.names(),
        has_fields: !p.fields.is_empty(),
        queues: {
            let mut q: Vec<String> = p.policy.queues().into_iter().map(|(q, _)| q).collect();
            q.dedup();
            q
        },
        max_tier: flywheel_core::policy::MAX_TIER,
    };
    Ok(html(&page, &[]))
}

/// An event of an item as a row, its data said as a sentence (reviewers by name).
pub fn event_row(e: &EventRecord, name: &dyn Fn(i64) -> String) -> EventRow {
    let (sentence, reviewer) = match Event::parse(&e.kind, e.data.clone()) {
        Ok(ev) => (sentence(&ev, name), reviewer_of(&ev).map(name)),
        Err(_) => (e.data.to_string(), None),
    };
    EventRow {
        reviewer,
        at: ts(e.at),
        kind: e.kind.clone(),
        sentence,
        actor: e.actor.clone(),
        task: e.task_id.map_or(String::new(), |t| t.to_string()),
    }
}

/// The reviewer an event names by id, if any.
fn reviewer_of(ev: &Event) -> Option<i64> {
    match ev {
        Event::LeaseGranted(g) => Some(g.reviewer_id),
        Event::LeaseExpired(x) => Some(x.reviewer_id),
        Event::LeaseCancelled(x) => Some(x.reviewer_id),
        Event::ReviewUndone(c) | Event::ReviewAmended(c) => Some(c.reviewer_id),
        Event::GoldAnswered(g) => Some(g.reviewer_id),
        _ => None,
    }
}

fn sentence(ev: &Event, name: &dyn Fn(i64) -> String) -> String {
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "—".into());
    match ev {
        Event::ItemDecided(d) => match &d.resolved {
            Some(l) => format!("decided auto: {l}"),
            None => format!("decided for review (task {:?})", d.tasks),
        },
        Event::LeaseGranted(g) => format!(
            "{} took the {} task (lease {}, until {})",
            name(g.reviewer_id),
            g.stage.as_str(),
            g.lease_id,
            ts(g.expires_at)
        ),
        Event::LeaseExtended(x) => format!("lease {} extended to {}", x.lease_id, ts(x.expires_at)),
        Event::LeaseExpired(x) => format!("{}'s lease {} expired", name(x.reviewer_id), x.lease_id),
        Event::LeaseCancelled(x) => {
            format!(
                "{}'s lease {} was cancelled: {}",
                name(x.reviewer_id),
                x.lease_id,
                x.reason
            )
        }
        Event::ReviewSubmitted(r) => format!(
            "answered {}{} ({}, {:.1} s){}",
            r.answer,
            r.label.as_ref().map_or(String::new(), |l| format!(" '{l}'")),
            r.outcome,
            r.time_on_task_ms as f64 / 1000.0,
            r.reason.as_ref().map_or(String::new(), |x| format!(": {x}"))
        ),
        Event::ReviewUndone(c) => format!(
            "{} undid their answer: {} → {}",
            name(c.reviewer_id),
            opt(&c.previous),
            c.label
        ),
        Event::ReviewAmended(c) => format!(
            "{} amended their answer: {} → {} ({})",
            name(c.reviewer_id),
            opt(&c.previous),
            c.label,
            c.reason
        ),
        Event::TaskOverlapIncreased(t) => format!("overlap raised to {}: {}", t.overlap, t.reason),
        Event::TaskEscalated(t) => format!("escalated to tier {} from task {}: {}", t.tier, t.from_task, t.reason),
        Event::AuditConfirmed(a) => format!("audit confirmed '{}'", a.label),
        Event::ItemResolved(r) | Event::ItemCorrected(r) => format!(
            "resolved '{}'{} — {}, {} (confidence {:.2}{})",
            r.label,
            r.previous.as_ref().map_or(String::new(), |p| format!(" (was '{p}')")),
            r.source.as_str(),
            r.method,
            r.confidence,
            if r.reviewers.is_empty() {
                String::new()
            } else {
                format!(", by {}", r.reviewers.join(", "))
            }
        ),
        Event::ItemOverridden(o) => match (&o.label, &o.queue) {
            (Some(label), _) => format!(
                "overridden: resolved '{label}'{} — {}",
                o.previous.as_ref().map_or(String::new(), |p| format!(" (was '{p}')")),
                o.reason
            ),
            (None, Some(queue)) => format!(
                "overridden: re-routed to '{queue}' at tier {} — {}",
                o.tier.unwrap_or(1),
                o.reason
            ),
            (None, None) => format!("overridden — {}", o.reason),
        },
        Event::SlaWarning(w) => format!("SLA warning in '{}' (due {})", w.queue, ts(w.due_at)),
        Event::SlaBreached(b) => format!(
            "SLA breached in '{}' (due {}){}",
            b.queue,
            ts(b.due_at),
            b.note.as_ref().map_or(String::new(), |n| format!(": {n}"))
        ),
        other => other.data().map_or_else(|_| String::new(), |d| d.to_string()),
    }
}
