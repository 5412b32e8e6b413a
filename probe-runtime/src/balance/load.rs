//! Live load of one endpoint: calls in flight and a latency EWMA, shared by every table that lists
//! the endpoint and updated without locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Weight of a new sample in the EWMA, as a divisor: each sample moves the average 1/8 of the way.
const EWMA_DIVISOR: u64 = 8;

/// Live statistics of one endpoint, shared (through `Arc`) by its [`Endpoint`](super::Endpoint)
/// copies and by successive tables.
///
/// `in_flight` counts calls started with [`LoadStats::start_call`] and not yet finished; the latency
/// average moves 1/8 of the way towards each completed call's latency. A failed call counts as at
/// least twice the current average, so a node that fails fast does not look fast to
/// [`LeastLoaded`](super::LeastLoaded).
#[derive(Debug, Default)]
pub struct LoadStats {
    in_flight: AtomicU64,
    ewma_micros: AtomicU64,
}

impl LoadStats {
    /// Fresh statistics: nothing in flight, no latency sample yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a call as in flight until the returned guard is finished or dropped.
    pub fn start_call(self: &Arc<Self>) -> CallGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        CallGuard { stats: Arc::clone(self) }
    }

    /// Calls started and not yet finished.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Latency EWMA in microseconds; 0 until the first call finished.
    pub fn ewma_micros(&self) -> u64 {
        self.ewma_micros.load(Ordering::Relaxed)
    }

    /// Folds one completed call into the latency average (lock-free compare-and-swap loop).
    fn observe(&self, latency: Duration, ok: bool) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        // The closure always returns `Some`, so the update cannot fail.
        let _ = self.ewma_micros.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            let sample = if ok { micros } else { micros.max(old.saturating_mul(2)) };
            Some(if old == 0 { sample } else { blend(old, sample) })
        });
    }
}

/// `old + (sample - old) / 8` without overflow or signed arithmetic.
fn blend(old: u64, sample: u64) -> u64 {
    if sample >= old { old + (sample - old) / EWMA_DIVISOR } else { old - (old - sample) / EWMA_DIVISOR }
}

/// One call in flight on an endpoint, from [`LoadStats::start_call`] or
/// [`Endpoint::start_call`](super::Endpoint::start_call).
///
/// [`CallGuard::finish`] records the latency; dropping the guard unfinished (a cancelled call) only
/// ends the in-flight count.
#[derive(Debug)]
#[must_use = "the call counts as in flight until the guard is finished or dropped"]
pub struct CallGuard {
    stats: Arc<LoadStats>,
}

impl CallGuard {
    /// Ends the call and records its latency and outcome.
    pub fn finish(self, latency: Duration, ok: bool) {
        self.stats.observe(latency, ok);
        // Dropping `self` ends the in-flight count.
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_in_flight_until_finished_or_dropped() {
        let stats = Arc::new(LoadStats::new());
        let a = stats.start_call();
        let b = stats.start_call();
        assert_eq!(stats.in_flight(), 2);
        a.finish(Duration::from_millis(1), true);
        assert_eq!(stats.in_flight(), 1);
        drop(b);
        assert_eq!(stats.in_flight(), 0);
        assert_eq!(stats.ewma_micros(), 1000, "a dropped guard records no latency");
    }

    #[test]
    fn ewma_starts_at_first_sample_and_moves_an_eighth() {
        let stats = Arc::new(LoadStats::new());
        stats.start_call().finish(Duration::from_micros(800), true);
        assert_eq!(stats.ewma_micros(), 800);
        stats.start_call().finish(Duration::from_micros(1600), true);
        assert_eq!(stats.ewma_micros(), 900);
        stats.start_call().finish(Duration::from_micros(100), true);
        assert_eq!(stats.ewma_micros(), 800);
    }

    #[test]
    fn fast_failures_raise_the_average() {
        let stats = Arc::new(LoadStats::new());
        stats.start_call().finish(Duration::from_micros(1000), true);
        stats.start_call().finish(Duration::from_micros(10), false);
        assert_eq!(stats.ewma_micros(), 1125, "a failure counts as twice the average");
    }

    #[test]
    fn zero_latency_still_counts_as_a_sample() {
        let stats = Arc::new(LoadStats::new());
        stats.start_call().finish(Duration::ZERO, true);
        assert_eq!(stats.ewma_micros(), 1);
    }
}
