//! TLS on the RPC port: the `[server.tls]` and `[client.tls]` settings (`PROBE_SERVER_TLS_*`,
//! `PROBE_CLIENT_TLS_*`), what one source gave of them, and the [`ServerTls`] and loaded
//! [`TlsClient`] they make.
//!
//! A server's files are read when it starts (and again when they change); a client's are read
//! when the configuration loads, so a wrong path is a configuration error naming the setting (and
//! again when they change, as it opens connections).

use std::path::PathBuf;

use super::error::{ConfigError, InvalidValue, Origin};
use super::options::{ClientConfig, ServerConfig};
use super::setting::Setting;
use crate::tls::{ClientAuth, ClientTls, ServerTls, TlsMode};

/// A value a source gave, and where.
type Given<T> = Option<(T, Origin)>;

/// What one source gave of the RPC TLS settings; `None` for those it left out.
#[derive(Debug, Clone, Default)]
pub(super) struct RpcTlsSettings {
    mode: Given<TlsMode>,
    cert: Given<PathBuf>,
    key: Given<PathBuf>,
    client_ca: Given<PathBuf>,
    client_auth: Given<ClientAuth>,
    ca: Given<PathBuf>,
    client_cert: Given<PathBuf>,
    client_key: Given<PathBuf>,
    server_name: Given<String>,
}

