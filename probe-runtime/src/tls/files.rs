//! Reading PEM certificates and keys (rustls-pki-types' `pem` parser), and noticing when the files
//! change.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::{TlsError, TlsFile};

fn read(path: &Path, file: TlsFile) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { file, path: path.to_owned(), source })
}

fn content(path: &Path, file: TlsFile, problem: impl Into<String>) -> TlsError {
    TlsError::Content { file, path: path.to_owned(), problem: problem.into() }
}

/// The certificates in the PEM file at `path`, in order; at least one.
pub(crate) fn certs(path: &Path, file: TlsFile) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path, file)?;
    let mut certs = Vec::new();
    for (i, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        certs.push(
            cert.map_err(|e| content(path, file, format!("PEM section {} does not parse ({e})", i + 1)))?,
        );
    }
    if certs.is_empty() {
        return Err(content(path, file, "it holds no certificate"));
    }
    Ok(certs)
}

/// The private key in the PEM file at `path` (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn key(path: &Path, file: TlsFile) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path, file)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => content(path, file, "it holds no private key"),
        // The parser's own messages name sections and lengths, never key bytes.
        e => content(path, file, format!("the key does not parse ({e})")),
    })
}

/// The CA certificates in the PEM file at `path`, as trust anchors; at least one.
pub(crate) fn roots(path: &Path, file: TlsFile) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs(path, file)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| content(path, file, format!("certificate {} is not a usable CA ({e})", i + 1)))?;
    }
    Ok(roots)
}

/// What a file looked like when last read: changed when its modification time or length is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp(Option<(SystemTime, u64)>);

impl Stamp {
    pub(crate) fn of(path: &Path) -> Stamp {
        Stamp(std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
    }
}

/// The stamps of `paths`, in order.
pub(crate) fn stamps(paths: &[PathBuf]) -> Vec<Stamp> {
    paths.iter().map(|p| Stamp::of(p)).collect()
}

/// Files loaded into a configuration that is loaded again when they change: what they looked
/// like when last read, and how many loads of changed files took.
#[derive(Debug)]
pub(crate) struct Watched {
    paths: Vec<PathBuf>,
    stamps: Mutex<Vec<Stamp>>,
    reloads: AtomicU64,
}

impl Watched {
    /// Watches `paths` as they are now: stamped before they are first read, so a change made
    /// while they are read is seen at the next look.
    pub(crate) fn new(paths: Vec<PathBuf>) -> Watched {
        Watched { stamps: Mutex::new(stamps(&paths)), paths, reloads: AtomicU64::new(0) }
    }

    /// Whether a file changed since the last look; the change counts as seen, loaded or not, so
    /// a file that does not load is reported once per change.
    pub(crate) fn changed(&self) -> bool {
        let now = stamps(&self.paths);
        let mut seen = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        if *seen == now {
            return false;
        }
        *seen = now;
        true
    }

    /// Counts a load of changed files that took, once its configuration is in use (a release:
    /// whoever reads the new count then connects uses it).
    pub(crate) fn reloaded(&self) {
        self.reloads.fetch_add(1, Ordering::Release);
    }

    /// Loads of changed files that took, so far.
    pub(crate) fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Acquire)
    }
}
