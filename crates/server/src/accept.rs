//! The API's accept loop: hyper's HTTP/1 connection builder under a cap on open
//! connections, with its header read timeout, a read timeout on request bodies
//! (`tower_http`'s `TimeoutBody`), and a graceful shutdown. `axum::serve` offers none of
//! the three; this replaces it for the API's listener (the metrics listener keeps it).
//!
//! - **Connection cap.** A connection takes a slot of a semaphore before it is accepted;
//!   with every slot taken, new connections wait in the kernel's backlog until one ends.
//! - **Header and idle timeout.** hyper starts the header timer whenever it waits for a
//!   request's head — on a new connection and between requests of a kept-alive one — so
//!   it closes both a client that sends half a header (slowloris) and one that idles.
//! - **Body timeout.** Each wait for the next piece of a request body is bounded: a body
//!   that stops arriving fails its request (the JSON error body), while a large upload that
//!   keeps flowing is never cut.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tower::Service;
use tower_http::timeout::TimeoutBody;

/// How the API's listener bounds connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections at most; more wait to be accepted.
    pub max_connections: usize,
    /// A request's head must arrive within this, and a kept-alive connection is closed
    /// after idling this long.
    pub header_timeout: Duration,
    /// The longest wait for the next piece of a request body.
    pub body_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// Below the common open-file limit (1,024) with room for the database and files.
pub const DEFAULT_MAX_CONNECTIONS: usize = 768;
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` within `limits` until `shutdown` resolves; then stops
/// accepting, calls `draining` (so long polls can end), and waits for every open
/// connection to finish its request in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    draining: impl FnOnce(),
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the slots are never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // `app` for this connection: the peer's address as `ConnectInfo` (the sign-in
        // brake counts by it), each body read under the body timeout.
        let (app, body_timeout) = (app.clone(), limits.body_timeout);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(|body| TimeoutBody::new(body_timeout, body));
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().call(req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    draining();
    graceful.shutdown().await;
}
