//! The brake on password sign-ins: what keeps guessing slow and keeps parallel sign-ins
//! from exhausting memory.
//!
//! Two parts, both per server (per node: on several nodes behind a balancer each keeps
//! its own counts, so an attacker who reaches every node gets each node's budget):
//!
//! - [`Brake`] counts failures per name and per client IP, and reserves an attempt
//!   *before* the password hash runs, under one lock: an attempt in flight counts as a
//!   failure until it is known not to be one, so N parallel guesses get no more through
//!   than N sequential ones. After [`NAME_FREE_FAILURES`] failures for a name (or
//!   [`IP_FREE_FAILURES`] from an IP) each further attempt waits `2^(f - free)` seconds
//!   after the last failure, capped at [`MAX_DELAY_MS`]: an attacker is slowed, while the
//!   owner is never refused for more than the cap. A success clears the name's count.
//! - [`HashGate`] bounds how many Argon2 hashes run at once (each takes
//!   [`ARGON2_M_COST_KIB`] KiB of memory); a sign-in that finds it full waits up to
//!   [`HASH_WAIT`] and then is refused with 429 and `Retry-After`.
//!
//! Must not: read the wall clock (the app's clock is passed in as `now`, in milliseconds).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Failures a name may have before each further attempt is delayed.
pub const NAME_FREE_FAILURES: u32 = 5;
/// Failures a client IP may have before each further attempt is delayed (higher than a
/// name's: several people may share one address behind a NAT).
pub const IP_FREE_FAILURES: u32 = 20;
/// The longest delay between attempts: five minutes.
pub const MAX_DELAY_MS: i64 = 300_000;
/// A name's or an IP's count is forgotten this long after its last failure.
pub const FORGET_AFTER_MS: i64 = 900_000;
/// How long a sign-in waits for a free hashing slot before it is refused.
pub const HASH_WAIT: Duration = Duration::from_secs(2);
/// Most names and addresses remembered; beyond it the oldest idle entries are dropped.
const MAX_ENTRIES: usize = 100_000;

/// Argon2id parameters for passwords: OWASP's Password Storage Cheat Sheet recommends
/// Argon2id with m = 19 MiB, t = 2, p = 1 as its baseline (these are also the `argon2`
/// crate's defaults, stated here so a change of default cannot weaken them silently). 19 MiB
/// per hash is also why [`HashGate`] bounds how many run at once.
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;
pub const ARGON2_T_COST: u32 = 2;
pub const ARGON2_P_COST: u32 = 1;

/// The Argon2id hasher with the parameters above.
pub fn argon2() -> argon2::Argon2<'static> {
    let params =
        argon2::Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None).expect("valid Argon2 parameters");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Who {
    Name(String),
    Ip(IpAddr),
}

#[derive(Default)]
struct Count {
    failures: u32,
    in_flight: u32,
    last_failure_ms: i64,
}

impl Count {
    /// When the next attempt may start, or `None` if it may start now.
    fn wait_until(&self, free: u32, now: i64) -> Option<i64> {
        let presumed = self.failures + self.in_flight;
        if presumed < free {
            return None;
        }
        if self.in_flight > 0 {
            // Over the free budget, one attempt at a time; the next waits for its outcome.
            return Some(now + 1000);
        }
        let until = self.last_failure_ms + delay_ms(self.failures - free);
        (until > now).then_some(until)
    }
}

/// The delay after `over` failures beyond the free budget: 1 s, 2 s, 4 s, … capped at
/// [`MAX_DELAY_MS`].
pub fn delay_ms(over: u32) -> i64 {
    1000i64.saturating_mul(1i64 << over.min(20)).min(MAX_DELAY_MS)
}

/// Failed sign-ins per name and per client IP on this node.
#[derive(Default)]
pub struct Brake(Mutex<HashMap<Who, Count>>);

/// An attempt the brake let through; report its outcome with [`Brake::finish`].
#[must_use]
pub struct Attempt {
    name: Who,
    ip: Option<Who>,
}

impl Brake {
    /// Reserves an attempt for `name` from `ip`, or says until when (epoch ms) it must wait.
    pub fn begin(&self, name: &str, ip: Option<IpAddr>, now: i64) -> Result<Attempt, i64> {
        let name = Who::Name(name.to_string());
        let ip = ip.map(Who::Ip);
        let mut m = self.0.lock().expect("sign-in brake");
        if m.len() > MAX_ENTRIES {
            m.retain(|_, c| c.in_flight > 0 || now - c.last_failure_ms < FORGET_AFTER_MS);
        }
        let mut wait = m.get(&name).and_then(|c| c.wait_until(NAME_FREE_FAILURES, now));
        if let Some(ip) = &ip
            && let Some(until) = m.get(ip).and_then(|c| c.wait_until(IP_FREE_FAILURES, now))
        {
            wait = Some(wait.map_or(until, |w| w.max(until)));
        }
        if let Some(until) = wait {
            return Err(until);
        }
        for who in std::iter::once(&name).chain(ip.as_ref()) {
            let c = m.entry(who.clone()).or_default();
            if now - c.last_failure_ms >= FORGET_AFTER_MS && c.in_flight == 0 {
                c.failures = 0;
            }
            c.in_flight += 1;
        }
        Ok(Attempt { name, ip })
    }

