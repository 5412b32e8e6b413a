//! The metrics store (Redis) and the audit log (MariaDB) against the real services, and per-call
//! metrics end to end: calls counted on both sides, rendered on a server's admin endpoint, and
//! published as windows to the embedded and to the real metrics store.
//!
//! A test that cannot reach a service fails, saying how to start it. Every test uses its own
//! appkey or actor, so the tests run in parallel and again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use probe::CallError;
use probe_runtime::client::ClusterOptions;
use probe_runtime::config::{MySqlUrl, RedisUrl};
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::{Env, NodeKey, metrics_history_key, metrics_key};
use probe_runtime::registry::mysql::MySqlApps;
use probe_runtime::registry::redis::RedisSettings;
use probe_runtime::registry::{
    AuditEntry, AuditLog, Backends, METRICS_HISTORY_LEN, MetricsStore, NodeMetrics,
};
use probe_runtime::server::{Server, ServerHandle};
use probe_tests::governance::{Tagged, add_app, client, wait_for_routes};
use probe_tests::idl::interop::*;
use probe_tests::{mysql_url, real_backends, redis, redis_url, unique};
use redis::AsyncCommands;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const START_HINT: &str = "start the test services with `scripts/services.sh up` (or run `scripts/test.sh`)";

async fn metrics_store() -> Result<RedisSettings> {
    let url: RedisUrl = redis_url().parse().context("bad PROBE_TEST_REDIS")?;
    RedisSettings::connect(&url).await.with_context(|| format!("PROBE_TEST_REDIS {url}: {START_HINT}"))
}

async fn audit_log() -> Result<MySqlApps> {
    let url: MySqlUrl = mysql_url().parse().context("bad PROBE_TEST_MYSQL")?;
    MySqlApps::connect(&url).await.with_context(|| format!("PROBE_TEST_MYSQL {url}: {START_HINT}"))
}

fn window(calls: u64) -> NodeMetrics {
    NodeMetrics { at_ms: calls, window_ms: 5000, calls, qps: calls as f64 / 5.0, ..NodeMetrics::default() }
}

fn node(appkey: &str, port: u16) -> Result<NodeKey> {
    Ok(NodeKey::new(Env::Dev, appkey, "Directory", "10.0.0.9", port)?)
}

#[tokio::test]
async fn redis_metrics_store_keeps_the_latest_window_and_the_history() -> Result<()> {
    let store = metrics_store().await?;
    let appkey = unique("ms_latest");
    let (a, b) = (node(&appkey, 1)?, node(&appkey, 2)?);
    for calls in 1..=3 {
        store.publish(&a, &window(calls), Duration::from_secs(30)).await?;
    }
    let latest = store.latest(&[a.clone(), b.clone()]).await?;
    assert_eq!(latest, vec![Some(window(3)), None]);
    let history = store.history(&a).await?;
    assert_eq!(history.iter().map(|w| w.calls).collect::<Vec<_>>(), [1, 2, 3], "oldest first");
    assert!(store.history(&b).await?.is_empty());
    let mut conn = redis().await?;
    let ttl: i64 = conn.pttl(metrics_key(&a)).await?;
    assert!((1..=30_000).contains(&ttl), "the latest window expires: PTTL {ttl}");
    let ttl: i64 = conn.pttl(metrics_history_key(&a)).await?;
    assert!((1..=30_000).contains(&ttl), "the history expires: PTTL {ttl}");
    let _: i64 = conn.del(&[metrics_key(&a), metrics_history_key(&a)]).await?;
    Ok(())
}

#[tokio::test]
async fn redis_metrics_history_keeps_the_last_60_windows() -> Result<()> {
    let store = metrics_store().await?;
    let key = node(&unique("ms_capped"), 1)?;
    let published = METRICS_HISTORY_LEN as u64 + 5;
    for calls in 1..=published {
        store.publish(&key, &window(calls), Duration::from_secs(30)).await?;
    }
    let history = store.history(&key).await?;
    assert_eq!(history.len(), METRICS_HISTORY_LEN);
    assert_eq!(history.first().map(|w| w.calls), Some(6));
    assert_eq!(history.last().map(|w| w.calls), Some(published));
    let _: i64 = redis().await?.del(&[metrics_key(&key), metrics_history_key(&key)]).await?;
    Ok(())
}

