//! Rule documents on ZooKeeper: one persistent node per service at
//! `/probe/rules/{env}/{appkey}/{service}` (outside `/services`, whose app children Python clients
//! list), its data the document's UTF-8 text, and each replaced text kept as a persistent child
//! `r{version:010}` named by the data version it had, so the history lists in order.
//!
//! A write is one transaction (check the version, create the history child, set the data); a watch
//! is one persistent watch on the rule node, read again on every event and session change.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::time::Instant;
use zookeeper_client as zk;

use super::connect::{BACKEND, SessionWatch, SharedClient, Target};
use crate::registry::backend::{BackendError, RuleWatch, StoredRule};
use crate::registry::layout::{Env, check_appkey, check_service_name};

/// Root of every rule document in ZooKeeper, beside [`crate::registry::layout::ZK_ROOT`].
pub const ZK_RULES_ROOT: &str = "/probe/rules";

/// How long to wait before reading again after a read failed.
const RETRY: Duration = Duration::from_secs(1);
/// Longest pause between attempts to watch again after the session ended.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a first write creates the missing parent paths and tries again.
const CREATE_ATTEMPTS: usize = 3;

/// ZooKeeper path of a service's rule document: `/probe/rules/{env}/{appkey}/{service}`.
pub fn zk_rule_path(env: Env, appkey: &str, service: &str) -> String {
    format!("{ZK_RULES_ROOT}/{env}/{appkey}/{service}")
}

/// Name of the history child holding the text replaced at data version `version`.
fn history_child(version: i32) -> String {
    format!("r{version:010}")
}

/// The data version a history child's name stands for; `None` for other children.
fn history_version(child: &str) -> Option<i32> {
    let digits = child.strip_prefix('r')?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One service's rule document: its names and where it lives.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    appkey: String,
    service: String,
    /// `/probe/rules/{env}/{appkey}/{service}`.
    path: String,
}

impl Rule {
    /// The rule of `service` of `appkey`, once both names are known to make a sound path.
    pub(super) fn new(env: Env, appkey: &str, service: &str, action: &str) -> Result<Rule, BackendError> {
        let path = zk_rule_path(env, appkey, service);
        match check_appkey(appkey).and_then(|()| check_service_name(service)) {
            Ok(()) => Ok(Rule { appkey: appkey.to_owned(), service: service.to_owned(), path }),
            Err(err) => Err(BackendError::Failed {
                backend: BACKEND,
                action: format!("{action} {path}"),
                detail: err.to_string(),
            }),
        }
    }

    /// The path that holds the app's rule nodes.
    fn parent(&self) -> &str {
        self.path.rsplit_once('/').map_or(self.path.as_str(), |(parent, _)| parent)
    }

    fn conflict(&self, expected: Option<i32>, now: Option<i32>) -> BackendError {
        BackendError::rule_conflict(&self.appkey, &self.service, expected, now)
    }

    /// Reads the document now: `None` when there is none.
    pub(super) async fn read(
        &self,
        client: &zk::Client,
        target: &Target,
    ) -> Result<Option<StoredRule>, BackendError> {
        let read = read_raw(client, &self.path)
            .await
            .map_err(|e| target.error(format!("read {}", self.path), &e))?;
        read.map(|(bytes, version)| text(&self.path, bytes, version)).transpose()
    }

