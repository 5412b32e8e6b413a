//! Middleware: [tower] layers around each call, on the server and on the client.
//!
//! A server layer wraps every call on its way to its handler: it sees a [`ServerCall`] (service,
//! method, peer, the caller's [`Context`], the undecoded request) and returns the [`Reply`],
//! which it may inspect ([`Outcome::of_reply`](crate::metrics::Outcome::of_reply)) or make itself
//! ([`ServerCall::reject`]). Add one with
//! [`ServerBuilder::layer`](crate::server::ServerBuilder::layer).
//!
//! A client layer wraps every call a [`Channel`](crate::client::Channel) sends: it sees the
//! encoded [`Call`] (service, method, metadata, deadline) before balancing and gets the encoded
//! reply or the [`Error`]. Add one with
//! [`Channel::layer`](crate::client::Channel::layer); a discovered channel also takes layers around
//! each attempt on a chosen node with
//! [`ClusterOptions::node_layer`](crate::client::ClusterOptions::node_layer).
//!
//! Each layer wraps what was there before it (as axum's `Router::layer` does): the last added sees
//! a call first and its reply last. Without layers the call path is the one it always was: no box,
//! no clone.
//!
//! ```
//! use std::task::{Context as TaskContext, Poll};
//! use probe_runtime::middleware::{BoxError, ServerCall};
//! use probe_runtime::codec::ApplicationExceptionKind;
//! use probe_runtime::service::{BoxFuture, Reply};
//!
//! /// Lets only callers whose appkey is listed in.
//! #[derive(Clone)]
//! struct AllowAppkeys<S> { inner: S, allowed: &'static [&'static str] }
//!
//! impl<S> tower::Service<ServerCall> for AllowAppkeys<S>
//! where
//!     S: tower::Service<ServerCall, Response = Reply, Error = BoxError>,
//!     S::Future: Send + 'static,
//! {
//!     type Response = Reply;
//!     type Error = BoxError;
//!     type Future = BoxFuture<'static, Result<Reply, BoxError>>;
//!
//!     fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
//!         self.inner.poll_ready(cx)
//!     }
//!
//!     fn call(&mut self, call: ServerCall) -> Self::Future {
//!         if !call.caller_appkey().is_some_and(|a| self.allowed.contains(&a)) {
//!             let reply = call.reject(ApplicationExceptionKind::Unknown, "caller not allowed");
//!             return Box::pin(async move { Ok(reply) });
//!         }
//!         Box::pin(self.inner.call(call))
//!     }
//! }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use tower::util::BoxCloneSyncService;

use crate::client::Transport;
use crate::codec::{ApplicationException, MessageHeader};
use crate::context::Context;
use crate::error::Error;
use crate::service::{Dispatch, MethodInfo, Protocol, Request};

// Everything a layer's code names, so that `probe::middleware::*` is enough to write one.
pub use bytes::Bytes;
pub use tower::layer::layer_fn;
pub use tower::{Layer, Service, ServiceExt};

pub use crate::client::Call;
pub use crate::codec::ApplicationExceptionKind;
pub use crate::service::{BoxFuture, Reply};

/// The error type of server layers: any error. A layer that fails a call (rather than replying
/// itself) gets the caller an `InternalError` naming the error.
pub type BoxError = tower::BoxError;

/// A server's stack of layers, type-erased: what each layer wraps.
pub type ServerService = BoxCloneSyncService<ServerCall, Reply, BoxError>;

/// A client's stack of layers, type-erased: what each layer wraps.
pub type ClientService = BoxCloneSyncService<Call, Option<Bytes>, Error>;

/// A call on its way to its handler, as server layers see it.
#[derive(Debug)]
pub struct ServerCall {
    /// The service (its IDL name).
    pub service: &'static str,
    /// The caller's context, for a call that came in a header frame.
    pub context: Option<Context>,
    /// The request, its arguments undecoded.
    pub request: Request,
}

impl ServerCall {
    /// The method, as the service declares it.
    pub fn method(&self) -> &str {
        self.request.method()
    }

    /// The address of the connection the call came on.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.request.peer()
    }

    /// The appkey the caller's verified TLS client certificate names
    /// ([`Context::tls_peer_appkey`]): proved by the handshake, unlike [`ServerCall::caller_appkey`].
    pub fn tls_peer_appkey(&self) -> Option<&str> {
        self.request.tls_peer_appkey()
    }

    /// The calling application, if the caller said ([`Context::caller_appkey`]).
    pub fn caller_appkey(&self) -> Option<&str> {
        self.context.as_ref().and_then(Context::caller_appkey)
    }

    /// A reply that answers the call with a `TApplicationException` of `kind` saying `message`,
    /// without running the handler (none for a oneway call).
    pub fn reject(&self, kind: ApplicationExceptionKind, message: impl Into<String>) -> Reply {
        self.request.exception(&ApplicationException::new(kind, message))
    }
}

/// Adds layer `L` on top of a server stack.
pub(crate) type ServerLayerFn = Arc<dyn Fn(ServerService) -> ServerService + Send + Sync>;

