//! A client's recorder for one node: finds the (service, method, node) series of a call through a
//! lock-free cache keyed by the identity of the generated `&'static str` names, so a call hashes
//! two pointers, reads a slot or two and allocates nothing.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::MetricsRegistry;
use super::fast_hash::FastMap;
use super::outcome::Outcome;
use super::stats::{CallStats, PhaseStats};

/// A `&'static str` by address and length: equal keys are the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct NameId(usize, usize);

impl NameId {
    #[inline]
    fn of(name: &'static str) -> Self {
        NameId(name.as_ptr() as usize, name.len())
    }
}

type Key = (NameId, NameId);

type Series = FastMap<Key, Arc<CallStats>>;

/// Slots of a recorder's table of series: a power of two, room for the methods a client calls
/// on one node as a rule.
const SLOTS: usize = 32;
/// Slots a key may take, from the one its hash picks: a key is in the table if and only if it is
/// in one of these (slots are set once and never cleared).
const PROBES: usize = 8;

/// Records the calls made to one node, and its connect, send and wait times, into a
/// [`MetricsRegistry`].
pub(crate) struct NodeRecorder {
    registry: MetricsRegistry,
    node: Arc<str>,
    phases: Arc<PhaseStats>,
    /// Series seen so far, by key, open addressing: each slot is set once, so finding a series is
    /// a load per slot looked at (an `ArcSwap` load took a debt slot and paid it back: about 160
    /// instructions per call).
    table: Box<[OnceLock<(Key, Arc<CallStats>)>; SLOTS]>,
    /// Series whose slots were all taken by others (a client calling many methods of one node);
    /// replaced (copied and extended) the first time such a method is called.
    more: ArcSwap<Series>,
}

impl fmt::Debug for NodeRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeRecorder").field("node", &self.node).finish_non_exhaustive()
    }
}

impl NodeRecorder {
    /// A recorder of calls to `node` (a registry node id, or `host:port`).
    pub(crate) fn new(registry: &MetricsRegistry, node: Arc<str>) -> Self {
        NodeRecorder {
            registry: registry.clone(),
            phases: registry.client_phases(&node),
            node,
            table: Box::new(std::array::from_fn(|_| OnceLock::new())),
            more: ArcSwap::default(),
        }
    }

    /// The node's connect, send and wait histograms.
    pub(crate) fn phases(&self) -> &Arc<PhaseStats> {
        &self.phases
    }

    /// Counts one call of `method` of `service`.
    #[inline]
    pub(crate) fn record(
        &self,
        service: &'static str,
        method: &'static str,
        outcome: Outcome,
        latency: Duration,
    ) {
        let key = (NameId::of(service), NameId::of(method));
        let start = slot_of(key);
        for probe in 0..PROBES {
            match self.table[(start + probe) % SLOTS].get() {
                Some((k, stats)) if *k == key => return stats.record(outcome, latency),
                Some(_) => {}
                None => break,
            }
        }
        self.other_call(key, service, method).record(outcome, latency);
    }

    /// The series of a key its slots did not show: it takes the first free one of them, else it
    /// goes to (or is found in) [`NodeRecorder::more`].
    #[cold]
    fn other_call(&self, key: Key, service: &'static str, method: &'static str) -> Arc<CallStats> {
        if let Some(stats) = self.more.load().get(&key) {
            return Arc::clone(stats);
        }
        let stats = self.registry.client_calls(service, method, &self.node);
        let start = slot_of(key);
        for probe in 0..PROBES {
            // Another thread may set the slot first: with this key (the same series), or another.
            let (k, _) = self.table[(start + probe) % SLOTS].get_or_init(|| (key, Arc::clone(&stats)));
            if *k == key {
                return stats;
            }
        }
        self.more.rcu(|calls| {
            let mut calls = Series::clone(calls);
            calls.insert(key, Arc::clone(&stats));
            calls
        });
        stats
    }
}

/// The first slot a key may take: the Fx hash of its two names' addresses and lengths.
#[inline]
fn slot_of((service, method): Key) -> usize {
    let mut h = super::fast_hash::FxHasher::default();
    std::hash::Hasher::write_usize(&mut h, service.0 ^ service.1);
    std::hash::Hasher::write_usize(&mut h, method.0 ^ method.1);
    (std::hash::Hasher::finish(&h) >> 32) as usize % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_reach_the_registry_series() {
        let registry = MetricsRegistry::new();
        let node: Arc<str> = "S_10.0.0.1_9090".into();
        let recorder = NodeRecorder::new(&registry, node.clone());
        for _ in 0..3 {
            recorder.record("S", "get", Outcome::Ok, Duration::from_micros(10));
        }
        recorder.record("S", "put", Outcome::Timeout, Duration::from_secs(1));
        // A second recorder of the same node shares the series.
        NodeRecorder::new(&registry, node.clone()).record("S", "get", Outcome::Ok, Duration::ZERO);
        let get = registry.client_calls("S", "get", &node).snapshot();
        assert_eq!((get.calls(), get.errors()), (4, 0));
        assert_eq!(registry.client_calls("S", "put", &node).snapshot().count(Outcome::Timeout), 1);
        assert!(Arc::ptr_eq(recorder.phases(), &registry.client_phases(&node)));
    }

    #[test]
    fn more_methods_than_the_table_holds_are_counted_each_in_its_own_series() {
        let registry = MetricsRegistry::new();
        let node: Arc<str> = "10.0.0.1:9090".into();
        let recorder = Arc::new(NodeRecorder::new(&registry, node.clone()));
        let methods: Vec<&'static str> =
            (0..4 * SLOTS).map(|n| &*Box::leak(format!("method{n}").into_boxed_str())).collect();
        // Four threads at once, each method n + 1 times: first calls race for the same slots.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (recorder, methods) = (Arc::clone(&recorder), methods.clone());
                std::thread::spawn(move || {
                    for (n, method) in methods.iter().enumerate() {
                        for _ in 0..=n {
                            recorder.record("S", method, Outcome::Ok, Duration::from_micros(3));
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        for (n, method) in methods.iter().enumerate() {
            let calls = registry.client_calls("S", method, &node).snapshot().calls();
            assert_eq!(calls, 4 * (n as u64 + 1), "{method}");
        }
        assert!(recorder.table.iter().all(|slot| slot.get().is_some()), "the table filled up");
        assert!(!recorder.more.load().is_empty(), "the methods beyond it went to the map");
    }
}
