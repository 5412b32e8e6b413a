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

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwap, Guard};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::balance::{Endpoint, Table};
use crate::registry::layout::{Env, NodeData, NodeKey};
use crate::registry::{AppNodes, BackendError, RegisteredNode, Registry, RuleWatch, StoredRule};
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

    /// The next snapshot for the registry's `nodes`, keeping live statistics of endpoints that
    /// stay, and the rule. `nodes[..unchanged]` are known to be listed here at the same index
    /// ([`Routes::first_change`]). The endpoint of a node whose name and data are unchanged is
    /// reused (shared, not rebuilt); only changed nodes make new ones.
    fn successor(&self, nodes: &[&RegisteredNode], unchanged: usize) -> Routes {
        let old = &self.table.endpoints;
        // Built only when a node is not at its old index (one came or went).
        let mut by_id: Option<HashMap<&str, usize>> = None;
        let endpoints = nodes.iter().enumerate().map(|(i, node)| {
            let at = match old.get(i) {
                _ if i < unchanged => return old[i].clone(),
                Some(e) if names(e, &node.key) => Some(i),
                _ => by_id
                    .get_or_insert_with(|| old.iter().enumerate().map(|(j, e)| (&*e.id, j)).collect())
                    .get(node.key.zk_child().as_str())
                    .copied(),
            };
            match at {
                Some(j) if self.nodes.get(j) == Some(&node.data) => old[j].clone(),
                _ => Endpoint::from_node(node.key.zk_child(), &node.data),
            }
        });
        let table = self.table.successor(endpoints);
        let tiered = nodes.iter().any(|n| n.data.tier.unwrap_or(0) > 0);
        Routes {
            table,
            nodes: nodes.iter().map(|n| n.data.clone()).collect(),
            rule: self.rule.clone(),
            rule_problem: self.rule_problem.clone(),
            tiered,
        }
    }

    /// A first snapshot over a fixed list of `(id, data)`.
    fn listing(nodes: Vec<(String, NodeData)>) -> Routes {
        let table =
            Table::default().successor(nodes.iter().map(|(id, data)| Endpoint::from_node(id.as_str(), data)));
        let tiered = nodes.iter().any(|(_, data)| data.tier.unwrap_or(0) > 0);
        Routes {
            table,
            nodes: nodes.into_iter().map(|(_, data)| data).collect(),
            tiered,
            ..Routes::default()
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

    /// The index of the first of the registry's `nodes` this snapshot does not list there, or
    /// `None` when it lists exactly `nodes`, in order.
    fn first_change(&self, nodes: &[&RegisteredNode]) -> Option<usize> {
        let (endpoints, listed) = (&self.table.endpoints, &self.nodes);
        let same = |(i, n): (usize, &&RegisteredNode)| {
            endpoints.get(i).is_some_and(|e| names(e, &n.key)) && listed.get(i) == Some(&n.data)
        };
        match nodes.iter().enumerate().position(|at| !same(at)) {
            Some(i) => Some(i),
            None if endpoints.len() == nodes.len() && listed.len() == nodes.len() => None,
            None => Some(nodes.len()),
        }
    }
}

/// Whether `endpoint` is the node of `key`: its id is the ZooKeeper child name
/// `{service}_{ip}_{port}`, compared without building the name (the port, held inline, first).
fn names(endpoint: &Endpoint, key: &NodeKey) -> bool {
    endpoint.port == key.port()
        && endpoint
            .id
            .strip_prefix(key.service())
            .and_then(|rest| rest.strip_prefix('_'))
            .and_then(|rest| rest.strip_prefix(key.ip()))
            .and_then(|rest| rest.strip_prefix('_'))
            // As `{}` writes the port: no sign, no leading zero.
            .is_some_and(|port| {
                port.parse() == Ok(key.port()) && (port == "0" || !port.starts_with(['0', '+']))
            })
}

/// The live routes of one service of one app in one env. Clones share the snapshot; the watch
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct ServiceRoutes {
    inner: Arc<Inner>,
}

struct Inner {
    service: String,
    current: Arc<Current>,
    changes: watch::Receiver<u64>,
    task: Option<JoinHandle<()>>,
}

/// The snapshot in force, and a count of the snapshots so far.
struct Current {
    routes: ArcSwap<Routes>,
    /// Raised once before each new snapshot is stored and once after, so it is odd while a store
    /// is under way. Whoever reads an even `n` here and then loads `routes` gets the snapshot
    /// stored before `n` or a later one; whoever has seen a snapshot reads a later `n` than the
    /// one before it (odd, while its store is not done).
    version: AtomicU64,
}

impl Current {
    fn new(routes: Routes) -> Arc<Current> {
        Arc::new(Current { routes: ArcSwap::from_pointee(routes), version: AtomicU64::new(2) })
    }

    fn store(&self, routes: Routes) {
        self.store_in_steps(routes, |_| ());
    }

    /// [`Current::store`], calling `between` after each step but the last.
    fn store_in_steps(&self, routes: Routes, mut between: impl FnMut(StoreStep)) {
        self.version.fetch_add(1, Ordering::AcqRel);
        between(StoreStep::Begun);
        // A release: whoever loads the new snapshot also reads the odd version or a later one.
        self.routes.store(Arc::new(routes));
        between(StoreStep::Swapped);
        self.version.fetch_add(1, Ordering::Release);
    }
}

/// How far a store of new routes has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreStep {
    /// The version is odd; the old snapshot is still in force.
    Begun,
    /// The new snapshot is in force; the version is still odd.
    Swapped,
}

