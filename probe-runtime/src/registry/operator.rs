//! Operator actions on provider nodes (set weight, enable, disable) and apps, as the CLI and the
//! console perform them: the settings store first, so the change outlives the node, then the live
//! node in the registry, so every client's watch fires, then the audit log. The audit comes last
//! and its failure is carried beside the change ([`NodeChange::audit`], [`AppChange::audit`]),
//! never returned as the action's error: the change was applied.
//!
//! Traffic rules are set and rolled back here too ([`Operator::set_rule`],
//! [`Operator::rollback_rule`], in the submodule `rules`): checked, counted up, written with
//! compare-and-set and audited the same way.

mod rules;
mod security;

use super::backend::{App, AuditEntry, BackendError};
use super::backends::Backends;
use super::layout::{NodeData, NodeKey, Valid};
use crate::rules::{RuleError, describe};

pub use rules::{RuleChange, RuleRevision};
pub use security::{AclChange, IssuedCredential, SecureReport};

/// Why an operator action failed: nothing was changed, or the change is incomplete (the settings
/// store was written, the live node not). A change that was made but not audited is no failure:
/// its result carries the [`AuditError`]. Its `Debug` is its `Display` text.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// Neither the settings store nor the registry knows the node.
    #[error(
        "no node {0}: neither the settings store nor the registry knows it; list the nodes with \
         `probe nodes list APPKEY`"
    )]
    UnknownNode(String),
    /// A rule document has problems (each located: `line L, column C` or a JSON pointer), or
    /// names versions no live node of the service declares; nothing was written.
    #[error("the rule of {target} was refused; nothing was written:\n{}", describe(.problems))]
    RuleRefused {
        /// `appkey/service`.
        target: String,
        /// Every problem found, in document order.
        problems: Vec<RuleError>,
    },
    /// A limits document has problems (each located by a JSON pointer), or names methods the
    /// service does not have; nothing was written.
    #[error("the limits of {target} were refused; nothing was written:\n{}", crate::limits::describe(.problems))]
    LimitsRefused {
        /// The node (`appkey|env|service|ip|port`) or `appkey/service`.
        target: String,
        /// Every problem found.
        problems: Vec<crate::limits::LimitError>,
    },
    /// A change to every node of a service stopped at a backend failure: the nodes named were
    /// changed, the rest not. Running the action again finishes it.
    #[error(
        "the change of {target} stopped at a failure after {} of its nodes ({}): {error}; run it \
         again to change the rest",
        .changed.len(),
        .changed.join(", ")
    )]
    PartlyApplied {
        /// `appkey/service`.
        target: String,
        /// The nodes changed (`appkey|env|service|ip|port`).
        changed: Vec<String>,
        /// Why it stopped.
        error: Box<OperatorError>,
    },
    /// A service has no node, running or stored, to set limits on.
    #[error(
        "service {service} of {appkey} has no node, running or stored; list the nodes with `probe nodes \
         list {appkey}`"
    )]
    NoNodes {
        /// The appkey.
        appkey: String,
        /// The service.
        service: String,
    },
    /// A rollback named a revision no stored document of the service has.
    #[error(
        "the rule of {target} has no revision {revision} (stored: {}); `probe rules history APPKEY \
         SERVICE` lists them",
        revisions(.known)
    )]
    UnknownRevision {
        /// `appkey/service`.
        target: String,
        /// The revision asked for.
        revision: u64,
        /// The revisions stored, oldest first.
        known: Vec<u64>,
    },
    /// The app is not registered in the app store.
    #[error("no app {0} is registered: register it with `probe apps add APPKEY`")]
    UnknownApp(String),
    /// Securing ZooKeeper needs the operator's credential.
    #[error(
        "securing ZooKeeper needs the operator's credential: set PROBE_ZK_OPERATOR_SECRET (16 or more \
         characters, no `:`), the same for every operator tool of the fleet"
    )]
    NoOperatorSecret,
    /// A backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

crate::debug_as_display!(OperatorError);

/// `1, 2, 3`, or `none`.
fn revisions(known: &[u64]) -> String {
    if known.is_empty() {
        return "none".to_owned();
    }
    known.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// Why a change that was applied is not in the audit log. The change stands; only its record is
/// missing. Its `Display` says why and what to do (for the design's database: run
/// `probe db migrate` to add the table `probe_audit`).
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cause}")]
pub struct AuditError {
    /// The action that was not recorded (`set_weight`, `add_app`, ...).
    pub action: String,
    /// What it changed.
    pub target: String,
    /// Why the audit log did not record it.
    pub cause: BackendError,
}

