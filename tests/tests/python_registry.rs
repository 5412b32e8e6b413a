//! Registry compatibility with the Python design, both ways, on the real ZooKeeper, Redis and MariaDB
//! of `scripts/services.sh up`: a Python client written after the design's `ProbTClient` balances
//! over probe providers by the weights an operator set, and a probe client discovers, balances over
//! and obeys operator actions on Python providers written after the design's `start_service`.
//!
//! The peers are `tests/python/registry_{provider,client}.py` run by the venv of `scripts/test.sh`;
//! without the venv or the services these tests fail (they never skip).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use probe_runtime::client::ClusterOptions;
use probe_runtime::registry::layout::{NodeData, NodeKey, redis_hash};
use probe_runtime::registry::{Backends, Operator};
use probe_tests::governance::{add_app, client, count_pings, node_key, wait_for_routes};
use probe_tests::python_registry::{PYTHON_HOST, PythonProvider, RegistryPeers, free_port, python_node_json};
use probe_tests::{real_backends, scenarios, unique};
use serde_json::Value;

/// Draws the Python client makes over the weights 10/20/70.
const PYTHON_CALLS: usize = 2000;
/// How far (in percentage points) each provider's share may be from its weight over those draws.
const PYTHON_TOLERANCE_POINTS: f64 = 3.0;
/// Calls the probe client makes over the Python providers weighted 10/30.
const PROBE_CALLS: usize = 1000;
/// How far (in percentage points) each Python provider's share may be from its weight.
const PROBE_TOLERANCE_POINTS: f64 = 5.0;
/// thriftpy2's `make_server` default `client_timeout`: its server closes connections idle this long.
const PYTHON_IDLE_CLOSE: Duration = Duration::from_secs(3);

async fn setup() -> (Backends, RegistryPeers) {
    let backends = real_backends().await.unwrap_or_else(|e| panic!("{e:#}"));
    let peers = RegistryPeers::from_env().unwrap_or_else(|e| panic!("{e:#}"));
    (backends, peers)
}

/// `share` of `total` as a percentage.
fn percent(share: usize, total: usize) -> f64 {
    share as f64 * 100.0 / total as f64
}

// --- Python client, probe providers ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_client_calls_probe_providers_with_weights() {
    let (backends, peers) = setup().await;
    python_client_over_probe(&backends, &peers).await.unwrap_or_else(|e| panic!("{e:#}"));
}

async fn python_client_over_probe(backends: &Backends, peers: &RegistryPeers) -> Result<()> {
    let appkey = unique("py_client");
    // Three probe providers tagged w10, w20 and w70, their weights set by the operator API.
    let servers = scenarios::three_weighted(backends, &appkey).await?;
    let out = peers.run_client(&appkey, PYTHON_CALLS).await?;
    println!("python client over probe providers 10/20/70: {}", out["counts"]);

    // The node JSON probe wrote, as kazoo read it and json.loads typed it.
    for (server, weight) in servers.iter().zip([10u32, 20, 70]) {
        let key = node_key(backends, &appkey, server);
        let node = &out["nodes"][key.zk_child()];
        let raw = node["raw"].as_str().with_context(|| format!("the client saw no node {key}: {out}"))?;
        println!("kazoo read {}: {raw}", key.zk_child());
        let json: Value = serde_json::from_str(raw).context("node data is not JSON")?;
        let port = server.local_addr().port();
        ensure!(json["host"] == PYTHON_HOST && json["port"] == port, "{key}: address {raw}");
        ensure!(json["weight"] == weight && json["valid"] == 1, "{key}: weight/valid {raw}");
        let types = &node["types"];
        for (field, python_type) in [("host", "str"), ("port", "int"), ("weight", "int"), ("valid", "int")] {
            ensure!(
                types[field] == python_type,
                "{key}: json.loads gave {field} as {}, not {python_type}",
                types[field]
            );
        }
        ensure!(
            out["addrs"][format!("w{weight}")] == format!("{PYTHON_HOST}:{port}"),
            "w{weight} answered from {}",
            out["addrs"]
        );
    }
    ensure!(out["nodes"].as_object().map(|n| n.len()) == Some(3), "the client saw {}", out["nodes"]);

    // The split follows the weights.
    let counts: BTreeMap<String, usize> = serde_json::from_value(out["counts"].clone()).context("counts")?;
    ensure!(
        counts.values().sum::<usize>() == PYTHON_CALLS,
        "counts {counts:?} do not add up to {PYTHON_CALLS}"
    );
    for weight in [10usize, 20, 70] {
        let got = counts.get(&format!("w{weight}")).copied().unwrap_or(0);
        let share = percent(got, PYTHON_CALLS);
        println!("w{weight}: {got} calls, {share:.1}% (weight {weight}%)");
        ensure!(
            (share - weight as f64).abs() <= PYTHON_TOLERANCE_POINTS,
            "the Python client gave w{weight} {share:.1}% of {PYTHON_CALLS} calls, more than \
             {PYTHON_TOLERANCE_POINTS} points from {weight}%: {counts:?}"
        );
    }
    for server in servers {
        server.shutdown().await?;
    }
    Ok(())
}

