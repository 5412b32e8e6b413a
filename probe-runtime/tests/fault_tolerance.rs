//! Client fault tolerance over real servers on loopback and the embedded registry: a node's
//! circuit breaker opens after the configured failures, half-opens after its back-off and closes
//! on a good trial; hedged requests go to another node when the first is slow, for idempotent
//! methods only; the client's own QPS limit refuses calls unsent. The configuration's settings
//! reach the cluster options, and a discovered channel times methods out as they say.

mod server_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use probe_runtime::Error;
use probe_runtime::balance::{BreakerConfig, BreakerState, CircuitBreaker};
use probe_runtime::client::{CallOptions, Channel, ClusterOptions, ClusterTransport, HedgeConfig};
use probe_runtime::config::{ClientConfig, Config};
use probe_runtime::discovery::ServiceRoutes;
use probe_runtime::middleware::{BoxError, ServerCall};
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
use probe_runtime::registry::{Backends, Registry, RegistrySession};
use probe_runtime::server::{Server, ServerHandle};
use probe_runtime::service::{BoxFuture, Reply};
use server_support::*;
use tokio::net::TcpListener;
use tower::layer::layer_fn;

fn key(app: &str, addr: std::net::SocketAddr) -> NodeKey {
    NodeKey::new(Env::Dev, app, "Echo", &addr.ip().to_string(), addr.port()).unwrap()
}

async fn register(session: &dyn RegistrySession, app: &str, addr: std::net::SocketAddr) {
    let mut node = NodeData::new(&addr.ip().to_string(), addr.port());
    node.protocol = Some("binary".into());
    node.transport = Some("framed".into());
    session.register(&key(app, addr), &node).await.unwrap();
}

