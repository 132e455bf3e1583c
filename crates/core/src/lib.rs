//! Flywheel's domain, pure: no IO, no async, no clock, no randomness of its own.
//!
//! Everything here takes the current time and any random draw as arguments and returns
//! decisions as data, so that the store (which persists them) and the server (which
//! serves them) can both be tested against the same rules. Nothing in this crate can fail
//! for outside reasons; its errors are all about the input.

pub mod active;
pub mod aggregate;
pub mod agreement;
pub mod amend;
#[cfg(any(test, feature = "proptest"))]
pub mod arbitrary;
pub mod backtest;
pub mod calibrate;
pub mod consensus;
pub mod crowd;
pub mod error;
pub mod event;
pub mod fatigue;
pub mod fields;
pub mod label;
pub mod learn;
pub mod monitor;
pub mod multi_agreement;
pub mod name;
pub mod novelty;
pub mod overrides;
pub mod policy;
pub mod prediction;
pub mod quality;
pub mod review;
pub mod sla;
pub mod stranded;
pub mod task;
pub mod webhook;
pub mod workload;

pub use error::ValidationError;
pub use event::Event;
pub use label::{Label, LabelMode, LabelSet};
pub use policy::{Decision, ItemView, Outcome, Policy, Route};
pub use prediction::Prediction;
pub use task::{Answer, Next, Stage};