#[tokio::test]
async fn redis_metrics_expire_with_their_ttl() -> Result<()> {
    let store = metrics_store().await?;
    let key = node(&unique("ms_ttl"), 1)?;
    store.publish(&key, &window(7), Duration::from_millis(300)).await?;
    assert_eq!(store.latest(std::slice::from_ref(&key)).await?, vec![Some(window(7))]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(store.latest(std::slice::from_ref(&key)).await?, vec![None], "the window expired");
    assert!(store.history(&key).await?.is_empty(), "the history expired");
    Ok(())
}

#[tokio::test]
async fn mysql_audit_log_lists_the_newest_first() -> Result<()> {
    let log = audit_log().await?;
    let actor = unique("cli:tester");
    for (i, action) in ["set_weight", "disable", "enable"].into_iter().enumerate() {
        let entry = AuditEntry {
            id: 0,
            at_ms: 1_700_000_000_000 + i as u64,
            actor: actor.clone(),
            action: action.to_owned(),
            target: format!("app|dev|Directory|10.0.0.9|{i}"),
            before: format!("{{\"step\":{i}}}"),
            after: String::new(),
        };
        log.record(&entry).await?;
    }
    let mine: Vec<AuditEntry> = log.recent(1000).await?.into_iter().filter(|e| e.actor == actor).collect();
    let actions: Vec<&str> = mine.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["enable", "disable", "set_weight"], "newest first");
    assert!(mine.windows(2).all(|w| w[0].id > w[1].id && w[1].id > 0), "ids increase: {mine:?}");
    assert_eq!((mine[2].before.as_str(), mine[2].after.as_str()), ("{\"step\":0}", ""));
    assert_eq!(log.recent(1).await?.len(), 1);
    Ok(())
}

/// A registered provider (`Tagged`: its `get` makes every outcome) with an admin endpoint, publishing every 200 ms.
async fn start(backends: &Backends, appkey: &str) -> Result<ServerHandle> {
    add_app(backends, appkey).await?;
    Server::builder()
        .add_service_for_app(appkey, DirectoryServer::new(Tagged { tag: "outcomes".into() }))
        .register(backends.clone())
        .advertise_host("127.0.0.1")
        .grace_period(Duration::from_millis(500))
        .admin_addr(([127, 0, 0, 1], 0))
        .metrics_interval(Duration::from_millis(200))
        .start("127.0.0.1:0")
        .await
        .context("cannot start the provider")
}

/// A client of the provider, once discovery lists it.
async fn client_of(backends: &Backends, appkey: &str) -> Result<DirectoryClient> {
    let (routes, client) = client(backends, appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "one node", |r| r.table.endpoints.len() == 1).await?;
    Ok(client)
}

/// `GET path` over HTTP/1.1: the status code and the body.
async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.context("admin endpoint unreachable")?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").context("no HTTP head")?;
    let status = head.split(' ').nth(1).context("no status")?.parse()?;
    Ok((status, body.to_owned()))
}

/// The value of the Prometheus sample `series` (name and labels) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until the metrics store holds a window of `key` with calls.
async fn published_window(backends: &Backends, key: &NodeKey) -> Result<NodeMetrics> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let history = backends.metrics.history(key).await?;
        if let Some(window) = history.into_iter().find(|w| w.calls > 0) {
            return Ok(window);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no window with calls was published for {key} within 10 s")
}

