//! The embedded registry: an in-memory tree of apps and their ephemeral nodes, with sessions and
//! watches that behave as ZooKeeper's do, and the services' rule documents (in [`super::rules`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use super::rules::EmbeddedRules;
use super::session::EmbeddedSession;
use crate::registry::backend::{
    AppNodes, AppWatch, BackendError, RegisteredNode, Registry, RegistrySession, RuleWatch, StoredRule,
};
use crate::registry::layout::{self, Env, NodeData, NodeKey};
use crate::service::BoxFuture;

/// The `backend` of this registry's errors.
pub(super) const BACKEND: &str = "embedded registry";

/// An in-process registry with ZooKeeper's semantics: persistent app paths, ephemeral nodes owned
/// by a session, and watches that see every change. Clones share one tree.
///
/// A session ends when it is closed, expired, or dropped (as a dropped ZooKeeper client's session
/// expires on the server); its nodes go at that moment. Rule documents are kept apart from the
/// apps, as ZooKeeper keeps them outside `/services`.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedRegistry {
    state: Arc<Mutex<State>>,
    pub(super) rules: EmbeddedRules,
}

/// The tree: every app path (or watched app) of every env, and the live sessions.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) live_sessions: HashSet<u64>,
    pub(super) apps: HashMap<(Env, String), AppState>,
}

/// One `/services/{env}/{appkey}`: its ephemeral children and the watch on it.
#[derive(Debug, Default)]
pub(super) struct AppState {
    /// Whether the persistent app path exists; once created it stays, as in ZooKeeper.
    pub(super) created: bool,
    generation: u64,
    /// The children by ZooKeeper name, so they come out sorted as the trait promises.
    pub(super) nodes: BTreeMap<String, OwnedNode>,
    watch: Option<watch::Sender<Arc<AppNodes>>>,
}

/// An ephemeral node and the session that owns it.
#[derive(Debug)]
pub(super) struct OwnedNode {
    pub(super) session: u64,
    pub(super) node: RegisteredNode,
}

impl AppState {
    fn snapshot(&self) -> Arc<AppNodes> {
        let nodes = self.nodes.values().map(|owned| owned.node.clone()).collect();
        Arc::new(AppNodes { generation: self.generation, nodes, unusable: Vec::new() })
    }

    /// Records a change: a new generation, sent to the watchers; a watch nobody reads is dropped.
    pub(super) fn changed(&mut self) {
        self.generation += 1;
        if let Some(sender) = self.watch.take().filter(|sender| sender.receiver_count() > 0) {
            sender.send_replace(self.snapshot());
            self.watch = Some(sender);
        }
    }
}

/// Locks the tree; a panic elsewhere cannot leave it half-changed, so a poisoned lock is fine.
pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks an appkey given to a read or a watch, as ZooKeeper would reject a bad path.
fn check_appkey(env: Env, appkey: &str, action: &str) -> Result<(), BackendError> {
    layout::check_appkey(appkey).map_err(|err| BackendError::Failed {
        backend: BACKEND,
        action: format!("{action} {}", layout::zk_app_path(env, appkey)),
        detail: err.to_string(),
    })
}

impl EmbeddedRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a session; the trait's [`Registry::session`] boxes it.
    pub(super) fn open_session(&self) -> EmbeddedSession {
        EmbeddedSession::open(self.state.clone())
    }

    fn watch_now(&self, env: Env, appkey: &str) -> Result<AppWatch, BackendError> {
        check_appkey(env, appkey, "watch")?;
        let mut state = lock(&self.state);
        // Prune watches nobody reads, and the watched-only apps they kept.
        state.apps.retain(|_, app| {
            app.watch = app.watch.take().filter(|sender| sender.receiver_count() > 0);
            app.created || app.watch.is_some()
        });
        let app = state.apps.entry((env, appkey.to_owned())).or_default();
        if let Some(sender) = &app.watch {
            return Ok(sender.subscribe());
        }
        let (sender, receiver) = watch::channel(app.snapshot());
        app.watch = Some(sender);
        Ok(receiver)
    }

    fn nodes_now(&self, env: Env, appkey: &str) -> Result<Vec<RegisteredNode>, BackendError> {
        check_appkey(env, appkey, "list")?;
        let state = lock(&self.state);
        let app = state.apps.get(&(env, appkey.to_owned()));
        Ok(app.map(|app| app.nodes.values().map(|owned| owned.node.clone()).collect()).unwrap_or_default())
    }

    fn apps_now(&self, env: Env) -> Vec<String> {
        let state = lock(&self.state);
        let mut apps: Vec<String> = state
            .apps
            .iter()
            .filter(|((app_env, _), app)| *app_env == env && app.created)
            .map(|((_, appkey), _)| appkey.clone())
            .collect();
        apps.sort();
        apps
    }

    fn update_now(&self, key: &NodeKey, data: &NodeData) -> bool {
        let mut state = lock(&self.state);
        let Some(app) = state.apps.get_mut(&(key.env(), key.appkey().to_owned())) else { return false };
        let Some(owned) = app.nodes.get_mut(&key.zk_child()) else { return false };
        owned.node.data = data.clone();
        app.changed();
        true
    }
}

