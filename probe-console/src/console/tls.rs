//! HTTPS for the console: the certificate and key `probe console --tls-cert --tls-key` names, and a
//! listener that hands axum TLS connections.
//!
//! [`TlsListener`] implements axum's [`Listener`], so HTTPS goes through the same `axum::serve`
//! (graceful shutdown, peer addresses for the login limit) as plain HTTP. It runs the TLS
//! handshakes of new connections side by side, each within [`HANDSHAKE_TIMEOUT`] and at most
//! [`MAX_HANDSHAKES`] at once, so a client that stalls its handshake holds up no one. rustls (the
//! `ring` provider) and tokio-rustls do the TLS; axum-server would do the same with its own serve
//! loop in place of axum's, and its rustls feature brings aws-lc-rs.
//!
//! With TLS on, the session cookie is `Secure` ([`auth`](super::auth)): a browser sends it over
//! HTTPS only.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many TLS handshakes may be under way at once; further connections wait in the listen
/// backlog until one finishes.
pub const MAX_HANDSHAKES: usize = 256;

/// The console's certificate chain and private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleTls {
    /// The certificate chain, the console's own certificate first (`--tls-cert`).
    pub cert: PathBuf,
    /// Its private key (`--tls-key`).
    pub key: PathBuf,
}

/// Which of the two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFile {
    /// The certificate chain.
    Cert,
    /// The private key.
    Key,
}

impl fmt::Display for TlsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFile::Cert => "TLS certificate (--tls-cert, PROBE_CONSOLE_TLS_CERT)",
            TlsFile::Key => "TLS key (--tls-key, PROBE_CONSOLE_TLS_KEY)",
        })
    }
}

/// Why the console's TLS files cannot be used. Messages name the file, never key material.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleTlsError {
    /// A file cannot be read.
    #[error("cannot read the console's {file} {}: {source}", .path.display())]
    Read {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file holds something else than expected.
    #[error("the console's {file} {}: {problem}", .path.display())]
    Content {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refuses the pair (most often: the key is not the certificate's).
    #[error(
        "the console's TLS key {} does not go with its certificate {} ({problem}): give the key the \
         certificate was made for",
        .key.display(), .cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' words.
        problem: String,
    },
}

probe_runtime::debug_as_display!(ConsoleTlsError);

impl ConsoleTls {
    /// The certificate chain at `cert` and its key at `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        ConsoleTls { cert: cert.into(), key: key.into() }
    }

    /// The rustls server configuration of these files, read now (TLS 1.2 and 1.3, HTTP/1.1).
    pub fn load(&self) -> Result<Arc<ServerConfig>, ConsoleTlsError> {
        let pem = read(&self.cert, TlsFile::Cert)?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| content(&self.cert, TlsFile::Cert, format!("it is not valid PEM ({err})")))?;
        if certs.is_empty() {
            return Err(content(
                &self.cert,
                TlsFile::Cert,
                "it holds no certificate: give a PEM file (-----BEGIN CERTIFICATE-----), the console's \
                 certificate first",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&read(&self.key, TlsFile::Key)?).map_err(|_| {
            content(
                &self.key,
                TlsFile::Key,
                "it holds no usable private key: give a PEM file (-----BEGIN PRIVATE KEY-----, RSA \
                 PRIVATE KEY or EC PRIVATE KEY)",
            )
        })?;
        // ring is the one provider probe builds with; rustls deprecates it only for lacking
        // post-quantum key exchange.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|err| ConsoleTlsError::Mismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
                problem: err.to_string(),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn read(path: &Path, file: TlsFile) -> Result<Vec<u8>, ConsoleTlsError> {
    std::fs::read(path).map_err(|source| ConsoleTlsError::Read { file, path: path.to_owned(), source })
}

fn content(path: &Path, file: TlsFile, problem: impl Into<String>) -> ConsoleTlsError {
    ConsoleTlsError::Content { file, path: path.to_owned(), problem: problem.into() }
}

type Handshake = BoxFuture<'static, Option<Box<(TlsStream<TcpStream>, SocketAddr)>>>;

/// A TCP listener whose connections axum gets after their TLS handshake.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: FuturesUnordered<Handshake>,
}

impl fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("addr", &self.tcp.local_addr().ok())
            .field("handshakes", &self.handshakes.len())
            .finish()
    }
}

impl TlsListener {
    /// TLS with `config` on the connections of `tcp`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> Self {
        TlsListener { tcp, acceptor: TlsAcceptor::from(config), handshakes: FuturesUnordered::new() }
    }
}

/// What happened first: a new TCP connection, or a handshake ended (boxed: a TLS stream is large).
enum Event {
    Accepted(io::Result<(TcpStream, SocketAddr)>),
    Handshaken(Option<Box<(TlsStream<TcpStream>, SocketAddr)>>),
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.handshakes.len() < MAX_HANDSHAKES;
            let busy = !self.handshakes.is_empty();
            let event = tokio::select! {
                accepted = self.tcp.accept(), if room => Event::Accepted(accepted),
                Some(done) = self.handshakes.next(), if busy => Event::Handshaken(done),
            };
            match event {
                Event::Accepted(Ok((tcp, peer))) => {
                    self.handshakes.push(Box::pin(handshake(self.acceptor.clone(), tcp, peer)));
                }
                Event::Accepted(Err(err)) => accept_failed(err).await,
                Event::Handshaken(Some(done)) => return *done,
                Event::Handshaken(None) => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<Box<(TlsStream<TcpStream>, SocketAddr)>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(Box::new((tls, peer))),
        Ok(Err(err)) => {
            // Browsers that do not trust the certificate end here ("received fatal alert").
            tracing::debug!(%peer, error = %err, "console: TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "console: TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}");
            None
        }
    }
}

/// As axum's own TCP listener does: errors of one connection are ignored, others (out of file
/// descriptors) are logged and accepting pauses for a second.
async fn accept_failed(err: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(err.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %err, "console: cannot accept connections; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
