//! Registration of a server's providers: the appkey check, node settings, the EPHEMERAL nodes,
//! and keeping them registered across registry session expiry.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::ServeError;
use super::limits::ServerLimits;
use crate::registry::backends::Backends;
use crate::registry::layout::{NodeData, NodeKey};
use crate::registry::{BackendError, RegistrySession};

/// First pause before retrying a failed re-registration; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where a server stands with its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrationState {
    /// Whether the nodes are registered now.
    pub registered: bool,
    /// How many times the nodes were registered, the first time included: each session expiry
    /// that was recovered from adds one.
    pub registrations: u64,
    /// The current session, as the registry describes it.
    pub session: String,
}

enum Command {
    Expire(oneshot::Sender<Result<(), BackendError>>),
    Deregister(oneshot::Sender<()>),
}

/// What a server's nodes declare for traffic rules: their version, tags and tier. The builder's
/// holds what it was told (`None`: not set); [`Declaration::over`] completes it from configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Declaration {
    pub(super) version: Option<String>,
    /// Tags set one by one; each wins over the configuration's of the same key.
    pub(super) tags: BTreeMap<String, String>,
    pub(super) tier: Option<u8>,
    /// The TLS mode of the port, advertised in the node data (`"tls"`) so probe clients connect
    /// with TLS; `None` (or off): plaintext.
    pub(super) tls: Option<crate::tls::TlsMode>,
}

impl Declaration {
    /// Sets the tier, taking one above [`MAX_TIER`](crate::rules::MAX_TIER) as the highest.
    pub(super) fn set_tier(&mut self, tier: u8) {
        if tier > crate::rules::MAX_TIER {
            warn!(tier, max = crate::rules::MAX_TIER, "no such tier; registering the highest");
        }
        self.tier = Some(tier.min(crate::rules::MAX_TIER));
    }

