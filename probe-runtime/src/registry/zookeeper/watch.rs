//! The live view of an app's providers: one persistent recursive watch on the app path, a full read
//! at start, then each event applied to what was read.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use zookeeper_client as zk;

use super::connect::{SessionWatch, SharedClient};
use super::nodes::{App, Child, NodeMap, Place};
use crate::registry::layout::UnusableNode;
use crate::registry::{AppNodes, AppWatch, BackendError, RegisteredNode};

/// How long to wait before reading everything again after a read failed.
const RETRY: Duration = Duration::from_secs(1);
/// Longest pause between attempts to watch again after the session ended.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts watching `app`: the returned view holds a full read and the task that follows changes
/// runs until every receiver is dropped.
pub(super) async fn start(shared: SharedClient, app: App) -> Result<AppWatch, BackendError> {
    let client = shared.get().await?;
    let (watcher, nodes) = watch_and_read(&shared, &client, &app)
        .await
        .map_err(|(action, err)| shared.target().error(format_args!("{action} {}", app.path), &err))?;
    let (usable, unusable) = split(&nodes);
    report(&app, &[], &unusable);
    let (tx, rx) = watch::channel(Arc::new(AppNodes { generation: 1, nodes: usable, unusable }));
    drop(client);
    let follower = Follower { shared, app, nodes, tx };
    tokio::spawn(follower.run(watcher));
    Ok(rx)
}

/// Adds the watch, then reads: a change made between the two is both read and reported, never
/// missed.
async fn watch_and_read(
    shared: &SharedClient,
    client: &zk::Client,
    app: &App,
) -> Result<(SessionWatch, NodeMap), (&'static str, zk::Error)> {
    let watcher = shared
        .watch(client, &app.path, zk::AddWatchMode::PersistentRecursive)
        .await
        .map_err(|e| ("watch", e))?;
    let nodes = app.read_all(client).await.map_err(|e| ("read", e))?;
    Ok((watcher, nodes))
}

/// The task behind one [`AppWatch`]. Its watch keeps the session it was added on; when the shared
/// session is renewed the watch ends and is added again on the new one, so the old one closes.
struct Follower {
    shared: SharedClient,
    app: App,
    /// What was last read, and published.
    nodes: NodeMap,
    tx: watch::Sender<Arc<AppNodes>>,
}

impl Follower {
    async fn run(mut self, mut watcher: SessionWatch) {
        // Set when a read failed: everything is read again then.
        let mut reread_at: Option<Instant> = None;
        loop {
            let event = tokio::select! {
                _ = self.tx.closed() => return,
                event = watcher.changed() => event,
                _ = sleep_until(reread_at) => {
                    reread_at = self.reread().await;
                    continue;
                }
            };
            tracing::debug!(path = %event.path, kind = %event.event_type, state = %event.session_state, "ZooKeeper event");
            match (event.event_type, event.session_state) {
                (zk::EventType::Session, state) if state.is_terminated() => {
                    // The watcher must not be polled after a terminal state.
                    tracing::info!(path = %self.app.path, %state, "the watch's ZooKeeper session ended; watching anew");
                    let Some(new_watcher) = self.rewatch().await else { return };
                    (watcher, reread_at) = (new_watcher, None);
                }
                // Events during the reconnection may be lost (ZOOKEEPER-4698): read everything.
                (
                    zk::EventType::Session,
                    zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly,
                ) => {
                    reread_at = self.reread().await;
                }
                // Disconnected: the view keeps what it holds until the client reconnects.
                (zk::EventType::Session, _) => {}
                (kind, _) => {
                    if let Err(err) = self.apply(kind, &event.path).await {
                        tracing::warn!(path = %event.path, %err, "could not read a watched ZooKeeper node");
                        reread_at = Some(Instant::now() + RETRY);
                    }
                }
            }
        }
    }

    /// Applies one node event.
    async fn apply(&mut self, kind: zk::EventType, path: &str) -> Result<(), zk::Error> {
        let client = &self.shared.current();
        match (self.app.locate(path), kind) {
            (Place::App, zk::EventType::NodeCreated | zk::EventType::NodeDeleted) => {
                self.nodes = self.app.read_all(client).await?;
            }
            // A deleted child is read too: a node replaced in one transaction (a provider taking
            // over its node from an expired session) is there again, and the table never shrinks.
            (
                Place::Child(child),
                zk::EventType::NodeCreated | zk::EventType::NodeDataChanged | zk::EventType::NodeDeleted,
            ) => {
                match self.app.read_one(client, child).await? {
                    Some(node) => self.nodes.insert(child.to_owned(), node),
                    None => self.nodes.remove(child),
                };
            }
            _ => return Ok(()),
        }
        self.publish();
        Ok(())
    }

    /// Reads everything again; on failure, says when to try next.
    async fn reread(&mut self) -> Option<Instant> {
        match self.app.read_all(&self.shared.current()).await {
            Ok(nodes) => {
                self.nodes = nodes;
                self.publish();
                None
            }
            Err(err) => {
                tracing::warn!(path = %self.app.path, %err, "could not read a watched ZooKeeper app");
                Some(Instant::now() + RETRY)
            }
        }
    }