    /// Ends `attempt`: `Some(true)` signed in (the name's count is cleared), `Some(false)`
    /// failed (counted against the name and the IP), `None` never tried (say, no hashing
    /// slot was free).
    pub fn finish(&self, attempt: Attempt, outcome: Option<bool>, now: i64) {
        let mut m = self.0.lock().expect("sign-in brake");
        for who in std::iter::once(&attempt.name).chain(attempt.ip.as_ref()) {
            if let Some(c) = m.get_mut(who) {
                c.in_flight = c.in_flight.saturating_sub(1);
                if outcome == Some(false) {
                    c.failures += 1;
                    c.last_failure_ms = now;
                }
            }
        }
        if outcome == Some(true) && m.get(&attempt.name).is_some_and(|c| c.in_flight == 0) {
            m.remove(&attempt.name);
        }
    }
}

/// How many password hashes may run at once: twice the cores (a hash is CPU-bound, so
/// more would only queue in the blocking pool while holding 19 MiB each). Each slot keeps
/// the memory its hash works in and hands it to the next: allocating 19 MiB per sign-in
/// fragmented the allocator's heap until 200 sign-ins had grown the process by ~1.5 GB
/// even with the slots bounded.
pub struct HashGate {
    slots: tokio::sync::Semaphore,
    memory: Mutex<Vec<Vec<argon2::Block>>>,
}

impl Default for HashGate {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            slots: tokio::sync::Semaphore::new(2 * cores),
            memory: Mutex::default(),
        }
    }
}

impl HashGate {
    /// Verifies `password` against the PHC string `stored` in a free slot, waiting up to
    /// [`HASH_WAIT`] for one: `None` when none came free, else whether it matched.
    pub async fn verify(&self, password: String, stored: String) -> Option<bool> {
        let _slot = tokio::time::timeout(HASH_WAIT, self.slots.acquire()).await.ok()?.ok()?;
        let mut memory = self.memory.lock().expect("hash memory").pop().unwrap_or_default();
        let (ok, memory) = tokio::task::spawn_blocking(move || {
            let ok = verify_in(password.as_bytes(), &stored, &mut memory);
            (ok, memory)
        })
        .await
        .ok()?;
        self.memory.lock().expect("hash memory").push(memory);
        Some(ok)
    }
}

/// Whether `password` hashes to the PHC string `stored` (Argon2, with the parameters the
/// string names), working in `memory` (grown to the size the parameters need, and kept).
/// The outputs are compared in constant time (`Output`'s `PartialEq`).
pub fn verify_in(password: &[u8], stored: &str, memory: &mut Vec<argon2::Block>) -> bool {
    use argon2::password_hash::phc::{Output, PasswordHash};
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        argon2::Params::try_from(&hash),
        argon2::Algorithm::try_from(hash.algorithm.as_str()),
    ) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    memory.resize(params.block_count(), argon2::Block::default());
    let mut out = vec![0u8; expected.len()];
    let hasher = argon2::Argon2::new(algorithm, version, params);
    if hasher
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, &mut memory[..])
        .is_err()
    {
        return false;
    }
    Output::new(&out).is_ok_and(|o| &o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_attempts_get_no_more_than_the_free_budget() {
        let b = Brake::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let through: Vec<_> = (0..50).filter_map(|_| b.begin("ana", Some(ip), 0).ok()).collect();
        assert_eq!(through.len(), NAME_FREE_FAILURES as usize);
        for a in through {
            b.finish(a, Some(false), 0);
        }
        // Over budget: each next attempt waits 1 s, 2 s, 4 s … after the last failure.
        assert_eq!(b.begin("ana", Some(ip), 0).err(), Some(1000));
        let a = b.begin("ana", Some(ip), 1000).unwrap();
        assert!(b.begin("ana", Some(ip), 1000).is_err(), "one at a time over budget");
        b.finish(a, Some(false), 1000);
        assert_eq!(b.begin("ana", None, 1000).err(), Some(3000));
        // A success clears the name.
        let a = b.begin("ana", None, 3000).unwrap();
        b.finish(a, Some(true), 3000);
        assert!(b.begin("ana", None, 3000).is_ok());
    }

    #[test]
    fn the_ip_budget_spans_names_and_the_delay_is_capped() {
        let b = Brake::default();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        for i in 0..IP_FREE_FAILURES {
            let a = b.begin(&format!("n{i}"), Some(ip), 0).unwrap();
            b.finish(a, Some(false), 0);
        }
        assert!(b.begin("fresh", Some(ip), 0).is_err());
        assert!(b.begin("fresh", None, 0).is_ok(), "another address is not braked");
        assert_eq!(delay_ms(0), 1000);
        assert_eq!(delay_ms(3), 8000);
        assert_eq!(delay_ms(40), MAX_DELAY_MS);
    }

    #[test]
    fn verifying_in_kept_memory_agrees_with_the_crate() {
        use argon2::password_hash::PasswordHasher;
        let stored = argon2().hash_password(b"correct horse").unwrap().to_string();
        let mut memory = Vec::new();
        assert!(verify_in(b"correct horse", &stored, &mut memory));
        assert_eq!(memory.len(), ARGON2_M_COST_KIB as usize);
        assert!(!verify_in(b"wrong horse", &stored, &mut memory));
        assert!(!verify_in(b"correct horse", "not a hash", &mut memory));
    }

    #[test]
    fn an_attempt_never_tried_is_not_a_failure() {
        let b = Brake::default();
        for _ in 0..100 {
            let a = b.begin("ana", None, 0).unwrap();
            b.finish(a, None, 0);
        }
        assert!(b.begin("ana", None, 0).is_ok());
    }
}
