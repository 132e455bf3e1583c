//! The server's Prometheus metrics: one [`Metrics`] per `AppState` (an explicit
//! `prometheus_client` registry, no global recorder, so that several servers in one
//! process — tests, a cluster — keep their own), served by [`router`] on the listener of
//! `--metrics-listen`, never on the API's.
//!
//! Two kinds of figures:
//! - counters and histograms recorded where things happen (decisions, answers, lease
//!   expiries, HTTP requests): atomics behind a label lookup, cheap on the hot path;
//! - gauges computed at scrape time ([`Metrics::encode`]): queue depth, oldest age and SLA
//!   breaches per project from one bounded store read each (open tasks only), the webhook
//!   backlog from one read of the events after the endpoints' cursors, the
//!   automation ratio from what this server counted, and the SQLite writer's histograms
//!   read from the store's atomics (`flywheel_store::observe`).
//!
//! Adding a family (webhook deliveries, say, recorded by `workers/webhooks.rs`): a field of [`Metrics`] of the
//! `prometheus_client` type (`Family<Labels, Counter>` for a count by labels), registered
//! in [`Metrics::new`] with its help text, named `flywheel_<noun>` (`_total` is added to a
//! counter, `_seconds` comes from `Unit::Seconds`), recorded by the use case that does the
//! thing through `state.metrics`, listed in the README's "Metrics and logs", and checked
//! in `tests/api/metrics.rs`. A family is registered only once something records it.
//!
//! Must not: block a decision or a claim on a lock a scrape holds (scrape-time gauges are
//! set under their own families' locks, after the store reads).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::app::{AppError, AppState};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flywheel_store::observe::{HistogramSnapshot, WriterStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub project: String,
    /// `auto` or `review`.
    pub outcome: &'static str,
    /// The policy rule that decided.
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProjectLabels {
    pub project: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub project: String,
    pub queue: String,
    pub tier: u8,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnswerLabels {
    pub tier: u8,
    /// `label`, `escalate` or `skip`.
    pub answer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// `delivered`, `failed` (to be tried again), `gone` (410: the endpoint is disabled)
    /// or `given_up` (the last try of an event failed).
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    pub tier: u8,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The matched route's template (`/v1/tasks/{task_id}/reviews`), never the raw path;
    /// `unmatched` for a request no route took.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn time_on_task_histogram() -> Histogram {
    // 1 s to ~4.5 h.
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

/// Every family this server exposes, in one registry.
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    /// Per project: decisions this server made, and how many were auto (for the ratio).
    automation: Mutex<HashMap<String, (u64, u64)>>,
    automation_ratio: Family<ProjectLabels, FloatGauge>,
    queue_depth: Family<QueueLabels, Gauge>,
    queue_oldest_age: Family<QueueLabels, FloatGauge>,
    queue_sla_breaches: Family<QueueLabels, Gauge>,
    lease_expiries: Counter,
    answers: Family<AnswerLabels, Counter>,
    time_on_task: Family<TierLabels, Histogram, fn() -> Histogram>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    webhook_deliveries: Family<DeliveryLabels, Counter>,
    webhook_backlog: Family<ProjectLabels, Gauge>,
    /// One scrape at a time: each clears and refills the scrape-time gauges.
    scraping: tokio::sync::Mutex<()>,
}

impl Metrics {
    /// The registry, with the SQLite writer's histograms when the store has a writer.
    pub fn new(writer: Option<Arc<WriterStats>>) -> Self {
        let mut m = Self {
            decisions: Family::default(),
            automation: Mutex::new(HashMap::new()),
            automation_ratio: Family::default(),
            queue_depth: Family::default(),
            queue_oldest_age: Family::default(),
            queue_sla_breaches: Family::default(),
            lease_expiries: Counter::default(),
            answers: Family::default(),
            time_on_task: Family::new_with_constructor(time_on_task_histogram),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            webhook_deliveries: Family::default(),
            webhook_backlog: Family::default(),
            scraping: tokio::sync::Mutex::new(()),
            registry: Registry::default(),
        };
        let registry = &mut m.registry;
        registry.register(
            "flywheel_decisions",
            "Items decided by this server, by project, outcome (auto or review) and the rule that decided",
            m.decisions.clone(),
        );
        registry.register(
            "flywheel_automation_ratio",
            "Share of the decisions this server made since it started that were auto, by project",
            m.automation_ratio.clone(),
        );
        registry.register(
            "flywheel_queue_depth",
            "Open tasks (gold left out) by project, queue and tier, read at scrape time",
            m.queue_depth.clone(),
        );
        registry.register_with_unit(
            "flywheel_queue_oldest_age",
            "Age of the oldest open task by project, queue and tier, read at scrape time",
            Unit::Seconds,
            m.queue_oldest_age.clone(),
        );
        registry.register(
            "flywheel_queue_sla_breaches",
            "Open tasks older than their queue's SLA by project, queue and tier (queues with an SLA), read at scrape time",
            m.queue_sla_breaches.clone(),
        );
        registry.register(
            "flywheel_lease_expiries",
            "Leases this server's reaper expired and returned to their queues",
            m.lease_expiries.clone(),
        );
        registry.register(
            "flywheel_answers",
            "Answers stored by this server, by task tier and answer (label, escalate, skip); retries are not counted",
            m.answers.clone(),
        );
        registry.register_with_unit(
            "flywheel_answer_time_on_task",
            "Time from a lease's grant to its answer, by task tier",
            Unit::Seconds,
            m.time_on_task.clone(),
        );
        registry.register(
            "flywheel_http_requests",
            "HTTP requests answered, by method, route template and status",
            m.http_requests.clone(),
        );
        registry.register_with_unit(
            "flywheel_http_request_duration",
            "Time to answer an HTTP request, by method and route template",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        registry.register(
            "flywheel_webhook_deliveries",
            "Webhook delivery attempts this server made, by result (delivered, failed, gone, given_up)",
            m.webhook_deliveries.clone(),
        );
        registry.register(
            "flywheel_webhook_backlog",
            "Events after the cursors of a project's enabled webhook endpoints, summed over its endpoints, read at scrape time",
            m.webhook_backlog.clone(),
        );
        if let Some(stats) = writer {
            registry.register_collector(Box::new(WriterCollector(stats)));
        }
        m
    }

    /// Counts a batch's new decisions (duplicates left out) for `project`.
    pub fn decided<'a>(&self, project: &str, decisions: impl Iterator<Item = &'a flywheel_core::Decision>) {
        let mut by_rule: HashMap<(&'static str, &str), u64> = HashMap::new();
        for d in decisions {
            let outcome = match d.outcome {
                flywheel_core::Outcome::Auto { .. } => "auto",
                flywheel_core::Outcome::Review { .. } => "review",
            };
            *by_rule.entry((outcome, d.rule.as_str())).or_default() += 1;
        }
        if by_rule.is_empty() {
            return;
        }
        let (mut total, mut auto) = (0, 0);
        for ((outcome, rule), n) in by_rule {
            total += n;
            if outcome == "auto" {
                auto += n;
            }
            self.decisions
                .get_or_create(&DecisionLabels {
                    project: project.to_string(),
                    outcome,
                    rule: rule.to_string(),
                })
                .inc_by(n);
        }
        let mut counts = self.automation.lock().expect("automation counts");
        let c = counts.entry(project.to_string()).or_default();
        c.0 += total;
        c.1 += auto;
    }

    /// Counts an answer this server stored.
    pub fn answered(&self, tier: u8, answer: &'static str, time_on_task_ms: i64) {
        self.answers.get_or_create(&AnswerLabels { tier, answer }).inc();
        self.time_on_task
            .get_or_create(&TierLabels { tier })
            .observe(time_on_task_ms.max(0) as f64 / 1000.0);
    }

    /// Counts a webhook delivery attempt by its result.
    pub fn webhook_attempt(&self, result: &'static str) {
        self.webhook_deliveries.get_or_create(&DeliveryLabels { result }).inc();
    }

    pub fn leases_expired(&self, n: usize) {
        self.lease_expiries.inc_by(n as u64);
    }

    fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// Reads the scrape-time gauges and encodes every family: OpenMetrics when
    /// `openmetrics`, else the Prometheus text format 0.0.4.
    pub async fn encode(&self, s: &AppState, openmetrics: bool) -> Result<String, AppError> {
        let _one = self.scraping.lock().await;
        self.read_queues(s).await?;
        self.read_webhook_backlog(s).await?;
        {
            let counts = self.automation.lock().expect("automation counts");
            for (project, (total, auto)) in counts.iter() {
                self.automation_ratio
                    .get_or_create(&ProjectLabels {
                        project: project.clone(),
                    })
                    .set(*auto as f64 / (*total).max(1) as f64);
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| AppError::Internal(format!("cannot encode the metrics: {e}")))?;
        Ok(if openmetrics { text } else { to_text_format(&text) })
    }

    /// Queue depth, oldest age and SLA breaches of every project, one store read each.
    async fn read_queues(&self, s: &AppState) -> Result<(), AppError> {
        let now = s.now();
        let mut rows = Vec::new();
        for project in s.store.projects().await? {
            let p = s.project(&project.name).await?;
            let depths = s.store.queue_depths(p.id, now, p.policy.sla_queues()).await?;
            rows.extend(depths.into_iter().map(|d| (p.name.clone(), d)));
        }
        // Queues emptied since the last scrape disappear rather than read zero forever.
        self.queue_depth.clear();
        self.queue_oldest_age.clear();
        self.queue_sla_breaches.clear();
        for (project, d) in rows {
            let labels = QueueLabels {
                project,
                queue: d.queue,
                tier: d.tier,
            };
            self.queue_depth.get_or_create(&labels).set(d.open);
            self.queue_oldest_age
                .get_or_create(&labels)
                .set(d.oldest_age_ms as f64 / 1000.0);
            if let Some(b) = d.breaches {
                self.queue_sla_breaches.get_or_create(&labels).set(b);
            }
        }
        Ok(())
    }

    /// Each project's webhook backlog, one store read for all (see
    /// `Store::webhook_backlog`: it counts only events after the cursors).
    async fn read_webhook_backlog(&self, s: &AppState) -> Result<(), AppError> {
        let backlog = s.store.webhook_backlog().await?;
        let names: HashMap<i64, String> = if backlog.is_empty() {
            HashMap::new()
        } else {
            s.store.projects().await?.into_iter().map(|p| (p.id, p.name)).collect()
        };
        self.webhook_backlog.clear();
        for (project_id, events) in backlog {
            if let Some(project) = names.get(&project_id) {
                self.webhook_backlog
                    .get_or_create(&ProjectLabels {
                        project: project.clone(),
                    })
                    .set(events);
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// OpenMetrics as `prometheus_client` writes it, turned into the Prometheus text format
/// (0.0.4) that `promtool check metrics` and older scrapers read: a counter's `HELP` and
/// `TYPE` lines name its sample (`x_total`, not `x`), and there are no `UNIT` or `EOF`
/// lines. Everything else (samples, escaping, histograms, gauges) is the same in both.
fn to_text_format(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut lines = openmetrics.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            let counter = lines
                .peek()
                .is_some_and(|next| *next == format!("# TYPE {name} counter"));
            if counter {
                out.push_str(&format!("# HELP {name}_total{}\n", &rest[name.len()..]));
                out.push_str(&format!("# TYPE {name}_total counter\n"));
                lines.next();
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The SQLite writer's histograms, read from the store's atomics at each scrape.
#[derive(Debug)]
struct WriterCollector(Arc<WriterStats>);

impl WriterCollector {
    fn histogram(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
        h: &HistogramSnapshot,
    ) -> Result<(), std::fmt::Error> {
        let metric = encoder.encode_descriptor(name, help, unit, MetricType::Histogram)?;
        encode_snapshot(metric, h)
    }
}

fn encode_snapshot(
    mut metric: prometheus_client::encoding::MetricEncoder<'_>,
    h: &HistogramSnapshot,
) -> Result<(), std::fmt::Error> {
    metric.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
}

impl Collector for WriterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        Self::histogram(
            &mut encoder,
            "flywheel_sqlite_group_commit_size",
            "Jobs per group commit of the SQLite writer.",
            None,
            &self.0.group_commit_size.snapshot(),
        )?;
        Self::histogram(
            &mut encoder,
            "flywheel_sqlite_wal_fsync",
            "Time of each fsync of the SQLite WAL (one covers every group commit made while the last ran).",
            Some(&Unit::Seconds),
            &self.0.wal_fsync_seconds.snapshot(),
        )
    }
}

/// The metrics listener's routes: `GET /metrics`.
pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new().route("/metrics", get(scrape)).with_state(state)
}

async fn scrape(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    match s.metrics.encode(&s, openmetrics).await {
        Ok(body) => {
            let content_type = if openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                "text/plain; version=0.0.4; charset=utf-8"
            };
            ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
        }
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

/// Middleware of the API's router: counts each request by its route template and status
/// and observes its latency.
pub async fn track(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    s.metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_samples_in_the_text_format() {
        let om = "# HELP a_seconds A thing.\n# TYPE a_seconds histogram\n# UNIT a_seconds seconds\na_seconds_sum 1.0\n\
# HELP b Bees.\n# TYPE b counter\nb_total{x=\"1\"} 2\n# HELP c C.\n# TYPE c gauge\nc 3\n# EOF\n";
        assert_eq!(
            to_text_format(om),
            "# HELP a_seconds A thing.\n# TYPE a_seconds histogram\na_seconds_sum 1.0\n\
# HELP b_total Bees.\n# TYPE b_total counter\nb_total{x=\"1\"} 2\n# HELP c C.\n# TYPE c gauge\nc 3\n"
        );
    }
}
