//! Configuring a server: its services and limits, then where and how long it serves.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};

use super::connection::Shared;
use super::monitoring::{Monitoring, MonitoringConfig};
use super::registration::{Declaration, Registrar};
use super::router::Router;
use super::serve::ServerHandle;
use crate::codec::Limits;
use crate::metrics::ServerStats;
use crate::registry::backends::Backends;
use crate::service::Dispatch;

/// Why a server could not start or stop. Its `Debug` is its `Display` text, so a `main` that
/// returns it prints what to do.
#[derive(thiserror::Error)]
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
    /// The app of a provider is not in the app registry (MySQL `serviceapp`).
    #[error("appkey {0} is not registered; register it with `probe apps add {0}`")]
    UnregisteredApp(String),
    /// A registry backend failed while the server registered.
    /// (Its text includes the backend's; it is not also given as the error's source, so a report
    /// of the chain says it once.)
    #[error("cannot register the server: {0}")]
    Registry(crate::registry::BackendError),
    /// The address to register could not be found or is not valid in a node name; the text says
    /// what to set.
    #[error("{0}")]
    Advertise(String),
    /// The address to listen on did not resolve.
    #[error("cannot resolve the address to listen on: {0}")]
    Resolve(io::Error),
    /// [`ServerBuilder::default_service`] names a service this server does not serve.
    #[error("the default service `{name}` is not served here; add it or name one of: {served}")]
    UnknownDefaultService {
        /// The name asked for.
        name: String,
        /// The services served, comma-separated.
        served: String,
    },
    /// The server task panicked or was cancelled.
    #[error("the server task failed: {0}")]
    Task(String),
    /// A version or tag set with [`ServerBuilder::version`] or [`ServerBuilder::tag`] cannot be
    /// registered; the text says what is wrong.
    #[error("cannot register the server: {0}")]
    Declaration(String),
    /// A caller policy set with [`ServerBuilder::caller_policy`] names a service this server does
    /// not serve.
    #[error("the caller policy of {service} is refused: {problem}")]
    CallerPolicy {
        /// The service named.
        service: String,
        /// Why.
        problem: String,
    },
    /// Request limits set with [`ServerBuilder::request_limits`] name a service this server does
    /// not serve, or methods its service does not have.
    #[error("the request limits of {service} are refused:\n{problems}")]
    RequestLimits {
        /// The service named.
        service: String,
        /// One line per problem.
        problems: String,
    },
    /// The TLS files set with [`ServerBuilder::tls`] cannot be used; the text names the file and
    /// its setting.
    #[error("cannot serve TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

crate::debug_as_display!(ServeError);

impl From<crate::registry::BackendError> for ServeError {
    fn from(err: crate::registry::BackendError) -> Self {
        ServeError::Registry(err)
    }
}

/// The settings every connection of a server follows.
#[derive(Debug, Clone)]
pub(super) struct ServerConfig {
    pub(super) max_connections: usize,
    pub(super) max_in_flight: usize,
    pub(super) read_timeout: Duration,
    pub(super) drain_timeout: Duration,
    pub(super) limits: Limits,
    pub(super) allow_unframed: bool,
    pub(super) handshake_timeout: Duration,
    pub(super) max_connections_per_peer: usize,
    pub(super) reserved_connections: usize,
    pub(super) memory_budget: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 10_000,
            max_in_flight: 1024,
            read_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            limits: Limits::DEFAULT,
            allow_unframed: crate::config::ServerConfig::DEFAULT_ALLOW_UNFRAMED,
            handshake_timeout: crate::config::ServerConfig::DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections_per_peer: crate::config::ServerConfig::DEFAULT_MAX_CONNECTIONS_PER_PEER,
            reserved_connections: crate::config::ServerConfig::DEFAULT_RESERVED_CONNECTIONS,
            memory_budget: crate::config::ServerConfig::DEFAULT_MEMORY_BUDGET,
        }
    }
}

/// The Thrift server; start with [`Server::builder`].
#[derive(Debug, Clone, Copy)]
pub struct Server;

impl Server {
    /// A builder with no services and the default settings.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            services: Vec::new(),
            providers: Vec::new(),
            config: ServerConfig::default(),
            registration: None,
            advertise_host: None,
            grace_period: None,
            declaration: Declaration::default(),
            default_service: None,
            monitoring: MonitoringConfig::default(),
            layers: Vec::new(),
            request_limits: Vec::new(),
            caller_policies: Vec::new(),
            tls: None,
        }
    }
}

