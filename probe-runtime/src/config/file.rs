//! The TOML config file: its schema (unknown keys are errors) and its translation into a [`Layer`].

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::error::{ConfigError, Origin};
use super::layer::Layer;
use super::setting::Setting;

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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientTable {
    balancer: Option<Spanned<String>>,
    call_timeout_ms: Option<Spanned<i64>>,
    connect_timeout_ms: Option<Spanned<i64>>,
    retry_budget_ratio: Option<Spanned<f64>>,
    tags: Option<Spanned<TagsValue>>,
}

/// `redis = "redis://..."`, `redis = "embedded"` or `redis = ["redis://...", ...]`.
enum RedisValue {
    One(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for RedisValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RedisVisitor;

        impl<'de> Visitor<'de> for RedisVisitor {
            type Value = RedisValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Redis URL, a list of Redis Cluster seed URLs, or \"embedded\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<RedisValue, E> {
                Ok(RedisValue::One(text.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RedisValue, A::Error> {
                let mut urls = Vec::new();
                while let Some(url) = seq.next_element::<String>()? {
                    urls.push(url);
                }
                Ok(RedisValue::List(urls))
            }
        }

        deserializer.deserialize_any(RedisVisitor)
    }
}

/// `tags = "zone=eu-1,group=blue"` or `tags = { zone = "eu-1", group = "blue" }`.
enum TagsValue {
    Text(String),
    Table(BTreeMap<String, String>),
}

impl<'de> Deserialize<'de> for TagsValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagsVisitor;

        impl<'de> Visitor<'de> for TagsVisitor {
            type Value = TagsValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("tags as \"key=value,...\" or a table of strings, { zone = \"eu-1\" }")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<TagsValue, E> {
                Ok(TagsValue::Text(text.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TagsValue, A::Error> {
                let mut tags = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    tags.insert(key, value);
                }
                Ok(TagsValue::Table(tags))
            }
        }

        deserializer.deserialize_any(TagsVisitor)
    }
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
    set(Setting::Env, spanned(file.env))?;
    set(Setting::ZooKeeper, spanned(file.zookeeper))?;
    set(Setting::ZkSessionTimeout, spanned(file.zk_session_timeout_ms))?;
    set(Setting::ZkConnectTimeout, spanned(file.zk_connect_timeout_ms))?;
    set(Setting::RedisCluster, spanned(file.redis_cluster))?;
    set(Setting::MySql, spanned(file.mysql))?;
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
    }
    if let Some(client) = client {
        set(Setting::Balancer, spanned(client.balancer))?;
        set(Setting::CallTimeout, spanned(client.call_timeout_ms))?;
        set(Setting::ConnectTimeout, spanned(client.connect_timeout_ms))?;
        set(Setting::RetryBudgetRatio, spanned(client.retry_budget_ratio))?;
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
