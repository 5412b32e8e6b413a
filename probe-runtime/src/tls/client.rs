//! A client's TLS: the CA bundle servers are verified against, an optional client certificate,
//! and the server name to verify; loaded again when the files change.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rustls_pki_types::ServerName;
use tracing::{error, info};

use super::error::{TlsError, TlsFile};
use super::files::{self, Watched};

/// A client's TLS settings; [`ClientTls::load`] reads the files.
///
/// ```
/// use probe_runtime::tls::ClientTls;
///
/// let tls = ClientTls::new("/etc/probe/ca.pem").identity("/etc/probe/client.pem", "/etc/probe/client.key");
/// assert!(tls.cert.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientTls {
    /// The CA bundle server certificates are verified against (PEM).
    pub ca: PathBuf,
    /// The client's certificate chain (PEM), for servers that ask for one.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// The name server certificates must be valid for. Default `None`: the host of the address
    /// connected to (an IP address is checked against the certificate's IP SANs).
    pub server_name: Option<String>,
    /// How often, at most, the files are checked for changes (modification time and length):
    /// when a connection is opened and this long has passed since the last look. A change loads
    /// them again, and connections opened after it use them (a renewed client certificate, a
    /// CA bundle that trusts a new issuer); open connections keep theirs. Default 1 s.
    pub reload_interval: Duration,
}

impl ClientTls {
    /// Default [`ClientTls::reload_interval`].
    pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

    /// Verifies servers against the CA bundle at `ca`; no client certificate.
    pub fn new(ca: impl Into<PathBuf>) -> Self {
        ClientTls {
            ca: ca.into(),
            cert: None,
            key: None,
            server_name: None,
            reload_interval: Self::DEFAULT_RELOAD_INTERVAL,
        }
    }

    /// Presents the certificate chain at `cert` with its key at `key` to servers that ask.
    pub fn identity(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert = Some(cert.into());
        self.key = Some(key.into());
        self
    }

    /// Verifies every server's certificate for `name` instead of the host connected to.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// [`ClientTls::reload_interval`] (at least 10 ms).
    pub fn reload_interval(mut self, every: Duration) -> Self {
        self.reload_interval = every.max(Duration::from_millis(10));
        self
    }

    /// Reads the files: the configuration transports share. Clones share its reloads too.
    pub fn load(&self) -> Result<TlsClient, TlsError> {
        let files = Watched::new(self.files());
        let config = self.config()?;
        let server_name = match &self.server_name {
            None => None,
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|e| {
                TlsError::Settings(format!(
                    "the TLS server name {name:?} (PROBE_CLIENT_TLS_SERVER_NAME, `client.tls.server_name`) \
                     is neither a DNS name nor an IP address: {e}"
                ))
            })?),
        };
        let state = ClientTlsState {
            config: ArcSwap::new(config),
            files,
            next_look: Mutex::new(Instant::now() + self.reload_interval),
        };
        Ok(TlsClient { settings: self.clone(), state: Arc::new(state), server_name })
    }

    /// The files read, in order: CA bundle, certificate, key.
    fn files(&self) -> Vec<PathBuf> {
        [Some(&self.ca), self.cert.as_ref(), self.key.as_ref()].into_iter().flatten().cloned().collect()
    }

    /// The rustls configuration of these settings, read from the files now.
    fn config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let roots = files::roots(&self.ca, TlsFile::ServerCa)?;
        let builder = rustls::ClientConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Settings(format!("the TLS provider offers no protocol version: {e}")))?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert_path), Some(key_path)) => {
                let certs = files::certs(cert_path, TlsFile::ClientCert)?;
                let key = files::key(key_path, TlsFile::ClientKey)?;
                builder.with_client_auth_cert(certs, key).map_err(|e| TlsError::KeyMismatch {
                    cert: cert_path.clone(),
                    cert_file: TlsFile::ClientCert,
                    key: key_path.clone(),
                    key_file: TlsFile::ClientKey,
                    problem: e.to_string(),
                })?
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(TlsError::Settings(format!(
                    "a client certificate needs its key and a key its certificate: set both {} and {}",
                    TlsFile::ClientCert.setting(),
                    TlsFile::ClientKey.setting()
                )));
            }
        };
        Ok(Arc::new(config))
    }
}

/// A client's loaded TLS configuration: cheap to clone, shared by the transports that use it
/// (clones share the configuration and its reloads). Two are equal when loaded from the same
/// settings.
#[derive(Clone)]
pub struct TlsClient {
    settings: ClientTls,
    state: Arc<ClientTlsState>,
    server_name: Option<ServerName<'static>>,
}

/// The configuration new connections get, swapped when the files change.
struct ClientTlsState {
    config: ArcSwap<rustls::ClientConfig>,
    files: Watched,
    /// When the files are next looked at, as a connection opens.
    next_look: Mutex<Instant>,
}

impl ClientTlsState {
    /// Whether the files are due a look now; the one caller told so looks, the others do not
    /// until the next interval.
    fn look_due(&self, every: Duration) -> bool {
        let now = Instant::now();
        let mut next = self.next_look.lock().unwrap_or_else(PoisonError::into_inner);
        if now < *next {
            return false;
        }
        *next = now + every;
        true
    }

    /// Loads the files again if any changed since the last look; a file that does not load keeps
    /// the configuration in use, with one error logged per change.
    fn reload_if_changed(&self, settings: &ClientTls) {
        if !self.files.changed() {
            return;
        }
        match settings.config() {
            Ok(config) => {
                self.config.store(config);
                self.files.reloaded();
                info!(ca = %settings.ca.display(), "client TLS files changed: new connections use them");
            }
            Err(e) => error!(
                error = %e,
                "client TLS files changed but cannot be used: new connections keep the previous ones"
            ),
        }
    }
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

impl TlsClient {
    /// The settings it was loaded from.
    pub fn settings(&self) -> &ClientTls {
        &self.settings
    }

    /// The name to verify a server at `host` for: the override, else `host`.
    pub(crate) fn server_name(&self, host: &str) -> Result<ServerName<'static>, String> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned()).map_err(|e| {
            format!(
                "{host:?} cannot be checked against a certificate ({e}); set the TLS server name \
                 (PROBE_CLIENT_TLS_SERVER_NAME)"
            )
        })
    }

    /// The connector for a new connection. If [`ClientTls::reload_interval`] has passed since
    /// the files were last looked at, they are looked at first (off the runtime's workers: a
    /// stat of up to three files, and a read of them if one changed). A client has no task of its
    /// own to watch them with, and opens connections seldom: looking as one opens costs nothing
    /// in between.
    pub(crate) async fn connector(&self) -> tokio_rustls::TlsConnector {
        if self.state.look_due(self.settings.reload_interval) {
            let (state, settings) = (Arc::clone(&self.state), self.settings.clone());
            let _ = tokio::task::spawn_blocking(move || state.reload_if_changed(&settings)).await;
        }
        tokio_rustls::TlsConnector::from(self.state.config.load_full())
    }

    /// Loads of changed files that took, so far.
    pub fn reloads(&self) -> u64 {
        self.state.files.reloads()
    }
}
