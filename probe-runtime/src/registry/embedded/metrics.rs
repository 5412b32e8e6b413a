//! The embedded metrics store: each node's latest window and its history, expiring as the Redis
//! keys do.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::registry::backend::{BackendError, ClientReport, METRICS_HISTORY_LEN, MetricsStore, NodeMetrics};
use crate::registry::layout::{Env, NodeKey};
use crate::service::BoxFuture;

/// What one node published, and until when it is current.
#[derive(Debug)]
struct Published {
    history: VecDeque<NodeMetrics>,
    expires: Instant,
}

/// An in-process metrics store with the Redis store's semantics: a node's windows expire after
/// the TTL it published them with. Clones share one store.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedMetrics {
    nodes: Arc<Mutex<HashMap<NodeKey, Published>>>,
    /// Client reports by env and [`ClientReport::field`].
    clients: Arc<Mutex<HashMap<(Env, String), ClientReport>>>,
}

impl EmbeddedMetrics {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<NodeKey, Published>> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish_now(&self, key: &NodeKey, metrics: &NodeMetrics, ttl: Duration) {
        let now = Instant::now();
        let mut nodes = self.lock();
        nodes.retain(|_, p| p.expires > now);
        let node =
            nodes.entry(key.clone()).or_insert_with(|| Published { history: VecDeque::new(), expires: now });
        if node.history.len() == METRICS_HISTORY_LEN {
            node.history.pop_front();
        }
        node.history.push_back(metrics.clone());
        node.expires = now + ttl;
    }

    fn current(&self, key: &NodeKey) -> Option<Vec<NodeMetrics>> {
        let nodes = self.lock();
        let node = nodes.get(key).filter(|p| p.expires > Instant::now())?;
        Some(node.history.iter().cloned().collect())
    }
}

impl MetricsStore for EmbeddedMetrics {
    fn publish<'a>(
        &'a self,
        key: &'a NodeKey,
        metrics: &'a NodeMetrics,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.publish_now(key, metrics, ttl);
        Box::pin(async { Ok(()) })
    }

    fn latest<'a>(
        &'a self,
        keys: &'a [NodeKey],
    ) -> BoxFuture<'a, Result<Vec<Option<NodeMetrics>>, BackendError>> {
        let latest = keys.iter().map(|key| self.current(key).and_then(|mut h| h.pop())).collect();
        Box::pin(async { Ok(latest) })
    }

    fn history<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<Vec<NodeMetrics>, BackendError>> {
        let history = self.current(key).unwrap_or_default();
        Box::pin(async { Ok(history) })
    }

    fn report_client<'a>(
        &'a self,
        env: Env,
        report: &'a ClientReport,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.insert((env, report.field()), report.clone());
        Box::pin(async { Ok(()) })
    }

    fn client_reports(&self, env: Env) -> BoxFuture<'_, Result<Vec<ClientReport>, BackendError>> {
        let now = crate::registry::backend::unix_ms();
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.retain(|_, report| !report.is_stale(now));
        let mut current: Vec<ClientReport> =
            clients.iter().filter(|((e, _), _)| *e == env).map(|(_, r)| r.clone()).collect();
        drop(clients);
        current.sort_by(|a, b| (&a.appkey, &a.service, &a.client).cmp(&(&b.appkey, &b.service, &b.client)));
        Box::pin(async { Ok(current) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::layout::Env;

    fn window(calls: u64) -> NodeMetrics {
        NodeMetrics { calls, ..NodeMetrics::default() }
    }

    #[tokio::test]
    async fn latest_history_and_expiry() {
        let store = EmbeddedMetrics::new();
        let a = NodeKey::new(Env::Dev, "m", "S", "10.0.0.1", 1).unwrap();
        let b = NodeKey::new(Env::Dev, "m", "S", "10.0.0.1", 2).unwrap();
        for calls in 0..(METRICS_HISTORY_LEN as u64 + 5) {
            store.publish(&a, &window(calls), Duration::from_secs(60)).await.unwrap();
        }
        let latest = store.latest(&[a.clone(), b.clone()]).await.unwrap();
        assert_eq!(latest[0].as_ref().map(|m| m.calls), Some(METRICS_HISTORY_LEN as u64 + 4));
        assert_eq!(latest[1], None);
        let history = store.history(&a).await.unwrap();
        assert_eq!(history.len(), METRICS_HISTORY_LEN);
        assert_eq!(history[0].calls, 5);

        store.publish(&b, &window(1), Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.latest(std::slice::from_ref(&b)).await.unwrap(), vec![None]);
        assert!(store.history(&b).await.unwrap().is_empty());
    }
}
