//! A transport over every node of a discovered service: balancing, fail-over, bounded retries and
//! ejection of failing nodes.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, Guard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::Either;
use tower::ServiceExt;
use tracing::{Instrument, debug, warn};

use super::channel::{Call, Transport};
use super::tcp::{Handed, TcpTransport};
use crate::balance::{
    Balancer, BalancerKind, BreakerConfig, CallGuard, CircuitBreaker, Endpoint, LoadStats, RetryBudget,
    RetryBudgetConfig,
};
use crate::config::ClientConfig;
use crate::discovery::{Routes, ServiceRoutes, settled};
use crate::error::Error;
use crate::metrics::FastMap;
use crate::metrics::sharded::Sharded;
use crate::metrics::{Outcome, RequestId, global, spans};
use crate::middleware::{ClientLayerFn, ClientService, TransportService, client_layer};
use crate::registry::layout::NodeData;
use crate::service::{BoxFuture, Protocol};
use crate::transport::{Framing, WireFormat};

/// How long an idle connection to a probe provider is kept.
const PROBE_IDLE: Duration = Duration::from_secs(50);
/// How long an idle connection to a Python provider is kept: under thriftpy2's 3 s.
const PYTHON_IDLE: Duration = Duration::from_secs(2);

/// How a [`ClusterTransport`] picks nodes, waits and retries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterOptions {
    /// Protocol of the calls. Default binary, the one every Python provider speaks; compact calls
    /// go to probe providers only.
    pub protocol: Protocol,
    /// The balancer. Default weighted random.
    pub balancer: BalancerKind,
    /// Longest time a call may take, fail-over and retries included. Default 30 s.
    pub call_timeout: Duration,
    /// Longest wait for one connection. Default 3 s.
    pub connect_timeout: Duration,
    /// Most attempts of one call that may have reached a server (idempotent methods only).
    /// Connect failures, which surely reached no server, move to another node whatever this says.
    /// Default 3.
    pub max_attempts: u32,
    /// Retries allowed on top of the calls made.
    pub retry_budget: RetryBudgetConfig,
    /// When failing nodes are taken out, and how they come back: each node's circuit breaker.
    /// Default [`BreakerConfig::default`], its failures and error rate from `client.breaker_failures`
    /// and `client.breaker_error_rate` (`PROBE_CLIENT_BREAKER_FAILURES`,
    /// `PROBE_CLIENT_BREAKER_ERROR_RATE`).
    pub breaker: BreakerConfig,
    /// Methods to treat as idempotent on top of those marked `(probe.idempotent)` in the IDL.
    pub idempotent_methods: HashSet<String>,
    /// Connections per node to servers that take one call at a time (Python providers): the most
    /// calls in flight to each. Default 8.
    pub pool_size: usize,
    /// Multiplexed connections per probe node, calls spread over them. Default
    /// [`default_mux_connections`](super::default_mux_connections): twice the CPUs, 2 to 8.
    pub mux_connections: usize,
    /// Count every attempt per service, method, node and outcome with its latency, and each
    /// node's connect, send and wait times, in [`metrics::global`](crate::metrics::global).
    /// Default on.
    pub metrics: bool,
    /// Middleware around each attempt on a chosen node ([`ClusterOptions::node_layer`]).
    node_layers: NodeLayers,
    /// This client's tags (`zone`, ...), for rules with tag affinity. Default none
    /// (`client.tags`, `PROBE_CLIENT_TAGS`).
    pub tags: crate::rules::Tags,
    /// Backup requests for idempotent methods. Default off; `client.hedge_percentile`
    /// (`PROBE_CLIENT_HEDGE_PERCENTILE`) turns them on with that percentile.
    pub hedge: Option<HedgeConfig>,
    /// The most calls per second this client sends the service; calls over it fail at once with
    /// [`Error::Limited`], unsent. Default none (`client.qps_limit`, `PROBE_CLIENT_QPS_LIMIT`).
    pub qps_limit: Option<f64>,
    /// Timeouts of single methods, by `Service.method` or a bare `method`, in place of
    /// `call_timeout` and the IDL's `(probe.timeout_ms = ...)`:
    /// [`Channel::discover`](super::Channel::discover) sets them on the channel it returns with
    /// [`Channel::method_timeout`](super::Channel::method_timeout), `Service.method` entries
    /// before bare ones, so they win. Default none (`client.method_timeouts`,
    /// `PROBE_CLIENT_METHOD_TIMEOUTS`).
    pub method_timeouts: BTreeMap<String, Duration>,
    /// TLS to the nodes that advertise it in their node data (`"tls"`: `optional` or `required`);
    /// nodes that do not (Python providers) get plaintext. Default none: plaintext to every node
    /// (`client.tls.ca`, `PROBE_CLIENT_TLS_CA` and the other `client.tls` settings).
    pub tls: Option<crate::tls::TlsClient>,
    /// The app credential calls prove their appkey with: each probe provider gets a caller token
    /// signed for it ([`security::token`](crate::security::token)). Default none
    /// (`PROBE_APP_CREDENTIAL`).
    pub credential: Option<crate::security::AppCredential>,
}

/// Hedged (backup) requests: an idempotent call still unanswered after the service's recent
/// `percentile` latency is sent to a second node too, and the first reply wins (the other
/// attempt is dropped). Each backup is a retry for the [`RetryBudget`]: without budget left, no
/// backup goes, so hedging cannot multiply the load of a struggling service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgeConfig {
    /// The latency percentile of this client's recent successful attempts (0 to 1) after which a
    /// backup goes. Default 0.95.
    pub percentile: f64,
    /// The shortest wait before a backup. Default 1 ms.
    pub min_delay: Duration,
    /// Attempts measured before any backup goes (the percentile means little before). Default 100.
    pub min_samples: u64,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        HedgeConfig { percentile: 0.95, min_delay: Duration::from_millis(1), min_samples: 100 }
    }
}

/// The hedge delay: a percentile of recent attempt latencies, recomputed every
/// [`HEDGE_EVERY`] over the attempts since the recomputation before.
struct HedgeDelay {
    config: HedgeConfig,
    latencies: crate::metrics::Histogram,
    state: Mutex<HedgeState>,
    /// The delay now, in nanoseconds; 0 while too few attempts were measured.
    delay_nanos: std::sync::atomic::AtomicU64,
}

struct HedgeState {
    since: crate::metrics::HistogramSnapshot,
    at: Instant,
}

/// How often the hedge delay is recomputed.
const HEDGE_EVERY: Duration = Duration::from_millis(250);

impl HedgeDelay {
    fn new(config: HedgeConfig) -> Self {
        HedgeDelay {
            config,
            latencies: crate::metrics::Histogram::new(),
            state: Mutex::new(HedgeState { since: Default::default(), at: crate::context::now() }),
            delay_nanos: Default::default(),
        }
    }

