//! Opening ZooKeeper sessions, mapping client errors, and keeping the registry's shared session
//! alive across expiries.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::config::ZooKeeperConfig;
use crate::registry::BackendError;
use crate::security::OPERATOR_USER;

/// The backend name in errors.
pub(super) const BACKEND: &str = "ZooKeeper";

/// First pause between failed connection attempts; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between failed connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where and how to open sessions: the ensemble, the chroot and the timeouts.
#[derive(Debug)]
pub(super) struct Target {
    /// The full connect string (`h1:p1,h2:p2/chroot`), for errors and logs.
    addr: String,
    /// The hosts alone (`h1:p1,h2:p2`): the chroot is applied after connecting, once it exists.
    hosts: String,
    chroot: Option<String>,
    session_timeout: Duration,
    connect_timeout: Duration,
    /// The digest credentials sessions authenticate with: `(user, secret)`.
    auth: Vec<(String, crate::security::Secret)>,
    /// The ACL of persistent paths this process creates: everyone everything, or, for operator
    /// tools holding the operator's secret, everyone reads and the operator does everything.
    persistent_acl: Vec<zk::Acl>,
}

impl Target {
    pub(super) fn new(config: &ZooKeeperConfig) -> Self {
        let addr = config.connect.to_string();
        let hosts = match config.connect.chroot() {
            Some(chroot) => addr.strip_suffix(chroot).unwrap_or(&addr).to_owned(),
            None => addr.clone(),
        };
        let operator = config.operator_secret.as_ref().map(|s| s.zk_digest_id(OPERATOR_USER));
        let persistent_acl = match &operator {
            Some(operator) => {
                crate::security::acl::operator_only(operator).iter().map(super::acl::to_zk).collect()
            }
            None => zk::Acls::anyone_all().to_vec(),
        };
        Target {
            persistent_acl,
            addr,
            hosts,
            chroot: config.connect.chroot().map(str::to_owned),
            session_timeout: config.session_timeout,
            connect_timeout: config.connect_timeout,
            auth: config
                .app_credential
                .iter()
                .map(|c| (c.appkey.clone(), c.secret.clone()))
                .chain(config.operator_secret.iter().map(|s| (OPERATOR_USER.to_owned(), s.clone())))
                .collect(),
        }
    }