crate::debug_as_display!(AuditError);

/// One node's change: what it was, what it is now, and whether the audit log recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeChange {
    /// The node.
    pub key: NodeKey,
    /// The settings before (from the settings store, else the live node).
    pub before: NodeData,
    /// The settings after.
    pub after: NodeData,
    /// Whether a live node was updated too (`false` when the node is not running now: the change
    /// applies when it registers again).
    pub live: bool,
    /// Whether the audit log recorded the change. An `Err` does not undo it: the change was
    /// applied; report the error as a warning.
    pub audit: Result<(), AuditError>,
}

/// An app registered or removed (or left as it was), and whether the audit log recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppChange {
    /// The appkey.
    pub appkey: String,
    /// Whether anything changed: `false` when the app was registered already (add) or was not
    /// registered (remove).
    pub changed: bool,
    /// Fields given a value that the app store does not keep (`description`, `owner` on the
    /// design's table, which has only `appkey`): they were not written.
    pub not_stored: Vec<&'static str>,
    /// Whether the audit log recorded the change (`Ok` when nothing changed). An `Err` does not
    /// undo it.
    pub audit: Result<(), AuditError>,
}

/// A node as operators see it: its stored settings and its live registration, either of which
/// may be missing.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    /// The node.
    pub key: NodeKey,
    /// What the settings store holds.
    pub settings: Option<NodeData>,
    /// What the registry holds, when the node is running.
    pub live: Option<NodeData>,
}

/// Operator actions over a set of backends, each recorded in the audit log under the actor's name.
#[derive(Debug, Clone)]
pub struct Operator {
    backends: Backends,
    actor: String,
}

impl Operator {
    /// Actions over `backends`, audited as done by `api` until [`Operator::with_actor`] names
    /// someone.
    pub fn new(backends: Backends) -> Self {
        Operator { backends, actor: "api".to_owned() }
    }

    /// The same actions, audited as done by `actor` (`console:admin`, `cli:alice@host`, ...).
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// Registers an app in the app store (`changed` is `false` when it was registered already),
    /// then records it in the audit log. Fields the store does not keep are left out and named in
    /// [`AppChange::not_stored`].
    pub async fn add_app(&self, app: &App) -> Result<AppChange, OperatorError> {
        let not_stored = self.backends.apps.fields().await?.not_kept(app);
        let added = self.backends.apps.add(app).await?;
        let audit = match added {
            true => {
                let after = format!("description={:?} owner={:?}", app.description, app.owner);
                self.audit("add_app", &app.appkey, String::new(), after).await
            }
            false => Ok(()),
        };
        Ok(AppChange { appkey: app.appkey.clone(), changed: added, not_stored, audit })
    }

    /// Removes an app from the app store (`changed` is `false` when it was not registered), then
    /// records it in the audit log. Running providers keep running; they cannot start again.
    pub async fn remove_app(&self, appkey: &str) -> Result<AppChange, OperatorError> {
        let removed = self.backends.apps.remove(appkey).await?;
        let audit = match removed {
            true => self.audit("remove_app", appkey, "registered".to_owned(), String::new()).await,
            false => Ok(()),
        };
        Ok(AppChange { appkey: appkey.to_owned(), changed: removed, not_stored: Vec::new(), audit })
    }

    /// Records an applied change; its failure is the change's [`AuditError`], not an error of the
    /// action.
    async fn audit(
        &self,
        action: &str,
        target: &str,
        before: String,
        after: String,
    ) -> Result<(), AuditError> {
        let at_ms = super::unix_ms();
        let entry = AuditEntry {
            id: 0,
            at_ms,
            actor: self.actor.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            before,
            after,
        };
        self.backends.audit.record(&entry).await.map_err(|cause| {
            tracing::debug!(action, target, error = %cause, "operator: the change was applied but not audited");
            AuditError { action: action.to_owned(), target: target.to_owned(), cause }
        })
    }

    /// The backends acted on.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// Sets a node's weight (0 takes it out of rotation).
    pub async fn set_weight(&self, key: &NodeKey, weight: u32) -> Result<NodeChange, OperatorError> {
        self.change(key, "set_weight", |data| data.weight = weight.into(), show_rotation).await
    }

    /// Puts a node back into rotation (`valid` 1).
    pub async fn enable(&self, key: &NodeKey) -> Result<NodeChange, OperatorError> {
        self.change(key, "enable", |data| data.valid = Valid::on(), show_rotation).await
    }

