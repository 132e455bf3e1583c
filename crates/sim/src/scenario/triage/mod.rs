//! Clinical triage, prevent / detect / correct, end to end.
//!
//! Synthetic patient messages ([`messages`]) arrive at random (exponential gaps) over a
//! number of simulated weeks and are decided by the triage policy ([`policy`]): distress
//! keywords and red vital signs go to the `nurse` queue at once with a 5-minute SLA, a
//! conflict between the model, the keywords and the vital signs goes to review, nothing
//! suggesting an emergency is automated, and the rest is automated only above thresholds
//! calibrated to 0.995 precision. Nurse practitioners (simulated, working in parallel)
//! review every escalation and, where the model's suggestion was wrong, record the failure
//! category the message carries. The model retrains weekly (`"retrain": "weekly"`): the
//! scenario asks the server to train before every message, and the server trains only when
//! a week boundary has passed, so the model changes only at the start of each week.
//!
//! The run is a small discrete-event simulation on the server's clock: arrivals and each
//! nurse's answers are events in time order, and the clock moves to each before its
//! request, so which nurse takes which task, and when, depends on the seed alone.

pub mod messages;
pub mod policy;

use std::collections::{BTreeMap, HashMap};

use reqwest::Method;
use serde_json::{Value, json};

use self::messages::{CLASSES, FAILURE_CATEGORIES, Message};
use super::{Progress, Tick, ratio};
use crate::Error;
use crate::client::Client;
use crate::clock::Clock;
use crate::rng::Rng;

pub const WEEK_MS: i64 = 7 * 86_400_000;
/// Unix time 0 was a Thursday: weeks start on Monday, 00:00 UTC, four days later.
const MONDAY_MS: i64 = 4 * 86_400_000;

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Triage {
    pub seed: u64,
    pub weeks: usize,
    pub per_week: usize,
    /// Nurse practitioners on shift (all working in parallel; routine reviews take two,
    /// and a split a third).
    pub nurses: usize,
    /// How often a nurse's label is the truth (a mistake is one class off).
    pub accuracy: f64,
}

/// One message's story in the run.
#[derive(Debug, Clone, Default)]
struct Story {
    week: usize,
    arrived: i64,
    rule: String,
    auto: bool,
    /// Auto label, or the nurse's.
    final_label: Option<String>,
    answered: Option<i64>,
}

/// A nurse with the task in hand and when the answer goes in.
struct Busy {
    task: Value,
    until: i64,
    label: String,
    category: Option<&'static str>,
}

/// How long a review takes: a base by queue, more for hard messages.
fn review_ms(rng: &mut Rng, queue_nurse: bool, category: Option<&str>) -> i64 {
    let base = if queue_nurse { 90_000 } else { 150_000 };
    let extra = match category {
        Some("missing_context") => 300_000,
        Some("ambiguous_wording") => 240_000,
        Some("atypical_presentation") => 180_000,
        Some("symptom_misinterpretation") => 90_000,
        Some("misspelling") => 30_000,
        Some(_) => 60_000,
        None => 0,
    };
    base + extra + (rng.unit() * 60_000.0) as i64
}

/// The nurse's answer: the truth, or one class off; and the failure category when the
/// model's suggestion differs from it.
fn judge(rng: &mut Rng, m: &Message, suggested: &str, accuracy: f64) -> (String, Option<&'static str>) {
    let class = if rng.chance(accuracy) {
        m.class
    } else if m.class == 0 || (m.class < 3 && rng.chance(0.5)) {
        m.class + 1
    } else {
        m.class - 1
    };
    let label = CLASSES[class].to_string();
    let category = (suggested != label).then(|| m.hazard.map_or("other", |h| h.category()));
    (label, category)
}

