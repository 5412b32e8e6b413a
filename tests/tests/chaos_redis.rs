//! Chaos on the Redis Cluster (`scripts/services.sh up --cluster`): the master holding the settings
//! hash killed with SIGKILL during a stream of operator changes and a registration. No change may be
//! lost: every change reported done is what the cluster holds at the end (or a later change that
//! failed may have landed), and the registration either succeeds with its settings stored or fails
//! with an error. The killed node is started again afterwards and rejoins as a replica.
//!
//! Prints `chaos: <scenario>: <calls> calls, <failed> failed, <what was measured>`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use probe_runtime::registry::Operator;
use probe_runtime::registry::layout::redis_hash;
use probe_tests::chaos::{kill, service_pid, services_up, stored_settings};
use probe_tests::governance::{add_app, node_key, start_provider};
use probe_tests::{clustered_backends, redis_cluster, redis_cluster_urls, unique};

/// Operator changes in the stream, one every `PAUSE`.
const CHANGES: u32 = 300;
const PAUSE: Duration = Duration::from_millis(20);
/// The change after which the master is killed.
const KILL_AT: u32 = 40;

/// The cluster node number (1-based, in the order of the seed URLs) of the master serving `key`.
async fn master_of(key: &str) -> Result<usize> {
    let urls: Vec<String> = redis_cluster_urls().split(',').map(str::to_owned).collect();
    for url in &urls {
        let Ok(client) = redis::Client::open(url.as_str()) else { continue };
        let Ok(Ok(mut conn)) =
            tokio::time::timeout(Duration::from_secs(1), client.get_multiplexed_async_connection()).await
        else {
            continue;
        };
        let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(&mut conn).await?;
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut conn).await?;
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(addr), Some(flags)) = (fields.get(1), fields.get(2)) else { continue };
            if !flags.contains("master") || flags.contains("fail") {
                continue;
            }
            let serves = fields.iter().skip(8).any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                matches!((from.parse::<i64>(), to.parse::<i64>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
            });
            let port = addr.split('@').next().unwrap_or_default();
            if serves {
                return urls
                    .iter()
                    .position(|u| u.contains(port))
                    .map(|i| i + 1)
                    .with_context(|| format!("the master {port} is not among the seeds {urls:?}"));
            }
        }
    }
    bail!(
        "no node of {urls:?} answers CLUSTER NODES; start the cluster with `scripts/services.sh up --cluster`"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_master_killed_during_operator_changes() {
    master_killed().await.unwrap_or_else(|e| panic!("{e:#}"));
}

async fn master_killed() -> Result<()> {
    let backends = clustered_backends().await?;
    let appkey = unique("chaos_redis");
    add_app(&backends, &appkey).await?;
    let provider = start_provider(&backends, &appkey, "a").await?;
    let key = node_key(&backends, &appkey, &provider);
    let hash = redis_hash(backends.env);
    let operator = Operator::new(backends.clone()).with_actor("test:chaos");

    let master = master_of(&hash).await?;
    let pid = service_pid(&format!("redis-cluster/{master}"))?;

    let (mut done, mut failed, mut last_done, mut failed_after_last_done) = (0, 0, None, Vec::new());
    let mut registration = None;
    let mut killed_at = None;
    let mut longest = Duration::ZERO;
    for weight in 1..=CHANGES {
        if weight == KILL_AT {
            kill(&pid, "-9")?;
            killed_at = Some(Instant::now());
        }
        let started = Instant::now();
        let result = operator.set_weight(&key, weight).await;
        longest = longest.max(started.elapsed());
        match result {
            Ok(_) => {
                done += 1;
                last_done = Some(weight);
                failed_after_last_done.clear();
            }
            Err(_) => {
                failed += 1;
                failed_after_last_done.push(weight);
            }
        }
        // A registration while the cluster fails over.
        if weight == KILL_AT + 5 {
            registration = Some(start_provider(&backends, &appkey, "b").await);
        }
        tokio::time::sleep(PAUSE).await;
    }

    let mut cluster = redis_cluster().await?;
    let stored =
        stored_settings(&mut cluster, &key).await.context("the node's settings after the failover")?;
    let stored_weight = stored.weight.to_string().parse::<u32>().unwrap_or(0);
    let registered = match &registration {
        Some(Ok(server)) => {
            let key_b = node_key(&backends, &appkey, server);
            stored_settings(&mut cluster, &key_b)
                .await
                .context("the provider registered during the failover has no settings in the cluster")?;
            "registered, settings stored".to_owned()
        }
        Some(Err(e)) => format!("refused: {e:#}"),
        None => "not tried".to_owned(),
    };

    // The killed node back, as a replica, for the tests after this one.
    services_up(&["--cluster"])?;

    println!(
        "chaos: redis master killed: {CHANGES} operator changes, {failed} failed, {done} done, node {master} killed \
         {} ms before the end, longest change {} ms, last done weight {last_done:?}, stored weight {stored_weight}, \
         registration during failover: {registered}",
        killed_at.map_or(0, |t| t.elapsed().as_millis()),
        longest.as_millis()
    );
    let last_done = last_done.context("no change succeeded")?;
    ensure!(
        stored_weight == last_done || failed_after_last_done.contains(&stored_weight),
        "a change reported done was lost: the cluster holds weight {stored_weight}, the last change reported done \
         set {last_done} (failed after it: {failed_after_last_done:?})"
    );
    ensure!(done + failed == CHANGES, "{done} + {failed} != {CHANGES}");
    provider.shutdown().await?;
    if let Some(Ok(server)) = registration {
        server.shutdown().await?;
    }
    Ok(())
}
