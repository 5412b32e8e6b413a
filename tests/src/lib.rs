//! Shared helpers of probe's integration tests: where the real services are, and connecting to them
//! with errors that say how to start them.
//!
//! The services are the ones `scripts/services.sh up` starts; `scripts/services.sh env` prints the
//! variables read here, and the defaults are that script's ports, so a plain `cargo test` works
//! once the services are up.

use std::time::Duration;

use anyhow::{Context, Result};

/// ZooKeeper connect string (`PROBE_TEST_ZK`).
pub fn zk_addr() -> String {
    std::env::var("PROBE_TEST_ZK").unwrap_or_else(|_| "127.0.0.1:22181".to_owned())
}

/// Redis URL (`PROBE_TEST_REDIS`).
pub fn redis_url() -> String {
    std::env::var("PROBE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:26379/".to_owned())
}

/// MySQL URL (`PROBE_TEST_MYSQL`).
pub fn mysql_url() -> String {
    std::env::var("PROBE_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://probe:probe@127.0.0.1:23306/probe_test".to_owned())
}

const START_HINT: &str = "start the test services with `scripts/services.sh up` (or run `scripts/test.sh`)";

/// A ZooKeeper session with the test server.
pub async fn zookeeper() -> Result<zookeeper_client::Client> {
    let addr = zk_addr();
    let connect = zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .with_connection_timeout(Duration::from_secs(3))
        .with_fail_eagerly()
        .connect(&addr);
    tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("ZooKeeper at {addr} (PROBE_TEST_ZK) is unreachable; {START_HINT}"))
}

/// A multiplexed connection to the test Redis.
pub async fn redis() -> Result<redis::aio::MultiplexedConnection> {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).with_context(|| format!("bad PROBE_TEST_REDIS {url}"))?;
    tokio::time::timeout(Duration::from_secs(5), client.get_multiplexed_async_connection())
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("Redis at {url} (PROBE_TEST_REDIS) is unreachable; {START_HINT}"))
}

/// A connection to the test MariaDB.
pub async fn mysql() -> Result<mysql_async::Conn> {
    let url = mysql_url();
    let opts = mysql_async::Opts::from_url(&url).with_context(|| format!("bad PROBE_TEST_MYSQL {url}"))?;
    tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(opts))
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("MySQL at {url} (PROBE_TEST_MYSQL) is unreachable; {START_HINT}"))
}

/// The `PROBE_*` settings that point probe at the test services (env `dev`, 4 s sessions), for
/// `Config::from_vars` or a child process's environment.
pub fn probe_vars() -> Vec<(&'static str, String)> {
    vec![
        ("PROBE_ENV", "dev".to_owned()),
        ("PROBE_ZOOKEEPER", zk_addr()),
        ("PROBE_ZK_SESSION_TIMEOUT_MS", "4000".to_owned()),
        ("PROBE_ZK_CONNECT_TIMEOUT_MS", "5000".to_owned()),
        ("PROBE_REDIS", redis_url()),
        ("PROBE_MYSQL", mysql_url()),
        ("PROBE_ADVERTISE_HOST", "127.0.0.1".to_owned()),
    ]
}

const CLUSTER_HINT: &str =
    "start the clustered test services with `scripts/services.sh up --cluster` (scripts/test.sh does)";

/// The ZooKeeper ensemble's connect string (`PROBE_TEST_ZK_ENSEMBLE`, else the ports
/// `scripts/services.sh up --cluster` uses).
pub fn zk_ensemble_addr() -> String {
    std::env::var("PROBE_TEST_ZK_ENSEMBLE")
        .unwrap_or_else(|_| "127.0.0.1:22191,127.0.0.1:22192,127.0.0.1:22193".to_owned())
}

/// The Redis Cluster's seed URLs, comma-separated (`PROBE_TEST_REDIS_CLUSTER`, else the ports
/// `scripts/services.sh up --cluster` uses).
pub fn redis_cluster_urls() -> String {
    std::env::var("PROBE_TEST_REDIS_CLUSTER").unwrap_or_else(|_| {
        (26401..=26406).map(|port| format!("redis://127.0.0.1:{port}/")).collect::<Vec<_>>().join(",")
    })
}

