//! A server's request limits: one gate per service and per method, set from the builder's
//! defaults and replaced live by the limits operators store in each node's data.
//!
//! A call is checked right after it is routed, before its arguments are decoded: first its
//! method's gate, then its service's. A refused call is answered with a `LOADSHEDDING`
//! `TApplicationException` naming the limit, and never reaches the handler. A server with no
//! limit set pays one atomic load per call.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::watch;
use tracing::{info, warn};

use super::admission::Admission;
use crate::context::Priority;
use crate::limits::gate::{Gate, GateStats};
use crate::limits::{LimitError, Refusal, RequestLimits, describe};
use crate::registry::layout::{NodeData, NodeKey};
use crate::registry::{Backends, RegisteredNode};
use crate::service::Dispatch;

/// The gates of one service.
pub(super) struct ServiceGates {
    name: &'static str,
    gate: Gate,
    /// One per method, in the order the service declares them.
    methods: Vec<(&'static str, Gate)>,
}

impl ServiceGates {
    /// The position of `method` among the service's methods.
    pub(super) fn method_index(&self, method: &str) -> Option<usize> {
        self.methods.iter().position(|(name, _)| *name == method)
    }
}

/// Where the limits of a service came from.
#[derive(Debug, Clone, PartialEq)]
pub enum LimitSource {
    /// None is set.
    None,
    /// The server's builder or configuration.
    Configured,
    /// The node's data in the registry (set by an operator).
    Node,
}

/// The limits a service runs with now.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedLimits {
    /// The limits (empty when none).
    pub limits: RequestLimits,
    /// Where they came from.
    pub source: LimitSource,
    /// The problems of the last document the node's data held, if it was refused (the limits
    /// before it stay).
    pub problem: Option<String>,
}

/// What a service's gates counted: the service's and each limited method's.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitStats {
    /// The service.
    pub service: &'static str,
    /// The method, or `None` for the service's own gate.
    pub method: Option<&'static str>,
    /// The counts.
    pub stats: GateStats,
    /// The limits set: calls per second, calls in flight (0 for none).
    pub qps: Option<f64>,
    /// The static concurrency limit.
    pub concurrency: Option<u32>,
}

/// The gates of every service a server serves.
pub(crate) struct ServerLimits {
    services: Vec<ServiceGates>,
    /// Whether any gate has a limit: calls skip the gates otherwise.
    any: AtomicBool,
    admission: Arc<Admission>,
    /// The limits the builder set, per service.
    configured: HashMap<&'static str, RequestLimits>,
    /// What each service runs with; a change counts up the generation.
    applied: Mutex<BTreeMap<&'static str, AppliedLimits>>,
    generation: watch::Sender<u64>,
}

impl std::fmt::Debug for ServerLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLimits").field("applied", &self.applied()).finish_non_exhaustive()
    }
}

/// A call let through the gates; releasing it (on drop, or [`Permit::finish`]) frees its place
/// and, for an adaptive gate, reports its latency.
pub(super) struct Permit<'a> {
    method: Option<&'a Gate>,
    service: Option<&'a Gate>,
    started: Instant,
    done: bool,
}

impl Permit<'_> {
    /// The call finished (`failed`: with an error reply).
    pub(super) fn finish(mut self, failed: bool) {
        self.release(failed, false);
    }

    fn release(&mut self, failed: bool, cancelled: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let adaptive =
            self.method.is_some_and(Gate::is_adaptive) || self.service.is_some_and(Gate::is_adaptive);
        let timing = adaptive.then(|| (self.started, crate::context::now(), failed, cancelled));
        for gate in [self.method, self.service].into_iter().flatten() {
            gate.release(timing);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // Dropped unfinished: the call was cancelled (its connection closed, its deadline passed).
        self.release(false, true);
    }
}

/// A refused call: the limit, and whose it is.
pub(super) struct Refused {
    pub(super) refusal: Refusal,
    /// The method, when the method's own limit refused it.
    pub(super) method: Option<&'static str>,
}

