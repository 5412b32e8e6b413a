//! The three backends a process uses, chosen by configuration.

use std::fmt;
use std::sync::Arc;

use super::backend::{AppStore, BackendError, Registry, SettingsStore};
use super::embedded::Embedded;
use super::layout::Env;
use super::mysql::MySqlApps;
use super::redis::RedisSettings;
use super::zookeeper::ZooKeeperRegistry;
use crate::config::{AppsBackend, Config, ConfigError, RegistryBackend, SettingsBackend};

/// Why the backends of a configuration could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The configuration leaves a backend out.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A backend could not be reached.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The registry, settings store and app store of one env: what servers register with and
/// clients discover through. Clones share the connections.
#[derive(Clone)]
pub struct Backends {
    /// The env nodes register in and are discovered from.
    pub env: Env,
    /// Where providers register (ZooKeeper).
    pub registry: Arc<dyn Registry>,
    /// Where node settings live (Redis).
    pub settings: Arc<dyn SettingsStore>,
    /// Where appkeys are registered (MySQL).
    pub apps: Arc<dyn AppStore>,
}

impl fmt::Debug for Backends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backends")
            .field("env", &self.env)
            .field("registry", &self.registry)
            .field("settings", &self.settings)
            .field("apps", &self.apps)
            .finish()
    }
}

impl Backends {
    /// Backends of `env` over these three.
    pub fn new(
        env: Env,
        registry: Arc<dyn Registry>,
        settings: Arc<dyn SettingsStore>,
        apps: Arc<dyn AppStore>,
    ) -> Self {
        Backends { env, registry, settings, apps }
    }

    /// Connects to the backends `config` chooses, all at once: ZooKeeper, Redis (single or
    /// cluster) and MySQL, or this process's embedded ones ([`Embedded::process`]) where the
    /// configuration says `embedded`. Fails naming the missing setting or the unreachable backend.
    pub async fn connect(config: &Config) -> Result<Backends, ConnectError> {
        config.validate()?;
        let (registry, settings, apps) = tokio::try_join!(
            connect_registry(config.registry.as_ref()),
            connect_settings(config.settings.as_ref()),
            connect_apps(config.apps.as_ref()),
        )?;
        Ok(Backends::new(config.env, registry, settings, apps))
    }

    /// Backends of `env` over a set of embedded in-process ones.
    pub fn embedded(env: Env, embedded: &Embedded) -> Self {
        Backends::new(
            env,
            Arc::new(embedded.registry.clone()),
            Arc::new(embedded.settings.clone()),
            Arc::new(embedded.apps.clone()),
        )
    }
}

async fn connect_registry(backend: Option<&RegistryBackend>) -> Result<Arc<dyn Registry>, ConnectError> {
    Ok(match backend {
        Some(RegistryBackend::ZooKeeper(zk)) => Arc::new(ZooKeeperRegistry::connect(zk).await?),
        Some(RegistryBackend::Embedded) => Arc::new(Embedded::process().registry.clone()),
        None => return Err(ConfigError::NoRegistry.into()),
    })
}

async fn connect_settings(backend: Option<&SettingsBackend>) -> Result<Arc<dyn SettingsStore>, ConnectError> {
    Ok(match backend {
        Some(SettingsBackend::Redis(url)) => Arc::new(RedisSettings::connect(url).await?),
        Some(SettingsBackend::RedisCluster(seeds)) => Arc::new(RedisSettings::connect_cluster(seeds).await?),
        Some(SettingsBackend::Embedded) => Arc::new(Embedded::process().settings.clone()),
        None => return Err(ConfigError::NoSettingsStore.into()),
    })
}

async fn connect_apps(backend: Option<&AppsBackend>) -> Result<Arc<dyn AppStore>, ConnectError> {
    Ok(match backend {
        Some(AppsBackend::MySql(url)) => Arc::new(MySqlApps::connect(url).await?),
        Some(AppsBackend::Embedded) => Arc::new(Embedded::process().apps.clone()),
        None => return Err(ConfigError::NoAppRegistry.into()),
    })
}