    fn record(&self, latency: Duration, now: Instant) {
        use std::sync::atomic::Ordering::Relaxed;
        self.latencies.record(latency);
        let Ok(mut state) = self.state.try_lock() else { return };
        if now.saturating_duration_since(state.at) < HEDGE_EVERY {
            return;
        }
        let snapshot = self.latencies.snapshot();
        let recent = snapshot.since(&state.since);
        if recent.count() >= self.config.min_samples {
            let delay = recent.quantile(self.config.percentile.clamp(0.0, 1.0)).max(self.config.min_delay);
            self.delay_nanos.store(u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX), Relaxed);
            state.since = snapshot;
            state.at = now;
        }
    }

    fn delay(&self) -> Option<Duration> {
        match self.delay_nanos.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}

/// Client layers around each attempt on a node, the last added outermost.
#[derive(Clone, Default)]
struct NodeLayers(Vec<ClientLayerFn>);

impl fmt::Debug for NodeLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} node layers", self.0.len())
    }
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions::from_config(&ClientConfig::default())
    }
}

impl ClusterOptions {
    /// The options a client configuration gives.
    pub fn from_config(config: &ClientConfig) -> Self {
        ClusterOptions {
            protocol: Protocol::Binary,
            balancer: config.balancer,
            call_timeout: config.call_timeout,
            connect_timeout: config.connect_timeout,
            max_attempts: 3,
            retry_budget: config.retry_budget(),
            breaker: config.breaker(),
            idempotent_methods: HashSet::new(),
            pool_size: super::tcp::POOL_SIZE,
            mux_connections: super::default_mux_connections(),
            metrics: true,
            node_layers: NodeLayers::default(),
            tags: config.tags.clone(),
            hedge: config
                .hedge_percentile
                .map(|percentile| HedgeConfig { percentile, ..HedgeConfig::default() }),
            qps_limit: config.qps_limit,
            method_timeouts: config.method_timeouts.clone(),
            tls: config.tls.clone(),
            credential: config.credential.clone(),
        }
    }

    /// Times calls of `method` (`Service.method`, or a bare `method` of any service) out after
    /// `timeout`, on the channel [`Channel::discover`](super::Channel::discover) returns; see
    /// [`ClusterOptions::method_timeouts`].
    pub fn method_timeout(mut self, method: impl Into<String>, timeout: Duration) -> Self {
        self.method_timeouts.insert(method.into(), timeout);
        self
    }

    /// Sends backup requests for idempotent methods (see [`HedgeConfig`]).
    pub fn hedge(mut self, config: HedgeConfig) -> Self {
        self.hedge = Some(config);
        self
    }

    /// Connects with TLS to the nodes that advertise it; see [`ClusterOptions::tls`].
    pub fn tls(mut self, tls: crate::tls::TlsClient) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sends the service at most `qps` calls per second; calls over it fail with
    /// [`Error::Limited`], unsent.
    pub fn qps_limit(mut self, qps: f64) -> Self {
        self.qps_limit = Some(qps);
        self
    }

    /// Opens nodes' circuit breakers, and closes them again, by `config`.
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// Uses the balancer `kind`.
    pub fn balancer(mut self, kind: BalancerKind) -> Self {
        self.balancer = kind;
        self
    }

    /// Counts calls in the process's metrics (on by default); see [`ClusterOptions::metrics`].
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Wraps each attempt on a node, after balancing, in `layer` (a tower
    /// [`Layer`](tower::Layer) over [`ClientService`]): it sees the call on its way to the node
    /// chosen (retries and fail-overs are attempts of their own) and that node's reply or error.
    /// Layers for the whole call, before balancing, go on the channel:
    /// [`Channel::layer`](super::Channel::layer). Each layer wraps those added before it.
    pub fn node_layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<ClientService> + Send + Sync + 'static,
        L::Service:
            tower::Service<Call, Response = Option<Bytes>, Error = Error> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<Call>>::Future: Send + 'static,
    {
        self.node_layers.0.push(client_layer(layer));
        self
    }

    /// Tags this client as `key` = `value` (e.g. `zone`), for rules with tag affinity.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Marks `method` idempotent: retried after failures that may have reached a server.
    pub fn idempotent(mut self, method: impl Into<String>) -> Self {
        self.idempotent_methods.insert(method.into());
        self
    }
}

/// Calls one service on whichever of its discovered nodes the balancer picks.
///
/// Every call reads the current [`Routes`] snapshot without locking. A call whose connection
/// fails moves to another node; a call that failed after it may have reached a server is retried
/// on another node only when its method is idempotent, at most `max_attempts` times, and only
/// while the [`RetryBudget`] allows. Nodes that keep failing are ejected for a back-off period.
/// Python providers (no `protocol` in their node JSON) get unframed binary with one call in flight
/// per connection; probe providers get their advertised framing, multiplexed.
pub struct ClusterTransport {
    routes: ServiceRoutes,
    options: ClusterOptions,
    balancer: Arc<dyn Balancer>,
    breaker: Arc<CircuitBreaker>,
    budget: RetryBudget,
    /// The hedge delay, when hedging is on.
    hedge: Option<HedgeDelay>,
    /// The client's own limit on calls per second, when set.
    limit: Option<crate::limits::gate::Gate>,
    /// Breaker states, backups and limited calls, as metrics and client reports show them.
    faults: Arc<crate::metrics::ClientFaults>,
    /// The routes and the connections per node, read without locking by every call.
    conns: ArcSwap<Conns>,
    /// Every node of the routes in `conns` is a probe node, whose connections name calls
    /// `Service:method`: a channel encodes its calls so in the first place (see
    /// [`ClusterTransport::prefixes_names`]).
    prefix_names: AtomicBool,
    /// Held while `conns` is replaced (a node's first call, new routes).
    departed: Mutex<Departed>,
    /// The task reporting the rule revision these routes run (for a discovered channel): it
    /// lives as long as the transport.
    reporter: Option<tokio::task::AbortHandle>,
}

impl Drop for ClusterTransport {
    fn drop(&mut self) {
        if let Some(reporter) = &self.reporter {
            reporter.abort();
        }
    }
}

/// A routes snapshot and the connections per node made for it: what a call reads, with one
/// load, to pick its node. Immutable: a change makes a new one (rare: new routes, a node's
/// first call).
#[derive(Default)]
struct Conns {
    /// The [`ServiceRoutes::version`] seen before `routes` was loaded (0: none yet).
    version: u64,
    routes: Arc<Routes>,
    by_id: FastMap<Arc<str>, (WireFormat, NodeRefs)>,
    /// The same, in the order of the routes' table (no hashing per call).
    by_index: Vec<Option<NodeRefs>>,
}

impl Conns {
    /// `by_id` for `routes` read at `version`, indexed in its table's order.
    fn new(version: u64, routes: Arc<Routes>, by_id: FastMap<Arc<str>, (WireFormat, NodeRefs)>) -> Conns {
        let by_index =
            routes.table.endpoints.iter().map(|e| by_id.get(&e.id).map(|(_, r)| Arc::clone(r))).collect();
        Conns { version, routes, by_id, by_index }
    }
}

/// A node's connections as a call holds them while it runs. Each thread group (shard) takes its
/// own reference, on cache lines of its own: the calls of different cores count references on
/// different lines instead of all bouncing the transport's one between them.
#[repr(align(128))]
struct NodeRef(Arc<TcpTransport>);

/// A [`NodeRef`] per shard.
type NodeRefs = Arc<Sharded<Arc<NodeRef>>>;

/// Nodes that left the table whose metric series are still held (a call in flight, another
/// transport): forgotten at a later generation change, unless listed again.
#[derive(Default)]
struct Departed(HashSet<Arc<str>>);

impl fmt::Debug for ClusterTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterTransport")
            .field("routes", &self.routes)
            .field("balancer", &self.options.balancer)
            .finish_non_exhaustive()
    }
}

