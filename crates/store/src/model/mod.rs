//! The records the store takes and gives, one module per section of the `Store` trait
//! (named like the backends' files), all re-exported here. Times are epoch milliseconds.

// Decided in core (`flywheel_core::review`), stored and served by the store.
pub use flywheel_core::amend::{AmendResult, AmendRules};
pub use flywheel_core::fatigue::SessionAnswer;
pub use flywheel_core::review::{Judging, Resolution, ReviewResult, StoredAnswer};

mod accounts;
mod dashboard;
mod export;
mod fatigue;
mod feeds;
mod items;
mod models;
mod quality;
mod webhooks;
mod work;

pub use accounts::*;
pub use dashboard::*;
pub use export::*;
pub use fatigue::*;
pub use feeds::*;
pub use items::*;
pub use models::*;
pub use quality::*;
pub use webhooks::*;
pub use work::*;
