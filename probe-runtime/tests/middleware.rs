//! Middleware: user layers on the server (around each call: method, peer, caller, outcome; able to
//! answer without the handler) and on the client (around each call before balancing, and around
//! each attempt on a node after it).

mod server_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use probe_runtime::Error;
use probe_runtime::client::{Call, Channel, ClusterOptions, TcpTransport};
use probe_runtime::codec::ApplicationExceptionKind;
use probe_runtime::context::Metadata;
use probe_runtime::metrics::Outcome;
use probe_runtime::middleware::{BoxError, ServerCall};
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
use probe_runtime::registry::{Backends, Registry};
use probe_runtime::server::Server;
use probe_runtime::service::{BoxFuture, Reply};
use server_support::*;
use tower::layer::layer_fn;

/// What a server layer saw of one call.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    service: &'static str,
    method: String,
    peer_is_loopback: bool,
    caller: Option<String>,
    outcome: Outcome,
}

/// Lets calls from `allowed` callers through and records every call and its outcome.
#[derive(Clone)]
struct Guard<S> {
    inner: S,
    allowed: &'static str,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl<S> tower::Service<ServerCall> for Guard<S>
where
    S: tower::Service<ServerCall, Response = Reply, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Reply, BoxError>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: ServerCall) -> Self::Future {
        let mut seen = Seen {
            service: call.service,
            method: call.method().to_owned(),
            peer_is_loopback: call.peer().is_some_and(|p| p.ip().is_loopback()),
            caller: call.caller_appkey().map(str::to_owned),
            outcome: Outcome::Ok,
        };
        let protocol = call.request.protocol();
        let record = self.seen.clone();
        if seen.caller.as_deref() != Some(self.allowed) {
            let reply = call.reject(ApplicationExceptionKind::Unknown, "caller not allowed");
            seen.outcome = Outcome::AppError;
            record.lock().unwrap().push(seen);
            return Box::pin(async move { Ok(reply) });
        }
        let reply = self.inner.call(call);
        Box::pin(async move {
            let reply = reply.await?;
            if let Reply::Message(message) = &reply {
                seen.outcome = Outcome::of_reply(protocol, message);
            }
            record.lock().unwrap().push(seen);
            Ok(reply)
        })
    }
}

/// Counts calls passing through and stamps them with a caller identity.
#[derive(Clone)]
struct Stamp<S> {
    inner: S,
    count: Arc<AtomicUsize>,
    caller: Option<&'static str>,
}

impl<S> tower::Service<Call> for Stamp<S>
where
    S: tower::Service<Call, Response = Option<Bytes>, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Option<Bytes>;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Option<Bytes>, Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call) -> Self::Future {
        self.count.fetch_add(1, Ordering::SeqCst);
        if let Some(caller) = self.caller {
            call.metadata = Some(Arc::new(Metadata::new().caller(caller, "Tests")));
        }
        Box::pin(self.inner.call(call))
    }
}

fn stamp(
    count: &Arc<AtomicUsize>,
    caller: Option<&'static str>,
) -> impl tower::Layer<
    probe_runtime::middleware::ClientService,
    Service = Stamp<probe_runtime::middleware::ClientService>,
> + Send
+ Sync
+ 'static {
    let count = count.clone();
    layer_fn(move |inner| Stamp { inner, count: count.clone(), caller })
}