/// The node an attempt goes to: its connections, and its live load when the balancer reads it.
/// Taken from the routes without copying the endpoint (each reference count taken is a write to
/// a cache line every core's calls share).
struct Target {
    node: Arc<NodeRef>,
    load: Option<Arc<LoadStats>>,
}

impl Target {
    fn transport(&self) -> &Arc<TcpTransport> {
        &self.node.0
    }

    /// The node's id (the transport's metrics node).
    fn id(&self) -> &Arc<str> {
        self.transport().node()
    }
}

/// [`ClusterTransport::attempt`]: the attempt's send, then what its answer means, settled as it
/// comes. Written out rather than an `async` block: LTO left the block's state machine out of
/// line, and its moves and drops cost more than the bookkeeping it did.
struct Attempt<'t> {
    cluster: &'t ClusterTransport,
    target: &'t Target,
    call: &'t Call,
    started: Instant,
    /// The call counted in the node's live load until it ends (balancers that read the load).
    guard: Option<CallGuard>,
    send: AttemptSend<'t>,
}

enum AttemptSend<'t> {
    /// Not polled yet: the call is sent, ending at this deadline, when it is.
    Start(Instant),
    /// The node's transport, called directly (no node layers).
    Direct(super::tcp::SendNow<'t>),
    /// Through the node layers (rare: boxed).
    Layered(BoxFuture<'t, Result<Option<Bytes>, Error>>),
    Settled,
}

impl Future for Attempt<'_> {
    type Output = (Verdict, Instant);

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        if let AttemptSend::Start(deadline) = this.send {
            this.send = this.cluster.send_attempt(this.target, this.call, deadline, this.started);
        }
        let (result, at) = match &mut this.send {
            AttemptSend::Start(_) => unreachable!("the attempt was sent above"),
            AttemptSend::Direct(send) => {
                let answer = std::task::ready!(std::pin::Pin::new(send).poll(cx));
                (answer.reply, answer.at)
            }
            AttemptSend::Layered(send) => (std::task::ready!(send.as_mut().poll(cx)), None),
            AttemptSend::Settled => panic!("an attempt was polled after it ended"),
        };
        this.send = AttemptSend::Settled;
        std::task::Poll::Ready(this.settle(result, at))
    }
}

impl Attempt<'_> {
    /// What the attempt's `result` (its reply read at `at`, if the transport read it) means for
    /// the call, recorded for the node's load, metrics, hedging and breaker; and when it ended.
    fn settle(&mut self, result: Result<Option<Bytes>, Error>, at: Option<Instant>) -> (Verdict, Instant) {
        let cluster = self.cluster;
        let (transport, id) = (self.target.transport(), self.target.id());
        let node_failed = matches!(
            result,
            Err(Error::Transport { .. }
                | Error::Connect { .. }
                | Error::ConnectTimeout { .. }
                | Error::Timeout { .. })
        );
        // The reply's time if the transport read it, else now.
        let now = at.unwrap_or_else(crate::context::now);
        let elapsed = now.saturating_duration_since(self.started);
        if let Some(guard) = self.guard.take() {
            guard.finish(elapsed, !node_failed);
        }
        let protocol = cluster.options.protocol;
        let outcome = Outcome::of_result(protocol, &result);
        if let Some(recorder) = transport.recorder() {
            recorder.record(self.call.service, self.call.method, outcome, elapsed);
        }
        if let (Some(hedge), false) = (&cluster.hedge, node_failed) {
            hedge.record(elapsed, now);
        }
        if let Some(backoff) = cluster.breaker.record(id, !node_failed, now) {
            warn!(node = %id, ?backoff, "node keeps failing; its circuit breaker opened");
        }
        let verdict = match result {
            Err(e) if e.is_connect_failure() => Verdict::FailOver(e),
            Err(e @ Error::Transport { .. }) => Verdict::MaybeRetry(e),
            // Only an exception may be a refusal (the reply's header was read once, above).
            Ok(Some(reply)) if outcome == Outcome::AppError => match shed(protocol, &reply) {
                Some(exception) => Verdict::NotExecuted(Error::Application(exception)),
                None => Verdict::Done(Ok(Some(reply))),
            },
            other => Verdict::Done(other),
        };
        (verdict, now)
    }
}

/// How one attempt ended, for the retry decision.
enum Verdict {
    Done(Result<Option<Bytes>, Error>),
    /// The call surely reached no server: try another node.
    FailOver(Error),
    /// The call may have reached a server: retry only if idempotent.
    MaybeRetry(Error),
    /// The server refused the call unexecuted (shed it: `TApplicationException` of kind
    /// `Loadshedding`): another node may take it, idempotent or not, within the retry budget.
    NotExecuted(Error),
}

/// `message` named `method` if it was encoded named `service:method` (for a node that takes no
/// prefix): else as it is.
fn unprefixed(protocol: Protocol, message: Bytes, service: &str, method: &str) -> Bytes {
    match super::header::peek(protocol, &message) {
        Some(header) if header.has_prefix(service) => rename_to(protocol, message, method),
        _ => message,
    }
}

#[cold]
fn rename_to(protocol: Protocol, message: Bytes, method: &str) -> Bytes {
    let limits = crate::codec::Limits::default();
    // The channel's own encoding: it renames (else the node answers that it has no such method).
    crate::transport::rename_message(protocol, message.clone(), method, limits).unwrap_or(message)
}

