//! The accept loop: the connection limit, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, timeout};
use tracing::{Instrument, debug, debug_span, info, warn};

use super::ServeError;
use super::admission::Refusal;
use super::connection::{Shared, serve_connection};
use super::limits::{AppliedLimits, LimitStats, ServerLimits};
use super::monitoring::Monitoring;
use super::registration::{Registrar, RegistrationState};
use crate::registry::BackendError;

/// How long to pause accepting after an accept error (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections on `listener` until `signal` completes, then shuts down gracefully: stops
/// accepting, lets every connection finish its running calls within the drain timeout, and
/// closes them. Connections over the limit are accepted and closed at once, so their clients
/// fail fast and can go to another node.
pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    signal: impl Future<Output = ()>,
) {
    let config = &shared.config;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            biased;
            () = &mut signal => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = joined {
                    warn!(error = %e, "a connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match shared.admission.admit(peer.ip()) {
                    Ok(ticket) => {
                        let span = debug_span!("connection", %peer);
                        let serve = serve_connection(stream, peer, shared.clone(), ticket, stop_rx.clone());
                        connections.spawn(serve.instrument(span));
                    }
                    Err(refusal @ Refusal::Full) => {
                        let limit = shared.admission.max_connections();
                        warn!(%peer, %refusal, limit, "connection limit reached: closing the new connection");
                        drop(stream);
                    }
                    Err(refusal) => {
                        debug!(%peer, %refusal, "closing the new connection");
                        drop(stream);
                    }
                },
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    drop(listener);
    info!(connections = connections.len(), "shutting down: no longer accepting; draining");
    stop_tx.send_replace(true);
    let drained =
        timeout(config.drain_timeout, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(
            connections = connections.len(),
            "calls still running after the drain timeout of {:?}: closing their connections",
            config.drain_timeout
        );
        connections.shutdown().await;
    }
    info!("server stopped");
}

/// A server running in the background: its address, and the way to stop it.
///
/// Dropping the handle leaves the server running until the runtime ends.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// The registration and the grace period, for registered servers.
    registered: Option<(Registrar, Duration)>,
    /// The metrics in the registry, the admin endpoint and the publisher.
    monitoring: Option<Monitoring>,
    /// The request limits.
    limits: Arc<ServerLimits>,
    /// The caller policies.
    callers: Arc<super::ServerCallers>,
    /// TLS, when served.
    tls: Option<Arc<crate::tls::ServerTlsState>>,
}

impl ServerHandle {
    /// Spawns `accept_loop` on `listener`.
    pub(super) fn spawn(
        listener: TcpListener,
        shared: Arc<Shared>,
        registered: Option<(Registrar, Duration)>,
        monitoring: Monitoring,
    ) -> Result<ServerHandle, ServeError> {
        let local_addr = listener.local_addr().map_err(ServeError::Listener)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let signal = async move {
            // A dropped handle never stops the server.
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        info!(%local_addr, services = ?shared.router.service_names(), "serving");
        let limits = shared.limits.clone();
        let callers = shared.callers.clone();
        let tls = shared.tls.clone();
        let task = tokio::spawn(accept_loop(listener, shared, signal));
        Ok(ServerHandle {
            local_addr,
            stop: Some(stop),
            task,
            registered,
            monitoring: Some(monitoring),
            limits,
            callers,
            tls,
        })
    }

    /// The address the server listens on (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the admin endpoint (`/metrics`, `/health`), when
    /// [`ServerBuilder::admin_addr`](super::ServerBuilder::admin_addr) asked for one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.monitoring.as_ref().and_then(Monitoring::admin_addr)
    }

    /// The registry nodes this server registered, one per provider (empty for a server that does
    /// not register): what an operator tool passes to
    /// [`Operator`](crate::registry::Operator) to change their weight or switch them off.
    pub fn node_keys(&self) -> &[crate::registry::layout::NodeKey] {
        self.registered.as_ref().map_or(&[], |(registrar, _)| registrar.keys())
    }

    /// The TLS mode the port serves ([`TlsMode::Off`](crate::tls::TlsMode::Off) without TLS).
    pub fn tls_mode(&self) -> crate::tls::TlsMode {
        self.tls.as_ref().map_or(crate::tls::TlsMode::Off, |tls| tls.mode())
    }

    /// How many times the TLS files were loaded again after they changed (0 without TLS): to see
    /// that a renewed certificate is in use.
    pub fn tls_reloads(&self) -> u64 {
        self.tls.as_ref().map_or(0, |tls| tls.reloads())
    }

    /// The caller policy each service with one runs with now, and where it came from.
    pub fn caller_policies(&self) -> std::collections::BTreeMap<String, super::AppliedPolicy> {
        self.callers.applied()
    }

    /// Changes each time the applied caller policies change (or a document is refused): to wait
    /// for an operator's change to apply.
    pub fn caller_policy_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.callers.changes()
    }

    /// What the caller policies counted: refusals by reason, unauthenticated calls served, and
    /// the last refusals with the callers' addresses.
    pub fn caller_stats(&self) -> Vec<super::CallerStats> {
        self.callers.stats()
    }

    /// Why the caller keys could not be read from the app store last time, if they could not
    /// (the keys read before stay in use).
    pub fn caller_keys_problem(&self) -> Option<String> {
        self.callers.keys_problem()
    }

    /// The request limits each service runs with now, and where they came from.
    pub fn request_limits(&self) -> std::collections::BTreeMap<String, AppliedLimits> {
        self.limits.applied()
    }

    /// Changes each time the applied request limits change (or a document is refused): to wait
    /// for an operator's change to take effect.
    pub fn request_limit_changes(&self) -> watch::Receiver<u64> {
        self.limits.changes()
    }

    /// What the request limits counted: calls in flight, the adaptive limit, refusals by reason
    /// and by priority, per service and limited method.
    pub fn request_limit_stats(&self) -> Vec<LimitStats> {
        self.limits.stats()
    }

    /// Where the server stands with its registry; `None` for a server that does not register.
    pub fn registration(&self) -> Option<watch::Receiver<RegistrationState>> {
        self.registered.as_ref().map(|(registrar, _)| registrar.state())
    }

    /// Ends the registry session as a long partition would make it expire, so the server
    /// registers again in a new one: for failure drills and tests. Does nothing for a server that
    /// does not register.
    pub async fn expire_registry_session(&self) -> Result<(), BackendError> {
        match &self.registered {
            Some((registrar, _)) => registrar.expire_session().await,
            None => Ok(()),
        }
    }

    /// Shuts the server down gracefully and waits until it is done. A registered server first
    /// deletes its nodes and serves on for the grace period, so clients move away before it
    /// closes; then it stops accepting, lets the calls in flight finish within the drain timeout,
    /// and closes every connection. The admin endpoint answers `/health` with 503 from the start
    /// of the shutdown and stops at its end, with the metrics publisher.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        if let Some(monitoring) = &self.monitoring {
            monitoring.drain();
        }
        if let Some((registrar, grace)) = self.registered.take() {
            registrar.deregister().await;
            info!(local_addr = %self.local_addr, ?grace, "left the registry; serving on for the grace period");
            sleep(grace).await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        debug!(local_addr = %self.local_addr, "shutdown requested");
        let stopped = (&mut self.task).await.map_err(|e| ServeError::Task(e.to_string()));
        if let Some(monitoring) = self.monitoring.take() {
            monitoring.stop().await;
        }
        stopped
    }
}
