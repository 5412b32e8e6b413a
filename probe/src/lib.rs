//! probe: Thrift RPC for Rust with service governance built in.
//!
//! Write a `.thrift` file, compile it from `build.rs` with `probe-build`, implement the generated
//! trait, mark the `impl` with [`service`], and serve it: probe registers the node in ZooKeeper,
//! keeps its settings in Redis, checks its appkey in MySQL, and lets clients discover and balance
//! over the nodes of a service.
//!
//! ```
//! # mod generated { pub trait Echo { fn echo(&self, s: String) -> String; } }
//! # use generated::Echo;
//! struct EchoHandler;
//!
//! #[probe::service(appkey = "echo_app")]
//! impl Echo for EchoHandler {
//!     fn echo(&self, s: String) -> String { s }
//! }
//!
//! let node = probe::registry::layout::NodeKey::new(
//!     probe::registry::layout::Env::Dev, EchoHandler::APPKEY, "Echo", "127.0.0.1", 9090)?;
//! assert_eq!(node.zk_node_path(), "/services/dev/echo_app/Echo_127.0.0.1_9090");
//! # Ok::<(), probe::registry::layout::NameError>(())
//! ```

pub use probe_macros::service;
pub use probe_runtime::registry;
