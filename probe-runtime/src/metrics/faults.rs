//! Client fault tolerance as metrics: each discovered service's circuit breakers (the nodes not
//! closed), backup requests sent by hedging, and calls the client's own QPS limit refused.
//! `probe_client_breaker_state{service,node,state}` is 1 for each node whose breaker is open or
//! half-open; `probe_client_breaker_openings`, `probe_client_hedges` and
//! `probe_client_limited_calls` are counters per service.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::MetricsRegistry;
use crate::balance::{BreakerState, CircuitBreaker};

/// The fault-tolerance counters of one client transport (a discovered service).
#[derive(Debug)]
pub struct ClientFaults {
    /// The service called.
    pub service: String,
    /// Its nodes' circuit breakers.
    pub breaker: Arc<CircuitBreaker>,
    /// Backup requests sent.
    pub hedges: AtomicU64,
    /// Calls the client's own QPS limit refused.
    pub limited: AtomicU64,
}

impl ClientFaults {
    /// Counters for calls of `service` through `breaker`.
    pub fn new(service: &str, breaker: Arc<CircuitBreaker>) -> Self {
        ClientFaults {
            service: service.to_owned(),
            breaker,
            hedges: AtomicU64::new(0),
            limited: AtomicU64::new(0),
        }
    }

    /// The nodes whose breaker is not closed now, as `(node, state)`.
    pub fn breakers(&self) -> Vec<(String, BreakerState)> {
        let now = crate::context::now();
        self.breaker.states(now).into_iter().map(|(id, state)| (id.to_string(), state)).collect()
    }
}

/// Reads one counter of a transport.
type Pick = fn(&ClientFaults) -> u64;

/// The transports alive in the process (weakly held: a dropped transport leaves).
pub(super) type Faults = RwLock<Vec<Weak<ClientFaults>>>;

impl MetricsRegistry {
    /// Shows `faults` in the metrics while it lives.
    pub fn add_client_faults(&self, faults: &Arc<ClientFaults>) {
        let mut all = self.inner().faults.write().unwrap_or_else(PoisonError::into_inner);
        all.retain(|f| f.strong_count() > 0);
        all.push(Arc::downgrade(faults));
    }

    /// The fault counters of every live client transport.
    pub fn client_faults(&self) -> Vec<Arc<ClientFaults>> {
        let all = self.inner().faults.read().unwrap_or_else(PoisonError::into_inner);
        all.iter().filter_map(Weak::upgrade).collect()
    }

    pub(super) fn encode_faults(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let faults = self.client_faults();
        let mut states = encoder.encode_descriptor(
            "probe_client_breaker_state",
            "1 for each node whose circuit breaker is open or half-open, by state.",
            None,
            MetricType::Gauge,
        )?;
        for f in &faults {
            for (node, state) in f.breakers() {
                let labels =
                    [("service", f.service.as_str()), ("node", node.as_str()), ("state", state.as_str())];
                states.encode_family(&labels)?.encode_gauge(&1i64)?;
            }
        }
        let counters: [(&str, &str, Pick); 3] = [
            ("probe_client_breaker_openings", "Times a node's circuit breaker opened.", |f| {
                f.breaker.openings()
            }),
            ("probe_client_hedges", "Backup requests hedging sent.", |f| f.hedges.load(Ordering::Relaxed)),
            ("probe_client_limited_calls", "Calls the client's own QPS limit refused, unsent.", |f| {
                f.limited.load(Ordering::Relaxed)
            }),
        ];
        for (name, help, pick) in counters {
            let mut counter = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for f in &faults {
                counter
                    .encode_family(&[("service", f.service.as_str())])?
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&pick(f), None)?;
            }
        }
        Ok(())
    }
}
