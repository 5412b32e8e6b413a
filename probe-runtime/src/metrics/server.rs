//! One server's call statistics: a fixed table of (service, method) series built when the server
//! starts. A routed call finds its series by its service object's address and a cheap method
//! table, without locks or allocation, and records it later through a plain index.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::method_table::MethodTable;
use super::outcome::Outcome;
use super::stats::{CallSnapshot, CallStats};
use crate::service::Dispatch;
use crate::transport::MemoryBudget;

/// The methods of one service on a server.
struct ServiceStats {
    name: &'static str,
    /// The address of the service object, which routed calls carry.
    address: usize,
    methods: MethodTable<CallStats>,
}

/// Where one (service, method) series is in a [`ServerStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesId {
    service: usize,
    method: usize,
}

/// The call statistics of one server, per service and method. The table is fixed at start (the
/// methods the services declare), so recording never locks or allocates.
pub struct ServerStats {
    services: Vec<ServiceStats>,
    /// The server's address and the budget of its buffered request and reply bytes.
    buffered: OnceLock<(String, Arc<MemoryBudget>)>,
    /// Header frames (THeader) that could not be read; each closed its connection.
    bad_header_frames: AtomicU64,
    /// The server's request limits, once watched.
    limits: OnceLock<Arc<crate::server::ServerLimits>>,
    /// The server's caller policies, once watched.
    callers: OnceLock<Arc<crate::server::ServerCallers>>,
}

impl fmt::Debug for ServerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.services.iter().map(|s| s.name).collect();
        f.debug_struct("ServerStats").field("services", &names).finish_non_exhaustive()
    }
}

fn address(service: &dyn Dispatch) -> usize {
    (service as *const dyn Dispatch).cast::<()>() as usize
}

