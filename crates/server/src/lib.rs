//! Flywheel's server: the HTTP API, auth, and the background workers, over one
//! `Arc<dyn Store>`. Only this crate knows HTTP.
//!
//! Modules depend one way: `http` and `ui` call `app` (the use cases), `workers` call
//! `app`, and `app` imports neither `http` nor `ui`. `auth` (who is calling) and `error`
//! (the one mapping to HTTP) sit between them.
//!
//! [`serve`] takes a bound listener and a shutdown future: the binary passes SIGTERM,
//! tests pass a oneshot. On shutdown the server stops accepting, finishes in-flight
//! requests (whose writes the store commits before answering), stops the workers, and
//! returns.

pub mod accept;
pub mod app;
pub mod auth;
pub mod clock;
pub mod error;
pub mod http;
pub mod metrics;
pub mod ui;
pub mod workers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use app::AppState;
pub use app::accounts::bootstrap_admin;
pub use clock::{Clock, ManualClock, SystemClock};

/// How often the built-in models catch up with the label feed.
pub const LEARN_EVERY: Duration = Duration::from_millis(200);

/// How often expired leases are returned to their queues.
pub const LEASE_REAPER_EVERY: Duration = Duration::from_secs(1);

/// What runs beside the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// Train the built-in models from the label feed (and recalibrate thresholds, and
    /// check monitors) every [`LEARN_EVERY`]. On by default. Off, a model learns only when
    /// `POST /v1/projects/{p}/model/train` asks, so which model version decides an item
    /// does not depend on wall-clock time: for simulations that must be reproducible.
    pub background_learning: bool,
    /// Deliver webhooks in the background (`workers::WebhookWorker::run`). On by default;
    /// tests turn it off and drive `try_run_once` under a manual clock.
    pub background_webhooks: bool,
    /// The API listener's connection cap and timeouts.
    pub limits: accept::ConnLimits,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            background_learning: true,
            background_webhooks: true,
            limits: accept::ConnLimits::default(),
        }
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then drains and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, shutdown, ServeOptions::default()).await
}

/// Serves `GET /metrics` (Prometheus) for `state` on `listener` until `shutdown`
/// resolves. A listener of its own, so the API's port never exposes it; off unless the
/// binary is given `--metrics-listen`.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, metrics::router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// [`serve`] with the background work chosen by `options`.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()> {
    let stop_rx = state.stopping.subscribe();
    let reaper = workers::LeaseReaper {
        state: state.clone(),
        batch: 1000,
    };
    let reaper = tokio::spawn(reaper.run(LEASE_REAPER_EVERY, stop_rx.clone()));
    let sla = workers::SlaWorker {
        state: state.clone(),
        batch: 500,
    };
    let sla = tokio::spawn(sla.run(workers::SLA_EVERY, stop_rx.clone()));
    let learner = options
        .background_learning
        .then(|| tokio::spawn(workers::LearningWorker { state: state.clone() }.run(LEARN_EVERY, stop_rx.clone())));
    let webhooks = options.background_webhooks.then(|| {
        tokio::spawn(workers::WebhookWorker::new(state.clone()).run(workers::WEBHOOK_POLL_EVERY, stop_rx.clone()))
    });
    let notices = tokio::spawn(workers::follow_notices(state.clone(), stop_rx));
    let app = http::router(state.clone(), ui::router());
    let stopping = state.stopping.clone();
    accept::serve(listener, app, options.limits, shutdown, move || {
        tracing::info!("shutting down: finishing in-flight requests");
        // Long polls end now instead of holding the drain up.
        let _ = stopping.send(true);
    })
    .await;
    let _ = state.stopping.send(true);
    let _ = reaper.await;
    let _ = sla.await;
    let _ = notices.await;
    if let Some(learner) = learner {
        let _ = learner.await;
    }
    if let Some(webhooks) = webhooks {
        let _ = webhooks.await;
    }
    Ok(())
}