    /// The replaced documents, oldest first.
    pub(super) async fn history(
        &self,
        client: &zk::Client,
        target: &Target,
    ) -> Result<Vec<StoredRule>, BackendError> {
        let children = match client.list_children(&self.path).await {
            Ok(children) => children,
            Err(zk::Error::NoNode) => return Ok(Vec::new()),
            Err(err) => return Err(target.error(format!("list {}", self.path), &err)),
        };
        let mut versions: Vec<(i32, String)> = children
            .iter()
            .filter_map(|child| Some((history_version(child)?, format!("{}/{child}", self.path))))
            .collect();
        versions.sort();
        // Requests go out as they are made, so the reads run concurrently.
        let reads = join_all(versions.iter().map(|(_, path)| client.get_data(path))).await;
        let mut history = Vec::with_capacity(versions.len());
        for ((version, path), read) in versions.into_iter().zip(reads) {
            match read {
                Ok((bytes, _)) => history.push(text(&path, bytes, version)?),
                // Deleted with the document since the listing.
                Err(zk::Error::NoNode) => {}
                Err(err) => return Err(target.error(format!("read {path}"), &err)),
            }
        }
        Ok(history)
    }

    /// Writes `text` if the document is at `expected`; returns its new version.
    pub(super) async fn write(
        &self,
        client: &zk::Client,
        target: &Target,
        text: &str,
        expected: Option<i32>,
    ) -> Result<i32, BackendError> {
        match expected {
            None => self.create(client, target, text).await,
            Some(version) => self.replace(client, target, text, version).await,
        }
    }

    /// The first write: creates the node (and its missing parents).
    async fn create(&self, client: &zk::Client, target: &Target, text: &str) -> Result<i32, BackendError> {
        let error = |action: &str, path: &str, err: &zk::Error| target.error(format!("{action} {path}"), err);
        for _ in 0..CREATE_ATTEMPTS {
            match client.create(&self.path, text.as_bytes(), &target.persistent()).await {
                // A new node's data version is 0 (the returned stat is blank on 3.4 servers).
                Ok(_) => return Ok(0),
                Err(zk::Error::NoNode) => {
                    client
                        .mkdir(self.parent(), &target.persistent())
                        .await
                        .map_err(|e| error("create", self.parent(), &e))?;
                }
                Err(zk::Error::NodeExists) => {
                    let stat =
                        client.check_stat(&self.path).await.map_err(|e| error("stat", &self.path, &e))?;
                    // Unless it was deleted meanwhile: then create it again.
                    if let Some(stat) = stat {
                        return Err(self.conflict(None, Some(stat.version)));
                    }
                }
                Err(err) => return Err(error("create", &self.path, &err)),
            }
        }
        Err(BackendError::Failed {
            backend: BACKEND,
            action: format!("create {}", self.path),
            detail: format!("its parent or itself kept changing over {CREATE_ATTEMPTS} attempts"),
        })
    }

    /// A later write: one transaction checks the version, keeps the replaced text as a history
    /// child and sets the new text.
    async fn replace(
        &self,
        client: &zk::Client,
        target: &Target,
        text: &str,
        expected: i32,
    ) -> Result<i32, BackendError> {
        let action = || format!("write {}", self.path);
        let Some((old, version)) =
            read_raw(client, &self.path).await.map_err(|e| target.error(action(), &e))?
        else {
            return Err(self.conflict(Some(expected), None));
        };
        if version != expected {
            return Err(self.conflict(Some(expected), Some(version)));
        }
        let history = format!("{}/{}", self.path, history_child(expected));
        let mut multi = client.new_multi_writer();
        let add = |multi: &mut zk::MultiWriter<'_>| {
            multi.add_check_version(&self.path, expected)?;
            multi.add_create(&history, &old, &target.persistent())?;
            multi.add_set_data(&self.path, text.as_bytes(), Some(expected))
        };
        add(&mut multi).map_err(|e| target.error(action(), &e))?;
        match multi.commit().await {
            Ok(results) => Ok(results
                .into_iter()
                .find_map(|result| match result {
                    zk::MultiWriteResult::SetData { stat } => Some(stat.version),
                    _ => None,
                })
                .unwrap_or(expected + 1)),
            Err(zk::MultiWriteError::OperationFailed {
                source: zk::Error::BadVersion | zk::Error::NoNode,
                ..
            }) => {
                let now = client.check_stat(&self.path).await.map_err(|e| target.error(action(), &e))?;
                Err(self.conflict(Some(expected), now.map(|stat| stat.version)))
            }
            Err(zk::MultiWriteError::OperationFailed { source: zk::Error::NodeExists, .. }) => {
                Err(BackendError::BadData {
                    backend: BACKEND,
                    location: history,
                    detail: format!(
                        "the history of version {expected} is there already, yet that version is current"
                    ),
                })
            }
            Err(err) => Err(target.error(action(), &err.into())),
        }
    }
}

