//! Erlang C: how many reviewers one queue needs, when work arrives as a Poisson stream and
//! each task takes an exponentially distributed time (M/M/N, first come first served).
//!
//! With `A = λ·h` the offered load in erlangs (λ arrivals per second, `h` seconds per
//! task) and `N > A` reviewers:
//!
//! - Erlang B by its recurrence, `B(0) = 1`, `B(n) = A·B(n−1) / (n + A·B(n−1))` — no
//!   factorials or powers, so it neither overflows nor loses precision at `N = 1000`;
//! - Erlang C from B: `C = N·B / (N − A·(1 − B))`, the chance that a task waits at all;
//! - service level `1 − C·e^{−(N−A)·T/h}`, the share answered within `T` seconds of
//!   arriving (waiting, here: a reviewer takes it by then);
//! - average wait `C·h / (N − A)`, occupancy `A / N`.
//!
//! `staff` is the smallest `N > A` whose service level meets the target; with shrinkage
//! `Z` (breaks, meetings, absence) the reviewers to schedule are `⌈N / (1 − Z)⌉`.

use serde::Serialize;

/// The largest staff [`staff`] searches; a target that needs more is refused.
pub const MAX_REVIEWERS: u32 = 100_000;

/// One queue's workload and target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Queue {
    pub arrivals_per_hour: f64,
    pub handle_seconds: f64,
    /// The wait `T` the service level counts within.
    pub answer_within_seconds: f64,
    /// The share to answer within `T`, in (0, 1).
    pub service_level: f64,
}

/// The Erlang C figures of one queue at one staffing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Staffing {
    pub reviewers: u32,
    /// Offered load in erlangs, `λ·h`.
    pub offered_load: f64,
    pub service_level: f64,
    pub waiting_probability: f64,
    pub occupancy: f64,
    pub average_wait_seconds: f64,
    /// `⌈reviewers / (1 − shrinkage)⌉`, when a shrinkage was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_reviewers: Option<u32>,
}

/// Erlang B, the blocking probability of `n` servers under load `a`, by the recurrence.
pub fn erlang_b(a: f64, n: u32) -> f64 {
    let mut b = 1.0;
    for k in 1..=n {
        b = a * b / (f64::from(k) + a * b);
    }
    b
}

/// Erlang C, the chance that an arrival waits, for `n > a` servers (1 when `n ≤ a`: the
/// queue grows without bound).
pub fn erlang_c(a: f64, n: u32) -> f64 {
    let n_f = f64::from(n);
    if n_f <= a {
        return 1.0;
    }
    let b = erlang_b(a, n);
    n_f * b / (n_f - a * (1.0 - b))
}

/// The figures of `q` with `n` reviewers (`n` above the offered load).
pub fn at(q: &Queue, n: u32) -> Staffing {
    let a = q.arrivals_per_hour / 3600.0 * q.handle_seconds;
    let n_f = f64::from(n);
    let c = erlang_c(a, n);
    let (service_level, average_wait_seconds) = if n_f > a {
        (
            1.0 - c * (-(n_f - a) * q.answer_within_seconds / q.handle_seconds).exp(),
            c * q.handle_seconds / (n_f - a),
        )
    } else {
        (0.0, f64::INFINITY)
    };
    Staffing {
        reviewers: n,
        offered_load: a,
        service_level,
        waiting_probability: c,
        occupancy: a / n_f,
        average_wait_seconds,
        scheduled_reviewers: None,
    }
}

/// What is wrong with a queue's figures, naming the flag.
fn check(q: &Queue) -> Result<(), String> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(q.arrivals_per_hour) {
        return Err(format!(
            "--arrivals-per-hour is a positive number, got {}",
            q.arrivals_per_hour
        ));
    }
    if !positive(q.handle_seconds) {
        return Err(format!(
            "--handle-seconds is a positive number, got {}",
            q.handle_seconds
        ));
    }
    if !q.answer_within_seconds.is_finite() || q.answer_within_seconds < 0.0 {
        return Err(format!(
            "--answer-within-seconds is zero or more, got {}",
            q.answer_within_seconds
        ));
    }
    if !(q.service_level.is_finite() && q.service_level > 0.0 && q.service_level < 1.0) {
        return Err(format!("--service-level is a share in (0, 1), got {}", q.service_level));
    }
    Ok(())
}

