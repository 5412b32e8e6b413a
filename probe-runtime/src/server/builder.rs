//! Configuring a server: its services and limits, then where and how long it serves.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};

use super::connection::Shared;
use super::router::Router;
use super::serve::{ServerHandle, accept_loop};
use crate::codec::Limits;
use crate::service::Dispatch;

/// Why a server could not start or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The builder has no service: call [`ServerBuilder::add_service`].
    #[error("no service to serve: call `add_service` before serving")]
    NoService,
    /// Two services have the same name; a port can serve each name once.
    #[error("service `{0}` was added twice; each service name may be served once per port")]
    DuplicateService(String),
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The cause.
        source: io::Error,
    },
    /// The listener's address could not be read.
    #[error("the listener is not usable: {0}")]
    Listener(io::Error),
    /// The server task panicked or was cancelled.
    #[error("the server task failed: {0}")]
    Task(String),
}

/// The settings every connection of a server follows.
#[derive(Debug, Clone)]
pub(super) struct ServerConfig {
    pub(super) max_connections: usize,
    pub(super) max_in_flight: usize,
    pub(super) read_timeout: Duration,
    pub(super) drain_timeout: Duration,
    pub(super) limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 10_000,
            max_in_flight: 1024,
            read_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            limits: Limits::DEFAULT,
        }
    }
}

/// The Thrift server; start with [`Server::builder`].
#[derive(Debug, Clone, Copy)]
pub struct Server;

impl Server {
    /// A builder with no services and the default settings.
    pub fn builder() -> ServerBuilder {
        ServerBuilder { services: Vec::new(), providers: Vec::new(), config: ServerConfig::default() }
    }
}

/// Collects a server's services and settings; then `serve`, `start` or `serve_with_listener`.
pub struct ServerBuilder {
    services: Vec<Arc<dyn Dispatch>>,
    providers: Vec<(&'static str, &'static str)>,
    config: ServerConfig,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.services.iter().map(|s| s.service_name()).collect();
        f.debug_struct("ServerBuilder").field("services", &names).field("config", &self.config).finish()
    }
}

impl ServerBuilder {
    /// Adds a service (a generated `FooServer<H>`). Service names must differ.
    pub fn add_service(mut self, service: impl Dispatch) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Adds a handler marked `#[probe::service(appkey = "...")]`, remembering its appkey.
    pub fn add_provider<P: crate::service::Provider>(mut self, provider: P) -> Self {
        self.providers.push((P::APPKEY, P::SERVICE));
        self.services.push(provider.into_service());
        self
    }

    /// `(appkey, service)` of every provider added, for registration.
    pub fn providers(&self) -> &[(&'static str, &'static str)] {
        &self.providers
    }

    /// The most connections served at once; more are accepted and closed at once, so their
    /// clients fail fast instead of waiting. Default 10,000.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n.max(1);
        self
    }

    /// The most calls one connection runs at once; past it the server reads no more requests from
    /// that connection until a call finishes. Default 1,024.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n.max(1);
        self
    }

    /// How long a connection may stay with no call running and no complete request received
    /// before it is closed (also the time allowed for a new connection's first bytes).
    /// Default 60 s.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.config.read_timeout = timeout;
        self
    }

    /// How long a shutdown waits for calls in flight before closing their connections anyway.
    /// Default 30 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout = timeout;
        self
    }

    /// The bounds on input: frame size, nesting, container and string lengths.
    /// Default [`Limits::DEFAULT`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Serves on `addr` until the process ends.
    pub async fn serve<A: ToSocketAddrs + fmt::Display>(self, addr: A) -> Result<(), ServeError> {
        self.serve_with_shutdown(addr, std::future::pending()).await
    }

    /// Serves on `addr` until `signal` completes, then shuts down gracefully.
    pub async fn serve_with_shutdown<A: ToSocketAddrs + fmt::Display>(
        self,
        addr: A,
        signal: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let listener = bind(addr).await?;
        self.serve_with_listener(listener, signal).await
    }

    /// Serves on a bound listener until `signal` completes, then shuts down gracefully: stops
    /// accepting, lets calls in flight finish within the drain timeout, closes every connection.
    pub async fn serve_with_listener(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let shared = self.into_shared()?;
        accept_loop(listener, shared, signal).await;
        Ok(())
    }

    /// Binds `addr` and serves in a background task; the handle tells the bound address and
    /// shuts the server down.
    pub async fn start<A: ToSocketAddrs + fmt::Display>(self, addr: A) -> Result<ServerHandle, ServeError> {
        let shared = self.into_shared()?;
        ServerHandle::spawn(bind(addr).await?, shared)
    }

    /// Serves a bound listener in a background task. Must be called within a tokio runtime.
    pub fn start_with_listener(self, listener: TcpListener) -> Result<ServerHandle, ServeError> {
        ServerHandle::spawn(listener, self.into_shared()?)
    }

    fn into_shared(self) -> Result<Arc<Shared>, ServeError> {
        Ok(Arc::new(Shared { router: Router::new(self.services)?, config: self.config }))
    }
}

async fn bind<A: ToSocketAddrs + fmt::Display>(addr: A) -> Result<TcpListener, ServeError> {
    let shown = addr.to_string();
    TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr: shown, source })
}