/// The `Loadshedding` exception in `reply`, if it is one: the server did not run the call.
fn shed(protocol: Protocol, reply: &Bytes) -> Option<crate::codec::ApplicationException> {
    use crate::codec::{ApplicationException, ApplicationExceptionKind, Limits, MessageType};
    let peeked = super::header::peek(protocol, reply)?;
    if peeked.kind != MessageType::Exception {
        return None;
    }
    let (_, body) = protocol.decode_header(reply.clone(), Limits::DEFAULT).ok()?;
    let exception: ApplicationException = protocol.decode_body(body, Limits::DEFAULT).ok()?;
    (exception.kind == ApplicationExceptionKind::Loadshedding).then_some(exception)
}

impl ClusterTransport {
    /// A transport over the nodes `routes` lists.
    pub fn new(routes: ServiceRoutes, options: ClusterOptions) -> Self {
        let breaker = Arc::new(CircuitBreaker::new(options.breaker));
        let faults = Arc::new(crate::metrics::ClientFaults::new(routes.service(), Arc::clone(&breaker)));
        if options.metrics {
            global().add_client_faults(&faults);
        }
        ClusterTransport {
            balancer: options.balancer.build(),
            breaker,
            faults,
            budget: RetryBudget::new(options.retry_budget),
            hedge: options.hedge.map(HedgeDelay::new),
            limit: options.qps_limit.map(|qps| {
                let gate = crate::limits::gate::Gate::default();
                gate.set_service(Some(&crate::limits::RequestLimits {
                    qps: Some(qps),
                    ..Default::default()
                }));
                gate
            }),
            routes,
            options,
            conns: ArcSwap::default(),
            prefix_names: AtomicBool::new(false),
            departed: Mutex::default(),
            reporter: None,
        }
    }

    /// The nodes' circuit breakers (shared: it stays valid after the transport moves into a
    /// channel).
    pub fn breaker(&self) -> Arc<CircuitBreaker> {
        Arc::clone(&self.breaker)
    }