/// The smallest staff above the offered load that meets the target, with its figures;
/// with `shrinkage` (in [0, 1)) also the reviewers to schedule.
pub fn staff(q: &Queue, shrinkage: Option<f64>) -> Result<Staffing, String> {
    check(q)?;
    if let Some(z) = shrinkage
        && (!z.is_finite() || !(0.0..1.0).contains(&z))
    {
        return Err(format!("--shrinkage is a share in [0, 1), got {z}"));
    }
    let a = q.arrivals_per_hour / 3600.0 * q.handle_seconds;
    // The first integer above the load; the service level rises with every reviewer.
    let first = a.floor() + 1.0;
    if first > f64::from(MAX_REVIEWERS) {
        return Err(format!(
            "the offered load is {a:.1} erlangs: more than {MAX_REVIEWERS} reviewers"
        ));
    }
    let mut n = first as u32;
    loop {
        let s = at(q, n);
        if s.service_level >= q.service_level {
            let scheduled = shrinkage.map(|z| {
                // A tolerance for f64's rounding: 14 / 0.7 is 20, not 21.
                (f64::from(n) / (1.0 - z) - 1e-9).ceil() as u32
            });
            return Ok(Staffing {
                scheduled_reviewers: scheduled,
                ..s
            });
        }
        if n >= MAX_REVIEWERS {
            return Err(format!(
                "no staff up to {MAX_REVIEWERS} reviewers meets the service level"
            ));
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Erlang C by its textbook formula, term by term in f64: fine for small `n`.
    fn direct_c(a: f64, n: u32) -> f64 {
        let mut fact = 1.0;
        let mut sum = 0.0;
        for k in 0..n {
            if k > 0 {
                fact *= f64::from(k);
            }
            sum += a.powi(k as i32) / fact;
        }
        let top = a.powi(n as i32) / (fact * f64::from(n)) * f64::from(n) / (f64::from(n) - a);
        top / (sum + top)
    }

    #[test]
    fn three_servers_at_two_erlangs_by_hand() {
        // M/M/3 at A = 2: B(3) = (8/6) / (1 + 2 + 2 + 8/6) = 4/19, and
        // C = 3·(4/19) / (3 − 2·15/19) = (12/19) / (27/19) = 4/9.
        assert!((erlang_b(2.0, 3) - 4.0 / 19.0).abs() < 1e-12);
        assert!((erlang_c(2.0, 3) - 4.0 / 9.0).abs() < 1e-12);
        // Average wait with h = 1: C / (N − A) = 4/9.
        let q = Queue {
            arrivals_per_hour: 7200.0,
            handle_seconds: 1.0,
            answer_within_seconds: 0.0,
            service_level: 0.5,
        };
        let s = at(&q, 3);
        assert!((s.average_wait_seconds - 4.0 / 9.0).abs() < 1e-12);
        assert!((s.service_level - 5.0 / 9.0).abs() < 1e-12);
        assert!((s.occupancy - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_recurrence_agrees_with_the_direct_formula() {
        for (a, n) in [
            (0.5, 1),
            (2.0, 3),
            (10.0, 14),
            (10.0, 11),
            (7.3, 9),
            (30.0, 35),
            (49.5, 60),
        ] {
            let (r, d) = (erlang_c(a, n), direct_c(a, n));
            assert!((r - d).abs() < 1e-9, "A={a} N={n}: {r} vs {d}");
        }
    }

    #[test]
    fn pyworkforce_documented_example() {
        // pyworkforce's ErlangC example: 100 transactions per 30 minutes, AHT 3 minutes,
        // 20 s target, 80% service level, 30% shrinkage → 14 raw positions, 20 scheduled,
        // service level 0.8883, occupancy 0.7143, waiting probability 0.1741. The figures
        // below are the direct formula's (computed independently in Python with
        // factorials): C(10, 14) = 0.17413193359504983, SL = 0.8883500191794669.
        let q = Queue {
            arrivals_per_hour: 200.0,
            handle_seconds: 180.0,
            answer_within_seconds: 20.0,
            service_level: 0.8,
        };
        let s = staff(&q, Some(0.3)).unwrap();
        assert_eq!(s.reviewers, 14);
        assert_eq!(s.scheduled_reviewers, Some(20));
        assert!((s.offered_load - 10.0).abs() < 1e-12);
        assert!((s.waiting_probability - 0.174_131_933_595_049_83).abs() < 1e-9);
        assert!((s.waiting_probability - direct_c(10.0, 14)).abs() < 1e-9);
        assert!((s.service_level - 0.888_350_019_179_466_9).abs() < 1e-9);
        assert!((s.occupancy - 10.0 / 14.0).abs() < 1e-12);
        assert!((s.average_wait_seconds - 7.835_937_011_777_243).abs() < 1e-6);
        // 13 reviewers fall short: 0.7956 < 0.8.
        assert!(at(&q, 13).service_level < 0.8);
    }

    #[test]
    fn large_staffs_stay_finite() {
        // 900 erlangs: factorials would overflow f64 (170! is the largest finite one).
        // The references were computed in Python in log space (lgamma, a shifted sum).
        assert!((erlang_c(900.0, 1000) - 0.000_592_669_966_378_794_9).abs() < 1e-9);
        assert!((erlang_c(990.0, 1000) - 0.659_080_421_880_980_8).abs() < 1e-9);
        let q = Queue {
            arrivals_per_hour: 3600.0 * 900.0,
            handle_seconds: 1.0,
            answer_within_seconds: 0.1,
            service_level: 0.95,
        };
        let s = staff(&q, None).unwrap();
        assert!(s.reviewers > 900 && s.reviewers < 1000, "{}", s.reviewers);
        assert!(at(&q, s.reviewers - 1).service_level < 0.95);
    }

    #[test]
    fn bad_figures_name_their_flag() {
        let ok = Queue {
            arrivals_per_hour: 100.0,
            handle_seconds: 30.0,
            answer_within_seconds: 20.0,
            service_level: 0.8,
        };
        for (q, flag) in [
            (
                Queue {
                    arrivals_per_hour: 0.0,
                    ..ok
                },
                "--arrivals-per-hour",
            ),
            (
                Queue {
                    handle_seconds: f64::NAN,
                    ..ok
                },
                "--handle-seconds",
            ),
            (
                Queue {
                    answer_within_seconds: -1.0,
                    ..ok
                },
                "--answer-within-seconds",
            ),
            (
                Queue {
                    service_level: 1.0,
                    ..ok
                },
                "--service-level",
            ),
        ] {
            let e = staff(&q, None).unwrap_err();
            assert!(e.starts_with(flag), "{e}");
        }
        assert!(staff(&ok, Some(1.0)).unwrap_err().starts_with("--shrinkage"));
    }
}
