//! Reviewer fatigue and pacing, pure: work sessions cut from a reviewer's answers, and the
//! fatigue monitor that compares a session's recent window with its first.
//!
//! A **work session** is a run of answers with no gap over the policy's
//! `session_gap_seconds`. The server reads a reviewer's recent answers (when, time on task,
//! `too_fast`, and a correctness signal where one exists: a gold answer right or wrong, or
//! agreement with the item's final resolution when someone else took part in it) and asks
//! this module what they mean; nothing here reads a clock or a database.
//!
//! The monitor ([`assess`]) fires on either
//! * **accuracy**: the recent `window` answers with a signal against the session's first
//!   `window` — a one-sided two-proportion test (Fisher's exact test, conditional on the
//!   errors of both windows, so that it holds its level at accuracies near 1, where the
//!   normal approximation fires far too often) with p below `alpha`; or
//! * **speed**: the median time on task of the recent `window` answers at or below
//!   `(1 − speedup)` of the first window's, with accuracy not rising between them.
//!
//! The baseline is the session's first window, not earlier sessions: a baseline of
//! hundreds of answers makes the test so sharp that the many looks of a long session
//! (one per answer) raise false alarms well past `alpha` (measured: 25% of untiring
//! 200-answer sessions at `alpha` 0.05, against 4.5% with the first window).

use crate::event::FatigueWindow;
use crate::policy::FatigueSpec;
use crate::quality;

/// One answer as the monitor sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionAnswer {
    pub answered_at: i64,
    /// From claim to answer, in milliseconds.
    pub time_ms: i64,
    pub too_fast: bool,
    /// Whether it was right, where that is known (gold, or a resolution others took part in).
    pub correct: Option<bool>,
}

/// Where the last session of `answers` (sorted by `answered_at`) begins: the answer after
/// the last gap over `gap_ms` (0 when there is none).
pub fn session_start(answers: &[SessionAnswer], gap_ms: i64) -> usize {
    answers
        .windows(2)
        .rposition(|w| w[1].answered_at - w[0].answered_at > gap_ms)
        .map_or(0, |i| i + 1)
}

/// Whether a session whose last answer was at `last_answer_at` is still going at `now`.
pub fn ongoing(last_answer_at: i64, now: i64, gap_ms: i64) -> bool {
    now - last_answer_at <= gap_ms
}

/// A session's figures, as `GET …/reviewers` shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub started_at: i64,
    pub last_answer_at: i64,
    pub answers: u64,
    pub minutes: f64,
    pub median_seconds: Option<f64>,
    pub too_fast: u64,
    /// Answers with a correctness signal, and how many of them were right.
    pub signals: u64,
    pub correct: u64,
}

impl SessionSummary {
    pub fn accuracy(&self) -> Option<f64> {
        (self.signals > 0).then(|| self.correct as f64 / self.signals as f64)
    }
}

/// The figures of `session` (its answers, oldest first); `None` when it is empty.
pub fn summarize(session: &[SessionAnswer]) -> Option<SessionSummary> {
    let (first, last) = (session.first()?, session.last()?);
    let signals: Vec<bool> = session.iter().filter_map(|a| a.correct).collect();
    Some(SessionSummary {
        started_at: first.answered_at,
        last_answer_at: last.answered_at,
        answers: session.len() as u64,
        minutes: (last.answered_at - first.answered_at + first.time_ms.max(0)) as f64 / 60_000.0,
        median_seconds: median_seconds(session),
        too_fast: session.iter().filter(|a| a.too_fast).count() as u64,
        signals: signals.len() as u64,
        correct: signals.iter().filter(|c| **c).count() as u64,
    })
}

/// Why the monitor fired, with the evidence `reviewer.fatigued` carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// `accuracy` or `speed`.
    pub reason: &'static str,
    pub baseline: FatigueWindow,
    pub recent: FatigueWindow,
    pub p_value: Option<f64>,
}