/// Collects a server's services and settings; then `serve`, `start` or `serve_with_listener`.
pub struct ServerBuilder {
    services: Vec<Arc<dyn Dispatch>>,
    providers: Vec<(String, &'static str)>,
    config: ServerConfig,
    /// The backends to register with, when the server registers.
    registration: Option<Backends>,
    /// Set by [`ServerBuilder::advertise_host`] or [`ServerBuilder::with_config`]; else the
    /// backends' configuration decides.
    advertise_host: Option<String>,
    /// Set by [`ServerBuilder::grace_period`] or [`ServerBuilder::with_config`]; else the
    /// backends' configuration decides.
    grace_period: Option<Duration>,
    /// The version, tags and tier set by [`ServerBuilder::version`], [`ServerBuilder::tag`],
    /// [`ServerBuilder::tier`] or [`ServerBuilder::with_config`]; the backends' configuration
    /// gives the rest.
    declaration: Declaration,
    default_service: Option<String>,
    pub(super) monitoring: MonitoringConfig,
    /// Middleware around every call, in the order added.
    layers: Vec<crate::middleware::ServerLayerFn>,
    /// Request limits per service until an operator sets others on the node.
    request_limits: Vec<(String, crate::limits::RequestLimits)>,
    /// Caller policies per service until an operator sets others on the node.
    caller_policies: Vec<(String, crate::security::CallerPolicy)>,
    /// TLS on the port, unless off.
    tls: Option<crate::tls::ServerTls>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.services.iter().map(|s| s.service_name()).collect();
        f.debug_struct("ServerBuilder")
            .field("services", &names)
            .field("config", &self.config)
            .field("monitoring", &self.monitoring)
            .finish()
    }
}

impl ServerBuilder {
    /// Adds a service (a generated `FooServer<H>`). Service names must differ.
    pub fn add_service(mut self, service: impl Dispatch) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Wraps every call of every service in `layer`, a tower [`Layer`](tower::Layer) over
    /// [`ServerService`](crate::middleware::ServerService): it sees each
    /// [`ServerCall`](crate::middleware::ServerCall) (service, method, peer, the caller's context)
    /// before the handler and the [`Reply`](crate::service::Reply) after. Each layer wraps those
    /// added before it. Calls that a deadline or the server's limits turn away never reach the
    /// layers; a layer's time counts in the call's latency. See [`middleware`](crate::middleware).
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<crate::middleware::ServerService> + Send + Sync + 'static,
        L::Service: tower::Service<crate::middleware::ServerCall, Response = crate::service::Reply>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<crate::middleware::ServerCall>>::Error:
            Into<crate::middleware::BoxError>,
        <L::Service as tower::Service<crate::middleware::ServerCall>>::Future: Send + 'static,
    {
        self.layers.push(crate::middleware::server_layer(layer));
        self
    }

    /// Adds a handler marked `#[probe::service(appkey = "...")]`, remembering its appkey.
    pub fn add_provider<P: crate::service::Provider>(mut self, provider: P) -> Self {
        self.providers.push((P::APPKEY.to_owned(), P::SERVICE));
        self.services.push(provider.into_service());
        self
    }

    /// Adds a service (a generated `FooServer<H>`) under an appkey chosen at run time, for
    /// handlers whose app is configuration rather than code. The appkey must match `^\w+$`;
    /// registration checks it.
    pub fn add_service_for_app(mut self, appkey: impl Into<String>, service: impl Dispatch) -> Self {
        self.providers.push((appkey.into(), service.service_name()));
        self.services.push(Arc::new(service));
        self
    }

