//! The three backends a process uses, chosen by configuration.

use std::fmt;
use std::sync::Arc;

use super::backend::{AppStore, AuditLog, BackendError, MetricsStore, Registry, SettingsStore};
use super::embedded::Embedded;
use super::layout::Env;
use super::mysql::MySqlApps;
use super::redis::RedisSettings;
use super::zookeeper::ZooKeeperRegistry;
use crate::config::{AppsBackend, Config, ConfigError, RegistryBackend, ServerConfig, SettingsBackend};

/// Why the backends of a configuration could not be set up. Its `Debug` is its `Display` text.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The configuration leaves a backend out.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A backend could not be reached.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

crate::debug_as_display!(ConnectError);

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
    /// Where servers publish call statistics (Redis, beside the settings).
    pub metrics: Arc<dyn MetricsStore>,
    /// Where operator changes are recorded (MySQL, beside the apps).
    pub audit: Arc<dyn AuditLog>,
    /// The server options of the configuration these backends came from (the advertised address,
    /// the grace period, the admin endpoint): what
    /// [`ServerBuilder::register`](crate::server::ServerBuilder::register) applies, so a server
    /// registers the same way whichever call set it up.
    pub server: ServerConfig,
}

impl fmt::Debug for Backends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backends")
            .field("env", &self.env)
            .field("registry", &self.registry)
            .field("settings", &self.settings)
            .field("apps", &self.apps)
            .field("metrics", &self.metrics)
            .field("audit", &self.audit)
            .field("server", &self.server)
            .finish()
    }
}

impl Backends {
    /// Connects to the backends `config` chooses, all at once: ZooKeeper, Redis (single or
    /// cluster) and MySQL, or this process's embedded ones ([`Embedded::process`]) where the
    /// configuration says `embedded`. Fails naming the missing setting or the unreachable backend.
    pub async fn connect(config: &Config) -> Result<Backends, ConnectError> {
        config.validate()?;
        tracing::info!(env = %config.env, source = %config.env_source, "env");
        let (registry, (settings, metrics), (apps, audit)) = tokio::try_join!(
            connect_registry(config.registry.as_ref()),
            connect_settings(config.settings.as_ref()),
            connect_apps(config.apps.as_ref()),
        )?;
        Ok(Backends {
            env: config.env,
            registry,
            settings,
            apps,
            metrics,
            audit,
            server: config.server.clone(),
        })
    }

    /// Backends of `env` over a set of embedded in-process ones, with the default server options.
    pub fn embedded(env: Env, embedded: &Embedded) -> Self {
        Backends {
            env,
            registry: Arc::new(embedded.registry.clone()),
            settings: Arc::new(embedded.settings.clone()),
            apps: Arc::new(embedded.apps.clone()),
            metrics: Arc::new(embedded.metrics.clone()),
            audit: Arc::new(embedded.audit.clone()),
            server: ServerConfig::default(),
        }
    }

    /// The same backends with the server options of `server` (see [`Backends::server`]).
    pub fn with_server_config(self, server: ServerConfig) -> Self {
        Backends { server, ..self }
    }
}

async fn connect_registry(backend: Option<&RegistryBackend>) -> Result<Arc<dyn Registry>, ConnectError> {
    Ok(match backend {
        Some(RegistryBackend::ZooKeeper(zk)) => Arc::new(ZooKeeperRegistry::connect(zk).await?),
        Some(RegistryBackend::Embedded) => Arc::new(Embedded::process().registry.clone()),
        None => return Err(ConfigError::NoRegistry.into()),
    })
}

type Settings = (Arc<dyn SettingsStore>, Arc<dyn MetricsStore>);

async fn connect_settings(backend: Option<&SettingsBackend>) -> Result<Settings, ConnectError> {
    let redis = match backend {
        Some(SettingsBackend::Redis(url)) => Arc::new(RedisSettings::connect(url).await?),
        Some(SettingsBackend::RedisCluster(seeds)) => Arc::new(RedisSettings::connect_cluster(seeds).await?),
        Some(SettingsBackend::Embedded) => {
            let embedded = Embedded::process();
            return Ok((Arc::new(embedded.settings.clone()), Arc::new(embedded.metrics.clone())));
        }
        None => return Err(ConfigError::NoSettingsStore.into()),
    };
    Ok((redis.clone(), redis))
}

type Apps = (Arc<dyn AppStore>, Arc<dyn AuditLog>);

async fn connect_apps(backend: Option<&AppsBackend>) -> Result<Apps, ConnectError> {
    let mysql = match backend {
        Some(AppsBackend::MySql(url)) => Arc::new(MySqlApps::connect(url).await?),
        Some(AppsBackend::Embedded) => {
            let embedded = Embedded::process();
            return Ok((Arc::new(embedded.apps.clone()), Arc::new(embedded.audit.clone())));
        }
        None => return Err(ConfigError::NoAppRegistry.into()),
    };
    Ok((mysql.clone(), mysql))
}
