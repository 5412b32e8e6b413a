//! Traffic rules on the real ZooKeeper, Redis and MariaDB (`scripts/services.sh up`): a canary
//! split and a header route by version, a rule change reaching 20 clients, zone affinity, priority
//! tiers across a SIGKILL of primaries, and the design's Python client seeing exactly the nodes it
//! saw before rules existed. Each prints one `rules:` line with its figures.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use probe::{Channel, Metadata};
use probe_runtime::client::{ClusterOptions, ClusterTransport};
use probe_runtime::discovery::ServiceRoutes;
use probe_runtime::registry::zookeeper::ZooKeeperRegistry;
use probe_runtime::registry::{Backends, Operator, Registry};
use probe_runtime::server::{Server, ServerHandle};
use probe_tests::governance::{
    ProviderProcess, Tagged, add_app, count_pings, spawn_provider, wait_for_routes,
};
use probe_tests::idl::interop::{DirectoryClient, DirectoryServer};
use probe_tests::python_registry::RegistryPeers;
use probe_tests::{real_backends, unique};

const SERVICE: &str = "Directory";

/// A registered provider of `appkey` answering `ping` with `tag`, declaring `version`, `zone`
/// and `tier`.
async fn provider(
    backends: &Backends,
    appkey: &str,
    tag: &str,
    version: &str,
    zone: &str,
    tier: u8,
) -> Result<ServerHandle> {
    Server::builder()
        .add_service_for_app(appkey, DirectoryServer::new(Tagged { tag: tag.to_owned() }))
        .register(backends.clone())
        .advertise_host("127.0.0.1")
        .version(version)
        .tag("zone", zone)
        .tier(tier)
        .grace_period(Duration::from_millis(200))
        .start("127.0.0.1:0")
        .await
        .with_context(|| format!("cannot start provider {tag}"))
}

/// Writes `text` as the service's rule with revision `revision` (after whatever is there).
async fn set_rule(
    registry: &dyn Registry,
    env: probe_runtime::registry::layout::Env,
    appkey: &str,
    text: &str,
) -> Result<u64> {
    let current = registry.read_rule(env, appkey, SERVICE).await?;
    let revision = current
        .as_ref()
        .and_then(|c| probe_runtime::rules::Rule::parse(&c.text).ok())
        .map_or(0, |r| r.revision)
        + 1;
    let mut rule = probe_runtime::rules::Rule::parse(text)
        .map_err(|e| anyhow::anyhow!("{}", probe_runtime::rules::describe(&e)))?;
    rule.revision = revision;
    registry.write_rule(env, appkey, SERVICE, &rule.to_text(), current.map(|c| c.version)).await?;
    Ok(revision)
}

async fn routes_and_channel(
    backends: &Backends,
    appkey: &str,
    options: ClusterOptions,
) -> Result<(ServiceRoutes, Channel)> {
    let routes = ServiceRoutes::watch(backends.registry.clone(), backends.env, appkey, SERVICE).await?;
    let channel = Channel::new(ClusterTransport::new(routes.clone(), options));
    Ok((routes, channel))
}

