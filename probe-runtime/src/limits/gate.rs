//! The limits of one service or method, enforced with atomics and changed in place: a token
//! bucket (GCRA: one compare-and-swap per call), a count of calls in flight against a static
//! and an adaptive limit, and counters of what was refused.
//!
//! The bucket is written here rather than taken from `governor` because calls of different
//! priorities must see different shares of the same bucket and the rate must change live
//! without losing its state.
//!
//! The adaptive limit's algorithm is `tower-acc`'s `Vegas` (the queue estimated from latency over
//! the no-load latency), fed one sample per window as Netflix's `WindowedLimit` does: the mean
//! latency and the most calls in flight of at least [`WINDOW_CALLS`] calls over at least
//! [`WINDOW`]. Fed per call, the algorithms' constants (Gradient2's long average, its queue
//! allowance) let the limit run to its maximum under a sustained queue; `scripts/bench.sh
//! overload` measured p99 at 65x the idle p99 that way, and 1.4-1.5x windowed.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tower_acc::{Algorithm, Vegas};

use super::{Adaptive, MethodLimits, PRIORITY_SHARES, RequestLimits};
use crate::context::Priority;

/// Why a call was refused: the limit it met.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// The token bucket of this many calls per second is empty.
    Qps(f64),
    /// This many calls run already.
    Concurrency(u32),
    /// The adaptive limit, now at this many calls, is reached.
    Adaptive(u32),
}

impl Refusal {
    /// The label value: `qps`, `concurrency`, `adaptive`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Qps(_) => "qps",
            Refusal::Concurrency(_) => "concurrency",
            Refusal::Adaptive(_) => "adaptive",
        }
    }

    fn index(self) -> usize {
        match self {
            Refusal::Qps(_) => 0,
            Refusal::Concurrency(_) => 1,
            Refusal::Adaptive(_) => 2,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Qps(qps) => write!(f, "the qps limit ({qps}/s) is reached"),
            Refusal::Concurrency(n) => write!(f, "the concurrency limit ({n} calls in flight) is reached"),
            Refusal::Adaptive(n) => {
                write!(f, "the adaptive concurrency limit (now {n} calls in flight) is reached")
            }
        }
    }
}

/// The shortest window of latency samples the adaptive limit learns from.
pub const WINDOW: Duration = Duration::from_millis(50);
/// The fewest calls in a window of samples.
pub const WINDOW_CALLS: u32 = 10;
/// The adaptive limit starts here (within its bounds), low enough to react at once to a surge.
const ADAPTIVE_START: u32 = 20;
/// How often (in updates per unit of limit) Vegas forgets its no-load latency and measures it
/// again; a long period keeps a queue from being learnt as the baseline.
const PROBE_MULTIPLIER: usize = 300;

/// The reasons, in the order of [`GateStats::refused`].
pub const REASONS: [&str; 3] = ["qps", "concurrency", "adaptive"];
/// The priority labels, in the order of [`GateStats::refused_by_priority`].
pub const PRIORITIES: [&str; 3] = ["critical", "normal", "sheddable"];

/// Nanoseconds since the first call any gate saw, on the clock calls are stamped with.
fn nanos(now: Instant) -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(|| now - Duration::from_secs(1));
    u64::try_from(now.saturating_duration_since(base).as_nanos()).unwrap_or(u64::MAX)
}

fn priority_index(priority: Priority) -> usize {
    usize::from(priority.level()).min(2)
}

/// A token bucket as GCRA: the theoretical arrival time of the next call moves on by one
/// interval per call let in; a call is let in while that time is no further ahead of now than the
/// bucket's tolerance (its burst, less one call), times the caller's priority share.
#[derive(Debug, Default)]
struct Rate {
    /// Nanoseconds per call; 0 for no limit.
    interval: AtomicU64,
    /// `(burst - 1) * interval`.
    tolerance: AtomicU64,
    /// The theoretical arrival time, in [`nanos`].
    tat: AtomicU64,
    /// The rate, for messages (f64 bits).
    qps: AtomicU64,
}

impl Rate {
    fn set(&self, qps: Option<f64>, burst: Option<u32>) {
        match qps {
            Some(qps) => {
                let interval = (1e9 / qps).round().max(1.0) as u64;
                let burst = burst.unwrap_or_else(|| RequestLimits::default_burst(qps)).max(1);
                self.tolerance.store(interval.saturating_mul(u64::from(burst) - 1), Relaxed);
                self.qps.store(qps.to_bits(), Relaxed);
                self.interval.store(interval, Relaxed);
            }
            None => self.interval.store(0, Relaxed),
        }
    }

