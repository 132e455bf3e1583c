//! The crash campaign's audit: what survived the kills, read back through the public API
//! ([`gather`]), and the invariants it must satisfy ([`audit`], a pure function of the
//! [`Record`]).

use std::collections::{HashMap, HashSet};

use anyhow::{Context, bail};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::load::{Ctx, FeedReader};
use super::{ADMIN_KEY, LEASE_SECONDS, PROJECT, RETRY};

/// Open items whose detail (tasks and their counters) the audit reads, at most.
const DETAIL_LIMIT: usize = 1000;

/// Everything the audit looks at.
#[derive(Debug, Default, Clone)]
pub(super) struct Record {
    pub acked_items: Vec<String>,
    /// (review id, external id)
    pub acked_answers: Vec<(String, String)>,
    /// The export from the start: (external id, resolved, reviews).
    pub exported: Vec<(String, bool, usize)>,
    /// The label feed read from the start: (cursor, external id).
    pub labels: Vec<(i64, String)>,
    /// What the label reader that resumed across the kills got.
    pub labels_resumed: Vec<i64>,
    /// The event feed read from the start.
    pub events: Vec<AuditEvent>,
    pub events_resumed: Vec<i64>,
    /// `stats`: open tasks, and the open count of each queue.
    pub open_tasks: i64,
    pub queue_open: i64,
    /// Open items' details, from `GET …/items/{id}`.
    pub details: Vec<OpenItem>,
    pub lease_ms: i64,
}

/// An unresolved item: its tasks' counters and how many answers it holds.
#[derive(Debug, Clone)]
pub(super) struct OpenItem {
    pub external_id: String,
    /// (overlap, answered, open) of each task.
    pub tasks: Vec<(i64, i64, bool)>,
    pub reviews: usize,
}

#[derive(Debug, Clone)]
pub(super) struct AuditEvent {
    pub seq: i64,
    pub kind: String,
    pub task_id: Option<i64>,
    pub external_id: Option<String>,
    pub data: Value,
}

#[derive(Debug, Serialize)]
pub(super) struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// The first few violations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
}

/// Up to this many violations are named per check.
const SHOWN: usize = 5;

fn check(name: &'static str, found: Vec<String>) -> Check {
    Check {
        name,
        ok: found.is_empty(),
        violations: found.into_iter().take(SHOWN).collect(),
    }
}

/// The positions must be 1, 2, 3, … in order: no gap, no duplicate, no step back.
fn gap_free(positions: &[i64]) -> Vec<String> {
    let mut found = vec![];
    let mut prev = 0;
    for &p in positions {
        if p == prev {
            found.push(format!("position {p} twice"));
        } else if p < prev {
            found.push(format!("position {p} after {prev}"));
        } else if p > prev + 1 {
            found.push(format!("positions {}..{} missing before {p}", prev + 1, p - 1));
        }
        prev = p;
    }
    found
}

/// The reader that resumed across kills must have got exactly the positions the full read
/// has, up to where it stopped.
fn resumed_complete(full: &[i64], resumed: &[i64]) -> Vec<String> {
    let mut found = vec![];
    let mut seen = HashSet::new();
    for p in resumed {
        if !seen.insert(*p) {
            found.push(format!("position {p} read twice"));
        }
    }
    let last = resumed.iter().copied().max().unwrap_or(0);
    for p in full.iter().filter(|p| **p <= last) {
        if !seen.contains(p) {
            found.push(format!("position {p} missed"));
        }
    }
    let full: HashSet<i64> = full.iter().copied().collect();
    for p in resumed.iter().filter(|p| !full.contains(p)) {
        found.push(format!("position {p} read but not in the feed"));
    }
    found
}

fn counts<'a>(ids: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for id in ids {
        *m.entry(id).or_insert(0) += 1;
    }
    m
}