#[tokio::test]
async fn server_and_client_layers_see_every_call_and_may_answer_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let guard = {
        let seen = seen.clone();
        layer_fn(move |inner| Guard { inner, allowed: "order_app", seen: seen.clone() })
    };
    let (echo_service, _) = Echo::new("Echo", "");
    let server = start(Server::builder().add_service(echo_service).layer(guard)).await;
    let transport = TcpTransport::builder(server.local_addr().to_string()).header(true).multiplex(true);
    let channel = Channel::new(transport.connect().await.unwrap());

    // No caller identity: the server's layer answers without the handler.
    match echo(&channel, "hi").await {
        Err(Error::Application(e)) => assert_eq!(e.message, "caller not allowed"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A client layer stamps the caller: the call goes through, counted on the client.
    let count = Arc::new(AtomicUsize::new(0));
    let stamped = channel.layer(stamp(&count, Some("order_app")));
    assert_eq!(echo(&stamped, "hi").await.unwrap(), "hi");
    assert!(matches!(call(&stamped, "Echo", "boom", EchoArgs::new("x")).await, Err(Error::Application(_))));
    assert_eq!(count.load(Ordering::SeqCst), 2);

    let seen = seen.lock().unwrap().clone();
    let expect = |method: &str, caller: Option<&str>, outcome| Seen {
        service: "Echo",
        method: method.to_owned(),
        peer_is_loopback: true,
        caller: caller.map(str::to_owned),
        outcome,
    };
    assert_eq!(
        seen,
        vec![
            expect("echo", None, Outcome::AppError),
            expect("echo", Some("order_app"), Outcome::Ok),
            expect("boom", Some("order_app"), Outcome::AppError),
        ]
    );
}

#[tokio::test]
async fn a_failing_layer_is_an_internal_error_and_the_server_serves_on() {
    #[derive(Clone)]
    struct Fail;
    impl tower::Service<ServerCall> for Fail {
        type Response = Reply;
        type Error = std::io::Error;
        type Future = std::future::Ready<Result<Reply, std::io::Error>>;
        fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), std::io::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: ServerCall) -> Self::Future {
            std::future::ready(Err(std::io::Error::other("quota store unreachable")))
        }
    }
    let (echo_service, _) = Echo::new("Echo", "");
    let server = start(Server::builder().add_service(echo_service).layer(layer_fn(|_| Fail))).await;
    let channel = channel(server.local_addr(), WIRES[0], false, false);
    for _ in 0..2 {
        match echo(&channel, "hi").await {
            Err(Error::Application(e)) => {
                assert_eq!(e.kind, ApplicationExceptionKind::InternalError);
                assert!(e.message.contains("quota store unreachable"), "{e}");
            }
            other => panic!("expected an internal error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn node_layers_wrap_each_attempt_after_balancing() {
    // Two nodes whose replies say which answered.
    let mut servers = Vec::new();
    for prefix in ["a:", "b:"] {
        let (service, _) = Echo::new("Echo", prefix);
        servers.push(start(Server::builder().add_service(service)).await);
    }
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    let session = embedded.registry.session().await.unwrap();
    for server in &servers {
        let addr = server.local_addr();
        let key = NodeKey::new(Env::Dev, "mw_app", "Echo", &addr.ip().to_string(), addr.port()).unwrap();
        let mut node = NodeData::new(&addr.ip().to_string(), addr.port());
        node.version = Some("0.1.0".into());
        session.register(&key, &node).await.unwrap();
    }
    let (per_call, per_attempt) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let options = {
        let per_attempt = per_attempt.clone();
        ClusterOptions::default()
            .node_layer(layer_fn(move |inner| NodeSeen { inner, count: per_attempt.clone() }))
    };
    let channel = Channel::discover(&backends, "mw_app", "Echo", options).await.unwrap();
    let channel = channel.layer(stamp(&per_call, None));
    let mut answered = std::collections::HashSet::new();
    for n in 0..40 {
        let reply = echo(&channel, &format!("{n}")).await.unwrap();
        let (node, echoed) = reply.split_once(':').unwrap();
        assert_eq!(echoed, format!("{n}"));
        answered.insert(node.to_owned());
    }
    assert_eq!(per_call.load(Ordering::SeqCst), 40);
    assert_eq!(per_attempt.load(Ordering::SeqCst), 40);
    assert_eq!(answered.len(), 2, "the balancer chose among both nodes: {answered:?}");
    drop(session);
}

/// Counts attempts; checks each carries its deadline.
#[derive(Clone)]
struct NodeSeen<S> {
    inner: S,
    count: Arc<AtomicUsize>,
}

impl<S> tower::Service<Call> for NodeSeen<S>
where
    S: tower::Service<Call, Response = Option<Bytes>, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Option<Bytes>;
    type Error = Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        assert!(call.deadline.is_some_and(|d| d > std::time::Instant::now()), "an attempt has its deadline");
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.call(call)
    }
}

