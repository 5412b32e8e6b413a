//! A circuit breaker per endpoint: closed, open, half-open. It is also how failing nodes are
//! ejected: one mechanism, not two.
//!
//! - **Closed**: calls flow. The breaker opens after `failures` failures in a row, or when at least
//!   `min_calls` calls of the last `window` failed at `error_rate` or more.
//! - **Open**: the endpoint gets no calls for a back-off: `base`, doubled with each opening since
//!   the last time it closed, up to `max`.
//! - **Half-open**: when the back-off ends, `half_open_calls` trial calls at a time go through.
//!   A trial that succeeds closes the breaker (its history is forgotten); one that fails opens it
//!   again for twice as long.
//!
//! Failures reported while the breaker is open (calls already on their way) do not count; a
//! success does close it, since the node answered. Opening never empties a table: when every
//! endpoint a call may still use is open, [`CircuitBreaker::exclusions`] excludes none of them.
//!
//! Only endpoints that failed recently take memory. Calls read where each stands (its gate) from a
//! copy the records publish whenever one changes, without their lock: only the outcomes of calls
//! to an endpoint that has a record, and the trials of a half-open one, take it.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};

use super::Table;
use super::endpoint::same_id;
use crate::metrics::fast_hash::FastMap;

/// When a [`CircuitBreaker`] opens, for how long, and how it closes again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker. Default 5; 0 counts as 1.
    pub failures: u32,
    /// The share of failed calls in the window that opens the breaker (once `min_calls` were
    /// made). Default 0.5; above 1 turns the rate off.
    pub error_rate: f64,
    /// The fewest calls in the window for the error rate to count. Default 20.
    pub min_calls: u32,
    /// The sliding window of the error rate, counted in 10 slices. Default 10 s.
    pub window: Duration,
    /// Back-off of a first opening; each reopening without closing in between doubles it.
    /// Default 1 s.
    pub base: Duration,
    /// Longest back-off. Default 60 s.
    pub max: Duration,
    /// Trial calls at a time while half-open. Default 1; 0 counts as 1.
    pub half_open_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            error_rate: 0.5,
            min_calls: 20,
            window: Duration::from_secs(10),
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
            half_open_calls: 1,
        }
    }
}

/// Where an endpoint's breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// No calls until the back-off ends.
    Open {
        /// When it ends.
        until: Instant,
    },
    /// Trial calls go through.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open`, `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The slices of the error-rate window.
const SLICES: usize = 10;

/// Calls and failures of one slice of the window.
#[derive(Debug, Clone, Copy, Default)]
struct Slice {
    /// Which slice of time it counts (its number since the breaker's origin).
    at: u64,
    calls: u32,
    failures: u32,
}

/// Whether calls may go to an endpoint: what calls read of its record, without the lock.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Gate {
    /// End of the back-off while open; half-open after it (until a trial closes it).
    until: Option<Instant>,
    /// Trial calls in flight while half-open, and when the last began.
    trials: u32,
    trial_at: Option<Instant>,
}

