//! Tests of the whole: defaults, sources and their priority, and every error's text.

mod errors;
mod faults;
mod security;
mod server;
mod sources;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::balance::BalancerKind;

/// The three backends, embedded, as variables.
const EMBEDDED: [(&str, &str); 3] =
    [("PROBE_ZOOKEEPER", "embedded"), ("PROBE_REDIS", "embedded"), ("PROBE_MYSQL", "embedded")];

/// The three backends, real, as variables.
const REAL: [(&str, &str); 3] = [
    ("PROBE_ZOOKEEPER", "zk1:2181,zk2:2181"),
    ("PROBE_REDIS", "redis://cache:6379"),
    ("PROBE_MYSQL", "mysql://probe:pw@db:3306/probe"),
];

/// A config file holding `text`, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(text: &str) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name =
            format!("probe-config-{}-{}.toml", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The config `vars` give over the defaults, or the error's text.
fn from_vars(vars: &[(&str, &str)]) -> Result<Config, String> {
    Config::from_vars(vars.iter().copied()).map_err(|e| e.to_string())
}

/// `REAL` plus `extra`.
fn real_with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    REAL.iter().chain(extra).copied().collect()
}

#[test]
fn defaults_are_documented_ones_and_choose_no_backend() {
    let config = Config::default();
    assert_eq!(config.env, host::HostRule::of_this_machine().env);
    assert_eq!(
        (config.registry.as_ref(), config.settings.as_ref(), config.apps.as_ref()),
        (None, None, None)
    );
    assert_eq!(config.server.bind_addr().to_string(), "0.0.0.0:0");
    assert_eq!(config.server.advertise_host, None);
    assert_eq!(config.server.grace_period, Duration::from_secs(5));
    assert_eq!(config.server.admin_addr, None);
    assert_eq!((config.server.version.as_deref(), config.server.tier), (None, 0));
    assert!(config.server.tags.is_empty() && config.client.tags.is_empty());
    assert_eq!(ServerConfig::DEFAULT_VERSION, env!("CARGO_PKG_VERSION"));
    assert_eq!(config.client.balancer, BalancerKind::WeightedRandom);
    assert_eq!(config.client.call_timeout, Duration::from_secs(30));
    assert_eq!(config.client.connect_timeout, Duration::from_secs(3));
    assert_eq!(config.client.retry_budget().ratio, 0.2);
    assert_eq!(config.validate().unwrap_err().to_string(), ConfigError::NoRegistry.to_string());
}

#[test]
fn env_defaults_from_the_host_name_and_yields_to_probe_env() {
    let default = Config::from_vars(EMBEDDED).unwrap();
    assert_eq!(default.env, Env::from_hostname(hostname().as_deref().unwrap_or("")));
    for (name, env) in [("prod", Env::Prod), ("dev", Env::Dev)] {
        let vars: Vec<_> = EMBEDDED.iter().copied().chain([("PROBE_ENV", name)]).collect();
        assert_eq!(Config::from_vars(vars).unwrap().env, env);
    }
}

#[test]
fn embedded_backends_only_when_chosen() {
    let config = Config::embedded();
    assert_eq!(config.registry, Some(RegistryBackend::Embedded));
    assert_eq!(config.settings, Some(SettingsBackend::Embedded));
    assert_eq!(config.apps, Some(AppsBackend::Embedded));
    config.validate().unwrap();
    assert_eq!(Config::from_vars(EMBEDDED).unwrap().registry, Some(RegistryBackend::Embedded));
    let upper: Vec<_> = EMBEDDED.iter().map(|(name, _)| (*name, "EMBEDDED")).collect();
    assert_eq!(Config::from_vars(upper).unwrap().apps, Some(AppsBackend::Embedded));

    // Nothing configured, or only some of it: an error, never an embedded stand-in.
    let none: [(&str, &str); 0] = [];
    assert!(matches!(Config::from_vars(none), Err(ConfigError::NoRegistry)));
    assert!(matches!(Config::from_vars(REAL[..1].iter().copied()), Err(ConfigError::NoSettingsStore)));
    assert!(matches!(Config::from_vars(REAL[..2].iter().copied()), Err(ConfigError::NoAppRegistry)));
    assert!(matches!(Config::load_with_vars(None, none), Err(ConfigError::NoRegistry)));
}

#[test]
fn real_backends_from_variables() {
    let config = Config::from_vars(REAL).unwrap();
    let Some(RegistryBackend::ZooKeeper(zk)) = &config.registry else { panic!("{config:?}") };
    assert_eq!(zk.connect.to_string(), "zk1:2181,zk2:2181");
    assert_eq!((zk.session_timeout, zk.connect_timeout), (Duration::from_secs(10), Duration::from_secs(15)));
    let Some(SettingsBackend::Redis(redis)) = &config.settings else { panic!("{config:?}") };
    assert_eq!((redis.host(), redis.port()), ("cache", 6379));
    let Some(AppsBackend::MySql(mysql)) = &config.apps else { panic!("{config:?}") };
    assert_eq!((mysql.as_str(), mysql.database()), ("mysql://probe:pw@db:3306/probe", "probe"));
    assert!(!format!("{config:?}").contains("pw"), "Debug shows the password: {config:?}");
}
