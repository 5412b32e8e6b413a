//! Test certificates (rcgen, ring): a CA per test and the certificates it issues, written as PEM
//! files in a fresh directory under the system's temporary directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate authority and the directory its files go to.
pub struct Pki {
    pub dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and key written to files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Pki {
    /// A new CA named `name`, its certificate at `<dir>/ca.pem`.
    pub fn new(name: &str) -> Pki {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("probe-tls-{}-{name}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("probe test CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca }
    }

    /// The CA's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server certificate for 127.0.0.1 and localhost, as `<stem>.pem` and `<stem>.key`.
    pub fn server(&self, stem: &str) -> Issued {
        self.issue(stem, "probe test server", &[SanType::IpAddress([127, 0, 0, 1].into()), dns("localhost")])
    }

    /// A client certificate naming `appkey` in a SPIFFE URI SAN (its CN says something else).
    pub fn client_uri(&self, stem: &str, appkey: &str) -> Issued {
        let uri = SanType::URI(format!("spiffe://probe.test/appkey/{appkey}").try_into().unwrap());
        self.issue(stem, "a client, not an appkey", &[uri])
    }

    /// A client certificate whose subject CN is `cn`.
    pub fn client_cn(&self, stem: &str, cn: &str) -> Issued {
        self.issue(stem, cn, &[])
    }

    fn issue(&self, stem: &str, cn: &str, sans: &[SanType]) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans.to_vec();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let issued =
            Issued { cert: self.dir.join(format!("{stem}.pem")), key: self.dir.join(format!("{stem}.key")) };
        write_atomically(&issued.cert, cert.pem().as_bytes());
        write_atomically(&issued.key, key.serialize_pem().as_bytes());
        issued
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().unwrap())
}

/// Writes `bytes` to `path` by renaming a file written beside it, as certificate renewals do.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