impl RpcTlsSettings {
    /// Sets `setting` (one of the TLS ones) from `value`; `false` for another setting.
    pub(super) fn set(
        &mut self,
        setting: Setting,
        value: &str,
        origin: &Origin,
    ) -> Result<bool, InvalidValue> {
        let path = || Some((PathBuf::from(value), origin.clone()));
        match setting {
            Setting::ServerTlsMode => {
                self.mode = Some((value.parse().map_err(InvalidValue::new)?, origin.clone()))
            }
            Setting::ServerTlsCert => self.cert = path(),
            Setting::ServerTlsKey => self.key = path(),
            Setting::ServerTlsClientCa => self.client_ca = path(),
            Setting::ServerTlsClientAuth => {
                self.client_auth = Some((value.parse().map_err(InvalidValue::new)?, origin.clone()))
            }
            Setting::ClientTlsCa => self.ca = path(),
            Setting::ClientTlsCert => self.client_cert = path(),
            Setting::ClientTlsKey => self.client_key = path(),
            Setting::ClientTlsServerName => self.server_name = Some((value.to_owned(), origin.clone())),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// These settings with every one `top` gives replaced by `top`'s value.
    pub(super) fn under(self, top: RpcTlsSettings) -> RpcTlsSettings {
        RpcTlsSettings {
            mode: top.mode.or(self.mode),
            cert: top.cert.or(self.cert),
            key: top.key.or(self.key),
            client_ca: top.client_ca.or(self.client_ca),
            client_auth: top.client_auth.or(self.client_auth),
            ca: top.ca.or(self.ca),
            client_cert: top.client_cert.or(self.client_cert),
            client_key: top.client_key.or(self.client_key),
            server_name: top.server_name.or(self.server_name),
        }
    }

    /// Writes the server's and the client's TLS into `server` and `client`, reading the client's
    /// files; an error names the setting that is missing or whose file cannot be used.
    pub(super) fn apply(
        self,
        server: &mut ServerConfig,
        client: &mut ClientConfig,
    ) -> Result<(), ConfigError> {
        if let Some((mode, origin)) = &self.mode
            && *mode != TlsMode::Off
        {
            let missing = |setting: Setting| {
                ConfigError::invalid(
                    Setting::ServerTlsMode,
                    origin.clone(),
                    mode.as_str(),
                    InvalidValue::new(format!("TLS needs a certificate and its key: set {setting} too")),
                )
            };
            let (cert, _) = self.cert.clone().ok_or_else(|| missing(Setting::ServerTlsCert))?;
            let (key, _) = self.key.clone().ok_or_else(|| missing(Setting::ServerTlsKey))?;
            let mut tls = ServerTls::new(cert, key).mode(*mode);
            match (&self.client_auth, &self.client_ca) {
                (None | Some((ClientAuth::None, _)), _) => {}
                (Some((auth, _)), Some((ca, _))) => tls = tls.client_auth(*auth, ca.clone()),
                (Some((auth, origin)), None) => {
                    return Err(ConfigError::invalid(
                        Setting::ServerTlsClientAuth,
                        origin.clone(),
                        auth.as_str(),
                        InvalidValue::new(format!(
                            "client certificates need the CA bundle that verifies them: set {}",
                            Setting::ServerTlsClientCa
                        )),
                    ));
                }
            }
            server.tls = Some(tls);
        }
        if let Some((ca, origin)) = self.ca {
            let mut tls = ClientTls::new(&ca);
            if let (Some((cert, _)), Some((key, _))) = (&self.client_cert, &self.client_key) {
                tls = tls.identity(cert, key);
            } else if self.client_cert.is_some() != self.client_key.is_some() {
                let setting =
                    if self.client_cert.is_some() { Setting::ClientTlsKey } else { Setting::ClientTlsCert };
                return Err(ConfigError::invalid(
                    Setting::ClientTlsCa,
                    origin,
                    &ca.display().to_string(),
                    InvalidValue::new(format!("a client certificate needs both files: set {setting} too")),
                ));
            }
            if let Some((name, _)) = self.server_name {
                tls = tls.server_name(name);
            }
            let loaded = tls.load().map_err(|e| {
                ConfigError::invalid(
                    Setting::ClientTlsCa,
                    origin,
                    &ca.display().to_string(),
                    InvalidValue::new(e.to_string()),
                )
            })?;
            client.tls = Some(loaded);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::tls::{ClientAuth, TlsMode};

    fn load(vars: &[(&str, &str)]) -> Result<Config, String> {
        let embedded =
            [("PROBE_ZOOKEEPER", "embedded"), ("PROBE_REDIS", "embedded"), ("PROBE_MYSQL", "embedded")];
        Config::from_vars(embedded.iter().chain(vars).copied()).map_err(|e| e.to_string())
    }

    #[test]
    fn server_tls_needs_a_certificate_and_key_and_takes_client_auth() {
        assert_eq!(load(&[]).unwrap().server.tls, None);
        assert_eq!(
            load(&[("PROBE_SERVER_TLS_MODE", "off"), ("PROBE_SERVER_TLS_CERT", "/c")]).unwrap().server.tls,
            None
        );
        let err = load(&[("PROBE_SERVER_TLS_MODE", "required"), ("PROBE_SERVER_TLS_KEY", "/k")]).unwrap_err();
        assert!(err.contains("set PROBE_SERVER_TLS_CERT (`server.tls.cert`) too"), "{err}");
        let err = load(&[("PROBE_SERVER_TLS_MODE", "sometimes")]).unwrap_err();
        assert!(
            err.contains("PROBE_SERVER_TLS_MODE=\"sometimes\"") && err.contains("`off`, `optional`"),
            "{err}"
        );
        let tls = [
            ("PROBE_SERVER_TLS_MODE", "Optional"),
            ("PROBE_SERVER_TLS_CERT", "/etc/probe/s.pem"),
            ("PROBE_SERVER_TLS_KEY", "/etc/probe/s.key"),
            ("PROBE_SERVER_TLS_CLIENT_AUTH", "required"),
        ];
        let err = load(&tls).unwrap_err();
        assert!(err.contains("set PROBE_SERVER_TLS_CLIENT_CA"), "{err}");
        let with_ca: Vec<_> =
            tls.iter().copied().chain([("PROBE_SERVER_TLS_CLIENT_CA", "/etc/probe/ca.pem")]).collect();
        let server = load(&with_ca).unwrap().server.tls.unwrap();
        assert_eq!((server.mode, server.client_auth), (TlsMode::Optional, ClientAuth::Required));
        assert_eq!(server.client_ca.as_deref(), Some(std::path::Path::new("/etc/probe/ca.pem")));
    }

    #[test]
    fn client_tls_files_are_read_when_the_configuration_loads() {
        assert_eq!(load(&[]).unwrap().client.tls, None);
        let err = load(&[("PROBE_CLIENT_TLS_CA", "/nonexistent/probe-ca.pem")]).unwrap_err();
        assert!(err.contains("/nonexistent/probe-ca.pem") && err.contains("PROBE_CLIENT_TLS_CA"), "{err}");
        let err = load(&[("PROBE_CLIENT_TLS_CA", "/x"), ("PROBE_CLIENT_TLS_CERT", "/c")]).unwrap_err();
        assert!(err.contains("set PROBE_CLIENT_TLS_KEY (`client.tls.key`) too"), "{err}");
        let dir = std::env::temp_dir().join(format!("probe-rpc-tls-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let pem = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem();
        std::fs::write(&ca, pem).unwrap();
        let vars = [
            ("PROBE_CLIENT_TLS_CA", ca.to_str().unwrap()),
            ("PROBE_CLIENT_TLS_SERVER_NAME", "probe.internal"),
        ];
        let client = load(&vars).unwrap().client.tls.unwrap();
        assert_eq!(client.settings().server_name.as_deref(), Some("probe.internal"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
