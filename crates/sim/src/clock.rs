//! Simulated time. A scenario moves its clock by fixed amounts — a message arriving, a
//! reviewer's answer taking its time — and never reads the wall clock, so what happens in
//! a run depends on its seed and its data, not on the machine's speed.
//!
//! The server's own clock lives in `flywheel-server`, which sim must not depend on: the
//! binary implements [`Clock`] over the server's `ManualClock` for an in-process server,
//! so the server's timestamps (leases, answers, events) move with the scenario.

use std::sync::atomic::{AtomicI64, Ordering};

/// A clock a scenario drives.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch, in simulated time.
    fn now_ms(&self) -> i64;
    /// Moves time forward by `ms`.
    fn advance_ms(&self, ms: i64);
}

/// Where simulated time starts: 2025-01-01T00:00:00Z.
pub const EPOCH_MS: i64 = 1_735_689_600_000;

/// A clock of the scenario's own, for a server it cannot drive (`--server`): the
/// scenario's time still moves, the server keeps its own.
#[derive(Debug)]
pub struct SimClock(AtomicI64);

impl SimClock {
    pub fn new(start_ms: i64) -> Self {
        Self(AtomicI64::new(start_ms))
    }
}

impl Default for SimClock {
    fn default() -> Self {
        Self::new(EPOCH_MS)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_moves_only_when_told() {
        let c = SimClock::default();
        assert_eq!(c.now_ms(), EPOCH_MS);
        c.advance_ms(1500);
        c.advance_ms(500);
        assert_eq!(c.now_ms(), EPOCH_MS + 2000);
    }
}