/// A connection to the test Redis Cluster.
pub async fn redis_cluster() -> Result<redis::cluster_async::ClusterConnection> {
    let urls = redis_cluster_urls();
    let client = redis::cluster::ClusterClient::new(urls.split(',').collect::<Vec<_>>())
        .with_context(|| format!("bad PROBE_TEST_REDIS_CLUSTER {urls}"))?;
    tokio::time::timeout(Duration::from_secs(5), client.get_async_connection())
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| {
            format!("the Redis Cluster at {urls} (PROBE_TEST_REDIS_CLUSTER) is unreachable; {CLUSTER_HINT}")
        })
}

/// probe's backends on the clustered test services: the ZooKeeper ensemble, the Redis Cluster, and
/// the MariaDB of the single services.
pub async fn clustered_backends() -> Result<probe_runtime::registry::Backends> {
    let vars = probe_vars().into_iter().map(|(name, value)| match name {
        "PROBE_ZOOKEEPER" => (name, zk_ensemble_addr()),
        "PROBE_REDIS" => (name, redis_cluster_urls()),
        _ => (name, value),
    });
    let config = probe_runtime::config::Config::from_vars(vars).context("bad test configuration")?;
    probe_runtime::registry::Backends::connect(&config).await.with_context(|| CLUSTER_HINT.to_owned())
}

/// probe's backends on the test services: ZooKeeper, Redis and MariaDB.
pub async fn real_backends() -> Result<probe_runtime::registry::Backends> {
    let config = probe_runtime::config::Config::from_vars(probe_vars()).context("bad test configuration")?;
    probe_runtime::registry::Backends::connect(&config).await.with_context(|| START_HINT.to_owned())
}

/// Deletes the ZooKeeper node `path` and everything under it (what a test left; nodes of closed
/// sessions are gone already).
pub async fn remove_tree(path: &str) -> Result<()> {
    remove_tree_with(&zookeeper().await?, path).await
}

/// [`remove_tree`] through the session `raw` (one authenticated for a secured tree).
pub async fn remove_tree_with(raw: &zookeeper_client::Client, path: &str) -> Result<()> {
    let mut paths = vec![path.to_owned()];
    let mut i = 0;
    while let Some(parent) = paths.get(i).cloned() {
        for child in raw.list_children(&parent).await.unwrap_or_default() {
            paths.push(format!("{parent}/{child}"));
        }
        i += 1;
    }
    for path in paths.iter().rev() {
        match raw.delete(path, None).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
            Err(err) => return Err(err).with_context(|| format!("delete {path}")),
        }
    }
    Ok(())
}

/// A name no other test run uses, for keys and nodes a test creates.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

pub mod chaos;
pub mod console;
pub mod governance;
mod peer;
pub mod proxy;
pub mod python;
pub mod python_registry;
pub mod scenarios;
pub mod tls;

/// Code generated from `tests/idl/*.thrift` by probe-build (see `build.rs`).
pub mod idl {
    probe::include_idl!();
}

/// `tests/idl/ns/*.thrift` generated with one module per namespace (`acme::shop`, `acme::common`).
pub mod idl_ns {
    probe::include_idl!("ns");
}

/// Sample values shared by the in-process and interop tests (the Python peers in `tests/python`
/// build the same users).
pub mod fixtures {
    use crate::idl::interop::{User, UserId};
    use crate::idl::shared::{Address, Level};

    /// `User { id, ..User::default() }`: what `blank_user` builds in Python.
    pub fn blank_user(id: UserId) -> User {
        User { id, ..User::default() }
    }

    /// What `get(id)` answers for an id nobody put.
    pub fn sample_user(id: UserId) -> User {
        User {
            id,
            name: format!("user{id}"),
            address: Some(Address { city: "Paris".into(), street: Some("Rue 1".into()), zip: 75001 }),
            tags: vec!["a".into(), "b".into()],
            scores: [("math".to_owned(), 9.5)].into_iter().collect(),
            level: Level::HIGH,
            avatar: Some(bytes::Bytes::from_static(b"\x00\x01png")),
            nested: vec![[("k".to_owned(), [1, 2].into_iter().collect())].into_iter().collect()],
            parent: Some(Box::new(blank_user(1))),
            ..User::default()
        }
    }
}
