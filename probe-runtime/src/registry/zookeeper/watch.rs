//! The live view of an app's providers: one persistent recursive watch on the app path, a full read
//! at start, then each event applied to what was read. An event on one child reads that child
//! only, and changes only its entry in the published view ([`Published`]).

use std::time::Duration;

use tokio::time::Instant;
use zookeeper_client as zk;

use super::connect::{SessionWatch, SharedClient};
use super::nodes::{App, NodeMap, Place};
use super::published::Published;
use crate::registry::{AppWatch, BackendError};

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
    let (published, rx) = Published::new(app, nodes);
    drop(client);
    let follower = Follower { shared, published };
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
    /// What was last read, as published.
    published: Published,
}

impl Follower {
    async fn run(mut self, mut watcher: SessionWatch) {
        // Set when a read failed: everything is read again then.
        let mut reread_at: Option<Instant> = None;
        loop {
            let event = tokio::select! {
                _ = self.published.closed() => return,
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
                    tracing::info!(path = %self.published.app().path, %state, "the watch's ZooKeeper session ended; watching anew");
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

    /// Applies one node event: a child's event reads that child only.
    async fn apply(&mut self, kind: zk::EventType, path: &str) -> Result<(), zk::Error> {
        let client = &self.shared.current();
        let app = self.published.app();
        match (app.locate(path), kind) {
            (Place::App, zk::EventType::NodeCreated | zk::EventType::NodeDeleted) => {
                let nodes = app.read_all(client).await?;
                self.published.replace(nodes);
            }
            // A deleted child is read too: a node replaced in one transaction (a provider taking
            // over its node from an expired session) is there again, and the table never shrinks.
            (
                Place::Child(child),
                zk::EventType::NodeCreated | zk::EventType::NodeDataChanged | zk::EventType::NodeDeleted,
            ) => {
                let now = app.read_one(client, child).await?;
                self.published.set(child, now);
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads everything again; on failure, says when to try next.
    async fn reread(&mut self) -> Option<Instant> {
        match self.published.app().read_all(&self.shared.current()).await {
            Ok(nodes) => {
                self.published.replace(nodes);
                None
            }
            Err(err) => {
                tracing::warn!(path = %self.published.app().path, %err, "could not read a watched ZooKeeper app");
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
            let app = self.published.app().clone();
            let attempt = async move {
                let client = shared.live().await.ok_or(("open", zk::Error::ClientClosed))?;
                let (watcher, nodes) = watch_and_read(&shared, &client, &app).await?;
                Ok::<_, (&str, zk::Error)>((watcher, nodes))
            };
            tokio::select! {
                _ = self.published.closed() => return None,
                attempt = attempt => match attempt {
                    Ok((watcher, nodes)) => {
                        self.published.replace(nodes);
                        return Some(watcher);
                    }
                    Err((action, err)) => {
                        tracing::warn!(path = %self.published.app().path, action, %err, "could not watch a ZooKeeper app again");
                    }
                },
            }
            tokio::select! {
                _ = self.published.closed() => return None,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
