//! The event log as people read it: one short sentence per event ("ana labelled it spam
//! (resolved)", "escalated to tier 2: unsure"), from the event's typed data
//! (`flywheel_core::event::Event`). An event this module does not know, or whose data
//! does not parse, reads as its fields (`key: value, …`), never as raw JSON.

use flywheel_core::event::Event;
use flywheel_core::sla::SlaAction;
use serde_json::Value;

/// A short sentence saying what an event of `kind` with `data` did.
pub fn sentence(kind: &str, data: &Value) -> String {
    let Ok(e) = Event::parse(kind, data.clone()) else {
        return fields(data);
    };
    match e {
        Event::ItemDecided(d) => match (d.resolved, d.tasks.is_empty()) {
            (Some(label), _) => format!("decided automatically: {label}{}", rule(d.decision.as_ref())),
            (None, false) => format!("sent to review{}", rule(d.decision.as_ref())),
            (None, true) => format!("stored{}", rule(d.decision.as_ref())),
        },
        Event::LeaseGranted(l) => format!("claimed ({} task)", l.stage.as_str()),
        Event::LeaseExtended(_) => "lease extended".into(),
        Event::LeaseCancelled(l) => format!("lease cancelled: {}", l.reason),
        Event::LeaseExpired(_) => "lease expired: the task went back to its queue".into(),
        Event::ReviewSubmitted(r) => {
            let what = match (r.answer.as_str(), &r.label, &r.reason) {
                ("label", Some(l), _) => format!("labelled it {l}"),
                ("escalate", _, Some(why)) => format!("escalated it: {why}"),
                ("skip", _, _) => "skipped it".to_string(),
                (other, _, _) => other.to_string(),
            };
            let category = r
                .failure_category
                .map(|c| format!(", category {c}"))
                .unwrap_or_default();
            format!(
                "{what}{category} ({}; {:.1} s)",
                r.outcome,
                r.time_on_task_ms as f64 / 1000.0
            )
        }
        Event::ReviewUndone(c) => format!(
            "undid an answer: {} → {}",
            c.previous.as_deref().unwrap_or("escalation"),
            c.label
        ),
        Event::ReviewAmended(c) => format!(
            "amended an answer: {} → {} ({})",
            c.previous.as_deref().unwrap_or("escalation"),
            c.label,
            c.reason
        ),
        Event::TaskOverlapIncreased(t) => format!("asked for {} answers: {}", t.overlap, t.reason),
        Event::TaskEscalated(t) => format!("escalated to tier {}: {}", t.tier, t.reason),
        Event::AuditConfirmed(a) => format!("audit confirmed {}", a.label),
        Event::ItemResolved(r) => format!(
            "resolved as {} by {} ({}, confidence {:.2})",
            r.label,
            if r.reviewers.is_empty() {
                "the model".to_string()
            } else {
                r.reviewers.join(", ")
            },
            r.method,
            r.confidence
        ),
        Event::ItemCorrected(r) => format!(
            "corrected {} → {} ({})",
            r.previous.as_deref().unwrap_or("—"),
            r.label,
            r.method
        ),
        Event::GoldAnswered(g) => format!(
            "gold answer {} ({} of {} right so far)",
            if g.correct { "right" } else { "wrong" },
            g.gold_correct,
            g.gold_answers
        ),
        Event::GoldAdded(g) => format!("{} gold items added", g.added),
        Event::PolicyUpdated(p) => format!("policy v{} stored", p.policy_version),
        Event::ProjectCreated(p) => format!("project {} created with labels {}", p.name, p.labels.join(", ")),
        Event::KeyCreated(k) => format!("{} key created", k.scope),
        Event::KeyRevoked(k) => format!("{} key {}… revoked", k.scope, k.key),
        Event::ReviewerHeld(h) => format!("{} held: {}", h.reviewer, h.reason),
        Event::ReviewerReleased(r) => format!("{} released", r.reviewer),
        Event::SlaWarning(w) => format!(
            "due soon in {} (tier {}), at {}",
            w.queue,
            w.tier,
            super::chart::clock(w.due_at, false)
        ),
        Event::SlaBreached(b) => format!(
            "SLA breached in {} (tier {}){}",
            b.queue,
            b.tier,
            match b.applied {
                SlaAction::None => "",
                SlaAction::Escalate => ": escalated",
                SlaAction::Auto => ": resolved with the model's label",
            }
        ),
        Event::Monitor(m) => format!(
            "monitor {} {}{}",
            m.monitor,
            m.state,
            m.value.map(|v| format!(" at {v:.3}")).unwrap_or_default()
        ),
        Event::ThresholdsChanged(t) => {
            let to: Vec<String> = t.to.iter().map(|(l, v)| format!("{l} ≥ {v:.3}")).collect();
            format!(
                "thresholds now {}",
                if to.is_empty() { "none".into() } else { to.join(", ") }
            )
        }
        Event::ModelSnapshot(m) => format!("model v{} saved ({} examples)", m.version, m.examples_seen),
        _ => fields(data),
    }
}

/// ` by rule "name"`, when the decision names its rule.
fn rule(decision: Option<&Value>) -> String {
    decision
        .and_then(|d| d.get("rule"))
        .and_then(Value::as_str)
        .map(|r| format!(" by rule \"{r}\""))
        .unwrap_or_default()
}

/// An event's data as `key: value` pairs, long values cut: the fallback sentence.
fn fields(data: &Value) -> String {
    let Some(m) = data.as_object() else {
        return short(&data.to_string());
    };
    let parts: Vec<String> = m
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {}", short(s)),
            other => format!("{k}: {}", short(&other.to_string())),
        })
        .collect();
    short(&parts.join(", "))
}

fn short(s: &str) -> String {
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_events_read_as_sentences_and_others_as_fields() {
        let e = sentence(
            "review.submitted",
            &json!({"review_id": "r1", "lease_id": 3, "answer": "label", "label": "spam",
                    "outcome": "resolved", "time_on_task_ms": 4200}),
        );
        assert_eq!(e, "labelled it spam (resolved; 4.2 s)");
        let e = sentence(
            "task.escalated",
            &json!({"from_task": 3, "tier": 2, "reason": "needs a policy call"}),
        );
        assert_eq!(e, "escalated to tier 2: needs a policy call");
        let e = sentence("no.such", &json!({"a": 1, "b": "x", "c": null}));
        assert_eq!(e, "a: 1, b: x");
        assert!(!sentence("no.such", &json!({"t": "y".repeat(500)})).contains(&"y".repeat(200)));
    }
}
