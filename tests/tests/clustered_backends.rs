//! probe on the production shapes of its backends: a 3-member ZooKeeper ensemble and a Redis Cluster
//! of 3 masters with a replica each (`scripts/services.sh up --cluster`). Providers register through
//! the ensemble, a client discovers and balances over them, an operator change goes to the cluster's
//! hash and to the live node, and the client's table follows it. The Python design's cluster client
//! (redis-py-cluster's `StrictRedisCluster`, `design_cluster.py`) reads what probe wrote, and a
//! provider takes the settings it wrote.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use probe_runtime::client::ClusterOptions;
use probe_runtime::registry::Operator;
use probe_tests::chaos::stored_settings;
use probe_tests::governance::{add_app, client, count_pings, node_key, start_provider, wait_for_routes};
use probe_tests::{clustered_backends, redis_cluster, redis_cluster_urls, unique};

/// Runs `design_cluster.py ARGS` in the redis-py-cluster virtualenv; its JSON line.
fn design_cluster(args: &[&str]) -> Result<serde_json::Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("PROBE_TEST_PYTHON_CLUSTER")
        .map_or_else(|| root.join("../target/venv-cluster/bin/python"), std::path::PathBuf::from);
    let seed = redis_cluster_urls();
    let seed =
        seed.split(',').next().unwrap_or_default().trim_start_matches("redis://").trim_end_matches('/');
    let out = std::process::Command::new(&python)
        .arg(root.join("python/design_cluster.py"))
        .args(args)
        .args(["--seed", seed])
        .output()
        .with_context(|| {
            format!("cannot run {} (PROBE_TEST_PYTHON_CLUSTER); run `scripts/test.sh`, which makes the redis-py-cluster venv", python.display())
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "design_cluster.py {args:?}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    if line == "OK" {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_str(line).with_context(|| format!("no JSON from design_cluster.py: {stdout}"))
}

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
    let stored = stored_settings(&mut cluster, &key_b).await?;
    ensure!(stored.weight == 10 && stored.valid.is_on(), "{stored:?}");

    let change = Operator::new(backends.clone()).with_actor("test:clustered").disable(&key_b).await?;
    ensure!(change.audit.is_ok(), "{:?}", change.audit);
    wait_for_routes(&routes, "b switched off", |r| r.table.in_rotation().count() == 1).await?;
    let after = count_pings(&directory, 200, 4).await?;
    ensure!(!after.contains_key("b") && after.get("a") == Some(&200), "{after:?}");
    let stored = stored_settings(&mut cluster, &key_b).await?;
    ensure!(!stored.valid.is_on(), "the cluster still holds b on: {stored:?}");
    // The Python design's cluster client reads the same.
    let env = backends.env.as_str();
    let python = design_cluster(&["get", env, &key_b.redis_field()])?;
    println!("clustered: redis-py-cluster reads b as {python}");
    ensure!(python["valid"] == 0 && python["weight"] == 10, "redis-py-cluster reads {python}");

    // Settings a Python operator writes through redis-py-cluster reach a starting provider.
    let port = probe_tests::python_registry::free_port()?;
    let key_c =
        probe_runtime::registry::layout::NodeKey::new(backends.env, &appkey, "Directory", "127.0.0.1", port)?;
    let loose = format!(r#"{{"host": "127.0.0.1", "port": {port}, "weight": 30.0, "valid": true}}"#);
    design_cluster(&["set", env, &key_c.redis_field(), &loose])?;
    let c = probe_runtime::server::Server::builder()
        .add_service_for_app(
            &appkey,
            probe_tests::idl::interop::DirectoryServer::new(probe_tests::governance::Tagged {
                tag: "c".into(),
            }),
        )
        .register(backends.clone())
        .advertise_host("127.0.0.1")
        .start(("127.0.0.1", port))
        .await?;
    let nodes = backends.registry.nodes(backends.env, &appkey).await?;
    let node_c = nodes.iter().find(|n| n.key == key_c).context("c is not registered")?;
    ensure!(
        node_c.data.weight.to_string() == "30.0" || node_c.data.weight.to_string() == "30",
        "c registered {:?}",
        node_c.data
    );
    ensure!(node_c.data.valid.is_on(), "c registered {:?}", node_c.data);
    c.shutdown().await?;
    a.shutdown().await?;
    b.shutdown().await?;
    Ok(())
}