impl Gate {
    fn state(&self, now: Instant) -> BreakerState {
        match self.until {
            None => BreakerState::Closed,
            Some(until) if now < until => BreakerState::Open { until },
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Whether a call at `now` skips the endpoint: open, or half-open with its `trials` places
    /// taken (a trial whose outcome never came frees its place after `window`, since its call
    /// was dropped).
    fn shut(&self, now: Instant, trials: u32, window: Duration) -> bool {
        match self.state(now) {
            BreakerState::Closed => false,
            BreakerState::Open { .. } => true,
            BreakerState::HalfOpen => {
                self.trials >= trials && self.trial_at.is_some_and(|at| now < at + window)
            }
        }
    }
}

/// The history of one endpoint that failed recently.
#[derive(Debug, Clone, Copy, Default)]
struct Record {
    consecutive: u32,
    /// Openings since the breaker last closed.
    openings: u32,
    gate: Gate,
    slices: [Slice; SLICES],
}

impl Record {
    fn state(&self, now: Instant) -> BreakerState {
        self.gate.state(now)
    }

    /// Calls and failures in the window ending in slice `slice`.
    fn window(&self, slice: u64) -> (u32, u32) {
        self.slices
            .iter()
            .filter(|s| s.at + SLICES as u64 > slice && s.at <= slice)
            .fold((0, 0), |(c, f), s| (c + s.calls, f + s.failures))
    }

    fn count(&mut self, slice: u64, failed: bool) {
        let s = &mut self.slices[(slice % SLICES as u64) as usize];
        if s.at != slice {
            *s = Slice { at: slice, calls: 0, failures: 0 };
        }
        s.calls += 1;
        s.failures += u32::from(failed);
    }
}

/// The gates of the endpoints with a record, by id (sorted), as last published: the ids apart, so
/// that while every one of them is shut they are a call's exclusions as they are.
#[derive(Debug, Default)]
struct Gates {
    ids: Vec<Arc<str>>,
    gates: Vec<Gate>,
}

impl Gates {
    /// The gate of endpoint `id`, if it has a record.
    fn of(&self, id: &str) -> Option<Gate> {
        self.ids.iter().position(|known| same_id(known, id)).map(|i| self.gates[i])
    }
}

/// The ids a call must skip ([`CircuitBreaker::exclusions`]), read as a slice. While the breakers
/// shut every endpoint they track and the call tried none, it is their published list itself: no
/// copy (an allocation and a reference count per id) per call for as long as a node is down.
#[derive(Debug)]
pub struct Exclusions(Excluded);

#[derive(Debug)]
enum Excluded {
    /// Every tracked endpoint, all shut.
    Shut(Guard<Arc<Gates>>),
    /// A list of the call's own.
    Listed(Vec<Arc<str>>),
}

/// More ids to skip (the shut list is copied once there are any).
impl Extend<Arc<str>> for Exclusions {
    fn extend<I: IntoIterator<Item = Arc<str>>>(&mut self, ids: I) {
        let mut ids = ids.into_iter().peekable();
        if ids.peek().is_none() {
            return;
        }
        if let Excluded::Shut(gates) = &self.0 {
            self.0 = Excluded::Listed(gates.ids.clone());
        }
        let Excluded::Listed(listed) = &mut self.0 else { unreachable!("made a list above") };
        listed.extend(ids);
    }
}

impl std::ops::Deref for Exclusions {
    type Target = [Arc<str>];

    fn deref(&self) -> &[Arc<str>] {
        match &self.0 {
            Excluded::Shut(gates) => &gates.ids,
            Excluded::Listed(ids) => ids,
        }
    }
}

impl PartialEq<Vec<Arc<str>>> for Exclusions {
    fn eq(&self, other: &Vec<Arc<str>>) -> bool {
        **self == **other
    }
}

/// Per-endpoint circuit breakers; see the [module documentation](self).
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    origin: Instant,
    records: Mutex<FastMap<Arc<str>, Record>>,
    /// The gates of the endpoints with a record (by id), published under the lock whenever one
    /// changes or a record comes or goes: what calls read instead of taking the lock.
    gates: ArcSwap<Gates>,
    /// `records.len()`, kept as records come and go, read first.
    tracked: AtomicUsize,
    /// Times a breaker opened.
    opened: AtomicU64,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker::new(BreakerConfig::default())
    }
}

