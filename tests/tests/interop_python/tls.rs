//! Certificates for the TLS interop lines (rcgen): one CA, a server certificate for 127.0.0.1,
//! and client certificates naming an appkey in a SPIFFE URI SAN with an IP SAN for 127.0.0.1
//! (Apache's TSSLServerSocket checks a client's address against its IP SANs by default).

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// The PEM files of one test PKI, in a directory removed when dropped.
pub struct Pki {
    dir: PathBuf,
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    /// A client certificate for the appkey `py_app` (Python clients present it).
    pub py_cert: String,
    pub py_key: String,
    /// A client certificate for the appkey `interop_app` (probe clients present it).
    pub probe_cert: String,
    pub probe_key: String,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!("probe-interop-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "probe interop CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path.display().to_string()
        };
        let issue = |stem: &str, cn: &str, sans: Vec<SanType>| {
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.subject_alt_names = sans;
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            (write(&format!("{stem}.pem"), cert.pem()), write(&format!("{stem}.key"), key.serialize_pem()))
        };
        let localhost = || SanType::IpAddress([127, 0, 0, 1].into());
        let spiffe =
            |appkey: &str| SanType::URI(format!("spiffe://interop.test/appkey/{appkey}").try_into().unwrap());
        let (server_cert, server_key) = issue("server", "probe interop server", vec![localhost()]);
        let (py_cert, py_key) = issue("py", "python client", vec![spiffe("py_app"), localhost()]);
        let (probe_cert, probe_key) =
            issue("probe", "probe client", vec![spiffe("interop_app"), localhost()]);
        let ca = write("ca.pem", ca.pem());
        Pki { dir, ca, server_cert, server_key, py_cert, py_key, probe_cert, probe_key }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
