//! Issue 11: node data in the loose forms the Python design accepts (booleans, floats, any spacing
//! and key order, extra fields), on the design's minimal database, and one node the Python client
//! could not use. A Python operator (`design_operator.py`) creates the database with the design's
//! `serviceapp` (a unique `appkey`, nothing else) and writes the node settings by hand into Redis
//! and ZooKeeper; real thriftpy2 providers (`registry_provider.py`, which registers what Redis holds
//! for it) and a probe provider registered against that database serve; a probe client and the
//! design's Python client (`registry_client.py`) call them: both use the same nodes in the same
//! proportions, `valid: 2` is off for both, and the unusable node gets no call and is reported.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use probe_runtime::client::ClusterOptions;
use probe_runtime::config::Config;
use probe_runtime::registry::layout::NodeKey;
use probe_runtime::registry::{Backends, Operator};
use probe_runtime::server::Server;
use probe_tests::governance::{Tagged, client, count_pings, wait_for_routes};
use probe_tests::idl::interop::DirectoryServer;
use probe_tests::python_registry::{PYTHON_HOST, RegistryPeers, free_port};
use probe_tests::{probe_vars, unique, zookeeper};
use serde_json::json;
use zookeeper_client as zk;

/// Calls each client makes.
const CALLS: usize = 1200;
/// How far (in percentage points) each node's share may be from its weight's.
const TOLERANCE_POINTS: f64 = 5.0;

