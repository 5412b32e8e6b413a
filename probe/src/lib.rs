//! probe: Thrift RPC for Rust with service governance built in.
//!
//! Write a `.thrift` file, compile it from `build.rs` with `probe-build`, include the generated code
//! with [`include_idl!`], implement the generated trait, mark the `impl` with [`service`], and
//! serve it: probe registers the node in ZooKeeper, keeps its settings in Redis, checks its appkey in
//! MySQL, and lets clients discover and balance over the nodes of a service.
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
pub use probe_runtime::client::{CallOptions, Channel, Transport};
pub use probe_runtime::codec::{ApplicationException, ListMap, ListSet};
pub use probe_runtime::registry;
pub use probe_runtime::service::{Dispatch, Protocol};
pub use probe_runtime::{CallError, Error, NoException};

/// Includes the code `probe_build` generated into `OUT_DIR`: one module per IDL file.
///
/// ```text
/// mod idl {
///     probe::include_idl!();
/// }
/// use idl::demo::{DemoClient, DemoServer};
/// ```
#[macro_export]
macro_rules! include_idl {
    () => {
        include!(concat!(env!("OUT_DIR"), "/probe_idl.rs"));
    };
}

/// What generated code uses. Not a public API: it changes with probe-build.
#[doc(hidden)]
pub mod __codegen {
    pub use bytes::Bytes;
    pub use probe_runtime::client::{CallOptions, Channel};
    pub use probe_runtime::codec::{
        Decode, Encode, ListMap, ListSet, ProtocolError, ProtocolReader, ProtocolWriter, TType, Wire,
        required, write_field,
    };
    pub use probe_runtime::service::{
        BoxFuture, Dispatch, Exceptions, MethodInfo, Outcome, Reply, Request, VoidOutcome, serve,
    };
    pub use probe_runtime::struct_wire;
    pub use probe_runtime::{CallError, Error, NoException};
    pub use std::boxed::Box;
    pub use std::clone::Clone;
    pub use std::collections::{HashMap, HashSet};
    pub use std::convert::From;
    pub use std::default::Default;
    pub use std::error::Error as StdError;
    pub use std::fmt;
    pub use std::future::Future;
    pub use std::iter::FromIterator;
    pub use std::marker::{Send, Sync};
    pub use std::option::Option::{self, None, Some};
    pub use std::result::Result::{self, Err, Ok};
    pub use std::string::String;
    pub use std::sync::{Arc, LazyLock};
    pub use std::vec::Vec;
}
