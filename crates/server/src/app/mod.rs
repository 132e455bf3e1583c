//! The use cases: what the server does, in domain terms, whoever asks — the JSON API
//! (`http`), the console (`ui`) or a background worker. Each takes parsed inputs (a
//! project, a reviewer, ids, bodies already deserialised) and returns domain results or
//! an [`AppError`], which `crate::error` maps to HTTP once.
//!
//! Must not: import `http` or `ui`, know status codes or JSON shapes of replies, or check
//! who the caller is (handlers authorise before calling; a use case checks only what the
//! domain demands, such as a "next" project's grant).
//!
//! Each public use case has a `tracing` span named after it with its ids as fields, at
//! `debug` level: the default `info` filter turns them off, so the hot paths pay nothing
//! for them (`FLYWHEEL_LOG=flywheel_server=debug` shows them).

pub mod accounts;
pub mod amend;
pub mod dashboard;
mod error;
pub mod export;
pub mod fatigue;
pub mod feeds;
pub mod import;
pub mod items;
pub mod learning;
pub mod model;
pub mod monitors;
pub mod overrides;
pub mod projects;
pub mod quality;
pub mod ratelimit;
pub mod signin;
pub mod sla;
mod state;
pub mod webhooks;
pub mod work;
pub mod workload;

pub use error::{AppError, nul_at, text_field};
pub use state::*;

/// What a caller hears of project `name` when it does not exist or is not theirs to see:
/// the same words either way.
pub fn project_not_found(name: &str) -> String {
    format!("project '{name}' not found")
}
