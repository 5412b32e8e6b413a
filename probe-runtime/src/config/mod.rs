//! Configuration: which registry, settings store and app registry to use, and server and client
//! options, from defaults, a TOML file and `PROBE_*` environment variables, in increasing priority.
//!
//! ```no_run
//! use probe_runtime::config::Config;
//!
//! // The file named by PROBE_CONFIG, if any, then PROBE_* variables over it; checked.
//! let config = Config::load(None)?;
//! # Ok::<(), probe_runtime::config::ConfigError>(())
//! ```
//!
//! Backends are never a silent fallback: with no ZooKeeper, Redis or MySQL configured, loading
//! fails with an error that says what to set. The embedded, in-process backends are a choice
//! made by name (`embedded`) or with [`Config::embedded`].
//!
//! | variable                      | file key                    | default                          |
//! |-------------------------------|-----------------------------|----------------------------------|
//! | `PROBE_ENV`                   | `env`                       | `prod` on hosts `prod<digits>`, else `dev` |
//! | `PROBE_ZOOKEEPER`             | `zookeeper`                 | none: required                   |
//! | `PROBE_ZK_SESSION_TIMEOUT_MS` | `zk_session_timeout_ms`     | 10000                            |
//! | `PROBE_ZK_CONNECT_TIMEOUT_MS` | `zk_connect_timeout_ms`     | 15000                            |
//! | `PROBE_REDIS`                 | `redis`                     | none: required                   |
//! | `PROBE_REDIS_CLUSTER`         | `redis_cluster`             | true when several URLs are given |
//! | `PROBE_MYSQL`                 | `mysql`                     | none: required                   |
//! | `PROBE_REDIS_TLS_CA`          | `redis_tls_ca`              | none: the system's roots         |
//! | `PROBE_MYSQL_TLS_CA`          | `mysql_tls_ca`              | none: the webpki roots           |
//! | `PROBE_APP_CREDENTIAL`        | `app_credential`            | none                             |
//! | `PROBE_ZK_OPERATOR_SECRET`    | `zk_operator_secret`        | none                             |
//! | `PROBE_BIND`                  | `server.bind`               | `0.0.0.0`                        |
//! | `PROBE_PORT`                  | `server.port`               | 0, any free port                 |
//! | `PROBE_ADVERTISE_HOST`        | `server.advertise_host`     | see [`ServerConfig::advertise_host`] |
//! | `PROBE_GRACE_PERIOD_MS`       | `server.grace_period_ms`    | 5000                             |
//! | `PROBE_ADMIN_ADDR`            | `server.admin_addr`         | `off`, no admin endpoint         |
//! | `PROBE_ALLOW_UNFRAMED`        | `server.allow_unframed`     | `true`                           |
//! | `PROBE_HANDSHAKE_TIMEOUT_MS`  | `server.handshake_timeout_ms` | 10000                          |
//! | `PROBE_MAX_CONNECTIONS_PER_PEER` | `server.max_connections_per_peer` | 1000                  |
//! | `PROBE_RESERVED_CONNECTIONS`  | `server.reserved_connections` | 1000                           |
//! | `PROBE_MEMORY_BUDGET_MB`      | `server.memory_budget_mb`   | 512                              |
//! | `PROBE_SERVER_VERSION`        | `server.version`            | probe's version                  |
//! | `PROBE_SERVER_TAGS`           | `server.tags`               | none                             |
//! | `PROBE_SERVER_TIER`           | `server.tier`               | 0, primary                       |
//! | `PROBE_BALANCER`              | `client.balancer`           | `random`                         |
//! | `PROBE_CALL_TIMEOUT_MS`       | `client.call_timeout_ms`    | 30000                            |
//! | `PROBE_CONNECT_TIMEOUT_MS`    | `client.connect_timeout_ms` | 3000                             |
//! | `PROBE_RETRY_BUDGET_RATIO`    | `client.retry_budget_ratio` | 0.2                              |
//! | `PROBE_CLIENT_TAGS`           | `client.tags`               | none                             |
//! | `PROBE_CLIENT_METHOD_TIMEOUTS` | `client.method_timeouts`   | none: the IDL's, else `call_timeout_ms` |
//! | `PROBE_CLIENT_QPS_LIMIT`      | `client.qps_limit`          | `off`, no limit                  |
//! | `PROBE_CLIENT_HEDGE_PERCENTILE` | `client.hedge_percentile` | `off`, no backup requests        |
//! | `PROBE_CLIENT_BREAKER_FAILURES` | `client.breaker_failures` | 5                                |
//! | `PROBE_CLIENT_BREAKER_ERROR_RATE` | `client.breaker_error_rate` | 0.5                          |
//! | `PROBE_SERVER_TLS_MODE`       | `server.tls.mode`           | `off`; `optional`, `required`: see [`tls`](crate::tls) |
//! | `PROBE_SERVER_TLS_CERT`       | `server.tls.cert`           | none: required with TLS          |
//! | `PROBE_SERVER_TLS_KEY`        | `server.tls.key`            | none: required with TLS          |
//! | `PROBE_SERVER_TLS_CLIENT_AUTH` | `server.tls.client_auth`   | `none`; `optional`, `required`   |
//! | `PROBE_SERVER_TLS_CLIENT_CA`  | `server.tls.client_ca`      | none: required with client certificates |
//! | `PROBE_CLIENT_TLS_CA`         | `client.tls.ca`             | none: plaintext to every node    |
//! | `PROBE_CLIENT_TLS_CERT`       | `client.tls.cert`           | none: no client certificate      |
//! | `PROBE_CLIENT_TLS_KEY`        | `client.tls.key`            | none                             |
//! | `PROBE_CLIENT_TLS_SERVER_NAME` | `client.tls.server_name`   | the host connected to            |
//!
//! Tags are `key=value` pairs separated by commas (`PROBE_SERVER_TAGS=zone=eu-1,group=blue`), each
//! key once, keys and values of letters, digits, `_`, `.` and `-`; the file takes the same text or
//! a table of strings. Tiers are 0 (primary), 1 and 2 (backups).
//!
//! Method timeouts are `method=milliseconds` pairs separated by commas
//! (`PROBE_CLIENT_METHOD_TIMEOUTS=Echo.echo=200,slow=2000`), a method as `Service.method` or a bare
//! `method` of any service, each once, milliseconds whole like every duration here; the file takes
//! the same text or a table of integers. They replace the IDL's `(probe.timeout_ms = ...)` and the
//! call timeout for those methods, a `Service.method` entry before a bare one. The QPS limit
//! counts calls per second to each service (above 0); the hedge percentile (above 0, below 1)
//! sends an idempotent call still unanswered after that percentile of recent latencies to a second
//! node too; a node's circuit breaker opens after `breaker_failures` failures in a row, or when
//! the share `breaker_error_rate` (above 0, at most 1) of its recent calls failed. See
//! [`ClusterOptions`](crate::client::ClusterOptions).
//!
//! TLS to the backends is in their URLs: `rediss://` for Redis (every seed of a cluster), and
//! `?require_ssl=true` for MySQL (mysql_async's parameters: `verify_identity=false` accepts a
//! certificate that does not name the host). The CA settings name a PEM bundle of the CAs that
//! signed the servers' certificates (a private CA); when set, only those CAs are trusted, and a
//! bundle for URLs without TLS is an error. See [`CaBundle`].
//!
//! `PROBE_CONFIG` names the file [`Config::load`] reads. Other `PROBE_*` variables are ignored; keys
//! a file has that are not in the table are errors. A file, every key optional:
//!
//! ```
//! # use probe_runtime::config::{Config, SettingsBackend};
//! # use probe_runtime::registry::layout::Env;
//! let example = r#"
//! env = "prod"
//! zookeeper = "zk1:2181,zk2:2181,zk3:2181/probe"  # or "embedded"
//! zk_session_timeout_ms = 10000
//! redis = ["redis://10.0.0.5:7000", "redis://10.0.0.6:7000"]  # several: a Redis Cluster
//! mysql = "mysql://probe:secret@db1:3306/probe"   # the database holding `serviceapp`
//! ## redis_tls_ca = "/etc/probe/ca.pem"  # with rediss:// URLs
//! ## mysql_tls_ca = "/etc/probe/ca.pem"  # with mysql://...?require_ssl=true
//! ## app_credential = "order_app:probe1...."  # from `probe apps add`; better PROBE_APP_CREDENTIAL
//! ## zk_operator_secret = "..."  # operator tools only; better PROBE_ZK_OPERATOR_SECRET
//!
//! [server]
//! bind = "0.0.0.0"            # or "0.0.0.0:9090"
//! port = 9090
//! advertise_host = "10.0.0.7"
//! grace_period_ms = 5000
//! admin_addr = "0.0.0.0:9464"  # /metrics and /health; or "off"
//! allow_unframed = true       # false: only framed peers
//! handshake_timeout_ms = 10000
//! max_connections_per_peer = 1000
//! reserved_connections = 1000
//! memory_budget_mb = 512
//! version = "2.0.0"           # what traffic rules split by; default probe's version
//! tags = { zone = "eu-1", group = "blue" }  # or "zone=eu-1,group=blue"
//! tier = 0                    # 0 primary, 1 and 2 backups
//! ## [server.tls]              # TLS on the RPC port (paths are read when the server starts)
//! ## mode = "optional"         # off, optional (TLS and plaintext) or required
//! ## cert = "/etc/probe/server.pem"
//! ## key = "/etc/probe/server.key"
//! ## client_auth = "optional"  # none, optional or required; with client_ca
//! ## client_ca = "/etc/probe/clients-ca.pem"
//!
//! [client]
//! balancer = "least_loaded"   # random, round_robin, least_loaded or consistent_hash
//! call_timeout_ms = 2000
//! connect_timeout_ms = 500
//! retry_budget_ratio = 0.2
//! tags = "zone=eu-1"          # this caller's own, for tag affinity
//! method_timeouts = { "Echo.echo" = 200, slow = 2000 }  # or "Echo.echo=200,slow=2000"
//! qps_limit = 500             # calls per second to each service; or "off"
//! hedge_percentile = 0.95     # backup requests for idempotent calls; or "off"
//! breaker_failures = 5
//! breaker_error_rate = 0.5
//! ## [client.tls]              # TLS to providers that advertise it (read when loading)
//! ## ca = "/etc/probe/ca.pem"
//! ## cert = "/etc/probe/client.pem"   # with key: a client certificate
//! ## key = "/etc/probe/client.key"
//! "#;
//! # let path = std::env::temp_dir().join(format!("probe-config-doc-{}.toml", std::process::id()));
//! # std::fs::write(&path, example).unwrap();
//! let config = Config::from_file(&path)?;
//! # std::fs::remove_file(&path).unwrap();
//! assert_eq!(config.env, Env::Prod);
//! assert!(matches!(&config.settings, Some(SettingsBackend::RedisCluster(seeds)) if seeds.len() == 2));
//! assert_eq!(config.server.bind_addr().to_string(), "0.0.0.0:9090");
//! assert_eq!(config.server.admin_addr.map(|addr| addr.port()), Some(9464));
//! assert_eq!(config.server.tags["zone"], config.client.tags["zone"]);
//! assert_eq!(config.client.method_timeouts["Echo.echo"].as_millis(), 200);
//! # Ok::<(), probe_runtime::config::ConfigError>(())
//! ```

