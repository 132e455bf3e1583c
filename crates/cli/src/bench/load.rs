//! The load: a bench project and its reviewers, items written by hand for a cheap client,
//! and the loops that send one kind of request until the deadline, each timing what it
//! sends in a [`Recorder`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use flywheel_sim::Client as Api;
use serde_json::{Value, json};

use super::Recorder;

/// A fresh project with the three-rule policy, and a service key for it.
pub(super) async fn bench_project(api: &Api, name: &str) -> anyhow::Result<String> {
    api.create_project(
        name,
        &["ham".into(), "spam".into()],
        &json!({"rules": [
            {"name": "urgent", "when": "payload.text.contains('urgent')", "action": "review", "queue": "urgent", "tier": 2, "priority": 10},
            {"name": "confident", "when": "confidence >= 0.9", "action": "auto"},
            {"name": "uncertain", "when": "true", "action": "review", "queue": "standard", "tier": 1}],
            "lease_seconds": 600}),
    )
    .await?;
    Ok(api.service_key(name).await?)
}

/// `n` tier-1 reviewers of `project`; their keys.
pub(super) async fn bench_reviewers(api: &Api, project: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        keys.push(api.reviewer(&format!("{project}-r{i}"), &[1], &[project]).await?);
    }
    Ok(keys)
}

/// The spam score of item `id`: with `spread`, spread over [0, 1) so that the policy sends
/// about 60% of ids to auto; otherwise 0.5, which it sends to review (`uncertain`).
fn spam_score(id: u64, spread: bool) -> f64 {
    if spread {
        (id.wrapping_mul(2654435761) % 1000) as f64 / 1000.0
    } else {
        0.5
    }
}

/// Appends item `id` as JSON. Written by hand: the client shares the machine's two cores
/// with the server, so it should spend as little as it can (building a `serde_json::Value`
/// per item and serialising it cost the import's client ~3.3 µs an item; this ~0.6 µs).
fn write_item(out: &mut String, id: u64, spread: bool) {
    use std::fmt::Write;
    let spam = spam_score(id, spread);
    let _ = write!(
        out,
        r#"{{"external_id":"b{id}","payload":{{"text":"message number {id}"}},"prediction":{{"model":"bench","version":"1","scores":{{"ham":{},"spam":{spam}}}}}}}"#,
        1.0 - spam
    );
}

/// A request body of `n` fresh items.
fn items_body(n: usize, spread: bool) -> String {
    let mut body = String::with_capacity(n * 160 + 16);
    body.push_str(r#"{"items":["#);
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        write_item(&mut body, NEXT_ID.fetch_add(1, Ordering::Relaxed), spread);
    }
    body.push_str("]}");
    body
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

pub(super) async fn decide_loop(api: Api, worker: usize, svc: String, project: String, until: Instant) -> Recorder {
    let mut rec = Recorder::default();
    let url = format!("{}/v1/projects/{project}/items", api.node(worker));
    let auth = format!("Bearer {svc}");
    while Instant::now() < until {
        let body = items_body(1, true);
        let t = Instant::now();
        let req = api
            .http
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(body);
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                rec.ok("decide", t, 1);
            }
            _ => rec.err("decide"),
        }
    }
    rec
}

pub(super) async fn import_loop(
    api: Api,
    worker: usize,
    svc: String,
    project: String,
    until: Instant,
    batches: Option<usize>,
    batch: usize,
) -> Recorder {
    let mut rec = Recorder::default();
    let url = format!("{}/v1/projects/{project}/items", api.node(worker));
    let mut done = 0;
    while Instant::now() < until && batches.is_none_or(|b| done < b) {
        let body = items_body(batch, batches.is_none());
        let t = Instant::now();
        let req = api
            .http
            .post(&url)
            .bearer_auth(&svc)
            .header("content-type", "application/json")
            .body(body);
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                rec.ok("batch", t, batch as u64);
            }
            _ => rec.err("batch"),
        }
        done += 1;
    }
    rec
}

pub(super) async fn review_loop(api: Api, worker: usize, key: String, project: String, until: Instant) -> Recorder {
    let mut rec = Recorder::default();
    let node = api.node(worker).to_string();
    let claim_url = format!("{node}/v1/projects/{project}/claim");
    let mut n = 0u64;
    while Instant::now() < until {
        let cycle = Instant::now();
        let Some(task) = claim_once(&api, &claim_url, &key, &mut rec).await else {
            continue;
        };
        n += 1;
        let body = json!({"lease_id": task["lease_id"], "review_id": format!("w{worker}-{n}"), "label": "ham"});
        let t = Instant::now();
        match api
            .http
            .post(format!("{node}/v1/tasks/{}/reviews", task["task_id"]))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                rec.ok("answer", t, 1);
                rec.ok("cycle", cycle, 1);
            }
            _ => rec.err("answer"),
        }
    }
    rec
}

