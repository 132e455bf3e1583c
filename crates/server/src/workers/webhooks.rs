//! Webhook delivery: the outbox is the event log, and each endpoint's cursor says how far
//! it has been served. A round takes one endpoint (the store holds it for the round: on
//! PostgreSQL with an advisory lock, so one node delivers each endpoint), sends the
//! project's events after its cursor in order — skipping kinds it did not ask for — and
//! stops at the first failure, which is tried again on core's schedule
//! (`flywheel_core::webhook`). The round's attempts and the new cursor are written in one
//! commit at its end, so a page of deliveries costs one write; a crash mid-round sends
//! that page again with the same `webhook-id`s, which receivers deduplicate.
//!
//! `try_run_once` runs one round of every due endpoint (tests drive it under a manual
//! clock); `run` keeps a task per busy endpoint, so endpoints deliver in parallel and
//! each in order. Outbound requests go only to addresses `app::webhooks::allowed_ip`
//! allows: the client's resolver drops the others (a name is resolved, checked, and the
//! checked address is the one connected to), and literal addresses are checked here.
//! Over https the certificate is checked against `AppState::webhook_tls` (the webpki roots
//! and the operator's CA file); the name checked is the URL's host, whatever address the
//! resolver kept.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flywheel_core::Event;
use flywheel_core::event::{WebhookDisabled, WebhookFailing};
use flywheel_core::webhook::{EventPattern, Verdict, next_attempt, verdict, wanted};
use flywheel_store::{AttemptOutcome, DeliveryAttempt, DeliveryRound, EventRecord, Result, WebhookTarget, message_id};
use tokio::sync::watch;

use crate::app::AppState;
use crate::app::webhooks::{Settings, allowed_ip, sign};

/// The longest an attempt may take, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// Events read per round.
pub const PAGE: usize = 500;

/// How often the loop looks for endpoints with work.
pub const POLL_EVERY: Duration = Duration::from_millis(100);

/// Endpoints delivered at once by one node (on PostgreSQL each holds a connection).
pub const MAX_PARALLEL_ENDPOINTS: usize = 8;

/// Bytes of a response kept with its attempt.
const SNIPPET_BYTES: usize = 256;

/// What rounds did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub delivered: usize,
    pub failed: usize,
}

#[derive(Clone)]
pub struct WebhookWorker {
    state: Arc<AppState>,
    client: reqwest::Client,
}

