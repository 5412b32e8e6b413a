//! Short windows from cumulative counts: two snapshots of a service's methods, subtracted, give
//! the window's QPS, error rate and latency percentiles that servers publish for the console.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::stats::CallSnapshot;
use crate::registry::{MethodMetrics, NodeMetrics};

/// Cumulative counts of a service's methods, sorted by method.
pub type MethodSnapshots = Vec<(&'static str, CallSnapshot)>;

/// The window between two snapshots of the same methods (`earlier` may lack methods `later` has),
/// ending at `at_ms` (milliseconds since the Unix epoch) and `length` long. Methods without calls
/// in the window are left out of `methods`.
pub fn node_window(
    earlier: &MethodSnapshots,
    later: &MethodSnapshots,
    length: Duration,
    at_ms: u64,
) -> NodeMetrics {
    let mut total = CallSnapshot::default();
    let mut methods = Vec::new();
    for (method, now) in later {
        let window = match earlier.iter().find(|(m, _)| m == method) {
            Some((_, before)) => now.since(before),
            None => now.clone(),
        };
        if window.calls() == 0 {
            continue;
        }
        methods.push(MethodMetrics {
            method: (*method).to_owned(),
            calls: window.calls(),
            errors: window.errors(),
            p50_ms: millis(window.latency.quantile(0.5)),
            p99_ms: millis(window.latency.quantile(0.99)),
        });
        total.merge(&window);
    }
    methods.sort_by(|a, b| a.method.cmp(&b.method));
    let (calls, errors) = (total.calls(), total.errors());
    let seconds = length.as_secs_f64();
    NodeMetrics {
        at_ms,
        window_ms: u64::try_from(length.as_millis()).unwrap_or(u64::MAX),
        calls,
        errors,
        qps: if seconds > 0.0 { calls as f64 / seconds } else { 0.0 },
        error_rate: if calls > 0 { errors as f64 / calls as f64 } else { 0.0 },
        p50_ms: millis(total.latency.quantile(0.5)),
        p99_ms: millis(total.latency.quantile(0.99)),
        methods,
        // The publisher adds what the request limits refused.
        ..NodeMetrics::default()
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Follows one node: remembers the last snapshot, and turns each new one into a window.
#[derive(Debug)]
pub struct WindowTracker {
    last: MethodSnapshots,
    since: Instant,
}

impl WindowTracker {
    /// Starts the first window at `start`, from the counts `start_counts`.
    pub fn new(start_counts: MethodSnapshots, start: Instant) -> Self {
        WindowTracker { last: start_counts, since: start }
    }

    /// The window from the last snapshot to `counts`, taken at `now`; `counts` becomes the last.
    pub fn next(&mut self, counts: MethodSnapshots, now: Instant) -> NodeMetrics {
        let window = node_window(&self.last, &counts, now.saturating_duration_since(self.since), now_ms());
        self.last = counts;
        self.since = now;
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CallStats, Outcome};

    fn snapshots(stats: &[(&'static str, &CallStats)]) -> MethodSnapshots {
        stats.iter().map(|(m, s)| (*m, s.snapshot())).collect()
    }

    #[test]
    fn a_window_counts_only_what_happened_in_it() {
        let (get, put) = (CallStats::new(), CallStats::new());
        for _ in 0..100 {
            get.record(Outcome::Ok, Duration::from_millis(1));
        }
        let start = Instant::now();
        let mut tracker = WindowTracker::new(snapshots(&[("get", &get), ("put", &put)]), start);
        for _ in 0..98 {
            get.record(Outcome::Ok, Duration::from_millis(2));
        }
        get.record(Outcome::Exception, Duration::from_millis(2));
        get.record(Outcome::AppError, Duration::from_millis(100));
        let w = tracker.next(snapshots(&[("get", &get), ("put", &put)]), start + Duration::from_secs(5));
        assert_eq!((w.calls, w.errors, w.window_ms), (100, 1, 5000));
        assert!((w.qps - 20.0).abs() < 1e-9 && (w.error_rate - 0.01).abs() < 1e-9, "{w:?}");
        assert!((1.5..=2.5).contains(&w.p50_ms), "{w:?}");
        assert!((1.5..=125.0).contains(&w.p99_ms), "{w:?}");
        assert_eq!(w.methods.len(), 1, "put had no calls: {w:?}");
        assert_eq!((w.methods[0].method.as_str(), w.methods[0].calls), ("get", 100));

        let idle = tracker.next(snapshots(&[("get", &get), ("put", &put)]), start + Duration::from_secs(10));
        assert_eq!((idle.calls, idle.qps, idle.error_rate, idle.p99_ms), (0, 0.0, 0.0, 0.0));
        assert!(idle.methods.is_empty());
    }

    #[test]
    fn a_method_missing_before_counts_from_zero() {
        let get = CallStats::new();
        get.record(Outcome::Ok, Duration::from_micros(10));
        let w = node_window(&Vec::new(), &snapshots(&[("get", &get)]), Duration::ZERO, 1);
        assert_eq!((w.calls, w.qps, w.at_ms), (1, 0.0, 1));
    }
}