/// Reads a node's data and version: `None` when there is no node.
async fn read_raw(client: &zk::Client, path: &str) -> Result<Option<(Vec<u8>, i32)>, zk::Error> {
    match client.get_data(path).await {
        Ok((bytes, stat)) => Ok(Some((bytes, stat.version))),
        Err(zk::Error::NoNode) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The stored bytes as a document, which must be UTF-8.
fn text(path: &str, bytes: Vec<u8>, version: i32) -> Result<StoredRule, BackendError> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(StoredRule { text, version }),
        Err(err) => Err(BackendError::BadData {
            backend: BACKEND,
            location: path.to_owned(),
            detail: format!("a rule document must be UTF-8 text: {}", err.utf8_error()),
        }),
    }
}

/// Starts watching `rule`: the returned view holds a read made after the watch was added, and the
/// task that follows changes runs until every receiver is dropped.
pub(super) async fn watch(shared: SharedClient, rule: Rule) -> Result<RuleWatch, BackendError> {
    let client = shared.get().await?;
    let (watcher, read) = watch_and_read(&shared, &client, &rule)
        .await
        .map_err(|(action, err)| shared.target().error(format_args!("{action} {}", rule.path), &err))?;
    drop(client);
    let (tx, rx) = watch::channel(None);
    let follower = Follower { shared, rule, tx };
    follower.publish(read);
    tokio::spawn(follower.run(watcher));
    Ok(rx)
}

/// What one read found: the document's bytes and version, or none.
type Read = Option<(Vec<u8>, i32)>;

/// Adds the watch, then reads: a change made between the two is both read and reported.
async fn watch_and_read(
    shared: &SharedClient,
    client: &zk::Client,
    rule: &Rule,
) -> Result<(SessionWatch, Read), (&'static str, zk::Error)> {
    let watcher =
        shared.watch(client, &rule.path, zk::AddWatchMode::Persistent).await.map_err(|e| ("watch", e))?;
    let read = read_raw(client, &rule.path).await.map_err(|e| ("read", e))?;
    Ok((watcher, read))
}

/// The task behind one [`RuleWatch`]. Its watch keeps the session it was added on; when the shared
/// session is renewed the watch ends and is added again on the new one, so the old one closes.
struct Follower {
    shared: SharedClient,
    rule: Rule,
    tx: watch::Sender<Option<std::sync::Arc<StoredRule>>>,
}