    /// `(appkey, service)` of every provider added, for registration.
    pub fn providers(&self) -> &[(String, &'static str)] {
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

    /// Registers every provider (added with [`ServerBuilder::add_provider`] or
    /// [`ServerBuilder::add_service_for_app`]) with `backends` when the server starts: checks each
    /// appkey in the app store, reads the node's settings (weight, valid) from the settings store,
    /// creating weight 10 valid 1 when absent, and creates the EPHEMERAL node. The node is
    /// registered again whenever the registry session expires, and deleted first thing at
    /// shutdown.
    ///
    /// The server options of the configuration the backends were connected with
    /// ([`Backends::server`]: `PROBE_ADVERTISE_HOST`, `PROBE_GRACE_PERIOD`, `PROBE_ADMIN_ADDR`,
    /// `PROBE_SERVER_VERSION`, `PROBE_SERVER_TAGS`, `PROBE_SERVER_TIER` and their `[server]` keys)
    /// apply, unless this builder sets them itself ([`ServerBuilder::advertise_host`],
    /// [`ServerBuilder::grace_period`], [`ServerBuilder::admin_addr`], [`ServerBuilder::version`],
    /// [`ServerBuilder::tag`] (key by key), [`ServerBuilder::tier`], [`ServerBuilder::with_config`]),
    /// in any order.
    pub fn register(mut self, backends: Backends) -> Self {
        self.registration = Some(backends);
        self
    }

    /// Applies the server options of `config`, as if set one by one: the advertised address and
    /// the version when they are set, the grace period, each tag, the tier, and the admin
    /// endpoint, [`ServerBuilder::admin_addr`], when
    /// [`admin_addr`](crate::config::ServerConfig::admin_addr) is set (when it is `None`, `off`, an
    /// endpoint asked for earlier is kept). A server that registers with backends from
    /// [`Backends::connect`] needs no call: their configuration applies (see
    /// [`ServerBuilder::register`]).
    pub fn with_config(mut self, config: &crate::config::ServerConfig) -> Self {
        self.config.apply(config);
        if let Some(host) = &config.advertise_host {
            self.advertise_host = Some(host.clone());
        }
        self.grace_period = Some(config.grace_period);
        self.declaration.apply(config);
        if let Some(tls) = &config.tls {
            self = self.tls(tls.clone());
        }
        match config.admin_addr {
            Some(addr) => self.admin_addr(addr),
            None => self,
        }
    }

    /// The address registered for clients. Default: the configured
    /// [`advertise_host`](crate::config::ServerConfig::advertise_host) of the backends'
    /// configuration; else the listener's address when it is a specific one; else the first
    /// non-loopback address the host name resolves to.
    pub fn advertise_host(mut self, host: impl Into<String>) -> Self {
        self.advertise_host = Some(host.into());
        self
    }

    /// How long a registered server keeps serving after deleting its nodes at shutdown, so clients
    /// see them go before the connections drain. Default: the configured
    /// [`grace_period`](crate::config::ServerConfig::grace_period) of the backends' configuration,
    /// 5 s unless set.
    pub fn grace_period(mut self, period: Duration) -> Self {
        self.grace_period = Some(period);
        self
    }

    /// The version this server's nodes register, as traffic rules split calls by it (`2.0.0`,
    /// `canary`: no spaces; starting fails naming a bad one). Default: the configured
    /// [`version`](crate::config::ServerConfig::version) of the backends' configuration
    /// (`PROBE_SERVER_VERSION`), else probe's own version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.declaration.version = Some(version.into());
        self
    }

    /// Tags this server's nodes `key` = `value` (`zone`, `group`, any key), as rules with tag
    /// affinity compare them with a caller's; keys and values are letters, digits, `_`, `.` and
    /// `-` (starting fails naming a bad one). Tags add to those of the backends' configuration
    /// ([`tags`](crate::config::ServerConfig::tags), `PROBE_SERVER_TAGS`), winning for the same
    /// key. Default none.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.declaration.tags.insert(key.into(), value.into());
        self
    }

    /// The priority tier this server's nodes register: 0 primary, 1 and 2 backups, which take
    /// calls only as the tiers below them lose health. A tier above
    /// [`MAX_TIER`](crate::rules::MAX_TIER) (2) is taken as 2, with a warning. Default: the
    /// configured [`tier`](crate::config::ServerConfig::tier) of the backends' configuration
    /// (`PROBE_SERVER_TIER`), 0 unless set.
    pub fn tier(mut self, tier: u8) -> Self {
        self.declaration.set_tier(tier);
        self
    }

    /// The service that calls without a `Service:` prefix go to on a port that serves several
    /// (as Apache's `TMultiplexedProcessor.registerDefault`). With one service, plain names go
    /// to it without this call; with several and no default, a plain name is an unknown method.
    pub fn default_service(mut self, name: impl Into<String>) -> Self {
        self.default_service = Some(name.into());
        self
    }

    /// How long a connection may stay with no call running and no complete request received
    /// before it is closed; a new connection's first whole request must come within this time
    /// of the connect (its first bytes within the
    /// [`handshake_timeout`](Self::handshake_timeout)). Default 60 s.
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

    /// Whether peers may speak unframed (buffered) Thrift, as Python thriftpy2 clients do by
    /// default; when `false`, a connection detected as unframed is closed. Default `true`.
    pub fn allow_unframed(mut self, allow: bool) -> Self {
        self.config.allow_unframed = allow;
        self
    }

