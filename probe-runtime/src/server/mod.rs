//! The Thrift server: one port, one or more services, every kind of client.
//!
//! Each connection's protocol (binary or compact) and framing is detected from its first bytes.
//! Requests on a connection run concurrently and replies go back as they complete, matched by
//! the client through their seqid. With several services on the port, calls name theirs
//! Apache `TMultiplexedProtocol` style (`Service:method`); with one, plain names work too.
//!
//! ```no_run
//! # use probe_runtime::service::Dispatch;
//! # async fn run(service: impl Dispatch) -> Result<(), probe_runtime::server::ServeError> {
//! use probe_runtime::server::Server;
//! use std::time::Duration;
//!
//! let server = Server::builder()
//!     .add_service(service)
//!     .read_timeout(Duration::from_secs(30))
//!     .start("0.0.0.0:9090")
//!     .await?;
//! println!("listening on {}", server.local_addr());
//! // ... later: stop accepting, let calls in flight finish, close.
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Misbehaving peers cannot hurt the others: input is bounded by [`Limits`](crate::codec::Limits),
//! a connection that sends something undecodable gets a `TApplicationException` where its seqid
//! is known and is closed, idle connections are closed after the read timeout, and each
//! connection runs at most `max_in_flight` calls at once.
//!
//! Every call is counted (see [`metrics`](crate::metrics)); [`ServerBuilder::admin_addr`] serves
//! them as Prometheus text, and a registered server publishes short windows of them for the
//! console.

mod admission;
mod builder;
mod call;
mod callers;
mod connection;
mod header_call;
mod limits;
mod monitoring;
mod registration;
mod router;
mod serve;
mod settings;

use builder::ServerConfig;
pub use builder::{ServeError, Server, ServerBuilder, shutdown_signal};
pub(crate) use call::panic_message;
pub(crate) use callers::ServerCallers;
pub use callers::{AppliedPolicy, CallerStats, PolicySource, Refused};
pub(crate) use limits::ServerLimits;
pub use limits::{AppliedLimits, LimitSource, LimitStats};
pub use registration::RegistrationState;
pub use serve::ServerHandle;