    fn take(&self, now: u64, share: f64) -> Result<(), Refusal> {
        let interval = self.interval.load(Relaxed);
        if interval == 0 {
            return Ok(());
        }
        let tolerance = (self.tolerance.load(Relaxed) as f64 * share) as u64;
        let mut tat = self.tat.load(Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > tolerance {
                return Err(Refusal::Qps(f64::from_bits(self.qps.load(Relaxed))));
            }
            match self.tat.compare_exchange_weak(tat, start + interval, AcqRel, Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }
}

/// The adaptive limit's algorithm and the window of samples it has not seen yet.
#[derive(Debug)]
struct Learner {
    algorithm: Vegas,
    bounds: Adaptive,
    started: Instant,
    total: Duration,
    calls: u32,
    most_in_flight: usize,
}

impl Learner {
    fn new(bounds: Adaptive, now: Instant) -> Self {
        let initial = ADAPTIVE_START.clamp(bounds.min, bounds.max.max(1));
        let algorithm = Vegas::builder()
            .initial_limit(initial as usize)
            .max_limit(bounds.max as usize)
            .probe_multiplier(PROBE_MULTIPLIER)
            .build();
        Learner { algorithm, bounds, started: now, total: Duration::ZERO, calls: 0, most_in_flight: 0 }
    }

    /// The limit now, within the bounds (Vegas has no minimum of its own).
    fn limit(&self) -> u32 {
        (self.algorithm.max_concurrency() as u32).clamp(self.bounds.min.max(1), self.bounds.max.max(1))
    }

    /// Adds a call's latency (with the calls in flight when it ended) to the window; a full
    /// window goes to the algorithm as one sample.
    fn learn(&mut self, latency: Duration, in_flight: usize, ended: Instant) {
        self.total += latency;
        self.calls += 1;
        self.most_in_flight = self.most_in_flight.max(in_flight);
        if self.calls >= WINDOW_CALLS && ended.saturating_duration_since(self.started) >= WINDOW {
            self.algorithm.update(self.total / self.calls, self.most_in_flight, false, false);
            (self.started, self.total, self.calls, self.most_in_flight) = (ended, Duration::ZERO, 0, 0);
        }
    }
}

/// The limits of one service or method and what they refused.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Whether any limit is set (a gate without one is skipped: no counting).
    active: AtomicBool,
    rate: Rate,
    /// The static concurrency limit; 0 for none.
    concurrency: AtomicU32,
    /// The adaptive limit now; 0 when off.
    adaptive_limit: AtomicU32,
    adaptive: Mutex<Option<Learner>>,
    in_flight: AtomicU32,
    refused: [AtomicU64; 3],
    refused_by_priority: [AtomicU64; 3],
}

/// What a gate counted, for metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateStats {
    /// Calls running now (counted while a limit is set).
    pub in_flight: u32,
    /// The adaptive limit now, when adaptive.
    pub adaptive_limit: Option<u32>,
    /// Calls refused, by [`REASONS`].
    pub refused: [u64; 3],
    /// Calls refused, by [`PRIORITIES`].
    pub refused_by_priority: [u64; 3],
}

impl Gate {
    /// Applies a service's limits (the connection limit is the port's, not a gate's).
    pub(crate) fn set_service(&self, limits: Option<&RequestLimits>) {
        let limits = limits.cloned().unwrap_or_default();
        self.set(limits.qps, limits.burst, limits.concurrency, limits.adaptive);
    }

    /// Applies a method's limits.
    pub(crate) fn set_method(&self, limits: Option<&MethodLimits>) {
        let limits = limits.cloned().unwrap_or_default();
        self.set(limits.qps, limits.burst, limits.concurrency, None);
    }

    fn set(
        &self,
        qps: Option<f64>,
        burst: Option<u32>,
        concurrency: Option<u32>,
        adaptive: Option<Adaptive>,
    ) {
        self.rate.set(qps, burst);
        self.concurrency.store(concurrency.unwrap_or(0), Relaxed);
        {
            let mut learner = self.adaptive.lock().unwrap_or_else(PoisonError::into_inner);
            match adaptive {
                // A running limit keeps what it learnt while its bounds stay.
                Some(bounds) if learner.as_ref().is_some_and(|l| l.bounds == bounds) => {}
                Some(bounds) => *learner = Some(Learner::new(bounds, crate::context::now())),
                None => *learner = None,
            }
            self.adaptive_limit.store(learner.as_ref().map_or(0, Learner::limit), Relaxed);
        }
        let active = qps.is_some() || concurrency.is_some() || adaptive.is_some();
        self.active.store(active, Release);
    }