/// Refuses every call unexecuted, as an overloaded server sheds it; counts them.
#[derive(Clone)]
struct Shed<S> {
    inner: S,
    shed: Arc<AtomicUsize>,
}

impl<S> tower::Service<ServerCall> for Shed<S>
where
    S: tower::Service<ServerCall, Response = Reply, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Reply, BoxError>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: ServerCall) -> Self::Future {
        self.shed.fetch_add(1, Ordering::SeqCst);
        let reply = call.reject(ApplicationExceptionKind::Loadshedding, "over the concurrency limit");
        Box::pin(async move { Ok(reply) })
    }
}

#[tokio::test]
async fn calls_a_node_sheds_go_to_another_even_when_not_idempotent() {
    let shed = Arc::new(AtomicUsize::new(0));
    let overloaded = {
        let shed = shed.clone();
        layer_fn(move |inner| Shed { inner, shed: shed.clone() })
    };
    let (busy, _) = Echo::new("Echo", "busy:");
    let (calm, _) = Echo::new("Echo", "calm:");
    let servers = [
        start(Server::builder().add_service(busy).layer(overloaded)).await,
        start(Server::builder().add_service(calm)).await,
    ];
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    let session = embedded.registry.session().await.unwrap();
    for server in &servers {
        let addr = server.local_addr();
        let key = NodeKey::new(Env::Dev, "shed_app", "Echo", &addr.ip().to_string(), addr.port()).unwrap();
        let mut node = NodeData::new(&addr.ip().to_string(), addr.port());
        node.version = Some("0.1.0".into());
        session.register(&key, &node).await.unwrap();
    }
    let mut options = ClusterOptions::default();
    options.retry_budget.ratio = 1.0;
    let channel = Channel::discover(&backends, "shed_app", "Echo", options).await.unwrap();
    // `slow` is not idempotent: a call that may have run is never retried, a shed one may be.
    for n in 0..40 {
        let args = EchoArgs { msg: format!("{n}"), delay_ms: 0 };
        assert_eq!(call(&channel, "Echo", "slow", args).await.unwrap(), format!("calm:{n}"));
    }
    assert!(shed.load(Ordering::SeqCst) > 5, "the busy node was tried: {}", shed.load(Ordering::SeqCst));

    // With every node shedding, the caller gets the refusal (within the retry budget, no storm).
    let only_busy =
        Channel::discover(&backends, "shed_app", "Echo", ClusterOptions::default()).await.unwrap();
    drop(servers);
    let (busy2, _) = Echo::new("Echo", "busy:");
    let shed2 = Arc::new(AtomicUsize::new(0));
    let layer = {
        let shed = shed2.clone();
        layer_fn(move |inner| Shed { inner, shed: shed.clone() })
    };
    let lone = start(Server::builder().add_service(busy2).layer(layer)).await;
    let addr = lone.local_addr();
    let key = NodeKey::new(Env::Dev, "shed_app", "Echo", &addr.ip().to_string(), addr.port()).unwrap();
    session.register(&key, &NodeData::new(&addr.ip().to_string(), addr.port())).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let refused = loop {
        match call(&only_busy, "Echo", "slow", EchoArgs::new("x")).await {
            Err(Error::Application(e)) if e.kind == ApplicationExceptionKind::Loadshedding => break e,
            other => assert!(std::time::Instant::now() < deadline, "still {other:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(refused.message.contains("concurrency limit"), "{refused}");
    drop(session);
}