/// A channel over `app`'s `Echo` nodes, and its transport's breakers and hedge count.
async fn cluster(
    embedded: &Embedded,
    app: &str,
    nodes: usize,
    options: ClusterOptions,
) -> (Channel, Arc<CircuitBreaker>, Arc<ClusterTransport>) {
    let registry: Arc<dyn Registry> = Arc::new(embedded.registry.clone());
    let routes = ServiceRoutes::watch(registry, Env::Dev, app, "Echo").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while routes.load().table.in_rotation().count() < nodes {
        assert!(Instant::now() < deadline, "the routes never listed {nodes} nodes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let transport = Arc::new(ClusterTransport::new(routes, options));
    (Channel::new(Shared(transport.clone())), transport.breaker(), transport)
}

/// A transport shared with the test, which reads its counters.
#[derive(Debug)]
struct Shared(Arc<ClusterTransport>);

impl probe_runtime::client::Transport for Shared {
    fn protocol(&self) -> probe_runtime::service::Protocol {
        self.0.protocol()
    }
    fn send(&self, call: probe_runtime::client::Call) -> BoxFuture<'_, Result<Option<bytes::Bytes>, Error>> {
        self.0.send(call)
    }
    fn timeout(&self) -> Option<Duration> {
        self.0.timeout()
    }
}

/// A listener that accepts connections and closes them at once: every call to it fails after it
/// may have reached the server.
async fn broken() -> (tokio::task::JoinHandle<()>, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    (task, addr)
}

const IDEMPOTENT: CallOptions = CallOptions { oneway: false, idempotent: true, timeout: None };

async fn echo_idempotent(channel: &Channel, msg: &str) -> Result<String, Error> {
    let result: Option<EchoResult> = channel.call("Echo", "echo", &EchoArgs::new(msg), IDEMPOTENT).await?;
    Ok(result.and_then(|r| r.success).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opens_after_its_failures_half_opens_and_closes_on_a_good_trial() {
    let embedded = Embedded::new();
    let session = embedded.registry.session().await.unwrap();
    let (good, _) = Echo::new("Echo", "good:");
    let good = start(Server::builder().add_service(good)).await;
    let (bad_task, bad_addr) = broken().await;
    register(session.as_ref(), "breaker_app", good.local_addr()).await;
    register(session.as_ref(), "breaker_app", bad_addr).await;
    let config = BreakerConfig { failures: 3, base: Duration::from_millis(300), ..BreakerConfig::default() };
    let mut options = ClusterOptions::default().breaker(config);
    options.retry_budget.ratio = 1.0;
    let (channel, breaker, _) = cluster(&embedded, "breaker_app", 2, options).await;
    let bad_id = format!("Echo_{}_{}", bad_addr.ip(), bad_addr.port());

    // Every call succeeds (failing attempts are retried on the good node) until the bad node's
    // breaker opens after its third failure.
    let mut calls = 0;
    while !matches!(breaker.state(&bad_id, Instant::now()), BreakerState::Open { .. }) {
        assert_eq!(echo_idempotent(&channel, "x").await.unwrap(), "good:x");
        calls += 1;
        assert!(calls < 200, "the breaker never opened");
    }
    assert_eq!(breaker.openings(), 1);
    let opened = Instant::now();
    let text = probe_runtime::metrics::global().render();
    let open_line =
        format!("probe_client_breaker_state{{service=\"Echo\",node=\"{bad_id}\",state=\"open\"}} 1");
    assert!(text.contains(&open_line), "no {open_line} in\n{text}");
    // While open, the bad node gets no calls: all 50 go to the good node at the first attempt.
    for _ in 0..50 {
        assert_eq!(echo_idempotent(&channel, "y").await.unwrap(), "good:y");
    }
    assert_eq!(breaker.openings(), 1, "no failure while open");

    // After the back-off: half-open. The node is healthy again (a server on its port).
    tokio::time::sleep_until((opened + Duration::from_millis(320)).into()).await;
    assert_eq!(breaker.state(&bad_id, Instant::now()), BreakerState::HalfOpen);
    bad_task.abort();
    let _ = bad_task.await;
    let (healed, _) = Echo::new("Echo", "healed:");
    let listener = TcpListener::bind(bad_addr).await.expect("the bad node's port is free again");
    let _healed: ServerHandle =
        Server::builder().add_service(healed).start_with_listener(listener).await.unwrap();
    let mut answers = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let answer = echo_idempotent(&channel, "z").await.unwrap();
        answers.insert(answer);
        if breaker.state(&bad_id, Instant::now()) == BreakerState::Closed {
            break;
        }
    }
    assert_eq!(breaker.state(&bad_id, Instant::now()), BreakerState::Closed, "a good trial closes it");
    assert!(answers.contains("healed:z"), "the trial went to the healed node: {answers:?}");
    println!(
        "breaker: opened after 3 failures in a row ({calls} calls, none failed), no call to the node \
         for its 300 ms back-off, half-open after it, closed by a good trial"
    );
    drop(session);
}

/// Delays every call by `delay` before running it.
#[derive(Clone)]
struct Delay<S> {
    inner: S,
    delay: Duration,
    calls: Arc<AtomicUsize>,
}

impl<S> tower::Service<ServerCall> for Delay<S>
where
    S: tower::Service<ServerCall, Response = Reply, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Reply, BoxError>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: ServerCall) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (delay, answer) = (self.delay, self.inner.call(call));
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            answer.await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_node_gets_backup_requests_for_idempotent_methods_only() {
    let embedded = Embedded::new();
    let session = embedded.registry.session().await.unwrap();
    let slow_calls = Arc::new(AtomicUsize::new(0));
    let mut servers = Vec::new();
    for (prefix, delay) in [("a:", 0), ("b:", 0), ("slow:", 200)] {
        let (echo, _) = Echo::new("Echo", prefix);
        let calls = slow_calls.clone();
        let delay = Duration::from_millis(delay);
        let layer = layer_fn(move |inner| Delay { inner, delay, calls: calls.clone() });
        let builder = Server::builder().add_service(echo);
        let builder = if delay.is_zero() { builder } else { builder.layer(layer) };
        servers.push(start(builder).await);
    }
    for server in &servers {
        register(session.as_ref(), "hedge_app", server.local_addr()).await;
    }
    let hedge = HedgeConfig { percentile: 0.5, min_samples: 20, ..HedgeConfig::default() };
    let mut options = ClusterOptions::default().hedge(hedge);
    options.retry_budget.ratio = 1.0;
    let (channel, _, transport) = cluster(&embedded, "hedge_app", 3, options).await;

    // Warm up the latency percentile, then measure.
    for _ in 0..60 {
        echo_idempotent(&channel, "w").await.unwrap();
    }
    let mut answered_by_slow = 0;
    let sent_before = transport.hedges_sent();
    for _ in 0..60 {
        let answer = echo_idempotent(&channel, "h").await.unwrap();
        answered_by_slow += usize::from(answer.starts_with("slow:"));
    }
    let hedges = transport.hedges_sent() - sent_before;
    assert!(hedges > 0, "no backup request went");
    let text = probe_runtime::metrics::global().render();
    assert!(text.contains("probe_client_hedges_total{service=\"Echo\"}"), "{text}");
    assert_eq!(answered_by_slow, 0, "a backup should beat every 200 ms answer");

    // `slow` is not idempotent: never hedged, so calls to the slow node wait it out.
    let sent_before = transport.hedges_sent();
    for _ in 0..30 {
        let result: Option<EchoResult> =
            channel.call("Echo", "slow", &EchoArgs::new("n"), CALL).await.unwrap();
        assert!(result.is_some());
    }
    assert_eq!(transport.hedges_sent(), sent_before, "a non-idempotent call was hedged");
    println!(
        "hedging: {hedges} backups for 60 idempotent calls, none answered by the 200 ms node; 0 for 30 non-idempotent ones"
    );
    drop(session);
}

#[tokio::test]
async fn the_clients_own_qps_limit_refuses_calls_unsent() {
    let embedded = Embedded::new();
    let session = embedded.registry.session().await.unwrap();
    let (echo, probe) = Echo::new("Echo", "");
    let server = start(Server::builder().add_service(echo)).await;
    register(session.as_ref(), "limit_app", server.local_addr()).await;
    let (channel, _, _) = cluster(&embedded, "limit_app", 1, ClusterOptions::default().qps_limit(40.0)).await;
    let _ = &probe;
    // A burst of 20 at once: the bucket holds 2 (50 ms of 40 a second).
    let mut sent = 0;
    let mut refused = Vec::new();
    for _ in 0..20 {
        match echo_idempotent(&channel, "q").await {
            Ok(_) => sent += 1,
            Err(e @ Error::Limited { .. }) => refused.push(e.to_string()),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!((2..=3).contains(&sent), "{sent} calls went");
    assert!(refused[0].contains("over this client's limit of 40 per second"), "{}", refused[0]);
    // A quarter of a second later, about 10 more.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let later = {
        let mut ok = 0;
        for _ in 0..20 {
            ok += usize::from(echo_idempotent(&channel, "q").await.is_ok());
        }
        ok
    };
    assert!((2..=13).contains(&later), "{later} calls went after 250 ms");
    drop(session);
}

/// Every backend embedded, and `extra`, as variables.
fn client_config(extra: &[(&'static str, &'static str)]) -> ClientConfig {
    let embedded =
        [("PROBE_ZOOKEEPER", "embedded"), ("PROBE_REDIS", "embedded"), ("PROBE_MYSQL", "embedded")];
    Config::from_vars(embedded.iter().chain(extra).copied()).unwrap().client
}

#[test]
fn cluster_options_take_the_fault_tolerance_settings_of_the_configuration() {
    let config = client_config(&[
        ("PROBE_CLIENT_METHOD_TIMEOUTS", "Echo.slow=150,echo=2000"),
        ("PROBE_CLIENT_QPS_LIMIT", "40"),
        ("PROBE_CLIENT_HEDGE_PERCENTILE", "0.9"),
        ("PROBE_CLIENT_BREAKER_FAILURES", "3"),
        ("PROBE_CLIENT_BREAKER_ERROR_RATE", "0.25"),
    ]);
    let options = ClusterOptions::from_config(&config);
    assert_eq!(options.breaker, BreakerConfig { failures: 3, error_rate: 0.25, ..BreakerConfig::default() });
    assert_eq!(options.hedge, Some(HedgeConfig { percentile: 0.9, ..HedgeConfig::default() }));
    assert_eq!(options.qps_limit, Some(40.0));
    let expected = BTreeMap::from([
        ("Echo.slow".to_owned(), Duration::from_millis(150)),
        ("echo".to_owned(), Duration::from_secs(2)),
    ]);
    assert_eq!(options.method_timeouts, expected);

    let defaults = ClusterOptions::default();
    assert_eq!(
        (defaults.breaker, defaults.hedge, defaults.qps_limit),
        (BreakerConfig::default(), None, None)
    );
    assert!(defaults.method_timeouts.is_empty());
}

#[tokio::test]
async fn a_discovered_channel_times_a_slow_call_out_at_the_configured_method_timeout() {
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    let session = embedded.registry.session().await.unwrap();
    let (service, _) = Echo::new("Echo", "");
    let server = start(Server::builder().add_service(service)).await;
    register(session.as_ref(), "timeout_app", server.local_addr()).await;
    let slow = |delay_ms| EchoArgs { msg: "zz".into(), delay_ms };

    // `Echo.slow` from the configuration, over the bare `slow` and the 30 s call timeout.
    let config = client_config(&[("PROBE_CLIENT_METHOD_TIMEOUTS", "Echo.slow=150,slow=5000")]);
    let options = ClusterOptions::from_config(&config);
    let channel = Channel::discover(&backends, "timeout_app", "Echo", options).await.unwrap();
    assert_eq!(echo(&channel, "up").await.unwrap(), "up", "other methods keep the call timeout");
    let started = Instant::now();
    let result: Result<Option<EchoResult>, Error> = channel.call("Echo", "slow", &slow(3000), CALL).await;
    assert!(matches!(result, Err(Error::Timeout { timeout_ms: 150, .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_millis(2000), "waited {:?}", started.elapsed());
    // Within its timeout the call is answered.
    assert_eq!(call(&channel, "Echo", "slow", slow(10)).await.unwrap(), "zz");

    // The builder's, by a bare method name.
    let options = ClusterOptions::default().method_timeout("slow", Duration::from_millis(100));
    let channel = Channel::discover(&backends, "timeout_app", "Echo", options).await.unwrap();
    let started = Instant::now();
    let result: Result<Option<EchoResult>, Error> = channel.call("Echo", "slow", &slow(3000), CALL).await;
    assert!(matches!(result, Err(Error::Timeout { timeout_ms: 100, .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_millis(2000), "waited {:?}", started.elapsed());
    drop(session);
}