/// Checks the record; one entry per invariant, `ok` or with the violations found.
pub(super) fn audit(r: &Record) -> Vec<Check> {
    let mut out = vec![];

    // A campaign where nothing was acknowledged or read would pass every check below.
    let mut found = vec![];
    for (what, n) in [
        ("items acknowledged", r.acked_items.len()),
        ("answers acknowledged", r.acked_answers.len()),
        ("labels read by the resumed reader", r.labels_resumed.len()),
        ("events read by the resumed reader", r.events_resumed.len()),
    ] {
        if n == 0 {
            found.push(format!("no {what}"));
        }
    }
    out.push(check("load_reached_the_server", found));

    // Items: every acknowledged id exported once; no id exported twice.
    let exported = counts(r.exported.iter().map(|(id, ..)| id.as_str()));
    let mut found: Vec<String> = r
        .acked_items
        .iter()
        .filter_map(|id| match exported.get(id.as_str()) {
            None => Some(format!("item {id} acknowledged but missing")),
            _ => None,
        })
        .collect();
    let mut twice: Vec<_> = exported.iter().filter(|(_, n)| **n > 1).collect();
    twice.sort();
    found.extend(twice.iter().map(|(id, n)| format!("item {id} stored {n} times")));
    out.push(check("items_present_once", found));

    // Answers: every acknowledged review id submitted once, and each item's stored answers
    // are the answers its events record.
    let submitted: Vec<&AuditEvent> = r.events.iter().filter(|e| e.kind == "review.submitted").collect();
    let by_review = counts(submitted.iter().filter_map(|e| e.data["review_id"].as_str()));
    let mut found = vec![];
    for (review, item) in &r.acked_answers {
        match by_review.get(review.as_str()) {
            None => found.push(format!("answer {review} (item {item}) acknowledged but not stored")),
            Some(1) => {}
            Some(n) => found.push(format!("answer {review} stored {n} times")),
        }
    }
    let mut again: Vec<_> = by_review.iter().filter(|(_, n)| **n > 1).collect();
    again.sort();
    let acked: HashSet<&str> = r.acked_answers.iter().map(|(id, _)| id.as_str()).collect();
    found.extend(
        again
            .iter()
            .filter(|(id, _)| !acked.contains(**id))
            .map(|(id, n)| format!("answer {id} stored {n} times")),
    );
    let per_item = counts(submitted.iter().filter_map(|e| e.external_id.as_deref()));
    for (id, _, reviews) in &r.exported {
        let events = per_item.get(id.as_str()).copied().unwrap_or(0);
        if events != *reviews {
            found.push(format!(
                "item {id}: {reviews} answers stored, {events} in the event feed"
            ));
        }
    }
    out.push(check("answers_stored_once", found));

    let seqs: Vec<i64> = r.events.iter().map(|e| e.seq).collect();
    out.push(check("event_feed_gap_free", gap_free(&seqs)));
    out.push(check(
        "event_reader_resumed_complete",
        resumed_complete(&seqs, &r.events_resumed),
    ));
    let cursors: Vec<i64> = r.labels.iter().map(|l| l.0).collect();
    let mut found = gap_free(&cursors);
    let labelled: HashSet<&str> = r.labels.iter().map(|l| l.1.as_str()).collect();
    found.extend(
        r.exported
            .iter()
            .filter(|(id, resolved, _)| *resolved && !labelled.contains(id.as_str()))
            .map(|(id, ..)| format!("item {id} resolved but not in the label feed")),
    );
    out.push(check("label_feed_gap_free", found));
    out.push(check(
        "label_reader_resumed_complete",
        resumed_complete(&cursors, &r.labels_resumed),
    ));

    // Leases, replayed from the event feed: a grant while another lease of the task is
    // still live (not answered, cancelled or expired, and not past its expiry at the time
    // of the grant) is a task leased twice.
    let mut live: HashMap<i64, (i64, i64)> = HashMap::new(); // lease → (task, expires_at)
    let mut found = vec![];
    for e in &r.events {
        let lease = e.data["lease_id"].as_i64();
        match (e.kind.as_str(), lease, e.task_id) {
            ("lease.granted", Some(l), Some(task)) => {
                let expires = e.data["expires_at"].as_i64().unwrap_or(0);
                let granted_at = expires - r.lease_ms;
                for (other, (t, until)) in &live {
                    if *t == task && *until > granted_at {
                        found.push(format!(
                            "task {task}: lease {l} granted (event {}) while lease {other} was live",
                            e.seq
                        ));
                    }
                }
                live.insert(l, (task, expires));
            }
            ("lease.extended", Some(l), _) => {
                if let Some(v) = live.get_mut(&l) {
                    v.1 = e.data["expires_at"].as_i64().unwrap_or(v.1);
                }
            }
            ("lease.cancelled" | "lease.expired" | "review.submitted", Some(l), _) => {
                live.remove(&l);
            }
            _ => {}
        }
    }
    out.push(check("no_task_leased_twice", found));

    // Counters: the open tasks the stats count are the items not resolved yet (one review
    // task each in this campaign's policy), and each open task's answers are fewer than
    // its overlap and match the item's stored answers.
    let unresolved = r.exported.iter().filter(|(_, resolved, _)| !resolved).count() as i64;
    let mut found = vec![];
    if r.open_tasks != unresolved {
        found.push(format!(
            "stats count {} open tasks; {unresolved} items are unresolved",
            r.open_tasks
        ));
    }
    if r.queue_open != r.open_tasks {
        found.push(format!(
            "the queue counts {} open; stats {} open tasks",
            r.queue_open, r.open_tasks
        ));
    }
    for OpenItem {
        external_id: id,
        tasks,
        reviews,
    } in &r.details
    {
        let answered: i64 = tasks.iter().map(|t| t.1).sum();
        if answered != *reviews as i64 {
            found.push(format!("item {id}: tasks count {answered} answers, {reviews} stored"));
        }
        if !tasks.iter().any(|t| t.2) {
            found.push(format!("item {id}: unresolved without an open task"));
        }
        for (overlap, answered, open) in tasks {
            if *open && answered >= overlap {
                found.push(format!("item {id}: an open task with {answered} of {overlap} answers"));
            }
        }
    }
    out.push(check("open_task_counters", found));
    out
}

