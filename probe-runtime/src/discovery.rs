//! Client-side discovery: the routing table of one service, kept current by a registry watch.
//!
//! [`ServiceRoutes::watch`] asks the registry for a live view of the app's providers (one
//! persistent watch on ZooKeeper; no round trip per call) and of the service's traffic
//! [`Rule`], keeps the nodes of one service, and publishes each change of either as a new immutable
//! [`Routes`] snapshot: nodes and rule change together. Calls read the snapshot without locks
//! ([`ServiceRoutes::load`]); while the registry is unreachable the last snapshot stays. A rule
//! document that does not parse or check leaves the last good rule in force; the snapshot says
//! what was wrong ([`Routes::rule_problem`]), and so do a log line and the
//! `probe_client_rule_problem` gauge.
//!
//! ```
//! # async fn run() -> Result<(), probe_runtime::registry::BackendError> {
//! use std::sync::Arc;
//! use probe_runtime::discovery::ServiceRoutes;
//! use probe_runtime::registry::embedded::EmbeddedRegistry;
//! use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
//! use probe_runtime::registry::Registry;
//!
//! let registry = EmbeddedRegistry::new();
//! let session = registry.session().await?;
//! let key = NodeKey::new(Env::Dev, "demo_app", "Demo", "10.0.0.7", 9090).expect("valid names");
//! session.register(&key, &NodeData::new("10.0.0.7", 9090)).await?;
//!
//! let routes = ServiceRoutes::watch(Arc::new(registry), Env::Dev, "demo_app", "Demo").await?;
//! assert_eq!(routes.load().table.in_rotation().count(), 1);
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

use std::fmt;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::balance::{Endpoint, Table};
use crate::registry::layout::{Env, NodeData};
use crate::registry::{AppNodes, BackendError, Registry, RuleWatch, StoredRule};
use crate::rules::Rule;

/// One routing snapshot of a service: the balancer's [`Table`] and each endpoint's node JSON.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// The endpoints, in rotation or not.
    pub table: Table,
    /// The node JSON of `table.endpoints[i]` at index `i`: protocol, transport, version.
    pub nodes: Arc<[NodeData]>,
    /// The service's traffic rule in force (the last good one), if it has one.
    pub rule: Option<Arc<Rule>>,
    /// Why the rule document in the registry is not in force, when it is not.
    pub rule_problem: Option<Arc<str>>,
    /// Whether some node declares a tier above 0 (tiers then apply, rule or not).
    pub tiered: bool,
}

impl Routes {
    /// The node JSON of the endpoint with this id.
    pub fn node(&self, id: &str) -> Option<&NodeData> {
        let at = self.table.endpoints.iter().position(|e| &*e.id == id)?;
        self.nodes.get(at)
    }

    /// The next snapshot for `nodes`, keeping live statistics of endpoints that stay, and the rule.
    fn successor(&self, nodes: Vec<(String, NodeData)>) -> Routes {
        let table =
            self.table.successor(nodes.iter().map(|(id, data)| Endpoint::from_node(id.as_str(), data)));
        let tiered = nodes.iter().any(|(_, data)| data.tier.unwrap_or(0) > 0);
        Routes {
            table,
            nodes: nodes.into_iter().map(|(_, data)| data).collect(),
            rule: self.rule.clone(),
            rule_problem: self.rule_problem.clone(),
            tiered,
        }
    }

    /// This snapshot with the rule document `stored` (none: no rule) in force, or, if it does not
    /// parse, with the last good rule and the problem.
    fn with_rule(&self, of: &RuleKey, stored: Option<&StoredRule>) -> Routes {
        let service = &of.service;
        let (rule, rule_problem) = match stored.map(|s| Rule::parse(&s.text)) {
            None => (None, None),
            Some(Ok(rule)) => (Some(Arc::new(rule)), None),
            Some(Err(problems)) => {
                let why = crate::rules::describe(&problems);
                warn!(%service, problem = %why, kept = ?self.rule.as_ref().map(|r| r.revision), "the service's rule is bad; keeping the last good one");
                (self.rule.clone(), Some(Arc::from(why)))
            }
        };
        let revision = rule.as_ref().map(|r| r.revision);
        crate::metrics::global().set_rule_state(
            of.env,
            &of.appkey,
            service,
            revision,
            rule_problem.is_some(),
        );
        Routes { rule, rule_problem, ..self.clone() }
    }

    /// Whether this snapshot lists exactly `nodes`.
    fn lists(&self, nodes: &[(String, NodeData)]) -> bool {
        self.nodes.len() == nodes.len()
            && self
                .table
                .endpoints
                .iter()
                .zip(self.nodes.iter())
                .zip(nodes)
                .all(|((e, d), (id, data))| *e.id == **id && d == data)
    }
}