    /// Backups sent by hedging, so far.
    pub fn hedges_sent(&self) -> u64 {
        self.faults.hedges.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The breaker states, backups and limited calls of this transport.
    pub fn faults(&self) -> Arc<crate::metrics::ClientFaults> {
        Arc::clone(&self.faults)
    }

    /// The routes calls are balanced over.
    pub fn routes(&self) -> &ServiceRoutes {
        &self.routes
    }

    /// The wire a node speaks, or `None` when it cannot take calls of this protocol.
    fn wire_for(&self, node: &NodeData) -> Option<WireFormat> {
        match node.protocol.as_deref() {
            // A Python provider: unframed binary.
            None => (self.options.protocol == Protocol::Binary)
                .then(|| WireFormat::new(Protocol::Binary, Framing::Unframed)),
            Some(_) => {
                let framing = match node.transport.as_deref() {
                    // A probe provider that takes THeader gets calls with their metadata.
                    _ if node.speaks_theader() => Framing::Header,
                    Some("buffered") | Some("unframed") => Framing::Unframed,
                    _ => Framing::Framed,
                };
                Some(WireFormat::new(self.options.protocol, framing))
            }
        }
    }

    /// The routes in force and the connections made for them: one lock-free load, and a
    /// plain one of the routes' version, unless the routes changed since (or are changing: a
    /// caller may already have seen the new ones).
    fn snapshot(&self) -> Guard<Arc<Conns>> {
        let version = self.routes.version();
        let conns = self.conns.load();
        if conns.version == version && settled(version) {
            return conns;
        }
        drop(conns);
        self.refresh();
        self.conns.load()
    }

    /// Puts `conns` in force, and whether calls may be encoded with the service prefix.
    fn install(&self, conns: Conns) {
        let nodes = &conns.routes.nodes;
        let every_probe = !nodes.is_empty() && nodes.iter().all(|node| node.version.is_some());
        self.prefix_names.store(every_probe, Ordering::Relaxed);
        self.conns.store(Arc::new(conns));
    }

    /// Whether a channel should encode calls named `Service:method` in the first place: every
    /// node of the routes in force is a probe node, whose connections name calls so (the name
    /// is written as encoded, not spliced in per call). An attempt that goes to another node
    /// anyway (routes that changed since) has the prefix taken off first.
    pub(super) fn prefixes_names(&self) -> bool {
        self.prefix_names.load(Ordering::Relaxed)
    }

    /// Makes [`Conns`] for the current routes, keeping the connections of nodes they still list
    /// with the same wire and dropping the others.
    #[cold]
    fn refresh(&self) {
        let mut departed = self.departed.lock().unwrap_or_else(PoisonError::into_inner);
        let version = self.routes.version();
        let current = self.conns.load_full();
        if current.version == version && settled(version) {
            // Another call refreshed them.
            return;
        }
        let routes = self.routes.load_full();
        let mut by_id = current.by_id.clone();
        let pruned = current.routes.table.generation != routes.table.generation;
        if pruned {
            self.prune(&mut by_id, &mut departed, &routes);
        }
        self.install(Conns::new(version, routes, by_id));
        drop(current);
        if pruned {
            // The transports just dropped held their series: now only the registry may (or a
            // call still in flight on them: forgotten at a later change).
            global().forget_client_nodes(&mut departed.0);
        }
    }

    /// The connections to the node at `index` in `conns`' table, made on its first call.
    fn transport_for(&self, conns: &Conns, index: usize) -> Option<Arc<NodeRef>> {
        match conns.by_index.get(index) {
            Some(Some(refs)) => Some(Arc::clone(refs.local())),
            _ => self.add_transport(&conns.routes, conns.routes.table.endpoints.get(index)?),
        }
    }

    /// [`ClusterTransport::transport_for`] on a node's first call: makes its connections and a
    /// new map with them (for the routes in force by now, which may be newer than `routes`).
    #[cold]
    fn add_transport(&self, routes: &Routes, endpoint: &Endpoint) -> Option<Arc<NodeRef>> {
        let _departed = self.departed.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.conns.load_full();
        let node = routes.node(&endpoint.id);
        let wire = node.and_then(|node| self.wire_for(node));
        let tls = node.is_some_and(|node| self.tls_for(node));
        let found = current
            .by_id
            .get(&endpoint.id)
            .filter(|(known, refs)| Some(*known) == wire && refs.local().0.is_tls() == tls)
            .map(|(_, refs)| Arc::clone(refs.local()));
        if found.is_some() {
            return found;
        }
        let (node, wire) = (node?, wire?);
        let transport = Arc::new(self.build_transport(endpoint, node, wire));
        let refs = Arc::new(Sharded::new_with(|| Arc::new(NodeRef(Arc::clone(&transport)))));
        let local = Arc::clone(refs.local());
        // Kept only if the routes in force still list the node (with this wire): else this call
        // goes to it once, on connections dropped after it.
        if current.routes.node(&endpoint.id).is_some_and(|n| self.wire_for(n) == Some(wire)) {
            let mut by_id = current.by_id.clone();
            by_id.insert(Arc::clone(&endpoint.id), (wire, refs));
            self.install(Conns::new(current.version, Arc::clone(&current.routes), by_id));
        }
        Some(local)
    }

    /// Whether calls to `node` go over TLS: it advertises TLS and this client has TLS settings.
    /// (A node that requires TLS, called without, answers each call with an error saying so.)
    fn tls_for(&self, node: &NodeData) -> bool {
        self.options.tls.is_some() && crate::tls::advertised(node) != crate::tls::TlsMode::Off
    }

    fn build_transport(&self, endpoint: &Endpoint, node: &NodeData, wire: WireFormat) -> TcpTransport {
        let probe = node.version.is_some();
        let builder = match (&self.options.tls, self.tls_for(node)) {
            (Some(tls), true) => {
                TcpTransport::builder(format!("{}:{}", endpoint.host, endpoint.port)).tls(tls.clone())
            }
            _ => TcpTransport::builder(format!("{}:{}", endpoint.host, endpoint.port)),
        };
        let builder = match (&self.options.credential, wire.framing) {
            (Some(credential), Framing::Header) => builder.caller_credential(credential.clone()),
            _ => builder,
        };
        builder
            .protocol(wire.protocol)
            .framed(wire.framing != Framing::Unframed)
            .header(wire.framing == Framing::Header)
            .multiplex(probe)
            .service_prefix(probe)
            .pool_size(if probe { self.options.mux_connections } else { self.options.pool_size })
            // thriftpy2 servers close connections idle for 3 s; reuse ours for less.
            .idle_timeout(if probe { PROBE_IDLE } else { PYTHON_IDLE })
            .connect_timeout(self.options.connect_timeout)
            .timeout(self.options.call_timeout)
            .metrics(self.options.metrics)
            .metrics_node(Arc::clone(&endpoint.id))
            .build()
    }

    /// Drops the connections to nodes `routes` no longer lists (or whose wire changed), and
    /// their metric series once no other transport or call holds them.
    #[cold]
    fn prune(
        &self,
        by_id: &mut FastMap<Arc<str>, (WireFormat, NodeRefs)>,
        departed: &mut Departed,
        routes: &Routes,
    ) {
        let metrics = self.options.metrics;
        by_id.retain(|id, (wire, refs)| {
            let listed = routes.table.get(id).is_some();
            if !listed && metrics {
                departed.0.insert(Arc::clone(id));
            }
            listed
                && routes.node(id).is_some_and(|node| {
                    self.wire_for(node) == Some(*wire) && self.tls_for(node) == refs.local().0.is_tls()
                })
        });
        departed.0.retain(|id| routes.table.get(id).is_none());
        self.breaker.retain(&routes.table);
    }

    /// Node ids this client cannot call (a protocol they do not speak).
    fn unusable(&self, routes: &Routes) -> Vec<Arc<str>> {
        match self.options.protocol {
            Protocol::Binary => Vec::new(),
            _ => routes
                .table
                .endpoints
                .iter()
                .zip(routes.nodes.iter())
                .filter(|(_, node)| self.wire_for(node).is_none())
                .map(|(e, _)| Arc::clone(&e.id))
                .collect(),
        }
    }

    /// The node for the next attempt and its connections, chosen on the current routes (read
    /// without locking, and let go before the attempt waits).
    fn pick(&self, call: &Call, tried: &[Arc<str>], now: Instant) -> Option<Target> {
        let conns = self.snapshot();
        let routes = &*conns.routes;
        let mut exclude = self.breaker.exclusions(&routes.table, tried, now);
        if self.options.protocol != Protocol::Binary {
            exclude.extend(self.unusable(routes));
        }
        // The service's rule and the nodes' tiers narrow the nodes this call may go to.
        if routes.rule.is_some() || routes.tiered {
            let headers = call.metadata.as_deref().map(|m| m.headers());
            let (endpoints, nodes, rule) = (&routes.table.endpoints, &routes.nodes, routes.rule.as_deref());
            let selection = crate::rules::select(
                endpoints,
                nodes,
                &exclude,
                rule,
                headers,
                &self.options.tags,
                &mut rand::rng(),
            );
            exclude.extend(selection.into_iter().flat_map(|s| s.exclude));
        }
        let index = self.balancer.pick_index(&routes.table, call.affinity.as_deref(), &exclude)?;
        let endpoint = routes.table.endpoints.get(index)?;
        let transport = self.transport_for(&conns, index)?;
        self.breaker.begin(&endpoint.id, now);
        let load = self.balancer.uses_load().then(|| Arc::clone(&endpoint.stats));
        Some(Target { node: transport, load })
    }

    /// One attempt of `call` on `target`, ending at `deadline`; `started` is when it began.
    fn attempt<'t>(
        &'t self,
        target: &'t Target,
        call: &'t Call,
        deadline: Instant,
        started: Instant,
    ) -> Attempt<'t> {
        let guard = target.load.as_ref().map(LoadStats::start_call);
        Attempt { cluster: self, target, call, started, guard, send: AttemptSend::Start(deadline) }
    }

    /// Sends an attempt's call to its node, ending at `deadline`: made as the attempt is first
    /// polled, so in its span (a THeader call carries the trace of the span it is sent from).
    fn send_attempt<'t>(
        &'t self,
        target: &'t Target,
        call: &Call,
        deadline: Instant,
        started: Instant,
    ) -> AttemptSend<'t> {
        let transport = target.transport();
        // A copy of the call for this node, named as it wants.
        let owned = || {
            let mut call = call.clone();
            if !transport.prefixes_names() {
                call.message = unprefixed(self.options.protocol, call.message, call.service, call.method);
            }
            call
        };
        match self.options.node_layers.0.as_slice() {
            // The call is kept for another node; its message is copied or cloned as it is sent.
            [] if transport.prefixes_names() => {
                AttemptSend::Direct(transport.send_now(Handed::Kept(call), deadline, started))
            }
            [] => AttemptSend::Direct(transport.send_now(Handed::Owned(owned()), deadline, started)),
            layers => {
                let mut call = owned();
                call.deadline = Some(deadline);
                let mut stack = ClientService::new(TransportService(transport.clone()));
                for layer in layers {
                    stack = layer(stack);
                }
                AttemptSend::Layered(Box::pin(stack.oneshot(call)))
            }
        }
    }

    fn send_now(
        &self,
        mut call: Call,
        request_id: Option<RequestId>,
        began: Instant,
    ) -> impl Future<Output = Result<Option<Bytes>, Error>> {
        async move {
            call.request_id = call.request_id.or(request_id);
            let deadline = call.deadline.unwrap_or(began + self.options.call_timeout);
            let idempotent = call.options.idempotent
                || (!self.options.idempotent_methods.is_empty()
                    && self.options.idempotent_methods.contains(call.method));
            if let Some(limit) = &self.limit
                && let Err(refusal) = limit.acquire(crate::context::Priority::CRITICAL, began)
            {
                let qps = match refusal {
                    crate::limits::Refusal::Qps(qps) => qps,
                    _ => 0.0,
                };
                self.faults.limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(Error::Limited { service: call.service.to_owned(), qps });
            }
            self.budget.deposit();
            let mut tried: Vec<Arc<str>> = Vec::new();
            let mut attempts = 0u32;
            let mut last_error = None;
            // One clock read per attempt: the start of the first, then the end of the one before.
            let mut now = began;
            loop {
                let Some(target) = self.pick(&call, &tried, now) else {
                    return Err(
                        last_error.unwrap_or_else(|| Error::NoNode { service: call.service.to_owned() })
                    );
                };
                if deadline <= now {
                    let budget = deadline.saturating_duration_since(began);
                    return Err(last_error.unwrap_or_else(|| super::tcp::timed_out(call.method, budget)));
                }
                let hedge_after = match (&self.hedge, idempotent && tried.is_empty()) {
                    (Some(hedge), true) => hedge.delay(),
                    _ => None,
                };
                let (verdict, ended) = match hedge_after {
                    None => {
                        // A disabled span (no subscriber wants it) is not worth wrapping the attempt in.
                        // (The attempt's future is not named: a local would keep its room in this
                        // future beside the instrumented one.)
                        let span = spans::attempt(target.id(), request_id);
                        match span.is_disabled() {
                            true => self.attempt(&target, &call, deadline, now).await,
                            false => self.attempt(&target, &call, deadline, now).instrument(span).await,
                        }
                    }
                    Some(after) => {
                        // Boxed: the hedged path's state (two attempts and a timer) stays out of every
                        // call's future.
                        let (verdict, ended, backup) =
                            Box::pin(self.hedged(&call, &target, deadline, now, after)).await;
                        if let Some(backup) = backup {
                            tried.push(backup);
                        }
                        (verdict, ended)
                    }
                };
                now = ended;
                let error = match verdict {
                    Verdict::Done(result) => return result,
                    Verdict::FailOver(e) => e,
                    Verdict::MaybeRetry(e) => {
                        attempts += 1;
                        if !idempotent || attempts >= self.options.max_attempts || !self.budget.try_retry(now)
                        {
                            return Err(e);
                        }
                        e
                    }
                    // Shed calls did not run anywhere: any method may go elsewhere, but only within the
                    // retry budget, so an overloaded fleet does not get its load multiplied.
                    Verdict::NotExecuted(e) => {
                        if !self.budget.try_retry(now) {
                            return Err(e);
                        }
                        e
                    }
                };
                debug!(node = %target.id(), method = call.method, error = %error, "trying another node");
                tried.push(Arc::clone(target.id()));
                last_error = Some(error);
            }
        }
    }
}

