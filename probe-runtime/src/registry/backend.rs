//! The three backend traits (registry, settings store, app store), their errors and the live view
//! of an app's providers that discovery reads.
//!
//! Each trait has a real implementation (ZooKeeper, Redis, MySQL) and an embedded in-process one
//! with the same semantics: ephemeral nodes tied to a session, watches that deliver every change.

use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;

use super::layout::{Env, NodeData, NodeKey};
use crate::service::BoxFuture;

/// Where the address of `backend` is configured, for error messages.
fn setting_of(backend: &str) -> &'static str {
    match backend {
        "ZooKeeper" => "PROBE_ZOOKEEPER, or `zookeeper` in the config file",
        "Redis" => "PROBE_REDIS, or `redis` in the config file",
        "MySQL" => "PROBE_MYSQL, or `mysql` in the config file",
        _ => "the backend settings of the config file",
    }
}

/// Why a backend operation failed. Its `Debug` is its `Display` text.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend could not be reached, or stopped answering.
    #[error(
        "{backend} at {addr} is unreachable: {detail}; check that it runs and that the configured \
         address is right ({}; the test services start with `scripts/services.sh up`)",
        setting_of(.backend)
    )]
    Unreachable {
        /// `ZooKeeper`, `Redis`, `MySQL` or an embedded backend.
        backend: &'static str,
        /// The configured address.
        addr: String,
        /// What the client library said.
        detail: String,
    },
    /// The backend answered with an error.
    #[error("{backend} could not {action}: {detail}")]
    Failed {
        /// The backend.
        backend: &'static str,
        /// What was attempted, e.g. `create /services/dev/app/S_1.2.3.4_80`.
        action: String,
        /// What the backend said.
        detail: String,
    },
    /// Stored data could not be read as the layout defines it.
    #[error("{backend} holds bad data at {location}: {detail}; fix or delete it")]
    BadData {
        /// The backend.
        backend: &'static str,
        /// Path, key or field.
        location: String,
        /// What is wrong.
        detail: String,
    },
    /// The registry session ended (expired or closed); its ephemeral nodes are gone.
    #[error("the {backend} session ended; its ephemeral nodes are gone")]
    SessionEnded {
        /// The backend.
        backend: &'static str,
    },
    /// The database has the design's schema only: it lacks a table or column of probe's optional
    /// features (the audit log, an app's owner and description), which `probe db migrate` adds.
    #[error("{missing} is missing in the {backend} database {database}; {fix}")]
    NotMigrated {
        /// The backend.
        backend: &'static str,
        /// The database.
        database: String,
        /// What is missing, e.g. `table probe_audit`.
        missing: String,
        /// What to do, e.g. "run `probe db migrate` to enable the audit log".
        fix: String,
    },
    /// A compare-and-set write found the stored value other than the writer expected: someone
    /// else wrote it meanwhile.
    #[error("{what}: {fix}")]
    Conflict {
        /// What differs, e.g. "the rule of order_app/Order changed meanwhile (now version 4)".
        what: String,
        /// What to do, e.g. "read it again and retry".
        fix: String,
    },
}

crate::debug_as_display!(BackendError);

impl BackendError {
    /// The [`BackendError::Conflict`] of a rule write that expected version `expected` (`None`:
    /// no document) of the rule of `appkey`/`service` and found `now` (`None`: no document).
    pub(crate) fn rule_conflict(
        appkey: &str,
        service: &str,
        expected: Option<i32>,
        now: Option<i32>,
    ) -> Self {
        let rule = format!("the rule of {appkey}/{service}");
        let (what, fix) = match (expected, now) {
            (None, Some(now)) => {
                (format!("{rule} exists already (version {now})"), "read it and write with its version")
            }
            (Some(expected), None) => (
                format!("{rule} is not there (expected version {expected})"),
                "read it again, and write with no expected version to create it",
            ),
            (Some(_), Some(now)) => {
                (format!("{rule} changed meanwhile (now version {now})"), "read it again and retry")
            }
            (None, None) => (format!("{rule} changed meanwhile"), "read it again and retry"),
        };
        BackendError::Conflict { what, fix: fix.to_owned() }
    }
}

/// A provider node as the registry holds it: its identity and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredNode {
    /// Where the node lives in the layout.
    pub key: NodeKey,
    /// The node's JSON.
    pub data: NodeData,
}

