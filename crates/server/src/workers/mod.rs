//! Background work, one file per job. Each worker is a step function (`try_run_once`) that
//! tests drive directly, plus a loop that runs it on an interval until shutdown. Workers
//! call `app`; they never import `http` or `ui`.

mod learner;
mod lease_reaper;
mod notices;
mod sla;
mod webhooks;

pub use learner::LearningWorker;
pub use lease_reaper::LeaseReaper;
pub use notices::follow_notices;
pub use sla::{SLA_EVERY, SlaWorker};
pub use webhooks::{Delivered, POLL_EVERY as WEBHOOK_POLL_EVERY, WebhookWorker, body as webhook_body};