impl Registry for EmbeddedRegistry {
    fn session(&self) -> BoxFuture<'_, Result<Box<dyn RegistrySession>, BackendError>> {
        Box::pin(async move {
            let session: Box<dyn RegistrySession> = Box::new(self.open_session());
            Ok(session)
        })
    }

    fn watch_app(&self, env: Env, appkey: &str) -> BoxFuture<'_, Result<AppWatch, BackendError>> {
        let result = self.watch_now(env, appkey);
        Box::pin(async move { result })
    }

    fn nodes(&self, env: Env, appkey: &str) -> BoxFuture<'_, Result<Vec<RegisteredNode>, BackendError>> {
        let result = self.nodes_now(env, appkey);
        Box::pin(async move { result })
    }

    fn apps(&self, env: Env) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        Box::pin(async move { Ok(self.apps_now(env)) })
    }

    fn update(&self, key: &NodeKey, data: &NodeData) -> BoxFuture<'_, Result<bool, BackendError>> {
        // `key` and `data` do not live as long as the future, so the update happens at the call.
        let updated = self.update_now(key, data);
        Box::pin(async move { Ok(updated) })
    }

    fn watch_rule(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<RuleWatch, BackendError>> {
        let result = self.rules.watch(env, appkey, service);
        Box::pin(async move { result })
    }

    fn read_rule(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<Option<StoredRule>, BackendError>> {
        let result = self.rules.read(env, appkey, service);
        Box::pin(async move { result })
    }

    fn write_rule<'a>(
        &'a self,
        env: Env,
        appkey: &'a str,
        service: &'a str,
        text: &'a str,
        expected: Option<i32>,
    ) -> BoxFuture<'a, Result<i32, BackendError>> {
        Box::pin(async move { self.rules.write(env, appkey, service, text, expected) })
    }

    fn rule_history(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<Vec<StoredRule>, BackendError>> {
        let result = self.rules.history(env, appkey, service);
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(env: Env, appkey: &str, service: &str, port: u16) -> NodeKey {
        NodeKey::new(env, appkey, service, "10.0.0.1", port).unwrap()
    }

    fn data(port: u16) -> NodeData {
        NodeData::new("10.0.0.1", port)
    }

    fn children(nodes: &AppNodes) -> Vec<String> {
        nodes.nodes.iter().map(|node| node.key.zk_child()).collect()
    }

    #[tokio::test]
    async fn watch_is_current_at_once() {
        let registry = EmbeddedRegistry::new();
        let session = registry.session().await.unwrap();
        session.register(&key(Env::Dev, "app", "Svc", 1), &data(1)).await.unwrap();
        let watch = registry.watch_app(Env::Dev, "app").await.unwrap();
        assert_eq!(children(&watch.borrow()), ["Svc_10.0.0.1_1"]);
        assert!(watch.borrow().generation > 0);
        let missing = registry.watch_app(Env::Dev, "missing").await.unwrap();
        assert_eq!(*missing.borrow(), Arc::new(AppNodes::default()));
    }

    #[tokio::test]
    async fn watch_follows_register_update_deregister_with_rising_generation() {
        let registry = EmbeddedRegistry::new();
        let mut watch = registry.watch_app(Env::Dev, "app").await.unwrap();
        let mut last = watch.borrow_and_update().generation;
        let mut next = async || {
            watch.changed().await.unwrap();
            let nodes = watch.borrow_and_update().clone();
            assert!(nodes.generation > last, "generation {} after {last}", nodes.generation);
            last = nodes.generation;
            nodes
        };
        let (k, session) = (key(Env::Dev, "app", "Svc", 1), registry.session().await.unwrap());
        session.register(&k, &data(1)).await.unwrap();
        assert_eq!(next().await.nodes, [RegisteredNode { key: k.clone(), data: data(1) }]);
        let heavier = NodeData { weight: 50.into(), ..data(1) };
        assert!(registry.update(&k, &heavier).await.unwrap());
        assert_eq!(next().await.nodes[0].data.weight, 50);
        session.deregister(&k).await.unwrap();
        assert!(next().await.nodes.is_empty());
        assert!(!registry.update(&k, &heavier).await.unwrap(), "no live node to update");
    }

    #[tokio::test]
    async fn nodes_are_sorted_by_zookeeper_name() {
        let registry = EmbeddedRegistry::new();
        let session = registry.session().await.unwrap();
        for (service, port) in [("Beta", 2), ("Alpha", 10), ("Alpha", 9)] {
            session.register(&key(Env::Dev, "app", service, port), &data(port)).await.unwrap();
        }
        let expected = ["Alpha_10.0.0.1_10", "Alpha_10.0.0.1_9", "Beta_10.0.0.1_2"];
        let watch = registry.watch_app(Env::Dev, "app").await.unwrap();
        assert_eq!(children(&watch.borrow()), expected);
        let nodes = registry.nodes(Env::Dev, "app").await.unwrap();
        assert_eq!(nodes.iter().map(|node| node.key.zk_child()).collect::<Vec<_>>(), expected);
        assert_eq!(watch.borrow().service("Alpha").count(), 2);
    }

    #[tokio::test]
    async fn update_of_an_absent_node_is_false() {
        let registry = EmbeddedRegistry::new();
        assert!(!registry.update(&key(Env::Dev, "app", "Svc", 1), &data(1)).await.unwrap());
        let session = registry.session().await.unwrap();
        session.register(&key(Env::Dev, "app", "Svc", 1), &data(1)).await.unwrap();
        assert!(!registry.update(&key(Env::Dev, "app", "Svc", 2), &data(2)).await.unwrap());
        assert!(!registry.update(&key(Env::Prod, "app", "Svc", 1), &data(1)).await.unwrap());
    }

    #[tokio::test]
    async fn apps_are_the_created_paths_sorted_and_they_persist() {
        let registry = EmbeddedRegistry::new();
        let _watch = registry.watch_app(Env::Dev, "watched_only").await.unwrap();
        let session = registry.session().await.unwrap();
        for appkey in ["zeta", "alpha"] {
            session.register(&key(Env::Dev, appkey, "Svc", 1), &data(1)).await.unwrap();
        }
        assert_eq!(registry.apps(Env::Dev).await.unwrap(), ["alpha", "zeta"]);
        session.close().await;
        assert_eq!(registry.apps(Env::Dev).await.unwrap(), ["alpha", "zeta"], "app paths are persistent");
        assert!(registry.nodes(Env::Dev, "alpha").await.unwrap().is_empty());
        assert!(registry.apps(Env::Prod).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn envs_are_separate() {
        let registry = EmbeddedRegistry::new();
        let prod = registry.watch_app(Env::Prod, "app").await.unwrap();
        let session = registry.session().await.unwrap();
        session.register(&key(Env::Dev, "app", "Svc", 1), &data(1)).await.unwrap();
        assert!(!prod.has_changed().unwrap());
        assert!(prod.borrow().nodes.is_empty());
        assert!(registry.nodes(Env::Prod, "app").await.unwrap().is_empty());
        assert_eq!(registry.nodes(Env::Dev, "app").await.unwrap().len(), 1);
        session.deregister(&key(Env::Prod, "app", "Svc", 1)).await.unwrap();
        assert_eq!(registry.nodes(Env::Dev, "app").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn bad_appkeys_are_refused() {
        let registry = EmbeddedRegistry::new();
        let err = registry.watch_app(Env::Dev, "a/b").await.unwrap_err();
        assert!(matches!(err, BackendError::Failed { backend: "embedded registry", .. }), "{err:?}");
        assert!(err.to_string().contains("/services/dev/a/b"), "{err}");
        assert!(registry.nodes(Env::Dev, "").await.is_err());
    }

    #[tokio::test]
    async fn watches_nobody_reads_are_pruned() {
        let registry = EmbeddedRegistry::new();
        let first = registry.watch_app(Env::Dev, "app").await.unwrap();
        let second = registry.watch_app(Env::Dev, "app").await.unwrap();
        assert!(first.same_channel(&second), "one sender per watched app");
        drop((first, second));
        let _other = registry.watch_app(Env::Dev, "other").await.unwrap();
        assert!(!lock(&registry.state).apps.contains_key(&(Env::Dev, "app".to_owned())));

        let session = registry.session().await.unwrap();
        drop(registry.watch_app(Env::Dev, "created").await.unwrap());
        session.register(&key(Env::Dev, "created", "Svc", 1), &data(1)).await.unwrap();
        let state = lock(&registry.state);
        let created = &state.apps[&(Env::Dev, "created".to_owned())];
        assert!(created.watch.is_none() && created.created);
    }
}
