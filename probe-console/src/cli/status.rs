//! `probe status` (or `probe backends`): whether the configured ZooKeeper, Redis and MySQL answer,
//! each connected to on its own and probed with the console's read ([`backend_health`]) under a
//! short timeout, all three at once, so one that is down does not hide the others. Exit status 1
//! when any is down.
//!
//! ```text
//! BACKEND    STATE  SETTING          ADDRESS                             MS
//! ZooKeeper  up     PROBE_ZOOKEEPER  127.0.0.1:2181                      3.1
//! Redis      up     PROBE_REDIS      redis://127.0.0.1:6379/             0.8
//! MySQL      down   PROBE_MYSQL      mysql://probe:***@127.0.0.1:3306/probe  0.5
//!
//! MySQL is down: MySQL at mysql://probe:***@127.0.0.1:3306/probe is unreachable: ...
//! ```

use probe_runtime::config::{AppsBackend, Config, RegistryBackend, SettingsBackend};
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::mysql::MySqlApps;
use probe_runtime::registry::redis::RedisSettings;
use probe_runtime::registry::zookeeper::ZooKeeperRegistry;
use probe_runtime::registry::{Registry, SettingsStore};

use super::output::{Align, Report, Table};
use crate::backend_health::{self, Backend, Detail, Probe, TIMEOUT};

/// What an embedded backend shows as its address.
const EMBEDDED: &str = "embedded (in this process)";

/// Connects to each backend `config` names and probes it; in [`Backend::ALL`] order.
pub async fn check(config: &Config) -> Vec<Probe> {
    let env = config.env;
    let (zookeeper, redis, mysql) = tokio::join!(
        backend_health::probe(Backend::ZooKeeper, registry_address(config), async {
            let registry: Box<dyn Registry> = match &config.registry {
                Some(RegistryBackend::ZooKeeper(zk)) => {
                    let mut zk = zk.clone();
                    zk.connect_timeout = zk.connect_timeout.min(TIMEOUT);
                    Box::new(ZooKeeperRegistry::connect(&zk).await?)
                }
                _ => Box::new(Embedded::process().registry.clone()),
            };
            backend_health::read_registry(&*registry, env).await
        }),
        backend_health::probe(Backend::Redis, settings_address(config), async {
            let settings: Box<dyn SettingsStore> = match &config.settings {
                Some(SettingsBackend::Redis(url)) => Box::new(RedisSettings::connect(url).await?),
                Some(SettingsBackend::RedisCluster(seeds)) => {
                    Box::new(RedisSettings::connect_cluster(seeds).await?)
                }
                _ => Box::new(Embedded::process().settings.clone()),
            };
            backend_health::read_settings(&*settings, env).await
        }),
        backend_health::probe(Backend::MySql, apps_address(config), async {
            match &config.apps {
                Some(AppsBackend::MySql(url)) => {
                    let apps = MySqlApps::connect(url).await?;
                    let read = backend_health::read_apps(&apps).await;
                    let _ = apps.disconnect().await;
                    read
                }
                _ => backend_health::read_apps(&Embedded::process().apps.clone()).await,
            }
        }),
    );
    vec![zookeeper, redis, mysql]
}

/// The ensemble's connect string.
fn registry_address(config: &Config) -> Option<String> {
    Some(match config.registry.as_ref()? {
        RegistryBackend::ZooKeeper(zk) => zk.connect.to_string(),
        _ => EMBEDDED.to_owned(),
    })
}

/// The Redis URL or the cluster's seeds, passwords masked.
fn settings_address(config: &Config) -> Option<String> {
    Some(match config.settings.as_ref()? {
        SettingsBackend::Redis(url) => url.to_string(),
        SettingsBackend::RedisCluster(seeds) => {
            seeds.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
        }
        _ => EMBEDDED.to_owned(),
    })
}

/// The MySQL URL, password masked.
fn apps_address(config: &Config) -> Option<String> {
    Some(match config.apps.as_ref()? {
        AppsBackend::MySql(url) => url.to_string(),
        _ => EMBEDDED.to_owned(),
    })
}