pub async fn run(client: &Client, clock: &dyn Clock, run: &Triage, progress: Progress<'_>) -> Result<Value, Error> {
    if run.weeks == 0 || run.per_week == 0 || run.nurses == 0 {
        return Err(Error::Input(
            "weeks, messages per week and nurses are at least 1".into(),
        ));
    }
    let project = format!("triage-{}", run.seed);
    let labels: Vec<String> = CLASSES.iter().map(|c| c.to_string()).collect();
    client.create_project(&project, &labels, &policy::policy()).await?;
    let svc = client.service_key(&project).await?;
    let mut nurses = Vec::with_capacity(run.nurses);
    for i in 0..run.nurses {
        let name = format!("{project}-np{i}");
        // Every nurse may adjudicate (tier 2) a split she did not answer.
        nurses.push(client.reviewer(&name, &[1, 2], &[&project]).await?);
    }
    let msgs = messages::generate(run.seed, run.weeks * run.per_week);
    let by_id: HashMap<&str, usize> = msgs.iter().enumerate().map(|(i, m)| (m.id.as_str(), i)).collect();
    progress(Tick::Total(msgs.len() as u64));

    // Start on the next Monday, so the weeks are the server's schedule's weeks.
    let now = clock.now_ms();
    let start = now + (WEEK_MS - (now - MONDAY_MS).rem_euclid(WEEK_MS)) % WEEK_MS;
    clock.advance_ms(start - now);
    let mut rng = Rng::new(run.seed);
    let gap = WEEK_MS as f64 / run.per_week as f64;
    let mut arrivals = Vec::with_capacity(msgs.len());
    let mut t = start as f64;
    for _ in 0..msgs.len() {
        t += -gap * (1.0 - rng.unit()).ln();
        arrivals.push(t as i64);
    }
    let end = start + run.weeks as i64 * WEEK_MS;

    let mut stories: Vec<Story> = vec![Story::default(); msgs.len()];
    let mut busy: Vec<Option<Busy>> = (0..run.nurses).map(|_| None).collect();
    let mut retrains = Vec::new();
    let mut model_seen = -1i64;
    let mut next = 0usize;
    let mut next_monitor = start + 86_400_000;
    let mut monitor_checks = 0u64;
    loop {
        let arrival = arrivals.get(next).copied().filter(|a| *a < end);
        let answer = busy
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| (b.until, i)))
            .min();
        let at = match (arrival, answer) {
            (None, None) => break,
            (Some(a), Some((u, _))) => a.min(u),
            (Some(a), None) => a,
            (None, Some((u, _))) => u,
        };
        // Monitors once a simulated day: each crossing writes a `monitor` event.
        while next_monitor <= at {
            clock.advance_ms((next_monitor - clock.now_ms()).max(0));
            client
                .ok(
                    Method::GET,
                    &format!("/v1/projects/{project}/monitors"),
                    client.admin_key(),
                    None,
                )
                .await?;
            monitor_checks += 1;
            next_monitor += 86_400_000;
        }
        clock.advance_ms((at - clock.now_ms()).max(0));
        let now = clock.now_ms();
        let mut freed = Vec::new();
        if let Some((u, i)) = answer.filter(|(u, _)| *u == at) {
            let b = busy[i].take().expect("a busy nurse");
            let body = json!({
                "lease_id": b.task["lease_id"],
                "review_id": format!("{}-{}", b.task["task_id"], b.task["lease_id"]),
                "label": b.label,
                "failure_category": b.category,
            });
            let reply = client
                .ok(
                    Method::POST,
                    &format!("/v1/tasks/{}/reviews", b.task["task_id"]),
                    &nurses[i],
                    Some(&body),
                )
                .await?;
            let ext = b.task["item"]["external_id"].as_str().unwrap_or_default();
            if let Some(&k) = by_id.get(ext) {
                let s = &mut stories[k];
                // A nurse has seen the message at its first answer; its disposition is
                // the resolution (two agreeing nurses, or the adjudicator).
                s.answered.get_or_insert(u);
                if let Some(l) = reply["resolution"]["label"].as_str() {
                    s.final_label = Some(l.to_string());
                }
            }
            freed.push(i);
        } else {
            // An arrival: the model trains first if the schedule says so (the server
            // decides), then the message is submitted.
            let model = client.train(&project).await?;
            let seen = model["examples_seen"].as_i64().unwrap_or(0);
            if seen != model_seen {
                if model_seen >= 0 {
                    retrains.push(json!({
                        "week": (now - start) / WEEK_MS + 1,
                        "at_ms": now - start,
                        "examples_seen": seen,
                        "thresholds": model["thresholds"],
                    }));
                }
                model_seen = seen;
            }
            let m = &msgs[next];
            let d = client
                .submit(
                    &project,
                    &svc,
                    vec![json!({"external_id": m.id, "payload": {"text": m.text}, "attributes": m.attributes})],
                )
                .await?
                .pop()
                .unwrap_or(Value::Null);
            let auto = d["outcome"] == "auto";
            stories[next] = Story {
                week: ((now - start) / WEEK_MS) as usize,
                arrived: now,
                rule: d["rule"].as_str().unwrap_or_default().to_string(),
                auto,
                final_label: auto.then(|| d["label"].as_str().unwrap_or_default().to_string()),
                answered: None,
            };
            next += 1;
            progress(Tick::Step);
            freed.extend((0..run.nurses).filter(|i| busy[*i].is_none()));
        }
        // Free nurses take the next task, highest priority first (the server's order).
        for i in freed {
            let Some(task) = client.claim(&project, &nurses[i]).await? else {
                continue;
            };
            let ext = task["item"]["external_id"].as_str().unwrap_or_default();
            let k = *by_id
                .get(ext)
                .ok_or_else(|| Error::Unexpected(format!("a task for an unknown item {ext}")))?;
            // The model's suggestion, shown to the nurse (the policy shows it).
            let suggested = task["suggestion"]["label"].as_str().unwrap_or_default().to_string();
            let (label, category) = judge(&mut rng, &msgs[k], &suggested, run.accuracy);

            let took = review_ms(&mut rng, task["queue"] == "nurse", category);
            busy[i] = Some(Busy {
                task,
                until: now + took,
                label,
                category,
            });
        }
        if next.is_multiple_of(500) && arrival.is_some() {
            let done = &stories[..next];
            let auto = done.iter().filter(|s| s.auto).count();
            progress(Tick::Note(&format!(
                "week {} · automation {:.0}%",
                (now - start) / WEEK_MS + 1,
                100.0 * auto as f64 / next.max(1) as f64
            )));
        }
    }
    let submitted = next;
    let msgs = &msgs[..submitted];
    let stories = &stories[..submitted];

    // Figures.
    let acuity = |l: &str| CLASSES.iter().position(|c| *c == l);
    let mut weeks = Vec::new();
    let mut failure_weeks = Vec::new();
    for w in 0..run.weeks {
        let idx: Vec<usize> = (0..submitted).filter(|&i| stories[i].week == w).collect();
        let since = start + w as i64 * WEEK_MS;
        let report = client
            .ok(
                Method::GET,
                &format!(
                    "/v1/projects/{project}/workload?since={since}&until={}",
                    since + WEEK_MS
                ),
                client.admin_key(),
                None,
            )
            .await?;
        let mut categories = BTreeMap::new();
        for row in report["failure_category"].as_array().into_iter().flatten() {
            if let Some(k) = row["key"].as_str() {
                categories.insert(
                    k.to_string(),
                    json!({"count": row["answers"], "time_share": row["time_share"], "seconds": row["seconds"]}),
                );
            }
        }
        for c in FAILURE_CATEGORIES {
            categories
                .entry(c.to_string())
                .or_insert_with(|| json!({"count": 0, "time_share": 0.0, "seconds": 0.0}));
        }
        let answers: u64 = report["failure_category"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["answers"].as_u64())
            .sum();
        failure_weeks.push(json!({"week": w + 1, "answers": answers, "categories": categories}));
        let f = figures(msgs, stories, &idx, &acuity);
        weeks.push(json!({"week": w + 1, "figures": f}));
    }
    let all: Vec<usize> = (0..submitted).collect();
    let total = figures(msgs, stories, &all, &acuity);

    // Monitor events from the log.
    let mut monitor_events: BTreeMap<String, u64> = BTreeMap::new();
    let mut after = 0i64;
    loop {
        let page = client
            .ok(
                Method::GET,
                &format!("/v1/projects/{project}/events?after={after}&limit=1000"),
                client.admin_key(),
                None,
            )
            .await?;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            if e["kind"] == "monitor" && e["data"]["state"] == "firing" {
                *monitor_events
                    .entry(e["data"]["monitor"].as_str().unwrap_or_default().to_string())
                    .or_default() += 1;
            }
        }
        let cursor = page["next_cursor"].as_i64().unwrap_or(after);
        if events.is_empty() || cursor == after {
            break;
        }
        after = cursor;
    }

    Ok(json!({
        "scenario": "triage",
        "seed": run.seed,
        "weeks": run.weeks,
        "messages": submitted,
        "nurses": run.nurses,
        "nurse_accuracy": run.accuracy,
        "target_precision": policy::TARGET_PRECISION,
        "under_triage_auto": total["under_triage_auto"],
        "over_triage_rate": total["over_triage_rate"],
        "automation_rate": total["automation_rate"],
        "auto_precision_true": total["auto_precision_true"],
        "distress_escalations": total["distress_escalations"],
        "distress_escalated_within_sla": total["distress_escalated_within_sla"],
        "conflicts_detected": total["conflicts_detected"],
        "routes": total["routes"],
        "failure_categories": failure_weeks,
        "retrains": retrains,
        "monitor_checks": monitor_checks,
        "monitor_events": monitor_events,
        "by_week": weeks,
    }))
}

