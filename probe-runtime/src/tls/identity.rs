//! The appkey a verified client certificate names: a URI SAN `spiffe://<trust domain>/appkey/<appkey>`,
//! else a subject CN that is an appkey (`^\w+$`). Parsed with x509-parser (rusticata), as rustls
//! only verifies the chain and webpki exposes no URI names.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The appkey of the end-entity certificate `der`, if it names one.
pub fn certificate_appkey(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let from_uri = san.value.general_names.iter().find_map(|name| match name {
            GeneralName::URI(uri) => spiffe_appkey(uri),
            _ => None,
        });
        if let Some(appkey) = from_uri {
            return Some(appkey.to_owned());
        }
    }
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    is_appkey(cn).then(|| cn.to_owned())
}

/// `<appkey>` of `spiffe://<trust domain>/appkey/<appkey>`.
fn spiffe_appkey(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("spiffe://")?;
    let (domain, path) = rest.split_once('/')?;
    let appkey = path.strip_prefix("appkey/")?;
    (!domain.is_empty() && is_appkey(appkey)).then_some(appkey)
}

/// `^\w+$` as Python's `re` reads it on `str`: Unicode letters, digits and `_`.
fn is_appkey(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_uris_name_an_appkey() {
        assert_eq!(spiffe_appkey("spiffe://corp.example/appkey/order_app"), Some("order_app"));
        assert_eq!(spiffe_appkey("spiffe://x/appkey/"), None);
        assert_eq!(spiffe_appkey("spiffe:///appkey/a"), None);
        assert_eq!(spiffe_appkey("spiffe://x/appkey/a/b"), None);
        assert_eq!(spiffe_appkey("spiffe://x/workload/a"), None);
        assert_eq!(spiffe_appkey("https://x/appkey/a"), None);
    }

    #[test]
    fn certificates_name_their_appkey_by_uri_then_cn() {
        let cert = |cn: &str, sans: Vec<rcgen::SanType>| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name.push(rcgen::DnType::CommonName, cn);
            params.subject_alt_names = sans;
            params.self_signed(&key).unwrap().der().to_vec()
        };
        let uri = |s: &str| rcgen::SanType::URI(s.try_into().unwrap());
        let by_uri = cert("not an appkey", vec![uri("spiffe://corp/appkey/billing"), uri("https://x")]);
        assert_eq!(certificate_appkey(&by_uri).as_deref(), Some("billing"));
        assert_eq!(certificate_appkey(&cert("order_app", vec![])).as_deref(), Some("order_app"));
        assert_eq!(certificate_appkey(&cert("order-app", vec![])), None);
        assert_eq!(certificate_appkey(b"not a certificate"), None);
    }
}
