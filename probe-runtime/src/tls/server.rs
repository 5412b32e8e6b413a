//! A server's TLS: its mode, certificate and key, client certificates, and the rustls
//! configuration they make, reloaded when the files change.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::WebPkiClientVerifier;
use tracing::{error, info};

use super::error::{TlsError, TlsFile};
use super::files::{self, Watched};

/// Whether a server's port speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TlsMode {
    /// Plaintext only (the default).
    #[default]
    Off,
    /// TLS and plaintext on the one port, told apart by each connection's first byte: for a
    /// fleet migrating to TLS, whose plaintext (Python) clients keep working.
    Optional,
    /// TLS only: a plaintext peer's first call is answered with a `TApplicationException` saying
    /// the port requires TLS, and the connection is closed.
    Required,
}

impl TlsMode {
    /// `off`, `optional` or `required`: as settings and node data write it.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Off => "off",
            TlsMode::Optional => "optional",
            TlsMode::Required => "required",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(TlsMode::Off),
            "optional" => Ok(TlsMode::Optional),
            "required" => Ok(TlsMode::Required),
            _ => Err(format!("{text:?} is not a TLS mode (off, optional or required)")),
        }
    }
}

/// Whether a TLS server asks its clients for certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientAuth {
    /// No client certificates (the default).
    #[default]
    None,
    /// A client may present one; when it does, it must verify against the CA bundle.
    Optional,
    /// Every TLS client must present one that verifies against the CA bundle.
    Required,
}

impl ClientAuth {
    /// `none`, `optional` or `required`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientAuth {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(ClientAuth::None),
            "optional" => Ok(ClientAuth::Optional),
            "required" => Ok(ClientAuth::Required),
            _ => Err(format!("{text:?} is not a client certificate mode (none, optional or required)")),
        }
    }
}

/// A server's TLS settings: see [`ServerBuilder::tls`](crate::server::ServerBuilder::tls).
///
/// ```
/// use probe_runtime::tls::{ClientAuth, ServerTls, TlsMode};
///
/// let tls = ServerTls::new("/etc/probe/server.pem", "/etc/probe/server.key")
///     .mode(TlsMode::Optional)
///     .client_auth(ClientAuth::Optional, "/etc/probe/clients-ca.pem");
/// assert_eq!(tls.mode, TlsMode::Optional);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerTls {
    /// TLS only, or TLS and plaintext. Default [`TlsMode::Required`] ([`TlsMode::Off`] serves no
    /// TLS whatever the files).
    pub mode: TlsMode,
    /// The certificate chain, PEM, the server's certificate first.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// Client certificates. Default [`ClientAuth::None`].
    pub client_auth: ClientAuth,
    /// The CA bundle client certificates are verified against (PEM); needed unless
    /// `client_auth` is [`ClientAuth::None`].
    pub client_ca: Option<PathBuf>,
    /// How often the files are checked for changes (modification time and length); a change
    /// loads them again and new connections use them, without a restart. Default 1 s.
    pub reload_interval: Duration,
}

impl ServerTls {
    /// Default [`ServerTls::reload_interval`].
    pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