    /// Options of the persistent paths this process creates (`/services/{env}/{appkey}`, rule
    /// documents, the chroot).
    pub(super) fn persistent(&self) -> zk::CreateOptions<'_> {
        zk::CreateMode::Persistent.with_acls(zk::Acls::new(&self.persistent_acl))
    }

    /// The users sessions authenticate as (`order_app`, `probe-operator`).
    pub(super) fn users(&self) -> impl Iterator<Item = &str> {
        self.auth.iter().map(|(user, _)| user.as_str())
    }

    /// The operator's digest id, when sessions authenticate as the operator.
    pub(super) fn operator_digest(&self) -> Option<String> {
        self.auth.iter().find(|(user, _)| user == OPERATOR_USER).map(|(user, s)| s.zk_digest_id(user))
    }

    /// The app's digest id, when sessions authenticate with an app credential.
    pub(super) fn app_digest(&self) -> Option<String> {
        self.auth.iter().find(|(user, _)| user != OPERATOR_USER).map(|(user, s)| s.zk_digest_id(user))
    }

    /// The connect string, hosts and chroot.
    pub(super) fn addr(&self) -> &str {
        &self.addr
    }

    /// How long to wait for a session.
    pub(super) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Opens a new session, trying every host again (with backoff) until the connect timeout.
    pub(super) async fn open(&self) -> Result<zk::Client, BackendError> {
        let deadline = Instant::now() + self.connect_timeout;
        let mut backoff = MIN_BACKOFF;
        loop {
            let last = match tokio::time::timeout_at(deadline, self.open_once()).await {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(err)) if !is_transient(&err) => return Err(self.error("open a session", &err)),
                Ok(Err(err)) => err.to_string(),
                Err(_) => "timed out".to_owned(),
            };
            let now = Instant::now();
            if now + backoff >= deadline {
                return Err(BackendError::Unreachable {
                    backend: BACKEND,
                    addr: self.addr.clone(),
                    detail: format!("no session within {:?} (last error: {last})", self.connect_timeout),
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One attempt at every host; creates the chroot when it is missing.
    async fn open_once(&self) -> Result<zk::Client, zk::Error> {
        let client = self.connector().connect(&self.hosts).await?;
        let Some(chroot) = &self.chroot else { return Ok(client) };
        if client.check_stat(chroot).await?.is_none() {
            client.mkdir(chroot, &self.persistent()).await?;
        }
        client.chroot(chroot.as_str()).map_err(|_| zk::Error::BadArguments(&"invalid chroot"))
    }

    fn connector(&self) -> zk::Connector {
        let mut connector =
            zk::Client::connector().with_session_timeout(self.session_timeout).with_fail_eagerly();
        for (user, secret) in &self.auth {
            connector = connector.with_auth("digest", &secret.zk_auth(user));
        }
        connector
    }

    /// Maps a client error: lost connections and sessions make the backend unreachable, anything
    /// else is a failure of `action`.
    pub(super) fn error(&self, action: impl fmt::Display, err: &zk::Error) -> BackendError {
        if matches!(err, zk::Error::NoAuth) {
            let users: Vec<&str> = self.users().collect();
            let who = match users.is_empty() {
                true => "no credential".to_owned(),
                false => format!("the credential of {}", users.join(" and ")),
            };
            return BackendError::Failed {
                backend: BACKEND,
                action: action.to_string(),
                detail: format!(
                    "ZooKeeper's ACL does not let a session with {who} do this: a provider needs its \
                     app's credential (PROBE_APP_CREDENTIAL=appkey:secret, from `probe apps add`), \
                     operator tools the operator's (PROBE_ZK_OPERATOR_SECRET), and the app's path must \
                     have been secured for it (`probe apps add` or `probe zk secure`)"
                ),
            };
        }
        if is_transient(err) {
            BackendError::Unreachable {
                backend: BACKEND,
                addr: self.addr.clone(),
                detail: format!("{action}: {err}"),
            }
        } else {
            BackendError::Failed { backend: BACKEND, action: action.to_string(), detail: err.to_string() }
        }
    }
}

/// Errors that say nothing about the request, only that no session answered it.
pub(super) fn is_transient(err: &zk::Error) -> bool {
    use zk::Error::*;
    matches!(err, ConnectionLoss | NoHosts | Timeout | SessionExpired | SessionMoved | ClientClosed)
}

/// Resolves once the session behind `states` has ended (not on a mere disconnection).
pub(super) async fn wait_ended(mut states: zk::StateWatcher) {
    let mut state = states.peek_state();
    while !state.is_terminated() {
        state = states.changed().await;
    }
}

/// A persistent watch and the session it was added on. The session stays open while the watch
/// is followed, so the watch always ends with a last session event (the client library panics
/// when a watch's session goes away without one, as when a registry is dropped while its watches
/// are followed). When the shared session is renewed, the watch reports its session closed, so
/// its follower watches again on the new one and the old session can close.
pub(super) struct SessionWatch {
    watcher: zk::PersistentWatcher,
    session: zk::Client,
    current: watch::Receiver<zk::Client>,
}

impl SessionWatch {
    /// The next event; a closed session once the shared session was replaced. Not to be polled
    /// after a terminal session state.
    pub(super) async fn changed(&mut self) -> zk::WatchedEvent {
        let ours = self.session.session_id();
        tokio::select! {
            event = self.watcher.changed() => event,
            _ = self.current.wait_for(|c| c.session_id() != ours) => {
                zk::WatchedEvent::new_session(zk::SessionState::Closed)
            }
        }
    }
}

/// The registry's shared session: the current client, replaced when its session ends.
///
/// Nothing keeps a clone of the client beyond one operation, so a replaced client is dropped, and
/// its session closed, as soon as the operations on it finish.
#[derive(Debug, Clone)]
pub(super) struct SharedClient {
    target: Arc<Target>,
    current: watch::Receiver<zk::Client>,
    replace: Arc<watch::Sender<zk::Client>>,
}

impl SharedClient {
    /// Opens the first session and starts the task that replaces it when it ends. The task stops
    /// once every [`SharedClient`] is dropped.
    pub(super) async fn open(target: Arc<Target>) -> Result<Self, BackendError> {
        let client = target.open().await?;
        tracing::info!(addr = target.addr(), session = %client.session_id(), "ZooKeeper session opened");
        let (tx, current) = watch::channel(client);
        let replace = Arc::new(tx);
        tokio::spawn(keep_alive(target.clone(), Arc::downgrade(&replace), current.clone()));
        Ok(SharedClient { target, current, replace })
    }

    pub(super) fn target(&self) -> &Arc<Target> {
        &self.target
    }

    /// The current client, whatever its state.
    pub(super) fn current(&self) -> zk::Client {
        self.current.borrow().clone()
    }

    /// The current client once its session is live, waiting up to the connect timeout for a
    /// replacement when it has ended.
    pub(super) async fn get(&self) -> Result<zk::Client, BackendError> {
        let client = self.current();
        if !client.state().is_terminated() {
            return Ok(client);
        }
        let mut current = self.current.clone();
        let live = current.wait_for(|client| !client.state().is_terminated());
        match tokio::time::timeout(self.target.connect_timeout, live).await {
            Ok(Ok(client)) => Ok(client.clone()),
            _ => Err(BackendError::Unreachable {
                backend: BACKEND,
                addr: self.target.addr.clone(),
                detail: format!(
                    "the session ended and no new one opened within {:?}",
                    self.target.connect_timeout
                ),
            }),
        }
    }

    /// Waits until the current client's session is live (for background tasks, no timeout).
    /// `None` when the keep-alive task is gone.
    pub(super) async fn live(&mut self) -> Option<zk::Client> {
        self.current
            .wait_for(|client| !client.state().is_terminated())
            .await
            .ok()
            .map(|client| client.clone())
    }

    /// Adds a persistent watch in `mode` on `path` through `client` (the current one).
    pub(super) async fn watch(
        &self,
        client: &zk::Client,
        path: &str,
        mode: zk::AddWatchMode,
    ) -> Result<SessionWatch, zk::Error> {
        let watcher = client.watch(path, mode).await?;
        Ok(SessionWatch { watcher, session: client.clone(), current: self.current.clone() })
    }

    /// Opens a new session, makes it current and closes the old one; returns the old one's states.
    pub(super) async fn renew(&self) -> Result<zk::StateWatcher, BackendError> {
        let client = self.target.open().await?;
        tracing::info!(addr = self.target.addr(), session = %client.session_id(), "ZooKeeper session renewed");
        let old = self.replace.send_replace(client);
        Ok(old.state_watcher())
    }
}

/// Replaces the shared session whenever it ends, until no [`SharedClient`] is left.
async fn keep_alive(
    target: Arc<Target>,
    replace: Weak<watch::Sender<zk::Client>>,
    mut current: watch::Receiver<zk::Client>,
) {
    loop {
        let mut states = current.borrow_and_update().state_watcher();
        let mut state = states.state();
        while !state.is_terminated() {
            tokio::select! {
                next = states.changed() => state = next,
                // Replaced by `renew`: watch the new one.
                changed = current.changed() => match changed {
                    Ok(()) => break,
                    Err(_) => return,
                },
            }
        }
        if !state.is_terminated() {
            continue;
        }
        tracing::warn!(addr = target.addr(), %state, "the shared ZooKeeper session ended; opening a new one");
        let mut backoff = MIN_BACKOFF;
        let client = loop {
            match target.open().await {
                Ok(client) => break client,
                Err(err) => tracing::warn!(%err, "could not replace the shared ZooKeeper session"),
            }
            if replace.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        // Gone when every `SharedClient` is.
        let Some(tx) = replace.upgrade() else { return };
        let session = client.session_id();
        // Unless `renew` replaced it meanwhile (the new client is then dropped, and closed).
        let replaced = tx.send_if_modified(move |current| {
            if !current.state().is_terminated() {
                return false;
            }
            *current = client;
            true
        });
        if replaced {
            tracing::info!(addr = target.addr(), %session, "ZooKeeper session replaced");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(connect: &str) -> Target {
        let connect = connect.parse().expect("connect string");
        Target::new(&ZooKeeperConfig::new(connect))
    }

    #[test]
    fn splits_hosts_from_chroot() {
        let with_root = target("zk1:2181,[::1]:2182/probe/dev");
        assert_eq!(with_root.addr, "zk1:2181,[::1]:2182/probe/dev");
        assert_eq!(with_root.hosts, "zk1:2181,[::1]:2182");
        assert_eq!(with_root.chroot.as_deref(), Some("/probe/dev"));
        let plain = target("zk1");
        assert_eq!((plain.addr.as_str(), plain.hosts.as_str(), plain.chroot), ("zk1:2181", "zk1:2181", None));
    }

    #[test]
    fn maps_errors() {
        let t = target("zk1:2181");
        let lost = t.error("read /services", &zk::Error::ConnectionLoss);
        assert!(matches!(&lost, BackendError::Unreachable { addr, .. } if addr == "zk1:2181"), "{lost:?}");
        assert!(lost.to_string().contains("read /services"), "{lost}");
        let denied = t.error("create /services/dev/a", &zk::Error::NoAuth);
        let BackendError::Failed { backend, action, detail } = &denied else { panic!("{denied:?}") };
        assert_eq!((*backend, action.as_str()), (BACKEND, "create /services/dev/a"));
        assert!(detail.contains("with no credential") && detail.contains("PROBE_APP_CREDENTIAL"), "{detail}");
    }
}
