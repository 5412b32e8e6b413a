//! A lock-free latency histogram: log-linear buckets of atomics, four per power of two from 1 µs
//! to about 67 s, striped over threads, and the snapshots that windows and Prometheus read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::sharded::{Add, Sharded};

/// Powers of two covered: values from 1 µs up to 2^26 µs (about 67 s) get their own buckets.
const OCTAVES: usize = 26;
/// Buckets per power of two; each is a quarter of it wide, so a bucket's bounds are within 25 %.
const SUB_BUCKETS: usize = 4;
/// Bucket 0 holds values under 1 µs; the last one values of 2^26 µs and over.
pub(crate) const BUCKETS: usize = OCTAVES * SUB_BUCKETS + 2;
const OVERFLOW: usize = BUCKETS - 1;

/// The atomics of one histogram shard: a count per bucket and the sum of the values.
#[derive(Debug)]
pub(crate) struct Buckets {
    counts: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets { counts: std::array::from_fn(|_| AtomicU64::new(0)), sum_nanos: AtomicU64::new(0) }
    }
}

impl Buckets {
    /// Counts one value: two relaxed additions, made as `add` says.
    #[inline]
    pub(crate) fn record(&self, value: Duration, add: Add) {
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        add.to(&self.counts[bucket_of(nanos / 1000)], 1);
        add.to(&self.sum_nanos, nanos);
    }

    /// Adds these counts to `snapshot`.
    pub(crate) fn add_to(&self, snapshot: &mut HistogramSnapshot) {
        for (total, count) in snapshot.counts.iter_mut().zip(&self.counts) {
            *total += count.load(Ordering::Relaxed);
        }
        snapshot.sum_nanos = snapshot.sum_nanos.wrapping_add(self.sum_nanos.load(Ordering::Relaxed));
    }
}

/// Latencies counted in fixed buckets, each worker thread in its own shard: recording is two
/// relaxed additions on memory no other thread writes.
#[derive(Debug, Default)]
pub struct Histogram {
    shards: Sharded<Buckets>,
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one value.
    #[inline]
    pub fn record(&self, value: Duration) {
        let (shard, add) = self.shards.counting();
        shard.record(value, add);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut snapshot = HistogramSnapshot::default();
        for shard in self.shards.iter() {
            shard.add_to(&mut snapshot);
        }
        snapshot
    }
}

/// The bucket of a value of `micros` microseconds.
#[inline]
fn bucket_of(micros: u64) -> usize {
    if micros == 0 {
        return 0;
    }
    let octave = 63 - micros.leading_zeros() as usize;
    if octave >= OCTAVES {
        return OVERFLOW;
    }
    // The two bits after the leading one, read at any octave (shifted up below 4 µs).
    let sub = ((micros << 2) >> octave) as usize & (SUB_BUCKETS - 1);
    1 + octave * SUB_BUCKETS + sub
}

/// The lower and upper bound of bucket `i`, in microseconds (upper is infinite for the last).
fn bounds(i: usize) -> (f64, f64) {
    match i {
        0 => (0.0, 1.0),
        OVERFLOW => ((1u64 << OCTAVES) as f64, f64::INFINITY),
        _ => {
            let (octave, sub) = ((i - 1) / SUB_BUCKETS, (i - 1) % SUB_BUCKETS);
            let base = (1u64 << octave) as f64;
            let step = base / SUB_BUCKETS as f64;
            (base + step * sub as f64, base + step * (sub + 1) as f64)
        }
    }
}

/// A histogram's counts at one moment; subtract two to get a window, add several to merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    counts: Vec<u64>,
    sum_nanos: u64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot { counts: vec![0; BUCKETS], sum_nanos: 0 }
    }
}