/// Whether `version` may be trusted to name the snapshot in force: no store is under way.
pub(crate) fn settled(version: u64) -> bool {
    version % 2 == 0
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
            .successor(&service_nodes(&app.borrow_and_update(), service), 0)
            .with_rule(&RuleKey::new(env, appkey, service), rule.borrow_and_update().as_deref());
        let generation = first.table.generation;
        let current = Current::new(first);
        let (tx, changes) = watch::channel(generation);
        let key = RuleKey::new(env, appkey, service);
        let task = Some(tokio::spawn(follow(app, rule, key, Arc::clone(&current), tx)));
        Ok(ServiceRoutes { inner: Arc::new(Inner { service: service.to_owned(), current, changes, task }) })
    }

    /// Routes over a fixed list of nodes, with no registry: for tests and direct configuration.
    pub fn fixed(service: &str, nodes: impl IntoIterator<Item = (String, NodeData)>) -> ServiceRoutes {
        let routes = Routes::listing(nodes.into_iter().collect());
        let (_tx, changes) = watch::channel(routes.table.generation);
        let task = None;
        let current = Current::new(routes);
        ServiceRoutes { inner: Arc::new(Inner { service: service.to_owned(), current, changes, task }) }
    }

    /// The service these routes are for.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The current snapshot, without locking.
    pub fn load(&self) -> Guard<Arc<Routes>> {
        self.inner.current.routes.load()
    }

    /// The current snapshot, as an `Arc` to keep.
    pub fn load_full(&self) -> Arc<Routes> {
        self.inner.current.routes.load_full()
    }

    /// Twice the snapshots stored so far, plus 1 while the next one is being stored: a reader
    /// that sees an even `n` (see [`settled`]) and then loads the routes gets the snapshot of `n`
    /// or a later one, and whoever has seen a snapshot reads a later `n`. Reading it is a plain
    /// load, so a client can keep what it derived from a snapshot and check it per call at no
    /// cost.
    pub(crate) fn version(&self) -> u64 {
        self.inner.current.version.load(Ordering::Acquire)
    }

    /// Puts `routes` in force, as the registry watch does (for tests of what follows a change).
    #[cfg(test)]
    pub(crate) fn replace(&self, routes: Routes) {
        self.inner.current.store(routes);
    }

    /// [`ServiceRoutes::replace`], calling `between` after each step of the store but the last,
    /// as when the registry watch is held up there.
    #[cfg(test)]
    pub(crate) fn replace_in_steps(&self, routes: Routes, between: impl FnMut(StoreStep)) {
        self.inner.current.store_in_steps(routes, between);
    }

    /// A receiver of the table generation, which changes with every new snapshot: for observers
    /// (consoles, tests) that want to know when the routes changed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.clone()
    }
}

