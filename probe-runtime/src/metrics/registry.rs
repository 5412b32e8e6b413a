//! The registry of a process's call statistics: every running server's table, and the client
//! series created as calls reach new (service, method, node) keys.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::server::ServerStats;
use super::stats::{CallSnapshot, CallStats, PhaseStats};

/// The call statistics of a process: what the admin endpoint renders as Prometheus text. Clones
/// share one registry; servers and clients record into [`global`] unless told not to record.
///
/// Locks are taken only when a server starts or stops, when a client calls a (service, method,
/// node) for the first time, and when the registry is rendered, never per call.
#[derive(Clone, Default)]
pub struct MetricsRegistry {
    inner: Arc<Inner>,
}

#[derive(Default)]
pub(super) struct Inner {
    servers: RwLock<Vec<Arc<ServerStats>>>,
    clients: RwLock<BTreeMap<ClientKey, Arc<CallStats>>>,
    phases: RwLock<BTreeMap<Arc<str>, Arc<PhaseStats>>>,
    pub(super) unusable: super::unusable::UnusableNodes,
    pub(super) rules: super::rules::RuleStates,
    pub(super) faults: super::faults::Faults,
}

/// `(service, method, node)`.
type ClientKey = (&'static str, &'static str, Arc<str>);

impl fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsRegistry")
            .field("servers", &read(&self.inner.servers).len())
            .field("client_series", &read(&self.inner.clients).len())
            .finish()
    }
}

/// The registry servers and clients record into: one per process.
pub fn global() -> &'static MetricsRegistry {
    static GLOBAL: OnceLock<MetricsRegistry> = OnceLock::new();
    GLOBAL.get_or_init(MetricsRegistry::new)
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// One client series at a moment.
#[derive(Debug, Clone)]
pub struct ClientSeries {
    /// The service.
    pub service: &'static str,
    /// The method.
    pub method: &'static str,
    /// The node: its registry id (`{service}_{ip}_{port}`) or the `host:port` called.
    pub node: Arc<str>,
    /// The counts so far.
    pub calls: CallSnapshot,
}

impl MetricsRegistry {
    /// An empty registry (servers and clients use [`global`]; this is for tests and tools).
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Adds a running server's table.
    pub(crate) fn add_server(&self, stats: Arc<ServerStats>) {
        write(&self.inner.servers).push(stats);
    }

    /// Removes a stopped server's table.
    pub(crate) fn remove_server(&self, stats: &Arc<ServerStats>) {
        write(&self.inner.servers).retain(|s| !Arc::ptr_eq(s, stats));
    }

    /// The series of calls of `method` of `service` to `node`, created on first use.
    pub(crate) fn client_calls(
        &self,
        service: &'static str,
        method: &'static str,
        node: &Arc<str>,
    ) -> Arc<CallStats> {
        let key = (service, method, Arc::clone(node));
        if let Some(stats) = read(&self.inner.clients).get(&key) {
            return Arc::clone(stats);
        }
        Arc::clone(write(&self.inner.clients).entry(key).or_default())
    }

    /// The phase histograms of `node`, created on first use.
    pub(crate) fn client_phases(&self, node: &Arc<str>) -> Arc<PhaseStats> {
        if let Some(stats) = read(&self.inner.phases).get(node) {
            return Arc::clone(stats);
        }
        Arc::clone(write(&self.inner.phases).entry(Arc::clone(node)).or_default())
    }

    /// Forgets the client series and phase histograms of `nodes` (nodes a cluster transport's
    /// table no longer lists) that no recorder holds any more: the registry's own reference is the
    /// last one, so no live transport still counts into them. Leaves in `nodes` the nodes some
    /// series of which are still held (a call in flight, another transport), to try again later.
    ///
    /// Takes the write locks and walks every client series: call it on table changes, never per
    /// call.
    pub(crate) fn forget_client_nodes(&self, nodes: &mut HashSet<Arc<str>>) {
        if nodes.is_empty() {
            return;
        }
        let mut held = HashSet::new();
        let mut unheld = |node: &Arc<str>, count: usize| {
            if !nodes.contains(node) {
                return true;
            }
            if count > 1 {
                held.insert(Arc::clone(node));
            }
            count > 1
        };
        write(&self.inner.clients).retain(|(_, _, node), stats| unheld(node, Arc::strong_count(stats)));
        write(&self.inner.phases).retain(|node, stats| unheld(node, Arc::strong_count(stats)));
        nodes.retain(|node| held.contains(node));
    }

    /// Every server series at this moment, summed over the process's running servers, sorted by
    /// service and method.
    pub fn server_calls(&self) -> Vec<(&'static str, &'static str, CallSnapshot)> {
        let mut merged = BTreeMap::<(&'static str, &'static str), CallSnapshot>::new();
        for server in read(&self.inner.servers).iter() {
            for (service, method, calls) in server.all() {
                merged.entry((service, method)).or_default().merge(&calls);
            }
        }
        merged.into_iter().map(|((service, method), calls)| (service, method, calls)).collect()
    }