    /// Takes the settings of `config` as if set one by one: the version when it is set, each tag,
    /// and the tier.
    pub(super) fn apply(&mut self, config: &crate::config::ServerConfig) {
        if let Some(version) = &config.version {
            self.version = Some(version.clone());
        }
        self.tags.extend(config.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.set_tier(config.tier);
    }

    /// What to register: this declaration over `config`'s (the backends'), with probe's version
    /// when neither names one; every field set.
    pub(super) fn over(&self, config: &crate::config::ServerConfig) -> Declaration {
        let version = self.version.as_ref().or(config.version.as_ref());
        let mut tags = config.tags.clone();
        tags.extend(self.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        Declaration {
            version: Some(
                version.map_or(crate::config::ServerConfig::DEFAULT_VERSION, String::as_str).to_owned(),
            ),
            tags,
            tier: Some(self.tier.unwrap_or(config.tier).min(crate::rules::MAX_TIER)),
            tls: self.tls,
        }
    }

    /// Checks the version and tags as configuration checks them: code may set any text (with the
    /// builder, or in a loaded [`ServerConfig`](crate::config::ServerConfig)'s public fields).
    pub(super) fn check(&self) -> Result<(), ServeError> {
        let invalid = |what: String, problem: crate::config::InvalidValue, hint: &str| {
            ServeError::Declaration(format!("invalid {what}: {problem}; {hint}"))
        };
        if let Some(version) = &self.version {
            crate::config::check_version(version).map_err(|problem| {
                invalid(format!("version {version:?}"), problem, "give one without spaces, as 2.0.0")
            })?;
        }
        for (key, value) in &self.tags {
            crate::config::check_tag(key, value).map_err(|problem| {
                let hint = "keys and values are letters, digits, `_`, `.` and `-`";
                invalid(format!("tag {key:?} = {value:?}"), problem, hint)
            })?;
        }
        Ok(())
    }
}

/// The task that keeps a server's nodes registered.
#[derive(Debug)]
pub(super) struct Registrar {
    /// The node of each provider.
    keys: Vec<NodeKey>,
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<RegistrationState>,
    task: JoinHandle<()>,
    /// Applies the limits operators set in the nodes' data.
    limits: JoinHandle<()>,
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.limits.abort();
    }
}

/// The node of each provider, with the settings they register with.
struct Nodes {
    backends: Backends,
    keys: Vec<NodeKey>,
    /// The last data registered per key, used when the settings store is unreachable.
    data: Vec<NodeData>,
    /// The version, tags and tier every node declares, complete ([`Declaration::over`]).
    declared: Declaration,
    started_at: u64,
    /// The request limits (and the services' method names).
    limits: Arc<ServerLimits>,
}

impl Registrar {
    /// Checks every appkey, reads (or creates) each node's settings and registers the nodes of
    /// `providers` at `host:port`, declaring `declared` (complete); then keeps them registered.
    async fn start(
        backends: Backends,
        providers: &[(String, &'static str)],
        host: &str,
        port: u16,
        declared: Declaration,
        limits: Arc<ServerLimits>,
        callers: Arc<super::ServerCallers>,
    ) -> Result<Registrar, ServeError> {
        let appkeys: BTreeSet<&str> = providers.iter().map(|(appkey, _)| appkey.as_str()).collect();
        for appkey in appkeys {
            if !backends.apps.contains(appkey).await? {
                return Err(ServeError::UnregisteredApp(appkey.to_owned()));
            }
        }
        let keys = providers
            .iter()
            .map(|(appkey, service)| NodeKey::new(backends.env, appkey, service, host, port))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                ServeError::Advertise(format!(
                    "cannot register at {host}:{port}: {e}; set PROBE_ADVERTISE_HOST=<ip> or call `advertise_host`"
                ))
            })?;
        let started_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut nodes = Nodes {
            backends,
            keys: keys.clone(),
            data: Vec::new(),
            declared,
            started_at,
            limits: limits.clone(),
        };
        nodes.data = nodes.read_settings(true).await?;
        // Caller tokens may be signed for the registered addresses; keys come from the app store.
        let audiences = keys.iter().map(|k| format!("{}:{}", k.ip(), k.port())).collect();
        callers.registered(nodes.backends.apps.clone(), audiences);
        callers.prepare(nodes.data.iter()).await;
        // The stored limits and caller policies apply before the nodes are visible.
        let follow = super::limits::follow(limits, callers, &nodes.backends, &keys, &nodes.data);
        let session = match nodes.register().await {
            Ok(session) => session,
            Err(e) => {
                follow.abort();
                return Err(e.into());
            }
        };
        let (commands, receiver) = mpsc::channel(4);
        let (state_tx, state) =
            watch::channel(RegistrationState { registered: true, registrations: 1, session: session.id() });
        let task = tokio::spawn(keep_registered(nodes, session, receiver, state_tx));
        Ok(Registrar { keys, commands, state, task, limits: follow })
    }

    /// The node of each provider.
    pub(super) fn keys(&self) -> &[NodeKey] {
        &self.keys
    }

    /// Registers at `advertise_host`, or else at the address found for a server listening on
    /// `local_addr`, declaring `declaration` over the backends' configuration; see
    /// [`Registrar::start`].
    pub(super) async fn start_at(
        backends: Backends,
        providers: &[(String, &'static str)],
        advertise_host: Option<String>,
        declaration: &Declaration,
        local_addr: SocketAddr,
        limits: Arc<ServerLimits>,
        callers: Arc<super::ServerCallers>,
    ) -> Result<Registrar, ServeError> {
        let declared = declaration.over(&backends.server);
        declared.check()?;
        let host = match advertise_host {
            Some(host) => host,
            None => find_advertise_host(local_addr).await?,
        };
        Registrar::start(backends, providers, &host, local_addr.port(), declared, limits, callers).await
    }

    /// Follows the registration.
    pub(super) fn state(&self) -> watch::Receiver<RegistrationState> {
        self.state.clone()
    }

    /// Ends the registry session as an expiry would; the task registers again.
    pub(super) async fn expire_session(&self) -> Result<(), BackendError> {
        let (reply, result) = oneshot::channel();
        if self.commands.send(Command::Expire(reply)).await.is_err() {
            return Ok(());
        }
        result.await.unwrap_or(Ok(()))
    }

    /// Deletes the nodes and closes the session; the server keeps serving.
    pub(super) async fn deregister(mut self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Deregister(reply)).await.is_ok() {
            let _ = done.await;
        }
        self.limits.abort();
        let _ = (&mut self.task).await;
    }
}

impl Nodes {
    /// Each node's settings from the store, created with weight 10 and valid 1 where absent,
    /// plus probe's fields. With `strict` a store failure is an error; else the last data stays.
    async fn read_settings(&self, strict: bool) -> Result<Vec<NodeData>, BackendError> {
        let mut all = Vec::with_capacity(self.keys.len());
        for (i, key) in self.keys.iter().enumerate() {
            let defaults = NodeData::new(key.ip(), key.port());
            let stored = match self.backends.settings.get_or_put(key, &defaults).await {
                Ok(stored) => stored,
                Err(e) if !strict && i < self.data.len() => {
                    warn!(node = %key, error = %e, "cannot read node settings; registering the last known ones");
                    all.push(self.data[i].clone());
                    continue;
                }
                Err(e) => return Err(e),
            };
            all.push(self.with_probe_fields(stored, key));
        }
        Ok(all)
    }