impl HistogramSnapshot {
    /// Values counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of the values.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos)
    }

    /// What was counted after `earlier` (a snapshot of the same histogram).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self.counts.iter().zip(&earlier.counts).map(|(a, b)| a.saturating_sub(*b)).collect(),
            sum_nanos: self.sum_nanos.saturating_sub(earlier.sum_nanos),
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_nanos = self.sum_nanos.saturating_add(other.sum_nanos);
    }

    /// The value under which a share `q` (0 to 1) of the values lie, interpolated within its
    /// bucket (so within 25 % of the true value); zero when empty. Values of 67 s and more count as
    /// 67 s.
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.count();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0u64;
        for (i, &n) in self.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            if (seen + n) as f64 >= rank {
                let (low, high) = bounds(i);
                let micros = match high.is_finite() {
                    true => low + (high - low) * ((rank - seen as f64) / n as f64),
                    false => low,
                };
                return Duration::from_secs_f64(micros / 1e6);
            }
            seen += n;
        }
        Duration::from_secs_f64(bounds(OVERFLOW).0 / 1e6)
    }

    /// Counts per power of two, as Prometheus buckets: `(upper bound in seconds, count)` with
    /// bounds 1 µs, 2 µs, 4 µs, ... 2^26 µs and `+Inf`; counts are per bucket, not cumulative.
    pub fn prometheus_buckets(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::with_capacity(OCTAVES + 2);
        out.push((1e-6, self.counts[0]));
        for octave in 0..OCTAVES {
            let at = 1 + octave * SUB_BUCKETS;
            let n = self.counts[at..at + SUB_BUCKETS].iter().sum();
            out.push(((2u64 << octave) as f64 / 1e6, n));
        }
        out.push((f64::INFINITY, self.counts[OVERFLOW]));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn buckets_are_ordered_and_cover_every_value() {
        let mut last = 0;
        for micros in (0..5000).chain([1 << 20, (1 << 26) - 1, 1 << 26, u64::MAX / 1000]) {
            let i = bucket_of(micros);
            assert!(i >= last, "{micros} µs went to bucket {i} after {last}");
            let (low, high) = bounds(i);
            assert!(low <= micros as f64 && (micros as f64) < high, "{micros} µs not in {low}..{high}");
            last = i;
        }
        assert_eq!(bucket_of(u64::MAX), OVERFLOW);
    }

    #[test]
    fn quantiles_are_within_a_bucket() {
        let h = Histogram::new();
        for micros in 1..=1000 {
            h.record(us(micros));
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 1000);
        for (q, want) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = s.quantile(q).as_secs_f64() * 1e6;
            assert!((got - want).abs() / want < 0.25, "p{q}: {got} µs, want about {want}");
        }
        assert_eq!(HistogramSnapshot::default().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn windows_subtract_and_merge() {
        let h = Histogram::new();
        h.record(us(10));
        let before = h.snapshot();
        h.record(us(10_000));
        h.record(us(10_000));
        let window = h.snapshot().since(&before);
        assert_eq!(window.count(), 2);
        assert_eq!(window.sum(), us(20_000));
        let p50 = window.quantile(0.5).as_secs_f64() * 1e3;
        assert!((8.0..=12.5).contains(&p50), "{p50} ms");
        let mut merged = window.clone();
        merged.merge(&before);
        assert_eq!(merged, h.snapshot());
    }

    #[test]
    fn huge_values_land_in_the_overflow_bucket() {
        let h = Histogram::new();
        h.record(Duration::from_secs(3600));
        let s = h.snapshot();
        assert_eq!(s.prometheus_buckets().last(), Some(&(f64::INFINITY, 1)));
        assert!(s.quantile(0.99) >= Duration::from_secs(67));
    }

    #[test]
    fn prometheus_buckets_add_up() {
        let h = Histogram::new();
        for micros in [0, 1, 3, 100, 1_000_000] {
            h.record(us(micros));
        }
        let buckets = h.snapshot().prometheus_buckets();
        assert_eq!(buckets.len(), OCTAVES + 2);
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 5);
        assert_eq!(buckets[0], (1e-6, 1));
        // 3 µs lies in [2, 4): the bucket with upper bound 4 µs.
        assert_eq!(buckets[2], (4e-6, 1));
    }
}
