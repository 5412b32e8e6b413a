//! A client's recorder for one node: finds the (service, method, node) series of a call through a
//! lock-free cache keyed by the identity of the generated `&'static str` names, so a call hashes
//! two pointers, reads a slot or two and allocates nothing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::MetricsRegistry;
use super::outcome::Outcome;
use super::stats::{CallStats, PhaseStats};
use crate::set_once::SetOnce;

/// A `&'static str` by address and length: equal keys are the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct NameId(usize, usize);

impl NameId {
    #[inline]
    fn of(name: &'static str) -> Self {
        NameId(name.as_ptr() as usize, name.len())
    }
}

/// Records the calls made to one node, and its connect, send and wait times, into a
/// [`MetricsRegistry`].
pub(crate) struct NodeRecorder {
    registry: MetricsRegistry,
    node: Arc<str>,
    phases: Arc<PhaseStats>,
    /// Series seen so far, by service and method.
    calls: SetOnce<(NameId, NameId), Arc<CallStats>>,
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
            calls: SetOnce::default(),
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
        match self.calls.get(key) {
            Some(stats) => stats.record(outcome, latency),
            None => {
                let stats =
                    self.calls.get_or_add(key, || self.registry.client_calls(service, method, &self.node));
                stats.record(outcome, latency);
            }
        }
    }
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
            (0..128).map(|n| &*Box::leak(format!("method{n}").into_boxed_str())).collect();
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
        assert!(recorder.calls.is_full(), "the table filled up and the methods beyond it went to the map");
    }
}
