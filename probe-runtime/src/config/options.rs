//! Server and client options, with the defaults every one of them documents.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::error::ConfigError;
use super::host;
use crate::balance::{BalancerKind, BreakerConfig, RetryBudgetConfig};

/// How a server listens and registers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on. Default `0.0.0.0`, every IPv4 interface.
    pub bind: IpAddr,
    /// Port to listen on. Default 0: the system picks a free port, and the server registers the port
    /// it got, so clients find it through the registry either way.
    pub port: u16,
    /// Address registered for clients to connect to. Default `None`: see
    /// [`ServerConfig::advertise_host`].
    pub advertise_host: Option<String>,
    /// How long a server keeps serving after its node left the registry, so clients see it go
    /// before its connections drain. Default 5 s.
    pub grace_period: Duration,
    /// Address of the admin endpoint, which serves `GET /metrics` (Prometheus text) and
    /// `GET /health`; see [`ServerBuilder::admin_addr`](crate::server::ServerBuilder::admin_addr).
    /// Default `None` (`off`): no admin endpoint.
    pub admin_addr: Option<SocketAddr>,
    /// Whether peers may speak unframed (buffered) Thrift, as thriftpy2 clients do by default;
    /// see [`ServerBuilder::allow_unframed`](crate::server::ServerBuilder::allow_unframed).
    /// Default `true`.
    pub allow_unframed: bool,
    /// How long a new connection has to send its first bytes. Default 10 s.
    pub handshake_timeout: Duration,
    /// The most connections open at once from one IP address. Default 1,000.
    pub max_connections_per_peer: usize,
    /// Connection slots kept for connections that have sent a request; see
    /// [`ServerBuilder::reserved_connections`](crate::server::ServerBuilder::reserved_connections).
    /// Default 1,000.
    pub reserved_connections: usize,
    /// The most bytes all connections may buffer for requests and replies, set in MiB. Default
    /// 512 MiB.
    pub memory_budget: usize,
    /// The version this provider registers, as traffic rules split calls by it: text without
    /// spaces (`2.0.0`, `canary`). Default `None`: probe's own version,
    /// [`ServerConfig::DEFAULT_VERSION`]. See [`ServerBuilder::version`](crate::server::ServerBuilder::version).
    pub version: Option<String>,
    /// The tags this provider registers (`zone`, `group`, any key), as rules with tag affinity
    /// compare them with a caller's; keys and values of letters, digits, `_`, `.` and `-`.
    /// Default none. See [`ServerBuilder::tag`](crate::server::ServerBuilder::tag).
    pub tags: BTreeMap<String, String>,
    /// The priority tier this provider registers: 0 primary, 1 and 2 backups, which take calls
    /// only as the tiers below them lose health. Default 0. See
    /// [`ServerBuilder::tier`](crate::server::ServerBuilder::tier).
    pub tier: u8,
    /// TLS on the RPC port, from the `server.tls` settings (`PROBE_SERVER_TLS_MODE`, ...); the
    /// files are read when the server starts. Default `None`: plaintext. See
    /// [`ServerBuilder::tls`](crate::server::ServerBuilder::tls).
    pub tls: Option<crate::tls::ServerTls>,
}

impl ServerConfig {
    /// Default [`ServerConfig::grace_period`].
    pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(5);
    /// Default [`ServerConfig::allow_unframed`].
    pub const DEFAULT_ALLOW_UNFRAMED: bool = true;
    /// Default [`ServerConfig::handshake_timeout`].
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`ServerConfig::max_connections_per_peer`].
    pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 1_000;
    /// Default [`ServerConfig::reserved_connections`].
    pub const DEFAULT_RESERVED_CONNECTIONS: usize = 1_000;
    /// Default [`ServerConfig::memory_budget`], in bytes.
    pub const DEFAULT_MEMORY_BUDGET: usize = 512 << 20;
    /// The version registered when [`ServerConfig::version`] is `None`: probe's.
    pub const DEFAULT_VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// The address to listen on.
    pub fn bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The address to register: the configured [`advertise_host`](ServerConfig::advertise_host);
    /// else the bind address when it is a specific one; else the first IPv4 address (then IPv6)
    /// the machine's host name resolves to that is not loopback or link-local.
    ///
    /// Resolving the host name asks the system resolver and may block: call it once at start-up.
    /// It fails, with an error that says to set `PROBE_ADVERTISE_HOST`, when the host name resolves
    /// only to loopback addresses (as Debian's `/etc/hosts` makes it, `127.0.1.1`); probe does not
    /// list network interfaces, which takes platform code the host name makes unnecessary.
    pub fn advertise_host(&self) -> Result<String, ConfigError> {
        host::advertise_host(self.advertise_host.as_deref(), self.bind)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            advertise_host: None,
            grace_period: Self::DEFAULT_GRACE_PERIOD,
            admin_addr: None,
            allow_unframed: Self::DEFAULT_ALLOW_UNFRAMED,
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections_per_peer: Self::DEFAULT_MAX_CONNECTIONS_PER_PEER,
            reserved_connections: Self::DEFAULT_RESERVED_CONNECTIONS,
            memory_budget: Self::DEFAULT_MEMORY_BUDGET,
            version: None,
            tags: BTreeMap::new(),
            tier: 0,
            tls: None,
        }
    }
}