impl Follower {
    async fn run(mut self, mut watcher: SessionWatch) {
        // Set when a read failed: the document is read again then.
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
            tracing::debug!(
                path = %event.path, kind = %event.event_type, state = %event.session_state,
                "ZooKeeper rule event"
            );
            match (event.event_type, event.session_state) {
                (zk::EventType::Session, state) if state.is_terminated() => {
                    // The watcher must not be polled after a terminal state.
                    tracing::info!(
                        path = %self.rule.path, %state,
                        "the rule watch's ZooKeeper session ended; watching anew"
                    );
                    let Some(new_watcher) = self.rewatch().await else { return };
                    (watcher, reread_at) = (new_watcher, None);
                }
                // Disconnected: the view keeps what it holds. Reconnected: events may have been
                // lost meanwhile (ZOOKEEPER-4698), so read again.
                (
                    zk::EventType::Session,
                    zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly,
                ) => {
                    reread_at = self.reread().await;
                }
                (zk::EventType::Session, _) => {}
                // A write's history child; the same write changes the data too.
                (zk::EventType::NodeChildrenChanged, _) => {}
                _ => reread_at = self.reread().await,
            }
        }
    }

    /// Reads the document again; on failure, says when to try next.
    async fn reread(&mut self) -> Option<Instant> {
        match read_raw(&self.shared.current(), &self.rule.path).await {
            Ok(read) => {
                self.publish(read);
                None
            }
            Err(err) => {
                tracing::warn!(path = %self.rule.path, %err, "could not read a watched ZooKeeper rule");
                Some(Instant::now() + RETRY)
            }
        }
    }

    /// Watches again on the shared session that replaced the ended one, and reads. `None` when
    /// every receiver is gone.
    async fn rewatch(&mut self) -> Option<SessionWatch> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut shared = self.shared.clone();
            let rule = &self.rule;
            let attempt = async move {
                let client = shared.live().await.ok_or(("open", zk::Error::ClientClosed))?;
                watch_and_read(&shared, &client, rule).await
            };
            tokio::select! {
                _ = self.tx.closed() => return None,
                attempt = attempt => match attempt {
                    Ok((watcher, read)) => {
                        self.publish(read);
                        return Some(watcher);
                    }
                    Err((action, err)) => {
                        let path = &self.rule.path;
                        tracing::warn!(%path, action, %err, "could not watch a ZooKeeper rule again");
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

    /// Sends what was read unless the view holds it already. A document that is not UTF-8 is
    /// reported and not sent: the view keeps the last good one (the rules run on).
    fn publish(&self, read: Read) {
        let next = match read.map(|(bytes, version)| text(&self.rule.path, bytes, version)).transpose() {
            Ok(next) => next,
            Err(err) => {
                tracing::warn!(%err, "a ZooKeeper rule probe cannot read: the watch keeps the last one");
                return;
            }
        };
        self.tx.send_if_modified(|current| {
            if current.as_deref() == next.as_ref() {
                return false;
            }
            *current = next.map(std::sync::Arc::new);
            true
        });
    }
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

    #[test]
    fn paths_lie_outside_the_services_tree() {
        assert_eq!(zk_rule_path(Env::Prod, "order_app", "Order"), "/probe/rules/prod/order_app/Order");
        let rule = Rule::new(Env::Dev, "order_app", "Order", "read").expect("sound names");
        assert_eq!(rule.parent(), "/probe/rules/dev/order_app");
        assert!(!rule.path.starts_with(crate::registry::layout::ZK_ROOT));
    }

    #[test]
    fn bad_names_are_refused_naming_the_path() {
        for (appkey, service) in [("a/b", "S"), ("app", "S-1"), ("", "S"), ("app", "")] {
            let err = Rule::new(Env::Dev, appkey, service, "watch").expect_err("a bad name");
            let BackendError::Failed { action, .. } = &err else { panic!("{err:?}") };
            assert!(action.starts_with("watch /probe/rules/dev/"), "{err:?}");
        }
    }

    #[test]
    fn history_children_sort_by_version() {
        assert_eq!(history_child(0), "r0000000000");
        assert_eq!(history_child(i32::MAX), "r2147483647");
        assert_eq!(history_version(&history_child(42)), Some(42));
        for other in ["r42", "x0000000001", "r000000000a", "r00000000001", "r9999999999"] {
            assert_eq!(history_version(other), None, "{other}");
        }
        let mut names = [history_child(10), history_child(9), history_child(100)];
        names.sort();
        assert_eq!(names.map(|n| history_version(&n)), [Some(9), Some(10), Some(100)]);
    }

    #[test]
    fn documents_must_be_utf8() {
        assert_eq!(text("/p", b"{}".to_vec(), 3), Ok(StoredRule { text: "{}".into(), version: 3 }));
        let err = text("/p", vec![0xff], 0).expect_err("not UTF-8");
        assert!(matches!(&err, BackendError::BadData { location, .. } if location == "/p"), "{err:?}");
    }
}
