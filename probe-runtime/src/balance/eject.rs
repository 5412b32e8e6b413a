//! Ejection of endpoints that keep failing, with exponential back-off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Table;

/// When an [`Ejector`] ejects an endpoint and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectorConfig {
    /// Consecutive failures that eject an endpoint. Default 5; 0 counts as 1.
    pub failures: u32,
    /// Back-off of a first ejection; each re-ejection without a success in between doubles it.
    /// Default 1 s.
    pub base: Duration,
    /// Longest back-off. Default 60 s.
    pub max: Duration,
}

impl Default for EjectorConfig {
    fn default() -> Self {
        EjectorConfig { failures: 5, base: Duration::from_secs(1), max: Duration::from_secs(60) }
    }
}

/// Failure history of one endpoint that failed since its last success.
#[derive(Debug, Clone, Copy, Default)]
struct Record {
    /// Failures since the last success or ejection.
    consecutive: u32,
    /// Ejections since the last success.
    ejections: u32,
    /// End of the current ejection.
    until: Option<Instant>,
}

/// Takes endpoints that keep failing out of rotation for a back-off period.
///
/// Callers report each call's outcome with [`Ejector::record`], and before each pick add
/// [`Ejector::exclusions`] to the ids a balancer must skip. After `failures` consecutive failures
/// an endpoint is ejected for `base`, doubled on each re-ejection up to `max`. When the back-off
/// ends the endpoint is routable again and needs another `failures` failures in a row to go back
/// out; failures reported while it is out (calls already on their way) do not count. A success
/// forgets the endpoint's history, ejection included.
///
/// Ejection never empties a table: when every endpoint a call may still use is ejected,
/// [`Ejector::exclusions`] ejects none of them, so the balancer chooses among them as usual.
///
/// Only endpoints that failed since their last success take memory; [`Ejector::retain`] drops the
/// ones a new table no longer lists. While no endpoint has failed, recording a success and
/// listing exclusions take no lock (a count of records is read instead).
#[derive(Debug, Default)]
pub struct Ejector {
    config: EjectorConfig,
    records: Mutex<HashMap<Arc<str>, Record>>,
    /// `records.len()`, kept as records come and go, read without the lock.
    tracked: AtomicUsize,
}

impl Ejector {
    /// An ejector with this policy.
    pub fn new(config: EjectorConfig) -> Self {
        Ejector { config, records: Mutex::default(), tracked: AtomicUsize::new(0) }
    }

    /// The policy.
    pub fn config(&self) -> &EjectorConfig {
        &self.config
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a call's outcome on endpoint `id` at `now`. Returns the back-off when this failure
    /// ejected the endpoint.
    pub fn record(&self, id: &Arc<str>, ok: bool, now: Instant) -> Option<Duration> {
        if ok && self.tracked.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut records = self.records();
        if ok {
            records.remove(&**id);
            self.tracked.store(records.len(), Ordering::Release);
            return None;
        }
        if !records.contains_key(&**id) {
            records.insert(Arc::clone(id), Record::default());
            self.tracked.store(records.len(), Ordering::Release);
        }
        let record = records.get_mut(&**id)?;
        if record.until.is_some_and(|until| now < until) {
            return None;
        }
        record.consecutive += 1;
        if record.consecutive < self.config.failures.max(1) {
            return None;
        }
        let doublings = record.ejections.min(31);
        let back_off = self.config.base.saturating_mul(1 << doublings).min(self.config.max);
        record.ejections = record.ejections.saturating_add(1);
        record.consecutive = 0;
        record.until = Some(now + back_off);
        Some(back_off)
    }

    /// Whether endpoint `id` is ejected at `now`, whatever the table.
    pub fn is_ejected(&self, id: &str, now: Instant) -> bool {
        self.records().get(id).and_then(|r| r.until).is_some_and(|until| now < until)
    }

    /// The ids a balancer must skip for a call that already tried `tried`: `tried` plus the ejected
    /// endpoints in rotation, unless those are all the call has left, in which case just `tried`.
    pub fn exclusions(&self, table: &Table, tried: &[Arc<str>], now: Instant) -> Vec<Arc<str>> {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return tried.to_vec();
        }
        let records = self.records();
        let mut exclude = tried.to_vec();
        let mut routable = 0;
        for e in table.endpoints.iter().filter(|e| e.is_candidate(tried)) {
            if records.get(&*e.id).and_then(|r| r.until).is_some_and(|until| now < until) {
                exclude.push(Arc::clone(&e.id));
            } else {
                routable += 1;
            }
        }
        if routable == 0 {
            exclude.truncate(tried.len());
        }
        exclude
    }