/// The live routes of one service of one app in one env. Clones share the snapshot; the watch
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct ServiceRoutes {
    inner: Arc<Inner>,
}

struct Inner {
    service: String,
    current: Arc<ArcSwap<Routes>>,
    changes: watch::Receiver<u64>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl fmt::Debug for ServiceRoutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes = self.load();
        f.debug_struct("ServiceRoutes")
            .field("service", &self.inner.service)
            .field("generation", &routes.table.generation)
            .field("endpoints", &routes.table.endpoints.len())
            .finish()
    }
}

impl ServiceRoutes {
    /// Watches the providers of `service` under `appkey` in `env`. Resolves with the routes as
    /// the registry has them now (possibly none); they follow every change after.
    pub async fn watch(
        registry: Arc<dyn Registry>,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> Result<ServiceRoutes, BackendError> {
        let mut app = registry.watch_app(env, appkey).await?;
        let mut rule = registry.watch_rule(env, appkey, service).await?;
        let first = Routes::default()
            .successor(service_nodes(&app.borrow_and_update(), service))
            .with_rule(&RuleKey::new(env, appkey, service), rule.borrow_and_update().as_deref());
        let generation = first.table.generation;
        let current = Arc::new(ArcSwap::from_pointee(first));
        let (tx, changes) = watch::channel(generation);
        let key = RuleKey::new(env, appkey, service);
        let task = Some(tokio::spawn(follow(app, rule, key, Arc::clone(&current), tx)));
        Ok(ServiceRoutes { inner: Arc::new(Inner { service: service.to_owned(), current, changes, task }) })
    }

    /// Routes over a fixed list of nodes, with no registry: for tests and direct configuration.
    pub fn fixed(service: &str, nodes: impl IntoIterator<Item = (String, NodeData)>) -> ServiceRoutes {
        let routes = Routes::default().successor(nodes.into_iter().collect());
        let (_tx, changes) = watch::channel(routes.table.generation);
        let task = None;
        let current = Arc::new(ArcSwap::from_pointee(routes));
        ServiceRoutes { inner: Arc::new(Inner { service: service.to_owned(), current, changes, task }) }
    }

    /// The service these routes are for.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The current snapshot, without locking.
    pub fn load(&self) -> Guard<Arc<Routes>> {
        self.inner.current.load()
    }

    /// The current snapshot, as an `Arc` to keep.
    pub fn load_full(&self) -> Arc<Routes> {
        self.inner.current.load_full()
    }

    /// A receiver of the table generation, which changes with every new snapshot: for observers
    /// (consoles, tests) that want to know when the routes changed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.clone()
    }
}

/// The `(child name, data)` of `service`'s nodes in `app`.
fn service_nodes(app: &AppNodes, service: &str) -> Vec<(String, NodeData)> {
    app.service(service).map(|n| (n.key.zk_child(), n.data.clone())).collect()
}

/// Which service's rule (for its log lines and metrics).
struct RuleKey {
    env: Env,
    appkey: String,
    service: String,
}

impl RuleKey {
    fn new(env: Env, appkey: &str, service: &str) -> RuleKey {
        RuleKey { env, appkey: appkey.to_owned(), service: service.to_owned() }
    }
}

/// Publishes a new snapshot whenever the service's nodes or its rule change, until the registry
/// stops the node watch or every [`ServiceRoutes`] is gone.
async fn follow(
    mut app: crate::registry::AppWatch,
    mut rule: RuleWatch,
    key: RuleKey,
    current: Arc<ArcSwap<Routes>>,
    tx: watch::Sender<u64>,
) {
    let mut rule_open = true;
    loop {
        let old = current.load_full();
        let next = tokio::select! {
            changed = app.changed() => {
                if changed.is_err() {
                    break;
                }
                let nodes = service_nodes(&app.borrow_and_update(), &key.service);
                if old.lists(&nodes) {
                    continue;
                }
                old.successor(nodes)
            }
            changed = rule.changed(), if rule_open => {
                if changed.is_err() {
                    rule_open = false;
                    continue;
                }
                let stored = rule.borrow_and_update().clone();
                // A new table generation, so balancers rebuild what they cached for the old one.
                let routes = Routes { table: old.table.successor(old.table.endpoints.iter().cloned()), ..(*old).clone() };
                routes.with_rule(&key, stored.as_deref())
            }
        };
        let generation = next.table.generation;
        let service = &key.service;
        debug!(%service, generation, endpoints = next.table.endpoints.len(), rule = ?next.rule.as_ref().map(|r| r.revision), "routes changed");
        current.store(Arc::new(next));
        tx.send_replace(generation);
    }
    debug!(service = %key.service, "registry watch ended; keeping the last routes");
}