impl ClusterTransport {
    /// [`Transport::send`] without a box: what [`Channel`](super::Channel) calls.
    /// `now` is the time the caller read when it made the call.
    pub(super) fn send_direct(
        &self,
        call: Call,
        now: Instant,
    ) -> impl Future<Output = Result<Option<Bytes>, Error>> {
        let (span, request_id) = spans::client_call(call.service, call.method, None);
        let send = self.send_now(call, request_id, now);
        // Not an async block around the send: that would be one more layer to move and poll.
        match span.is_disabled() {
            true => Either::Left(send),
            false => Either::Right(send.instrument(span)),
        }
    }

    /// The first attempt of an idempotent call on `first`, with a backup on another node if no
    /// reply came `after` (and the retry budget allows one): the first attempt to end with an
    /// answer wins and the other is dropped; if one fails, the other's verdict stands. Returns
    /// the verdict, when it came, and the backup's node if one was sent.
    async fn hedged(
        &self,
        call: &Call,
        first: &Target,
        deadline: Instant,
        started: Instant,
        after: Duration,
    ) -> (Verdict, Instant, Option<Arc<str>>) {
        let primary = self.attempt(first, call, deadline, started);
        tokio::pin!(primary);
        let wait = (started + after).min(deadline);
        tokio::select! {
            (verdict, ended) = &mut primary => return (verdict, ended, None),
            () = tokio::time::sleep_until(wait.into()) => {}
        }
        let now = crate::context::now();
        let tried = [Arc::clone(first.id())];
        let backup = match self.budget.try_retry(now) {
            true => self.pick(call, &tried, now),
            false => None,
        };
        let Some(backup) = backup else {
            let (verdict, ended) = primary.await;
            return (verdict, ended, None);
        };
        self.faults.hedges.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        debug!(node = %backup.id(), after = ?after, "no reply yet: sending a backup request");
        let secondary = self.attempt(&backup, call, deadline, now);
        tokio::pin!(secondary);
        let answered = |v: &Verdict| matches!(v, Verdict::Done(_));
        let (verdict, ended) = tokio::select! {
            (verdict, ended) = &mut primary => match answered(&verdict) {
                true => (verdict, ended),
                false => secondary.await,
            },
            (verdict, ended) = &mut secondary => match answered(&verdict) {
                true => (verdict, ended),
                false => primary.await,
            },
        };
        let id = Arc::clone(backup.id());
        (verdict, ended, Some(id))
    }
}

impl Transport for ClusterTransport {
    fn protocol(&self) -> Protocol {
        self.options.protocol
    }

    fn send(&self, call: Call) -> BoxFuture<'_, Result<Option<Bytes>, Error>> {
        Box::pin(self.send_direct(call, crate::context::now()))
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.options.call_timeout)
    }
}

impl super::Channel {
    /// A channel to every provider of `service` under `appkey` in the backends' env, found and
    /// followed through the registry. Resolves once the current providers are known (there may be
    /// none yet: calls then fail with [`Error::NoNode`] until one registers). The options'
    /// [`method_timeouts`](ClusterOptions::method_timeouts) are set on the channel.
    ///
    /// ```no_run
    /// # async fn run(backends: probe_runtime::registry::Backends) -> Result<(), probe_runtime::registry::BackendError> {
    /// use probe_runtime::client::{Channel, ClusterOptions};
    ///
    /// let options = ClusterOptions::default().idempotent("get");
    /// let channel = Channel::discover(&backends, "demo_app", "Demo", options).await?;
    /// // let client = DemoClient::new(channel);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn discover(
        backends: &crate::registry::Backends,
        appkey: &str,
        service: &str,
        mut options: ClusterOptions,
    ) -> Result<super::Channel, crate::registry::BackendError> {
        let routes =
            ServiceRoutes::watch(Arc::clone(&backends.registry), backends.env, appkey, service).await?;
        let timeouts = std::mem::take(&mut options.method_timeouts);
        let mut transport = ClusterTransport::new(routes.clone(), options);
        let report = report_rule(
            Arc::clone(&backends.metrics),
            backends.env,
            appkey.to_owned(),
            routes,
            transport.faults(),
        );
        transport.reporter = Some(tokio::spawn(report).abort_handle());
        // The channel takes the first match in the order set: `Service.method` before `method`.
        let (qualified, bare): (Vec<_>, Vec<_>) = timeouts.iter().partition(|(name, _)| name.contains('.'));
        let channel = qualified
            .into_iter()
            .chain(bare)
            .fold(super::Channel::new(transport), |channel, (name, timeout)| {
                channel.method_timeout(name, *timeout)
            });
        Ok(channel)
    }
}