mod backend;
mod env;
mod error;
mod faults;
mod file;
mod fqdn;
mod host;
mod layer;
mod options;
mod rpc_tls;
mod setting;
mod tls;
mod toml_value;
mod url;
mod value;
mod zookeeper;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use backend::{AppsBackend, MySqlUrl, RedisUrl, RegistryBackend, SettingsBackend, ZooKeeperConfig};
pub use env::CONFIG_PATH_VAR;
pub use error::{ConfigError, InvalidValue, Origin};
pub use fqdn::{HostEntry, Resolver, SystemResolver, env_for_fqdn, getfqdn};
pub use host::{EnvSource, HostRule, hostname};
pub use options::{ClientConfig, ServerConfig};
pub use setting::Setting;
pub use tls::CaBundle;
/// What a server checks of a version and tags its code set, as configuration checks them.
pub(crate) use value::{tag as check_tag, version as check_version};
pub use zookeeper::{ZK_DEFAULT_PORT, ZkConnect};

use crate::registry::layout::Env;
use layer::Layer;

/// Everything a probe server or client needs to know about its surroundings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// The environment nodes register in and are discovered from.
    pub env: Env,
    /// How `env` was decided: a setting, or the Python design's rule on the host name.
    pub env_source: EnvSource,
    /// Where providers register; `None` until configured.
    pub registry: Option<RegistryBackend>,
    /// Where node settings live; `None` until configured.
    pub settings: Option<SettingsBackend>,
    /// Where registered appkeys live; `None` until configured.
    pub apps: Option<AppsBackend>,
    /// Server options.
    pub server: ServerConfig,
    /// Client options.
    pub client: ClientConfig,
}