impl ServerLimits {
    /// Gates for `services`, with the builder's `configured` limits applied.
    pub(super) fn new(
        services: &[Arc<dyn Dispatch>],
        configured: HashMap<&'static str, RequestLimits>,
        admission: Arc<Admission>,
    ) -> Self {
        let gates = services
            .iter()
            .map(|s| ServiceGates {
                name: s.service_name(),
                gate: Gate::default(),
                methods: s.methods().iter().map(|m| (m.name, Gate::default())).collect(),
            })
            .collect();
        let limits = ServerLimits {
            services: gates,
            any: AtomicBool::new(false),
            admission,
            configured,
            applied: Mutex::new(BTreeMap::new()),
            generation: watch::Sender::new(0),
        };
        for service in limits.services.iter().map(|s| s.name).collect::<Vec<_>>() {
            // The builder checked the configured limits.
            let _ = limits.apply(service, None);
        }
        limits
    }

    /// The gates of `service`.
    pub(super) fn service(&self, service: &str) -> Option<&ServiceGates> {
        self.services.iter().find(|s| s.name == service)
    }

    /// The method names of `service`, as its IDL declares them.
    pub(super) fn methods_of(&self, service: &str) -> Vec<String> {
        self.service(service)
            .map(|s| s.methods.iter().map(|(m, _)| (*m).to_owned()).collect())
            .unwrap_or_default()
    }

    /// Whether any limit is set.
    #[inline]
    pub(super) fn any(&self) -> bool {
        self.any.load(Relaxed)
    }

