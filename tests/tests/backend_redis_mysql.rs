//! The Redis settings store and the MySQL app store against the real services: they read what the
//! Python design writes, write what it reads, and fail clearly when a service is away.
//!
//! Every test uses its own appkey, so the tests run in parallel and again, and deletes what it made.

use std::time::{Duration, Instant};

use anyhow::Context;
use probe_runtime::config::{MySqlUrl, RedisUrl};
use probe_runtime::registry::layout::{Env, NodeData, NodeKey, Valid, redis_hash};
use probe_runtime::registry::mysql::MySqlApps;
use probe_runtime::registry::redis::RedisSettings;
use probe_runtime::registry::{App, AppStore, BackendError, SettingsStore};
use probe_tests::proxy::Proxy;
use probe_tests::{mysql_url, redis, redis_url, unique};
use redis::AsyncCommands;

const START_HINT: &str = "start the test services with `scripts/services.sh up` (or run `scripts/test.sh`)";

async fn settings() -> anyhow::Result<RedisSettings> {
    let url: RedisUrl = redis_url().parse().context("bad PROBE_TEST_REDIS")?;
    RedisSettings::connect(&url).await.with_context(|| format!("PROBE_TEST_REDIS {url}: {START_HINT}"))
}

async fn apps() -> anyhow::Result<MySqlApps> {
    let url: MySqlUrl = mysql_url().parse().context("bad PROBE_TEST_MYSQL")?;
    MySqlApps::connect(&url).await.with_context(|| format!("PROBE_TEST_MYSQL {url}: {START_HINT}"))
}

/// Deletes every field of `appkey` from the hash of `env`.
async fn clean_redis(env: Env, appkey: &str) -> anyhow::Result<()> {
    let mut conn = redis().await?;
    let hash = redis_hash(env);
    let fields: Vec<String> = conn.hkeys(&hash).await?;
    let mine: Vec<&String> = fields.iter().filter(|f| f.starts_with(&format!("{appkey}|"))).collect();
    if !mine.is_empty() {
        let _: i64 = conn.hdel(&hash, mine).await?;
    }
    Ok(())
}

fn node(appkey: &str, ip: &str, port: u16) -> anyhow::Result<NodeKey> {
    Ok(NodeKey::new(Env::Dev, appkey, "Ping", ip, port)?)
}

#[tokio::test]
async fn redis_get_of_a_missing_node_is_none() -> anyhow::Result<()> {
    let store = settings().await?;
    let key = node(&unique("rs_missing"), "10.0.0.1", 8081)?;
    assert_eq!(store.get(&key).await?, None);
    assert!(!store.remove(&key).await?, "nothing to remove");
    Ok(())
}

#[tokio::test]
async fn redis_get_or_put_creates_then_returns_the_stored_value() -> anyhow::Result<()> {
    let store = settings().await?;
    let appkey = unique("rs_getorput");
    let key = node(&appkey, "10.0.0.1", 8081)?;
    let first = NodeData::new("10.0.0.1", 8081);
    assert_eq!(store.get_or_put(&key, &first).await?, first);

    let mut second = first.clone();
    second.weight = 99.into();
    second.valid = Valid::off();
    assert_eq!(store.get_or_put(&key, &second).await?, first, "an existing value is not overwritten");
    assert_eq!(store.get(&key).await?, Some(first));

    assert!(store.remove(&key).await?);
    assert_eq!(store.get(&key).await?, None);
    Ok(())
}

#[tokio::test]
async fn redis_get_or_put_of_racing_providers_keeps_one_value() -> anyhow::Result<()> {
    let store = std::sync::Arc::new(settings().await?);
    let appkey = unique("rs_race");
    let key = node(&appkey, "10.0.0.1", 8081)?;
    let mut tasks = Vec::new();
    for weight in 1..=16 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut data = NodeData::new("10.0.0.1", 8081);
            data.weight = weight.into();
            store.get_or_put(&key, &data).await
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await??);
    }
    let stored = store.get(&key).await?.context("a value is stored")?;
    assert!(seen.iter().all(|d| *d == stored), "every provider sees the one stored value: {seen:?}");
    store.remove(&key).await?;
    Ok(())
}

#[tokio::test]
async fn redis_put_get_roundtrip_keeps_unknown_fields() -> anyhow::Result<()> {
    let store = settings().await?;
    let key = node(&unique("rs_roundtrip"), "10.0.0.2", 9090)?;
    let mut data = NodeData::new("10.0.0.2", 9090);
    data.weight = 30.into();
    data.protocol = Some("compact".into());
    data.transport = Some("framed".into());
    data.pid = Some(4242);
    data.extra.insert("zone".into(), serde_json::json!("eu-1"));
    data.extra.insert("tags".into(), serde_json::json!(["a", {"b": 1}]));
    store.put(&key, &data).await?;
    assert_eq!(store.get(&key).await?, Some(data.clone()));

    data.valid = Valid::off();
    store.put(&key, &data).await?;
    assert_eq!(store.get(&key).await?.map(|d| d.valid), Some(Valid::off()), "put overwrites");
    store.remove(&key).await?;
    Ok(())
}