    /// TLS required, with the certificate chain at `cert` and its key at `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        ServerTls {
            mode: TlsMode::Required,
            cert: cert.into(),
            key: key.into(),
            client_auth: ClientAuth::None,
            client_ca: None,
            reload_interval: Self::DEFAULT_RELOAD_INTERVAL,
        }
    }

    /// [`ServerTls::mode`].
    pub fn mode(mut self, mode: TlsMode) -> Self {
        self.mode = mode;
        self
    }

    /// Asks clients for certificates verified against the CA bundle at `ca`.
    pub fn client_auth(mut self, auth: ClientAuth, ca: impl Into<PathBuf>) -> Self {
        self.client_auth = auth;
        self.client_ca = Some(ca.into());
        self
    }

    /// [`ServerTls::reload_interval`] (at least 10 ms).
    pub fn reload_interval(mut self, every: Duration) -> Self {
        self.reload_interval = every.max(Duration::from_millis(10));
        self
    }

    /// The files read, in order: certificate, key, client CA.
    fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.cert.clone(), self.key.clone()];
        files.extend(self.client_ca.clone());
        files
    }

    /// The rustls configuration of these settings, read from the files now.
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certs = files::certs(&self.cert, TlsFile::ServerCert)?;
        let key = files::key(&self.key, TlsFile::ServerKey)?;
        let provider = super::provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Settings(format!("the TLS provider offers no protocol version: {e}")))?;
        let builder = match (self.client_auth, &self.client_ca) {
            (ClientAuth::None, _) => builder.with_no_client_auth(),
            (auth, Some(ca)) => {
                let roots = Arc::new(files::roots(ca, TlsFile::ClientCa)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                let verifier = match auth {
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier.build().map_err(|e| TlsError::Content {
                    file: TlsFile::ClientCa,
                    path: ca.clone(),
                    problem: format!("no client certificate verifier can be made of it ({e})"),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            (auth, None) => {
                return Err(TlsError::Settings(format!(
                    "client certificates are {auth}, but no CA bundle verifies them: set {} or \
                     ServerTls::client_auth(auth, ca)",
                    TlsFile::ClientCa.setting()
                )));
            }
        };
        let config = builder.with_single_cert(certs, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                cert: self.cert.clone(),
                cert_file: TlsFile::ServerCert,
                key: self.key.clone(),
                key_file: TlsFile::ServerKey,
                problem: e.to_string(),
            },
            e => TlsError::Content {
                file: TlsFile::ServerKey,
                path: self.key.clone(),
                problem: format!("rustls refuses the certificate and key ({e})"),
            },
        })?;
        Ok(Arc::new(config))
    }
}

/// A server's TLS while it runs: the configuration new connections get, swapped when the files
/// change.
#[derive(Debug)]
pub(crate) struct ServerTlsState {
    settings: ServerTls,
    config: ArcSwap<rustls::ServerConfig>,
    files: Watched,
}

impl ServerTlsState {
    /// Loads the files (failing on a bad one) and starts checking them every
    /// [`ServerTls::reload_interval`] until the state is dropped. Needs a tokio runtime.
    pub(crate) fn start(settings: ServerTls) -> Result<Arc<ServerTlsState>, TlsError> {
        let files = Watched::new(settings.files());
        let config = settings.load()?;
        let state = Arc::new(ServerTlsState { config: ArcSwap::new(config), files, settings });
        tokio::spawn(watch(Arc::downgrade(&state), state.settings.reload_interval));
        Ok(state)
    }

    pub(crate) fn mode(&self) -> TlsMode {
        self.settings.mode
    }

    /// The configuration for a new connection.
    pub(crate) fn config(&self) -> Arc<rustls::ServerConfig> {
        self.config.load_full()
    }

    /// Successful reloads so far.
    pub(crate) fn reloads(&self) -> u64 {
        self.files.reloads()
    }

    /// Loads the files again if any changed since last time; a file that does not load keeps the
    /// configuration in use, with one error logged per change.
    fn reload_if_changed(&self) {
        if !self.files.changed() {
            return;
        }
        match self.settings.load() {
            Ok(config) => {
                self.config.store(config);
                self.files.reloaded();
                info!(cert = %self.settings.cert.display(), "TLS files changed: new connections use them");
            }
            Err(e) => error!(
                error = %e,
                "TLS files changed but cannot be used: new connections keep the previous certificate"
            ),
        }
    }
}

/// Checks the files of `state` every `every` until it is dropped. A stat of two or three files
/// per second costs microseconds; checking at each handshake would add those system calls to
/// every connection instead.
async fn watch(state: Weak<ServerTlsState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        // Reading files blocks: off the runtime's workers.
        let _ = tokio::task::spawn_blocking(move || state.reload_if_changed()).await;
    }
}