fn share(counts: &BTreeMap<String, usize>, prefix: &str) -> f64 {
    let total: usize = counts.values().sum();
    let hit: usize = counts.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, n)| n).sum();
    hit as f64 / total.max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_split_and_a_header_route() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("rules_canary");
    add_app(&backends, &appkey).await?;
    let _servers = [
        provider(&backends, &appkey, "v1-a", "1", "a", 0).await?,
        provider(&backends, &appkey, "v1-b", "1", "a", 0).await?,
        provider(&backends, &appkey, "v2-a", "2", "a", 0).await?,
    ];
    let (routes, channel) = routes_and_channel(&backends, &appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "three nodes", |r| r.table.in_rotation().count() == 3).await?;

    let canary = r#"{"versions": [{"version": "1", "share": 95}, {"version": "2", "share": 5}]}"#;
    let revision = set_rule(&*backends.registry, backends.env, &appkey, canary).await?;
    wait_for_routes(&routes, "the canary rule", |r| r.rule.as_ref().is_some_and(|x| x.revision == revision))
        .await?;
    let counts = count_pings(&DirectoryClient::new(channel.clone()), 20_000, 8).await?;
    let v2 = share(&counts, "v2");
    println!("rules: canary 5% to version 2: {:.2}% of 20000 calls ({counts:?})", v2 * 100.0);
    ensure!((0.04..=0.06).contains(&v2), "the canary took {:.2}%", v2 * 100.0);

    // Marked calls go to version 2, all others to version 1.
    let routed = r#"{"versions": [{"version": "1", "share": 100}],
                     "header_routes": [{"header": "canary", "value": "1", "version": "2"}]}"#;
    let revision = set_rule(&*backends.registry, backends.env, &appkey, routed).await?;
    wait_for_routes(&routes, "the header route", |r| r.rule.as_ref().is_some_and(|x| x.revision == revision))
        .await?;
    let marked = DirectoryClient::new(channel.with_metadata(Metadata::new().header("canary", "1")));
    let unmarked = DirectoryClient::new(channel.with_metadata(Metadata::new().header("canary", "0")));
    let (marked, unmarked) = (count_pings(&marked, 2_000, 4).await?, count_pings(&unmarked, 2_000, 4).await?);
    println!(
        "rules: header route canary=1: {:.1}% of 2000 marked calls to version 2, {:.1}% of 2000 others",
        share(&marked, "v2") * 100.0,
        share(&unmarked, "v2") * 100.0
    );
    ensure!(share(&marked, "v2") == 1.0 && share(&unmarked, "v2") == 0.0, "{marked:?} {unmarked:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_change_reaches_20_clients() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("rules_reach");
    add_app(&backends, &appkey).await?;
    let _server = provider(&backends, &appkey, "only", "1", "a", 0).await?;
    // 20 clients, each with a ZooKeeper session of its own.
    let config = probe_runtime::config::Config::from_vars(probe_tests::probe_vars())?;
    let Some(probe_runtime::config::RegistryBackend::ZooKeeper(zk)) = config.registry else {
        bail!("the test configuration names no ZooKeeper")
    };
    let mut clients = Vec::new();
    for _ in 0..20 {
        let registry: Arc<dyn Registry> = Arc::new(ZooKeeperRegistry::connect(&zk).await?);
        clients.push(ServiceRoutes::watch(registry, backends.env, &appkey, SERVICE).await?);
    }
    let mut delays = Vec::new();
    for change in 0..10 {
        let share = 50 + change;
        let text = format!(
            r#"{{"versions": [{{"version": "1", "share": {share}}}, {{"version": "0", "share": {}}}]}}"#,
            100 - share
        );
        let written = Instant::now();
        let revision = set_rule(&*backends.registry, backends.env, &appkey, &text).await?;
        let wrote = written.elapsed();
        let waits = clients.iter().cloned().map(|routes| async move {
            wait_for_routes(&routes, "the new rule", move |r| {
                r.rule.as_ref().is_some_and(|x| x.revision == revision)
            })
            .await
        });
        for waited in futures_util_join_all(waits).await {
            delays.push(waited? + wrote);
        }
    }
    delays.sort();
    let (p50, p99) = (delays[delays.len() / 2], delays[delays.len() * 99 / 100]);
    println!("rules: a rule change reached 20 clients (10 changes): p50 {p50:?}, p99 {p99:?}");
    ensure!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    Ok(())
}

/// Awaits every future (in order); the tests crate has no futures crate of its own.
async fn futures_util_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("a waiting task panicked"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_affinity_stays_in_zone_until_the_zone_is_short() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("rules_zone");
    add_app(&backends, &appkey).await?;
    let servers = [
        provider(&backends, &appkey, "a1", "1", "a", 0).await?,
        provider(&backends, &appkey, "a2", "1", "a", 0).await?,
        provider(&backends, &appkey, "b1", "1", "b", 0).await?,
        provider(&backends, &appkey, "b2", "1", "b", 0).await?,
    ];
    let options = ClusterOptions::default().tag("zone", "a");
    let (routes, channel) = routes_and_channel(&backends, &appkey, options).await?;
    wait_for_routes(&routes, "four nodes", |r| r.table.in_rotation().count() == 4).await?;
    let revision = set_rule(
        &*backends.registry,
        backends.env,
        &appkey,
        r#"{"affinity": {"tag": "zone", "min_share": 0.5}}"#,
    )
    .await?;
    wait_for_routes(&routes, "the affinity rule", |r| {
        r.rule.as_ref().is_some_and(|x| x.revision == revision)
    })
    .await?;
    let client = DirectoryClient::new(channel);
    let healthy = count_pings(&client, 2_000, 4).await?;
    // Zone a loses one of its two nodes: a third of the healthy weight, under half: calls spill.
    let operator = Operator::new(backends.clone());
    let a2 = probe_tests::governance::node_key(&backends, &appkey, &servers[1]);
    operator.disable(&a2).await?;
    wait_for_routes(&routes, "a2 off", |r| r.table.in_rotation().count() == 3).await?;
    let short = count_pings(&client, 2_000, 4).await?;
    println!(
        "rules: zone affinity: {:.1}% in zone a while it is whole, {:.1}% once it holds a third of the healthy weight",
        share(&healthy, "a") * 100.0,
        share(&short, "a") * 100.0
    );
    ensure!(share(&healthy, "a") == 1.0, "{healthy:?}");
    ensure!(share(&short, "b") > 0.4, "calls did not spill: {short:?}");
    Ok(())
}

/// A provider process of `appkey` in tier `tier`.
fn tiered(appkey: &str, tag: &str, tier: u8) -> Result<ProviderProcess> {
    let binary = env!("CARGO_BIN_EXE_registered_provider");
    spawn_provider(binary, appkey, tag, &[("PROBE_SERVER_TIER", tier.to_string())])
}