/// Reads the rest of what the audit needs (export, stats, open items' details) and puts
/// it beside what the clients kept.
pub(super) async fn gather(
    ctx: &Ctx,
    all_labels: FeedReader,
    all_events: FeedReader,
    labels: FeedReader,
    events: FeedReader,
) -> anyhow::Result<Record> {
    let export = loop {
        let base = ctx.url.read().expect("url").clone();
        let r = ctx
            .http
            .get(format!("{base}/v1/projects/{PROJECT}/export?format=jsonl"))
            .bearer_auth(&ctx.svc)
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => break r.text().await?,
            Ok(r) => bail!("export: {}", r.status()),
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    };
    let mut exported = vec![];
    for line in export.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).context("an export line")?;
        exported.push((
            v["external_id"].as_str().unwrap_or_default().to_string(),
            !v["resolution"].is_null(),
            v["reviews"].as_array().map_or(0, Vec::len),
        ));
    }
    let stats = ctx
        .until_answered(Method::GET, &format!("/v1/projects/{PROJECT}/stats"), ADMIN_KEY, None)
        .await
        .context("stats")?;
    let mut details = vec![];
    let mut open: Vec<&String> = exported.iter().filter(|e| !e.1).map(|e| &e.0).collect();
    open.sort();
    for id in open.into_iter().take(DETAIL_LIMIT) {
        let d = ctx
            .until_answered(
                Method::GET,
                &format!("/v1/projects/{PROJECT}/items/{id}"),
                ADMIN_KEY,
                None,
            )
            .await
            .with_context(|| format!("item {id}"))?;
        let tasks = d["tasks"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        (
                            t["overlap"].as_i64().unwrap_or(0),
                            t["answered"].as_i64().unwrap_or(0),
                            t["state"] == "open",
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        details.push(OpenItem {
            external_id: id.clone(),
            tasks,
            reviews: d["reviews"].as_array().map_or(0, Vec::len),
        });
    }
    let ledger = ctx.ledger.lock().expect("ledger");
    Ok(Record {
        acked_items: ledger.items.clone(),
        acked_answers: ledger.answers.clone(),
        exported,
        labels: all_labels
            .rows
            .iter()
            .map(|r| {
                (
                    r["cursor"].as_i64().unwrap_or(0),
                    r["external_id"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        labels_resumed: labels.positions,
        events: all_events
            .rows
            .into_iter()
            .map(|mut e| AuditEvent {
                seq: e["seq"].as_i64().unwrap_or(0),
                kind: e["kind"].as_str().unwrap_or_default().to_string(),
                task_id: e["task_id"].as_i64(),
                external_id: e["external_id"].as_str().map(str::to_string),
                data: e["data"].take(),
            })
            .collect(),
        events_resumed: events.positions,
        open_tasks: stats["open_tasks"].as_i64().unwrap_or(-1),
        queue_open: stats["queues"]
            .as_object()
            .map_or(0, |q| q.values().filter_map(|v| v["open"].as_i64()).sum()),
        details,
        lease_ms: LEASE_SECONDS * 1000,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(seq: i64, kind: &str, task: i64, item: &str, data: Value) -> AuditEvent {
        AuditEvent {
            seq,
            kind: kind.into(),
            task_id: Some(task),
            external_id: Some(item.into()),
            data,
        }
    }

    /// A campaign's record where everything held: two items, one auto (a label at once),
    /// one reviewed (lease, answer, label).
    fn sound() -> Record {
        Record {
            acked_items: vec!["a".into(), "b".into()],
            acked_answers: vec![("r1".into(), "b".into())],
            exported: vec![("a".into(), true, 0), ("b".into(), true, 1)],
            labels: vec![(1, "a".into()), (2, "b".into())],
            labels_resumed: vec![1, 2],
            events: vec![
                event(1, "item.decided", 0, "a", json!({})),
                event(2, "item.decided", 1, "b", json!({"tasks": [1]})),
                event(3, "lease.granted", 1, "b", json!({"lease_id": 7, "expires_at": 20_000})),
                event(4, "review.submitted", 1, "b", json!({"lease_id": 7, "review_id": "r1"})),
                event(5, "lease.granted", 1, "b", json!({"lease_id": 8, "expires_at": 21_000})),
            ],
            events_resumed: vec![1, 2, 3, 4],
            open_tasks: 0,
            queue_open: 0,
            details: vec![],
            lease_ms: 10_000,
        }
    }

    fn failed(r: &Record) -> Vec<(&'static str, Vec<String>)> {
        audit(r)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| (c.name, c.violations))
            .collect()
    }

    #[test]
    fn a_sound_record_passes() {
        assert_eq!(failed(&sound()), vec![]);
    }

    #[test]
    fn a_campaign_without_load_fails() {
        let r = Record {
            lease_ms: 10_000,
            ..Record::default()
        };
        assert_eq!(
            failed(&r),
            vec![(
                "load_reached_the_server",
                vec![
                    "no items acknowledged".into(),
                    "no answers acknowledged".into(),
                    "no labels read by the resumed reader".into(),
                    "no events read by the resumed reader".into()
                ]
            )]
        );
    }

    #[test]
    fn a_missing_or_duplicated_item_fails() {
        let mut r = sound();
        r.acked_items.push("c".into());
        r.exported.push(("a".into(), true, 0));
        assert_eq!(
            failed(&r),
            vec![(
                "items_present_once",
                vec!["item c acknowledged but missing".into(), "item a stored 2 times".into()]
            )]
        );
    }

    #[test]
    fn a_lost_or_doubled_answer_fails() {
        let mut r = sound();
        r.acked_answers.push(("r2".into(), "a".into()));
        assert_eq!(failed(&r)[0].0, "answers_stored_once");
        let mut r = sound();
        r.events.push(event(
            6,
            "review.submitted",
            1,
            "b",
            json!({"lease_id": 8, "review_id": "r1"}),
        ));
        let f = failed(&r);
        assert_eq!(f[0].0, "answers_stored_once");
        assert!(f[0].1.contains(&"answer r1 stored 2 times".to_string()), "{f:?}");
    }

    #[test]
    fn a_gap_or_duplicate_in_a_feed_fails() {
        let mut r = sound();
        r.events.remove(2);
        assert!(failed(&r).iter().any(
            |(name, v)| *name == "event_feed_gap_free" && v == &vec!["positions 3..3 missing before 4".to_string()]
        ));
        let mut r = sound();
        r.labels.insert(1, (1, "a".into()));
        assert_eq!(
            failed(&r),
            vec![("label_feed_gap_free", vec!["position 1 twice".into()])]
        );
    }

    #[test]
    fn a_resumed_reader_that_skipped_or_repeated_fails() {
        let mut r = sound();
        r.events_resumed = vec![1, 3, 4];
        assert_eq!(
            failed(&r),
            vec![("event_reader_resumed_complete", vec!["position 2 missed".into()])]
        );
        let mut r = sound();
        r.labels_resumed = vec![1, 1, 2];
        assert_eq!(
            failed(&r),
            vec![("label_reader_resumed_complete", vec!["position 1 read twice".into()])]
        );
    }

    #[test]
    fn a_task_leased_twice_fails() {
        let mut r = sound();
        // Lease 9 granted at 11.5 s while lease 8 (granted at 11 s) runs to 21 s.
        r.events.push(event(
            6,
            "lease.granted",
            1,
            "b",
            json!({"lease_id": 9, "expires_at": 21_500}),
        ));
        assert_eq!(
            failed(&r),
            vec![(
                "no_task_leased_twice",
                vec!["task 1: lease 9 granted (event 6) while lease 8 was live".into()]
            )]
        );
        // Granted after lease 8's expiry time, it is not a second lease.
        r.events[5].data["expires_at"] = json!(31_500);
        assert_eq!(failed(&r), vec![]);
        // Nor after lease 8 was cancelled.
        r.events[5].data["expires_at"] = json!(21_500);
        r.events
            .insert(5, event(6, "lease.cancelled", 1, "b", json!({"lease_id": 8})));
        r.events[6].seq = 7;
        assert_eq!(failed(&r), vec![]);
    }

    #[test]
    fn counters_that_disagree_fail() {
        let mut r = sound();
        r.exported[1].1 = false;
        r.open_tasks = 1;
        r.queue_open = 1;
        r.details = vec![OpenItem {
            external_id: "b".into(),
            tasks: vec![(1, 1, true)],
            reviews: 1,
        }];
        let f = failed(&r);
        assert_eq!(
            f,
            vec![(
                "open_task_counters",
                vec!["item b: an open task with 1 of 1 answers".into()]
            )]
        );
        r.open_tasks = 0;
        assert_eq!(failed(&r)[0].1[0], "stats count 0 open tasks; 1 items are unresolved");
    }
}