    /// Takes a node out of rotation (`valid` 0): clients stop calling it once their watch fires.
    pub async fn disable(&self, key: &NodeKey) -> Result<NodeChange, OperatorError> {
        self.change(key, "disable", |data| data.valid = Valid::off(), show_rotation).await
    }

    /// Sets a node's request limits (`None` clears them: the provider's configured ones apply),
    /// stored like its weight: the settings store, then the live node, whose provider applies
    /// them at once. The document is checked first, and against the methods the running node
    /// declares; a refused one changes nothing.
    pub async fn set_limits(
        &self,
        key: &NodeKey,
        limits: Option<&crate::limits::RequestLimits>,
    ) -> Result<NodeChange, OperatorError> {
        if let Some(limits) = limits {
            let live = self.live(key).await?;
            self.check_limits(&key.redis_field(), key.service(), limits, live.iter())?;
        }
        let value = limits.filter(|l| !l.is_empty()).map(crate::limits::RequestLimits::to_json);
        self.change(key, "set_limits", move |data| data.limits = value.clone(), show_limits).await
    }

    /// Sets the request limits of every node of `service` of `appkey` (running or stored), as
    /// [`Operator::set_limits`] does for one: each node enforces them on its own calls. All
    /// nodes are checked before any is written.
    pub async fn set_service_limits(
        &self,
        appkey: &str,
        service: &str,
        limits: Option<&crate::limits::RequestLimits>,
    ) -> Result<Vec<NodeChange>, OperatorError> {
        let nodes: Vec<NodeView> =
            self.nodes(appkey).await?.into_iter().filter(|n| n.key.service() == service).collect();
        if nodes.is_empty() {
            return Err(OperatorError::NoNodes { appkey: appkey.to_owned(), service: service.to_owned() });
        }
        if let Some(limits) = limits {
            let live = nodes.iter().filter_map(|n| n.live.as_ref());
            self.check_limits(&format!("{appkey}/{service}"), service, limits, live)?;
        }
        let value = limits.filter(|l| !l.is_empty()).map(crate::limits::RequestLimits::to_json);
        let target = format!("{appkey}/{service}");
        self.change_all(&target, &nodes, "set_limits", move |data| data.limits = value.clone(), show_limits)
            .await
    }

    /// Applies `apply` to every node of `nodes` in turn ([`Operator::change`], audited as
    /// `action`); a failure after the first change is [`OperatorError::PartlyApplied`], naming
    /// the nodes changed.
    async fn change_all(
        &self,
        target: &str,
        nodes: &[NodeView],
        action: &str,
        apply: impl Fn(&mut NodeData),
        show: fn(&NodeData) -> String,
    ) -> Result<Vec<NodeChange>, OperatorError> {
        let mut changes: Vec<NodeChange> = Vec::with_capacity(nodes.len());
        for node in nodes {
            match self.change(&node.key, action, &apply, show).await {
                Ok(change) => changes.push(change),
                Err(error) if changes.is_empty() => return Err(error),
                Err(error) => {
                    return Err(OperatorError::PartlyApplied {
                        target: target.to_owned(),
                        changed: changes.iter().map(|c| c.key.redis_field()).collect(),
                        error: Box::new(error),
                    });
                }
            }
        }
        Ok(changes)
    }