/// The Python nodes: tag, Redis value as an operator typed it, expected share in percent. The probe
/// node (weight 20.0) takes the remaining 25%.
fn python_nodes(ports: &[u16; 4]) -> Vec<(&'static str, String, f64)> {
    let h = PYTHON_HOST;
    vec![
        (
            "lo-a",
            format!(r#"{{ "valid" :true,"weight":30.0, "zone": "a", "port": {},"host": "{h}" }}"#, ports[0]),
            37.5,
        ),
        ("lo-b", format!(r#"{{"host":"{h}","port":{},"weight":10,"valid":1.0}}"#, ports[1]), 12.5),
        (
            "lo-c",
            format!(
                "{{\n  \"port\": {},\n  \"weight\": 20,\n  \"host\": \"{h}\",\n  \"valid\": 1,\n  \"extra\": {{\"n\": [1, 2]}}\n}}",
                ports[2]
            ),
            25.0,
        ),
        ("lo-d", format!(r#"{{"host": "{h}", "port": {}, "weight": 40, "valid": 2}}"#, ports[3]), 0.0),
    ]
}

fn check_shares(who: &str, counts: &BTreeMap<String, usize>, expected: &[(&str, f64)]) -> Result<()> {
    let total: usize = counts.values().sum();
    ensure!(total == CALLS, "{who}: {counts:?} do not add up to {CALLS}");
    for (tag, want) in expected {
        let got = counts.get(*tag).copied().unwrap_or(0);
        let share = got as f64 * 100.0 / CALLS as f64;
        println!("{who}: {tag} {got} calls, {share:.1}% (expected {want:.1}%)");
        ensure!(
            (share - want).abs() <= TOLERANCE_POINTS,
            "{who} gave {tag} {share:.1}%, not {want:.1}%: {counts:?}"
        );
        if *want == 0.0 {
            ensure!(got == 0, "{who} called {tag}, which is off: {counts:?}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probe_and_python_clients_call_loose_nodes_alike() {
    let peers = RegistryPeers::from_env().unwrap_or_else(|e| panic!("{e:#}"));
    let appkey = unique("loose");
    let database = format!("probe_test_{appkey}");
    let result = loose_nodes(&peers, &appkey, &database).await;
    let dropped = peers.run_operator(&json!([{"op": "drop_db", "database": database}])).await;
    result.unwrap_or_else(|e| panic!("{e:#}"));
    dropped.unwrap_or_else(|e| panic!("cannot drop the test database: {e:#}"));
}

/// probe's backends on the test services, with the app registry in MySQL database `database`.
async fn backends_on(database: &str) -> Result<Backends> {
    let vars = probe_vars().into_iter().map(|(name, value)| match name {
        "PROBE_MYSQL" => {
            let base = value.rsplit_once('/').map_or(value.as_str(), |(base, _)| base).to_owned();
            (name, format!("{base}/{database}"))
        }
        _ => (name, value),
    });
    let config = Config::from_vars(vars).context("bad test configuration")?;
    Backends::connect(&config).await.context("connect to the test services (`scripts/services.sh up`)")
}

async fn loose_nodes(peers: &RegistryPeers, appkey: &str, database: &str) -> Result<()> {
    // The design's minimal database, made the design's way.
    peers.run_operator(&json!([{"op": "create_minimal_db", "database": database, "appkey": appkey}])).await?;
    let backends = backends_on(database).await?;
    let env = backends.env;
    let peers = peers.with_mysql_database(database);

    // Node settings typed into Redis by hand, for the Python nodes and for the probe node.
    let ports = [free_port()?, free_port()?, free_port()?, free_port()?];
    let nodes = python_nodes(&ports);
    let probe_port = free_port()?;
    let probe_key = NodeKey::new(env, appkey, "Directory", PYTHON_HOST, probe_port)?;
    let probe_value =
        format!(r#"{{"weight": 20.0, "valid": true, "host": "{PYTHON_HOST}", "port": {probe_port}}}"#);
    let mut ops = vec![
        json!({"op": "hset", "env": env.as_str(), "field": probe_key.redis_field(), "value": probe_value}),
    ];
    for ((tag, value, _), port) in nodes.iter().zip(ports) {
        let key = NodeKey::new(env, appkey, "Directory", PYTHON_HOST, port)?;
        ops.push(json!({"op": "hset", "env": env.as_str(), "field": key.redis_field(), "value": value}));
        println!("{tag}: {value}");
    }
    peers.run_operator(&serde_json::Value::Array(ops)).await?;

    let mut providers = Vec::new();
    for ((tag, _, _), port) in nodes.iter().zip(ports) {
        providers.push(peers.start_provider(appkey, tag, port).await?);
    }
    // A probe provider on the minimal table takes its loose settings from Redis.
    let probe_server = Server::builder()
        .add_service_for_app(appkey, DirectoryServer::new(Tagged { tag: "probe".to_owned() }))
        .register(backends.clone())
        .advertise_host(PYTHON_HOST)
        .grace_period(Duration::from_millis(300))
        .start((PYTHON_HOST, probe_port))
        .await
        .context("a probe provider on the design's minimal database")?;

    // lo-c's node rewritten in ZooKeeper by hand, with the operator's own spacing.
    let c_path = NodeKey::new(env, appkey, "Directory", PYTHON_HOST, ports[2])?.zk_node_path();
    let spaced =
        format!("{{ \"port\" :{},\"weight\":  20 ,\n \"host\":\"{PYTHON_HOST}\" ,\t\"valid\":1 }}", ports[2]);
    peers.run_operator(&json!([{"op": "zk_set", "path": c_path, "value": spaced}])).await?;
    // A node the Python client skips only because it is off, and probe cannot use: a string weight.
    let zk = zookeeper().await?;
    let bad_port = free_port()?;
    let bad = NodeKey::new(env, appkey, "Directory", PYTHON_HOST, bad_port)?;
    let bad_json = format!(r#"{{"valid": 0, "weight": "30", "host": "{PYTHON_HOST}", "port": {bad_port}}}"#);
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    zk.create(&bad.zk_node_path(), bad_json.as_bytes(), &ephemeral)
        .await
        .context("create the unusable node")?;

    let mut expected: Vec<(&str, f64)> = nodes.iter().map(|(tag, _, share)| (*tag, *share)).collect();
    expected.push(("probe", 25.0));
    // The probe client.
    let mut options = ClusterOptions::default();
    options.max_attempts = 1;
    let (routes, probe_client) = client(&backends, appkey, options).await?;
    wait_for_routes(&routes, "lo-a, lo-b, lo-c and probe in rotation", |r| {
        r.table.in_rotation().count() == 4
    })
    .await?;
    let probe_counts = count_pings(&probe_client, CALLS, 4).await?;
    check_shares("probe client", &probe_counts, &expected)?;

    // The design's Python client over the same nodes.
    let out = peers.run_client(appkey, CALLS).await?;
    let python_counts: BTreeMap<String, usize> = serde_json::from_value(out["counts"].clone())?;
    check_shares("python client", &python_counts, &expected)?;
    ensure!(python_counts.keys().eq(probe_counts.keys()), "{python_counts:?} vs {probe_counts:?}");

    // The unusable node: counted in the metric, listed with its reason.
    let recorded = probe_runtime::metrics::global().unusable_nodes(env, appkey);
    ensure!(recorded == [(bad.zk_child(), "weight_not_number")], "metric holds {recorded:?}");
    let text = probe_runtime::metrics::global().render();
    ensure!(
        text.contains(&format!("node=\"{}\",reason=\"weight_not_number\"}} 1", bad.zk_child())),
        "{text}"
    );
    let report = probe_console::cli::nodes::list(&Operator::new(backends.clone()), appkey).await?;
    let unusable = report.json["unusable"].as_array().context("no unusable list")?;
    println!("probe nodes list --json: unusable {unusable:?}");
    ensure!(unusable.len() == 1 && unusable[0]["child"] == bad.zk_child().as_str(), "{unusable:?}");
    let reason = unusable[0]["reason"].as_str().unwrap_or_default();
    ensure!(reason.contains(r#""30" (str)"#) && reason.contains("TypeError"), "reason {reason:?}");
    ensure!(report.text.contains("probe cannot use"), "{}", report.text);
    probe_server.shutdown().await?;
    drop(providers);
    Ok(())
}

/// The env rule reads the name Python's `socket.getfqdn(socket.gethostname())` gives on this machine.
#[test]
fn the_host_rule_reads_the_name_python_computes() {
    let python = std::env::var("PROBE_TEST_PYTHON")
        .unwrap_or_else(|_| panic!("PROBE_TEST_PYTHON is not set: run the tests through scripts/test.sh"));
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import socket; print(socket.gethostname()); print(socket.getfqdn(socket.gethostname()))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let (hostname, fqdn) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
    let rule = probe_runtime::config::HostRule::of_this_machine();
    println!("python: gethostname {hostname:?}, getfqdn {fqdn:?}; probe: {rule:?}");
    assert_eq!(rule.hostname.as_deref(), Some(hostname));
    assert_eq!(rule.fqdn, fqdn);
}
