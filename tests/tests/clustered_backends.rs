//! probe on the production shapes of its backends: a 3-member ZooKeeper ensemble and a Redis Cluster
//! of 3 masters with a replica each (`scripts/services.sh up --cluster`). Providers register through
//! the ensemble, a client discovers and balances over them, an operator change goes to the cluster's
//! hash and to the live node, and the client's table follows it.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use probe_runtime::client::ClusterOptions;
use probe_runtime::registry::Operator;
use probe_runtime::registry::layout::{NodeData, redis_hash};
use probe_tests::governance::{add_app, client, count_pings, node_key, start_provider, wait_for_routes};
use probe_tests::{clustered_backends, redis_cluster, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn providers_and_clients_run_on_an_ensemble_and_a_redis_cluster() {
    ensemble_and_cluster().await.unwrap_or_else(|e| panic!("{e:#}"));
}

async fn ensemble_and_cluster() -> Result<()> {
    let backends = clustered_backends().await?;
    let appkey = unique("clustered");
    add_app(&backends, &appkey).await?;
    let a = start_provider(&backends, &appkey, "a").await?;
    let b = start_provider(&backends, &appkey, "b").await?;
    let (routes, directory) = client(&backends, &appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "both providers", |r| r.table.in_rotation().count() == 2).await?;
    let counts: BTreeMap<String, usize> = count_pings(&directory, 400, 4).await?;
    println!("clustered: 400 calls over two providers: {counts:?}");
    ensure!(counts.len() == 2 && counts.values().all(|n| *n > 100), "{counts:?}");

    // The settings live in the cluster, one hash per env (one slot): what the Python design's
    // redis-py-cluster reads.
    let key_b = node_key(&backends, &appkey, &b);
    let mut cluster = redis_cluster().await?;
    let stored: Option<String> = redis::cmd("HGET")
        .arg(redis_hash(backends.env))
        .arg(key_b.redis_field())
        .query_async(&mut cluster)
        .await?;
    let stored = NodeData::from_json(stored.context("no settings in the cluster for b")?.as_bytes())?;
    ensure!(stored.weight == 10 && stored.valid.is_on(), "{stored:?}");

    let change = Operator::new(backends.clone()).with_actor("test:clustered").disable(&key_b).await?;
    ensure!(change.audit.is_ok(), "{:?}", change.audit);
    wait_for_routes(&routes, "b switched off", |r| r.table.in_rotation().count() == 1).await?;
    let after = count_pings(&directory, 200, 4).await?;
    ensure!(!after.contains_key("b") && after.get("a") == Some(&200), "{after:?}");
    let stored: Option<String> = redis::cmd("HGET")
        .arg(redis_hash(backends.env))
        .arg(key_b.redis_field())
        .query_async(&mut cluster)
        .await?;
    let stored = NodeData::from_json(stored.context("no settings for b")?.as_bytes())?;
    ensure!(!stored.valid.is_on(), "the cluster still holds b on: {stored:?}");
    a.shutdown().await?;
    b.shutdown().await?;
    Ok(())
}
