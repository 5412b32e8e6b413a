//! Embedded in-process backends with the same semantics as the real ones: a registry with
//! sessions, ephemeral nodes and watches (ZooKeeper's), a settings store (Redis's) and an app store
//! (MySQL's). They serve the single-process demo and unit tests of routing logic, and are only
//! ever chosen explicitly.

mod apps;
mod audit;
mod metrics;
mod registry;
mod rules;
mod session;
mod settings;

use std::sync::OnceLock;

pub use apps::EmbeddedApps;
pub use audit::EmbeddedAudit;
pub use metrics::EmbeddedMetrics;
pub use registry::EmbeddedRegistry;
pub use settings::EmbeddedSettings;

/// One set of embedded backends: what a config's `embedded` choice stands for.
///
/// Providers and clients that share a set see each other; [`Embedded::process`] is the set every
/// part of one process shares.
///
/// ```
/// use probe_runtime::registry::embedded::Embedded;
/// use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
/// use probe_runtime::registry::Registry;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let embedded = Embedded::new();
/// let mut providers = embedded.registry.watch_app(Env::Dev, "demo_app").await?;
/// assert!(providers.borrow().nodes.is_empty());
///
/// let key = NodeKey::new(Env::Dev, "demo_app", "Demo", "10.0.0.7", 9090)?;
/// let session = embedded.registry.session().await?;
/// session.register(&key, &NodeData::new("10.0.0.7", 9090)).await?;
///
/// providers.changed().await?;
/// assert_eq!(providers.borrow_and_update().nodes[0].key, key);
///
/// session.close().await; // its ephemeral node goes at once
/// providers.changed().await?;
/// assert!(providers.borrow().nodes.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Embedded {
    /// Where providers register and clients watch them.
    pub registry: EmbeddedRegistry,
    /// Node settings that outlive the ephemeral nodes.
    pub settings: EmbeddedSettings,
    /// The registered appkeys.
    pub apps: EmbeddedApps,
    /// The nodes' published call statistics.
    pub metrics: EmbeddedMetrics,
    /// The record of operator changes.
    pub audit: EmbeddedAudit,
}

impl Embedded {
    /// A fresh, empty set, shared by its clones only (tests use one each).
    pub fn new() -> Self {
        Self::default()
    }

    /// This process's set, created empty on first use: what a config's `embedded` backend choice
    /// means.
    pub fn process() -> &'static Embedded {
        static PROCESS: OnceLock<Embedded> = OnceLock::new();
        PROCESS.get_or_init(Embedded::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::backend::{AppStore, Registry};
    use crate::registry::layout::{Env, NodeData, NodeKey};

    #[tokio::test]
    async fn process_set_is_shared_and_new_sets_are_not() {
        assert!(std::ptr::eq(Embedded::process(), Embedded::process()));
        let key = NodeKey::new(Env::Prod, "process_shared_app", "Svc", "10.0.0.1", 1).unwrap();
        let session = Embedded::process().registry.session().await.unwrap();
        session.register(&key, &NodeData::new("10.0.0.1", 1)).await.unwrap();
        let seen = Embedded::process().registry.nodes(Env::Prod, "process_shared_app").await.unwrap();
        assert_eq!(seen.len(), 1);
        assert!(Embedded::new().registry.nodes(Env::Prod, "process_shared_app").await.unwrap().is_empty());
        assert!(!Embedded::new().apps.contains("process_shared_app").await.unwrap());
        session.close().await;
    }
}
