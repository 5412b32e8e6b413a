//! The three backends a configuration chooses: registry, node-settings store and app registry.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::error::InvalidValue;
use super::tls::CaBundle;
use super::url::{self, ParsedUrl};
use super::zookeeper::ZkConnect;

/// Where providers register and clients discover them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryBackend {
    /// A ZooKeeper ensemble.
    ZooKeeper(ZooKeeperConfig),
    /// The in-process registry: one process sees only its own providers.
    Embedded,
}

/// How to reach ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZooKeeperConfig {
    /// The ensemble and chroot.
    pub connect: ZkConnect,
    /// How long the ensemble keeps the session, and so this process's ephemeral nodes, after it
    /// stops hearing from it. Default 10 s, kazoo's default in the Python design.
    pub session_timeout: Duration,
    /// How long to try to reach the ensemble at start. Default 15 s, kazoo's `start()` default.
    pub connect_timeout: Duration,
    /// The app credential sessions authenticate with (digest scheme, user = appkey), so a
    /// provider may register under its app's ACL (`PROBE_APP_CREDENTIAL`). Default none.
    pub app_credential: Option<crate::security::AppCredential>,
    /// The operator's secret sessions authenticate with (user
    /// [`OPERATOR_USER`](crate::security::OPERATOR_USER)), so operator tools may change node data
    /// and ACLs in a secured tree, and create apps' paths secured (`PROBE_ZK_OPERATOR_SECRET`).
    /// Default none.
    pub operator_secret: Option<crate::security::Secret>,
}

impl ZooKeeperConfig {
    /// Default [`ZooKeeperConfig::session_timeout`].
    pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`ZooKeeperConfig::connect_timeout`].
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

    /// The ensemble at `connect`, with default timeouts.
    pub fn new(connect: ZkConnect) -> Self {
        ZooKeeperConfig {
            connect,
            session_timeout: Self::DEFAULT_SESSION_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            app_credential: None,
            operator_secret: None,
        }
    }
}

/// Where node settings (weight, valid flag) outlive the ephemeral registry nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingsBackend {
    /// One Redis server.
    Redis(RedisUrl),
    /// A Redis Cluster, found from these seed nodes.
    RedisCluster(Vec<RedisUrl>),
    /// The in-process store: settings last as long as the process.
    Embedded,
}

/// Where the registered appkeys (`serviceapp`) live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppsBackend {
    /// A MySQL or MariaDB database.
    MySql(MySqlUrl),
    /// The in-process registry: it accepts the appkeys it is given.
    Embedded,
}

/// A checked `redis://` or `rediss://` URL, with the CA bundle a `rediss://` server's certificate
/// is checked against (none: the system's roots). Its password never shows in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(ParsedUrl, Option<CaBundle>);

impl RedisUrl {
    /// Port Redis listens on when the URL leaves it out.
    pub const DEFAULT_PORT: u16 = 6379;

    /// The whole URL, password included, for the client library.
    pub fn as_str(&self) -> &str {
        &self.0.raw
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    /// The port, 6379 when the URL leaves it out.
    pub fn port(&self) -> u16 {
        self.0.port.unwrap_or(Self::DEFAULT_PORT)
    }

    /// Whether it is a `rediss://` URL: TLS to the server.
    pub fn is_tls(&self) -> bool {
        self.0.raw.starts_with("rediss://")
    }

    /// The URL trusting only the CAs of `ca` for TLS (`redis_tls_ca`, `PROBE_REDIS_TLS_CA`); an
    /// error for a `redis://` URL, which would not use it.
    pub fn with_ca(self, ca: CaBundle) -> Result<RedisUrl, InvalidValue> {
        if !self.is_tls() {
            return Err(InvalidValue::new(format!(
                "{self} is not a TLS URL, so the CA bundle would not be used: write rediss:// to \
                 connect over TLS"
            )));
        }
        Ok(RedisUrl(self.0, Some(ca)))
    }

    /// The CA bundle TLS trusts, if one is set.
    pub fn ca(&self) -> Option<&CaBundle> {
        self.1.as_ref()
    }
}

impl FromStr for RedisUrl {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        url::parse(text.trim(), &["redis", "rediss"]).map(|url| RedisUrl(url, None))
    }
}

/// A checked `mysql://` URL that names a database, with the CA bundle the server's certificate is
/// checked against when the URL asks for TLS (`?require_ssl=true`; no bundle: the webpki roots).
/// Its password never shows in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct MySqlUrl(ParsedUrl, Option<CaBundle>);

impl MySqlUrl {
    /// Port MySQL listens on when the URL leaves it out.
    pub const DEFAULT_PORT: u16 = 3306;

