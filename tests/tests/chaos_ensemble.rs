//! Chaos on the ZooKeeper ensemble (`scripts/services.sh up --cluster`), under load:
//! - its leader killed with SIGKILL: no call may fail, every answer the registry gives holds every
//!   provider's node, and no client's routing table shrinks;
//! - the whole ensemble stopped for longer than the session timeout, then started again: providers
//!   keep serving, clients keep routing on their whole table (a provider whose session expired takes
//!   its node over in one transaction, which watchers never see missing), every node is registered
//!   again within 2 s of the ensemble's return and no stale node remains.
//!
//! Stopped members are started again afterwards, so the ensemble is whole for the tests after these;
//! the two scenarios run one after the other in one test.
//!
//! Prints `chaos: <scenario>: <calls> calls, <failed> failed, <what was measured>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use std::collections::BTreeSet;

use probe_runtime::client::ClusterOptions;
use probe_runtime::discovery::ServiceRoutes;
use probe_runtime::registry::Backends;
use probe_runtime::server::ServerHandle;
use probe_tests::chaos::{kill, service_pid, services_up};
use probe_tests::governance::{add_app, client, node_key, start_provider, wait_for_routes};
use probe_tests::idl::interop::DirectoryClient;
use probe_tests::{clustered_backends, unique, zk_ensemble_addr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the load runs after the leader's kill: 5 s, or `PROBE_CHAOS_SECONDS` for longer runs.
fn load_after_kill() -> Duration {
    chaos_seconds().unwrap_or(Duration::from_secs(5))
}

/// How long the whole ensemble stays down: 6 s (past the 4 s session timeout), or
/// `PROBE_CHAOS_SECONDS` (at least 6) for longer runs.
fn outage() -> Duration {
    chaos_seconds().map_or(Duration::from_secs(6), |d| d.max(Duration::from_secs(6)))
}

/// The chaos tests' knob for longer runs: `PROBE_CHAOS_SECONDS`.
fn chaos_seconds() -> Option<Duration> {
    std::env::var("PROBE_CHAOS_SECONDS").ok()?.parse().ok().map(Duration::from_secs)
}

/// A member's `srvr` answer's mode (`leader`, `follower`), or `None` when it does not serve.
async fn mode(addr: &str) -> Option<String> {
    let mut stream = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    stream.write_all(b"srvr").await.ok()?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut text)).await.ok()?.ok()?;
    text.lines().find_map(|l| l.strip_prefix("Mode: ")).map(str::to_owned)
}

