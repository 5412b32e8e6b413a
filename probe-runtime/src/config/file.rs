//! The TOML config file: its schema (unknown keys are errors) and its translation into a [`Layer`].

use std::fs;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Origin};
use super::layer::Layer;
use super::setting::Setting;
use super::toml_value::{MethodTimeoutsValue, NumberOrOff, RedisValue, TagsValue};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    env: Option<Spanned<String>>,
    zookeeper: Option<Spanned<String>>,
    zk_session_timeout_ms: Option<Spanned<i64>>,
    zk_connect_timeout_ms: Option<Spanned<i64>>,
    redis: Option<Spanned<RedisValue>>,
    redis_cluster: Option<Spanned<bool>>,
    mysql: Option<Spanned<String>>,
    redis_tls_ca: Option<Spanned<String>>,
    mysql_tls_ca: Option<Spanned<String>>,
    app_credential: Option<Spanned<String>>,
    zk_operator_secret: Option<Spanned<String>>,
    server: Option<ServerTable>,
    client: Option<ClientTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerTable {
    bind: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    advertise_host: Option<Spanned<String>>,
    grace_period_ms: Option<Spanned<i64>>,
    admin_addr: Option<Spanned<String>>,
    allow_unframed: Option<Spanned<bool>>,
    handshake_timeout_ms: Option<Spanned<i64>>,
    max_connections_per_peer: Option<Spanned<i64>>,
    reserved_connections: Option<Spanned<i64>>,
    memory_budget_mb: Option<Spanned<i64>>,
    version: Option<Spanned<String>>,
    tags: Option<Spanned<TagsValue>>,
    tier: Option<Spanned<i64>>,
    tls: Option<ServerTlsTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerTlsTable {
    mode: Option<Spanned<String>>,
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    client_auth: Option<Spanned<String>>,
    client_ca: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientTlsTable {
    ca: Option<Spanned<String>>,
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    server_name: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientTable {
    balancer: Option<Spanned<String>>,
    call_timeout_ms: Option<Spanned<i64>>,
    connect_timeout_ms: Option<Spanned<i64>>,
    retry_budget_ratio: Option<Spanned<f64>>,
    tags: Option<Spanned<TagsValue>>,
    method_timeouts: Option<Spanned<MethodTimeoutsValue>>,
    qps_limit: Option<Spanned<NumberOrOff>>,
    hedge_percentile: Option<Spanned<NumberOrOff>>,
    breaker_failures: Option<Spanned<i64>>,
    breaker_error_rate: Option<Spanned<f64>>,
    tls: Option<ClientTlsTable>,
}

/// Reads and checks the config file at `path`.
pub(super) fn read(path: &Path, named_by_env: bool) -> Result<Layer, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        named_by_env,
        source,
    })?;
    parse(&text, path)
}

