//! The governance scenarios against the real ZooKeeper, Redis and MariaDB that
//! `scripts/services.sh up` starts, plus fail-over when a provider process is killed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use probe_runtime::client::ClusterOptions;
use probe_runtime::registry::Backends;
use probe_tests::governance::{add_app, client, spawn_provider, wait_for_routes};
use probe_tests::{real_backends, scenarios, unique};

async fn backends() -> Backends {
    real_backends().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_are_honoured() {
    scenarios::weights_are_honoured(&backends().await, &unique("gov_weights")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_node_gets_no_calls() {
    scenarios::disabled_node_gets_no_calls(&backends().await, &unique("gov_disable")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_reregisters() {
    scenarios::expired_session_reregisters(&backends().await, &unique("gov_expire")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_app_is_refused() {
    scenarios::unregistered_app_is_refused(&backends().await, &unique("gov_stray")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_loses_nothing() {
    scenarios::rolling_restart_loses_nothing(&backends().await, &unique("gov_rolling")).await.unwrap();
}

/// SIGKILL of a provider under load: with fail-over and an idempotent method, 1,000 calls spread
/// over the kill see no error, and the node leaves the registry once its session times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_provider_costs_no_calls() -> Result<()> {
    let backends = backends().await;
    let appkey = unique("gov_kill");
    add_app(&backends, &appkey).await?;
    let mut providers = Vec::new();
    for tag in ["k1", "k2", "k3"] {
        providers.push(spawn_provider(env!("CARGO_BIN_EXE_registered_provider"), &appkey, tag, &[])?);
    }
    // `ping` is marked (probe.idempotent) in the IDL.
    let (routes, client) = client(&backends, &appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "three nodes", |r| r.table.in_rotation().count() == 3).await?;

    let done = Arc::new(AtomicUsize::new(0));
    let mut callers = Vec::new();
    for _ in 0..4 {
        let (client, done) = (client.clone(), done.clone());
        callers.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for _ in 0..250 {
                if let Err(e) = client.ping("hi".into()).await {
                    errors.push(e.to_string());
                }
                done.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            errors
        }));
    }
    while done.load(Ordering::Relaxed) < 300 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let victim = providers.remove(0);
    let victim_id = format!("Directory_127.0.0.1_{}", victim.port);
    let killed_at = Instant::now();
    drop(victim); // SIGKILL
    let mut errors = Vec::new();
    for caller in callers {
        errors.extend(caller.await?);
    }
    println!("1000 calls over a SIGKILL: {} errors", errors.len());
    ensure!(errors.is_empty(), "{} calls failed, first: {}", errors.len(), errors[0]);
    wait_for_routes(&routes, "the killed node gone", |r| r.table.get(&victim_id).is_none()).await?;
    println!("killed node left the registry {:?} after the kill (session timeout 4 s)", killed_at.elapsed());
    Ok(())
}