    /// How long a new connection has to send its first bytes (enough to tell its protocol);
    /// its first whole request must come within the read timeout of the connect. Default 10 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// The most connections open at once from one IP address; more are accepted and closed at
    /// once. Default 1,000.
    pub fn max_connections_per_peer(mut self, n: usize) -> Self {
        self.config.max_connections_per_peer = n.max(1);
        self
    }

    /// Connection slots that connections which have not sent a whole request yet cannot take
    /// (at most a tenth of [`max_connections`](Self::max_connections)); when those connections fill
    /// the rest, a new one evicts the oldest of them. Default 1,000.
    pub fn reserved_connections(mut self, n: usize) -> Self {
        self.config.reserved_connections = n;
        self
    }

    /// The most bytes all connections together may buffer for requests being read and replies
    /// being written; past it, reads pause and new connections are refused until replies drain.
    /// Default 512 MiB (at least twice the frame limit is used).
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.config.memory_budget = bytes;
        self
    }

    /// The bounds on input: frame size, nesting, container and string lengths.
    /// Default [`Limits::DEFAULT`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Limits the calls of `service` (its IDL name) until an operator sets other limits on the
    /// node (`probe limits set`): QPS, concurrency, adaptive concurrency and connections, per
    /// service and per method (see [`RequestLimits`](crate::limits::RequestLimits)). A call over
    /// a limit is refused before its arguments are decoded, with a `LOADSHEDDING`
    /// `TApplicationException` that probe clients retry on another node.
    pub fn request_limits(mut self, service: &str, limits: crate::limits::RequestLimits) -> Self {
        self.request_limits.push((service.to_owned(), limits));
        self
    }

    /// Serves TLS on the port: only TLS ([`TlsMode::Required`](crate::tls::TlsMode::Required)),
    /// or TLS and plaintext ([`TlsMode::Optional`](crate::tls::TlsMode::Optional), for a fleet
    /// migrating while its Python clients speak plaintext), with client certificates if asked
    /// (see [`tls`](crate::tls)). The files are read when the server starts (a bad one stops it
    /// with an error naming the file) and again whenever they change. A registered server
    /// advertises the mode in its node data (`"tls"`), so probe clients with TLS settings connect
    /// with TLS. A mode of `off` serves no TLS. Default: no TLS.
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.declaration.tls = Some(tls.mode);
        self.tls = (tls.mode != crate::tls::TlsMode::Off).then_some(tls);
        self
    }

    /// The caller policy of `service` ([`CallerPolicy`](crate::security::CallerPolicy): which
    /// proven apps may call it, and what happens to callers that prove none) until an operator
    /// sets another on the node (`probe callers`). Setting one for a service this server does not
    /// serve fails [`ServerBuilder::start`].
    pub fn caller_policy(mut self, service: &str, policy: crate::security::CallerPolicy) -> Self {
        self.caller_policies.push((service.to_owned(), policy));
        self
    }

    /// Serves on `addr` (`"0.0.0.0:9090"`, `("0.0.0.0", 9090)`, a `SocketAddr`...) until the
    /// process gets SIGTERM or ctrl-c, then shuts down gracefully (see [`ServerHandle::shutdown`]).
    pub async fn serve<A: ToSocketAddrs>(self, addr: A) -> Result<(), ServeError> {
        self.serve_with_shutdown(addr, shutdown_signal()).await
    }

    /// Serves on `addr` until `signal` completes, then shuts down gracefully.
    pub async fn serve_with_shutdown<A: ToSocketAddrs>(
        self,
        addr: A,
        signal: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let listener = bind(addr).await?;
        self.serve_with_listener(listener, signal).await
    }

    /// Serves on a bound listener until `signal` completes, then shuts down gracefully: leaves the
    /// registry, serves on for the grace period, stops accepting, lets calls in flight finish
    /// within the drain timeout, closes every connection.
    pub async fn serve_with_listener(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let handle = self.start_with_listener(listener).await?;
        signal.await;
        handle.shutdown().await
    }

    /// Binds `addr`, registers (when [`ServerBuilder::register`] was called) and serves in a
    /// background task; the handle tells the bound address and shuts the server down.
    pub async fn start<A: ToSocketAddrs>(self, addr: A) -> Result<ServerHandle, ServeError> {
        let listener = bind(addr).await?;
        self.start_with_listener(listener).await
    }

    /// Serves a bound listener in a background task, registering first when
    /// [`ServerBuilder::register`] was called.
    pub async fn start_with_listener(self, listener: TcpListener) -> Result<ServerHandle, ServeError> {
        let local_addr = listener.local_addr().map_err(ServeError::Listener)?;
        let registration = self.registration.clone();
        let providers = self.providers.clone();
        let mut monitoring = self.monitoring.clone();
        let (advertise_host, grace_period) = (self.advertise_host.clone(), self.grace_period);
        let declaration = self.declaration.clone();
        if let Some(backends) = &registration {
            monitoring = monitoring.or_admin_addr(backends.server.admin_addr);
        }
        let shared = self.into_shared(local_addr)?;
        let mut monitor = Monitoring::start(&monitoring, shared.metrics.clone()).await?;
        let registered = match registration {
            None => None,
            Some(backends) => {
                let advertise_host = advertise_host.or_else(|| backends.server.advertise_host.clone());
                let grace_period = grace_period.unwrap_or(backends.server.grace_period);
                let registrar = Registrar::start_at(
                    backends.clone(),
                    &providers,
                    advertise_host,
                    &declaration,
                    local_addr,
                    shared.limits.clone(),
                    shared.callers.clone(),
                );
                match registrar.await {
                    Ok(registrar) => {
                        monitor.publish(&backends, registrar.keys().to_vec());
                        Some((registrar, grace_period))
                    }
                    Err(e) => {
                        monitor.stop().await;
                        return Err(e);
                    }
                }
            }
        };
        ServerHandle::spawn(listener, shared, registered, monitor)
    }

    fn into_shared(self, local_addr: std::net::SocketAddr) -> Result<Arc<Shared>, ServeError> {
        let metrics = self
            .monitoring
            .metrics()
            .then(|| Arc::new(ServerStats::new(self.services.iter().map(|s| s.as_ref() as &dyn Dispatch))));
        let services = match self.layers.is_empty() {
            true => self.services,
            false => self
                .services
                .into_iter()
                .map(|s| Arc::new(crate::middleware::Layered::new(s, &self.layers)) as Arc<dyn Dispatch>)
                .collect(),
        };
        let mut configured = std::collections::HashMap::new();
        for (service, limits) in self.request_limits {
            let Some(served) = services.iter().find(|s| s.service_name() == service) else {
                let served: Vec<_> = services.iter().map(|s| s.service_name()).collect();
                return Err(ServeError::RequestLimits {
                    service: service.clone(),
                    problems: format!("the service is not served here (served: {})", served.join(", ")),
                });
            };
            let methods: Vec<&str> = served.methods().iter().map(|m| m.name).collect();
            let problems = limits.check_methods(&service, &methods);
            if !problems.is_empty() {
                return Err(ServeError::RequestLimits {
                    service,
                    problems: crate::limits::describe(&problems),
                });
            }
            configured.insert(served.service_name(), limits);
        }
        let mut policies = std::collections::HashMap::new();
        for (service, policy) in self.caller_policies {
            let Some(served) = services.iter().find(|s| s.service_name() == service) else {
                let served: Vec<_> = services.iter().map(|s| s.service_name()).collect();
                return Err(ServeError::CallerPolicy {
                    service,
                    problem: format!("the service is not served here (served: {})", served.join(", ")),
                });
            };
            policies.insert(served.service_name(), policy);
        }
        let router = Router::new(services.clone(), self.default_service.as_deref())?;
        let mut shared =
            Shared::new(router, &services, configured, self.config, metrics, local_addr.to_string());
        shared.tls = self.tls.map(crate::tls::ServerTlsState::start).transpose()?;
        if !policies.is_empty() {
            shared.callers = Arc::new(super::ServerCallers::new(&services, policies));
        }
        if let Some(metrics) = &shared.metrics {
            metrics.watch_callers(shared.callers.clone());
        }
        Ok(Arc::new(shared))
    }
}

/// Completes when the process gets SIGTERM (on Unix) or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Binds the first address `addr` resolves to that can be bound; the error names the last one
/// tried.
async fn bind<A: ToSocketAddrs>(addr: A) -> Result<TcpListener, ServeError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr).await.map_err(ServeError::Resolve)?.collect();
    let mut last = None;
    for addr in addrs {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(source) => last = Some(ServeError::Bind { addr: addr.to_string(), source }),
        }
    }
    Err(last.unwrap_or_else(|| {
        ServeError::Resolve(io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing"))
    }))
}
