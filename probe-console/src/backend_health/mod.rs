//! Which of the three backends answer: ZooKeeper (the registry), Redis (node settings and metrics)
//! and MySQL (the app registry and audit log), each probed with one cheap read under a short
//! timeout ([`TIMEOUT`]), all three at once. The console's `GET /api/health` and `probe status`
//! show the same rows.
//!
//! ```no_run
//! # async fn run(backends: probe_runtime::registry::Backends) {
//! use probe_console::backend_health::{self, Detail};
//!
//! let probes = backend_health::check(&backends).await;
//! for probe in probes.iter().filter(|p| !p.ok()) {
//!     eprintln!("{}", probe.error_text(Detail::Full).unwrap_or_default());
//! }
//! # }
//! ```
//!
//! The reads: the appkeys of the env in ZooKeeper (`/services/{env}`), one Redis hash field
//! (`HGET thriftprobe_{env}` of a node nobody registers) and one `serviceapp` row by appkey. The
//! metrics store and the audit log share the Redis and MySQL connections, so they are not probed
//! apart. A failure's text comes in two forms ([`Detail`]): the backend's own words for admins and
//! the CLI, and a [public](public::public_text) one for the console's viewers.

pub mod public;

use std::future::Future;
use std::time::Duration;

use probe_runtime::registry::layout::{Env, NodeKey};
use probe_runtime::registry::{AppStore, BackendError, Backends, Registry, SettingsStore};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

/// How long a backend has to answer a probe.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// The appkey of the probes' reads: registered by nobody.
const PROBE_APPKEY: &str = "probe_health_check";

/// One of the three backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The registry.
    ZooKeeper,
    /// The node-settings and metrics store.
    Redis,
    /// The app registry and audit log.
    MySql,
}

impl Backend {
    /// All three, in the order they are shown.
    pub const ALL: [Backend; 3] = [Backend::ZooKeeper, Backend::Redis, Backend::MySql];

    /// `zookeeper`, `redis` or `mysql`: the name in JSON.
    pub fn id(self) -> &'static str {
        match self {
            Backend::ZooKeeper => "zookeeper",
            Backend::Redis => "redis",
            Backend::MySql => "mysql",
        }
    }

    /// `ZooKeeper`, `Redis` or `MySQL`: the name for people.
    pub fn name(self) -> &'static str {
        match self {
            Backend::ZooKeeper => "ZooKeeper",
            Backend::Redis => "Redis",
            Backend::MySql => "MySQL",
        }
    }

    /// The environment variable that configures it.
    pub fn setting(self) -> &'static str {
        match self {
            Backend::ZooKeeper => "PROBE_ZOOKEEPER",
            Backend::Redis => "PROBE_REDIS",
            Backend::MySql => "PROBE_MYSQL",
        }
    }

    /// Its key in the config file.
    pub fn file_key(self) -> &'static str {
        self.id()
    }

    /// `PROBE_MYSQL (or `mysql` in the config file)`.
    pub fn configured_by(self) -> String {
        format!("{} (or `{}` in the config file)", self.setting(), self.file_key())
    }

    /// The backend a failure came from, by the name probe-runtime gives it (`None` for stores
    /// that are neither, like an embedded one).
    pub fn of_error(err: &BackendError) -> Option<Backend> {
        let name = match err {
            BackendError::Unreachable { backend, .. }
            | BackendError::Failed { backend, .. }
            | BackendError::BadData { backend, .. }
            | BackendError::SessionEnded { backend }
            | BackendError::NotMigrated { backend, .. } => *backend,
            _ => return None,
        };
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// How much of a failure to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Everything (passwords are masked already): for admins and the CLI.
    Full,
    /// The backend, its address without credentials and its setting: for the console's viewers.
    Public,
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// The backend answered with an error, or could not be reached.
    Failed(BackendError),
    /// No answer within the timeout.
    Silent(Duration),
}

/// One backend's probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Which backend.
    pub backend: Backend,
    /// Its configured address, passwords masked, when known.
    pub address: Option<String>,
    /// How long the probe took.
    pub latency: Duration,
    /// Why it failed; `None` when the backend answered.
    pub trouble: Option<Trouble>,
}

impl Probe {
    /// Whether the backend answered.
    pub fn ok(&self) -> bool {
        self.trouble.is_none()
    }

