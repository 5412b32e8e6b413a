//! The governance scenarios of the registry issue, written once over any [`Backends`]: the
//! integration tests run them on real ZooKeeper, Redis and MariaDB, and on the embedded backends.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use probe_runtime::balance::BalancerKind;
use probe_runtime::client::ClusterOptions;
use probe_runtime::registry::{Backends, Operator};
use probe_runtime::server::ServerHandle;

use crate::governance::{add_app, client, count_pings, node_key, start_provider, wait_for_routes};

/// Starts three providers of `appkey` and gives them weights 10, 20 and 70 (tags `w10`, `w20`, `w70`).
pub async fn three_weighted(backends: &Backends, appkey: &str) -> Result<Vec<ServerHandle>> {
    add_app(backends, appkey).await?;
    let operator = Operator::new(backends.clone());
    let mut servers = Vec::new();
    for weight in [10, 20, 70] {
        let server = start_provider(backends, appkey, &format!("w{weight}")).await?;
        operator.set_weight(&node_key(backends, appkey, &server), weight).await?;
        servers.push(server);
    }
    Ok(servers)
}

async fn stop_all(servers: Vec<ServerHandle>) -> Result<()> {
    for server in servers {
        server.shutdown().await?;
    }
    Ok(())
}

/// 10,000 calls split within 3 points of 10/20/70 (weighted random) and exactly so (round robin).
pub async fn weights_are_honoured(backends: &Backends, appkey: &str) -> Result<()> {
    let servers = three_weighted(backends, appkey).await?;
    for kind in [BalancerKind::WeightedRandom, BalancerKind::RoundRobin] {
        let options = ClusterOptions::default().balancer(kind);
        let (routes, client) = client(backends, appkey, options).await?;
        wait_for_routes(&routes, "weights 10/20/70", |r| {
            let mut weights: Vec<String> = r.table.in_rotation().map(|e| e.weight.to_string()).collect();
            weights.sort_unstable();
            weights == ["10", "20", "70"]
        })
        .await?;
        let counts = count_pings(&client, 10_000, 8).await?;
        println!("{kind}: 10000 calls split {counts:?}");
        for weight in [10usize, 20, 70] {
            let got = counts.get(&format!("w{weight}")).copied().unwrap_or(0);
            match kind {
                BalancerKind::RoundRobin => {
                    ensure!(
                        got == weight * 100,
                        "round robin gave w{weight} {got} calls, not {}",
                        weight * 100
                    )
                }
                _ => ensure!(
                    got.abs_diff(weight * 100) <= 300,
                    "weighted random gave w{weight} {got} calls, more than 3 points from {}",
                    weight * 100
                ),
            }
        }
    }
    stop_all(servers).await
}

/// `valid` 0 through the operator API: after the watch fires, zero calls reach the node. Prints
/// the p50 and p99 of the time from the write to the client's table change over 100 changes.
pub async fn disabled_node_gets_no_calls(backends: &Backends, appkey: &str) -> Result<()> {
    let servers = three_weighted(backends, appkey).await?;
    let (routes, client) = client(backends, appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "three nodes", |r| r.table.in_rotation().count() == 3).await?;
    let operator = Operator::new(backends.clone());
    let target = node_key(backends, appkey, &servers[2]);
    let id = target.zk_child();
    let mut delays = Vec::with_capacity(100);
    for i in 0..100 {
        let valid = i % 2 == 1;
        let mut changes = routes.changes();
        changes.borrow_and_update();
        let started = Instant::now();
        match valid {
            true => operator.enable(&target).await?,
            false => operator.disable(&target).await?,
        };
        loop {
            if routes.load().table.get(&id).is_some_and(|e| e.valid == valid) {
                break;
            }
            tokio::time::timeout(Duration::from_secs(10), changes.changed())
                .await
                .context("the client's table did not change within 10 s of the write")??;
        }
        delays.push(started.elapsed());
    }
    delays.sort_unstable();
    println!(
        "valid flag change, write to client table: p50 {:?} p99 {:?} max {:?} (100 changes)",
        delays[49], delays[98], delays[99]
    );
    operator.disable(&target).await?;
    wait_for_routes(&routes, "w70 disabled", |r| r.table.get(&id).is_some_and(|e| !e.valid)).await?;
    let counts = count_pings(&client, 2_000, 4).await?;
    println!("after disabling w70: {counts:?}");
    ensure!(!counts.contains_key("w70"), "the disabled node still got calls: {counts:?}");
    stop_all(servers).await
}