    /// Whether a limit is set.
    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Relaxed)
    }

    /// Lets a call of `priority` in at `now`, or says which limit refused it. `Ok(true)`: the
    /// call was counted and must be [`Gate::release`]d.
    pub(crate) fn acquire(&self, priority: Priority, now: Instant) -> Result<bool, Refusal> {
        if !self.is_active() {
            return Ok(false);
        }
        let level = priority_index(priority);
        let share = PRIORITY_SHARES[level];
        let adaptive = self.adaptive_limit.load(Relaxed);
        let fixed = self.concurrency.load(Relaxed);
        let (limit, refusal) = match (fixed, adaptive) {
            (0, 0) => (0, None),
            (f, a) if a == 0 || (f != 0 && f <= a) => (f, Some(Refusal::Concurrency(f))),
            (_, a) => (a, Some(Refusal::Adaptive(a))),
        };
        let before = self.in_flight.fetch_add(1, AcqRel);
        if let Some(refusal) = refusal {
            let allowed = ((f64::from(limit) * share).round() as u32).max(1);
            if before >= allowed {
                self.in_flight.fetch_sub(1, AcqRel);
                return Err(self.refuse(refusal, level));
            }
        }
        if let Err(refusal) = self.rate.take(nanos(now), share) {
            self.in_flight.fetch_sub(1, AcqRel);
            return Err(self.refuse(refusal, level));
        }
        Ok(true)
    }

    fn refuse(&self, refusal: Refusal, level: usize) -> Refusal {
        self.refused[refusal.index()].fetch_add(1, Relaxed);
        self.refused_by_priority[level].fetch_add(1, Relaxed);
        refusal
    }

    /// Ends a call [`Gate::acquire`] counted. With `timing` (when it started and ended, and
    /// whether it failed or was cancelled), the adaptive limit learns from its latency; cancelled
    /// calls teach it nothing.
    pub(crate) fn release(&self, timing: Option<(Instant, Instant, bool, bool)>) {
        let in_flight = self.in_flight.fetch_sub(1, AcqRel);
        if self.adaptive_limit.load(Relaxed) == 0 {
            return;
        }
        let Some((started, ended, _failed, false)) = timing else { return };
        let mut learner = self.adaptive.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(learner) = learner.as_mut() {
            learner.learn(ended.saturating_duration_since(started), in_flight as usize, ended);
            self.adaptive_limit.store(learner.limit(), Relaxed);
        }
    }

    /// Whether the adaptive limit is on (calls must be timed).
    #[inline]
    pub(crate) fn is_adaptive(&self) -> bool {
        self.adaptive_limit.load(Relaxed) != 0
    }

    /// What the gate counted.
    pub(crate) fn stats(&self) -> GateStats {
        let adaptive = self.adaptive_limit.load(Relaxed);
        GateStats {
            in_flight: self.in_flight.load(Relaxed),
            adaptive_limit: (adaptive != 0).then_some(adaptive),
            refused: self.refused.each_ref().map(|c| c.load(Relaxed)),
            refused_by_priority: self.refused_by_priority.each_ref().map(|c| c.load(Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn gate(text: &str) -> Gate {
        let gate = Gate::default();
        gate.set_service(Some(&RequestLimits::parse(text).unwrap()));
        gate
    }

    #[test]
    fn a_bucket_lets_its_rate_through_and_its_burst_at_once() {
        let gate = gate(r#"{"qps": 100, "burst": 10}"#);
        let start = Instant::now();
        let at_once = (0..50).filter(|_| gate.acquire(Priority::CRITICAL, start).is_ok()).count();
        assert_eq!(at_once, 10);
        // One second later: 100 more, not 150.
        let mut let_in = 0;
        for ms in 1..=1000 {
            let now = start + Duration::from_millis(ms);
            let_in += (0..3).filter(|_| gate.acquire(Priority::CRITICAL, now).is_ok()).count();
        }
        assert!((99..=101).contains(&let_in), "{let_in}");
        assert_eq!(gate.stats().refused[0], 40 + 3000 - let_in as u64);
    }

    #[test]
    fn sheddable_calls_get_a_smaller_share_of_the_burst() {
        let gate = gate(r#"{"qps": 1000, "burst": 100}"#);
        let now = Instant::now();
        let sheddable = (0..200).filter(|_| gate.acquire(Priority::SHEDDABLE, now).is_ok()).count();
        let critical = (0..200).filter(|_| gate.acquire(Priority::CRITICAL, now).is_ok()).count();
        assert_eq!((sheddable, critical), (50, 50));
        assert_eq!(gate.stats().refused_by_priority, [150, 0, 150]);
    }

    #[test]
    fn concurrency_counts_calls_in_flight_by_priority() {
        let gate = gate(r#"{"concurrency": 8}"#);
        let now = Instant::now();
        let sheddable = (0..10).filter(|_| gate.acquire(Priority::SHEDDABLE, now).is_ok()).count();
        assert_eq!(sheddable, 4);
        assert_eq!(gate.acquire(Priority::NORMAL, now), Ok(true));
        assert_eq!(gate.acquire(Priority::NORMAL, now), Ok(true));
        assert_eq!(gate.acquire(Priority::NORMAL, now), Err(Refusal::Concurrency(8)));
        assert_eq!(gate.acquire(Priority::CRITICAL, now), Ok(true));
        assert_eq!(gate.acquire(Priority::CRITICAL, now), Ok(true));
        assert_eq!(gate.acquire(Priority::CRITICAL, now), Err(Refusal::Concurrency(8)));
        gate.release(None);
        assert_eq!(gate.acquire(Priority::CRITICAL, now), Ok(true));
        assert_eq!(gate.stats().in_flight, 8);
    }

    #[test]
    fn limits_change_in_place_and_an_unset_gate_counts_nothing() {
        let gate = gate(r#"{"concurrency": 1}"#);
        let now = Instant::now();
        assert_eq!(gate.acquire(Priority::NORMAL, now), Ok(true));
        assert!(gate.acquire(Priority::NORMAL, now).is_err());
        gate.set_service(Some(&RequestLimits::parse(r#"{"concurrency": 2}"#).unwrap()));
        // 80% of 2 rounds to 2: small limits keep no reserve for critical calls.
        assert_eq!(gate.acquire(Priority::NORMAL, now), Ok(true));
        gate.set_service(None);
        assert_eq!(gate.acquire(Priority::NORMAL, now), Ok(false));
        gate.release(None);
        gate.release(None);
        assert_eq!(gate.stats().in_flight, 0);
    }

    #[test]
    fn the_adaptive_limit_learns_per_window_and_shrinks_when_latency_grows() {
        let gate = gate(r#"{"adaptive": {"min": 2, "max": 100}}"#);
        let limit = || gate.stats().adaptive_limit.unwrap();
        assert_eq!(limit(), 20, "it starts low");
        let mut now = Instant::now();
        // Rounds of calls at the limit, one window each: `latency` each.
        let mut rounds = |latency: u64, count: usize| {
            for _ in 0..count {
                let mut held = 0;
                while gate.acquire(Priority::CRITICAL, now).is_ok() {
                    held += 1;
                }
                now += WINDOW;
                for _ in 0..held {
                    gate.release(Some((now - Duration::from_millis(latency), now, false, false)));
                }
            }
        };
        // Steady latency with every place used: the limit grows.
        rounds(2, 50);
        let grown = limit();
        assert!(grown > 20, "{grown}");
        // Latency five times the no-load one: a queue, so the limit falls.
        rounds(10, 30);
        assert!(limit() < grown, "{} after {grown}", limit());
        assert!(limit() >= 2, "never below min");
        assert!(gate.stats().refused[2] > 0);
    }

    #[test]
    fn cancelled_calls_and_part_windows_teach_nothing() {
        let gate = gate(r#"{"adaptive": true}"#);
        let now = Instant::now();
        for _ in 0..9 {
            assert_eq!(gate.acquire(Priority::CRITICAL, now), Ok(true));
        }
        // Nine calls: less than a window.
        for _ in 0..9 {
            gate.release(Some((now, now + SEC, false, false)));
        }
        assert_eq!(gate.stats().adaptive_limit, Some(20));
        assert_eq!(gate.acquire(Priority::CRITICAL, now), Ok(true));
        gate.release(Some((now, now + SEC, false, true)));
        assert_eq!(gate.stats().adaptive_limit, Some(20));
    }
}
