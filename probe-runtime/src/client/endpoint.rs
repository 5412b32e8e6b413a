//! The peer a TCP transport talks to: its address, wire and limits, and how to connect to it
//! (with TLS when it has TLS settings).

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::debug;

use crate::codec::Limits;
use crate::error::Error;
use crate::tls::{ClientStream, TlsClient};
use crate::transport::{WireError, WireFormat};

/// One server address and how to talk to it; shared by a transport's connections.
#[derive(Debug)]
pub(super) struct Endpoint {
    /// `host:port`, resolved at each connect.
    pub(super) addr: String,
    pub(super) wire: WireFormat,
    pub(super) limits: Limits,
    pub(super) connect_timeout: Duration,
    /// TLS settings: connections run the TLS handshake before any call.
    pub(super) tls: Option<TlsClient>,
}

impl Endpoint {
    /// Opens a connection with `TCP_NODELAY` (and runs the TLS handshake, with TLS settings),
    /// within the connect timeout.
    pub(super) async fn connect(&self) -> Result<ClientStream, Error> {
        let Some(tls) = &self.tls else {
            return self.connect_tcp().await.map(ClientStream::Plain);
        };
        let handshake = async {
            let tcp = self.connect_tcp().await?;
            let host = self.addr.rsplit_once(':').map_or(self.addr.as_str(), |(host, _)| host);
            crate::tls::connect(tls, host, tcp)
                .await
                .map_err(|source| Error::Connect { peer: self.addr.clone(), source })
        };
        match timeout(self.connect_timeout, handshake).await {
            Ok(Ok(stream)) => {
                debug!(peer = %self.addr, "TLS established");
                Ok(ClientStream::Tls(Box::new(stream)))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::ConnectTimeout {
                peer: self.addr.clone(),
                timeout_ms: millis(self.connect_timeout),
            }),
        }
    }

    /// Opens a TCP connection with `TCP_NODELAY`, within the connect timeout.
    async fn connect_tcp(&self) -> Result<TcpStream, Error> {
        match timeout(self.connect_timeout, TcpStream::connect(self.addr.as_str())).await {
            Err(_) => Err(Error::ConnectTimeout {
                peer: self.addr.clone(),
                timeout_ms: millis(self.connect_timeout),
            }),
            Ok(Err(source)) => Err(Error::Connect { peer: self.addr.clone(), source }),
            Ok(Ok(stream)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    debug!(peer = %self.addr, error = %e, "cannot set TCP_NODELAY");
                }
                debug!(peer = %self.addr, wire = %self.wire, "connected");
                Ok(stream)
            }
        }
    }

    /// A failure of an open connection.
    pub(super) fn io_error(&self, source: io::Error) -> Error {
        Error::Transport { peer: self.addr.clone(), source }
    }

    /// A failure of an open connection, described.
    pub(super) fn broken(&self, kind: io::ErrorKind, why: impl Into<String>) -> Error {
        self.io_error(io::Error::new(kind, why.into()))
    }

    /// A failure to read or write a message.
    pub(super) fn wire_error(&self, e: WireError) -> Error {
        e.into_error(&self.addr)
    }
}

/// A duration in whole milliseconds, for error messages.
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