    /// Forgets endpoints `table` does not list.
    pub fn retain(&self, table: &Table) {
        let mut records = self.records();
        records.retain(|id, _| table.get(id).is_some());
        self.tracked.store(records.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_support::{ids, table};
    use crate::balance::{Balancer, RoundRobin};

    const SEC: Duration = Duration::from_secs(1);

    fn fail(ej: &Ejector, id: &Arc<str>, times: u32, now: Instant) -> Option<Duration> {
        (0..times).map(|_| ej.record(id, false, now)).last().flatten()
    }

    #[test]
    fn ejects_after_n_consecutive_failures() {
        let (ej, id, t0) = (Ejector::default(), Arc::from("n0"), Instant::now());
        assert_eq!(fail(&ej, &id, 4, t0), None);
        assert!(!ej.is_ejected("n0", t0));
        assert_eq!(ej.record(&id, false, t0), Some(SEC));
        assert!(ej.is_ejected("n0", t0));
        assert!(ej.is_ejected("n0", t0 + SEC / 2));
        assert!(!ej.is_ejected("n0", t0 + SEC), "back in rotation when the back-off ends");
        assert!(!ej.is_ejected("n1", t0));
    }

    #[test]
    fn a_success_resets_the_count() {
        let (ej, id, t0) = (Ejector::default(), Arc::from("n0"), Instant::now());
        fail(&ej, &id, 4, t0);
        ej.record(&id, true, t0);
        assert_eq!(fail(&ej, &id, 4, t0), None);
        assert!(!ej.is_ejected("n0", t0));
    }

    #[test]
    fn back_off_doubles_up_to_the_max_and_a_success_resets_it() {
        let (ej, id) = (Ejector::default(), Arc::from("n0"));
        let mut now = Instant::now();
        let mut back_offs = Vec::new();
        for _ in 0..8 {
            let back_off = fail(&ej, &id, 5, now).unwrap();
            assert!(ej.is_ejected("n0", now + back_off - Duration::from_millis(1)));
            back_offs.push(back_off.as_secs());
            now += back_off;
        }
        assert_eq!(back_offs, [1, 2, 4, 8, 16, 32, 60, 60]);
        ej.record(&id, true, now);
        assert_eq!(fail(&ej, &id, 5, now), Some(SEC));
    }

    #[test]
    fn failures_while_ejected_do_not_count() {
        let (ej, id, t0) = (Ejector::default(), Arc::from("n0"), Instant::now());
        fail(&ej, &id, 5, t0);
        assert_eq!(fail(&ej, &id, 20, t0 + SEC / 2), None);
        assert_eq!(fail(&ej, &id, 4, t0 + SEC), None, "needs five fresh failures");
        assert_eq!(ej.record(&id, false, t0 + SEC), Some(2 * SEC));
    }

    #[test]
    fn a_success_while_ejected_ends_the_ejection() {
        let (ej, id, t0) = (Ejector::default(), Arc::from("n0"), Instant::now());
        fail(&ej, &id, 5, t0);
        ej.record(&id, true, t0);
        assert!(!ej.is_ejected("n0", t0));
    }

    #[test]
    fn exclusions_skip_ejected_endpoints() {
        let (ej, t, t0) = (Ejector::default(), table(&[10, 10, 10]), Instant::now());
        fail(&ej, &t.endpoints[1].id, 5, t0);
        let exclude = ej.exclusions(&t, &[], t0);
        assert_eq!(exclude, ids(&["n1"]));
        let rr = RoundRobin::new();
        assert!((0..100).all(|_| &*rr.pick(&t, None, &exclude).unwrap().id != "n1"));
        assert_eq!(ej.exclusions(&t, &ids(&["n0"]), t0), ids(&["n0", "n1"]));
        assert!(ej.exclusions(&t, &[], t0 + SEC).is_empty());
    }

    #[test]
    fn never_ejects_the_last_endpoint() {
        let (ej, t0) = (Ejector::default(), Instant::now());
        let single = table(&[10]);
        fail(&ej, &single.endpoints[0].id, 5, t0);
        assert!(ej.exclusions(&single, &[], t0).is_empty());
        assert!(RoundRobin::new().pick(&single, None, &ej.exclusions(&single, &[], t0)).is_some());

        // n0 out of rotation, n1 ejected, n2 already tried: n1 is all the call has left.
        let t = table(&[0, 10, 10]);
        fail(&ej, &t.endpoints[1].id, 5, t0);
        assert_eq!(ej.exclusions(&t, &ids(&["n2"]), t0), ids(&["n2"]));
        // Every endpoint ejected: none is excluded.
        fail(&ej, &t.endpoints[2].id, 5, t0);
        assert!(ej.exclusions(&t, &[], t0).is_empty());
    }

    #[test]
    fn retain_forgets_endpoints_that_left() {
        let (ej, t, t0) = (Ejector::default(), table(&[10, 10]), Instant::now());
        fail(&ej, &Arc::from("gone"), 5, t0);
        fail(&ej, &t.endpoints[0].id, 5, t0);
        ej.retain(&t);
        assert!(!ej.is_ejected("gone", t0));
        assert!(ej.is_ejected("n0", t0));
    }

    #[test]
    fn custom_policy() {
        let config = EjectorConfig { failures: 2, base: Duration::from_millis(100), max: SEC };
        let (ej, id, t0) = (Ejector::new(config), Arc::from("n0"), Instant::now());
        assert_eq!(ej.config(), &config);
        assert_eq!(fail(&ej, &id, 2, t0), Some(Duration::from_millis(100)));
    }
}