// --- probe client, Python providers ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probe_client_calls_python_providers() {
    let (backends, peers) = setup().await;
    probe_over_python(&backends, &peers).await.unwrap_or_else(|e| panic!("{e:#}"));
}

async fn probe_over_python(backends: &Backends, peers: &RegistryPeers) -> Result<()> {
    let appkey = unique("py_prov");
    add_app(backends, &appkey).await?;
    let env = backends.env;

    // py-b's settings are in Redis before it starts, as the design's JSON with weight 30.
    let (port_a, port_b) = (free_port()?, free_port()?);
    let key_b = NodeKey::new(env, &appkey, "Directory", PYTHON_HOST, port_b)?;
    let mut redis = probe_tests::redis().await?;
    let preset = python_node_json(port_b, 30, 1);
    redis::cmd("HSET")
        .arg(redis_hash(env))
        .arg(key_b.redis_field())
        .arg(&preset)
        .query_async::<()>(&mut redis)
        .await
        .context("cannot preset py-b's settings in Redis")?;

    let (a, b) = tokio::join!(
        peers.start_provider(&appkey, "py-a", port_a),
        peers.start_provider(&appkey, "py-b", port_b)
    );
    let (a, b) = (a?, b?);
    let key_a = a.node_key(env, &appkey)?;

    // What the Python providers wrote: py-a its default settings to Redis, both their nodes.
    let default_a = python_node_json(port_a, 10, 1);
    let stored_a: Option<String> =
        redis::cmd("HGET").arg(redis_hash(env)).arg(key_a.redis_field()).query_async(&mut redis).await?;
    ensure!(stored_a.as_deref() == Some(default_a.as_str()), "py-a stored {stored_a:?}, not {default_a}");
    check_python_node(&key_a, &default_a, 10, &a).await?;
    check_python_node(&key_b, &preset, 30, &b).await?;

    // probe discovers them: no `protocol` field, so unframed binary, one call in flight per pooled
    // connection. No retries, so a call that failed on a stale connection shows as an error.
    let mut options = ClusterOptions::default();
    options.max_attempts = 1;
    let (routes, client) = client(backends, &appkey, options).await?;
    wait_for_routes(&routes, "py-a and py-b weighted 10 and 30", |r| {
        let mut weights: Vec<String> = r.table.in_rotation().map(|e| e.weight.to_string()).collect();
        weights.sort_unstable();
        weights == ["10", "30"]
    })
    .await?;
    let counts = count_pings(&client, PROBE_CALLS, 4).await?;
    println!("probe client over python providers 10/30: {counts:?}");
    ensure!(counts.values().sum::<usize>() == PROBE_CALLS, "counts {counts:?} do not add up");
    for (tag, weight) in [("py-a", 25.0), ("py-b", 75.0)] {
        let got = counts.get(tag).copied().unwrap_or(0);
        let share = percent(got, PROBE_CALLS);
        println!("{tag}: {got} calls, {share:.1}% (weight share {weight}%)");
        ensure!(got > 0, "{tag} answered no call: {counts:?}");
        ensure!(
            (share - weight).abs() <= PROBE_TOLERANCE_POINTS,
            "probe gave {tag} {share:.1}% of {PROBE_CALLS} calls, more than {PROBE_TOLERANCE_POINTS} points \
             from {weight}%: {counts:?}"
        );
    }

    // thriftpy2's make_server closes a connection idle for 3 s (client_timeout=3000): the pool must
    // not send calls into those.
    tokio::time::sleep(PYTHON_IDLE_CLOSE + Duration::from_millis(500)).await;
    let idle = count_pings(&client, 100, 4).await.context("calls after the Python servers' idle timeout")?;
    println!("probe client after {PYTHON_IDLE_CLOSE:?} idle: {idle:?}");
    ensure!(idle.values().sum::<usize>() == 100, "{idle:?}");

    // An operator disables py-a: probe stops calling it once its routes change.
    let change = Operator::new(backends.clone()).disable(&key_a).await?;
    ensure!(change.live, "the operator did not find py-a's live node: {change:?}");
    ensure!(change.before.weight == 10 && !change.after.valid.is_on(), "{change:?}");
    let id = key_a.zk_child();
    wait_for_routes(&routes, "py-a out of rotation", |r| {
        r.table.get(&id).is_some_and(|e| !e.in_rotation()) && r.table.in_rotation().count() == 1
    })
    .await?;
    let after = count_pings(&client, 200, 4).await?;
    println!("probe client after disabling py-a: {after:?}");
    ensure!(
        !after.contains_key("py-a") && after.get("py-b") == Some(&200),
        "after disabling py-a: {after:?}"
    );

    // The node JSON the operator rewrote still reads as the design's: Python clients skip py-a too.
    let out = peers.run_client(&appkey, 50).await?;
    println!("python client after disabling py-a: {}", out["counts"]);
    ensure!(out["counts"] == serde_json::json!({"py-b": 50}), "python client after disabling py-a: {out}");
    let raw_a = out["nodes"][&id]["raw"].as_str().unwrap_or_default();
    let seen: Value =
        serde_json::from_str(raw_a).with_context(|| format!("py-a's node as kazoo read it: {out}"))?;
    ensure!(
        seen["valid"] == 0 && seen["weight"] == 10 && seen["port"] == port_a,
        "py-a's node after disable: {raw_a}"
    );
    let stored: Option<String> =
        redis::cmd("HGET").arg(redis_hash(env)).arg(key_a.redis_field()).query_async(&mut redis).await?;
    let stored: Value =
        serde_json::from_str(stored.as_deref().unwrap_or_default()).context("py-a's Redis settings")?;
    ensure!(
        stored["valid"] == 0 && stored["host"] == PYTHON_HOST,
        "py-a's Redis settings after disable: {stored}"
    );

    // Dropped, the providers close their ZooKeeper sessions: their nodes leave every client's routes.
    drop((a, b));
    let gone = wait_for_routes(&routes, "no Python nodes", |r| r.table.endpoints.is_empty()).await?;
    println!("python nodes left the routes {gone:?} after the drop returned (it waits for a clean exit)");
    Ok(())
}

