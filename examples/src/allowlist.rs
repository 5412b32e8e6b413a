//! Middleware written by a user: a server layer that lets in only the caller appkeys it lists, and
//! a client layer that names its caller on every call (so the server can tell who calls).
//!
//! ```no_run
//! # use probe::{Backends, Channel, ClusterOptions, Server};
//! # use probe_examples::allowlist::{AllowAppkeys, CallerStamp};
//! # use probe_examples::handler::DemoHandler;
//! # async fn example(backends: Backends) -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder()
//!     .add_provider(DemoHandler::new("n1"))
//!     .layer(AllowAppkeys::layer(["order_app"]))
//!     .start("127.0.0.1:0")
//!     .await?;
//! let channel = Channel::discover(&backends, "demo_app", "Demo", ClusterOptions::default())
//!     .await?
//!     .layer(CallerStamp::layer("order_app", "Order"));
//! # drop((server, channel));
//! # Ok(())
//! # }
//! ```
//!
//! `tests/middleware.rs` runs both against each other.

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use probe::Metadata;
use probe::middleware::{
    ApplicationExceptionKind, BoxError, BoxFuture, Bytes, Call, ClientService, Layer, Reply, ServerCall,
    ServerService, Service, layer_fn,
};

/// Answers calls from callers not on its list with a `TApplicationException` (the handler does
/// not run); lets the others through.
#[derive(Debug, Clone)]
pub struct AllowAppkeys<S> {
    inner: S,
    allowed: Arc<HashSet<String>>,
}

impl AllowAppkeys<ServerService> {
    /// The layer for a server: only `appkeys` may call.
    pub fn layer<I: IntoIterator<Item = &'static str>>(
        appkeys: I,
    ) -> impl Layer<ServerService, Service = AllowAppkeys<ServerService>> + Send + Sync + 'static {
        let allowed: Arc<HashSet<String>> = Arc::new(appkeys.into_iter().map(str::to_owned).collect());
        layer_fn(move |inner| AllowAppkeys { inner, allowed: allowed.clone() })
    }
}

impl<S> Service<ServerCall> for AllowAppkeys<S>
where
    S: Service<ServerCall, Response = Reply, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Reply, BoxError>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: ServerCall) -> Self::Future {
        match call.caller_appkey() {
            Some(appkey) if self.allowed.contains(appkey) => Box::pin(self.inner.call(call)),
            caller => {
                let message = format!("caller {caller:?} may not call {}.{}", call.service, call.method());
                let reply = call.reject(ApplicationExceptionKind::Unknown, message);
                Box::pin(async move { Ok(reply) })
            }
        }
    }
}

/// Sets the caller appkey and service on every call that has no metadata of its own.
#[derive(Debug, Clone)]
pub struct CallerStamp<S> {
    inner: S,
    metadata: Arc<Metadata>,
}

impl CallerStamp<ClientService> {
    /// The layer for a channel: calls say they come from `appkey`'s `service`.
    pub fn layer(
        appkey: &str,
        service: &str,
    ) -> impl Layer<ClientService, Service = CallerStamp<ClientService>> + Send + Sync + 'static {
        let metadata = Arc::new(Metadata::new().caller(appkey, service));
        layer_fn(move |inner| CallerStamp { inner, metadata: metadata.clone() })
    }
}

impl<S> Service<Call> for CallerStamp<S>
where
    S: Service<Call, Response = Option<Bytes>, Error = probe::Error>,
{
    type Response = Option<Bytes>;
    type Error = probe::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), probe::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call) -> Self::Future {
        call.metadata.get_or_insert_with(|| self.metadata.clone());
        self.inner.call(call)
    }
}
