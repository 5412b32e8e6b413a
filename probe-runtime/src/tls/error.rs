//! Why TLS could not be set up: every message names the file and the setting that points at it,
//! never key material.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A file TLS reads, and the setting that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFile {
    /// The server's certificate chain (`PROBE_SERVER_TLS_CERT`).
    ServerCert,
    /// The server's private key (`PROBE_SERVER_TLS_KEY`).
    ServerKey,
    /// The CA bundle a server verifies client certificates against (`PROBE_SERVER_TLS_CLIENT_CA`).
    ClientCa,
    /// The CA bundle a client verifies servers against (`PROBE_CLIENT_TLS_CA`).
    ServerCa,
    /// The client's certificate chain (`PROBE_CLIENT_TLS_CERT`).
    ClientCert,
    /// The client's private key (`PROBE_CLIENT_TLS_KEY`).
    ClientKey,
}

impl TlsFile {
    /// What the file is, in words.
    pub fn what(self) -> &'static str {
        match self {
            TlsFile::ServerCert => "the server certificate",
            TlsFile::ServerKey => "the server private key",
            TlsFile::ClientCa => "the CA bundle for client certificates",
            TlsFile::ServerCa => "the CA bundle for server certificates",
            TlsFile::ClientCert => "the client certificate",
            TlsFile::ClientKey => "the client private key",
        }
    }

    /// The setting that names it: environment variable and config-file key.
    pub fn setting(self) -> &'static str {
        match self {
            TlsFile::ServerCert => "PROBE_SERVER_TLS_CERT (`server.tls.cert`)",
            TlsFile::ServerKey => "PROBE_SERVER_TLS_KEY (`server.tls.key`)",
            TlsFile::ClientCa => "PROBE_SERVER_TLS_CLIENT_CA (`server.tls.client_ca`)",
            TlsFile::ServerCa => "PROBE_CLIENT_TLS_CA (`client.tls.ca`)",
            TlsFile::ClientCert => "PROBE_CLIENT_TLS_CERT (`client.tls.cert`)",
            TlsFile::ClientKey => "PROBE_CLIENT_TLS_KEY (`client.tls.key`)",
        }
    }

    /// What the file must hold.
    fn holds(self) -> &'static str {
        match self {
            TlsFile::ServerCert | TlsFile::ClientCert => {
                "PEM certificates (-----BEGIN CERTIFICATE-----), the end-entity certificate first"
            }
            TlsFile::ServerKey | TlsFile::ClientKey => {
                "a PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"
            }
            TlsFile::ClientCa | TlsFile::ServerCa => "PEM CA certificates (-----BEGIN CERTIFICATE-----)",
        }
    }
}

impl fmt::Display for TlsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what())
    }
}

/// Why TLS settings cannot be used.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {file} {path} (set by {setting}): {source}", path = .path.display(), setting = .file.setting())]
    Read {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file holds nothing usable.
    #[error(
        "{file} {path} (set by {setting}) is not usable: {problem}; it must hold {holds}",
        path = .path.display(), setting = .file.setting(), holds = .file.holds()
    )]
    Content {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// What is wrong (never the key's bytes).
        problem: String,
    },
    /// The private key is not the certificate's.
    #[error(
        "the private key {key} ({key_setting}) does not belong to the certificate {cert} \
         ({cert_setting}): {problem}; give the key the certificate was issued for",
        key = .key.display(), cert = .cert.display(),
        key_setting = .key_file.setting(), cert_setting = .cert_file.setting()
    )]
    KeyMismatch {
        /// The certificate file and which one it is.
        cert: PathBuf,
        /// Which certificate.
        cert_file: TlsFile,
        /// The key file.
        key: PathBuf,
        /// Which key.
        key_file: TlsFile,
        /// What rustls said.
        problem: String,
    },
    /// The settings do not fit together (client certificates required without a CA bundle, a
    /// client certificate without its key, a bad server name).
    #[error("{0}")]
    Settings(String),
}

crate::debug_as_display!(TlsError);

impl TlsError {
    /// The file this error is about, if it is about one.
    pub fn file(&self) -> Option<TlsFile> {
        match self {
            TlsError::Read { file, .. } | TlsError::Content { file, .. } => Some(*file),
            TlsError::KeyMismatch { key_file, .. } => Some(*key_file),
            TlsError::Settings(_) => None,
        }
    }
}
