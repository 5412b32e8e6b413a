//! A fleet at scale on the real ZooKeeper ensemble (`scripts/fleet.sh`, which starts the clustered
//! services): NODES provider registrations (many nodes per registry session, as providers hosting
//! several services do), WATCHERS clients each with a registry connection of its own and a routing
//! table of every node, and CHANGES operator weight changes. Prints one table:
//!
//! - registration of every node (time);
//! - an operator change's time to reach the last client's table (p50, p99, max), and the CPU
//!   time this process spends per change;
//! - the ensemble's watch count (`mntr`), and client memory per watcher and per 1,000 nodes.
//!
//! Usage: `fleet [NODES] [WATCHERS] [CHANGES]` (default 1000 200 20); backends from the clustered
//! test services (`PROBE_TEST_ZK_ENSEMBLE`, `PROBE_TEST_REDIS_CLUSTER`, `PROBE_TEST_MYSQL`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use probe_runtime::config::RegistryBackend;
use probe_runtime::discovery::ServiceRoutes;
use probe_runtime::registry::Operator;
use probe_runtime::registry::layout::{NodeData, NodeKey};
use probe_runtime::registry::zookeeper::ZooKeeperRegistry;
use probe_tests::governance::add_app;
use probe_tests::{clustered_backends, probe_vars, unique, zk_ensemble_addr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Nodes one registry session holds.
const NODES_PER_SESSION: usize = 100;
/// The service every node provides.
const SERVICE: &str = "Directory";
/// Each change must reach every client within this, or the run fails.
const CHANGE_LIMIT: Duration = Duration::from_secs(10);

fn arg(i: usize, default: usize) -> Result<usize> {
    match std::env::args().nth(i) {
        Some(text) => text.parse().with_context(|| format!("argument {i} ({text:?}) is not a count")),
        None => Ok(default),
    }
}

/// This process's resident memory in bytes.
fn rss() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).context("no RSS in /proc/self/statm")?.parse()?;
    Ok(pages * 4096)
}

/// The CPU time (user and system) this process used so far, from `/proc/self/stat` (fields 14 and
/// 15, in the kernel's USER_HZ of 100 ticks a second; the command name before them is in
/// parentheses).
fn cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let (_, after_name) = stat.rsplit_once(')').context("no command name in /proc/self/stat")?;
    let mut fields = after_name.split_whitespace().skip(11);
    let mut ticks = 0;
    for what in ["utime", "stime"] {
        let field = fields.next().with_context(|| format!("no {what} in /proc/self/stat"))?;
        ticks += field.parse::<u64>().with_context(|| format!("{what} {field:?} is not a number"))?;
    }
    Ok(Duration::from_millis(ticks * 10))
}