    fn with_probe_fields(&self, mut data: NodeData, key: &NodeKey) -> NodeData {
        // The address is the one this server listens on, whatever an old record says.
        data.host = key.ip().to_owned();
        data.port = key.port();
        data.protocol = Some("binary".to_owned());
        data.transport = Some("framed".to_owned());
        data.version = self.declared.version.clone();
        data.tags = self.declared.tags.clone();
        data.tier = self.declared.tier;
        crate::tls::advertise(&mut data, self.declared.tls);
        data.headers = Some(crate::registry::layout::HEADERS_THEADER.to_owned());
        data.methods = self.limits.methods_of(key.service());
        data.pid = Some(std::process::id());
        data.started_at = Some(self.started_at);
        data
    }

    /// A new session with every node registered in it.
    async fn register(&self) -> Result<Box<dyn RegistrySession>, BackendError> {
        let session = self.backends.registry.session().await?;
        for (key, data) in self.keys.iter().zip(&self.data) {
            session.register(key, data).await?;
            info!(node = %key, weight = %data.weight, valid = %data.valid, "registered");
        }
        Ok(session)
    }

    /// Registers again after the session ended, retrying with back-off until it works.
    async fn reregister(&mut self) -> Box<dyn RegistrySession> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.read_settings(false).await {
                Ok(data) => self.data = data,
                Err(e) => warn!(error = %e, "cannot read node settings"),
            }
            match self.register().await {
                Ok(session) => return session,
                Err(e) => {
                    warn!(error = %e, retry_in = ?backoff, "cannot register again; the server keeps serving");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn deregister(&self, session: Box<dyn RegistrySession>) {
        for key in &self.keys {
            match session.deregister(key).await {
                Ok(()) => info!(node = %key, "deregistered"),
                Err(e) => {
                    warn!(node = %key, error = %e, "cannot delete the node; it goes when the session closes")
                }
            }
        }
        session.close().await;
    }
}

/// The address to register for a server listening on `local_addr`.
async fn find_advertise_host(local_addr: SocketAddr) -> Result<String, ServeError> {
    let config = crate::config::ServerConfig { bind: local_addr.ip(), ..Default::default() };
    tokio::task::spawn_blocking(move || config.advertise_host())
        .await
        .map_err(|e| ServeError::Task(e.to_string()))?
        .map_err(|e| ServeError::Advertise(e.to_string()))
}

async fn keep_registered(
    mut nodes: Nodes,
    mut session: Box<dyn RegistrySession>,
    mut commands: mpsc::Receiver<Command>,
    state: watch::Sender<RegistrationState>,
) {
    let mut handle_alive = true;
    loop {
        tokio::select! {
            () = session.ended() => {
                warn!(session = %session.id(), "registry session ended; registering again");
                state.send_modify(|s| s.registered = false);
                session = nodes.reregister().await;
                let id = session.id();
                state.send_modify(|s| {
                    s.registered = true;
                    s.registrations += 1;
                    s.session = id;
                });
            }
            command = commands.recv(), if handle_alive => match command {
                Some(Command::Expire(reply)) => {
                    let _ = reply.send(session.expire().await);
                }
                Some(Command::Deregister(reply)) => {
                    nodes.deregister(session).await;
                    state.send_modify(|s| s.registered = false);
                    let _ = reply.send(());
                    return;
                }
                // The handle was dropped: the server runs on, and so does its registration.
                None => handle_alive = false,
            }
        }
    }
}