/// Reports which rule revision `routes` run (to the metrics store, where operators see which
/// clients applied a rule change): at once, when the routes change, and every
/// [`CLIENT_REPORT_EVERY`](crate::registry::CLIENT_REPORT_EVERY). Runs until its transport aborts it.
async fn report_rule(
    store: Arc<dyn crate::registry::MetricsStore>,
    env: crate::registry::layout::Env,
    appkey: String,
    routes: ServiceRoutes,
    faults: Arc<crate::metrics::ClientFaults>,
) {
    let client = format!(
        "{}:{}",
        crate::config::hostname().unwrap_or_else(|| "unknown".to_owned()),
        std::process::id()
    );
    let mut changes = routes.changes();
    let mut reported: Option<(u64, bool)> = None;
    loop {
        let (revision, problem) = {
            let current = routes.load();
            (current.rule.as_ref().map_or(0, |r| r.revision), current.rule_problem.is_some())
        };
        let applied_at_ms = crate::metrics::global()
            .rule_states()
            .into_iter()
            .find(|((e, a, s), _)| *e == env && *a == appkey && s == routes.service())
            .and_then(|(_, state)| state.applied_at.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        let report = crate::registry::ClientReport {
            client: client.clone(),
            appkey: appkey.clone(),
            service: routes.service().to_owned(),
            revision,
            applied_at_ms,
            problem,
            reported_at_ms: crate::registry::unix_ms(),
            breakers: faults.breakers().into_iter().map(|(node, state)| (node, state.to_string())).collect(),
            hedges: faults.hedges.load(std::sync::atomic::Ordering::Relaxed),
            limited: faults.limited.load(std::sync::atomic::Ordering::Relaxed),
        };
        match store.report_client(env, &report).await {
            Ok(()) => reported = Some((revision, problem)),
            Err(e) => debug!(error = %e, "cannot report the client's rule revision"),
        }
        // Until the rule in force (or its problem) changes, or the next report is due.
        let due = tokio::time::sleep(crate::registry::CLIENT_REPORT_EVERY);
        tokio::pin!(due);
        loop {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = &mut due => break,
            }
            let current = routes.load();
            let now = (current.rule.as_ref().map_or(0, |r| r.revision), current.rule_problem.is_some());
            if reported != Some(now) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Table;
    use crate::discovery::StoreStep;

    #[test]
    fn a_call_encoded_with_the_prefix_loses_it_for_a_node_that_takes_none() {
        use crate::codec::{ApplicationException, MessageHeader, MessageType};
        for protocol in [Protocol::Binary, Protocol::Compact] {
            let encoded = |name: &'static str| {
                let mut buf = bytes::BytesMut::new();
                let header = MessageHeader::new(name, MessageType::Call, 5);
                assert!(
                    protocol
                        .encode_message(&header, &ApplicationException::unknown_method("x"), &mut buf)
                        .is_ok()
                );
                buf.freeze()
            };
            let (prefixed, plain) = (encoded("Echo:echo"), encoded("echo"));
            assert_eq!(unprefixed(protocol, prefixed, "Echo", "echo"), plain, "{protocol:?}");
            let same = unprefixed(protocol, plain.clone(), "Echo", "echo");
            assert_eq!(same.as_ptr(), plain.as_ptr(), "an unprefixed call is not copied");
            // Another service's prefix is part of the method's name here: kept.
            let other = encoded("Other:echo");
            assert_eq!(unprefixed(protocol, other.clone(), "Echo", "echo"), other);
        }
    }

    fn routes(generation: u64, ports: &[u16]) -> Routes {
        let nodes: Vec<NodeData> = ports.iter().map(|&port| NodeData::new("127.0.0.1", port)).collect();
        let endpoints: Vec<Endpoint> = nodes
            .iter()
            .map(|n| Endpoint::from_node(format!("ClusterLeak_127.0.0.1_{}", n.port), n))
            .collect();
        Routes { table: Table::new(generation, endpoints), nodes: nodes.into(), ..Routes::default() }
    }

    /// The connections a call to the node at `index` gets, once `routes` are in force.
    fn transport_at(cluster: &ClusterTransport, routes: &Routes, index: usize) -> Arc<NodeRef> {
        let ids = |r: &Routes| r.table.endpoints.iter().map(|e| Arc::clone(&e.id)).collect::<Vec<_>>();
        let current = cluster.routes().load_full();
        if (current.table.generation, ids(&current)) != (routes.table.generation, ids(routes)) {
            cluster.routes().replace(routes.clone());
        }
        cluster.transport_for(&cluster.snapshot(), index).expect("usable")
    }

    fn call(cluster: &ClusterTransport, routes: &Routes, port: u16) {
        let index = routes.table.endpoints.iter().position(|e| e.port == port).expect("listed");
        let transport = transport_at(cluster, routes, index);
        transport.0.recorder().expect("metrics on").record(
            "ClusterLeak",
            "get",
            Outcome::Ok,
            Duration::from_micros(5),
        );
    }

    #[test]
    fn series_of_nodes_that_left_the_table_are_forgotten() {
        let first = routes(1, &[41001, 41002]);
        let cluster =
            ClusterTransport::new(ServiceRoutes::fixed("ClusterLeak", []), ClusterOptions::default());
        // Another client of the same service keeps a series of the node that leaves.
        let other = ClusterTransport::new(ServiceRoutes::fixed("ClusterLeak", []), ClusterOptions::default());
        call(&cluster, &first, 41001);
        call(&cluster, &first, 41002);
        call(&other, &first, 41002);
        let series = |port: u16| {
            format!(
                r#"probe_client_calls_total{{service="ClusterLeak",method="get",node="ClusterLeak_127.0.0.1_{port}",outcome="ok"}} "#
            )
        };
        let text = global().render();
        assert!(text.contains(&format!("{}2", series(41002))), "{text}");

        // 41002 restarts on 41003: the table drops it.
        let second = routes(2, &[41001, 41003]);
        call(&cluster, &second, 41003);
        let text = global().render();
        assert!(text.contains(&format!("{}1", series(41001))), "{text}");
        assert!(text.contains(&format!("{}1", series(41003))), "{text}");
        assert!(text.contains(&format!("{}2", series(41002))), "still used by the other client: {text}");

        call(&other, &second, 41001);
        let text = global().render();
        assert!(!text.contains("ClusterLeak_127.0.0.1_41002"), "{text}");
        assert!(text.contains(&format!("{}2", series(41001))), "{text}");
    }

    /// A probe node on a listener that reads calls and never answers; its routes, and word of
    /// the first bytes it read.
    async fn silent_node() -> (ServiceRoutes, tokio::sync::oneshot::Receiver<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (read_tx, read) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut first = [0; 4];
            let _ = tokio::io::AsyncReadExt::read_exact(&mut stream, &mut first).await;
            let _ = read_tx.send(());
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut sink).await;
        });
        let mut node = NodeData::new("127.0.0.1", port);
        node.protocol = Some("binary".to_owned());
        node.version = Some("0.1.0".to_owned());
        (ServiceRoutes::fixed("Silent", [(format!("Silent_127.0.0.1_{port}"), node)]), read)
    }

    /// Calls in flight on the routes' one node, as its live load counts them, while a call waits.
    async fn in_flight_while_a_call_waits(balancer: BalancerKind) -> u64 {
        let (routes, read) = silent_node().await;
        let options = ClusterOptions { balancer, metrics: false, ..ClusterOptions::default() };
        let cluster = Arc::new(ClusterTransport::new(routes.clone(), options));
        let mut buf = bytes::BytesMut::new();
        let header = crate::codec::MessageHeader::new("get", crate::codec::MessageType::Call, 1);
        let args = crate::codec::ApplicationException::unknown_method("x");
        crate::service::Protocol::Binary.encode_message(&header, &args, &mut buf).unwrap();
        let call = Call {
            service: "Silent",
            method: "get",
            seqid: 1,
            message: buf.freeze(),
            options: super::super::CallOptions { oneway: false, idempotent: false, timeout: None },
            affinity: None,
            metadata: None,
            request_id: None,
            deadline: Some(crate::context::now() + Duration::from_secs(5)),
        };
        let waiting = {
            let cluster = Arc::clone(&cluster);
            tokio::spawn(async move { cluster.send_direct(call, crate::context::now()).await })
        };
        // The call reached the node: it is in flight until its answer or deadline.
        read.await.unwrap();
        let in_flight = routes.load().table.endpoints[0].stats.in_flight();
        waiting.abort();
        in_flight
    }

    #[test]
    fn calls_pick_from_the_routes_in_force_and_keep_the_connections_of_nodes_that_stay() {
        let options = ClusterOptions { metrics: false, ..Default::default() };
        let cluster = ClusterTransport::new(ServiceRoutes::fixed("ClusterFollow", []), options);
        let call = Call {
            service: "ClusterFollow",
            method: "get",
            seqid: 1,
            message: Bytes::new(),
            options: super::super::CallOptions { oneway: false, idempotent: false, timeout: None },
            affinity: None,
            metadata: None,
            request_id: None,
            deadline: None,
        };
        let now = crate::context::now();
        let node = |port: u16| format!("ClusterLeak_127.0.0.1_{port}");
        let pick = || cluster.pick(&call, &[], now).expect("a node");
        assert!(cluster.pick(&call, &[], now).is_none(), "no node listed yet");

        cluster.routes().replace(routes(1, &[41021]));
        let first = pick();
        assert_eq!(**first.id(), *node(41021));
        // 41022 joins: calls reach it, and 41021 keeps its connections.
        cluster.routes().replace(routes(2, &[41021, 41022]));
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let target = pick();
            if **target.id() == *node(41021) {
                assert!(Arc::ptr_eq(target.transport(), first.transport()), "reconnected a node that stayed");
            }
            seen.insert(target.id().to_string());
        }
        assert_eq!(seen, HashSet::from([node(41021), node(41022)]));
        // 41021 leaves: no call goes to it, and its connections are let go.
        cluster.routes().replace_in_steps(routes(3, &[41022]), |step| {
            // Calls made as the new routes are stored follow the routes in force, which a caller
            // may have seen already.
            let picked: HashSet<_> = (0..50).map(|_| pick().id().to_string()).collect();
            match step {
                StoreStep::Begun => assert_eq!(picked, HashSet::from([node(41021), node(41022)])),
                StoreStep::Swapped => assert_eq!(picked, HashSet::from([node(41022)]), "by the old routes"),
            }
        });
        assert!((0..50).all(|_| **pick().id() == *node(41022)));
        assert!(!cluster.conns.load().by_id.contains_key(node(41021).as_str()));
        assert_eq!(cluster.conns.load().version, cluster.routes().version());
    }

    #[test]
    fn probe_nodes_get_the_multiplexed_connections_and_one_call_servers_the_pool() {
        let options =
            ClusterOptions { pool_size: 7, mux_connections: 3, metrics: false, ..Default::default() };
        let cluster = ClusterTransport::new(ServiceRoutes::fixed("Sizes", []), options);
        let mut table = routes(1, &[41011, 41012]);
        let mut nodes = table.nodes.to_vec();
        // The first node is a probe provider (it advertises its version); the second is not.
        nodes[0].version = Some("0.1.0".to_owned());
        table.nodes = nodes.into();
        let connections = |index| transport_at(&cluster, &table, index).0.connections();
        assert_eq!(connections(0), (true, 3));
        assert_eq!(connections(1), (false, 7));
        // Left unset: twice the CPUs, 2 to 8; a pool keeps its 8.
        let defaults = ClusterOptions::default();
        assert!((2..=8).contains(&defaults.mux_connections), "{}", defaults.mux_connections);
        assert_eq!(defaults.mux_connections, super::super::default_mux_connections());
        assert_eq!(defaults.pool_size, 8);
        let mux = TcpTransport::builder("127.0.0.1:1").multiplex(true).build();
        assert_eq!(mux.connections(), (true, defaults.mux_connections));
        assert_eq!(TcpTransport::builder("127.0.0.1:1").build().connections(), (false, 8));
    }

    #[tokio::test]
    async fn live_load_is_counted_for_the_balancer_that_reads_it_only() {
        assert_eq!(in_flight_while_a_call_waits(BalancerKind::LeastLoaded).await, 1);
        // The others never read it: their calls write nothing to the node's shared counters.
        assert_eq!(in_flight_while_a_call_waits(BalancerKind::WeightedRandom).await, 0);
        assert_eq!(in_flight_while_a_call_waits(BalancerKind::RoundRobin).await, 0);
    }
}
