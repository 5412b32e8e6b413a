//! The runtime behind probe's generated code and governance. Users depend on the `probe` facade
//! crate, which re-exports what they need from here.
//!
//! - [`codec`] and [`transport`]: the Thrift binary and compact protocols, framed and unframed, with
//!   limits that bad input cannot pass;
//! - [`server`]: one port for every kind of Thrift client, registration with the registry,
//!   graceful shutdown; [`client`]: pooled and multiplexed connections, and [`client::ClusterTransport`]
//!   balancing over discovered nodes with fail-over, retry budget and ejection;
//! - [`registry`]: the layout shared with the Python design, the backend traits with ZooKeeper,
//!   Redis and MySQL implementations and embedded twins, and the [`registry::Operator`] actions;
//! - [`discovery`]: routing tables kept current by registry watches; [`balance`]: the balancers;
//! - [`config`]: settings from TOML files and `PROBE_*` variables;
//! - [`context`]: per-call metadata (caller, request id, deadline, priority, trace context, user
//!   headers) carried in THeader frames, read by handlers and set by clients.
//!
//! A provider and a client on embedded backends, in one process:
//!
//! ```
//! use probe_runtime::client::{Channel, ClusterOptions};
//! use probe_runtime::config::Config;
//! use probe_runtime::registry::layout::{Env, NodeKey};
//! use probe_runtime::registry::{App, Backends};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let backends = Backends::connect(&Config::embedded()).await?;
//! backends.apps.add(&App::new("demo_app")).await?;
//! // A server registers with `Server::builder().add_provider(handler).register(backends.clone())`;
//! // a client finds every provider of a service through the registry:
//! let channel = Channel::discover(&backends, "demo_app", "Demo", ClusterOptions::default()).await?;
//! # let _ = channel;
//! let key = NodeKey::new(Env::Dev, "demo_app", "Demo", "10.0.0.7", 9090)?;
//! assert_eq!(key.zk_node_path(), "/services/dev/demo_app/Demo_10.0.0.7_9090");
//! assert_eq!(key.redis_field(), "demo_app|dev|Demo|10.0.0.7|9090");
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```
#![warn(clippy::unwrap_used, missing_docs)]

pub mod balance;
pub mod client;
pub mod codec;
pub mod config;
pub mod context;
mod deadlines;
pub mod discovery;
mod error;
pub mod metrics;
pub mod middleware;
pub mod server;
pub mod service;
mod set_once;
#[cfg(feature = "otel")]
pub mod telemetry;
pub mod tls;
pub mod transport;

pub use error::{CallError, Error, NoException};
pub mod limits;
pub mod registry;
pub mod rules;
pub mod security;