    /// Each running server's buffered bytes: `(node, in use, peak, limit)`.
    pub(crate) fn server_buffered(&self) -> Vec<(String, usize, usize, usize)> {
        read(&self.inner.servers)
            .iter()
            .filter_map(|s| s.buffered())
            .map(|(node, b)| (node.to_owned(), b.in_use(), b.peak(), b.limit()))
            .collect()
    }

    /// Each server's address and what its request limits counted.
    pub(crate) fn server_limits(&self) -> Vec<(String, Vec<crate::server::LimitStats>)> {
        read(&self.inner.servers)
            .iter()
            .filter_map(|s| s.buffered().map(|(node, _)| (node.to_owned(), s.limit_stats())))
            .filter(|(_, stats)| !stats.is_empty())
            .collect()
    }

    /// Each server's address and what its caller policies counted.
    pub(crate) fn server_callers(&self) -> Vec<(String, Vec<crate::server::CallerStats>)> {
        read(&self.inner.servers)
            .iter()
            .filter_map(|s| s.buffered().map(|(node, _)| (node.to_owned(), s.caller_stats())))
            .filter(|(_, stats)| !stats.is_empty())
            .collect()
    }

    /// Each server's address and the header frames it could not read.
    pub(crate) fn server_bad_header_frames(&self) -> Vec<(String, u64)> {
        read(&self.inner.servers)
            .iter()
            .filter_map(|s| s.buffered().map(|(node, _)| (node.to_owned(), s.bad_header_frames())))
            .collect()
    }

    /// Every client series at this moment, sorted by service, method and node.
    pub fn client_calls_all(&self) -> Vec<ClientSeries> {
        read(&self.inner.clients)
            .iter()
            .map(|((service, method, node), stats)| ClientSeries {
                service,
                method,
                node: Arc::clone(node),
                calls: stats.snapshot(),
            })
            .collect()
    }

    /// Every node's phase histograms, sorted by node.
    pub(crate) fn phases_all(&self) -> Vec<(Arc<str>, Arc<PhaseStats>)> {
        read(&self.inner.phases).iter().map(|(node, stats)| (Arc::clone(node), Arc::clone(stats))).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::Outcome;
    use crate::metrics::server::tests::fake;
    use crate::service::Dispatch;

    #[test]
    fn servers_of_one_process_add_up_until_they_stop() {
        let registry = MetricsRegistry::new();
        let a = Arc::new(ServerStats::new([&fake("S") as &dyn Dispatch]));
        let b = Arc::new(ServerStats::new([&fake("S") as &dyn Dispatch]));
        registry.add_server(a.clone());
        registry.add_server(b.clone());
        a.record("S", "get", Outcome::Ok, Duration::from_micros(1));
        b.record("S", "get", Outcome::Ok, Duration::from_micros(1));
        let calls = |r: &MetricsRegistry| r.server_calls().iter().map(|(_, _, c)| c.calls()).sum::<u64>();
        assert_eq!(calls(&registry), 2);
        registry.remove_server(&b);
        assert_eq!(calls(&registry), 1);
    }

    #[test]
    fn client_series_are_created_once() {
        let registry = MetricsRegistry::new();
        let node: Arc<str> = "n".into();
        let first = registry.client_calls("S", "get", &node);
        assert!(Arc::ptr_eq(&first, &registry.client_calls("S", "get", &"n".into())));
        assert!(!Arc::ptr_eq(&first, &registry.client_calls("S", "put", &node)));
        assert_eq!(registry.client_calls_all().len(), 2);
    }

    #[test]
    fn departed_nodes_are_forgotten_once_no_recorder_holds_them() {
        let registry = MetricsRegistry::new();
        let (gone, kept, held): (Arc<str>, Arc<str>, Arc<str>) =
            ("gone".into(), "kept".into(), "held".into());
        for node in [&gone, &kept, &held] {
            registry.client_calls("S", "get", node).record(Outcome::Ok, Duration::ZERO);
            registry.client_phases(node);
        }
        let in_flight = registry.client_calls("S", "get", &held);
        let mut departed: HashSet<Arc<str>> = [gone.clone(), held.clone()].into();
        registry.forget_client_nodes(&mut departed);
        let nodes =
            |r: &MetricsRegistry| r.client_calls_all().into_iter().map(|s| s.node).collect::<Vec<_>>();
        assert_eq!(nodes(&registry), [held.clone(), kept.clone()]);
        assert_eq!(
            registry.phases_all().into_iter().map(|(n, _)| n).collect::<Vec<_>>(),
            std::slice::from_ref(&kept)
        );
        // Still held: kept to try again.
        assert_eq!(departed, [held.clone()].into());
        drop(in_flight);
        registry.forget_client_nodes(&mut departed);
        assert_eq!(nodes(&registry), std::slice::from_ref(&kept));
        assert_eq!(registry.phases_all().into_iter().map(|(n, _)| n).collect::<Vec<_>>(), [kept]);
        assert!(departed.is_empty());
    }
}