/// How a client picks nodes and how long it waits.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The balancer. Default [`BalancerKind::WeightedRandom`] (`random`), as in the Python design.
    pub balancer: BalancerKind,
    /// How long a call may take, retries included. Default 30 s, as the TCP transport's.
    pub call_timeout: Duration,
    /// How long to wait for a connection. Default 3 s, as the TCP transport's.
    pub connect_timeout: Duration,
    /// Retries earned per call, [`RetryBudgetConfig::ratio`]. Default 0.2.
    pub retry_budget_ratio: f64,
    /// This caller's own tags (`zone`, ...), which rules with tag affinity match against the
    /// providers' [`ServerConfig::tags`]; keys and values of letters, digits, `_`, `.` and `-`.
    /// Default none.
    pub tags: BTreeMap<String, String>,
    /// Timeouts of single methods, by `Service.method` or a bare `method` (of any service), in
    /// place of `call_timeout` and of the IDL's `(probe.timeout_ms = ...)`; a `Service.method`
    /// entry wins over a bare one. A discovered channel applies them with
    /// [`Channel::method_timeout`](crate::client::Channel::method_timeout). Default none.
    pub method_timeouts: BTreeMap<String, Duration>,
    /// The most calls per second this client sends each service; calls over it fail at once,
    /// unsent. Default `None`: no limit.
    pub qps_limit: Option<f64>,
    /// The latency percentile of recent calls (above 0, below 1) after which an unanswered
    /// idempotent call goes to a second node too, the other hedging settings at their defaults.
    /// Default `None`: no hedging.
    pub hedge_percentile: Option<f64>,
    /// Failures in a row that open a node's circuit breaker, [`BreakerConfig::failures`].
    /// Default 5.
    pub breaker_failures: u32,
    /// The share of failed calls (above 0, at most 1) that opens a node's circuit breaker,
    /// [`BreakerConfig::error_rate`]. Default 0.5.
    pub breaker_error_rate: f64,
    /// TLS to the providers that advertise it, loaded from the `client.tls` settings
    /// (`PROBE_CLIENT_TLS_CA`, ...) when the configuration loads. Default `None`: plaintext.
    pub tls: Option<crate::tls::TlsClient>,
    /// This app's credential (`PROBE_APP_CREDENTIAL=appkey:secret`, from `probe apps add`):
    /// clients sign a caller token with it for every probe provider they call, which providers
    /// with a caller policy check. Default none. Never printed.
    pub credential: Option<crate::security::AppCredential>,
}

impl ClientConfig {
    /// Default [`ClientConfig::call_timeout`].
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default [`ClientConfig::connect_timeout`].
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

    /// The retry budget these options give, with the budget's other defaults.
    pub fn retry_budget(&self) -> RetryBudgetConfig {
        RetryBudgetConfig { ratio: self.retry_budget_ratio, ..RetryBudgetConfig::default() }
    }

    /// The circuit breakers these options give, with the breaker's other defaults.
    pub fn breaker(&self) -> BreakerConfig {
        BreakerConfig {
            failures: self.breaker_failures,
            error_rate: self.breaker_error_rate,
            ..BreakerConfig::default()
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            balancer: BalancerKind::default(),
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            retry_budget_ratio: RetryBudgetConfig::default().ratio,
            tags: BTreeMap::new(),
            method_timeouts: BTreeMap::new(),
            qps_limit: None,
            hedge_percentile: None,
            breaker_failures: BreakerConfig::default().failures,
            breaker_error_rate: BreakerConfig::default().error_rate,
            tls: None,
            credential: None,
        }
    }
}
