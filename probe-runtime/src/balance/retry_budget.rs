//! A budget that bounds retries to a share of calls, so retries cannot multiply an outage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Tokens are counted in thousandths so deposits of a fraction of a retry add up exactly.
const MILLI: u64 = 1000;

/// How many retries a [`RetryBudget`] allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetConfig {
    /// Retries earned per call: 0.2 lets retries add at most 20% to the calls made. Default 0.2;
    /// negative or NaN counts as 0, values above 1000 as 1000.
    pub ratio: f64,
    /// Retries allowed per second whatever the traffic, so a client making few calls can still fail
    /// over; up to a second's worth may be spent at once. Default 10; 0 disables it.
    pub min_per_second: u32,
    /// Most retries calls can bank, which bounds the burst of retries when an outage starts after a
    /// quiet, healthy period. Default 100.
    pub max_balance: u32,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        RetryBudgetConfig { ratio: 0.2, min_per_second: 10, max_balance: 100 }
    }
}

/// A token bucket that every call fills by `ratio` and every retry empties by one, plus a
/// time-based allowance of `min_per_second` retries.
///
/// Over any stretch of traffic the retries it allows are at most `ratio × calls + min_per_second ×
/// seconds` (plus what was banked before, at most `max_balance`): with the defaults, 20% more calls
/// than the client's own, and 10 retries a second for clients too quiet to earn them. Both are
/// per client, never per call, so a struggling service sees a bounded increase in load instead of
/// every caller's attempts multiplied.
///
/// The earned tokens are spent first; the per-second allowance is a GCRA rate limiter with a burst
/// of one second. Time is a parameter so callers and tests decide the clock. One short mutex guards
/// the two counters.
#[derive(Debug)]
pub struct RetryBudget {
    deposit_milli: u64,
    max_milli: u64,
    /// Spacing of the per-second allowance; `None` when it is disabled.
    interval: Option<Duration>,
    /// Retries saved up, in thousandths: an atomic, so the deposit every call makes takes no
    /// lock.
    balance_milli: AtomicU64,
    /// The floor's schedule, used only when the balance is spent.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// GCRA's theoretical arrival time of the next allowance retry; `None` before the first.
    floor_tat: Option<Instant>,
}

impl RetryBudget {
    /// An empty budget with this policy.
    pub fn new(config: RetryBudgetConfig) -> Self {
        let ratio = if config.ratio.is_nan() { 0.0 } else { config.ratio.clamp(0.0, 1000.0) };
        RetryBudget {
            // The clamp keeps the product within 0..=1_000_000, so the cast is exact.
            deposit_milli: (ratio * MILLI as f64).round() as u64,
            max_milli: u64::from(config.max_balance) * MILLI,
            interval: (config.min_per_second > 0).then(|| Duration::from_secs(1) / config.min_per_second),
            balance_milli: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Earns `ratio` retries; call once per call, not per retry.
    pub fn deposit(&self) {
        if self.deposit_milli == 0 {
            return;
        }
        let (deposit, max) = (self.deposit_milli, self.max_milli);
        // Skips the write (and the cache line's transfer) once the balance is full.
        let _ = self.balance_milli.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |balance| {
            (balance < max).then(|| balance.saturating_add(deposit).min(max))
        });
    }

    /// Takes one retry from the budget at `now`, or returns false when the budget is spent.
    pub fn try_retry(&self, now: Instant) -> bool {
        let taken = self
            .balance_milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |balance| balance.checked_sub(MILLI));
        if taken.is_ok() {
            return true;
        }
        let mut state = self.state();
        let Some(interval) = self.interval else {
            return false;
        };
        let tat = state.floor_tat.map_or(now, |tat| tat.max(now));
        let next = tat + interval;
        if next.saturating_duration_since(now) > Duration::from_secs(1) {
            return false;
        }
        state.floor_tat = Some(next);
        true
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(RetryBudgetConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn without_floor(ratio: f64, max_balance: u32) -> RetryBudget {
        RetryBudget::new(RetryBudgetConfig { ratio, min_per_second: 0, max_balance })
    }

    #[test]
    fn every_call_failing_allows_about_twenty_percent_more() {
        let (budget, now) = (RetryBudget::default(), Instant::now());
        let mut retries = 0;
        for _ in 0..1000 {
            budget.deposit();
            // Every call fails and would retry until refused.
            while budget.try_retry(now) {
                retries += 1;
            }
        }
        assert_eq!(retries, 200 + 10, "20% of 1000 calls plus one second's allowance");
    }

    #[test]
    fn earned_retries_are_exact_and_then_refused() {
        let (budget, now) = (without_floor(0.2, 1000), Instant::now());
        (0..1000).for_each(|_| budget.deposit());
        assert_eq!((0..1000).filter(|_| budget.try_retry(now)).count(), 200);
        assert!(!budget.try_retry(now));
        (0..5).for_each(|_| budget.deposit());
        assert!(budget.try_retry(now));
        assert!(!budget.try_retry(now));
    }

    #[test]
    fn banked_retries_are_capped() {
        let (budget, now) = (without_floor(0.2, 100), Instant::now());
        (0..10_000).for_each(|_| budget.deposit());
        assert_eq!((0..1000).filter(|_| budget.try_retry(now)).count(), 100);
    }

    #[test]
    fn quiet_clients_get_the_per_second_allowance() {
        let (budget, t0) = (RetryBudget::default(), Instant::now());
        assert_eq!((0..100).filter(|_| budget.try_retry(t0)).count(), 10, "a second's worth at once");
        assert!(!budget.try_retry(t0 + SEC / 20));
        assert!(budget.try_retry(t0 + SEC / 10), "one more every 100 ms");
        assert!(!budget.try_retry(t0 + SEC / 10));
        let later = t0 + 10 * SEC;
        assert_eq!((0..100).filter(|_| budget.try_retry(later)).count(), 10, "the burst does not grow");
    }

    #[test]
    fn zero_ratio_and_no_floor_allow_nothing() {
        let budget = without_floor(0.0, 100);
        budget.deposit();
        assert!(!budget.try_retry(Instant::now()));
        let nan = without_floor(f64::NAN, 100);
        nan.deposit();
        assert!(!nan.try_retry(Instant::now()));
    }

    #[test]
    fn ratios_above_one_allow_several_retries_per_call() {
        let (budget, now) = (without_floor(2.5, 100), Instant::now());
        (0..2).for_each(|_| budget.deposit());
        assert_eq!((0..10).filter(|_| budget.try_retry(now)).count(), 5);
    }
}
