//! The crash campaign's load: submitters, reviewers and feed readers speaking HTTP to a
//! server that may be killed under them, each keeping in the [`Ledger`] only what the
//! server acknowledged, and retrying what got no answer with the same idempotency keys.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use flywheel_sim::Rng;
use reqwest::Method;
use serde_json::{Value, json};

use super::{ADMIN_KEY, PROJECT, RETRY};

const BATCH: usize = 10;

/// What the clients were told, kept across kills.
#[derive(Default)]
pub(super) struct Ledger {
    pub(super) items: Vec<String>,
    /// (review id, external id)
    pub(super) answers: Vec<(String, String)>,
    /// Answers the server refused (a lease that ended while the server was down, …).
    pub(super) answers_refused: u64,
    pub(super) heartbeats: u64,
}

enum Reply {
    Ok(u16, Value),
    /// No answer (the server is down or was killed mid-request), or a 5xx: try again.
    Down,
    Refused(u16, Value),
}

pub(super) struct Ctx {
    pub(super) http: reqwest::Client,
    pub(super) url: Arc<RwLock<String>>,
    pub(super) stop: AtomicBool,
    pub(super) ledger: Mutex<Ledger>,
    pub(super) unanswered: AtomicU64,
    pub(super) server_errors: AtomicU64,
    pub(super) svc: String,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    async fn send(&self, method: Method, path: &str, key: &str, body: Option<&Value>) -> Reply {
        let base = self.url.read().expect("url").clone();
        let mut req = self.http.request(method, format!("{base}{path}")).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = match req.send().await {
            Ok(r) => r,
            Err(_) => {
                self.unanswered.fetch_add(1, Ordering::Relaxed);
                return Reply::Down;
            }
        };
        let status = r.status().as_u16();
        let Ok(text) = r.text().await else {
            self.unanswered.fetch_add(1, Ordering::Relaxed);
            return Reply::Down;
        };
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            200..=299 => Reply::Ok(status, body),
            500.. => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
                Reply::Down
            }
            _ => Reply::Refused(status, body),
        }
    }

    /// Sends until the server answers (or the load stops): the 2xx body, or `None`.
    pub(super) async fn until_answered(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> Option<Value> {
        loop {
            match self.send(method.clone(), path, key, body).await {
                Reply::Ok(_, v) => return Some(v),
                Reply::Refused(..) => return None,
                Reply::Down if self.stopped() => return None,
                Reply::Down => tokio::time::sleep(RETRY).await,
            }
        }
    }
}

/// Items of ids `s{w}-{n}`, in batches; a batch without an answer is sent again with the
/// same ids (a resubmitted id gets its first decision back), so each id is stored once.
pub(super) async fn submitter(ctx: Arc<Ctx>, w: usize) -> anyhow::Result<()> {
    let path = format!("/v1/projects/{PROJECT}/items");
    let mut n = 0usize;
    while !ctx.stopped() {
        let ids: Vec<String> = (n..n + BATCH).map(|i| format!("s{w}-{i}")).collect();
        n += BATCH;
        let items: Vec<Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                // About half confident (auto, a label at once), half to review.
                let spam = if (n + i).is_multiple_of(2) { 0.97 } else { 0.5 };
                json!({"external_id": id, "payload": {"text": format!("message {id}")},
                       "prediction": {"model": "crash", "version": "1", "scores": {"ham": 1.0 - spam, "spam": spam}}})
            })
            .collect();
        let body = json!({ "items": items });
        match ctx.send(Method::POST, &path, &ctx.svc, Some(&body)).await {
            Reply::Ok(..) => ctx.ledger.lock().expect("ledger").items.extend(ids),
            Reply::Refused(status, body) => bail!("items refused: {status} {body}"),
            Reply::Down => {
                if ctx
                    .until_answered(Method::POST, &path, &ctx.svc, Some(&body))
                    .await
                    .is_some()
                {
                    ctx.ledger.lock().expect("ledger").items.extend(ids);
                }
            }
        }
    }
    Ok(())
}

