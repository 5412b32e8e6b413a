//! The three backends a configuration chooses: registry, node-settings store and app registry.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::error::InvalidValue;
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

/// A checked `redis://` or `rediss://` URL. Its password never shows in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(ParsedUrl);

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
}

impl FromStr for RedisUrl {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        url::parse(text.trim(), &["redis", "rediss"]).map(RedisUrl)
    }
}

/// A checked `mysql://` URL that names a database. Its password never shows in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct MySqlUrl(ParsedUrl);

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
        Ok(MySqlUrl(url))
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
                f.debug_tuple(stringify!($ty)).field(&url::redact(&self.0.raw)).finish()
            }
        }
    };
}

redacted_fmt!(RedisUrl);
redacted_fmt!(MySqlUrl);

#[cfg(test)]
mod tests {
    use super::*;

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