/// An expired registry session: the provider registers again, with its stored settings, within 2 s.
pub async fn expired_session_reregisters(backends: &Backends, appkey: &str) -> Result<Duration> {
    add_app(backends, appkey).await?;
    let server = start_provider(backends, appkey, "expiring").await?;
    let key = node_key(backends, appkey, &server);
    let (routes, _client) = client(backends, appkey, ClusterOptions::default()).await?;
    // A weight only the settings store and the live node know; the re-registration must read it.
    Operator::new(backends.clone()).set_weight(&key, 33).await?;
    wait_for_routes(&routes, "weight 33", |r| r.table.get(&key.zk_child()).is_some_and(|e| e.weight == 33))
        .await?;
    let mut state = server.registration().context("a registered server has a registration state")?;
    let started = Instant::now();
    server.expire_registry_session().await?;
    tokio::time::timeout(Duration::from_secs(10), state.wait_for(|s| s.registrations >= 2 && s.registered))
        .await
        .context("the provider did not register again within 10 s")??;
    let nodes = backends.registry.nodes(backends.env, appkey).await?;
    let node = nodes.iter().find(|n| n.key == key).context("the node is not in the registry again")?;
    let took = started.elapsed();
    println!("session expired: registered again in {took:?} with weight {}", node.data.weight);
    ensure!(node.data.weight == 33, "registered again with weight {}, not the stored 33", node.data.weight);
    ensure!(took < Duration::from_secs(2), "registering again took {took:?}, more than 2 s");
    server.shutdown().await?;
    Ok(took)
}

/// A provider whose appkey is not registered does not start, and says how to register it.
pub async fn unregistered_app_is_refused(backends: &Backends, appkey: &str) -> Result<()> {
    let error = match start_provider(backends, appkey, "stray").await {
        Ok(server) => {
            server.shutdown().await?;
            anyhow::bail!("a provider of the unregistered app {appkey} started");
        }
        Err(e) => format!("{e:#}"),
    };
    println!("unregistered app: {error}");
    ensure!(
        error.contains(&format!("probe apps add {appkey}")),
        "the error does not say how to register: {error}"
    );
    let nodes = backends.registry.nodes(backends.env, appkey).await?;
    ensure!(nodes.is_empty(), "the refused provider left nodes: {nodes:?}");
    Ok(())
}

/// Rolling restart of 3 providers under continuous load: zero failed calls.
pub async fn rolling_restart_loses_nothing(backends: &Backends, appkey: &str) -> Result<()> {
    add_app(backends, appkey).await?;
    let mut servers = Vec::new();
    for i in 0..3 {
        servers.push(start_provider(backends, appkey, &format!("gen0-{i}")).await?);
    }
    let (routes, client) = client(backends, appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "three nodes", |r| r.table.in_rotation().count() == 3).await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, stop) = (client.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0usize, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client.get(7).await {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }));
    }
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let old = servers.remove(0);
        let replacement = start_provider(backends, appkey, &format!("gen1-{i}")).await?;
        old.shutdown().await?;
        servers.push(replacement);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    for task in load {
        let (o, f) = task.await?;
        ok += o;
        failed.extend(f);
    }
    println!("rolling restart of 3 providers: {ok} calls ok, {} failed", failed.len());
    ensure!(
        failed.is_empty(),
        "{} calls failed during the rolling restart, first: {}",
        failed.len(),
        failed[0]
    );
    ensure!(ok > 100, "only {ok} calls were made during the restart");
    stop_all(servers).await
}