/// `layer` as a function from stack to stack.
pub(crate) fn server_layer<L>(layer: L) -> ServerLayerFn
where
    L: Layer<ServerService> + Send + Sync + 'static,
    L::Service: Service<ServerCall, Response = Reply> + Clone + Send + Sync + 'static,
    <L::Service as Service<ServerCall>>::Error: Into<BoxError>,
    <L::Service as Service<ServerCall>>::Future: Send + 'static,
{
    Arc::new(move |inner| ServerService::new(layer.layer(inner).map_err(Into::into)))
}

/// A service with layers around its dispatch: what the server routes to when it has layers.
pub(crate) struct Layered {
    service_name: &'static str,
    methods: &'static [MethodInfo],
    stack: ServerService,
}

impl Layered {
    /// `service` under `layers` (the last outermost).
    pub(crate) fn new(service: Arc<dyn Dispatch>, layers: &[ServerLayerFn]) -> Layered {
        let (service_name, methods) = (service.service_name(), service.methods());
        let mut stack = ServerService::new(Handler(service));
        for layer in layers {
            stack = layer(stack);
        }
        Layered { service_name, methods, stack }
    }
}

impl Dispatch for Layered {
    fn service_name(&self) -> &'static str {
        self.service_name
    }

    fn methods(&self) -> &'static [MethodInfo] {
        self.methods
    }

    fn dispatch(&self, request: Request) -> BoxFuture<'_, Reply> {
        let (protocol, header, limits) = (request.protocol(), request.header().clone(), request.limits());
        let call = ServerCall { service: self.service_name, context: Context::current(), request };
        let stack = self.stack.clone();
        Box::pin(async move {
            match stack.oneshot(call).await {
                Ok(reply) => reply,
                Err(e) => failed(protocol, header, limits, &e),
            }
        })
    }
}

/// The `InternalError` reply to a call a layer failed.
fn failed(protocol: Protocol, header: MessageHeader, limits: crate::codec::Limits, e: &BoxError) -> Reply {
    let request = Request::new(protocol, header, Bytes::new(), limits);
    request.internal_error(&Error::handler(format!("middleware: {e}")))
}

/// The innermost server service: the handler.
#[derive(Clone)]
struct Handler(Arc<dyn Dispatch>);

impl Service<ServerCall> for Handler {
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Reply, BoxError>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    /// Runs the handler; a panic becomes the `InternalError` reply here, so that the layers see
    /// the outcome of every call.
    fn call(&mut self, call: ServerCall) -> Self::Future {
        let service = self.0.clone();
        let request = &call.request;
        let (protocol, header, limits) = (request.protocol(), request.header().clone(), request.limits());
        Box::pin(async move {
            let handler = std::panic::AssertUnwindSafe(service.dispatch(call.request));
            match futures_util::FutureExt::catch_unwind(handler).await {
                Ok(reply) => Ok(reply),
                Err(panic) => {
                    let what = crate::server::panic_message(panic.as_ref());
                    let method = crate::codec::shown_method(&header.name);
                    tracing::error!(method = %method, panic = %what, "handler panicked");
                    let why = format!("the handler of `{}` panicked", header.name);
                    Ok(Request::new(protocol, header, Bytes::new(), limits)
                        .internal_error(&Error::handler(why)))
                }
            }
        })
    }
}

/// Adds a client layer on top of a client stack.
pub(crate) type ClientLayerFn = Arc<dyn Fn(ClientService) -> ClientService + Send + Sync>;

/// `layer` as a function from stack to stack.
pub(crate) fn client_layer<L>(layer: L) -> ClientLayerFn
where
    L: Layer<ClientService> + Send + Sync + 'static,
    L::Service: Service<Call, Response = Option<Bytes>, Error = Error> + Clone + Send + Sync + 'static,
    <L::Service as Service<Call>>::Future: Send + 'static,
{
    Arc::new(move |inner| ClientService::new(layer.layer(inner)))
}

/// The innermost client service: a transport.
#[derive(Clone)]
pub(crate) struct TransportService(pub(crate) Arc<dyn Transport>);

impl Service<Call> for TransportService {
    type Response = Option<Bytes>;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Option<Bytes>, Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let transport = self.0.clone();
        Box::pin(async move { transport.send(call).await })
    }
}

/// A transport with client layers around it.
pub(crate) struct LayeredTransport {
    protocol: Protocol,
    timeout: Option<std::time::Duration>,
    stack: ClientService,
}

impl LayeredTransport {
    /// `transport` under `layer`.
    pub(crate) fn new(transport: Arc<dyn Transport>, layer: &ClientLayerFn) -> LayeredTransport {
        let (protocol, timeout) = (transport.protocol(), transport.timeout());
        LayeredTransport { protocol, timeout, stack: layer(ClientService::new(TransportService(transport))) }
    }
}

impl Transport for LayeredTransport {
    fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn send(&self, call: Call) -> BoxFuture<'_, Result<Option<Bytes>, Error>> {
        Box::pin(self.stack.clone().oneshot(call))
    }

    fn timeout(&self) -> Option<std::time::Duration> {
        self.timeout
    }
}