/// The providers of one app in one env, as last seen. Nodes are sorted by their ZooKeeper child
/// name. Children whose name or data break the layout are in `unusable`, with the reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppNodes {
    /// Increases with every change the backend saw.
    pub generation: u64,
    /// The nodes.
    pub nodes: Vec<RegisteredNode>,
    /// The children probe cannot use, sorted by child name: they get no calls.
    pub unusable: Vec<super::layout::UnusableNode>,
}

impl AppNodes {
    /// The nodes of one service.
    pub fn service<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a RegisteredNode> + 'a {
        self.nodes.iter().filter(move |n| n.key.service() == service)
    }
}

/// A live view of an app's providers: always holds the latest known [`AppNodes`]. While the
/// backend is unreachable it keeps the last one it saw. The backend stops maintaining it when
/// every receiver is dropped.
pub type AppWatch = watch::Receiver<Arc<AppNodes>>;

/// A rule document as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// The document, as written.
    pub text: String,
    /// The store's version of it, for compare-and-set writes (ZooKeeper's data version).
    pub version: i32,
}

/// A live view of one service's rule document: `None` while there is none. Keeps the last one
/// seen while the backend is unreachable.
pub type RuleWatch = watch::Receiver<Option<Arc<StoredRule>>>;

/// Where providers register (EPHEMERAL nodes under `/services/{env}/{appkey}`) and clients watch
/// them.
pub trait Registry: Send + Sync + fmt::Debug + 'static {
    /// Opens a session. Nodes registered through it live until it ends.
    fn session(&self) -> BoxFuture<'_, Result<Box<dyn RegistrySession>, BackendError>>;

    /// Starts watching the providers of `appkey` in `env` (the app path need not exist yet). The
    /// returned view is current when this resolves and follows every change after.
    fn watch_app(&self, env: Env, appkey: &str) -> BoxFuture<'_, Result<AppWatch, BackendError>>;

    /// Reads the providers of `appkey` in `env` now (for operators and tools, not the call path).
    fn nodes(&self, env: Env, appkey: &str) -> BoxFuture<'_, Result<Vec<RegisteredNode>, BackendError>>;

    /// Reads one provider node now: `None` when it is not registered. The default reads the
    /// whole app; ZooKeeper reads the one node.
    fn node<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<Option<NodeData>, BackendError>> {
        Box::pin(async move {
            let nodes = self.nodes(key.env(), key.appkey()).await?;
            Ok(nodes.into_iter().find(|n| n.key == *key).map(|n| n.data))
        })
    }

    /// The appkeys with a path under `/services/{env}`, sorted.
    fn apps(&self, env: Env) -> BoxFuture<'_, Result<Vec<String>, BackendError>>;

    /// Replaces the data of a live node. `Ok(false)` when no such node is registered now.
    fn update(&self, key: &NodeKey, data: &NodeData) -> BoxFuture<'_, Result<bool, BackendError>>;

    /// Starts watching the rule document of `service` of `appkey` in `env` (ZooKeeper:
    /// `/probe/rules/{env}/{appkey}/{service}`, outside the app path Python clients list; it need
    /// not exist). The returned view is current when this resolves and follows every create,
    /// change and delete after, across lost connections and session expiries; the backend stops
    /// maintaining it when every receiver is dropped.
    ///
    /// # Errors
    /// [`BackendError::Failed`] for an appkey or service name that breaks `^\w+$`; the backend's
    /// errors when the first read fails.
    fn watch_rule(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<RuleWatch, BackendError>>;

    /// Reads the rule document of `service` of `appkey` in `env` now: `None` when there is none.
    ///
    /// # Errors
    /// As [`Registry::watch_rule`]; [`BackendError::BadData`] when the stored document is not UTF-8.
    fn read_rule(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<Option<StoredRule>, BackendError>>;

    /// Writes the rule document of `service` of `appkey` in `env` if it is still at `expected`
    /// (`None`: there must be none yet; `Some(v)`: its version must be `v`), keeping the text it
    /// replaces in the history ([`Registry::rule_history`]) in the same atomic step. Returns the
    /// new version: 0 for the first document, one more with each write.
    ///
    /// # Errors
    /// [`BackendError::Conflict`] when the stored document is not at `expected`; as
    /// [`Registry::watch_rule`] otherwise.
    fn write_rule<'a>(
        &'a self,
        env: Env,
        appkey: &'a str,
        service: &'a str,
        text: &'a str,
        expected: Option<i32>,
    ) -> BoxFuture<'a, Result<i32, BackendError>>;

    /// The documents earlier writes replaced, oldest first, each with the version it had; empty
    /// when there is no document.
    ///
    /// # Errors
    /// As [`Registry::read_rule`].
    fn rule_history(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<Vec<StoredRule>, BackendError>>;
    /// The ACL of `path` (ZooKeeper's, as probe's entries): `None` when there is no such node.
    /// Registries without ACLs say so.
    fn acl<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<crate::security::acl::AclEntry>>, BackendError>> {
        Box::pin(async move { Err(no_acls(format!("read the ACL of {path}"))) })
    }

    /// Sets the ACL of `path`, creating it (persistent, empty) first when it is missing and
    /// `create` says so.
    fn set_acl<'a>(
        &'a self,
        path: &'a str,
        acl: &'a [crate::security::acl::AclEntry],
        create: bool,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let _ = (acl, create);
        Box::pin(async move { Err(no_acls(format!("set the ACL of {path}"))) })
    }

    /// The operator's digest id, when this registry's sessions authenticate as the operator
    /// (`PROBE_ZK_OPERATOR_SECRET`): what secured paths grant everything to.
    fn operator_digest(&self) -> Option<String> {
        None
    }

    /// Publishes the operator's digest id as `env`'s ACL metadata
    /// ([`metadata_path`](crate::security::acl::metadata_path)), for providers to grant it on
    /// their nodes.
    fn publish_operator<'a>(
        &'a self,
        env: Env,
        operator: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let _ = operator;
        Box::pin(async move { Err(no_acls(format!("publish the operator of {env}"))) })
    }

    /// The names of the children of `path`, sorted: `None` when there is no such node.
    fn children<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<Vec<String>>, BackendError>> {
        Box::pin(async move { Err(no_acls(format!("list {path}"))) })
    }
}

