//! Per-call monitoring: every call a server handles or a client makes is counted with its outcome
//! and latency per service, method and node, in atomics found without locks.
//!
//! - A server keeps a fixed table of its (service, method) series; a client a series per
//!   (service, method, node), plus each node's connect, send and wait times.
//! - The process's [`global`] registry renders them all as Prometheus text on a server's optional
//!   admin port (`GET /metrics`, `GET /health`).
//! - A registered server publishes each node's last window (QPS, error rate, p50, p99, per method
//!   too) to the metrics store every few seconds, with a TTL, for the console.
//! - Each call runs in a `tracing` span (`call`, debug level) with its service, method, node and
//!   a [`RequestId`]; a client's attempts get an `attempt` span each.
//!
//! Monitoring is on by default; turn it off per server with
//! [`ServerBuilder::metrics`](crate::server::ServerBuilder::metrics), per client with
//! [`ClusterOptions::metrics`](crate::client::ClusterOptions::metrics) or
//! [`TcpTransportBuilder::metrics`](crate::client::TcpTransportBuilder::metrics).
//!
//! ```no_run
//! # async fn run(service: impl probe_runtime::service::Dispatch) -> Result<(), probe_runtime::server::ServeError> {
//! use probe_runtime::server::Server;
//!
//! let server = Server::builder().add_service(service).admin_addr(([0, 0, 0, 0], 9091)).start("0.0.0.0:9090").await?;
//! println!("metrics on http://{}/metrics", server.admin_addr().expect("asked for"));
//! // The same text, in process:
//! let text = probe_runtime::metrics::global().render();
//! # Ok(())
//! # }
//! ```

mod admin;
mod client;
pub(crate) mod fast_hash;
mod faults;
mod histogram;
mod method_table;
mod outcome;
mod prometheus;
mod publisher;
mod registry;
mod request_id;
mod rules;
mod server;
pub(crate) mod sharded;
pub(crate) mod spans;
mod stats;
mod unusable;
mod window;

pub use admin::AdminServer;
pub(crate) use client::NodeRecorder;
pub(crate) use fast_hash::FastMap;
pub use faults::ClientFaults;
pub use histogram::{Histogram, HistogramSnapshot};
pub use outcome::Outcome;
pub use prometheus::CONTENT_TYPE;
pub use publisher::Publisher;
pub use registry::{ClientSeries, MetricsRegistry, global};
pub use request_id::RequestId;
pub use rules::RuleState;
pub use server::{SeriesId, ServerStats};
pub use stats::{CallSnapshot, CallStats, PhaseStats};
pub use window::{MethodSnapshots, WindowTracker, node_window};

/// How often a registered server publishes its windows, unless configured otherwise.
pub const DEFAULT_PUBLISH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
