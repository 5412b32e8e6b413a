//! The embedded settings store: node settings per env, as the Redis hash `thriftprobe_{env}`
//! holds them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::registry::backend::{BackendError, RegisteredNode, SettingsStore};
use crate::registry::layout::{Env, NodeData, NodeKey};
use crate::service::BoxFuture;

/// The settings of every env, each keyed by Redis field so `all` comes out sorted.
type Hashes = HashMap<Env, BTreeMap<String, RegisteredNode>>;

/// An in-process settings store with the Redis store's semantics: settings outlive the ephemeral
/// nodes, and `get_or_put` is atomic. Clones share one store. Its errors name the
/// "embedded settings store".
#[derive(Debug, Clone, Default)]
pub struct EmbeddedSettings {
    hashes: Arc<Mutex<Hashes>>,
}

impl EmbeddedSettings {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Hashes> {
        self.hashes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get_now(&self, key: &NodeKey) -> Option<NodeData> {
        let hashes = self.lock();
        hashes.get(&key.env()).and_then(|hash| hash.get(&key.redis_field())).map(|node| node.data.clone())
    }

    fn put_now(&self, key: &NodeKey, data: &NodeData) {
        let node = RegisteredNode { key: key.clone(), data: data.clone() };
        self.lock().entry(key.env()).or_default().insert(key.redis_field(), node);
    }

    fn get_or_put_now(&self, key: &NodeKey, data: &NodeData) -> NodeData {
        let mut hashes = self.lock();
        let hash = hashes.entry(key.env()).or_default();
        let node = hash
            .entry(key.redis_field())
            .or_insert_with(|| RegisteredNode { key: key.clone(), data: data.clone() });
        node.data.clone()
    }

    fn remove_now(&self, key: &NodeKey) -> bool {
        let mut hashes = self.lock();
        hashes.get_mut(&key.env()).is_some_and(|hash| hash.remove(&key.redis_field()).is_some())
    }

    fn all_now(&self, env: Env) -> Vec<RegisteredNode> {
        self.lock().get(&env).map(|hash| hash.values().cloned().collect()).unwrap_or_default()
    }
}

impl SettingsStore for EmbeddedSettings {
    fn get<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<Option<NodeData>, BackendError>> {
        Box::pin(async move { Ok(self.get_now(key)) })
    }

    fn put<'a>(&'a self, key: &'a NodeKey, data: &'a NodeData) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.put_now(key, data);
            Ok(())
        })
    }

    fn get_or_put<'a>(
        &'a self,
        key: &'a NodeKey,
        data: &'a NodeData,
    ) -> BoxFuture<'a, Result<NodeData, BackendError>> {
        Box::pin(async move { Ok(self.get_or_put_now(key, data)) })
    }

    fn remove<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move { Ok(self.remove_now(key)) })
    }

    fn all(&self, env: Env) -> BoxFuture<'_, Result<Vec<RegisteredNode>, BackendError>> {
        Box::pin(async move { Ok(self.all_now(env)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(env: Env, appkey: &str, port: u16) -> NodeKey {
        NodeKey::new(env, appkey, "Svc", "10.0.0.1", port).unwrap()
    }

    fn weighted(weight: u32) -> NodeData {
        NodeData { weight: weight.into(), ..NodeData::new("10.0.0.1", 9000) }
    }

    #[tokio::test]
    async fn put_get_remove_roundtrip() {
        let store = EmbeddedSettings::new();
        let key = key(Env::Dev, "app", 9000);
        assert_eq!(store.get(&key).await.unwrap(), None);
        store.put(&key, &weighted(5)).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Some(weighted(5)));
        store.put(&key, &weighted(7)).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Some(weighted(7)));
        assert!(store.remove(&key).await.unwrap());
        assert!(!store.remove(&key).await.unwrap());
        assert_eq!(store.get(&key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn get_or_put_keeps_what_is_stored() {
        let store = EmbeddedSettings::new();
        let key = key(Env::Dev, "app", 9000);
        assert_eq!(store.get_or_put(&key, &weighted(20)).await.unwrap(), weighted(20));
        assert_eq!(store.get_or_put(&key, &weighted(30)).await.unwrap(), weighted(20));
        assert_eq!(store.get(&key).await.unwrap(), Some(weighted(20)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn get_or_put_is_atomic_under_races() {
        let store = EmbeddedSettings::new();
        let key = key(Env::Dev, "app", 9000);
        let racers: Vec<_> = (1..=16)
            .map(|weight| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move { store.get_or_put(&key, &weighted(weight)).await.unwrap() })
            })
            .collect();
        let mut seen = Vec::new();
        for racer in racers {
            seen.push(racer.await.unwrap());
        }
        let stored = store.get(&key).await.unwrap().unwrap();
        assert!(seen.iter().all(|data| *data == stored), "every racer sees the one stored value");
    }

    #[tokio::test]
    async fn envs_are_separate_and_all_is_sorted_by_field() {
        let store = EmbeddedSettings::new();
        for (appkey, port) in [("zeta", 1), ("alpha", 2), ("alpha", 10)] {
            store.put(&key(Env::Dev, appkey, port), &weighted(1)).await.unwrap();
        }
        store.put(&key(Env::Prod, "alpha", 3), &weighted(1)).await.unwrap();
        let fields: Vec<String> =
            store.all(Env::Dev).await.unwrap().iter().map(|node| node.key.redis_field()).collect();
        assert_eq!(
            fields,
            ["alpha|dev|Svc|10.0.0.1|10", "alpha|dev|Svc|10.0.0.1|2", "zeta|dev|Svc|10.0.0.1|1"]
        );
        assert_eq!(store.all(Env::Prod).await.unwrap().len(), 1);
        assert_eq!(store.get(&key(Env::Prod, "alpha", 2)).await.unwrap(), None);
        assert!(!store.remove(&key(Env::Prod, "zeta", 1)).await.unwrap());
    }
}
