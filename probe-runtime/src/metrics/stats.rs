//! The statistics of one series: calls by outcome with their latency, and a client node's
//! connect, send and wait times.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::histogram::{Buckets, Histogram, HistogramSnapshot};
use super::outcome::Outcome;
use super::sharded::Sharded;

/// One thread's share of a [`CallStats`].
#[derive(Debug, Default)]
struct CallShard {
    outcomes: [AtomicU64; Outcome::ALL.len()],
    latency: Buckets,
}

/// The calls of one (service, method) on a server, or one (service, method, node) on a client:
/// a counter per outcome and a latency histogram, all atomics, striped over threads so that
/// recording (three relaxed additions, without a locked instruction on a worker thread's own shard)
/// touches no cache line another thread writes.
#[derive(Debug, Default)]
pub struct CallStats {
    shards: Sharded<CallShard>,
}

impl CallStats {
    /// No calls yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one call.
    #[inline]
    pub fn record(&self, outcome: Outcome, latency: Duration) {
        let (shard, add) = self.shards.counting();
        add.to(&shard.outcomes[outcome.index()], 1);
        shard.latency.record(latency, add);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> CallSnapshot {
        let mut snapshot = CallSnapshot::default();
        for shard in self.shards.iter() {
            for (total, count) in snapshot.outcomes.iter_mut().zip(&shard.outcomes) {
                *total += count.load(Ordering::Relaxed);
            }
            shard.latency.add_to(&mut snapshot.latency);
        }
        snapshot
    }
}

/// A [`CallStats`] at one moment; subtract two to get a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallSnapshot {
    outcomes: [u64; Outcome::ALL.len()],
    /// The latencies.
    pub latency: HistogramSnapshot,
}

impl CallSnapshot {
    /// Calls that ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome.index()]
    }

    /// Every call.
    pub fn calls(&self) -> u64 {
        self.outcomes.iter().sum()
    }

    /// Calls that failed ([`Outcome::is_error`]).
    pub fn errors(&self) -> u64 {
        Outcome::ALL.iter().filter(|o| o.is_error()).map(|o| self.count(*o)).sum()
    }

    /// What happened after `earlier` (a snapshot of the same series).
    pub fn since(&self, earlier: &CallSnapshot) -> CallSnapshot {
        CallSnapshot {
            outcomes: std::array::from_fn(|i| self.outcomes[i].saturating_sub(earlier.outcomes[i])),
            latency: self.latency.since(&earlier.latency),
        }
    }

    /// Adds `other` to this.
    pub fn merge(&mut self, other: &CallSnapshot) {
        for (a, b) in self.outcomes.iter_mut().zip(&other.outcomes) {
            *a += b;
        }
        self.latency.merge(&other.latency);
    }
}

/// Where a client call's time went on one node, per phase.
#[derive(Debug, Default)]
pub struct PhaseStats {
    /// Opening a connection (each new connection, not each call).
    pub connect: Histogram,
    /// Writing a request on a pooled connection, or queueing it on a multiplexed one.
    pub send: Histogram,
    /// From the request sent to its reply read.
    pub wait: Histogram,
}

impl PhaseStats {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_count_and_window() {
        let stats = CallStats::new();
        stats.record(Outcome::Ok, Duration::from_micros(100));
        let before = stats.snapshot();
        stats.record(Outcome::Ok, Duration::from_micros(100));
        stats.record(Outcome::Exception, Duration::from_micros(100));
        stats.record(Outcome::Timeout, Duration::from_secs(1));
        stats.record(Outcome::AppError, Duration::from_micros(5));
        let now = stats.snapshot();
        assert_eq!((now.calls(), now.errors(), now.count(Outcome::Ok)), (5, 2, 2));
        let window = now.since(&before);
        assert_eq!((window.calls(), window.errors(), window.count(Outcome::Exception)), (4, 2, 1));
        assert_eq!(window.latency.count(), 4);
        let mut merged = window.clone();
        merged.merge(&before);
        assert_eq!(merged, now);
    }
}
