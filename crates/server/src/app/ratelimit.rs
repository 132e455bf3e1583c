//! Per-key rate limits: each API key (or console session) may make so many requests a
//! second, by its role — admin, service, reviewer — with a burst of twice that; past it a
//! request gets 429 `rate_limited` with `Retry-After`. The arithmetic is `governor`'s GCRA,
//! one keyed limiter per role, keyed by the key's (or session token's) SHA-256. Only a
//! caller already authenticated takes an entry, so the maps hold at most one entry per
//! live key or session; an unknown key never reaches them.
//!
//! The counts live in each server's memory: behind a balancer over several nodes, a key
//! gets each node's budget. The defaults are far above what `flywheel bench` and the demos
//! ask of one key (the `decisions` bench: ~34k requests a second from one service key in a
//! release build), so that only a runaway client meets them.

use std::num::NonZeroU32;

use flywheel_store::Principal;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

/// Requests a second an admin key may make (its burst is twice this).
pub const DEFAULT_ADMIN_PER_SECOND: u32 = 10_000;
/// Requests a second a service key may make.
pub const DEFAULT_SERVICE_PER_SECOND: u32 = 100_000;
/// Requests a second a reviewer key or session may make.
pub const DEFAULT_REVIEWER_PER_SECOND: u32 = 10_000;

/// Requests a second per key, by role; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSettings {
    pub admin: u32,
    pub service: u32,
    pub reviewer: u32,
}

impl Default for RateSettings {
    fn default() -> Self {
        Self {
            admin: DEFAULT_ADMIN_PER_SECOND,
            service: DEFAULT_SERVICE_PER_SECOND,
            reviewer: DEFAULT_REVIEWER_PER_SECOND,
        }
    }
}

type Keyed = RateLimiter<String, HashMapStateStore<String>, DefaultClock>;

/// The limiters of the three roles (none for a role without a limit).
pub struct RateLimits {
    admin: Option<Keyed>,
    service: Option<Keyed>,
    reviewer: Option<Keyed>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(RateSettings::default())
    }
}

impl RateLimits {
    pub fn new(s: RateSettings) -> Self {
        let limiter = |per_second: u32| {
            let rate = NonZeroU32::new(per_second)?;
            let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
            Some(RateLimiter::hashmap(Quota::per_second(rate).allow_burst(burst)))
        };
        Self {
            admin: limiter(s.admin),
            service: limiter(s.service),
            reviewer: limiter(s.reviewer),
        }
    }

    /// Takes one request from the budget of the key whose hash is `key_hash`, held by
    /// `principal`: `Err(seconds)` to wait (at least 1) when it is spent.
    pub fn check(&self, principal: &Principal, key_hash: &str) -> Result<(), u64> {
        let limiter = match principal {
            Principal::Admin => &self.admin,
            Principal::Service { .. } => &self.service,
            Principal::Reviewer(_) => &self.reviewer,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(&key_hash.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_its_budget_waits_and_others_do_not() {
        let limits = RateLimits::new(RateSettings {
            admin: 0,
            service: 1,
            reviewer: 5,
        });
        let service = Principal::Service { projects: vec![1] };
        // A burst of twice the rate, then a wait of at least a second.
        assert_eq!(limits.check(&service, "a"), Ok(()));
        assert_eq!(limits.check(&service, "a"), Ok(()));
        let wait = limits.check(&service, "a").unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        // Another key of the same role has its own budget.
        assert_eq!(limits.check(&service, "b"), Ok(()));
        // A role without a limit is never refused.
        for _ in 0..1000 {
            assert_eq!(limits.check(&Principal::Admin, "a"), Ok(()));
        }
    }
}