/// The ephemeral node a Python provider created holds exactly `json` (the design's `json.dumps`), and
/// probe's `NodeData` reads it with every field kept and none of probe's additions.
async fn check_python_node(key: &NodeKey, json: &str, weight: u32, provider: &PythonProvider) -> Result<()> {
    let zk = probe_tests::zookeeper().await?;
    let (raw, _) = zk.get_data(&key.zk_node_path()).await.with_context(|| {
        format!(
            "no node {} after the provider was ready; it logged:\n{}",
            key.zk_node_path(),
            provider.stderr()
        )
    })?;
    ensure!(raw == json.as_bytes(), "{key}: node holds {}, not {json}", String::from_utf8_lossy(&raw));
    let data = NodeData::from_json(&raw)?;
    let mut want = NodeData::new(PYTHON_HOST, provider.port());
    want.weight = weight.into();
    ensure!(data == want, "{key}: {data:?}");
    ensure!(data.protocol.is_none() && data.transport.is_none() && data.version.is_none(), "{data:?}");
    let back: Value = serde_json::from_slice(&data.to_json())?;
    ensure!(back == serde_json::from_str::<Value>(json)?, "{key}: NodeData writes {back} for {json}");
    Ok(())
}

// --- the design's app check ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_provider_refuses_an_unregistered_appkey() {
    let (backends, peers) = setup().await;
    let appkey = unique("py_unreg");
    let port = free_port().unwrap_or_else(|e| panic!("{e:#}"));
    let (status, stderr) = peers.run_provider_to_end(&appkey, port).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("appkey - {appkey} 尚未注册")), "{stderr}");
    let nodes = backends.registry.nodes(backends.env, &appkey).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(nodes.is_empty(), "a refused provider registered {nodes:?}");
}