/// The error of a registry without ACLs (the embedded one).
fn no_acls(action: String) -> BackendError {
    BackendError::Failed {
        backend: "registry",
        action,
        detail: "this registry has no ACLs: security applies to ZooKeeper (set PROBE_ZOOKEEPER)".into(),
    }
}

/// A registry session: the lifetime of a provider's ephemeral nodes.
pub trait RegistrySession: Send + Sync + fmt::Debug {
    /// Creates the EPHEMERAL node of `key` with `data`, creating the app path when missing. A node
    /// left at that path by an earlier session (a provider that restarted on the same address
    /// before its old session expired) is replaced.
    fn register<'a>(
        &'a self,
        key: &'a NodeKey,
        data: &'a NodeData,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Deletes the node of `key` if this session holds it.
    fn deregister<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Resolves once the session has ended for good (expired, or closed by anyone); its
    /// ephemeral nodes are gone then. Loss of connection alone does not end it.
    fn ended(&self) -> BoxFuture<'_, ()>;

    /// A description for logs (the session id).
    fn id(&self) -> String;

    /// Ends the session as the server ends an expired one, so [`RegistrySession::ended`] fires
    /// here as it would after a long network partition: for failure drills and tests.
    fn expire(&self) -> BoxFuture<'_, Result<(), BackendError>>;

    /// Closes the session; its ephemeral nodes go at once.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Where node settings live beyond the ephemeral nodes: the Redis hash `thriftprobe_{env}`.
pub trait SettingsStore: Send + Sync + fmt::Debug + 'static {
    /// The settings of `key`, if stored.
    fn get<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<Option<NodeData>, BackendError>>;

    /// Stores the settings of `key`.
    fn put<'a>(&'a self, key: &'a NodeKey, data: &'a NodeData) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Stores `data` for `key` unless settings are there already; returns what is stored after.
    fn get_or_put<'a>(
        &'a self,
        key: &'a NodeKey,
        data: &'a NodeData,
    ) -> BoxFuture<'a, Result<NodeData, BackendError>>;

    /// Deletes the settings of `key`; `Ok(false)` when there were none.
    fn remove<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Every node's settings in `env`, sorted by Redis field. Fields that break the layout are
    /// left out (and logged).
    fn all(&self, env: Env) -> BoxFuture<'_, Result<Vec<RegisteredNode>, BackendError>>;
}

/// A registered app: a row of `serviceapp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct App {
    /// The appkey (`^\w+$`).
    pub appkey: String,
    /// Free text.
    pub description: String,
    /// Who owns it.
    pub owner: String,
}

impl App {
    /// An app with no description or owner.
    pub fn new(appkey: impl Into<String>) -> Self {
        App { appkey: appkey.into(), ..App::default() }
    }
}