impl CircuitBreaker {
    /// Breakers with this policy.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker {
            config,
            origin: Instant::now(),
            records: Mutex::default(),
            gates: ArcSwap::default(),
            tracked: AtomicUsize::new(0),
            opened: AtomicU64::new(0),
        }
    }

    /// The policy.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    fn records(&self) -> std::sync::MutexGuard<'_, FastMap<Arc<str>, Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes `records`' gates and count (under their lock, so publications keep its order).
    fn publish(&self, records: &FastMap<Arc<str>, Record>) {
        let mut sorted: Vec<(&Arc<str>, Gate)> = records.iter().map(|(id, r)| (id, r.gate)).collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let (ids, gates) = sorted.into_iter().map(|(id, gate)| (Arc::clone(id), gate)).unzip();
        self.gates.store(Arc::new(Gates { ids, gates }));
        self.tracked.store(records.len(), Ordering::Release);
    }

    fn slice(&self, now: Instant) -> u64 {
        let width = (self.config.window / SLICES as u32).max(Duration::from_millis(1));
        (now.saturating_duration_since(self.origin).as_nanos() / width.as_nanos()) as u64
    }

    fn back_off(&self, openings: u32) -> Duration {
        self.config.base.saturating_mul(1 << openings.min(31)).min(self.config.max)
    }

    /// Records a call's outcome on endpoint `id` at `now`. Returns the back-off when this failure
    /// opened the breaker.
    pub fn record(&self, id: &Arc<str>, ok: bool, now: Instant) -> Option<Duration> {
        // A success on an endpoint without a record changes nothing: no lock.
        if ok && (self.tracked.load(Ordering::Acquire) == 0 || self.gates.load().of(id).is_none()) {
            return None;
        }
        let mut records = self.records();
        let slice = self.slice(now);
        let (record, before) = match records.get_mut(&**id) {
            Some(record) => {
                let gate = record.gate;
                (record, Some(gate))
            }
            None if ok => return None,
            None => (records.entry(Arc::clone(id)).or_default(), None),
        };
        let opened = match record.state(now) {
            // The node answered: closed again, history forgotten.
            BreakerState::Open { .. } | BreakerState::HalfOpen if ok => {
                records.remove(&**id);
                None
            }
            // A call sent before the breaker opened.
            BreakerState::Open { .. } => None,
            BreakerState::HalfOpen => Some(self.open(record, now)),
            BreakerState::Closed => {
                record.count(slice, !ok);
                if ok {
                    record.consecutive = 0;
                    if record.window(slice).1 == 0 {
                        records.remove(&**id);
                    }
                    None
                } else {
                    record.consecutive += 1;
                    let (calls, failures) = record.window(slice);
                    let by_rate = calls >= self.config.min_calls.max(1)
                        && f64::from(failures) >= self.config.error_rate * f64::from(calls);
                    (record.consecutive >= self.config.failures.max(1) || by_rate)
                        .then(|| self.open(record, now))
                }
            }
        };
        let after = records.get(&**id).map(|r| r.gate);
        if after != before {
            self.publish(&records);
        }
        opened
    }

    fn open(&self, record: &mut Record, now: Instant) -> Duration {
        let back_off = self.back_off(record.openings);
        record.openings = record.openings.saturating_add(1);
        record.consecutive = 0;
        record.gate = Gate { until: Some(now + back_off), trials: 0, trial_at: record.gate.trial_at };
        record.slices = [Slice::default(); SLICES];
        self.opened.fetch_add(1, Ordering::Relaxed);
        back_off
    }

    /// A call goes to endpoint `id` at `now`: while half-open it takes a trial place.
    pub fn begin(&self, id: &str, now: Instant) {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return;
        }
        // Only a half-open endpoint's calls take the lock.
        if self.gates.load().of(id).is_none_or(|gate| gate.state(now) != BreakerState::HalfOpen) {
            return;
        }
        let mut records = self.records();
        if let Some(record) = records.get_mut(id)
            && record.state(now) == BreakerState::HalfOpen
        {
            record.gate.trials += 1;
            record.gate.trial_at = Some(now);
            self.publish(&records);
        }
    }

    /// Where endpoint `id`'s breaker stands at `now`.
    pub fn state(&self, id: &str, now: Instant) -> BreakerState {
        self.records().get(id).map_or(BreakerState::Closed, |r| r.state(now))
    }

    /// Whether endpoint `id` gets no calls at `now` (open), whatever the table.
    pub fn is_ejected(&self, id: &str, now: Instant) -> bool {
        matches!(self.state(id, now), BreakerState::Open { .. })
    }

    /// The endpoints whose breaker is not closed, and where they stand.
    pub fn states(&self, now: Instant) -> Vec<(Arc<str>, BreakerState)> {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut states: Vec<_> = self
            .records()
            .iter()
            .map(|(id, r)| (Arc::clone(id), r.state(now)))
            .filter(|(_, s)| *s != BreakerState::Closed)
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }

    /// Times a breaker opened since this one was made.
    pub fn openings(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// The ids a balancer must skip for a call that already tried `tried`: `tried`, the open
    /// endpoints, and the half-open ones whose trial places are taken; unless those are all the
    /// call has left, in which case just `tried`. Read them as a slice (`&exclusions`).
    pub fn exclusions(&self, table: &Table, tried: &[Arc<str>], now: Instant) -> Exclusions {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return Exclusions(Excluded::Listed(tried.to_vec()));
        }
        let trials = self.config.half_open_calls.max(1);
        let published = self.gates.load();
        let shut = |gate: &Gate| gate.shut(now, trials, self.config.window);
        // Fewer ids than endpoints in rotation leave one routable; else look.
        let strands = |exclude: &[Arc<str>]| {
            exclude.len() >= table.rotation_len() && !table.endpoints.iter().any(|e| e.is_candidate(exclude))
        };
        if tried.is_empty() && published.gates.iter().all(shut) {
            if strands(&published.ids) {
                return Exclusions(Excluded::Listed(Vec::new()));
            }
            return Exclusions(Excluded::Shut(published));
        }
        let mut exclude = tried.to_vec();
        let shut_ids = published.ids.iter().zip(&published.gates).filter(|(_, gate)| shut(gate));
        exclude.extend(shut_ids.filter(|(id, _)| !tried.contains(id)).map(|(id, _)| Arc::clone(id)));
        if exclude.len() > tried.len() && strands(&exclude) {
            exclude.truncate(tried.len());
        }
        Exclusions(Excluded::Listed(exclude))
    }

    /// Forgets endpoints `table` does not list.
    pub fn retain(&self, table: &Table) {
        let mut records = self.records();
        records.retain(|id, _| table.get(id).is_some());
        self.publish(&records);
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_support::{ids, table};
    use crate::balance::{Balancer, RoundRobin};

    const SEC: Duration = Duration::from_secs(1);

    fn fail(b: &CircuitBreaker, id: &Arc<str>, times: u32, now: Instant) -> Option<Duration> {
        (0..times).map(|_| b.record(id, false, now)).last().flatten()
    }

    #[test]
    fn opens_after_n_consecutive_failures_and_half_opens_after_the_back_off() {
        let (b, id, t0) = (CircuitBreaker::default(), Arc::from("n0"), Instant::now());
        assert_eq!(fail(&b, &id, 4, t0), None);
        assert_eq!(b.state("n0", t0), BreakerState::Closed);
        assert_eq!(b.record(&id, false, t0), Some(SEC));
        assert_eq!(b.state("n0", t0 + SEC / 2), BreakerState::Open { until: t0 + SEC });
        assert_eq!(b.state("n0", t0 + SEC), BreakerState::HalfOpen);
        assert_eq!(b.state("n1", t0), BreakerState::Closed);
        assert_eq!(b.openings(), 1);
    }

    #[test]
    fn a_success_resets_the_count() {
        let (b, id, t0) = (CircuitBreaker::default(), Arc::from("n0"), Instant::now());
        fail(&b, &id, 4, t0);
        b.record(&id, true, t0);
        assert_eq!(fail(&b, &id, 4, t0), None);
        assert_eq!(b.state("n0", t0), BreakerState::Closed);
    }

    #[test]
    fn the_error_rate_over_the_window_opens_it() {
        let (b, id, t0) = (CircuitBreaker::default(), Arc::from("n0"), Instant::now());
        // Alternate: never 5 in a row, but half of the calls fail.
        let mut opened = None;
        for i in 0..40 {
            let at = t0 + Duration::from_millis(i * 10);
            opened = opened.or(b.record(&id, i % 2 == 1, at));
        }
        assert_eq!(opened, Some(SEC), "50% of 20+ calls in the window");
        // Spread thinly past the window, failures age out and never reach the rate.
        let (b, id) = (CircuitBreaker::default(), Arc::from("n1"));
        for i in 0..100 {
            let at = t0 + Duration::from_secs(i);
            assert_eq!(b.record(&id, i % 3 != 0, at), None);
        }
    }

    #[test]
    fn half_open_lets_one_trial_through_which_closes_or_reopens_it() {
        let (b, t, t0) = (CircuitBreaker::default(), table(&[10, 10]), Instant::now());
        let id = Arc::clone(&t.endpoints[0].id);
        fail(&b, &id, 5, t0);
        assert_eq!(b.exclusions(&t, &[], t0), ids(&["n0"]));
        let t1 = t0 + SEC;
        assert!(b.exclusions(&t, &[], t1).is_empty(), "half-open: a trial may go");
        b.begin("n0", t1);
        assert_eq!(b.exclusions(&t, &[], t1), ids(&["n0"]), "one trial at a time");
        // The trial fails: open again, for twice as long.
        assert_eq!(b.record(&id, false, t1), Some(2 * SEC));
        assert_eq!(b.state("n0", t1 + SEC), BreakerState::Open { until: t1 + 2 * SEC });
        let t2 = t1 + 2 * SEC;
        b.begin("n0", t2);
        assert_eq!(b.record(&id, true, t2), None);
        assert_eq!(b.state("n0", t2), BreakerState::Closed);
        assert!(b.states(t2).is_empty());
        // Closed, its history is gone: the next opening backs off the base again.
        assert_eq!(fail(&b, &id, 5, t2), Some(SEC));
    }

    #[test]
    fn exclusions_of_shut_nodes_are_the_published_list_until_a_call_adds_its_own() {
        let (b, t, t0) = (CircuitBreaker::default(), table(&[10, 10, 10]), Instant::now());
        fail(&b, &t.endpoints[2].id, 5, t0);
        fail(&b, &t.endpoints[0].id, 5, t0);
        let mut exclude = b.exclusions(&t, &[], t0);
        assert!(matches!(exclude.0, Excluded::Shut(_)));
        assert_eq!(exclude, ids(&["n0", "n2"]));
        exclude.extend(std::iter::empty());
        assert!(matches!(exclude.0, Excluded::Shut(_)), "nothing added, nothing copied");
        exclude.extend(ids(&["n1"]));
        assert_eq!(exclude, ids(&["n0", "n2", "n1"]));
        // n2's trial succeeds (its record goes) and n1 fails once: tracked, its breaker closed, so
        // the shut ones are listed one by one.
        b.record(&t.endpoints[2].id, true, t0 + SEC);
        fail(&b, &t.endpoints[1].id, 1, t0 + SEC);
        let exclude = b.exclusions(&t, &[], t0 + SEC / 2);
        assert!(matches!(exclude.0, Excluded::Listed(_)));
        assert_eq!(exclude, ids(&["n0"]));
    }

    #[test]
    fn back_off_doubles_up_to_the_max() {
        let (b, id) = (CircuitBreaker::default(), Arc::from("n0"));
        let mut now = Instant::now();
        let mut back_offs = vec![fail(&b, &id, 5, now).unwrap().as_secs()];
        for _ in 0..7 {
            now += b.back_off(0) * 60;
            back_offs.push(b.record(&id, false, now).unwrap().as_secs());
        }
        assert_eq!(back_offs, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn failures_while_open_do_not_count_and_a_success_closes_it() {
        let (b, id, t0) = (CircuitBreaker::default(), Arc::from("n0"), Instant::now());
        fail(&b, &id, 5, t0);
        assert_eq!(fail(&b, &id, 20, t0 + SEC / 2), None);
        assert!(b.is_ejected("n0", t0 + SEC / 2));
        b.record(&id, true, t0 + SEC / 2);
        assert!(!b.is_ejected("n0", t0 + SEC / 2));
    }

    #[test]
    fn never_excludes_the_last_endpoint() {
        let (b, t0) = (CircuitBreaker::default(), Instant::now());
        let single = table(&[10]);
        fail(&b, &single.endpoints[0].id, 5, t0);
        assert!(b.exclusions(&single, &[], t0).is_empty());
        assert!(RoundRobin::new().pick(&single, None, &b.exclusions(&single, &[], t0)).is_some());
        let t = table(&[0, 10, 10]);
        fail(&b, &t.endpoints[1].id, 5, t0);
        assert_eq!(b.exclusions(&t, &ids(&["n2"]), t0), ids(&["n2"]));
        fail(&b, &t.endpoints[2].id, 5, t0);
        assert!(b.exclusions(&t, &[], t0).is_empty());
    }

    #[test]
    fn calls_read_what_the_records_say_without_their_lock() {
        let (b, t, t0) = (CircuitBreaker::default(), table(&[10, 10, 10]), Instant::now());
        let (n0, n1) = (Arc::clone(&t.endpoints[0].id), Arc::clone(&t.endpoints[1].id));
        fail(&b, &n0, 5, t0);
        b.record(&n1, false, t0);
        // Successes on an endpoint without a record take none.
        for _ in 0..3 {
            b.record(&t.endpoints[2].id, true, t0);
        }
        assert_eq!(b.tracked.load(Ordering::Acquire), 2);
        assert_eq!(b.exclusions(&t, &[], t0), ids(&["n0"]));
        assert_eq!(b.exclusions(&t, &ids(&["n0"]), t0), ids(&["n0"]));
        assert_eq!(b.exclusions(&t, &ids(&["n2"]), t0), ids(&["n2", "n0"]));
        // Every exclusion the lock-free read makes is what the records say.
        for at in [t0, t0 + SEC / 2, t0 + SEC, t0 + 2 * SEC] {
            let records = b.records();
            let trials = b.config.half_open_calls.max(1);
            let mut want: Vec<Arc<str>> = (records.iter())
                .filter(|(_, r)| r.gate.shut(at, trials, b.config.window))
                .map(|(id, _)| Arc::clone(id))
                .collect();
            drop(records);
            want.sort();
            assert_eq!(b.exclusions(&t, &[], at), want, "at {:?}", at - t0);
        }
        // Half-open: the trial's place is published; its success closes the breaker.
        b.begin("n0", t0 + SEC);
        assert_eq!(b.exclusions(&t, &[], t0 + SEC), ids(&["n0"]));
        b.record(&n0, true, t0 + SEC);
        assert!(b.exclusions(&t, &[], t0 + SEC).is_empty());
        // The last failure ages out of the window: the record goes, successes take no lock again.
        b.record(&n1, true, t0 + 11 * SEC);
        assert_eq!(b.tracked.load(Ordering::Acquire), 0);
        assert!(b.gates.load().ids.is_empty());
    }

    #[test]
    fn retain_forgets_endpoints_that_left() {
        let (b, t, t0) = (CircuitBreaker::default(), table(&[10, 10]), Instant::now());
        fail(&b, &Arc::from("gone"), 5, t0);
        fail(&b, &t.endpoints[0].id, 5, t0);
        b.retain(&t);
        assert!(!b.is_ejected("gone", t0));
        assert!(b.is_ejected("n0", t0));
        assert_eq!(b.states(t0).len(), 1);
    }
}
