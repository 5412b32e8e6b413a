//! The runtime behind probe's generated code.
//!
//! Users depend on the `probe` facade crate, which re-exports what they need from here. This crate
//! grows, issue by issue, into:
//!
//! - the Thrift wire: binary and compact protocols, framed and unframed transports;
//! - `Server` and `Channel`/clients with pooling and multiplexing;
//! - discovery, balancing and governance on ZooKeeper, Redis and MySQL, plus embedded backends;
//! - per-call metrics.
//!
//! What is here now is the registry contract shared with the Python services probe replaces:
//! [`registry::layout`] names every ZooKeeper path, Redis key and JSON field of that layout.
//!
//! ```
//! use probe_runtime::registry::layout::{Env, NodeKey};
//!
//! let key = NodeKey::new(Env::Dev, "demo_app", "Demo", "10.0.0.7", 9090)?;
//! assert_eq!(key.zk_node_path(), "/services/dev/demo_app/Demo_10.0.0.7_9090");
//! assert_eq!(key.redis_field(), "demo_app|dev|Demo|10.0.0.7|9090");
//! # Ok::<(), probe_runtime::registry::layout::NameError>(())
//! ```
#![warn(clippy::unwrap_used, missing_docs)]

pub mod balance;
pub mod client;
pub mod codec;
pub mod config;
pub mod discovery;
mod error;
pub mod server;
pub mod service;
pub mod transport;

pub use error::{CallError, Error, NoException};
pub mod registry;