/// Resolves a host and keeps only the addresses webhooks may reach.
struct CheckedResolver(Settings);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let settings = self.0;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let ok: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allowed_ip(a.ip(), settings))
                .collect();
            if ok.is_empty() {
                return Err(format!("{host} has no address webhooks may reach").into());
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What one attempt got.
struct Answer {
    status: Option<u16>,
    response: String,
    retry_after_ms: Option<i64>,
    latency_ms: i64,
}

impl WebhookWorker {
    pub fn new(state: Arc<AppState>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(CheckedResolver(state.webhooks)))
            .user_agent(concat!("Flywheel-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(MAX_PARALLEL_ENDPOINTS)
            // Its own rustls configuration, ring named in it: no process-wide provider needed.
            .use_preconfigured_tls((*state.webhook_tls).clone())
            .build()
            .expect("the webhook client's settings are valid");
        Self { state, client }
    }

    /// One round of every endpoint that has work due now, in parallel.
    pub async fn try_run_once(&self) -> Result<Delivered> {
        let due = self.state.store.due_webhooks(self.state.now()).await?;
        let mut rounds = tokio::task::JoinSet::new();
        for id in due {
            let w = self.clone();
            rounds.spawn(async move { w.round(id).await });
        }
        let mut total = Delivered::default();
        let mut first_error = None;
        while let Some(done) = rounds.join_next().await {
            match done.expect("a webhook round panicked") {
                Ok((d, _)) => {
                    total.delivered += d.delivered;
                    total.failed += d.failed;
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// One round of endpoint `id`: what it did, and whether a full page was delivered
    /// (more may be waiting).
    pub async fn round(&self, id: i64) -> Result<(Delivered, bool)> {
        let store = &self.state.store;
        let Some(lease) = store.lease_webhook(id, self.state.now()).await? else {
            return Ok((Delivered::default(), false));
        };
        let t = lease.target().clone();
        let mut round = DeliveryRound {
            cursor: t.hook.cursor,
            head_attempts: t.hook.attempts,
            next_attempt_at: t.hook.next_attempt_at,
            failing: t.hook.failing,
            ..Default::default()
        };
        let events = match store.events(Some(t.hook.project_id), t.hook.cursor, PAGE).await {
            Ok(e) => e,
            Err(e) => {
                lease.finish(round, self.state.now()).await?;
                return Err(e);
            }
        };
        let patterns: Vec<EventPattern> = t
            .hook
            .events
            .iter()
            .filter_map(|p| EventPattern::parse("events", p).ok())
            .collect();
        let mut done = Delivered::default();
        let mut stopped = false;
        for e in &events {
            if *self.state.stopping.borrow() {
                stopped = true;
                break;
            }
            if !wanted(&patterns, &e.kind) {
                round.cursor = e.seq;
                continue;
            }
            if self.attempt(&t, e, &mut round).await {
                done.delivered += 1;
            } else {
                done.failed += 1;
                if round.cursor < e.seq {
                    stopped = true;
                    break;
                }
            }
        }
        let more = !stopped && events.len() == PAGE;
        lease.finish(round, self.state.now()).await?;
        Ok((done, more))
    }

    /// Sends `e` once and records what came of it in `round`; true if it was delivered.
    async fn attempt(&self, t: &WebhookTarget, e: &EventRecord, round: &mut DeliveryRound) -> bool {
        let attempt = round.head_attempts + 1;
        let id = message_id(t.hook.id, e.seq);
        let answer = self.send(t, e, &id).await;
        let now = self.state.now();
        let mut record = DeliveryAttempt {
            event_seq: e.seq,
            kind: e.kind.clone(),
            message_id: id,
            attempt,
            at: now,
            status: answer.status,
            latency_ms: answer.latency_ms,
            response: answer.response,
            outcome: AttemptOutcome::Delivered,
            next_attempt_at: None,
        };
        let delivered = match verdict(answer.status) {
            Verdict::Delivered => {
                round.cursor = e.seq;
                round.head_attempts = 0;
                round.next_attempt_at = 0;
                round.failing = false;
                true
            }
            Verdict::Gone => {
                record.outcome = AttemptOutcome::Gone;
                round.head_attempts = attempt;
                round.disable = true;
                round.events.push(Event::WebhookDisabled(WebhookDisabled {
                    webhook_id: t.hook.id,
                    url: t.hook.url.clone(),
                    event_seq: e.seq,
                    reason: "the receiver answered 410 Gone".into(),
                }));
                false
            }
            Verdict::Failed => {
                let jitter = rand::random::<f64>();
                match next_attempt(attempt, now, jitter, answer.retry_after_ms) {
                    Some(at) => {
                        record.outcome = AttemptOutcome::Failed;
                        record.next_attempt_at = Some(at);
                        round.head_attempts = attempt;
                        round.next_attempt_at = at;
                    }
                    None => {
                        record.outcome = AttemptOutcome::GivenUp;
                        round.cursor = e.seq;
                        round.head_attempts = 0;
                        round.next_attempt_at = 0;
                        round.failing = true;
                        round.events.push(Event::WebhookFailing(WebhookFailing {
                            webhook_id: t.hook.id,
                            url: t.hook.url.clone(),
                            event_seq: e.seq,
                            attempts: attempt,
                            status: answer.status,
                            error: record.response.clone(),
                        }));
                    }
                }
                false
            }
        };
        self.state.metrics.webhook_attempt(match record.outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Gone => "gone",
            AttemptOutcome::GivenUp => "given_up",
        });
        round.attempts.push(record);
        delivered
    }

    async fn send(&self, t: &WebhookTarget, e: &EventRecord, msg_id: &str) -> Answer {
        let started = Instant::now();
        let failed = |response: String| Answer {
            status: None,
            response,
            retry_after_ms: None,
            latency_ms: started.elapsed().as_millis() as i64,
        };
        // A literal address skips the resolver: check it here.
        if let Ok(url) = reqwest::Url::parse(&t.hook.url)
            && let Some(host) = url.host_str()
            && let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>()
            && !allowed_ip(ip, self.state.webhooks)
        {
            return failed(format!("{ip} is a private, loopback or link-local address"));
        }
        let body = body(e);
        let timestamp = self.state.now().div_euclid(1000);
        let request = self
            .client
            .post(&t.hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sign(&t.secrets, msg_id, timestamp, &body))
            .body(body);
        let mut resp = match request.send().await {
            Ok(r) => r,
            Err(err) => return failed(describe(&err)),
        };
        let status = resp.status().as_u16();
        let retry_after_ms = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, self.state.now()));
        let mut snippet = Vec::new();
        while snippet.len() < SNIPPET_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => snippet.extend_from_slice(&chunk[..chunk.len().min(SNIPPET_BYTES - snippet.len())]),
                _ => break,
            }
        }
        Answer {
            status: Some(status),
            response: String::from_utf8_lossy(&snippet).into_owned(),
            retry_after_ms,
            latency_ms: started.elapsed().as_millis() as i64,
        }
    }

    /// Keeps a task per endpoint with work, each running rounds while full pages come,
    /// until shutdown.
    pub async fn run(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut busy: HashMap<i64, tokio::task::JoinHandle<()>> = HashMap::new();
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_PARALLEL_ENDPOINTS));
        loop {
            busy.retain(|_, h| !h.is_finished());
            match self.state.store.due_webhooks(self.state.now()).await {
                Ok(due) => {
                    for id in due {
                        if busy.contains_key(&id) {
                            continue;
                        }
                        let (w, slots) = (self.clone(), slots.clone());
                        busy.insert(
                            id,
                            tokio::spawn(async move {
                                let Ok(_slot) = slots.acquire().await else { return };
                                loop {
                                    match w.round(id).await {
                                        Ok((_, true)) => continue,
                                        Ok((_, false)) => return,
                                        Err(e) => {
                                            tracing::warn!(webhook = id, error = %e, "webhook round failed; will retry");
                                            return;
                                        }
                                    }
                                }
                            }),
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list due webhooks; will retry"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => break,
            }
        }
        // Rounds see `stopping` and finish after their current attempt.
        for (_, h) in busy {
            let _ = h.await;
        }
    }
}

/// The request body: Standard Webhooks' `{type, timestamp, data}`, with the event's place
/// in the log (`seq`) and what it is about (`external_id`, `task_id`) beside them.
pub fn body(e: &EventRecord) -> Vec<u8> {
    let mut v = serde_json::json!({
        "type": e.kind,
        "timestamp": rfc3339(e.at),
        "data": e.data,
        "seq": e.seq,
    });
    if let Some(x) = &e.external_id {
        v["external_id"] = x.clone().into();
    }
    if let Some(t) = e.task_id {
        v["task_id"] = t.into();
    }
    serde_json::to_vec(&v).expect("a JSON value serialises")
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// A `Retry-After` value (seconds, or an HTTP date) as milliseconds from `now`.
fn retry_after(v: &str, now: i64) -> Option<i64> {
    if let Ok(s) = v.trim().parse::<i64>() {
        return Some(s.max(0) * 1000);
    }
    let at = time::OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc2822).ok()?;
    Some(((at.unix_timestamp() * 1000) - now).max(0))
}

fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = format!("{what}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text.chars().take(SNIPPET_BYTES).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// reqwest with `rustls-no-provider` panics building a client when no process-wide
    /// crypto provider is installed; the webhook client names its own, so it never asks.
    /// (Nothing in this crate's unit tests installs one.)
    #[tokio::test]
    async fn the_webhook_client_needs_no_process_wide_crypto_provider() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(flywheel_store::sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
        let state = Arc::new(AppState::new(store, Arc::new(crate::ManualClock::new(0))));
        let _worker = WebhookWorker::new(state);
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("120", 0), Some(120_000));
        assert_eq!(retry_after("Thu, 01 Jan 1970 00:01:00 GMT", 30_000), Some(30_000));
        assert_eq!(retry_after("soon", 0), None);
    }
}
