//! What to tell an operator when TLS to Redis or MySQL fails: the server's certificate was refused
//! (name the CA setting and the bundle in use), or the port does not speak TLS.
//!
//! The client libraries wrap rustls' error in their own (redis: in an `Arc` around an
//! `io::Error`; mysql_async: in its `TlsError`); [`rustls_error`] finds it through those layers.

use std::error::Error;
use std::io;
use std::sync::Arc;

use rustls::CertificateError;

use crate::config::{CaBundle, Setting};

/// A sentence on what to change when `err` is a TLS failure, naming `setting` (the backend's CA
/// setting) and the bundle `ca` in use; `None` when `err` has no TLS failure in it.
pub(crate) fn hint(err: &(dyn Error + 'static), setting: Setting, ca: Option<&CaBundle>) -> Option<String> {
    let tls = rustls_error(err)?;
    let trusted = match ca {
        Some(ca) => format!("the CAs in {ca}, from {setting}"),
        None => format!("the public roots, as {setting} is not set"),
    };
    Some(match tls {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the server's TLS certificate does not name the host in the URL: connect by a name or \
             address the certificate lists (it was checked against {trusted})"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's TLS certificate has expired: renew it".to_owned(),
        rustls::Error::InvalidCertificate(_) => format!(
            "the server's TLS certificate is not signed by a CA probe trusts ({trusted}): set {setting} \
             to a PEM file of the CA certificates that signed it"
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server did not answer in TLS: check that the port is its TLS port, or use a URL \
             without TLS for a plain port"
                .to_owned()
        }
        other => format!("TLS failed ({other}); the server's certificate is checked against {trusted}"),
    })
}

/// The rustls error in `err`'s chain of sources, looking inside `io::Error`s and `Arc`s, which do
/// not list what they wrap as a source.
pub(crate) fn rustls_error<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(found) = unwrap(err) {
            return Some(found);
        }
        next = err.source();
    }
    None
}

fn unwrap<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
        return rustls_error(inner);
    }
    if let Some(inner) = err.downcast_ref::<Arc<dyn Error + Send + Sync>>() {
        return rustls_error(inner.as_ref());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown_issuer() -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    }

    #[test]
    fn finds_rustls_errors_inside_io_errors_and_arcs() {
        let io = io::Error::new(io::ErrorKind::InvalidData, unknown_issuer());
        let arc: Arc<dyn Error + Send + Sync> = Arc::new(io);
        let wrapped: &(dyn Error + 'static) = &arc;
        assert_eq!(rustls_error(wrapped), Some(&unknown_issuer()));
        let plain = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(rustls_error(&plain), None);
        assert_eq!(hint(&plain, Setting::RedisTlsCa, None), None);
    }

    #[test]
    fn a_refused_certificate_names_the_ca_setting() {
        let err = io::Error::new(io::ErrorKind::InvalidData, unknown_issuer());
        let text = hint(&err, Setting::MySqlTlsCa, None).unwrap();
        assert_eq!(
            text,
            "the server's TLS certificate is not signed by a CA probe trusts (the public roots, as \
             PROBE_MYSQL_TLS_CA (`mysql_tls_ca`) is not set): set PROBE_MYSQL_TLS_CA (`mysql_tls_ca`) \
             to a PEM file of the CA certificates that signed it"
        );
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(hint(&name, Setting::RedisTlsCa, None).unwrap().contains("does not name the host"));
        let plain_port = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert!(hint(&plain_port, Setting::RedisTlsCa, None).unwrap().contains("did not answer in TLS"));
    }
}
