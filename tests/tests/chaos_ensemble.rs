//! Chaos on the ZooKeeper ensemble (`scripts/services.sh up --cluster`): its leader killed with
//! SIGKILL under load. No call may fail, every provider's node stays registered (or is back within
//! 2 s), and no client's routing table empties. The killed member is started again afterwards, so
//! the ensemble is whole for the tests after this one.
//!
//! Prints `chaos: <scenario>: <calls> calls, <failed> failed, <what was measured>`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use probe_runtime::client::ClusterOptions;
use probe_tests::governance::{add_app, client, start_provider, wait_for_routes};
use probe_tests::{clustered_backends, unique, zk_ensemble_addr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the load runs after the kill.
const LOAD_AFTER_KILL: Duration = Duration::from_secs(5);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
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
async fn zookeeper_leader_killed_under_load() {
    leader_killed().await.unwrap_or_else(|e| panic!("{e:#}"));
}

async fn leader_killed() -> Result<()> {
    let backends = clustered_backends().await?;
    let appkey = unique("chaos_leader");
    add_app(&backends, &appkey).await?;
    let mut providers = Vec::new();
    for tag in ["a", "b", "c"] {
        providers.push(start_provider(&backends, &appkey, tag).await?);
    }
    let (routes, directory) = client(&backends, &appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "three providers", |r| r.table.in_rotation().count() == 3).await?;

    // Load, and a watch on the smallest table the client routes on.
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failed, smallest) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(3)));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (directory, stop, calls, failed) =
            (directory.clone(), stop.clone(), calls.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if directory.ping("chaos".into()).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let watcher = {
        let (routes, stop, smallest) = (routes.clone(), stop.clone(), smallest.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                smallest.fetch_min(routes.load().table.in_rotation().count(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (member, addr) = leader().await?;
    let pid_file = root().join(format!("target/services/zk{member}/pid"));
    let pid = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("no pid file {} for the leader {addr}: the ensemble was not started by `scripts/services.sh up --cluster`", pid_file.display()))?;
    let killed_at = Instant::now();
    let status = Command::new("kill").args(["-9", pid.trim()]).status()?;
    ensure!(status.success(), "kill -9 {} failed", pid.trim());

    // Every provider's node present (the registry answers again, with all three).
    let mut back_after = None;
    while killed_at.elapsed() < LOAD_AFTER_KILL {
        if let Ok(nodes) = backends.registry.nodes(backends.env, &appkey).await {
            if nodes.len() == 3 && back_after.is_none() {
                back_after = Some(killed_at.elapsed());
            }
            if nodes.len() != 3 {
                back_after = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    watcher.await?;
    let new_leader = leader().await.map(|(m, _)| m).unwrap_or(0);

    // The ensemble whole again for the tests after this one.
    let restart =
        Command::new("bash").arg(root().join("scripts/services.sh")).args(["up", "--cluster"]).output()?;
    ensure!(
        restart.status.success(),
        "restarting the killed member failed: {}",
        String::from_utf8_lossy(&restart.stderr)
    );

    let (calls, failed, smallest) =
        (calls.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), smallest.load(Ordering::Relaxed));
    let back = back_after.map_or("never".to_owned(), |d| format!("{} ms", d.as_millis()));
    println!(
        "chaos: zookeeper leader killed: {calls} calls, {failed} failed, member {member} killed, member {new_leader} leads, \
         3 of 3 nodes registered {back} after the kill, smallest client table {smallest}"
    );
    ensure!(failed == 0, "{failed} of {calls} calls failed while the leader was down");
    ensure!(calls > 0, "no call was made");
    let back_after =
        back_after.context("the providers' nodes were not all registered again within the run")?;
    ensure!(back_after <= Duration::from_secs(2), "the nodes took {back} to be seen again");
    ensure!(smallest == 3, "a client table shrank to {smallest} nodes");
    for provider in providers {
        provider.shutdown().await?;
    }
    Ok(())
}
