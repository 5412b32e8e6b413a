//! What a generated `FooServer<H>` implements so that a server can route calls to it.

use std::future::Future;
use std::pin::Pin;

use super::{Reply, Request};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the IDL says about one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    /// The method's Thrift name.
    pub name: &'static str,
    /// `oneway`: no reply is sent.
    pub oneway: bool,
    /// Marked `(probe.idempotent)`: the client may retry it after a failure that may have reached
    /// the server.
    pub idempotent: bool,
}

/// One Thrift service as the server sees it: generated for every IDL service.
pub trait Dispatch: Send + Sync + 'static {
    /// The IDL service name (the multiplexing prefix `Service:`).
    fn service_name(&self) -> &'static str;

    /// Every method, inherited ones included.
    fn methods(&self) -> &'static [MethodInfo];

    /// Handles one call. Never fails: errors become a `TApplicationException` reply.
    fn dispatch(&self, request: Request) -> BoxFuture<'_, Reply>;
}