    /// The address to show: the configured one, else the one the failure names; only scheme,
    /// host and port for [`Detail::Public`].
    pub fn shown_address(&self, detail: Detail) -> Option<String> {
        let address = self.address.clone().or_else(|| match &self.trouble {
            Some(Trouble::Failed(BackendError::Unreachable { addr, .. })) => Some(addr.clone()),
            _ => None,
        })?;
        Some(match detail {
            Detail::Full => address,
            Detail::Public => public::public_address(&address),
        })
    }

    /// What failed, for `detail`; `None` when the backend answered.
    pub fn error_text(&self, detail: Detail) -> Option<String> {
        let text = match self.trouble.as_ref()? {
            Trouble::Failed(err) => match detail {
                Detail::Full => public::full_text(err),
                Detail::Public => public::public_text(err),
            },
            Trouble::Silent(limit) => {
                let at = self.shown_address(detail).map(|a| format!(" at {a}")).unwrap_or_default();
                format!(
                    "{}{at} did not answer within {} s; check that it runs and that {} names it",
                    self.backend.name(),
                    limit.as_secs_f64(),
                    self.backend.configured_by()
                )
            }
        };
        Some(text)
    }

    /// `{"backend":"mysql","name":"MySQL","ok":false,"error":"...","setting":"PROBE_MYSQL",
    /// "address":"...","latency_ms":1.2}` (`error` and `address` null when there is none).
    pub fn to_json(&self, detail: Detail) -> Value {
        json!({
            "backend": self.backend.id(),
            "name": self.backend.name(),
            "ok": self.ok(),
            "error": self.error_text(detail),
            "setting": self.backend.setting(),
            "file_key": self.backend.file_key(),
            "address": self.shown_address(detail),
            "latency_ms": (self.latency.as_secs_f64() * 10_000.0).round() / 10.0,
        })
    }
}

/// `{"ok": all answered, "down": [ids], "backends": [rows]}`.
pub fn report_json(probes: &[Probe], detail: Detail) -> Value {
    json!({
        "ok": probes.iter().all(Probe::ok),
        "down": probes.iter().filter(|p| !p.ok()).map(|p| p.backend.id()).collect::<Vec<_>>(),
        "backends": probes.iter().map(|p| p.to_json(detail)).collect::<Vec<_>>(),
    })
}

/// Runs `work` (connecting and reading) under [`TIMEOUT`].
pub async fn probe(
    backend: Backend,
    address: Option<String>,
    work: impl Future<Output = Result<(), BackendError>>,
) -> Probe {
    let start = Instant::now();
    let trouble = match tokio::time::timeout(TIMEOUT, work).await {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(Trouble::Failed(err)),
        Err(_) => Some(Trouble::Silent(TIMEOUT)),
    };
    Probe { backend, address, latency: start.elapsed(), trouble }
}

/// Probes the three backends of `backends` at once, in [`Backend::ALL`] order.
pub async fn check(backends: &Backends) -> Vec<Probe> {
    let env = backends.env;
    let (zookeeper, redis, mysql) = tokio::join!(
        probe(Backend::ZooKeeper, None, read_registry(&*backends.registry, env)),
        probe(Backend::Redis, None, read_settings(&*backends.settings, env)),
        probe(Backend::MySql, None, read_apps(&*backends.apps)),
    );
    vec![zookeeper, redis, mysql]
}

/// The registry's read: the appkeys of `env`.
pub async fn read_registry(registry: &dyn Registry, env: Env) -> Result<(), BackendError> {
    registry.apps(env).await.map(drop)
}

/// The settings store's read: the settings of a node nobody registers.
pub async fn read_settings(settings: &dyn SettingsStore, env: Env) -> Result<(), BackendError> {
    let key =
        NodeKey::new(env, PROBE_APPKEY, "Health", "127.0.0.1", 1).map_err(|err| BackendError::Failed {
            backend: "Redis",
            action: "name the probe's node".into(),
            detail: err.to_string(),
        })?;
    settings.get(&key).await.map(drop)
}

/// The app store's read: whether an appkey nobody registers is registered.
pub async fn read_apps(apps: &dyn AppStore) -> Result<(), BackendError> {
    apps.contains(PROBE_APPKEY).await.map(drop)
}

#[cfg(test)]
mod tests;