/// One claim, recorded as `claim`, `claim_empty` (204) or an error; the task if one came.
async fn claim_once(api: &Api, url: &str, key: &str, rec: &mut Recorder) -> Option<Value> {
    let t = Instant::now();
    match api.http.post(url).bearer_auth(key).json(&json!({})).send().await {
        Ok(r) if r.status() == 200 => match r.json::<Value>().await {
            Ok(v) => {
                rec.ok("claim", t, 1);
                Some(v)
            }
            Err(_) => {
                rec.err("claim");
                None
            }
        },
        Ok(r) if r.status() == 204 => {
            rec.ok("claim_empty", t, 1);
            None
        }
        _ => {
            rec.err("claim");
            None
        }
    }
}

/// Reviewers answering with "submit and next": a claim to start, then each answer leases
/// the next task in the same request. `cycle` is one such round trip.
pub(super) async fn review_next_loop(
    api: Api,
    worker: usize,
    key: String,
    project: String,
    until: Instant,
) -> Recorder {
    let mut rec = Recorder::default();
    let node = api.node(worker).to_string();
    let claim_url = format!("{node}/v1/projects/{project}/claim");
    let mut task = Value::Null;
    let mut n = 0u64;
    while Instant::now() < until {
        if task.is_null() {
            task = claim_once(&api, &claim_url, &key, &mut rec)
                .await
                .unwrap_or(Value::Null);
            continue;
        }
        n += 1;
        let body = json!({"lease_id": task["lease_id"], "review_id": format!("w{worker}-{n}"), "label": "ham",
                          "next": {"project": project}});
        let t = Instant::now();
        let url = format!("{node}/v1/tasks/{}/reviews", task["task_id"]);
        match api.http.post(url).bearer_auth(&key).json(&body).send().await {
            Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                Ok(mut v) => {
                    rec.ok("cycle", t, 1);
                    task = v["next"].take();
                }
                Err(_) => rec.err("cycle"),
            },
            _ => {
                rec.err("cycle");
                task = Value::Null;
            }
        }
    }
    rec
}

/// Pre-fills `n` open review tasks (batches of 1,000, four at a time), with a progress bar
/// on a terminal.
pub(super) async fn prefill(api: &Api, svc: &str, project: &str, n: usize) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(n as u64);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_message("pre-filling open tasks");
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    let mut handles = vec![];
    for (w, count) in shares(n.div_ceil(1000), 4).into_iter().enumerate() {
        handles.push(tokio::spawn(import_loop(
            api.clone(),
            w,
            svc.to_string(),
            project.to_string(),
            far,
            Some(count),
            1000,
        )));
    }
    for h in handles {
        let rec = h.await?;
        if let Some(s) = rec.0.get("batch") {
            if s.errors > 0 {
                bail!("pre-fill failed: {} batches refused", s.errors);
            }
            bar.inc(s.units);
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Splits `batches` among at most `workers` importers as evenly as can be: every share is
/// at least 1, they sum to `batches`, and none is larger than another by more than 1.
fn shares(batches: usize, workers: usize) -> Vec<usize> {
    let workers = workers.min(batches);
    (0..workers)
        .map(|w| batches / workers + usize::from(w < batches % workers))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn shares_cover_every_batch_once() {
        // 5,000 items (5 batches) once overflowed: 4 workers of 2 asked for 5 - 6.
        assert_eq!(shares(5, 4), vec![2, 1, 1, 1]);
        assert_eq!(shares(0, 4), Vec::<usize>::new());
        assert_eq!(shares(3, 4), vec![1, 1, 1]);
        for batches in 0..50 {
            let s = shares(batches, 4);
            assert_eq!(s.iter().sum::<usize>(), batches, "{batches}");
            assert!(s.iter().all(|&c| c > 0), "{batches}: {s:?}");
            let (lo, hi) = (s.iter().min(), s.iter().max());
            assert!(hi.zip(lo).is_none_or(|(h, l)| h - l <= 1), "{batches}: {s:?}");
        }
    }
}
