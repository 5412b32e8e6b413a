//! TLS on the RPC port, with rustls (the `ring` provider).
//!
//! A server serves TLS in one of two modes ([`TlsMode`]): `required`, TLS only, or `optional`, TLS
//! and plaintext on one port, told apart by each connection's first byte (a TLS ClientHello
//! starts `0x16 0x03`, which no Thrift framing or protocol starts with), so a fleet can move to
//! TLS while its Python clients still speak plaintext. A plaintext peer of a `required` port gets
//! a `TApplicationException` saying so, in the protocol it spoke, and the connection closes; the
//! TLS handshake counts against the handshake timeout.
//!
//! Client certificates are optional ([`ClientAuth`]); a verified one's appkey (a URI SAN
//! `spiffe://<trust domain>/appkey/<appkey>`, else a subject CN matching `^\w+$`) is the
//! connection's peer identity, which handlers read with
//! [`Context::tls_peer_appkey`](crate::context::Context::tls_peer_appkey) and server middleware
//! with [`ServerCall::tls_peer_appkey`](crate::middleware::ServerCall::tls_peer_appkey).
//!
//! A server's certificate, key and client CA files are checked every second (modification time
//! and length) and loaded again when they change, without a restart; a file that does not load
//! keeps the previous configuration, and an error naming the file is logged. A client's CA bundle,
//! certificate and key are checked the same way as it opens a connection, at most once per
//! [`ClientTls::reload_interval`]; connections opened after a change use the new files.
//!
//! ```no_run
//! # async fn run(service: impl probe_runtime::service::Dispatch) -> Result<(), Box<dyn std::error::Error>> {
//! use probe_runtime::client::{Channel, TcpTransport};
//! use probe_runtime::server::Server;
//! use probe_runtime::tls::{ClientTls, ServerTls, TlsMode};
//!
//! let server = Server::builder()
//!     .add_service(service)
//!     .tls(ServerTls::new("server.pem", "server.key").mode(TlsMode::Optional))
//!     .start("127.0.0.1:9090")
//!     .await?;
//! let tls = ClientTls::new("ca.pem").load()?;
//! let channel = Channel::new(TcpTransport::builder("127.0.0.1:9090").tls(tls).build());
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod files;
mod identity;
mod server;
mod stream;

pub use client::{ClientTls, TlsClient};
pub use error::{TlsError, TlsFile};
pub use identity::certificate_appkey;
pub(crate) use server::ServerTlsState;
pub use server::{ClientAuth, ServerTls, TlsMode};
pub(crate) use stream::{ClientStream, connect};

use std::sync::Arc;

use crate::registry::layout::NodeData;

/// The node-data field a TLS provider advertises its mode in (`"tls": "optional"` or
/// `"required"`); Python clients ignore it, and a node without it serves plaintext.
pub const NODE_FIELD: &str = "tls";

/// Writes `mode` into a node's data (removes the field for no TLS).
pub(crate) fn advertise(data: &mut NodeData, mode: Option<TlsMode>) {
    match mode {
        Some(mode @ (TlsMode::Optional | TlsMode::Required)) => {
            data.extra.insert(NODE_FIELD.to_owned(), mode.as_str().into());
        }
        _ => {
            data.extra.remove(NODE_FIELD);
        }
    }
}

/// The TLS mode a node advertises: [`TlsMode::Off`] without the field or with a value probe does
/// not know.
pub fn advertised(data: &NodeData) -> TlsMode {
    match data.extra.get(NODE_FIELD).and_then(serde_json::Value::as_str) {
        Some(mode) => mode.parse().unwrap_or(TlsMode::Off),
        None => TlsMode::Off,
    }
}

/// The first byte of a TLS record carrying a handshake (a ClientHello opens every TLS connection).
pub(crate) const HANDSHAKE_RECORD: u8 = 0x16;

/// rustls' `ring` provider (never the process default: others may install theirs). Deprecated in
/// rustls for want of post-quantum key exchange; the project takes ring because aws-lc-rs needs
/// cmake to build.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
