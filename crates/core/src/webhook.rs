//! Webhooks' rules, pure: which event kinds an endpoint asked for ([`EventPattern`]),
//! when a failed delivery is tried again ([`next_attempt`]) and what an attempt's answer
//! means for the endpoint ([`verdict`]).
//!
//! The schedule is Standard Webhooks' (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
//! 14 h, 20 h, 24 h), stretched by a jitter the caller draws (core draws no random numbers)
//! and overridden by a receiver's `Retry-After`. Signing, HTTP and the outbox live in the
//! server and the store.

use crate::ValidationError;

/// The delay before each retry: after the first attempt fails, 5 s; after the second,
/// 5 min; … The first attempt is immediate, so there are `RETRY_DELAYS_MS.len() + 1`
/// attempts in all.
pub const RETRY_DELAYS_MS: [i64; 9] = [
    5_000,
    5 * 60_000,
    30 * 60_000,
    2 * 3_600_000,
    5 * 3_600_000,
    10 * 3_600_000,
    14 * 3_600_000,
    20 * 3_600_000,
    24 * 3_600_000,
];

/// Attempts per event before the endpoint is marked failing and the event is passed over.
pub const MAX_ATTEMPTS: u32 = RETRY_DELAYS_MS.len() as u32 + 1;

/// The most a jitter stretches a delay: a tenth, so that endpoints that failed together do
/// not all come back in the same instant.
pub const JITTER: f64 = 0.1;

/// The longest `Retry-After` honoured: a receiver cannot park an endpoint for longer than
/// the schedule's longest step.
pub const MAX_RETRY_AFTER_MS: i64 = 24 * 3_600_000;

/// Most patterns per endpoint.
pub const MAX_PATTERNS: usize = 64;

/// An event-kind pattern an endpoint subscribes to: a kind (`item.resolved`), a family
/// (`task.*`: `task.escalated`, `task.overlap_increased`, …) or every kind (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventPattern {
    All,
    Prefix(String),
    Exact(String),
}

impl EventPattern {
    /// Parses one pattern. A pattern that can match no kind Flywheel writes is refused, so
    /// a typo is caught when the endpoint is saved rather than by silence.
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        let p = if s == "*" {
            EventPattern::All
        } else if let Some(family) = s.strip_suffix(".*") {
            EventPattern::Prefix(format!("{family}."))
        } else {
            EventPattern::Exact(s.to_string())
        };
        if !crate::Event::KINDS.iter().any(|k| p.matches(k)) {
            return Err(ValidationError::new(
                field,
                format!(
                    "'{s}' matches no event kind (kinds look like item.resolved; a family is task.*; everything is *)"
                ),
            ));
        }
        Ok(p)
    }

    pub fn matches(&self, kind: &str) -> bool {
        match self {
            EventPattern::All => true,
            EventPattern::Prefix(p) => kind.starts_with(p.as_str()),
            EventPattern::Exact(k) => kind == k,
        }
    }

    /// Parses an endpoint's whole list: 1 to [`MAX_PATTERNS`] patterns, each named in
    /// errors as `events[i]`.
    pub fn parse_all(patterns: &[String]) -> Result<Vec<EventPattern>, ValidationError> {
        if patterns.is_empty() || patterns.len() > MAX_PATTERNS {
            return Err(ValidationError::new(
                "events",
                format!("events lists 1 to {MAX_PATTERNS} patterns, got {}", patterns.len()),
            ));
        }
        patterns
            .iter()
            .enumerate()
            .map(|(i, s)| EventPattern::parse(&format!("events[{i}]"), s))
            .collect()
    }
}

/// Whether any of `patterns` matches `kind`.
pub fn wanted(patterns: &[EventPattern], kind: &str) -> bool {
    patterns.iter().any(|p| p.matches(kind))
}

/// What an attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 410 Gone: the receiver asks never to be called again; the endpoint is disabled.
    Gone,
    /// Anything else (another status, a timeout, a refused connection): try again later.
    Failed,
}

/// The verdict on an attempt that got HTTP status `status` (`None`: no answer at all).
pub fn verdict(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        _ => Verdict::Failed,
    }
}

/// When to try an event again after its `attempts`-th attempt (1-based) failed at `now`,
/// or `None` when that was the last attempt. `jitter` is a draw in `[0, 1)` that
/// stretches the scheduled delay by up to [`JITTER`]; a `Retry-After` of the receiver's
/// (in milliseconds) replaces the schedule, up to [`MAX_RETRY_AFTER_MS`].
pub fn next_attempt(attempts: u32, now: i64, jitter: f64, retry_after_ms: Option<i64>) -> Option<i64> {
    if attempts >= MAX_ATTEMPTS || attempts == 0 {
        return None;
    }
    let delay = match retry_after_ms {
        Some(ms) => ms.clamp(0, MAX_RETRY_AFTER_MS),
        None => {
            let base = RETRY_DELAYS_MS[attempts as usize - 1];
            base + (base as f64 * JITTER * jitter.clamp(0.0, 1.0)) as i64
        }
    };
    Some(now + delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_kinds_families_and_everything() {
        let exact = EventPattern::parse("e", "item.resolved").unwrap();
        assert!(exact.matches("item.resolved") && !exact.matches("item.decided"));
        let family = EventPattern::parse("e", "task.*").unwrap();
        assert!(family.matches("task.escalated") && family.matches("task.overlap_increased"));
        assert!(!family.matches("taskx.y") && !family.matches("item.resolved"));
        assert!(EventPattern::parse("e", "*").unwrap().matches("monitor"));
        for bad in ["item.resolve", "tasks.*", "", "*.resolved"] {
            let e = EventPattern::parse("events[0]", bad).unwrap_err();
            assert_eq!(e.field, "events[0]", "{bad}");
        }
        assert_eq!(EventPattern::parse_all(&[]).unwrap_err().field, "events");
        let e = EventPattern::parse_all(&["*".into(), "nope".into()]).unwrap_err();
        assert_eq!(e.field, "events[1]");
    }

    #[test]
    fn the_schedule_is_the_specs_with_jitter_and_retry_after() {
        let now = 1_000;
        let plain: Vec<i64> = (1..MAX_ATTEMPTS)
            .map(|a| next_attempt(a, now, 0.0, None).unwrap() - now)
            .collect();
        assert_eq!(plain, RETRY_DELAYS_MS.to_vec());
        assert_eq!(next_attempt(MAX_ATTEMPTS, now, 0.0, None), None, "ten attempts in all");
        assert_eq!(next_attempt(2, now, 0.5, None), Some(now + 300_000 + 15_000));
        let most = next_attempt(1, now, 0.999_999, None).unwrap() - now;
        assert!((5_000..5_500).contains(&most), "{most}");
        assert_eq!(next_attempt(1, now, 0.3, Some(120_000)), Some(now + 120_000));
        assert_eq!(
            next_attempt(1, now, 0.0, Some(i64::MAX / 2)),
            Some(now + MAX_RETRY_AFTER_MS)
        );
        assert_eq!(next_attempt(MAX_ATTEMPTS, now, 0.0, Some(1)), None);
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(Some(204)), Verdict::Delivered);
        assert_eq!(verdict(Some(410)), Verdict::Gone);
        for s in [Some(500), Some(404), Some(301), Some(429), None] {
            assert_eq!(verdict(s), Verdict::Failed);
        }
    }
}