    /// Lets a call of `method` (its index) of `service` in, at `now`, with `priority`.
    pub(super) fn acquire<'a>(
        &self,
        service: &'a ServiceGates,
        method: usize,
        priority: Priority,
        now: Instant,
    ) -> Result<Permit<'a>, Refused> {
        let mut permit = Permit { method: None, service: None, started: now, done: false };
        if let Some((name, gate)) = service.methods.get(method) {
            match gate.acquire(priority, now) {
                Ok(counted) => permit.method = counted.then_some(gate),
                Err(refusal) => return Err(Refused { refusal, method: Some(name) }),
            }
        }
        match service.gate.acquire(priority, now) {
            Ok(counted) => permit.service = counted.then_some(&service.gate),
            // Dropping the permit gives the method's place back.
            Err(refusal) => return Err(Refused { refusal, method: None }),
        }
        Ok(permit)
    }

    /// Applies `limits` to `service` (`None`: the configured ones). Methods the service does not
    /// have are refused with the rest of the document; the limits before stay.
    pub(super) fn apply(&self, service: &str, limits: Option<&RequestLimits>) -> Result<(), Vec<LimitError>> {
        let Some(gates) = self.service(service) else { return Ok(()) };
        let (limits, source) = match limits {
            Some(limits) => (limits.clone(), LimitSource::Node),
            None => match self.configured.get(gates.name) {
                Some(configured) => (configured.clone(), LimitSource::Configured),
                None => (RequestLimits::default(), LimitSource::None),
            },
        };
        let methods: Vec<&str> = gates.methods.iter().map(|(m, _)| *m).collect();
        let problems = limits.check_methods(gates.name, &methods);
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        if !problems.is_empty() {
            if let Some(entry) = applied.get_mut(gates.name) {
                entry.problem = Some(describe(&problems));
            }
            self.generation.send_modify(|g| *g += 1);
            return Err(problems);
        }
        let entry = AppliedLimits { limits: limits.clone(), source, problem: None };
        if applied.get(gates.name) == Some(&entry) {
            return Ok(());
        }
        gates.gate.set_service(Some(&limits));
        for (name, gate) in &gates.methods {
            gate.set_method(limits.methods.get(*name));
        }
        applied.insert(gates.name, entry);
        let any =
            self.services.iter().any(|s| s.gate.is_active() || s.methods.iter().any(|(_, g)| g.is_active()));
        self.any.store(any, Relaxed);
        let connections = applied.values().filter_map(|a| a.limits.connections).min();
        self.admission.set_live_max(connections.map(|c| c as usize));
        drop(applied);
        info!(service = gates.name, limits = %limits, "request limits applied");
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    /// Applies the limits a node's data holds (`None`: it holds none).
    fn apply_node(&self, key: &NodeKey, data: &NodeData) {
        let limits = match &data.limits {
            None => None,
            Some(value) => match RequestLimits::from_json(value) {
                Ok(limits) => Some(limits),
                Err(problems) => {
                    warn!(node = %key, problems = %describe(&problems), "the node's limits are refused; the limits before stay");
                    let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(entry) = applied.get_mut(key.service()) {
                        entry.problem = Some(describe(&problems));
                    }
                    return;
                }
            },
        };
        if let Err(problems) = self.apply(key.service(), limits.as_ref()) {
            warn!(node = %key, problems = %describe(&problems), "the node's limits are refused; the limits before stay");
        }
    }

    /// What each service runs with.
    pub(crate) fn applied(&self) -> BTreeMap<String, AppliedLimits> {
        let applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        applied.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    /// Counts up with every change of the applied limits.
    pub(super) fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// What every gate with a limit (or with refusals) counted.
    pub(crate) fn stats(&self) -> Vec<LimitStats> {
        let applied = self.applied();
        let mut out = Vec::new();
        for service in &self.services {
            let limits = applied.get(service.name).map(|a| &a.limits);
            let stats = service.gate.stats();
            if service.gate.is_active() || stats.refused.iter().any(|&n| n > 0) {
                let (qps, concurrency) = (limits.and_then(|l| l.qps), limits.and_then(|l| l.concurrency));
                out.push(LimitStats { service: service.name, method: None, stats, qps, concurrency });
            }
            for (name, gate) in &service.methods {
                let stats = gate.stats();
                if gate.is_active() || stats.refused.iter().any(|&n| n > 0) {
                    let method = limits.and_then(|l| l.methods.get(*name));
                    let (qps, concurrency) = (method.and_then(|m| m.qps), method.and_then(|m| m.concurrency));
                    out.push(LimitStats {
                        service: service.name,
                        method: Some(name),
                        stats,
                        qps,
                        concurrency,
                    });
                }
            }
        }
        out
    }
}

/// Applies the limits in the data of `keys` as it is now, then follows every change of it in the
/// registry until the returned task is aborted.
pub(super) fn follow(
    limits: Arc<ServerLimits>,
    callers: Arc<super::ServerCallers>,
    backends: &Backends,
    keys: &[NodeKey],
    registered: &[NodeData],
) -> tokio::task::JoinHandle<()> {
    for (key, data) in keys.iter().zip(registered) {
        limits.apply_node(key, data);
        callers.apply_node(key, data);
    }
    let backends = backends.clone();
    let keys = keys.to_vec();
    tokio::spawn(async move {
        let mut appkeys: Vec<&str> = keys.iter().map(NodeKey::appkey).collect();
        appkeys.sort_unstable();
        appkeys.dedup();
        let mut watches = Vec::new();
        for appkey in appkeys {
            match backends.registry.watch_app(backends.env, appkey).await {
                Ok(watch) => watches.push(watch),
                Err(e) => {
                    warn!(appkey, error = %e, "cannot watch the app's nodes: limits and caller policies set live do not apply")
                }
            }
        }
        if watches.is_empty() {
            return;
        }
        loop {
            for watch in &mut watches {
                let nodes = watch.borrow_and_update().clone();
                let mine = nodes.nodes.iter().filter(|n| keys.contains(&n.key)).map(|n| &n.data);
                callers.prepare(mine).await;
                apply_seen(&limits, &callers, &keys, &nodes.nodes);
            }
            let changed = futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
            if changed.await.0.is_err() {
                return;
            }
        }
    })
}

/// Applies the limits of the nodes among `seen` that are this server's.
fn apply_seen(
    limits: &ServerLimits,
    callers: &super::ServerCallers,
    keys: &[NodeKey],
    seen: &[RegisteredNode],
) {
    for node in seen.iter().filter(|n| keys.contains(&n.key)) {
        limits.apply_node(&node.key, &node.data);
        callers.apply_node(&node.key, &node.data);
    }
}
