//! A client's recorder for one node: finds the (service, method, node) series of a call through a
//! lock-free cache keyed by the identity of the generated `&'static str` names, so a call hashes
//! two pointers and allocates nothing.

use std::fmt;
use std::sync::Arc;
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

type Series = FastMap<(NameId, NameId), Arc<CallStats>>;

/// Records the calls made to one node, and its connect, send and wait times, into a
/// [`MetricsRegistry`].
pub(crate) struct NodeRecorder {
    registry: MetricsRegistry,
    node: Arc<str>,
    phases: Arc<PhaseStats>,
    /// Series seen so far; replaced (copied and extended) the first time a method is called.
    calls: ArcSwap<Series>,
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
            calls: ArcSwap::default(),
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
        match self.calls.load().get(&key) {
            Some(stats) => stats.record(outcome, latency),
            None => self.first_call(key, service, method).record(outcome, latency),
        }
    }

    #[cold]
    fn first_call(
        &self,
        key: (NameId, NameId),
        service: &'static str,
        method: &'static str,
    ) -> Arc<CallStats> {
        let stats = self.registry.client_calls(service, method, &self.node);
        self.calls.rcu(|calls| {
            let mut calls = Series::clone(calls);
            calls.insert(key, Arc::clone(&stats));
            calls
        });
        stats
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
}