impl ServerStats {
    /// A table for `services` (the objects the server routes calls to): every method of each,
    /// with no calls yet.
    pub fn new<'a>(services: impl IntoIterator<Item = &'a dyn Dispatch>) -> Self {
        let services = services
            .into_iter()
            .map(|service| {
                let methods = service.methods().iter().map(|m| (m.name, CallStats::new())).collect();
                ServiceStats {
                    name: service.service_name(),
                    address: address(service),
                    methods: MethodTable::new(methods),
                }
            })
            .collect();
        ServerStats {
            services,
            buffered: OnceLock::new(),
            bad_header_frames: AtomicU64::new(0),
            limits: OnceLock::new(),
            callers: OnceLock::new(),
        }
    }

    /// Shows `budget`, the bytes buffered by the server at `node`, with these statistics.
    pub(crate) fn watch_buffered(&self, node: &str, budget: Arc<MemoryBudget>) {
        let _ = self.buffered.set((node.to_owned(), budget));
    }

    /// Shows the server's request limits and what they refused with these statistics.
    pub(crate) fn watch_limits(&self, limits: Arc<crate::server::ServerLimits>) {
        let _ = self.limits.set(limits);
    }

    /// Shows the server's caller policies and what they counted with these statistics.
    pub(crate) fn watch_callers(&self, callers: Arc<crate::server::ServerCallers>) {
        let _ = self.callers.set(callers);
    }

    /// What the server's caller policies counted, when watched.
    pub fn caller_stats(&self) -> Vec<crate::server::CallerStats> {
        self.callers.get().map(|c| c.stats()).unwrap_or_default()
    }

    /// What the server's request limits counted, and the limits set, when watched.
    pub fn limit_stats(&self) -> Vec<crate::server::LimitStats> {
        self.limits.get().map(|l| l.stats()).unwrap_or_default()
    }

    /// Why the server refused the limits stored for `service`, if it did.
    pub fn limits_problem(&self, service: &str) -> Option<String> {
        self.limits.get()?.applied().get(service)?.problem.clone()
    }

    /// Counts a header frame that could not be read.
    pub(crate) fn count_bad_header_frame(&self) {
        self.bad_header_frames.fetch_add(1, Ordering::Relaxed);
    }

    /// Header frames (THeader) that could not be read (malformed sizes, unknown transforms or
    /// protocols, payloads inflating past the frame limit); each closed its connection.
    pub fn bad_header_frames(&self) -> u64 {
        self.bad_header_frames.load(Ordering::Relaxed)
    }

    /// The server's address and its budget of buffered bytes, once watched.
    pub(crate) fn buffered(&self) -> Option<(&str, &MemoryBudget)> {
        self.buffered.get().map(|(node, budget)| (node.as_str(), &**budget))
    }

    /// The series of `method` of the routed `service` (one of the objects this table was built
    /// from; others are found by name).
    #[inline]
    pub fn find(&self, service: &dyn Dispatch, method: &str) -> Option<SeriesId> {
        let at = address(service);
        let index = match self.services.iter().position(|s| s.address == at) {
            Some(index) => index,
            None => self.services.iter().position(|s| s.name == service.service_name())?,
        };
        let method = self.services.get(index)?.methods.position(method)?;
        Some(SeriesId { service: index, method })
    }

    /// Counts a call of the series `id` (from [`ServerStats::find`] on this table).
    #[inline]
    pub fn record_at(&self, id: SeriesId, outcome: Outcome, latency: Duration) {
        if let Some((_, stats)) = self.services.get(id.service).and_then(|s| s.methods.at(id.method)) {
            stats.record(outcome, latency);
        }
    }

    /// The series of `method` of the service named `service`, if the server has it.
    pub fn get(&self, service: &str, method: &str) -> Option<&CallStats> {
        self.services.iter().find(|s| s.name == service)?.methods.get(method)
    }

    /// Counts a call of `method` of `service`; does nothing for methods the server does not have.
    pub fn record(&self, service: &str, method: &str, outcome: Outcome, latency: Duration) {
        if let Some(stats) = self.get(service, method) {
            stats.record(outcome, latency);
        }
    }

    /// The methods of `service` with their counts so far, sorted by method; empty for a service
    /// the server does not have.
    pub fn service(&self, service: &str) -> Vec<(&'static str, CallSnapshot)> {
        let mut methods: Vec<_> = match self.services.iter().find(|s| s.name == service) {
            Some(s) => s.methods.iter().map(|(name, stats)| (*name, stats.snapshot())).collect(),
            None => Vec::new(),
        };
        methods.sort_unstable_by_key(|(name, _)| *name);
        methods
    }

    /// Every (service, method) with its counts so far.
    pub fn all(&self) -> Vec<(&'static str, &'static str, CallSnapshot)> {
        self.services
            .iter()
            .flat_map(|s| s.methods.iter().map(|(method, stats)| (s.name, *method, stats.snapshot())))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::service::MethodInfo;
    use crate::service::test_support::FakeService;

    const METHODS: &[MethodInfo] = &[
        MethodInfo { name: "get", oneway: false, idempotent: true },
        MethodInfo { name: "put", oneway: false, idempotent: false },
    ];

    /// A service `name` with methods `get` and `put` that answers nothing.
    pub(crate) const fn fake(name: &'static str) -> FakeService {
        FakeService::new(name, METHODS)
    }

    #[test]
    fn records_known_methods_only() {
        let (a, b) = (fake("A"), fake("B"));
        let stats = ServerStats::new([&a as &dyn Dispatch, &b]);
        stats.record("A", "get", Outcome::Ok, Duration::from_micros(50));
        stats.record("A", "get", Outcome::AppError, Duration::from_micros(50));
        stats.record("B", "put", Outcome::Exception, Duration::from_micros(50));
        stats.record("A", "nope", Outcome::Ok, Duration::from_micros(50));
        stats.record("C", "get", Outcome::Ok, Duration::from_micros(50));
        let a = stats.service("A");
        assert_eq!(
            a.iter().map(|(m, s)| (*m, s.calls(), s.errors())).collect::<Vec<_>>(),
            [("get", 2, 1), ("put", 0, 0)]
        );
        assert!(stats.service("C").is_empty());
        assert_eq!(stats.all().iter().map(|(_, _, s)| s.calls()).sum::<u64>(), 3);
    }

    #[test]
    fn routed_services_are_found_by_address_then_name() {
        let (a, b) = (fake("A"), fake("B"));
        let stats = ServerStats::new([&a as &dyn Dispatch, &b]);
        let id = stats.find(&b, "put").expect("B has put");
        stats.record_at(id, Outcome::Ok, Duration::from_micros(5));
        assert_eq!(stats.get("B", "put").map(|s| s.snapshot().calls()), Some(1));
        // Another object of the same name (not one the table was built from) is found by name.
        assert_eq!(stats.find(&fake("B"), "put"), Some(id));
        assert_eq!(stats.find(&fake("C"), "put"), None);
        assert_eq!(stats.find(&a, "nope"), None);
    }
}
