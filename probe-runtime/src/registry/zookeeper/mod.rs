//! The [`Registry`] on ZooKeeper, in the layout of the Python design: persistent
//! `/services/{env}/{appkey}` paths holding one EPHEMERAL node per provider.
//!
//! [`ZooKeeperRegistry`] keeps one shared session for watches and reads, replaced when it expires;
//! each [`Registry::session`] opens a session of its own for a provider's nodes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use probe_runtime::config::ZooKeeperConfig;
//! use probe_runtime::registry::layout::Env;
//! use probe_runtime::registry::zookeeper::ZooKeeperRegistry;
//! use probe_runtime::registry::Registry;
//!
//! let registry = ZooKeeperRegistry::connect(&ZooKeeperConfig::new("127.0.0.1:2181".parse()?)).await?;
//! let mut providers = registry.watch_app(Env::Dev, "order_app").await?;
//! providers.changed().await?;
//! println!("{} providers", providers.borrow().nodes.len());
//! # Ok(())
//! # }
//! ```

mod acl;
mod connect;
mod nodes;
mod published;
mod rules;
mod session;
mod watch;

use std::fmt;
use std::sync::Arc;

use zookeeper_client as zk;

use self::connect::{SharedClient, Target};
use self::nodes::App;
use self::rules::Rule;
pub use self::rules::{ZK_RULES_ROOT, zk_rule_path};
pub use self::session::ZooKeeperSession;
use super::backend::{RuleWatch, StoredRule};
use super::layout::{Env, NodeData, NodeKey, check_appkey, zk_env_path};
use super::{AppWatch, BackendError, RegisteredNode, Registry, RegistrySession};
use crate::config::ZooKeeperConfig;
use crate::security::acl::AclEntry;
use crate::service::BoxFuture;

/// The registry on a ZooKeeper ensemble.
///
/// One shared session serves [`Registry::watch_app`], [`Registry::nodes`], [`Registry::apps`],
/// [`Registry::update`] and the rule documents (see [`zk_rule_path`]); when it expires a
/// background task opens a new one and the watches follow it. The task stops when the registry
/// and every watch are dropped.
pub struct ZooKeeperRegistry {
    shared: SharedClient,
}

impl ZooKeeperRegistry {
    /// Connects to the ensemble of `config`, creating its chroot when missing.
    ///
    /// # Errors
    /// [`BackendError::Unreachable`] naming the connect string when no session opens within
    /// `config.connect_timeout`.
    pub async fn connect(config: &ZooKeeperConfig) -> Result<ZooKeeperRegistry, BackendError> {
        let shared = SharedClient::open(Arc::new(Target::new(config))).await?;
        Ok(ZooKeeperRegistry { shared })
    }

    /// Ends the shared session, for failure drills and tests: opens a new one, makes it current,
    /// and closes the old one as the server ends an expired session. Watches see their session end
    /// and watch again on the new one.
    ///
    /// # Errors
    /// When no new session opens, or the old one does not end within the connect timeout.
    pub async fn expire_shared_session(&self) -> Result<(), BackendError> {
        let old = self.shared.renew().await?;
        let timeout = self.target().connect_timeout();
        tokio::time::timeout(timeout, connect::wait_ended(old)).await.map_err(|_| BackendError::Failed {
            backend: connect::BACKEND,
            action: "close the replaced shared session".into(),
            detail: format!("it did not end within {timeout:?} (an operation on it is still running)"),
        })
    }

    fn target(&self) -> &Target {
        self.shared.target()
    }

    async fn open_session(&self) -> Result<Box<dyn RegistrySession>, BackendError> {
        let session = ZooKeeperSession::open(self.shared.target().clone()).await?;
        Ok(Box::new(session))
    }

    async fn read_nodes(&self, env: Env, appkey: &str) -> Result<Vec<RegisteredNode>, BackendError> {
        let app = app(env, appkey, "read")?;
        let client = self.shared.get().await?;
        let nodes =
            app.read_all(&client).await.map_err(|e| self.target().error(format!("read {}", app.path), &e))?;
        Ok(nodes.into_values().filter_map(nodes::Child::usable).collect())
    }

    async fn read_apps(&self, env: Env) -> Result<Vec<String>, BackendError> {
        let path = zk_env_path(env);
        let client = self.shared.get().await?;
        match client.list_children(&path).await {
            Ok(mut apps) => {
                apps.sort();
                Ok(apps)
            }
            Err(zk::Error::NoNode) => Ok(Vec::new()),
            Err(err) => Err(self.target().error(format!("list {path}"), &err)),
        }
    }