/// The monitor on one session's answers so far (oldest first). The caller fires it once
/// per session: this says whether the evidence is there now.
pub fn assess(spec: &FatigueSpec, session: &[SessionAnswer]) -> Option<Finding> {
    let w = spec.window as usize;
    let signalled: Vec<SessionAnswer> = session.iter().copied().filter(|a| a.correct.is_some()).collect();
    if signalled.len() >= 2 * w {
        let (base, recent) = (&signalled[..w], &signalled[signalled.len() - w..]);
        let (b, r) = (window(base), window(recent));
        let p = drop_p_value(b.signals - b.correct, b.signals, r.signals - r.correct, r.signals);
        if r.correct * b.signals < b.correct * r.signals && p < spec.alpha {
            return Some(Finding {
                reason: "accuracy",
                baseline: b,
                recent: r,
                p_value: Some(p),
            });
        }
    }
    if session.len() >= 2 * w {
        let (base, recent) = (&session[..w], &session[session.len() - w..]);
        let (b, r) = (window(base), window(recent));
        let faster = match (b.median_seconds, r.median_seconds) {
            (Some(mb), Some(mr)) => mb > 0.0 && mr <= (1.0 - spec.speedup) * mb,
            _ => false,
        };
        // Accuracy "not rising": no signal either side counts as not rising.
        let rising = b.signals > 0 && r.signals > 0 && r.correct * b.signals > b.correct * r.signals;
        if faster && !rising {
            let p = (b.signals > 0 && r.signals > 0)
                .then(|| drop_p_value(b.signals - b.correct, b.signals, r.signals - r.correct, r.signals));
            return Some(Finding {
                reason: "speed",
                baseline: b,
                recent: r,
                p_value: p,
            });
        }
    }
    None
}

/// A window's figures: its signals with their Wilson interval, and its median time.
pub fn window(answers: &[SessionAnswer]) -> FatigueWindow {
    let signals = answers.iter().filter(|a| a.correct.is_some()).count() as u64;
    let correct = answers.iter().filter(|a| a.correct == Some(true)).count() as u64;
    let interval = quality::wilson95(correct, signals);
    FatigueWindow {
        signals,
        correct,
        accuracy: (signals > 0).then(|| correct as f64 / signals as f64),
        accuracy_lower: interval.map(|i| i.lower),
        accuracy_upper: interval.map(|i| i.upper),
        median_seconds: median_seconds(answers),
    }
}

fn median_seconds(answers: &[SessionAnswer]) -> Option<f64> {
    let mut t: Vec<i64> = answers.iter().map(|a| a.time_ms.max(0)).collect();
    if t.is_empty() {
        return None;
    }
    t.sort_unstable();
    let n = t.len();
    let m = if n % 2 == 1 {
        t[n / 2] as f64
    } else {
        (t[n / 2 - 1] + t[n / 2]) as f64 / 2.0
    };
    Some(m / 1000.0)
}

/// The one-sided p-value that the recent window's error rate is higher than the
/// baseline's: Fisher's exact test, P(X ≥ `recent_errors`) for X hypergeometric — the
/// errors of both windows together, drawn into the recent window's `recent_n`.
pub fn drop_p_value(base_errors: u64, base_n: u64, recent_errors: u64, recent_n: u64) -> f64 {
    let n = base_n + recent_n;
    let k = base_errors + recent_errors;
    if n == 0 || recent_n == 0 {
        return 1.0;
    }
    let lf = log_factorials(n as usize);
    let ln_choose = |a: u64, b: u64| lf[a as usize] - lf[b as usize] - lf[(a - b) as usize];
    let total = ln_choose(n, k);
    let hi = k.min(recent_n);
    let lo = recent_errors.max(k.saturating_sub(base_n));
    let p: f64 = (lo..=hi)
        .map(|x| (ln_choose(recent_n, x) + ln_choose(base_n, k - x) - total).exp())
        .sum();
    p.min(1.0)
}