/// Which optional fields of [`App`] an [`AppStore`] keeps. The design's table `serviceapp` has only
/// the appkey; `probe db migrate` adds probe's columns for the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppFields {
    /// Whether [`App::description`] is stored.
    pub description: bool,
    /// Whether [`App::owner`] is stored.
    pub owner: bool,
}

impl AppFields {
    /// Every field is stored.
    pub const ALL: AppFields = AppFields { description: true, owner: true };

    /// The names of the fields `app` gives a value that this store does not keep.
    pub fn not_kept(self, app: &App) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.description && !app.description.is_empty() {
            missing.push("description");
        }
        if !self.owner && !app.owner.is_empty() {
            missing.push("owner");
        }
        missing
    }
}

/// The registered appkeys: the MySQL table `serviceapp`.
pub trait AppStore: Send + Sync + fmt::Debug + 'static {
    /// Whether `appkey` is registered.
    fn contains<'a>(&'a self, appkey: &'a str) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Registers an app; `Ok(false)` when the appkey was registered already (nothing changes).
    /// Fields the store does not keep ([`AppStore::fields`]) are not written.
    fn add<'a>(&'a self, app: &'a App) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Removes an app; `Ok(false)` when it was not registered.
    fn remove<'a>(&'a self, appkey: &'a str) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Every registered app, sorted by appkey; fields the store does not keep are empty.
    fn list(&self) -> BoxFuture<'_, Result<Vec<App>, BackendError>>;

    /// Which optional fields the store keeps; all of them unless it says otherwise.
    fn fields(&self) -> BoxFuture<'_, Result<AppFields, BackendError>> {
        Box::pin(async { Ok(AppFields::ALL) })
    }

    /// What verifies `appkey`'s credential, if one was issued (`probe apps add`). Stores that keep
    /// no credentials say so.
    fn credential<'a>(
        &'a self,
        appkey: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::security::StoredCredential>, BackendError>> {
        Box::pin(async move { Err(no_credentials(format!("read the credential of {appkey}"))) })
    }

    /// What verifies every issued credential (providers load them to verify caller tokens).
    fn credentials(&self) -> BoxFuture<'_, Result<Vec<crate::security::StoredCredential>, BackendError>> {
        Box::pin(async { Err(no_credentials("read the app credentials".into())) })
    }

    /// Stores what verifies an app's credential, replacing what was stored for its appkey.
    fn set_credential<'a>(
        &'a self,
        credential: &'a crate::security::StoredCredential,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move { Err(no_credentials(format!("store the credential of {}", credential.appkey))) })
    }
}

/// The error of an app store that keeps no credentials.
fn no_credentials(action: String) -> BackendError {
    BackendError::Failed {
        backend: "app store",
        action,
        detail: "this app store keeps no credentials (the MySQL and embedded ones do)".into(),
    }
}

/// One node's call statistics over a short window, as servers publish them for the console.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeMetrics {
    /// End of the window, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Length of the window in milliseconds.
    pub window_ms: u64,
    /// Calls finished in the window.
    pub calls: u64,
    /// Calls that failed in the window (application, transport and timeout errors).
    pub errors: u64,
    /// Calls per second over the window.
    pub qps: f64,
    /// `errors / calls`, 0 without calls.
    pub error_rate: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// The same per method, sorted by method name.
    #[serde(default)]
    pub methods: Vec<MethodMetrics>,
    /// Calls the node's request limits refused in the window (answered `LOADSHEDDING` before
    /// they ran; not in `calls`). 0 in windows of servers that predate limits.
    #[serde(default)]
    pub refused: u64,
    /// `refused` by the limit that refused them (`qps`, `concurrency`, `adaptive`: the
    /// [`REASONS`](crate::limits::REASONS)); reasons without refusals are left out.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub refused_by_reason: std::collections::BTreeMap<String, u64>,
    /// Why the provider refused the limits stored in its node data, if it did (it runs the ones
    /// before): each problem located in the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits_problem: Option<String>,
    /// Calls the node's caller policy refused in the window (answered before they ran; in
    /// neither `calls` nor `refused`). Left out when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused_callers: u64,
    /// `refused_callers` by reason (`not_allowed`, `unauthenticated`, `bad_credential`: the
    /// [`REFUSAL_REASONS`](crate::security::callers::REFUSAL_REASONS)); reasons without
    /// refusals are left out.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub refused_callers_by_reason: std::collections::BTreeMap<String, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One method's share of a [`NodeMetrics`] window.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MethodMetrics {
    /// The method.
    pub method: String,
    /// Calls finished in the window.
    pub calls: u64,
    /// Calls that failed in the window.
    pub errors: u64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
}