#[tokio::test]
async fn redis_reads_what_python_writes_and_writes_what_python_reads() -> anyhow::Result<()> {
    let store = settings().await?;
    let mut raw = redis().await?;
    let appkey = unique("rs_python");
    let key = node(&appkey, "10.0.0.1", 8081)?;
    let hash = redis_hash(Env::Dev);

    let python = r#"{"host": "10.0.0.1", "port": 8081, "weight": 20, "valid": 0}"#;
    let () = raw.hset(&hash, key.redis_field(), python).await?;
    let read = store.get(&key).await?.context("Python's value is read")?;
    assert_eq!(
        (read.host.as_str(), read.port, read.weight, &read.valid),
        ("10.0.0.1", 8081, 20.into(), &Valid::off())
    );
    assert!(!read.in_rotation());
    assert_eq!((read.protocol, read.transport), (None, None), "a Python node names no protocol");

    let other = node(&appkey, "10.0.0.2", 8082)?;
    store.put(&other, &NodeData::new("10.0.0.2", 8082)).await?;
    let written: String = raw.hget(&hash, other.redis_field()).await?;
    let json: serde_json::Value = serde_json::from_str(&written)?;
    assert_eq!(json, serde_json::json!({"host": "10.0.0.2", "port": 8082, "weight": 10, "valid": 1}));

    clean_redis(Env::Dev, &appkey).await
}

#[tokio::test]
async fn redis_bad_json_is_bad_data_naming_hash_and_field() -> anyhow::Result<()> {
    let store = settings().await?;
    let mut raw = redis().await?;
    let key = node(&unique("rs_badjson"), "10.0.0.1", 8081)?;
    let hash = redis_hash(Env::Dev);
    let () = raw.hset(&hash, key.redis_field(), "{not json").await?;
    let err = store.get(&key).await.expect_err("bad JSON is an error");
    let text = err.to_string();
    assert!(matches!(err, BackendError::BadData { .. }), "{err:?}");
    assert!(text.contains(&hash) && text.contains(&key.redis_field()), "{text}");
    let () = raw.hdel(&hash, key.redis_field()).await?;
    Ok(())
}

