//! The API, end to end: a real server on 127.0.0.1:0 with a fresh database, spoken to
//! over HTTP. Time is a `ManualClock`, so lease expiry needs no sleeping.
//!
//! One test binary (`[[test]] name = "api"` in Cargo.toml), one file per area of the API;
//! `helpers.rs` is the harness they share. Every case that takes a `Db` runs on SQLite and,
//! with `FLYWHEEL_TEST_POSTGRES_URL`, on PostgreSQL (`on_both_backends!`).

mod helpers;

mod access;
mod browser;
mod budgets;
mod cluster;
mod console;
mod copy;
mod export;
mod fatigue;
mod feeds;
mod fields;
mod findings;
mod hardening;
mod hardening2;
mod items;
mod keys;
mod learning;
mod metrics;
mod multi;
mod multi_io;
mod multi_quality;
mod novelty;
mod oversight;
mod policy;
mod quality;
mod sla;
mod tour;
mod webhooks;
mod webhooks_https;
mod work;
mod workload;