#[tokio::test]
async fn calls_are_counted_rendered_and_published() -> Result<()> {
    let backends = Backends::embedded(Env::Dev, &Embedded::new());
    let appkey = unique("metrics_e2e");
    let server = start(&backends, &appkey).await?;
    let client = client_of(&backends, &appkey).await?;
    for _ in 0..20 {
        client.get(1).await?;
    }
    for _ in 0..3 {
        assert!(matches!(client.get(404).await, Err(CallError::Exception(_))));
    }
    for _ in 0..2 {
        assert!(matches!(client.get(500).await, Err(CallError::Rpc(probe::Error::Application(_)))));
    }

    let admin = server.admin_addr().context("the admin endpoint runs")?;
    let (status, text) = http_get(admin, "/metrics").await?;
    assert_eq!(status, 200);
    let server_get = r#"probe_server_calls_total{service="Directory",method="get""#;
    for (outcome, n) in [("ok", 20.0), ("exception", 3.0), ("app_error", 2.0)] {
        assert_eq!(
            sample(&text, &format!(r#"{server_get},outcome="{outcome}"}}"#)),
            Some(n),
            "{outcome}\n{text}"
        );
    }
    let port = server.local_addr().port();
    let labels = format!(r#"service="Directory",method="get",node="Directory_127.0.0.1_{port}""#);
    for (outcome, n) in [("ok", 20.0), ("exception", 3.0), ("app_error", 2.0), ("timeout", 0.0)] {
        let series = format!(r#"probe_client_calls_total{{{labels},outcome="{outcome}"}}"#);
        assert_eq!(sample(&text, &series), Some(n), "{series}\n{text}");
    }
    let count = format!("probe_client_call_duration_seconds_count{{{labels}}}");
    assert_eq!(sample(&text, &count), Some(25.0));
    let waits = format!(r#"probe_client_wait_seconds_count{{node="Directory_127.0.0.1_{port}"}}"#);
    assert!(sample(&text, &waits).is_some_and(|n| n >= 25.0), "{text}");
    assert_eq!(http_get(admin, "/health").await?, (200, "ok".to_owned()));

    let key = NodeKey::new(Env::Dev, &appkey, "Directory", "127.0.0.1", port)?;
    let window = published_window(&backends, &key).await?;
    assert_eq!((window.calls, window.errors), (25, 2), "{window:?}");
    assert!(window.qps > 0.0 && (window.error_rate - 0.08).abs() < 1e-9, "{window:?}");
    assert!(0.0 < window.p50_ms && window.p50_ms <= window.p99_ms && window.p99_ms < 1000.0, "{window:?}");
    assert_eq!(window.methods.iter().map(|m| m.method.as_str()).collect::<Vec<_>>(), ["get"]);

    // Shutting down: `/health` says so during the grace period, then the endpoint goes.
    let shutdown = tokio::spawn(server.shutdown());
    let started = Instant::now();
    loop {
        let (status, _) = http_get(admin, "/health").await?;
        if status == 503 {
            break;
        }
        ensure!(started.elapsed() < Duration::from_millis(400), "/health still {status} while draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.await??;
    assert!(http_get(admin, "/health").await.is_err(), "the admin endpoint stopped with the server");
    Ok(())
}

#[tokio::test]
async fn a_registered_server_publishes_windows_to_redis() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("metrics_redis");
    let server = start(&backends, &appkey).await?;
    let client = client_of(&backends, &appkey).await?;
    for i in 0..30 {
        client.ping(format!("hi {i}")).await?;
    }
    let key = NodeKey::new(backends.env, &appkey, "Directory", "127.0.0.1", server.local_addr().port())?;
    let window = published_window(&backends, &key).await?;
    assert_eq!((window.calls, window.errors), (30, 0), "{window:?}");
    assert!(0.0 < window.p50_ms && window.p50_ms <= window.p99_ms, "{window:?}");
    assert_eq!(window.methods.first().map(|m| (m.method.as_str(), m.calls)), Some(("ping", 30)));
    let ttl: i64 = redis().await?.pttl(metrics_key(&key)).await?;
    assert!((1..=600).contains(&ttl), "windows live three intervals: PTTL {ttl}");
    server.shutdown().await?;
    backends.settings.remove(&key).await?;
    Ok(())
}
