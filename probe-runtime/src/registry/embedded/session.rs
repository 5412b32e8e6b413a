//! A session of the embedded registry: the lifetime of a provider's ephemeral nodes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::registry::{BACKEND, OwnedNode, State, lock};
use crate::registry::backend::{BackendError, RegisteredNode, RegistrySession};
use crate::registry::layout::{NodeData, NodeKey};
use crate::service::BoxFuture;

/// Session ids are unique in the process, so logs of two registries never mix them up.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// A session of an [`EmbeddedRegistry`](super::EmbeddedRegistry). It ends when closed, expired or
/// dropped, and its nodes go then.
#[derive(Debug)]
pub(super) struct EmbeddedSession {
    state: Arc<Mutex<State>>,
    id: u64,
    ended: watch::Sender<bool>,
}

impl EmbeddedSession {
    /// Opens a live session on `state`.
    pub(super) fn open(state: Arc<Mutex<State>>) -> Self {
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        lock(&state).live_sessions.insert(id);
        EmbeddedSession { state, id, ended: watch::Sender::new(false) }
    }

    /// Ends the session once: removes its nodes, tells the watchers, then fires `ended`.
    fn end(&self) {
        {
            let mut state = lock(&self.state);
            if state.live_sessions.remove(&self.id) {
                for app in state.apps.values_mut() {
                    let before = app.nodes.len();
                    app.nodes.retain(|_, owned| owned.session != self.id);
                    if app.nodes.len() != before {
                        app.changed();
                    }
                }
            }
        }
        self.ended.send_replace(true);
    }

    fn ended_error() -> BackendError {
        BackendError::SessionEnded { backend: BACKEND }
    }

    fn register_now(&self, key: &NodeKey, data: &NodeData) -> Result<(), BackendError> {
        let mut state = lock(&self.state);
        if !state.live_sessions.contains(&self.id) {
            return Err(Self::ended_error());
        }
        let app = state.apps.entry((key.env(), key.appkey().to_owned())).or_default();
        app.created = true;
        let node = RegisteredNode { key: key.clone(), data: data.clone() };
        app.nodes.insert(key.zk_child(), OwnedNode { session: self.id, node });
        app.changed();
        Ok(())
    }

    fn deregister_now(&self, key: &NodeKey) -> Result<(), BackendError> {
        let mut state = lock(&self.state);
        if !state.live_sessions.contains(&self.id) {
            return Err(Self::ended_error());
        }
        let Some(app) = state.apps.get_mut(&(key.env(), key.appkey().to_owned())) else { return Ok(()) };
        let child = key.zk_child();
        if app.nodes.get(&child).is_some_and(|owned| owned.session == self.id) {
            app.nodes.remove(&child);
            app.changed();
        }
        Ok(())
    }
}

impl Drop for EmbeddedSession {
    fn drop(&mut self) {
        self.end();
    }
}

