//! What the store lets the server observe of its own machinery, without depending on a
//! metrics crate: histograms whose buckets are fixed here and counted with atomics, read
//! whole at scrape time ([`Histogram::snapshot`]). The server turns a snapshot into its
//! metrics format; the store never formats anything.
//!
//! Only the SQLite writer has such machinery today ([`WriterStats`]: how many jobs each
//! group commit holds, how long each fsync of the WAL takes). Recording is a few relaxed
//! atomic additions, so it costs the writer thread nothing it would notice.

use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram over fixed upper bounds (the last bucket, `+Inf`, is implicit).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound plus one for `+Inf`; not cumulative.
    counts: Vec<AtomicU64>,
    /// The sum of observations, as `f64` bits (updated with a compare-and-swap loop).
    sum: AtomicU64,
}

/// A histogram as read at one moment: the count of each bucket by its upper bound (not
/// cumulative: what falls in `(previous bound, bound]`), ending with `+Inf`; the total
/// count; the sum of the observations.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// A histogram with these upper bounds, which must be increasing.
    pub fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds increase");
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, v: f64) {
        let i = self.bounds.iter().position(|b| v <= *b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let _ = self.sum.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
            Some((f64::from_bits(s) + v).to_bits())
        });
    }

    /// The counts so far. Observations racing with the read may be in a bucket and not
    /// yet in the sum (or the other way round) — fine for monitoring.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            total += n;
            buckets.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), n));
        }
        HistogramSnapshot {
            buckets,
            sum: f64::from_bits(self.sum.load(Ordering::Relaxed)),
            count: total,
        }
    }
}

/// Jobs per group commit: 1 when idle, up to the writer's cap of 1,024 under load.
pub const GROUP_SIZE_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
/// Seconds per WAL fsync: tens of microseconds on a fast disk, milliseconds on most.
pub const FSYNC_SECONDS_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The SQLite writer's figures (see `sqlite/writer.rs`).
#[derive(Debug)]
pub struct WriterStats {
    /// Jobs in each committed group (a merged submission counts once per caller).
    pub group_commit_size: Histogram,
    /// Seconds each fsync of the WAL took (one fsync covers every group committed while
    /// the last one ran).
    pub wal_fsync_seconds: Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            group_commit_size: Histogram::new(GROUP_SIZE_BOUNDS),
            wal_fsync_seconds: Histogram::new(FSYNC_SECONDS_BOUNDS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_counts_each_bucket_and_ends_at_infinity() {
        let h = Histogram::new(&[1.0, 2.0]);
        for v in [0.5, 1.0, 1.5, 9.0] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(1.0, 2), (2.0, 1), (f64::INFINITY, 1)]);
        assert_eq!((s.count, s.sum), (4, 12.0));
    }
}
