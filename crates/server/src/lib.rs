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

pub mod app;
pub mod auth;
pub mod clock;
pub mod error;
pub mod http;
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

/// Serves the API on `listener` until `shutdown` resolves, then drains and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop_rx = state.stopping.subscribe();
    let reaper = workers::LeaseReaper {
        store: state.store.clone(),
        clock: state.clock.clone(),
        batch: 1000,
    };
    let reaper = tokio::spawn(reaper.run(LEASE_REAPER_EVERY, stop_rx.clone()));
    let learner = workers::LearningWorker { state: state.clone() };
    let learner = tokio::spawn(learner.run(LEARN_EVERY, stop_rx.clone()));
    let notices = tokio::spawn(workers::follow_notices(state.clone(), stop_rx));
    let app = http::router(state.clone(), ui::router());
    let stopping = state.stopping.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            // Long polls end now instead of holding the drain up.
            let _ = stopping.send(true);
        })
        .await;
    let _ = state.stopping.send(true);
    let _ = reaper.await;
    let _ = notices.await;
    let _ = learner.await;
    result
}