/// The leader's member number (1-based, in the order of the connect string) and address.
async fn leader() -> Result<(usize, String)> {
    for (i, addr) in zk_ensemble_addr().split(',').enumerate() {
        if mode(addr).await.as_deref() == Some("leader") {
            return Ok((i + 1, addr.to_owned()));
        }
    }
    bail!(
        "no member of {} says it leads; start the ensemble with `scripts/services.sh up --cluster`",
        zk_ensemble_addr()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zookeeper_leader_killed_then_whole_ensemble_stopped_under_load() {
    leader_killed().await.unwrap_or_else(|e| panic!("{e:#}"));
    ensemble_stopped().await.unwrap_or_else(|e| panic!("{e:#}"));
}

/// Three registered providers of a new app, and a client whose table holds them.
struct Fleet {
    backends: Backends,
    appkey: String,
    providers: Vec<ServerHandle>,
    expected: BTreeSet<String>,
    routes: ServiceRoutes,
    directory: DirectoryClient,
}

impl Fleet {
    async fn start(prefix: &str) -> Result<Fleet> {
        let backends = clustered_backends().await?;
        let appkey = unique(prefix);
        add_app(&backends, &appkey).await?;
        let mut providers = Vec::new();
        for tag in ["a", "b", "c"] {
            providers.push(start_provider(&backends, &appkey, tag).await?);
        }
        let expected = providers.iter().map(|p| node_key(&backends, &appkey, p).zk_child()).collect();
        let (routes, directory) = client(&backends, &appkey, ClusterOptions::default()).await?;
        wait_for_routes(&routes, "three providers", |r| r.table.in_rotation().count() == 3).await?;
        Ok(Fleet { backends, appkey, providers, expected, routes, directory })
    }

    /// Whether the registry answers with exactly the three providers' nodes.
    async fn all_registered(&self) -> bool {
        match self.backends.registry.nodes(self.backends.env, &self.appkey).await {
            Ok(nodes) => nodes.iter().map(|n| n.key.zk_child()).collect::<BTreeSet<_>>() == self.expected,
            Err(_) => false,
        }
    }

    async fn stop(self) -> Result<()> {
        for provider in self.providers {
            provider.shutdown().await?;
        }
        Ok(())
    }
}

/// Calls of `parallel` callers until stopped, the failures, and the smallest table seen.
struct Load {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    smallest: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(fleet: &Fleet, parallel: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (calls, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let smallest = Arc::new(AtomicUsize::new(fleet.routes.load().table.in_rotation().count()));
        let mut tasks = Vec::new();
        for _ in 0..parallel {
            let (directory, stop, calls, failed) =
                (fleet.directory.clone(), stop.clone(), calls.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if directory.ping("chaos".into()).await.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let (routes, stop2, smallest2) = (fleet.routes.clone(), stop.clone(), smallest.clone());
        tasks.push(tokio::spawn(async move {
            while !stop2.load(Ordering::Relaxed) {
                smallest2.fetch_min(routes.load().table.in_rotation().count(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
        Load { stop, calls, failed, smallest, tasks }
    }

    /// Stops the load: calls made, calls failed, the smallest table seen.
    async fn finish(self) -> Result<(usize, usize, usize)> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await?;
        }
        Ok((
            self.calls.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.smallest.load(Ordering::Relaxed),
        ))
    }
}

fn shown(after: Option<Duration>) -> String {
    after.map_or("never".to_owned(), |d| format!("{} ms", d.as_millis()))
}

async fn leader_killed() -> Result<()> {
    let fleet = Fleet::start("chaos_leader").await?;
    let load = Load::start(&fleet, 4);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (member, addr) = leader().await?;
    let pid = service_pid(&format!("zk{member}")).with_context(|| format!("the leader {addr}"))?;
    let killed_at = Instant::now();
    kill(&pid, "-9")?;
    // Every answer the registry gives after the kill holds every node; the observer's own session
    // moves to another member, so the first answer comes once it has.
    let (mut first_answer, mut missing) = (None, 0);
    while killed_at.elapsed() < load_after_kill() {
        if let Ok(nodes) = fleet.backends.registry.nodes(fleet.backends.env, &fleet.appkey).await {
            first_answer.get_or_insert(killed_at.elapsed());
            let names: BTreeSet<String> = nodes.iter().map(|n| n.key.zk_child()).collect();
            if names != fleet.expected {
                missing += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (calls, failed, smallest) = load.finish().await?;
    let new_leader = leader().await.map_or(0, |(m, _)| m);
    services_up(&["--cluster"])?;

    println!(
        "chaos: zookeeper leader killed: {calls} calls, {failed} failed, member {member} killed, member {new_leader} leads, \
         first registry answer {} after the kill, {missing} answers without every node, smallest client table {smallest}",
        shown(first_answer)
    );
    ensure!(failed == 0, "{failed} of {calls} calls failed while the leader was down");
    ensure!(calls > 0, "no call was made");
    ensure!(first_answer.is_some(), "the registry did not answer within {:?} of the kill", load_after_kill());
    ensure!(missing == 0, "{missing} registry answers lacked a provider's node");
    ensure!(smallest == 3, "a client table shrank to {smallest} nodes");
    fleet.stop().await
}

async fn ensemble_stopped() -> Result<()> {
    let fleet = Fleet::start("chaos_outage").await?;
    let load = Load::start(&fleet, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Every member stopped, for longer than the session timeout.
    for member in 1..=zk_ensemble_addr().split(',').count() {
        kill(&service_pid(&format!("zk{member}"))?, "-9")?;
    }
    tokio::time::sleep(outage()).await;
    let calls_in_outage = load.calls.load(Ordering::Relaxed);
    services_up(&["--cluster"])?;
    let returned_at = Instant::now();
    let mut back_after = None;
    while returned_at.elapsed() < Duration::from_secs(10) {
        if fleet.all_registered().await {
            back_after = Some(returned_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (calls, failed, smallest) = load.finish().await?;
    // No stale node: exactly the three providers once everything has settled.
    let nodes = fleet.backends.registry.nodes(fleet.backends.env, &fleet.appkey).await?;
    let names: BTreeSet<String> = nodes.iter().map(|n| n.key.zk_child()).collect();

    println!(
        "chaos: zookeeper ensemble stopped {} s: {calls} calls ({calls_in_outage} while it was down), {failed} failed, \
         3 of 3 nodes registered {} after the ensemble answered, {} nodes in the registry, smallest client table {smallest}",
        outage().as_secs(),
        shown(back_after),
        names.len()
    );
    ensure!(failed == 0, "{failed} of {calls} calls failed during the outage");
    ensure!(
        back_after.is_some_and(|d| d <= Duration::from_secs(2)),
        "the nodes took {} to be registered again",
        shown(back_after)
    );
    ensure!(names == fleet.expected, "the registry holds {names:?}, not {:?}", fleet.expected);
    ensure!(smallest == 3, "a client table shrank to {smallest} nodes");
    fleet.stop().await
}