    /// Refuses a document with problems, or naming methods the running nodes do not declare.
    fn check_limits<'a>(
        &self,
        target: &str,
        service: &str,
        limits: &crate::limits::RequestLimits,
        live: impl Iterator<Item = &'a NodeData>,
    ) -> Result<(), OperatorError> {
        let mut methods: Vec<&str> = Vec::new();
        let mut declared = false;
        for data in live {
            declared |= !data.methods.is_empty();
            methods.extend(data.methods.iter().map(String::as_str));
        }
        methods.sort_unstable();
        methods.dedup();
        // Checked again as a whole document (a caller may have built it by hand).
        let mut problems = match crate::limits::RequestLimits::from_json(&limits.to_json()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        };
        if declared {
            problems.extend(limits.check_methods(service, &methods));
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(OperatorError::LimitsRefused { target: target.to_owned(), problems }),
        }
    }

    /// One node's stored settings and live registration.
    pub async fn node(&self, key: &NodeKey) -> Result<NodeView, OperatorError> {
        let settings = self.backends.settings.get(key).await?;
        let live = self.live(key).await?;
        Ok(NodeView { key: key.clone(), settings, live })
    }

    /// Every node of `appkey` in this env: those running and those with stored settings, sorted
    /// by service and address.
    pub async fn nodes(&self, appkey: &str) -> Result<Vec<NodeView>, OperatorError> {
        let env = self.backends.env;
        let live = self.backends.registry.nodes(env, appkey).await?;
        let stored = self.backends.settings.all(env).await?;
        let mut views: Vec<NodeView> =
            live.into_iter().map(|n| NodeView { key: n.key, settings: None, live: Some(n.data) }).collect();
        for node in stored.into_iter().filter(|n| n.key.appkey() == appkey) {
            match views.iter_mut().find(|v| v.key == node.key) {
                Some(view) => view.settings = Some(node.data),
                None => views.push(NodeView { key: node.key, settings: Some(node.data), live: None }),
            }
        }
        views.sort_by(|a, b| {
            (a.key.service(), a.key.ip(), a.key.port()).cmp(&(b.key.service(), b.key.ip(), b.key.port()))
        });
        Ok(views)
    }

    async fn live(&self, key: &NodeKey) -> Result<Option<NodeData>, BackendError> {
        self.backends.registry.node(key).await
    }

    async fn change(
        &self,
        key: &NodeKey,
        action: &str,
        apply: impl Fn(&mut NodeData),
        show: fn(&NodeData) -> String,
    ) -> Result<NodeChange, OperatorError> {
        let stored = self.backends.settings.get(key).await?;
        let live = self.live(key).await?;
        let before = match (stored, &live) {
            (Some(stored), _) => stored,
            // Settings as the Python design stores them: the live node without probe's fields.
            (None, Some(live)) => NodeData {
                weight: live.weight,
                valid: live.valid.clone(),
                limits: live.limits.clone(),
                callers: live.callers.clone(),
                extra: live.extra.clone(),
                ..NodeData::new(&live.host, live.port)
            },
            (None, None) => return Err(OperatorError::UnknownNode(key.to_string())),
        };
        let mut after = before.clone();
        apply(&mut after);
        self.backends.settings.put(key, &after).await?;
        let live = match live {
            Some(mut data) => {
                apply(&mut data);
                self.backends.registry.update(key, &data).await?
            }
            None => false,
        };
        // Applied: from here on nothing turns it into a failure.
        let audit = self.audit(action, &key.redis_field(), show(&before), show(&after)).await;
        Ok(NodeChange { key: key.clone(), before, after, live, audit })
    }
}

/// A node's place in rotation, as the audit log shows it.
fn show_rotation(data: &NodeData) -> String {
    format!("weight={} valid={}", data.weight, data.valid)
}

