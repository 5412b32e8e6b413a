//! A log-linear latency histogram in the manner of HdrHistogram: fixed memory, no allocation when
//! recording, values within 1/64 (1.6 %) of the truth.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Values below this are counted exactly; above, each power of two is cut into `HALF` buckets.
const EXACT: u64 = 128;
const EXACT_BITS: u32 = 7;
const HALF: usize = 64;
/// Buckets for every `u64`: the exact ones, then `HALF` per power of two from 2^7 to 2^63.
const BUCKETS: usize = EXACT as usize + (64 - EXACT_BITS as usize) * HALF;

/// Counts of values (nanoseconds, in the benchmark) by bucket.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram").field("total", &self.total).field("max", &self.max).finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS].into_boxed_slice(), total: 0, max: 0 }
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one value.
    pub fn record(&mut self, value: u64) {
        if let Some(count) = self.counts.get_mut(bucket(value)) {
            *count += 1;
        }
        self.total += 1;
        self.max = self.max.max(value);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many values were counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether no value was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The largest value counted (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.5 for the median, 0.99 for p99), or 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        if rank >= self.total {
            return self.max;
        }
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_value(index).min(self.max);
            }
        }
        self.max
    }
}

/// A [`Histogram`] that one thread records into while others may read it: its counts are atomics
/// that the owning thread adds to with a plain load and store (no locked instruction, no lock), so
/// recording costs what [`Histogram::record`] does. Only one thread may call
/// [`record`](ThreadHistogram::record).
pub struct ThreadHistogram {
    counts: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for ThreadHistogram {
    fn default() -> Self {
        ThreadHistogram { counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(), max: AtomicU64::new(0) }
    }
}

impl fmt::Debug for ThreadHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadHistogram").field("max", &self.max).finish_non_exhaustive()
    }
}

impl ThreadHistogram {
    /// Counts one value; called by the owning thread only (another thread's additions could be
    /// lost).
    pub fn record(&self, value: u64) {
        if let Some(count) = self.counts.get(bucket(value)) {
            count.store(count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        if value > self.max.load(Ordering::Relaxed) {
            self.max.store(value, Ordering::Relaxed);
        }
    }

    /// The counts so far, which it leaves at zero; exact once the owning thread has stopped
    /// recording (and that is known to this thread, as by joining the tasks that recorded).
    pub fn take(&self) -> Histogram {
        let counts: Box<[u64]> = self.counts.iter().map(|c| c.swap(0, Ordering::Relaxed)).collect();
        let total = counts.iter().sum();
        Histogram { counts, total, max: self.max.swap(0, Ordering::Relaxed) }
    }
}

/// The bucket of `value`.
fn bucket(value: u64) -> usize {
    if value < EXACT {
        return value as usize;
    }
    let top_bit = 63 - value.leading_zeros();
    // `value >> shift` keeps the top 7 bits: a number in [64, 128).
    let shift = top_bit + 1 - EXACT_BITS;
    EXACT as usize + (shift as usize - 1) * HALF + ((value >> shift) as usize - HALF)
}

/// The middle of the values in bucket `index`.
fn bucket_value(index: usize) -> u64 {
    let Some(above) = index.checked_sub(EXACT as usize) else {
        return index as u64;
    };
    let shift = (above / HALF + 1) as u32;
    let low = ((above % HALF + HALF) as u64) << shift;
    low + ((1u64 << shift) >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_sixty_fourth() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for q in [0.5, 0.9, 0.99] {
            let truth = (q * 100_000.0) as u64 * 1000;
            let got = h.quantile(q);
            assert!(got.abs_diff(truth) * 64 <= truth, "q {q}: {got} vs {truth}");
        }
        assert_eq!((h.len(), h.max(), h.quantile(1.0)), (100_000, 100_000_000, 100_000_000));
    }

    #[test]
    fn a_thread_histogram_takes_what_a_histogram_would_count() {
        let (threaded, mut plain) = (ThreadHistogram::default(), Histogram::new());
        for v in [0, 5, 127, 128, 1_000, 75_000, 75_001, 3_000_000_000, u64::MAX] {
            threaded.record(v);
            plain.record(v);
        }
        let taken = threaded.take();
        assert_eq!((taken.len(), taken.max()), (plain.len(), plain.max()));
        for q in [0.1, 0.5, 0.7, 0.9, 1.0] {
            assert_eq!(taken.quantile(q), plain.quantile(q), "q {q}");
        }
        // Taking leaves it empty.
        assert!(threaded.take().is_empty());
    }
}