impl RegistrySession for EmbeddedSession {
    fn register<'a>(
        &'a self,
        key: &'a NodeKey,
        data: &'a NodeData,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move { self.register_now(key, data) })
    }

    fn deregister<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move { self.deregister_now(key) })
    }

    fn ended(&self) -> BoxFuture<'_, ()> {
        let mut ended = self.ended.subscribe();
        Box::pin(async move {
            // The sender lives in `self`, which outlives this future, so this waits for `true`.
            let _ = ended.wait_for(|ended| *ended).await;
        })
    }

    fn id(&self) -> String {
        format!("embedded session {:#x}", self.id)
    }

    fn expire(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.end();
            Ok(())
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.end();
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::EmbeddedRegistry;
    use super::*;
    use crate::registry::backend::{AppWatch, Registry};
    use crate::registry::layout::Env;

    const PATIENCE: Duration = Duration::from_secs(5);

    fn key(port: u16) -> NodeKey {
        NodeKey::new(Env::Dev, "app", "Svc", "10.0.0.1", port).unwrap()
    }

    fn data(weight: u32) -> NodeData {
        NodeData { weight: weight.into(), ..NodeData::new("10.0.0.1", 1) }
    }

    fn ports(watch: &mut AppWatch) -> Vec<u16> {
        watch.borrow_and_update().nodes.iter().map(|node| node.key.port()).collect()
    }

    #[tokio::test]
    async fn a_later_session_replaces_the_node_at_the_same_key() {
        let registry = EmbeddedRegistry::new();
        let mut watch = registry.watch_app(Env::Dev, "app").await.unwrap();
        let (old, new) = (registry.session().await.unwrap(), registry.session().await.unwrap());
        old.register(&key(1), &data(1)).await.unwrap();
        new.register(&key(1), &data(2)).await.unwrap();
        assert_eq!(watch.borrow_and_update().nodes, [RegisteredNode { key: key(1), data: data(2) }]);

        old.deregister(&key(1)).await.unwrap();
        old.close().await;
        assert!(!watch.has_changed().unwrap(), "the old session no longer owns the node");
        assert_eq!(ports(&mut watch), [1]);
        new.close().await;
        assert!(ports(&mut watch).is_empty());
    }

    #[tokio::test]
    async fn close_removes_the_nodes_at_once_and_ends_the_session() {
        let registry = EmbeddedRegistry::new();
        let mut watch = registry.watch_app(Env::Dev, "app").await.unwrap();
        let (session, other) = (registry.open_session(), registry.open_session());
        session.register(&key(1), &data(1)).await.unwrap();
        other.register(&key(2), &data(1)).await.unwrap();
        let mut ended = session.ended.subscribe();
        Box::new(session).close().await;
        assert!(*ended.borrow_and_update(), "ended fires on close");
        assert_eq!(ports(&mut watch), [2], "only the closed session's nodes go");
    }

    #[tokio::test]
    async fn expire_removes_the_nodes_and_fires_ended() {
        let registry = EmbeddedRegistry::new();
        let mut watch = registry.watch_app(Env::Dev, "app").await.unwrap();
        let session = registry.session().await.unwrap();
        session.register(&key(1), &data(1)).await.unwrap();
        let expire = async {
            tokio::task::yield_now().await;
            session.expire().await.unwrap();
        };
        let ((), ()) = tokio::time::timeout(PATIENCE, async { tokio::join!(session.ended(), expire) })
            .await
            .expect("ended fires on expire");
        assert!(ports(&mut watch).is_empty());

        tokio::time::timeout(PATIENCE, session.ended()).await.expect("ended stays fired");
        let err = session.register(&key(2), &data(1)).await.unwrap_err();
        assert_eq!(err, BackendError::SessionEnded { backend: "embedded registry" });
        assert!(session.deregister(&key(1)).await.is_err());
        assert!(session.expire().await.is_ok(), "expiring twice is harmless");
        assert!(ports(&mut watch).is_empty());
    }

    #[tokio::test]
    async fn a_live_session_has_not_ended() {
        let registry = EmbeddedRegistry::new();
        let session = registry.session().await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(20), session.ended()).await.is_err());
    }

    #[tokio::test]
    async fn dropping_a_session_ends_it() {
        let registry = EmbeddedRegistry::new();
        let mut watch = registry.watch_app(Env::Dev, "app").await.unwrap();
        let session = registry.session().await.unwrap();
        session.register(&key(1), &data(1)).await.unwrap();
        let before = watch.borrow_and_update().generation;
        drop(session);
        tokio::time::timeout(PATIENCE, watch.changed()).await.unwrap().unwrap();
        let after = watch.borrow_and_update().clone();
        assert!(after.nodes.is_empty() && after.generation > before);
    }

    #[tokio::test]
    async fn ending_leaves_other_apps_untouched() {
        let registry = EmbeddedRegistry::new();
        let (session, other) = (registry.session().await.unwrap(), registry.session().await.unwrap());
        session.register(&key(1), &data(1)).await.unwrap();
        let other_key = NodeKey::new(Env::Dev, "other", "Svc", "10.0.0.1", 1).unwrap();
        other.register(&other_key, &data(1)).await.unwrap();
        let watch = registry.watch_app(Env::Dev, "other").await.unwrap();
        session.expire().await.unwrap();
        assert!(!watch.has_changed().unwrap());
        assert_eq!(registry.nodes(Env::Dev, "other").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn session_ids_are_unique() {
        let (one, two) = (EmbeddedRegistry::new(), EmbeddedRegistry::new());
        let ids = [
            one.session().await.unwrap().id(),
            one.session().await.unwrap().id(),
            two.session().await.unwrap().id(),
        ];
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
        assert!(ids[0].starts_with("embedded session 0x"), "{ids:?}");
    }
}