/// `service`'s nodes in `app`.
fn service_nodes<'a>(app: &'a AppNodes, service: &'a str) -> Vec<&'a RegisteredNode> {
    app.service(service).collect()
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
    current: Arc<Current>,
    tx: watch::Sender<u64>,
) {
    let mut rule_open = true;
    loop {
        let old = current.routes.load_full();
        let next = tokio::select! {
            changed = app.changed() => {
                if changed.is_err() {
                    break;
                }
                // Read while the view is borrowed: its nodes are not copied.
                let view = app.borrow_and_update();
                let nodes = service_nodes(&view, &key.service);
                let Some(unchanged) = old.first_change(&nodes) else {
                    continue;
                };
                old.successor(&nodes, unchanged)
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
        current.store(next);
        tx.send_replace(generation);
    }
    debug!(service = %key.service, "registry watch ended; keeping the last routes");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::layout::Weight;

    fn node(port: u16, weight: u32) -> RegisteredNode {
        let key = NodeKey::new(Env::Dev, "shop", "S", "1.2.3.4", port).expect("key");
        let mut data = NodeData::new("1.2.3.4", port);
        data.weight = Weight::from(weight);
        RegisteredNode { key, data }
    }

    fn routes_of(nodes: &[RegisteredNode]) -> Routes {
        Routes::default().successor(&nodes.iter().collect::<Vec<_>>(), 0)
    }

    /// Whether an endpoint with this id and the key's port names the key.
    fn id_names(id: &str, key: &NodeKey) -> bool {
        names(&Endpoint::new(id, "h", key.port(), 1), key)
    }

    #[test]
    fn names_match_the_child_name_as_written() {
        let key = node(80, 1).key;
        assert!(id_names("S_1.2.3.4_80", &key));
        let others =
            ["S_1.2.3.4_080", "S_1.2.3.4_+80", "S_1.2.3.4_8", "T_1.2.3.4_80", "S_1.2.3.5_80", "S1.2.3.4_80"];
        for other in others {
            assert!(!id_names(other, &key), "{other}");
        }
        assert!(!names(&Endpoint::new("S_1.2.3.4_80", "h", 81, 1), &key), "another port");
        let zero = NodeKey::new(Env::Dev, "shop", "S_x", "h", 0).expect("key");
        assert!(id_names(&zero.zk_child(), &zero));
    }

    #[test]
    fn a_changed_node_rebuilds_its_endpoint_only() {
        let mut nodes: Vec<RegisteredNode> = (80..85).map(|port| node(port, 10)).collect();
        let old = routes_of(&nodes);
        old.table.endpoints[2].start_call().finish(std::time::Duration::from_micros(300), true);
        nodes[2].data.weight = Weight::from(30);
        let listed: Vec<&RegisteredNode> = nodes.iter().collect();
        assert_eq!(old.first_change(&listed), Some(2));
        let next = old.successor(&listed, 2);
        assert_eq!(next.first_change(&listed), None);
        assert_eq!(next.table.generation, old.table.generation + 1);
        for (i, (was, now)) in old.table.endpoints.iter().zip(next.table.endpoints.iter()).enumerate() {
            assert!(Arc::ptr_eq(&was.stats, &now.stats), "live statistics stay");
            assert_eq!(Arc::ptr_eq(&was.id, &now.id), i != 2, "only the changed endpoint is new");
        }
        assert_eq!(
            (next.table.endpoints[2].weight, next.nodes[2].weight),
            (Weight::from(30), Weight::from(30))
        );
        assert_eq!(next.table.endpoints[2].stats.ewma_micros(), 300);
    }

    #[test]
    fn nodes_that_come_and_go_keep_the_others() {
        let nodes: Vec<RegisteredNode> = (80..84).map(|port| node(port, 10)).collect();
        let old = routes_of(&nodes);
        // 80 goes, 90 comes: every other node moved to another index.
        let moved = [node(81, 10), node(82, 10), node(83, 10), node(90, 10)];
        let moved: Vec<&RegisteredNode> = moved.iter().collect();
        assert_eq!(old.first_change(&moved), Some(0));
        let next = old.successor(&moved, 0);
        let ports: Vec<u16> = next.table.endpoints.iter().map(|e| e.port).collect();
        assert_eq!(ports, [81, 82, 83, 90]);
        for (was, now) in old.table.endpoints[1..].iter().zip(next.table.endpoints.iter()) {
            assert!(Arc::ptr_eq(&was.id, &now.id) && Arc::ptr_eq(&was.stats, &now.stats));
        }
        assert_eq!(next.node("S_1.2.3.4_90").map(|n| n.port), Some(90));
        assert!(next.node("S_1.2.3.4_80").is_none());
        assert_eq!((routes_of(&[]).first_change(&[]), next.first_change(&[])), (None, Some(0)));
        assert_eq!(next.first_change(&moved[..3]), Some(3), "one fewer");
    }
}