    /// Watches again on the shared session that replaced the ended one, and reads everything.
    /// `None` when every receiver is gone.
    async fn rewatch(&mut self) -> Option<SessionWatch> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut shared = self.shared.clone();
            let app = &self.app;
            let attempt = async move {
                let client = shared.live().await.ok_or(("open", zk::Error::ClientClosed))?;
                let (watcher, nodes) = watch_and_read(&shared, &client, app).await?;
                Ok::<_, (&str, zk::Error)>((watcher, nodes))
            };
            tokio::select! {
                _ = self.tx.closed() => return None,
                attempt = attempt => match attempt {
                    Ok((watcher, nodes)) => {
                        self.nodes = nodes;
                        self.publish();
                        return Some(watcher);
                    }
                    Err((action, err)) => {
                        tracing::warn!(path = %self.app.path, action, %err, "could not watch a ZooKeeper app again");
                    }
                },
            }
            tokio::select! {
                _ = self.tx.closed() => return None,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn publish(&self) {
        publish(&self.tx, &self.nodes, &self.app);
    }
}

/// Sends `nodes` as the next generation, unless the view holds them already. Reports the nodes
/// that became unusable or usable again.
fn publish(tx: &watch::Sender<Arc<AppNodes>>, nodes: &NodeMap, app: &App) {
    let (usable, unusable) = split(nodes);
    tx.send_if_modified(|current| {
        if current.nodes == usable && current.unusable == unusable {
            return false;
        }
        report(app, &current.unusable, &unusable);
        *current = Arc::new(AppNodes { generation: current.generation + 1, nodes: usable, unusable });
        true
    });
}

/// The nodes probe can route to and those it cannot, in child order.
fn split(nodes: &NodeMap) -> (Vec<RegisteredNode>, Vec<UnusableNode>) {
    let mut usable = Vec::with_capacity(nodes.len());
    let mut unusable = Vec::new();
    for child in nodes.values() {
        match child {
            Child::Usable(node) => usable.push(node.clone()),
            Child::Unusable(bad) => unusable.push(bad.clone()),
        }
    }
    (usable, unusable)
}

/// Logs each node that became unusable (or changed reason) and each that no longer is, once per
/// change, and records the current ones in the process's metrics.
fn report(app: &App, before: &[UnusableNode], after: &[UnusableNode]) {
    let newly: Vec<&UnusableNode> = after.iter().filter(|n| !before.contains(n)).collect();
    for node in &newly {
        tracing::warn!(
            path = %app.path,
            child = %node.child,
            reason = %node.problem,
            data = %node.data,
            "a ZooKeeper node probe cannot use: it gets no calls until its data is fixed"
        );
    }
    for node in before.iter().filter(|n| !after.iter().any(|a| a.child == n.child)) {
        tracing::info!(path = %app.path, child = %node.child, "a ZooKeeper node that was unusable is fixed or gone");
    }
    crate::metrics::global().set_unusable_nodes(app.env, &app.appkey, after, &newly);
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegisteredNode;
    use crate::registry::layout::{Env, NodeData, NodeKey, UnusableReason, Weight};

    fn node(port: u16) -> (String, Child) {
        let key = NodeKey::new(Env::Dev, "shop", "S", "1.2.3.4", port).expect("key");
        (key.zk_child(), Child::Usable(RegisteredNode { key, data: NodeData::new("1.2.3.4", port) }))
    }

    fn app() -> App {
        App::new(Env::Dev, "watch_test")
    }

    #[test]
    fn publishes_only_changes_and_counts_generations() {
        let (tx, mut rx) = watch::channel(Arc::new(AppNodes { generation: 1, ..AppNodes::default() }));
        rx.mark_unchanged();
        let mut nodes = NodeMap::new();
        publish(&tx, &nodes, &app());
        assert!(!rx.has_changed().expect("open"), "nothing changed");

        nodes.extend([node(81), node(80)]);
        publish(&tx, &nodes, &app());
        let seen = rx.borrow_and_update().clone();
        assert_eq!(seen.generation, 2);
        let ports: Vec<u16> = seen.nodes.iter().map(|n| n.key.port()).collect();
        assert_eq!(ports, [80, 81], "sorted by child name");

        publish(&tx, &nodes, &app());
        assert!(!rx.has_changed().expect("open"), "same nodes again");

        if let Some(Child::Usable(n)) = nodes.get_mut(&node(80).0) {
            n.data.weight = Weight::from(0);
        }
        publish(&tx, &nodes, &app());
        let seen = rx.borrow_and_update().clone();
        assert_eq!((seen.generation, seen.nodes[0].data.weight), (3, Weight::from(0)));
    }

    #[test]
    fn unusable_nodes_are_published_apart_and_counted() {
        let (tx, mut rx) = watch::channel(Arc::new(AppNodes::default()));
        let mut nodes = NodeMap::from([node(80)]);
        let problem = NodeData::from_json(b"[]").expect_err("not an object");
        let bad = UnusableNode::new("S_1.2.3.4_81", None, UnusableReason::Data(problem), b"[]");
        nodes.insert(bad.child.clone(), Child::Unusable(bad.clone()));
        publish(&tx, &nodes, &app());
        let seen = rx.borrow_and_update().clone();
        assert_eq!((seen.nodes.len(), seen.unusable.as_slice()), (1, std::slice::from_ref(&bad)));
        let recorded = crate::metrics::global().unusable_nodes(Env::Dev, "watch_test");
        assert_eq!(recorded, [("S_1.2.3.4_81".to_owned(), "not_object")]);
        nodes.remove(&bad.child);
        publish(&tx, &nodes, &app());
        assert!(rx.borrow_and_update().unusable.is_empty());
        assert!(crate::metrics::global().unusable_nodes(Env::Dev, "watch_test").is_empty());
    }
}
