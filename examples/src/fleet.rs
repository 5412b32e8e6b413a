//! The demo's fleet: providers that register, a client that calls them without pause, and the
//! tally of which node answered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use probe::ServerHandle;
use probe::discovery::ServiceRoutes;
use probe::registry::layout::NodeKey;
use probe::registry::{App, Backends, Operator};
use probe::{Channel, ClusterOptions, ClusterTransport, Provider, Server};
use tokio::task::JoinSet;

use crate::handler::DemoHandler;
use crate::idl::demo::DemoClient;

/// The demo's app.
pub const APPKEY: &str = DemoHandler::APPKEY;

/// One running provider and its registry key.
#[derive(Debug)]
pub struct Node {
    /// The server.
    pub server: ServerHandle,
    /// Where it is registered.
    pub key: NodeKey,
}

/// Registers the demo's app if it is not yet, audited as `actor`.
pub async fn register_app(operator: &Operator) -> Result<()> {
    let app = App { appkey: APPKEY.into(), description: "probe demo".into(), owner: "demo".into() };
    if operator.add_app(&app).await?.changed {
        println!("registered appkey {APPKEY}");
    }
    Ok(())
}

/// Starts a provider on 127.0.0.1 and gives it `weight` through the operator API.
pub async fn start_node(backends: &Backends, operator: &Operator, weight: u32) -> Result<Node> {
    let server = Server::builder()
        .add_provider(DemoHandler::new(format!("weight {weight}")))
        .register(backends.clone())
        .advertise_host("127.0.0.1")
        .grace_period(Duration::from_millis(500))
        .start("127.0.0.1:0")
        .await
        .context("cannot start a demo provider")?;
    let key =
        NodeKey::new(backends.env, APPKEY, DemoHandler::SERVICE, "127.0.0.1", server.local_addr().port())?;
    operator.set_weight(&key, weight).await?;
    Ok(Node { server, key })
}

/// Calls per node name, as the client saw the answers.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    errors: Arc<Mutex<u64>>,
    /// Calls that picked their node from an older routing table than this are not counted.
    from_generation: Arc<AtomicU64>,
}

impl Tally {
    /// The counts since the last take, and the errors; resets both.
    pub fn take(&self) -> (BTreeMap<String, u64>, u64) {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner));
        let errors = std::mem::take(&mut *self.errors.lock().unwrap_or_else(PoisonError::into_inner));
        (counts, errors)
    }

    /// Counts from now on only the calls that pick their node from routing table `generation` or
    /// a later one, so calls already on their way to a node do not show after it changed.
    pub fn count_from(&self, generation: u64) {
        self.from_generation.store(generation, Ordering::Relaxed);
    }

    fn count(&self, node: String, generation: u64) {
        if generation < self.from_generation.load(Ordering::Relaxed) {
            return;
        }
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner).entry(node).or_default() += 1;
    }

    fn error(&self) {
        *self.errors.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }
}

/// The client side of the demo: its callers, their tally, and the routes they pick nodes from.
#[derive(Debug)]
pub struct Callers {
    /// The calling tasks.
    pub tasks: JoinSet<()>,
    /// Calls per node.
    pub tally: Tally,
    /// The routing table of `Demo`, as discovery keeps it.
    pub routes: ServiceRoutes,
}

/// Starts `callers` tasks that call `say` through discovery, each pausing `pause` between calls.
pub async fn start_client(backends: &Backends, callers: usize, pause: Duration) -> Result<Callers> {
    let routes =
        ServiceRoutes::watch(backends.registry.clone(), backends.env, APPKEY, DemoHandler::SERVICE).await?;
    let transport = ClusterTransport::new(routes.clone(), ClusterOptions::default());
    let client = DemoClient::new(Channel::new(transport));
    let tally = Tally::default();
    let mut tasks = JoinSet::new();
    for i in 0..callers {
        let (client, tally, routes) = (client.clone(), tally.clone(), routes.clone());
        tasks.spawn(async move {
            loop {
                let generation = routes.load().table.generation;
                match client.say(format!("caller {i}")).await {
                    Ok(greeting) => tally.count(greeting.node, generation),
                    Err(_) => tally.error(),
                }
                tokio::time::sleep(pause).await;
            }
        });
    }
    Ok(Callers { tasks, tally, routes })
}

/// One line of the live display: calls per node in the last period, with their shares; `nodes`
/// are listed even when they got no call.
pub fn render(label: &str, nodes: &[String], counts: &BTreeMap<String, u64>, errors: u64) -> String {
    let total: u64 = counts.values().sum();
    let mut line = format!("{label:>8}  {total:>6} calls");
    for node in nodes {
        let n = counts.get(node).copied().unwrap_or(0);
        let share = if total == 0 { 0.0 } else { 100.0 * n as f64 / total as f64 };
        line.push_str(&format!("  | {node}: {n:>5} ({share:>4.1}%)"));
    }
    if errors > 0 {
        line.push_str(&format!("  | errors: {errors}"));
    }
    line
}