/// A node's limits, as the audit log shows them.
fn show_limits(data: &NodeData) -> String {
    match &data.limits {
        Some(limits) => format!("limits={limits}"),
        None => "limits=none".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::embedded::Embedded;
    use crate::registry::layout::Env;

    fn key(port: u16) -> NodeKey {
        NodeKey::new(Env::Dev, "op_app", "Op", "10.0.0.1", port).unwrap()
    }

    #[tokio::test]
    async fn disable_writes_settings_then_live_node() {
        let embedded = Embedded::new();
        let backends = Backends::embedded(Env::Dev, &embedded);
        let session = backends.registry.session().await.unwrap();
        let mut live = NodeData::new("10.0.0.1", 1);
        live.version = Some("0.1.0".into());
        session.register(&key(1), &live).await.unwrap();
        backends.settings.put(&key(1), &NodeData::new("10.0.0.1", 1)).await.unwrap();

        let op = Operator::new(backends.clone());
        let change = op.disable(&key(1)).await.unwrap();
        assert_eq!(
            (change.before.valid.is_on(), change.after.valid.is_on(), change.live),
            (true, false, true)
        );
        assert_eq!(backends.settings.get(&key(1)).await.unwrap().unwrap().valid, Valid::off());
        let view = op.node(&key(1)).await.unwrap();
        let live = view.live.unwrap();
        assert_eq!((live.valid, live.version.as_deref()), (Valid::off(), Some("0.1.0")));

        let change = op.set_weight(&key(1), 70).await.unwrap();
        assert_eq!((change.before.weight, change.after.weight), (10.into(), 70.into()));
        assert_eq!(op.enable(&key(1)).await.unwrap().after.valid, Valid::on());

        let log = backends.audit.recent(10).await.unwrap();
        let seen: Vec<_> =
            log.iter().map(|e| (e.actor.as_str(), e.action.as_str(), e.after.as_str())).collect();
        assert_eq!(
            seen,
            [
                ("api", "enable", "weight=70 valid=1"),
                ("api", "set_weight", "weight=70 valid=0"),
                ("api", "disable", "weight=10 valid=0"),
            ]
        );
        assert_eq!(log[0].target, "op_app|dev|Op|10.0.0.1|1");
    }

    #[tokio::test]
    async fn nodes_not_running_change_settings_only_and_unknown_nodes_fail() {
        let embedded = Embedded::new();
        let backends = Backends::embedded(Env::Dev, &embedded);
        backends.settings.put(&key(2), &NodeData::new("10.0.0.1", 2)).await.unwrap();
        let op = Operator::new(backends);
        let change = op.set_weight(&key(2), 0).await.unwrap();
        assert!(!change.live);
        assert_eq!(op.nodes("op_app").await.unwrap().len(), 1);
        let err = op.disable(&key(3)).await.unwrap_err();
        assert!(err.to_string().contains("probe nodes list"), "{err}");
        assert_eq!(op.backends().audit.recent(10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn apps_are_added_and_removed_with_an_audit_record() {
        let embedded = Embedded::new();
        let op = Operator::new(Backends::embedded(Env::Dev, &embedded)).with_actor("cli:alice");
        let app = App { appkey: "new_app".into(), description: "d".into(), owner: "o".into() };
        let added = op.add_app(&app).await.unwrap();
        assert_eq!((added.changed, added.not_stored.len(), added.audit), (true, 0, Ok(())));
        assert!(!op.add_app(&app).await.unwrap().changed);
        assert!(op.remove_app("new_app").await.unwrap().changed);
        let log = op.backends().audit.recent(10).await.unwrap();
        let seen: Vec<_> = log.iter().map(|e| (e.actor.as_str(), e.action.as_str())).collect();
        assert_eq!(seen, [("cli:alice", "remove_app"), ("cli:alice", "add_app")]);
    }

    #[tokio::test]
    async fn live_node_without_settings_gets_python_shaped_settings() {
        let embedded = Embedded::new();
        let backends = Backends::embedded(Env::Dev, &embedded);
        let session = backends.registry.session().await.unwrap();
        let mut live = NodeData::new("10.0.0.1", 4);
        live.protocol = Some("binary".into());
        session.register(&key(4), &live).await.unwrap();
        let op = Operator::new(backends.clone());
        op.disable(&key(4)).await.unwrap();
        let stored = backends.settings.get(&key(4)).await.unwrap().unwrap();
        assert_eq!((stored.valid, stored.protocol), (Valid::off(), None));
    }

    /// An audit log whose table is missing, as on the design's database.
    #[derive(Debug)]
    struct NoAuditTable;

    fn missing() -> BackendError {
        BackendError::NotMigrated {
            backend: "MySQL",
            database: "design".into(),
            missing: "table probe_audit".into(),
            fix: "run `probe db migrate` to enable the audit log".into(),
        }
    }

    impl crate::registry::AuditLog for NoAuditTable {
        fn record<'a>(
            &'a self,
            _: &'a AuditEntry,
        ) -> crate::service::BoxFuture<'a, Result<(), BackendError>> {
            Box::pin(async { Err(missing()) })
        }

        fn recent(&self, _: usize) -> crate::service::BoxFuture<'_, Result<Vec<AuditEntry>, BackendError>> {
            Box::pin(async { Err(missing()) })
        }
    }

    #[tokio::test]
    async fn changes_without_an_audit_log_are_applied_and_carry_the_audit_error() {
        let embedded = Embedded::new();
        let backends =
            Backends { audit: std::sync::Arc::new(NoAuditTable), ..Backends::embedded(Env::Dev, &embedded) };
        let session = backends.registry.session().await.unwrap();
        session.register(&key(5), &NodeData::new("10.0.0.1", 5)).await.unwrap();
        let op = Operator::new(backends.clone());

        let change = op.set_weight(&key(5), 40).await.expect("the change is applied");
        assert_eq!((change.after.weight, change.live), (40.into(), true));
        assert_eq!(backends.settings.get(&key(5)).await.unwrap().unwrap().weight, 40);
        let err = change.audit.unwrap_err();
        assert_eq!((err.action.as_str(), err.cause.clone()), ("set_weight", missing()));
        assert_eq!(
            err.to_string(),
            "table probe_audit is missing in the MySQL database design; run `probe db migrate` to enable \
             the audit log"
        );
        assert_eq!(format!("{err:?}"), err.to_string(), "Debug prints the actionable text");

        let added = op.add_app(&App::new("no_audit_app")).await.expect("the app is added");
        assert!(added.changed && added.audit.is_err());
        assert!(backends.apps.contains("no_audit_app").await.unwrap());
        assert!(op.add_app(&App::new("no_audit_app")).await.unwrap().audit.is_ok(), "nothing to audit");
    }
}
