//! The client side of generated code: a [`Channel`] carries encoded calls to some [`Transport`];
//! [`TcpTransport`] carries them to one server over TCP.

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
pub use tcp::{TcpTransport, TcpTransportBuilder};
