//! The CA bundles probe trusts for TLS to its backends: `redis_tls_ca` (`PROBE_REDIS_TLS_CA`) for
//! `rediss://` URLs and `mysql_tls_ca` (`PROBE_MYSQL_TLS_CA`) for MySQL URLs with
//! `?require_ssl=true`.
//!
//! A bundle is a PEM file of one or more CA certificates, read and checked when the configuration
//! loads, so a wrong path or a file of something else is a configuration error naming the setting,
//! not a TLS failure at the first connection. When a bundle is set, the backend trusts only its
//! CAs (a private CA; not the system's roots too). PEM parsing is rustls-pki-types' and the check
//! that each certificate can be a trust anchor is rustls' own, the crates that verify the servers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::backend::{AppsBackend, SettingsBackend};
use super::error::{ConfigError, InvalidValue, Origin};
use super::setting::Setting;

/// A checked PEM bundle of CA certificates, with the path it came from (for messages).
#[derive(Clone, PartialEq, Eq)]
pub struct CaBundle {
    path: PathBuf,
    pem: Arc<[u8]>,
    count: usize,
}

impl CaBundle {
    /// Reads the PEM file at `path` and checks it holds at least one usable CA certificate.
    pub fn read(path: impl AsRef<Path>) -> Result<CaBundle, InvalidValue> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|err| {
            InvalidValue::new(format!("cannot read the CA bundle {}: {err}", path.display()))
        })?;
        CaBundle::from_pem(path, pem)
    }

    /// `pem`, the content of the file at `path`, checked as [`CaBundle::read`] checks a file.
    pub fn from_pem(path: impl Into<PathBuf>, pem: impl Into<Vec<u8>>) -> Result<CaBundle, InvalidValue> {
        let (path, pem) = (path.into(), pem.into());
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| InvalidValue::new(format!("{} is not valid PEM: {err}", path.display())))?;
        if certs.is_empty() {
            return Err(InvalidValue::new(format!(
                "{} holds no certificate: give a PEM file of the CA certificates (-----BEGIN \
                 CERTIFICATE-----) that signed the server's certificate",
                path.display()
            )));
        }
        let count = certs.len();
        let (_, unusable) = RootCertStore::empty().add_parsable_certificates(certs);
        if unusable > 0 {
            return Err(InvalidValue::new(format!(
                "{} of the {count} certificates in {} cannot be parsed as CA certificates",
                unusable,
                path.display()
            )));
        }
        Ok(CaBundle { path, pem: pem.into(), count })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The PEM text, as the Redis and MySQL client libraries take it.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// How many certificates it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a bundle holds at least one certificate.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle").field("path", &self.path).field("certificates", &self.count).finish()
    }
}

impl fmt::Display for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

/// A CA bundle a source gave, and where.
pub(super) type GivenCa = (CaBundle, Origin);

/// Puts the CA bundles given into the Redis and MySQL URLs of `config`; an error when a bundle is
/// given for URLs that do not use TLS, which would leave the connection in plain text.
pub(super) fn apply(
    settings: &mut Option<SettingsBackend>,
    apps: &mut Option<AppsBackend>,
    redis_ca: Option<GivenCa>,
    mysql_ca: Option<GivenCa>,
) -> Result<(), ConfigError> {
    if let Some((ca, origin)) = redis_ca {
        let fail =
            |problem| ConfigError::invalid(Setting::RedisTlsCa, origin.clone(), &ca.to_string(), problem);
        let urls = match settings {
            Some(SettingsBackend::Redis(url)) => std::slice::from_mut(url),
            Some(SettingsBackend::RedisCluster(seeds)) => seeds.as_mut_slice(),
            _ => &mut [],
        };
        for url in urls {
            *url = url.clone().with_ca(ca.clone()).map_err(fail)?;
        }
    }
    if let (Some((ca, origin)), Some(AppsBackend::MySql(url))) = (mysql_ca, apps) {
        let fail =
            |problem| ConfigError::invalid(Setting::MySqlTlsCa, origin.clone(), &ca.to_string(), problem);
        *url = url.clone().with_ca(ca.clone()).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A self-signed CA certificate (openssl, valid until 2126): the test parses it, nothing trusts it.
    pub(in crate::config) const CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBlTCCATugAwIBAgIUQUqw6v1aFtp26bK1wLvb9VERHVgwCgYIKoZIzj0EAwIw\n\
HzEdMBsGA1UEAwwUcHJvYmUgY29uZmlnIHRlc3QgQ0EwIBcNMjYxMjA1MDczMDQw\n\
WhgPMjEyNjExMTEwNzMwNDBaMB8xHTAbBgNVBAMMFHByb2JlIGNvbmZpZyB0ZXN0\n\
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE+acl1IusjyNR4XnbqQ5D72fB\n\
FdVacAG+sqY+ibJddue3lXPqBmC69+3fz9EJj+Jngu2hycKfvRmNGdeuYCQmeaNT\n\
MFEwHQYDVR0OBBYEFLpk34GMG/2Z8mx6xezP057pnSDGMB8GA1UdIwQYMBaAFLpk\n\
34GMG/2Z8mx6xezP057pnSDGMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID\n\
SAAwRQIhAM5dA6N3ULOEuKXTvtZuqYKpNVaJw1PK41ljYZBud1TBAiBQyljFZW5b\n\
ylVMf+2BVHFxozxN61/N2L/lLyjqqyBfrQ==\n\
-----END CERTIFICATE-----\n\
";

    fn ca_pem() -> String {
        CA_PEM.to_owned()
    }

    #[test]
    fn a_bundle_holds_certificates() {
        let pem = ca_pem() + &ca_pem();
        let bundle = CaBundle::from_pem("/etc/probe/ca.pem", pem.clone()).unwrap();
        assert_eq!((bundle.len(), bundle.pem()), (2, pem.as_bytes()));
        assert_eq!(bundle.to_string(), "/etc/probe/ca.pem");
        assert_eq!(format!("{bundle:?}"), "CaBundle { path: \"/etc/probe/ca.pem\", certificates: 2 }");
    }

    #[test]
    fn other_files_are_refused_naming_the_path() {
        let problem = |pem: &str| CaBundle::from_pem("ca.pem", pem).unwrap_err().problem().to_owned();
        assert!(problem("").starts_with("ca.pem holds no certificate"), "{}", problem(""));
        let key_only = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(problem(key_only).starts_with("ca.pem holds no certificate"));
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(problem(garbage), "1 of the 1 certificates in ca.pem cannot be parsed as CA certificates");
        let broken = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert!(problem(broken).starts_with("ca.pem is not valid PEM"), "{}", problem(broken));
        let missing = CaBundle::read("/nonexistent/probe-ca.pem").unwrap_err();
        assert!(missing.problem().starts_with("cannot read the CA bundle /nonexistent/probe-ca.pem"));
    }
}
