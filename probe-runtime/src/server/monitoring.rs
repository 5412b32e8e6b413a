//! A server's monitoring: its call statistics in the process registry, the optional admin
//! endpoint, and the publisher of a registered server's windows; the builder switches for them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{ServeError, ServerBuilder};
use crate::metrics::{AdminServer, DEFAULT_PUBLISH_INTERVAL, Publisher, ServerStats, global};
use crate::registry::backends::Backends;
use crate::registry::layout::NodeKey;

/// What a server monitors, and where it shows it.
#[derive(Debug, Clone)]
pub(super) struct MonitoringConfig {
    metrics: bool,
    admin_addr: Option<SocketAddr>,
    interval: Duration,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig { metrics: true, admin_addr: None, interval: DEFAULT_PUBLISH_INTERVAL }
    }
}

impl MonitoringConfig {
    /// Whether calls are counted.
    pub(super) fn metrics(&self) -> bool {
        self.metrics
    }

    /// The same, with the admin endpoint at `addr` unless one was asked for already.
    pub(super) fn or_admin_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.admin_addr = self.admin_addr.or(addr);
        self
    }
}

impl ServerBuilder {
    /// Counts every call per service, method and outcome with its latency, for the admin
    /// endpoint's `/metrics` and (for registered servers) the windows published to the metrics
    /// store. Default on; off, calls cost no clock reads or counter updates and nothing is
    /// published.
    pub fn metrics(mut self, on: bool) -> Self {
        self.monitoring.metrics = on;
        self
    }

    /// Serves the admin endpoint on `addr`: `GET /metrics` (this process's metrics as Prometheus
    /// text, client calls included) and `GET /health` (`200 ok`, `503 draining` once shutdown
    /// begins). Default: no admin endpoint. Port 0 picks a free port; see
    /// [`ServerHandle::admin_addr`](super::ServerHandle::admin_addr).
    pub fn admin_addr(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.monitoring.admin_addr = Some(addr.into());
        self
    }

    /// How often a registered server publishes each node's window (QPS, error rate, p50, p99) to
    /// the metrics store; each window expires after three intervals unless replaced.
    /// Default 5 s.
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.monitoring.interval = interval.max(Duration::from_millis(10));
        self
    }
}

/// A running server's monitoring.
#[derive(Debug)]
pub(super) struct Monitoring {
    stats: Option<Arc<ServerStats>>,
    admin: Option<AdminServer>,
    publisher: Option<Publisher>,
    draining: Arc<AtomicBool>,
    interval: Duration,
}

impl Monitoring {
    /// Adds `stats` to the process registry and starts the admin endpoint, if configured.
    pub(super) async fn start(
        config: &MonitoringConfig,
        stats: Option<Arc<ServerStats>>,
    ) -> Result<Monitoring, ServeError> {
        let draining = Arc::new(AtomicBool::new(false));
        let admin = match config.admin_addr {
            Some(addr) => Some(
                AdminServer::start(addr, global().clone(), draining.clone())
                    .await
                    .map_err(|source| ServeError::Bind { addr: format!("{addr} (admin)"), source })?,
            ),
            None => None,
        };
        if let Some(stats) = &stats {
            global().add_server(Arc::clone(stats));
        }
        Ok(Monitoring { stats, admin, publisher: None, draining, interval: config.interval })
    }

    /// Starts publishing the windows of `nodes` to the backends' metrics store (when metrics are
    /// on).
    pub(super) fn publish(&mut self, backends: &Backends, nodes: Vec<NodeKey>) {
        if let Some(stats) = &self.stats {
            let store = Arc::clone(&backends.metrics);
            self.publisher = Some(Publisher::spawn(store, Arc::clone(stats), nodes, self.interval));
        }
    }

    /// The admin endpoint's address, if there is one.
    pub(super) fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminServer::local_addr)
    }

    /// Marks the server as shutting down: `/health` answers 503 from now on.
    pub(super) fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Stops publishing and the admin endpoint, and takes the statistics out of the registry.
    pub(super) async fn stop(self) {
        if let Some(publisher) = self.publisher {
            publisher.stop().await;
        }
        if let Some(admin) = self.admin {
            admin.stop().await;
        }
        if let Some(stats) = &self.stats {
            global().remove_server(stats);
        }
    }
}
