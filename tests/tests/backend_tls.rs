//! Redis and MySQL over TLS, against the real servers `scripts/services.sh up` starts with the test
//! CA (scripts/lib/tls.sh): a Redis that has no plain port, a MariaDB user let in over TLS only,
//! and (`up --cluster`) a Redis Cluster that speaks only TLS. probe's settings store writes and
//! reads over `rediss://`, a provider starts with its app read from MySQL over TLS, and a CA that
//! did not sign the servers' certificate fails naming the backend and the CA setting, with no
//! password in the message.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use probe_runtime::config::{CaBundle, Config, MySqlUrl, RedisUrl};
use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
use probe_runtime::registry::mysql::MySqlApps;
use probe_runtime::registry::redis::RedisSettings;
use probe_runtime::registry::{Backends, SettingsStore};
use probe_tests::governance::{add_app, node_key, start_provider};
use probe_tests::{tls, unique};

fn redis_url(ca: &std::path::Path) -> Result<RedisUrl> {
    let url: RedisUrl = tls::redis_url().parse().context("bad PROBE_TEST_REDIS_TLS")?;
    Ok(url.with_ca(CaBundle::read(ca)?)?)
}

fn mysql_url(ca: &std::path::Path) -> Result<MySqlUrl> {
    let url: MySqlUrl = tls::mysql_url().parse().context("bad PROBE_TEST_MYSQL_TLS")?;
    Ok(url.with_ca(CaBundle::read(ca)?)?)
}

/// Writes a node's settings through `store`, changes them, and reads them back.
async fn write_and_read(store: &dyn SettingsStore, appkey: &str) -> Result<()> {
    let key = NodeKey::new(Env::Dev, appkey, "Directory", "10.9.8.7", 9090)?;
    let stored = store.get_or_put(&key, &NodeData::new("10.9.8.7", 9090)).await?;
    ensure!(stored.weight == 10, "a new node gets the default weight: {stored:?}");
    let mut changed = stored.clone();
    changed.weight = 35.into();
    store.put(&key, &changed).await?;
    let read = store.get(&key).await?.context("the node written is gone")?;
    ensure!(read.weight == 35, "read back {read:?}");
    ensure!(store.remove(&key).await?, "the node written is gone before its removal");
    ensure!(store.get(&key).await?.is_none(), "the node removed is still there");
    Ok(())
}

#[tokio::test]
async fn the_settings_store_writes_and_reads_over_rediss() -> Result<()> {
    let ca = tls::ca()?;
    // The server has no plain port: whatever works here went over TLS.
    let store = RedisSettings::connect(&redis_url(&ca)?)
        .await
        .with_context(|| format!("PROBE_TEST_REDIS_TLS {}", tls::redis_url()))?;
    ensure!(!store.is_cluster());
    write_and_read(&store, &unique("tls_redis")).await
}

#[tokio::test]
async fn the_settings_store_writes_and_reads_on_a_redis_cluster_over_tls() -> Result<()> {
    let ca = CaBundle::read(tls::ca()?)?;
    let urls = tls::redis_cluster_urls();
    let seeds = urls
        .split(',')
        .map(|url| Ok(url.parse::<RedisUrl>()?.with_ca(ca.clone())?))
        .collect::<Result<Vec<_>>>()?;
    let store = RedisSettings::connect_cluster(&seeds).await.with_context(|| {
        format!(
            "the TLS Redis Cluster {urls} (PROBE_TEST_REDIS_TLS_CLUSTER); start it with \
             `scripts/services.sh up --cluster`"
        )
    })?;
    ensure!(store.is_cluster());
    write_and_read(&store, &unique("tls_cluster")).await
}

#[tokio::test]
async fn a_provider_starts_with_its_app_read_from_mysql_over_tls() -> Result<()> {
    // The configuration as an operator writes it: TLS URLs and the CA setting.
    let backends: Backends = tls::backends().await?;
    let appkey = unique("tls_app");
    add_app(&backends, &appkey).await?;
    ensure!(backends.apps.contains(&appkey).await?, "the app added over TLS is not there");
    // The start checks the app in MySQL and reads the node's settings from Redis, both over TLS.
    let provider = start_provider(&backends, &appkey, "tls").await?;
    let key = node_key(&backends, &appkey, &provider);
    let stored = backends.settings.get(&key).await?.context("the provider stored no settings")?;
    ensure!(stored.weight == 10, "{stored:?}");
    provider.shutdown().await?;
    backends.settings.remove(&key).await?;
    backends.apps.remove(&appkey).await?;
    Ok(())
}

#[tokio::test]
async fn the_tls_only_user_is_refused_in_plain_text() -> Result<()> {
    // What makes the test above a test of TLS: MariaDB refuses this user without it.
    let plain = tls::mysql_url().replace("?require_ssl=true", "");
    let err = MySqlApps::connect(&plain.parse()?).await.expect_err("the user must need TLS");
    let text = err.to_string();
    ensure!(text.contains("Access denied for user 'probe_tls'"), "{text}");
    ensure!(!text.contains(":probe@"), "the password shows: {text}");
    Ok(())
}

#[tokio::test]
async fn a_wrong_ca_names_the_backend_and_the_ca_setting() -> Result<()> {
    let other = tls::other_ca()?;
    let redis = tokio::time::timeout(Duration::from_secs(10), RedisSettings::connect(&redis_url(&other)?))
        .await
        .context("the failing TLS connection hung")?
        .err()
        .context("Redis was reached with a CA that did not sign its certificate")?
        .to_string();
    println!("wrong CA, Redis: {redis}");
    ensure!(redis.starts_with("Redis could not connect to rediss://127.0.0.1:"), "{redis}");
    ensure!(redis.contains("not signed by a CA probe trusts"), "{redis}");
    ensure!(redis.contains(&format!("the CAs in {}, from PROBE_REDIS_TLS_CA", other.display())), "{redis}");

    let mysql = MySqlApps::connect(&mysql_url(&other)?).await.err().context("MySQL was reached")?.to_string();
    println!("wrong CA, MySQL: {mysql}");
    ensure!(mysql.starts_with("MySQL could not connect to mysql://probe_tls:***@127.0.0.1:"), "{mysql}");
    ensure!(mysql.contains("set PROBE_MYSQL_TLS_CA (`mysql_tls_ca`) to a PEM file"), "{mysql}");
    ensure!(!mysql.contains(":probe@"), "the password shows: {mysql}");

    // Through the configuration, as `probe` and servers load it: the same words.
    let config = Config::from_vars(tls::probe_vars(&other))?;
    let err = Backends::connect(&config).await.err().context("the backends were reached")?.to_string();
    ensure!(err.contains("PROBE_REDIS_TLS_CA") || err.contains("PROBE_MYSQL_TLS_CA"), "{err}");

    // Without a CA setting, the public roots do not know the test CA either.
    let bare: RedisUrl = tls::redis_url().parse()?;
    let err = RedisSettings::connect(&bare).await.err().context("Redis was reached")?.to_string();
    ensure!(err.contains("the public roots, as PROBE_REDIS_TLS_CA (`redis_tls_ca`) is not set"), "{err}");
    Ok(())
}