impl Default for Config {
    /// The defaults, with no backend chosen (so not valid): the env derives from the host name.
    fn default() -> Self {
        let rule = HostRule::of_this_machine();
        Config { env: rule.env, env_source: EnvSource::HostRule(rule), ..Config::without_env() }
    }
}

impl Config {
    /// The defaults with every backend embedded, in-process: for demos and tests on one machine.
    pub fn embedded() -> Config {
        Config {
            registry: Some(RegistryBackend::Embedded),
            settings: Some(SettingsBackend::Embedded),
            apps: Some(AppsBackend::Embedded),
            ..Config::default()
        }
    }

    /// The defaults, then the TOML file at `path`; checked.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Config::from_layer(file::read(path.as_ref(), false)?)
    }

    /// The defaults, then the process's `PROBE_*` variables; checked. It reads no file, whatever
    /// `PROBE_CONFIG` says: [`Config::load`] does.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(env::process_vars())
    }

    /// [`Config::from_env`] with the variables `vars` instead of the process's.
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Config, ConfigError> {
        let vars: Vec<(K, V)> = vars.into_iter().collect();
        Config::from_layer(env::layer(&vars)?)
    }

    /// The defaults, then the file at `path`, or else the one `PROBE_CONFIG` names, if any, then the
    /// process's `PROBE_*` variables; checked.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_vars(path, env::process_vars())
    }

    /// [`Config::load`] with the variables `vars` instead of the process's.
    pub fn load_with_vars<K: AsRef<str>, V: AsRef<str>>(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Config, ConfigError> {
        let vars: Vec<(K, V)> = vars.into_iter().collect();
        let file_layer = match path {
            Some(path) => file::read(path, false)?,
            None => match env::config_path(&vars)? {
                Some(path) => file::read(&PathBuf::from(path), true)?,
                None => Layer::default(),
            },
        };
        Config::from_layer(file_layer.under(env::layer(&vars)?))
    }

    /// Checks that every backend is chosen: a real one, or an embedded one explicitly.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.registry.is_none() {
            return Err(ConfigError::NoRegistry);
        }
        if self.settings.is_none() {
            return Err(ConfigError::NoSettingsStore);
        }
        if self.apps.is_none() {
            return Err(ConfigError::NoAppRegistry);
        }
        Ok(())
    }

    /// The defaults with a placeholder env, for a layer that names the env to overwrite.
    fn without_env() -> Config {
        let placeholder = HostRule { env: Env::Dev, hostname: None, fqdn: String::new() };
        Config {
            env: Env::Dev,
            env_source: EnvSource::HostRule(placeholder),
            registry: None,
            settings: None,
            apps: None,
            server: ServerConfig::default(),
            client: ClientConfig::default(),
        }
    }

    fn from_layer(layer: Layer) -> Result<Config, ConfigError> {
        // The host rule asks the system resolver; a configuration that names its env skips it.
        let mut config = match layer.names_env() {
            true => Config::without_env(),
            false => Config::default(),
        };
        layer.apply(&mut config)?;
        config.validate()?;
        Ok(config)
    }
}