    async fn update_node(&self, key: &NodeKey, data: &NodeData) -> Result<bool, BackendError> {
        let path = key.zk_node_path();
        let client = self.shared.get().await?;
        match client.set_data(&path, &data.to_json(), None).await {
            Ok(_) => Ok(true),
            Err(zk::Error::NoNode) => Ok(false),
            Err(err) => Err(self.target().error(format!("set {path}"), &err)),
        }
    }
}

/// The app of `appkey`, once the appkey is known to make a sound path.
fn app(env: Env, appkey: &str, action: &str) -> Result<App, BackendError> {
    let app = App::new(env, appkey);
    match check_appkey(appkey) {
        Ok(()) => Ok(app),
        Err(err) => Err(BackendError::Failed {
            backend: connect::BACKEND,
            action: format!("{action} {}", app.path),
            detail: err.to_string(),
        }),
    }
}

impl fmt::Debug for ZooKeeperRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZooKeeperRegistry").field("addr", &self.target().addr()).finish_non_exhaustive()
    }
}

impl Registry for ZooKeeperRegistry {
    fn session(&self) -> BoxFuture<'_, Result<Box<dyn RegistrySession>, BackendError>> {
        Box::pin(self.open_session())
    }

    fn watch_app(&self, env: Env, appkey: &str) -> BoxFuture<'_, Result<AppWatch, BackendError>> {
        let app = app(env, appkey, "watch");
        Box::pin(async move { watch::start(self.shared.clone(), app?).await })
    }

    fn nodes(&self, env: Env, appkey: &str) -> BoxFuture<'_, Result<Vec<RegisteredNode>, BackendError>> {
        let appkey = appkey.to_owned();
        Box::pin(async move { self.read_nodes(env, &appkey).await })
    }

    fn node<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<Option<NodeData>, BackendError>> {
        Box::pin(async move {
            let path = key.zk_node_path();
            let client = self.shared.get().await?;
            match client.get_data(&path).await {
                // Data probe cannot use is no node to operators (as in `nodes`).
                Ok((bytes, _)) => Ok(NodeData::from_json(&bytes).ok()),
                Err(zk::Error::NoNode) => Ok(None),
                Err(err) => Err(self.target().error(format!("read {path}"), &err)),
            }
        })
    }

    fn apps(&self, env: Env) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        Box::pin(self.read_apps(env))
    }

    fn update(&self, key: &NodeKey, data: &NodeData) -> BoxFuture<'_, Result<bool, BackendError>> {
        let (key, data) = (key.clone(), data.clone());
        Box::pin(async move { self.update_node(&key, &data).await })
    }

    fn watch_rule(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<RuleWatch, BackendError>> {
        let rule = Rule::new(env, appkey, service, "watch");
        Box::pin(async move { rules::watch(self.shared.clone(), rule?).await })
    }

    fn read_rule(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<Option<StoredRule>, BackendError>> {
        let rule = Rule::new(env, appkey, service, "read");
        Box::pin(async move { rule?.read(&self.shared.get().await?, self.target()).await })
    }

    fn write_rule<'a>(
        &'a self,
        env: Env,
        appkey: &'a str,
        service: &'a str,
        text: &'a str,
        expected: Option<i32>,
    ) -> BoxFuture<'a, Result<i32, BackendError>> {
        let rule = Rule::new(env, appkey, service, "write");
        Box::pin(async move { rule?.write(&self.shared.get().await?, self.target(), text, expected).await })
    }

    fn rule_history(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<Vec<StoredRule>, BackendError>> {
        let rule = Rule::new(env, appkey, service, "read the history of");
        Box::pin(async move { rule?.history(&self.shared.get().await?, self.target()).await })
    }

    fn acl<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<Vec<AclEntry>>, BackendError>> {
        Box::pin(self.read_acl(path))
    }

    fn set_acl<'a>(
        &'a self,
        path: &'a str,
        acl: &'a [AclEntry],
        create: bool,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.write_acl(path, acl, create))
    }

    fn operator_digest(&self) -> Option<String> {
        self.target().operator_digest()
    }

    fn publish_operator<'a>(
        &'a self,
        env: Env,
        operator: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.write_metadata(env, operator))
    }

    fn children<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<Vec<String>>, BackendError>> {
        Box::pin(self.read_children(path))
    }
}