/// The table (then a line per backend that is down), or with `--json` the console's
/// `/api/health` document (admin detail) with the env. `Err` holds the same report when a backend
/// is down.
pub fn report(config: &Config, probes: &[Probe]) -> Result<Report, Report> {
    let mut json = backend_health::report_json(probes, Detail::Full);
    json["env"] = config.env.to_string().into();
    let mut table = Table::new(&[
        ("BACKEND", Align::Left),
        ("STATE", Align::Left),
        ("SETTING", Align::Left),
        ("ADDRESS", Align::Left),
        ("MS", Align::Right),
    ]);
    for probe in probes {
        table.row(vec![
            probe.backend.name().to_owned(),
            if probe.ok() { "up" } else { "down" }.to_owned(),
            probe.backend.setting().to_owned(),
            probe.shown_address(Detail::Full).unwrap_or_else(|| "-".to_owned()),
            format!("{:.1}", probe.latency.as_secs_f64() * 1000.0),
        ]);
    }
    let mut text = table.render();
    let down: Vec<&Probe> = probes.iter().filter(|p| !p.ok()).collect();
    for probe in &down {
        let error = probe.error_text(Detail::Full).unwrap_or_default();
        text += &format!("\n{} is down: {error}\n", probe.backend.name());
    }
    if down.is_empty() {
        text += &format!("\nall {} backends answered (env {})\n", probes.len(), config.env);
        Ok(Report::new(json, text))
    } else {
        Err(Report::new(json, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration whose three backends are on a closed loopback port.
    fn closed_port_config() -> Config {
        Config::from_vars([
            ("PROBE_ENV", "dev"),
            ("PROBE_ZOOKEEPER", "127.0.0.1:1"),
            ("PROBE_REDIS", "redis://:redis-secret@127.0.0.1:1/"),
            ("PROBE_MYSQL", "mysql://probe_rw:mysql-secret@127.0.0.1:1/billing"),
        ])
        .unwrap()
    }

    #[tokio::test]
    async fn backends_on_a_closed_port_are_each_down_naming_their_setting() {
        let config = closed_port_config();
        let probes = check(&config).await;
        assert_eq!(probes.iter().map(|p| p.backend).collect::<Vec<_>>(), Backend::ALL);
        for probe in &probes {
            assert!(!probe.ok(), "{probe:?}");
            assert!(probe.latency <= TIMEOUT + std::time::Duration::from_secs(1), "{probe:?}");
            let error = probe.error_text(Detail::Full).unwrap();
            assert!(
                error.contains(probe.backend.name()) && error.contains(probe.backend.setting()),
                "{error}"
            );
            assert!(error.contains("127.0.0.1:1"), "{error}");
        }
        let report = report(&config, &probes).unwrap_err();
        assert_eq!(report.json["ok"], false);
        assert_eq!(report.json["down"], serde_json::json!(["zookeeper", "redis", "mysql"]));
        assert_eq!(report.json["backends"][2]["address"], "mysql://probe_rw:***@127.0.0.1:1/billing");
        let everything = format!("{}{}", report.text, report.json);
        assert!(!everything.contains("secret"), "{everything}");
        assert!(
            report.text.contains("\nMySQL is down: MySQL at mysql://probe_rw:***@127.0.0.1:1/billing"),
            "{}",
            report.text
        );
        let lines: Vec<&str> = report.text.lines().collect();
        assert!(lines[0].starts_with("BACKEND    STATE  SETTING"), "{}", report.text);
        assert!(
            lines[3]
                .starts_with("MySQL      down   PROBE_MYSQL      mysql://probe_rw:***@127.0.0.1:1/billing"),
            "{}",
            report.text
        );
    }

    #[tokio::test]
    async fn embedded_backends_answer() {
        let config = Config::embedded();
        let probes = check(&config).await;
        let report = report(&config, &probes).expect("embedded backends are up");
        assert_eq!(report.json["ok"], true);
        assert_eq!(report.json["backends"][0]["address"], EMBEDDED);
        assert!(report.text.contains("all 3 backends answered"), "{}", report.text);
    }
}