/// The safety figures over the messages `idx`.
fn figures(msgs: &[Message], stories: &[Story], idx: &[usize], acuity: &dyn Fn(&str) -> Option<usize>) -> Value {
    let n = idx.len() as u64;
    let count = |f: &dyn Fn(usize) -> bool| idx.iter().filter(|&&i| f(i)).count() as u64;
    let auto = count(&|i| stories[i].auto);
    let auto_right = count(&|i| stories[i].auto && stories[i].final_label.as_deref() == Some(msgs[i].label()));
    // An emergency resolved automatically as anything less urgent.
    let under_auto = count(&|i| stories[i].auto && msgs[i].class == 3);
    let finished = count(&|i| stories[i].final_label.is_some());
    let over = count(&|i| {
        stories[i]
            .final_label
            .as_deref()
            .and_then(acuity)
            .is_some_and(|a| a > msgs[i].class)
    });
    let distress: Vec<usize> = idx.iter().copied().filter(|&i| stories[i].rule == "distress").collect();
    let within = distress
        .iter()
        .filter(|&&i| {
            stories[i]
                .answered
                .is_some_and(|a| a - stories[i].arrived <= i64::from(policy::DISTRESS_SLA_SECONDS) * 1000)
        })
        .count() as u64;
    let mut routes: BTreeMap<&str, u64> = BTreeMap::new();
    for &i in idx {
        *routes.entry(stories[i].rule.as_str()).or_default() += 1;
    }
    json!({
        "messages": n,
        "emergencies": count(&|i| msgs[i].class == 3),
        "auto": auto,
        "automation_rate": ratio(auto, n),
        "auto_precision_true": ratio(auto_right, auto),
        "under_triage_auto": under_auto,
        "over_triage_rate": ratio(over, finished),
        "distress_escalations": distress.len(),
        "distress_escalated_within_sla": ratio(within, distress.len() as u64),
        "conflicts_detected": routes.get("conflict").copied().unwrap_or(0),
        "routes": routes,
    })
}
