//! Client-side discovery: the routing table of one service, kept current by a registry watch.
//!
//! [`ServiceRoutes::watch`] asks the registry for a live view of the app's providers (one
//! persistent watch on ZooKeeper; no round trip per call), keeps the nodes of one service, and
//! publishes each change as a new immutable [`Routes`] snapshot. Calls read the snapshot without
//! locks ([`ServiceRoutes::load`]); while the registry is unreachable the last snapshot stays.
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
use tracing::debug;

use crate::balance::{Endpoint, Table};
use crate::registry::layout::{Env, NodeData};
use crate::registry::{AppNodes, BackendError, Registry};

/// One routing snapshot of a service: the balancer's [`Table`] and each endpoint's node JSON.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// The endpoints, in rotation or not.
    pub table: Table,
    /// The node JSON of `table.endpoints[i]` at index `i`: protocol, transport, version.
    pub nodes: Arc<[NodeData]>,
}

impl Routes {
    /// The node JSON of the endpoint with this id.
    pub fn node(&self, id: &str) -> Option<&NodeData> {
        let at = self.table.endpoints.iter().position(|e| &*e.id == id)?;
        self.nodes.get(at)
    }

    /// The next snapshot for `nodes`, keeping live statistics of endpoints that stay.
    fn successor(&self, nodes: Vec<(String, NodeData)>) -> Routes {
        let table =
            self.table.successor(nodes.iter().map(|(id, data)| Endpoint::from_node(id.as_str(), data)));
        Routes { table, nodes: nodes.into_iter().map(|(_, data)| data).collect() }
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
        let first = Routes::default().successor(service_nodes(&app.borrow_and_update(), service));
        let generation = first.table.generation;
        let current = Arc::new(ArcSwap::from_pointee(first));
        let (tx, changes) = watch::channel(generation);
        let task = Some(tokio::spawn(follow(app, service.to_owned(), Arc::clone(&current), tx)));
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

/// Publishes a new snapshot whenever the service's nodes change, until the registry stops the
/// watch or every [`ServiceRoutes`] is gone.
async fn follow(
    mut app: crate::registry::AppWatch,
    service: String,
    current: Arc<ArcSwap<Routes>>,
    tx: watch::Sender<u64>,
) {
    while app.changed().await.is_ok() {
        let nodes = service_nodes(&app.borrow_and_update(), &service);
        let old = current.load_full();
        if old.lists(&nodes) {
            continue;
        }
        let next = old.successor(nodes);
        let generation = next.table.generation;
        debug!(%service, generation, endpoints = next.table.endpoints.len(), "routes changed");
        current.store(Arc::new(next));
        tx.send_replace(generation);
    }
    debug!(%service, "registry watch ended; keeping the last routes");
}