/// The sum of `zk_watch_count` over the ensemble's members (`mntr`).
async fn watch_count() -> Result<u64> {
    let mut total = 0;
    for addr in zk_ensemble_addr().split(',') {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(b"mntr").await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        let count = text.lines().find_map(|l| l.strip_prefix("zk_watch_count\t")).unwrap_or("0");
        total += count.trim().parse::<u64>().unwrap_or(0);
    }
    Ok(total)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let (nodes, watchers, changes) = (arg(1, 1000)?, arg(2, 200)?, arg(3, 20)?);
    ensure!(nodes > 0 && watchers > 0, "usage: fleet [NODES] [WATCHERS] [CHANGES]");
    let backends = clustered_backends().await?;
    let appkey = unique("fleet");
    add_app(&backends, &appkey).await?;
    let env = backends.env;

    // Registrations: NODES_PER_SESSION nodes per session, sessions in parallel.
    let keys: Vec<NodeKey> = (0..nodes)
        .map(|i| NodeKey::new(env, &appkey, SERVICE, "127.0.0.1", 20_000 + i as u16))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut sessions = Vec::new();
    let mut tasks = Vec::new();
    for chunk in keys.chunks(NODES_PER_SESSION) {
        let session: Arc<dyn probe_runtime::registry::RegistrySession> =
            Arc::from(backends.registry.session().await?);
        sessions.push(Arc::clone(&session));
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for key in chunk {
                session.register(&key, &NodeData::new(key.ip(), key.port())).await?;
            }
            Ok::<_, probe_runtime::registry::BackendError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let registration = started.elapsed();

    // Watchers, each on a ZooKeeper connection of its own.
    let zk = match probe_runtime::config::Config::from_vars(
        probe_vars()
            .into_iter()
            .map(|(k, v)| if k == "PROBE_ZOOKEEPER" { (k, zk_ensemble_addr()) } else { (k, v) }),
    )?
    .registry
    {
        Some(RegistryBackend::ZooKeeper(zk)) => zk,
        _ => bail!("the test configuration names no ZooKeeper"),
    };
    let watches_before = watch_count().await?;
    let memory_before = rss()?;
    let mut clients = Vec::new();
    for _ in 0..watchers {
        let registry = Arc::new(ZooKeeperRegistry::connect(&zk).await?);
        let routes = ServiceRoutes::watch(registry, env, &appkey, SERVICE).await?;
        ensure!(
            routes.load().nodes.len() == nodes,
            "a watcher sees {} of {nodes} nodes",
            routes.load().nodes.len()
        );
        clients.push(routes);
    }
    let memory_per_watcher = rss()?.saturating_sub(memory_before) as f64 / watchers as f64;
    let watches = watch_count().await?.saturating_sub(watches_before);

    // Operator changes: the time until the last watcher's table holds the new weight.
    let operator = Operator::new(backends.clone()).with_actor("fleet");
    let (mut reach, mut first, mut operator_calls) = (Vec::new(), Vec::new(), Vec::new());
    let cpu_before = cpu_time()?;
    for change in 0..changes {
        let key = &keys[change * 37 % keys.len()];
        let weight = 11 + change as u32;
        let waits: Vec<_> = clients
            .iter()
            .map(|routes| {
                let (routes, mut changed, port) = (routes.clone(), routes.changes(), key.port());
                tokio::spawn(async move {
                    loop {
                        // The routing table balancers pick from holds the new weight.
                        let holds = routes
                            .load()
                            .table
                            .endpoints
                            .iter()
                            .any(|e| e.port == port && e.weight == weight);
                        if holds {
                            return Ok(Instant::now());
                        }
                        if tokio::time::timeout(CHANGE_LIMIT, changed.changed()).await.is_err() {
                            bail!(
                                "a watcher did not see weight {weight} on port {port} within {CHANGE_LIMIT:?}"
                            );
                        }
                    }
                })
            })
            .collect();
        let sent = Instant::now();
        operator.set_weight(key, weight).await?;
        operator_calls.push(sent.elapsed());
        let (mut earliest, mut last) = (None::<Instant>, sent);
        for wait in waits {
            let at = wait.await??;
            last = last.max(at);
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        reach.push(last - sent);
        first.push(earliest.map_or(Duration::ZERO, |e| e - sent));
    }
    let cpu_per_change = cpu_time()?.saturating_sub(cpu_before) / changes.max(1) as u32;
    for list in [&mut reach, &mut first, &mut operator_calls] {
        list.sort();
    }

    println!(
        "fleet: {nodes} nodes, {watchers} watchers, {changes} operator changes, on {}",
        zk_ensemble_addr()
    );
    println!("| measure | value |");
    println!("| --- | ---: |");
    println!("| registration of {nodes} nodes ({} sessions) | {} |", sessions.len(), ms(registration));
    if !reach.is_empty() {
        println!("| change to the last of {watchers} clients, p50 | {} |", ms(percentile(&reach, 0.5)));
        println!("| change to the last of {watchers} clients, p99 | {} |", ms(percentile(&reach, 0.99)));
        println!("| change to the last of {watchers} clients, max | {} |", ms(percentile(&reach, 1.0)));
        println!("| change to the first client, p50 | {} |", ms(percentile(&first, 0.5)));
        println!(
            "| the operator call itself (Redis, ZooKeeper, audit), p50 | {} |",
            ms(percentile(&operator_calls, 0.5))
        );
        println!(
            "| this process's CPU per change ({watchers} clients, the operator call, the harness), mean | {} |",
            ms(cpu_per_change)
        );
    }
    println!("| ZooKeeper watches added by the watchers | {watches} |");
    println!("| client memory per watcher ({nodes} nodes) | {:.2} MB |", memory_per_watcher / 1e6);
    println!(
        "| client memory per 1,000 nodes | {:.2} MB |",
        memory_per_watcher / 1e6 * 1000.0 / nodes as f64
    );
    drop(clients);
    drop(sessions);
    Ok(())
}