/// Where servers publish their short-window call statistics and the console reads them: Redis
/// keys with a TTL, so a node that stops publishing disappears by itself.
pub trait MetricsStore: Send + Sync + fmt::Debug + 'static {
    /// Publishes `key`'s latest window, which expires after `ttl` unless published again, and
    /// appends it to the node's history (the most recent [`METRICS_HISTORY_LEN`] windows, expiring
    /// with the same TTL).
    fn publish<'a>(
        &'a self,
        key: &'a NodeKey,
        metrics: &'a NodeMetrics,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The latest window of each of `keys`, in order; `None` where none is current.
    fn latest<'a>(
        &'a self,
        keys: &'a [NodeKey],
    ) -> BoxFuture<'a, Result<Vec<Option<NodeMetrics>>, BackendError>>;

    /// `key`'s recent windows, oldest first.
    fn history<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<Vec<NodeMetrics>, BackendError>>;

    /// Records what a client runs (its rule revision) in `env`, replacing its last report. Reports
    /// older than [`CLIENT_REPORT_TTL`] count as gone (the client stopped).
    fn report_client<'a>(
        &'a self,
        env: Env,
        report: &'a ClientReport,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The current client reports in `env` (none older than [`CLIENT_REPORT_TTL`]), sorted by
    /// appkey, service and client.
    fn client_reports(&self, env: Env) -> BoxFuture<'_, Result<Vec<ClientReport>, BackendError>>;
}

/// How long a client's report counts: clients report every [`CLIENT_REPORT_EVERY`] and at once
/// when their rule changes.
pub const CLIENT_REPORT_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// How often a discovering client reports.
pub const CLIENT_REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// What one client (one process calling one service) runs, as it reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientReport {
    /// The client: `host:pid`.
    pub client: String,
    /// The app whose service it calls.
    pub appkey: String,
    /// The service.
    pub service: String,
    /// The rule revision its routes run (0: no rule).
    pub revision: u64,
    /// When it applied that revision, milliseconds since the Unix epoch.
    pub applied_at_ms: u64,
    /// Whether the registry's rule document is bad to it (it runs the last good one).
    pub problem: bool,
    /// When it reported, milliseconds since the Unix epoch.
    pub reported_at_ms: u64,
    /// The nodes whose circuit breaker is not closed in this client, and where they stand
    /// (`open`, `half_open`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub breakers: std::collections::BTreeMap<String, String>,
    /// Backup requests it sent so far.
    #[serde(default)]
    pub hedges: u64,
    /// Calls its own QPS limit refused so far.
    #[serde(default)]
    pub limited: u64,
}

impl ClientReport {
    /// The key a store files it under: one per client and service.
    pub fn field(&self) -> String {
        format!("{}|{}|{}", self.client, self.appkey, self.service)
    }

    /// Whether it is older than [`CLIENT_REPORT_TTL`] at `now_ms`.
    pub fn is_stale(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.reported_at_ms) > CLIENT_REPORT_TTL.as_millis() as u64
    }
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// How many windows a node's metrics history keeps: 5 minutes of 5-second windows.
pub const METRICS_HISTORY_LEN: usize = 60;

/// One operator change, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Position in the log; 0 for an entry not yet recorded.
    pub id: u64,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Who: `console:admin`, `cli:alice@host`, ...
    pub actor: String,
    /// What: `set_weight`, `enable`, `disable`, `add_app`, `remove_app`.
    pub action: String,
    /// On what: a node (`{appkey}|{env}|{service}|{ip}|{port}`) or an appkey.
    pub target: String,
    /// The value before (JSON or text; empty when there was none).
    pub before: String,
    /// The value after (JSON or text; empty when there is none).
    pub after: String,
}

/// The record of every operator change: the MySQL table `probe_audit`, which the design's
/// database lacks until `probe db migrate` adds it ([`BackendError::NotMigrated`]).
pub trait AuditLog: Send + Sync + fmt::Debug + 'static {
    /// Appends `entry` (its `id` is ignored and assigned by the log).
    fn record<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The most recent `limit` entries, newest first.
    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<AuditEntry>, BackendError>>;
}
