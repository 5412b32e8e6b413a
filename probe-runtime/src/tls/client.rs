//! A client's TLS: the CA bundle servers are verified against, an optional client certificate,
//! and the server name to verify.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::ServerName;

use super::error::{TlsError, TlsFile};
use super::files;

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
}

impl ClientTls {
    /// Verifies servers against the CA bundle at `ca`; no client certificate.
    pub fn new(ca: impl Into<PathBuf>) -> Self {
        ClientTls { ca: ca.into(), cert: None, key: None, server_name: None }
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

    /// Reads the files: the configuration transports share.
    pub fn load(&self) -> Result<TlsClient, TlsError> {
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
        let server_name = match &self.server_name {
            None => None,
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|e| {
                TlsError::Settings(format!(
                    "the TLS server name {name:?} (PROBE_CLIENT_TLS_SERVER_NAME, `client.tls.server_name`) \
                     is neither a DNS name nor an IP address: {e}"
                ))
            })?),
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        Ok(TlsClient { settings: self.clone(), connector, server_name })
    }
}

/// A client's loaded TLS configuration: cheap to clone, shared by the transports that use it.
/// Two are equal when loaded from the same settings.
#[derive(Clone)]
pub struct TlsClient {
    settings: ClientTls,
    connector: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
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

    pub(crate) fn connector(&self) -> &tokio_rustls::TlsConnector {
        &self.connector
    }
}
