//! Flywheel's simulations: the pieces demos, benchmarks and (later) capacity planning
//! share, and the scenarios built from them.
//!
//! - [`rng`]: the one seeded generator (SplitMix64) of every simulation and benchmark.
//! - [`clock`]: simulated time, which a scenario moves and never reads from the wall.
//! - [`reviewer`]: simulated reviewers (accuracy, speed, and the record fatigue reads).
//! - [`client`]: the HTTP client of the public API.
//! - [`scenario`]: streams of items run through a server with simulated reviewers.
//! - [`erlang`]: Erlang C staffing for one queue (pure math).
//! - [`capacity`]: the capacity planner's discrete-event simulation of a policy's routes
//!   and tiers of reviewers, and the search for the staffing that meets an SLA target.
//!
//! sim talks to a server only over HTTP and depends on no crate of ours but `flywheel-tls`
//! — not core, the server or the store: whatever it simulates, it simulates as a client would. It knows
//! no argv, prints nothing and draws no chart; the binary does.

pub mod capacity;
pub mod client;
pub mod clock;
pub mod erlang;
pub mod reviewer;
pub mod rng;
pub mod scenario;

pub use client::Client;
pub use clock::{Clock, SimClock};
pub use reviewer::{Answer, Profile, Reviewer};
pub use rng::Rng;

/// What can go wrong in a simulation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: the server did not answer: {source}")]
    Transport {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{path}: {status} {body}")]
    Status {
        path: String,
        status: u16,
        body: serde_json::Value,
    },
    #[error("{path}: the answer is not JSON: {source}")]
    Body {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The server answered something the scenario cannot use.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The scenario's input (a data file, a setting) is not usable.
    #[error("{0}")]
    Input(String),
}