    /// The whole URL, password included, for the client library.
    pub fn as_str(&self) -> &str {
        &self.0.raw
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    /// The port, 3306 when the URL leaves it out.
    pub fn port(&self) -> u16 {
        self.0.port.unwrap_or(Self::DEFAULT_PORT)
    }

    /// The database holding the `serviceapp` table.
    pub fn database(&self) -> &str {
        &self.0.path
    }

    /// Whether the URL asks for TLS: `require_ssl=true` in its query, as mysql_async reads it.
    pub fn is_tls(&self) -> bool {
        ::url::Url::parse(&self.0.raw)
            .is_ok_and(|url| url.query_pairs().any(|(key, value)| key == "require_ssl" && value == "true"))
    }

    /// The URL trusting only the CAs of `ca` for TLS (`mysql_tls_ca`, `PROBE_MYSQL_TLS_CA`); an
    /// error for a URL without `require_ssl=true`, which would not use it.
    pub fn with_ca(self, ca: CaBundle) -> Result<MySqlUrl, InvalidValue> {
        if !self.is_tls() {
            return Err(InvalidValue::new(format!(
                "{self} does not ask for TLS, so the CA bundle would not be used: add \
                 ?require_ssl=true to the URL"
            )));
        }
        Ok(MySqlUrl(self.0, Some(ca)))
    }

    /// The CA bundle TLS trusts, if one is set.
    pub fn ca(&self) -> Option<&CaBundle> {
        self.1.as_ref()
    }
}

impl FromStr for MySqlUrl {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let url = url::parse(text.trim(), &["mysql"])?;
        if url.path.is_empty() || url.path.contains('/') {
            return Err(InvalidValue::new(
                "it names no database: end it with /database, the one holding the serviceapp table",
            ));
        }
        Ok(MySqlUrl(url, None))
    }
}

macro_rules! redacted_fmt {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&url::redact(&self.0.raw))
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut tuple = f.debug_tuple(stringify!($ty));
                tuple.field(&url::redact(&self.0.raw));
                if let Some(ca) = &self.1 {
                    tuple.field(ca);
                }
                tuple.finish()
            }
        }
    };
}

redacted_fmt!(RedisUrl);
redacted_fmt!(MySqlUrl);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tls::tests::CA_PEM;

    #[test]
    fn a_ca_bundle_goes_with_tls_urls_only() {
        let ca = CaBundle::from_pem("ca.pem", CA_PEM).unwrap();
        let redis: RedisUrl = "rediss://:pw@cache:6380".parse().unwrap();
        assert!(redis.is_tls() && redis.ca().is_none());
        let redis = redis.with_ca(ca.clone()).unwrap();
        assert_eq!(redis.ca(), Some(&ca));
        assert_eq!(redis.to_string(), "rediss://:***@cache:6380");
        let err = "redis://:pw@cache".parse::<RedisUrl>().unwrap().with_ca(ca.clone()).unwrap_err();
        assert_eq!(
            err.problem(),
            "redis://:***@cache is not a TLS URL, so the CA bundle would not be used: write rediss:// to \
             connect over TLS"
        );
        let mysql: MySqlUrl = "mysql://probe:pw@db/apps?require_ssl=true".parse().unwrap();
        assert!(mysql.is_tls());
        assert_eq!(mysql.with_ca(ca.clone()).unwrap().ca(), Some(&ca));
        for plain in ["mysql://probe:pw@db/apps", "mysql://probe:pw@db/apps?require_ssl=false"] {
            let err = plain.parse::<MySqlUrl>().unwrap().with_ca(ca.clone()).unwrap_err();
            assert!(err.problem().ends_with("add ?require_ssl=true to the URL"), "{err}");
            assert!(!err.problem().contains(":pw@"), "{err}");
        }
    }

    #[test]
    fn urls_keep_the_password_for_the_client_but_never_print_it() {
        let url: MySqlUrl = "mysql://probe:secret@db1/apps".parse().unwrap();
        assert_eq!((url.host(), url.port(), url.database()), ("db1", 3306, "apps"));
        assert_eq!(url.as_str(), "mysql://probe:secret@db1/apps");
        assert_eq!(url.to_string(), "mysql://probe:***@db1/apps");
        assert_eq!(format!("{url:?}"), "MySqlUrl(\"mysql://probe:***@db1/apps\")");
        let redis: RedisUrl = "rediss://:pw@cache:7000/1".parse().unwrap();
        assert_eq!(
            (redis.host(), redis.port(), redis.to_string()),
            ("cache", 7000, "rediss://:***@cache:7000/1".into())
        );
        assert_eq!("redis://cache".parse::<RedisUrl>().unwrap().port(), 6379);
    }

    #[test]
    fn mysql_url_must_name_a_database() {
        for text in
            ["mysql://probe@db1", "mysql://probe@db1/", "mysql://db1:3306/?ssl=true", "mysql://db1/a/b"]
        {
            let err = text.parse::<MySqlUrl>().unwrap_err();
            assert_eq!(
                err.problem(),
                "it names no database: end it with /database, the one holding the serviceapp table",
                "{text}"
            );
        }
        let err = "redis://db1/apps".parse::<MySqlUrl>().unwrap_err();
        assert_eq!(err.problem(), "the scheme `redis://` is not supported: use mysql://");
    }
}