#[tokio::test]
async fn redis_all_is_sorted_by_field_and_skips_bad_fields() -> anyhow::Result<()> {
    let store = settings().await?;
    let mut raw = redis().await?;
    let appkey = unique("rs_all");
    let hash = redis_hash(Env::Dev);
    let keys = [
        node(&appkey, "10.0.0.3", 80)?,
        node(&appkey, "10.0.0.1", 80)?,
        NodeKey::new(Env::Dev, &appkey, "Audit", "10.0.0.2", 80)?,
    ];
    for key in &keys {
        store.put(key, &NodeData::new(key.ip(), key.port())).await?;
    }
    let () = raw
        .hset(&hash, format!("{appkey}|dev|Ping|10.0.0.9|notaport"), r#"{"host": "h", "port": 1}"#)
        .await?;
    let () = raw.hset(&hash, format!("{appkey}|dev|Ping|10.0.0.8|80"), "[1, 2").await?;
    let () =
        raw.hset(&hash, format!("{appkey}|prod|Ping|10.0.0.7|80"), r#"{"host": "h", "port": 1}"#).await?;

    let mine: Vec<String> = store
        .all(Env::Dev)
        .await?
        .into_iter()
        .filter(|n| n.key.appkey() == appkey)
        .map(|n| n.key.redis_field())
        .collect();
    let mut expected: Vec<String> = keys.iter().map(NodeKey::redis_field).collect();
    expected.sort();
    assert_eq!(mine, expected);
    assert!(
        store.all(Env::Prod).await?.iter().all(|n| n.key.appkey() != appkey),
        "env dev's nodes are not in prod"
    );

    clean_redis(Env::Dev, &appkey).await
}

#[tokio::test]
async fn redis_envs_do_not_see_each_other() -> anyhow::Result<()> {
    let store = settings().await?;
    let appkey = unique("rs_env");
    let dev = NodeKey::new(Env::Dev, &appkey, "Ping", "10.0.0.1", 80)?;
    let prod = NodeKey::new(Env::Prod, &appkey, "Ping", "10.0.0.1", 80)?;
    store.put(&dev, &NodeData::new("10.0.0.1", 80)).await?;
    assert_eq!(store.get(&prod).await?, None);
    assert!(store.remove(&dev).await?);
    Ok(())
}

#[tokio::test]
async fn redis_connect_to_a_closed_port_is_unreachable_quickly() -> anyhow::Result<()> {
    let url: RedisUrl = "redis://:secret@127.0.0.1:1/".parse()?;
    let start = Instant::now();
    let err = RedisSettings::connect(&url).await.expect_err("nothing listens on port 1");
    let text = err.to_string();
    assert!(start.elapsed() < Duration::from_secs(6), "took {:?}", start.elapsed());
    assert!(matches!(err, BackendError::Unreachable { .. }), "{err:?}");
    assert!(text.contains("127.0.0.1:1") && !text.contains("secret"), "{text}");
    assert!(text.contains("scripts/services.sh up"), "{text}");
    Ok(())
}

#[tokio::test]
async fn redis_cluster_connect_to_a_plain_server_fails() -> anyhow::Result<()> {
    let url: RedisUrl = redis_url().parse()?;
    settings().await?; // the server runs: the failure below is about clustering
    let start = Instant::now();
    let err = RedisSettings::connect_cluster(&[url]).await.expect_err("the test Redis is no cluster");
    assert!(start.elapsed() < Duration::from_secs(6), "took {:?}", start.elapsed());
    let text = err.to_string();
    assert!(text.contains("127.0.0.1") && text.contains("Redis Cluster"), "{text}");
    Ok(())
}

#[tokio::test]
async fn redis_reconnects_after_the_connection_drops() -> anyhow::Result<()> {
    let target: RedisUrl = redis_url().parse()?;
    settings().await?; // the server runs
    let proxy = Proxy::start(format!("{}:{}", target.host(), target.port())).await?;
    let store = RedisSettings::connect(&format!("redis://{}/", proxy.addr).parse()?).await?;
    let key = node(&unique("rs_reconnect"), "10.0.0.1", 8081)?;
    store.put(&key, &NodeData::new("10.0.0.1", 8081)).await?;

    proxy.sever();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.get(&key).await?, Some(NodeData::new("10.0.0.1", 8081)), "read after reconnecting");
    assert!(store.remove(&key).await?);
    Ok(())
}

fn app(appkey: &str) -> App {
    App { appkey: appkey.to_owned(), description: "backend test".to_owned(), owner: "probe-tests".to_owned() }
}

#[tokio::test]
async fn mysql_apps_add_contains_list_remove() -> anyhow::Result<()> {
    let store = apps().await?;
    let (a, b) = (unique("ms_b"), unique("ms_a"));
    assert!(!store.contains(&a).await?);
    assert!(store.add(&app(&a)).await?);
    assert!(store.add(&app(&b)).await?);
    assert!(store.contains(&a).await?);

    let listed = store.list().await?;
    assert!(listed.windows(2).all(|w| w[0].appkey <= w[1].appkey), "sorted by appkey");
    let mine: Vec<&App> = listed.iter().filter(|x| x.appkey == a || x.appkey == b).collect();
    assert_eq!(mine, [&app(&b), &app(&a)]);

    assert!(store.remove(&a).await?);
    assert!(!store.remove(&a).await?, "already removed");
    assert!(!store.contains(&a).await?);
    assert!(store.remove(&b).await?);
    Ok(())
}

#[tokio::test]
async fn mysql_duplicate_add_is_false_and_keeps_the_first() -> anyhow::Result<()> {
    let store = apps().await?;
    let appkey = unique("ms_dup");
    assert!(store.add(&app(&appkey)).await?);
    let other = App { owner: "someone else".into(), ..app(&appkey) };
    assert!(!store.add(&other).await?, "second add reports the appkey was there");
    let listed = store.list().await?;
    assert_eq!(listed.iter().find(|x| x.appkey == appkey), Some(&app(&appkey)));
    store.remove(&appkey).await?;
    Ok(())
}

#[tokio::test]
async fn mysql_invalid_appkey_is_rejected_before_the_database() -> anyhow::Result<()> {
    let store = apps().await?;
    for bad in ["bad-key", "", "a b", "x';--"] {
        let err = store.add(&app(bad)).await.expect_err("invalid appkey");
        assert!(matches!(err, BackendError::Failed { .. }), "{err:?}");
        assert!(err.to_string().contains("appkey"), "{err}");
        assert!(!store.contains(bad).await?);
    }
    Ok(())
}

#[tokio::test]
async fn mysql_ensure_schema_keeps_the_table_and_its_rows() -> anyhow::Result<()> {
    let store = apps().await?;
    let appkey = unique("ms_schema");
    store.add(&app(&appkey)).await?;
    store.ensure_schema().await?;
    assert!(store.contains(&appkey).await?);
    let url: MySqlUrl = mysql_url().parse()?;
    let again = MySqlApps::connect_and_ensure_schema(&url).await?;
    assert!(again.contains(&appkey).await?);
    assert!(again.remove(&appkey).await?);
    again.disconnect().await?;
    store.disconnect().await?;
    Ok(())
}

#[tokio::test]
async fn mysql_connect_to_a_closed_port_is_unreachable_quickly() -> anyhow::Result<()> {
    let url: MySqlUrl = "mysql://probe:secret@127.0.0.1:1/probe_test".parse()?;
    let start = Instant::now();
    let err = MySqlApps::connect(&url).await.expect_err("nothing listens on port 1");
    let text = err.to_string();
    assert!(start.elapsed() < Duration::from_secs(6), "took {:?}", start.elapsed());
    assert!(matches!(err, BackendError::Unreachable { .. }), "{err:?}");
    assert!(text.contains("127.0.0.1:1") && !text.contains("secret"), "{text}");
    Ok(())
}