/// Claim, sometimes heartbeat, answer with review id `r{w}-{n}`; an answer without a
/// reply is sent again with the same review id.
pub(super) async fn reviewer(ctx: Arc<Ctx>, w: usize, key: String, seed: u64) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(w as u64 + 1));
    let claim = format!("/v1/projects/{PROJECT}/claim");
    let mut n = 0u64;
    while !ctx.stopped() {
        let task = match ctx.send(Method::POST, &claim, &key, Some(&json!({}))).await {
            Reply::Ok(200, task) => task,
            Reply::Ok(..) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Reply::Down => {
                tokio::time::sleep(RETRY).await;
                continue;
            }
            Reply::Refused(status, body) => bail!("a claim refused: {status} {body}"),
        };
        let task_id = task["task_id"].as_i64().context("a claim without task_id")?;
        let external_id = task["item"]["external_id"].as_str().unwrap_or_default().to_string();
        if rng.chance(0.3) {
            let body = json!({"lease_id": task["lease_id"]});
            let path = format!("/v1/tasks/{task_id}/heartbeat");
            if ctx
                .until_answered(Method::POST, &path, &key, Some(&body))
                .await
                .is_some()
            {
                ctx.ledger.lock().expect("ledger").heartbeats += 1;
            }
        }
        n += 1;
        let review_id = format!("r{w}-{n}");
        let label = if rng.chance(0.5) { "ham" } else { "spam" };
        let body = json!({"lease_id": task["lease_id"], "review_id": review_id, "label": label});
        let path = format!("/v1/tasks/{task_id}/reviews");
        let answered = ctx.until_answered(Method::POST, &path, &key, Some(&body)).await;
        let mut ledger = ctx.ledger.lock().expect("ledger");
        match answered {
            Some(_) => ledger.answers.push((review_id, external_id)),
            None if !ctx.stopped() => ledger.answers_refused += 1,
            None => {}
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
pub(super) enum Feed {
    Labels,
    Events,
}

/// A feed read page by page from a cursor it keeps (across kills): the positions it got,
/// in order, and with `keep`, the rows.
pub(super) struct FeedReader {
    feed: Feed,
    after: i64,
    pub(super) positions: Vec<i64>,
    pub(super) rows: Vec<Value>,
    keep: bool,
}

impl FeedReader {
    pub(super) fn new(feed: Feed, keep: bool) -> Self {
        Self {
            feed,
            after: 0,
            positions: vec![],
            rows: vec![],
            keep,
        }
    }

    /// One page after the saved cursor: how many rows came, or `None` without an answer.
    async fn page(&mut self, ctx: &Ctx) -> anyhow::Result<Option<usize>> {
        let (path, key, list, pos) = match self.feed {
            Feed::Labels => (
                format!("/v1/projects/{PROJECT}/labels?after={}&limit=1000", self.after),
                ctx.svc.as_str(),
                "labels",
                "cursor",
            ),
            Feed::Events => (
                format!("/v1/events?after={}&limit=1000", self.after),
                ADMIN_KEY,
                "events",
                "seq",
            ),
        };
        let mut v = match ctx.send(Method::GET, &path, key, None).await {
            Reply::Ok(_, v) => v,
            Reply::Down => return Ok(None),
            Reply::Refused(status, body) => bail!("a {list} read refused: {status} {body}"),
        };
        let Value::Array(rows) = v[list].take() else {
            bail!("a {list} page without {list}: {v}");
        };
        for r in &rows {
            self.positions
                .push(r[pos].as_i64().context("a row without its position")?);
        }
        if let Some(next) = v["next_cursor"].as_i64() {
            self.after = next;
        }
        let n = rows.len();
        if self.keep {
            self.rows.extend(rows);
        }
        Ok(Some(n))
    }

    /// Reads until a page comes back empty (retrying while the server is away).
    pub(super) async fn catch_up(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        loop {
            match self.page(ctx).await? {
                Some(0) => return Ok(()),
                Some(_) => {}
                None => tokio::time::sleep(RETRY).await,
            }
        }
    }
}

pub(super) async fn follow(ctx: Arc<Ctx>, mut reader: FeedReader) -> anyhow::Result<FeedReader> {
    while !ctx.stopped() {
        match reader.page(&ctx).await? {
            Some(1000) => {}
            Some(_) | None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(reader)
}