fn log_factorials(n: usize) -> Vec<f64> {
    let mut lf = Vec::with_capacity(n + 1);
    lf.push(0.0);
    for i in 1..=n {
        lf.push(lf[i - 1] + (i as f64).ln());
    }
    lf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(correct: &[Option<bool>], time_ms: impl Fn(usize) -> i64) -> Vec<SessionAnswer> {
        correct
            .iter()
            .enumerate()
            .map(|(i, c)| SessionAnswer {
                answered_at: i as i64 * 30_000,
                time_ms: time_ms(i),
                too_fast: false,
                correct: *c,
            })
            .collect()
    }

    fn spec() -> FatigueSpec {
        FatigueSpec::default()
    }

    #[test]
    fn fishers_exact_test_is_the_hypergeometric_tail() {
        // The hypergeometric tail in exact integers (Python's math.comb), as
        // scipy.stats.fisher_exact([[28, 2], [20, 10]], alternative="greater") computes it
        // (rows: baseline, recent; columns: right, wrong).
        let p = drop_p_value(2, 30, 10, 30);
        assert!((p - 0.010_572_623_171_767_15).abs() < 1e-12, "{p}");
        let p = drop_p_value(1, 30, 3, 30);
        assert!((p - 0.305_976_806_422_836_8).abs() < 1e-12, "{p}");
        assert_eq!(drop_p_value(0, 30, 0, 30), 1.0);
    }

    #[test]
    fn sessions_are_cut_at_gaps_over_the_limit() {
        let at = |t: &[i64]| -> Vec<SessionAnswer> {
            t.iter()
                .map(|&answered_at| SessionAnswer {
                    answered_at,
                    time_ms: 1_000,
                    too_fast: false,
                    correct: None,
                })
                .collect()
        };
        assert_eq!(session_start(&at(&[0, 100, 200]), 100), 0);
        assert_eq!(session_start(&at(&[0, 100, 201, 250]), 100), 2);
        assert_eq!(session_start(&at(&[]), 100), 0);
        assert!(ongoing(1_000, 1_900, 900) && !ongoing(1_000, 1_901, 900));
    }

    #[test]
    fn a_steady_reviewer_does_not_fire() {
        // 95% right throughout, the same speed.
        let c: Vec<Option<bool>> = (0..200).map(|i| Some(i % 20 != 7)).collect();
        assert_eq!(assess(&spec(), &answers(&c, |_| 20_000)), None);
    }

    #[test]
    fn a_drop_in_accuracy_beyond_noise_fires_with_its_evidence() {
        let mut c: Vec<Option<bool>> = (0..30).map(|i| Some(i != 5)).collect();
        c.extend((0..30).map(|i| Some(i % 3 != 0))); // 20 of 30
        let f = assess(&spec(), &answers(&c, |_| 20_000)).expect("fires");
        assert_eq!(f.reason, "accuracy");
        assert_eq!((f.baseline.signals, f.baseline.correct), (30, 29));
        assert_eq!((f.recent.signals, f.recent.correct), (30, 20));
        assert!(f.p_value.unwrap() < 0.05);
        let (lo, hi) = (f.recent.accuracy_lower.unwrap(), f.recent.accuracy_upper.unwrap());
        assert!(lo < 2.0 / 3.0 && 2.0 / 3.0 < hi);
        assert_eq!(f.recent.median_seconds, Some(20.0));
        // Too few signals for two windows: nothing yet.
        assert_eq!(assess(&spec(), &answers(&c[..59], |_| 20_000)), None);
        // A drop within noise (29 → 27 of 30) does not fire.
        let mut small: Vec<Option<bool>> = (0..30).map(|i| Some(i != 5)).collect();
        small.extend((0..30).map(|i| Some(i % 10 != 0)));
        assert_eq!(assess(&spec(), &answers(&small, |_| 20_000)), None);
    }

    #[test]
    fn answers_without_a_signal_wait_for_one() {
        // The same drop, with every other answer unsignalled: the test needs 60 signals.
        let mut c = Vec::new();
        for i in 0..60 {
            c.push(Some(i != 5));
            c.push(None);
        }
        for i in 0..60 {
            c.push(if i % 2 == 0 { Some(i % 6 != 0) } else { None });
        }
        let a = answers(&c, |_| 20_000);
        assert_eq!(assess(&spec(), &a[..150]), None);
        assert_eq!(assess(&spec(), &a).map(|f| f.reason), Some("accuracy"));
    }

    #[test]
    fn speeding_up_fires_only_while_accuracy_does_not_rise() {
        let c: Vec<Option<bool>> = (0..60).map(|i| Some(i % 10 != 3)).collect();
        let fast = |i: usize| if i < 30 { 20_000 } else { 12_000 };
        let f = assess(&spec(), &answers(&c, fast)).expect("fires");
        assert_eq!(f.reason, "speed");
        assert_eq!(
            (f.baseline.median_seconds, f.recent.median_seconds),
            (Some(20.0), Some(12.0))
        );
        // Not fast enough: 13 s is a 35% fall.
        assert_eq!(
            assess(&spec(), &answers(&c, |i| if i < 30 { 20_000 } else { 13_000 })),
            None
        );
        // Faster but more accurate: practice, not fatigue.
        let mut better: Vec<Option<bool>> = (0..30).map(|i| Some(i % 5 != 0)).collect();
        better.extend((0..30).map(|_| Some(true)));
        assert_eq!(assess(&spec(), &answers(&better, fast)), None);
        // Speed alone, with no signals at all, fires.
        let none = vec![None; 60];
        assert_eq!(assess(&spec(), &answers(&none, fast)).map(|f| f.reason), Some("speed"));
    }

    #[test]
    fn a_summary_counts_the_session() {
        let mut a = answers(&[Some(true), Some(false), None, Some(true)], |i| {
            10_000 * (i as i64 + 1)
        });
        a[2].too_fast = true;
        let s = summarize(&a).unwrap();
        assert_eq!((s.answers, s.too_fast, s.signals, s.correct), (4, 1, 3, 2));
        assert_eq!(s.median_seconds, Some(25.0));
        // From the first claim (10 s before the first answer) to the last answer.
        assert!((s.minutes - (90_000.0 + 10_000.0) / 60_000.0).abs() < 1e-9);
        assert_eq!(s.accuracy(), Some(2.0 / 3.0));
        assert_eq!(summarize(&[]), None);
    }
}
