//! The client side of generated code: a [`Channel`] carries encoded calls to some [`Transport`];
//! [`TcpTransport`] carries them to one server over TCP.
//!
//! On a call's path, functions that take the call by value are written `fn ... -> impl Future
//! { async move { ... } }` rather than `async fn`: an `async fn`'s future keeps each by-value
//! argument twice (as passed, and the local it is moved into), and a call's future is copied
//! whole at each level as the call starts. Cold parts (connecting, waiting for room in a write
//! queue, a pooled connection's call) are boxed out of it.

#![allow(clippy::manual_async_fn, reason = "async blocks keep by-value arguments once (see above)")]

mod channel;
mod cluster;
mod endpoint;
pub(crate) mod header;
mod mux;
mod pool;
mod tcp;
mod theader;

pub use channel::{Call, CallOptions, Channel, Transport};
pub use cluster::{ClusterOptions, ClusterTransport, HedgeConfig};
pub use tcp::{TcpTransport, TcpTransportBuilder, default_mux_connections};