/// Checks the TOML `text` of the file at `path`.
pub(super) fn parse(text: &str, path: &Path) -> Result<Layer, ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|err| ConfigError::File {
        path: path.to_owned(),
        line: err.span().map(|span| line_of(text, span.start)),
        message: readable(err.message()),
    })?;
    let origin = |span: std::ops::Range<usize>| Origin::File {
        path: path.to_owned(),
        line: Some(line_of(text, span.start)),
    };
    let mut layer = Layer::default();
    let mut set = |setting: Setting, value: Option<(String, std::ops::Range<usize>)>| match value {
        Some((value, span)) => layer.set(setting, &value, &origin(span)),
        None => Ok(()),
    };
    let (mut server, mut client) = (file.server, file.client);
    let server_tags = server.as_mut().and_then(|server| server.tags.take());
    let client_tags = client.as_mut().and_then(|client| client.tags.take());
    let method_timeouts = client.as_mut().and_then(|client| client.method_timeouts.take());
    set(Setting::Env, spanned(file.env))?;
    set(Setting::ZooKeeper, spanned(file.zookeeper))?;
    set(Setting::ZkSessionTimeout, spanned(file.zk_session_timeout_ms))?;
    set(Setting::ZkConnectTimeout, spanned(file.zk_connect_timeout_ms))?;
    set(Setting::RedisCluster, spanned(file.redis_cluster))?;
    set(Setting::MySql, spanned(file.mysql))?;
    set(Setting::RedisTlsCa, spanned(file.redis_tls_ca))?;
    set(Setting::MySqlTlsCa, spanned(file.mysql_tls_ca))?;
    set(Setting::AppCredential, spanned(file.app_credential))?;
    set(Setting::ZkOperatorSecret, spanned(file.zk_operator_secret))?;
    if let Some(server) = server {
        set(Setting::Bind, spanned(server.bind))?;
        set(Setting::Port, spanned(server.port))?;
        set(Setting::AdvertiseHost, spanned(server.advertise_host))?;
        set(Setting::GracePeriod, spanned(server.grace_period_ms))?;
        set(Setting::AdminAddr, spanned(server.admin_addr))?;
        set(Setting::AllowUnframed, spanned(server.allow_unframed))?;
        set(Setting::HandshakeTimeout, spanned(server.handshake_timeout_ms))?;
        set(Setting::MaxConnectionsPerPeer, spanned(server.max_connections_per_peer))?;
        set(Setting::ReservedConnections, spanned(server.reserved_connections))?;
        set(Setting::MemoryBudget, spanned(server.memory_budget_mb))?;
        set(Setting::ServerVersion, spanned(server.version))?;
        set(Setting::ServerTier, spanned(server.tier))?;
        if let Some(tls) = server.tls {
            set(Setting::ServerTlsMode, spanned(tls.mode))?;
            set(Setting::ServerTlsCert, spanned(tls.cert))?;
            set(Setting::ServerTlsKey, spanned(tls.key))?;
            set(Setting::ServerTlsClientAuth, spanned(tls.client_auth))?;
            set(Setting::ServerTlsClientCa, spanned(tls.client_ca))?;
        }
    }
    if let Some(client) = client {
        set(Setting::Balancer, spanned(client.balancer))?;
        set(Setting::CallTimeout, spanned(client.call_timeout_ms))?;
        set(Setting::ConnectTimeout, spanned(client.connect_timeout_ms))?;
        set(Setting::RetryBudgetRatio, spanned(client.retry_budget_ratio))?;
        set(Setting::QpsLimit, spanned(client.qps_limit))?;
        set(Setting::HedgePercentile, spanned(client.hedge_percentile))?;
        set(Setting::BreakerFailures, spanned(client.breaker_failures))?;
        set(Setting::BreakerErrorRate, spanned(client.breaker_error_rate))?;
        if let Some(tls) = client.tls {
            set(Setting::ClientTlsCa, spanned(tls.ca))?;
            set(Setting::ClientTlsCert, spanned(tls.cert))?;
            set(Setting::ClientTlsKey, spanned(tls.key))?;
            set(Setting::ClientTlsServerName, spanned(tls.server_name))?;
        }
    }
    for (setting, tags) in [(Setting::ServerTags, server_tags), (Setting::ClientTags, client_tags)] {
        let Some(tags) = tags else { continue };
        let span = tags.span();
        match tags.into_inner() {
            TagsValue::Text(text) => layer.set(setting, &text, &origin(span))?,
            TagsValue::Table(table) => layer
                .set_tags(setting, table.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|problem| {
                    let text: Vec<String> = table.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    ConfigError::invalid(setting, origin(span), &text.join(","), problem)
                })?,
        }
    }
    if let Some(timeouts) = method_timeouts {
        let span = timeouts.span();
        match timeouts.into_inner() {
            MethodTimeoutsValue::Text(text) => layer.set(Setting::MethodTimeouts, &text, &origin(span))?,
            MethodTimeoutsValue::Table(table) => {
                let pairs: Vec<(&str, String)> =
                    table.iter().map(|(m, ms)| (m.as_str(), ms.to_string())).collect();
                layer.set_method_timeouts(pairs.iter().map(|(m, ms)| (*m, ms.as_str()))).map_err(
                    |problem| {
                        let text: Vec<String> = pairs.iter().map(|(m, ms)| format!("{m}={ms}")).collect();
                        ConfigError::invalid(Setting::MethodTimeouts, origin(span), &text.join(","), problem)
                    },
                )?
            }
        }
    }
    if let Some(redis) = file.redis {
        let span = redis.span();
        match redis.into_inner() {
            RedisValue::One(url) => layer.set(Setting::Redis, &url, &origin(span))?,
            RedisValue::List(urls) => {
                layer.set_redis(urls.iter().map(String::as_str)).map_err(|problem| {
                    ConfigError::invalid(Setting::Redis, origin(span), &urls.join(","), problem)
                })?
            }
        }
    }
    Ok(layer)
}

/// The parser's message, with serde's type names in words.
fn readable(message: &str) -> String {
    message
        .trim_end()
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
}

/// A value as the text its setting parses, with its place in the file.
fn spanned<T: ToString>(value: Option<Spanned<T>>) -> Option<(String, std::ops::Range<usize>)> {
    value.map(|value| (value.get_ref().to_string(), value.span()))
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}