/// Pings until `stop`, counting answers by tag; every error is kept.
async fn load(client: DirectoryClient, stop: Arc<AtomicBool>) -> (BTreeMap<String, usize>, Vec<String>) {
    let (mut counts, mut errors) = (BTreeMap::new(), Vec::new());
    while !stop.load(Ordering::Relaxed) {
        match client.ping("hi".into()).await {
            Ok(tag) => *counts.entry(tag).or_default() += 1,
            Err(e) => errors.push(e.to_string()),
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    (counts, errors)
}

/// Runs 4 callers for `seconds`: answers by tag and errors.
async fn measure(client: &DirectoryClient, seconds: f64) -> Result<(BTreeMap<String, usize>, Vec<String>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..4).map(|_| tokio::spawn(load(client.clone(), stop.clone()))).collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut counts, mut errors) = (BTreeMap::new(), Vec::new());
    for task in tasks {
        let (c, e) = task.await?;
        for (k, n) in c {
            *counts.entry(k).or_default() += n;
        }
        errors.extend(e);
    }
    Ok((counts, errors))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_tiers_take_over_when_primaries_die_and_hand_back() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("rules_tiers");
    add_app(&backends, &appkey).await?;
    let mut primaries: Vec<ProviderProcess> =
        ["p1", "p2", "p3"].iter().map(|t| tiered(&appkey, t, 0)).collect::<Result<_>>()?;
    let _backups: Vec<ProviderProcess> =
        ["b1", "b2"].iter().map(|t| tiered(&appkey, t, 1)).collect::<Result<_>>()?;
    let (routes, channel) = routes_and_channel(&backends, &appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "five nodes", |r| r.table.in_rotation().count() == 5).await?;
    let client = DirectoryClient::new(channel);

    let (before, errors) = measure(&client, 1.0).await?;
    ensure!(errors.is_empty(), "{errors:?}");
    // SIGKILL two primaries under load.
    let stop = Arc::new(AtomicBool::new(false));
    let under_kill = tokio::spawn(load(client.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    primaries.truncate(1);
    let (during, errors_during) = measure(&client, 2.0).await?;
    stop.store(true, Ordering::Relaxed);
    let (_, kill_errors) = under_kill.await?;
    // Restart them and wait for the dead nodes to leave the registry (session timeout 4 s).
    primaries.push(tiered(&appkey, "p2", 0)?);
    primaries.push(tiered(&appkey, "p3", 0)?);
    let live: Vec<String> = primaries.iter().map(|p| format!("{SERVICE}_127.0.0.1_{}", p.port)).collect();
    wait_for_routes(&routes, "three primaries, all alive", |r| {
        r.table.endpoints.iter().filter(|e| e.id.contains("127.0.0.1")).count() == 5
            && live.iter().all(|id| r.table.get(id).is_some())
    })
    .await?;
    let (after, errors_after) = measure(&client, 1.0).await?;
    let backup = |c: &BTreeMap<String, usize>| share(c, "b");
    println!(
        "rules: tiers 3 primaries + 2 backups: backups took {:.1}% before, {:.1}% with 2 primaries SIGKILLed, {:.1}% after they restarted; {} failed calls",
        backup(&before) * 100.0,
        backup(&during) * 100.0,
        backup(&after) * 100.0,
        errors_during.len() + kill_errors.len() + errors_after.len()
    );
    ensure!(
        errors_during.is_empty() && kill_errors.is_empty() && errors_after.is_empty(),
        "{errors_during:?} {kill_errors:?} {errors_after:?}"
    );
    ensure!(backup(&before) == 0.0 && backup(&after) == 0.0, "{before:?} {after:?}");
    ensure!(backup(&during) > 0.3, "the backups did not take over: {during:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_design_python_client_sees_the_nodes_it_saw_before_rules() -> Result<()> {
    let backends = real_backends().await?;
    let peers = RegistryPeers::from_env()?;
    let appkey = unique("rules_python");
    add_app(&backends, &appkey).await?;
    let _servers = [
        provider(&backends, &appkey, "v1", "1", "a", 0).await?,
        provider(&backends, &appkey, "v2", "2", "b", 1).await?,
    ];
    let (routes, _) = routes_and_channel(&backends, &appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "two nodes", |r| r.table.in_rotation().count() == 2).await?;
    let before = peers.run_client(&appkey, 200).await?;
    set_rule(
        &*backends.registry,
        backends.env,
        &appkey,
        r#"{"versions": [{"version": "1", "share": 100}], "affinity": {"tag": "zone"}}"#,
    )
    .await?;
    let after = peers.run_client(&appkey, 200).await?;
    let nodes = |v: &serde_json::Value| {
        v["nodes"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
    };
    let answered = |v: &serde_json::Value| {
        v["counts"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
    };
    println!(
        "rules: the design's Python client lists {:?} before and {:?} after a rule, and calls {:?}",
        nodes(&before),
        nodes(&after),
        answered(&after)
    );
    ensure!(nodes(&before) == nodes(&after) && nodes(&after).len() == 2, "{before} {after}");
    ensure!(answered(&after).len() == 2, "the Python client ignores rules and tiers: {after}");
    Ok(())
}
