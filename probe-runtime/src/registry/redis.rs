//! The Redis [`SettingsStore`]: node settings in the hash `thriftprobe_{env}`, one field
//! `{appkey}|{env}|{service}|{ip}|{port}` per provider, holding the node JSON the Python design
//! writes and reads.
//!
//! Redis is one server ([`RedisSettings::connect`], reconnecting after the connection drops) or a
//! Redis Cluster ([`RedisSettings::connect_cluster`], whose client follows the cluster's topology).
//! `rediss://` URLs connect over TLS (the redis crate's rustls support), checking the servers'
//! certificates against the URL's CA bundle ([`RedisUrl::with_ca`]), else the system's roots.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::cluster::ClusterClientBuilder;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{AsyncConnectionConfig, Client, Cmd, ErrorKind, FromRedisValue, RedisError, TlsCertificates};
use arc_swap::ArcSwap;

use super::backend::{
    BackendError, ClientReport, METRICS_HISTORY_LEN, MetricsStore, NodeMetrics, RegisteredNode, SettingsStore,
};
use super::layout::{Env, NodeData, NodeKey, clients_key, metrics_history_key, metrics_key, redis_hash};
use super::tls_problem;
use crate::config::{CaBundle, RedisUrl, Setting};
use crate::service::BoxFuture;

const BACKEND: &str = "Redis";
/// How long one attempt to open a TCP connection to a Redis node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long Redis may take to answer one command.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long [`RedisSettings::connect`] and [`RedisSettings::connect_cluster`] may take in all.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often [`SettingsStore::get_or_put`] retries when an operator deletes the field between its
/// HSETNX and its HGET.
const GET_OR_PUT_ATTEMPTS: usize = 3;

/// Node settings in Redis, one server or a Redis Cluster.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use probe_runtime::registry::SettingsStore;
/// use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
/// use probe_runtime::registry::redis::RedisSettings;
///
/// let settings = RedisSettings::connect(&"redis://127.0.0.1:6379/".parse()?).await?;
/// let key = NodeKey::new(Env::Dev, "demo_app", "Demo", "10.0.0.7", 9090)?;
/// let stored = settings.get_or_put(&key, &NodeData::new("10.0.0.7", 9090)).await?;
/// println!("weight {}", stored.weight);
/// # Ok(())
/// # }
/// ```
pub struct RedisSettings {
    conn: Connection,
    /// The server or seeds, without password, for errors and logs.
    addr: String,
}

enum Connection {
    /// Boxed: the client holds its TLS settings (248 bytes), the cluster connection is a handle.
    Single(Box<Single>),
    Cluster(ClusterConnection),
}

/// One server behind a multiplexed connection that is replaced when it breaks.
struct Single {
    client: Client,
    current: ArcSwap<MultiplexedConnection>,
}

fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

/// Whether the connection that returned `err` should be replaced: it dropped, timed out or
/// answered something the client could not parse.
fn needs_reconnect(err: &RedisError) -> bool {
    err.is_io_error() || err.is_unrecoverable_error()
}

impl Single {
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RedisError> {
        let used = self.current.load_full();
        match cmd.query_async(&mut MultiplexedConnection::clone(&used)).await {
            Err(err) if needs_reconnect(&err) => {
                tracing::debug!(error = %err, "Redis connection broke; reconnecting");
                let fresh = self.reconnect(&used).await?;
                // Every command the store sends is idempotent, so one retry is safe.
                cmd.query_async(&mut MultiplexedConnection::clone(&fresh)).await
            }
            other => other,
        }
    }

    /// Replaces the broken connection `used`, unless another caller did already.
    async fn reconnect(
        &self,
        used: &Arc<MultiplexedConnection>,
    ) -> Result<Arc<MultiplexedConnection>, RedisError> {
        let current = self.current.load_full();
        if !Arc::ptr_eq(&current, used) {
            return Ok(current);
        }
        let fresh =
            Arc::new(self.client.get_multiplexed_async_connection_with_config(&connection_config()).await?);
        let previous = self.current.compare_and_swap(used, Arc::clone(&fresh));
        if Arc::ptr_eq(&previous, used) { Ok(fresh) } else { Ok(Arc::clone(&previous)) }
    }
}

impl RedisSettings {
    /// Connects to one Redis server and checks it answers PING within a few seconds. The
    /// connection is replaced whenever it breaks, so a restarted Redis is picked up again.
    pub async fn connect(url: &RedisUrl) -> Result<Self, BackendError> {
        let addr = url.to_string();
        let client = match url.ca() {
            Some(ca) => Client::build_with_tls(url.as_str(), certificates(ca)),
            None => Client::open(url.as_str()),
        }
        .map_err(|err| startup_error(&addr, url.ca(), err))?;
        let open = async {
            let mut conn = client.get_multiplexed_async_connection_with_config(&connection_config()).await?;
            ::redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok::<_, RedisError>(conn)
        };
        let conn = tokio::time::timeout(STARTUP_TIMEOUT, open)
            .await
            .map_err(|_| timed_out(&addr))?
            .map_err(|err| startup_error(&addr, url.ca(), err))?;
        let single = Single { client, current: ArcSwap::from_pointee(conn) };
        Ok(RedisSettings { conn: Connection::Single(Box::new(single)), addr })
    }

    /// Connects to a Redis Cluster through `seeds` (any of its nodes) and checks it serves the
    /// cluster within a few seconds. The client follows slot moves and failovers by itself.
    pub async fn connect_cluster(seeds: &[RedisUrl]) -> Result<Self, BackendError> {
        let addr = seeds.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        if seeds.is_empty() {
            return Err(BackendError::Failed {
                backend: BACKEND,
                action: "connect to a Redis Cluster".to_owned(),
                detail: "no seed node is configured; give at least one redis:// URL of the cluster"
                    .to_owned(),
            });
        }
        // The configuration gives every seed the same bundle (`redis_tls_ca`).
        let ca = seeds.iter().find_map(RedisUrl::ca);
        let mut builder = ClusterClientBuilder::new(seeds.iter().map(RedisUrl::as_str))
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT);
        if let Some(ca) = ca {
            builder = builder.certs(certificates(ca));
        }
        let client = builder.build().map_err(|err| startup_error(&addr, ca, err))?;
        let open = async {
            let mut conn = client.get_async_connection().await?;
            ::redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok::<_, RedisError>(conn)
        };
        let conn = tokio::time::timeout(STARTUP_TIMEOUT, open)
            .await
            .map_err(|_| timed_out(&addr))?
            .map_err(|err| cluster_startup_error(&addr, ca, err))?;
        Ok(RedisSettings { conn: Connection::Cluster(conn), addr })
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Connection::Cluster(_))
    }

    async fn query<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        action: impl FnOnce() -> String,
    ) -> Result<T, BackendError> {
        let result = match &self.conn {
            Connection::Single(single) => single.query(cmd).await,
            Connection::Cluster(cluster) => cmd.query_async(&mut cluster.clone()).await,
        };
        result.map_err(|err| self.command_error(action(), err))
    }

    fn command_error(&self, action: String, err: RedisError) -> BackendError {
        if is_unreachable(&err) {
            BackendError::Unreachable {
                backend: BACKEND,
                addr: self.addr.clone(),
                detail: format!("{action}: {err}"),
            }
        } else {
            BackendError::Failed { backend: BACKEND, action, detail: err.to_string() }
        }
    }

    async fn hget(&self, key: &NodeKey) -> Result<Option<NodeData>, BackendError> {
        let (hash, field) = (redis_hash(key.env()), key.redis_field());
        let cmd = ::redis::cmd("HGET").arg(&hash).arg(&field).clone();
        let raw: Option<Vec<u8>> = self.query(&cmd, || format!("HGET {hash} {field}")).await?;
        raw.map(|raw| parse_node(&hash, &field, &raw)).transpose()
    }
}

fn is_unreachable(err: &RedisError) -> bool {
    err.is_io_error()
        || matches!(
            err.kind(),
            ErrorKind::ClusterConnectionNotFound | ErrorKind::Server(::redis::ServerErrorKind::ClusterDown)
        )
}

/// The CA bundle as the redis crate takes it: trusted instead of the system's roots.
fn certificates(ca: &CaBundle) -> TlsCertificates {
    TlsCertificates { client_tls: None, root_cert: Some(ca.pem().to_vec()) }
}

fn startup_error(addr: &str, ca: Option<&CaBundle>, err: RedisError) -> BackendError {
    if let Some(hint) = tls_problem::hint(&err, Setting::RedisTlsCa, ca) {
        return BackendError::Failed {
            backend: BACKEND,
            action: format!("connect to {addr} over TLS"),
            detail: format!("{err}; {hint}"),
        };
    }
    if is_unreachable(&err) {
        BackendError::Unreachable { backend: BACKEND, addr: addr.to_owned(), detail: err.to_string() }
    } else {
        BackendError::Failed {
            backend: BACKEND,
            action: format!("connect to {addr}"),
            detail: err.to_string(),
        }
    }
}

/// [`startup_error`], with a hint for the usual mistake: seeds that are no cluster.
fn cluster_startup_error(addr: &str, ca: Option<&CaBundle>, err: RedisError) -> BackendError {
    match startup_error(addr, ca, err) {
        BackendError::Failed { backend, action, detail } if !action.ends_with("over TLS") => {
            BackendError::Failed {
                backend,
                action,
                detail: format!(
                    "{detail}; check that the seeds are nodes of a Redis Cluster, or set `redis_cluster` \
                 (PROBE_REDIS_CLUSTER) to false for a single server"
                ),
            }
        }
        other => other,
    }
}

fn timed_out(addr: &str) -> BackendError {
    BackendError::Unreachable {
        backend: BACKEND,
        addr: addr.to_owned(),
        detail: format!("no answer to PING within {} s", STARTUP_TIMEOUT.as_secs()),
    }
}

fn parse_node(hash: &str, field: &str, raw: &[u8]) -> Result<NodeData, BackendError> {
    NodeData::from_json(raw).map_err(|err| BackendError::BadData {
        backend: BACKEND,
        location: format!("hash {hash} field {field}"),
        detail: format!(
            "the value is not node JSON the Python design can use ({err}): {}",
            String::from_utf8_lossy(raw)
        ),
    })
}

/// Reads the fields of `thriftprobe_{env}` as the layout defines them, in field order, leaving out
/// (and logging) those whose name or JSON break it.
fn parse_hash(env: Env, hash: &str, fields: BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<RegisteredNode> {
    let mut nodes = Vec::with_capacity(fields.len());
    for (field, raw) in fields {
        let field = String::from_utf8_lossy(&field);
        let key = match NodeKey::from_redis_field(&field) {
            Ok(key) if key.env() == env => key,
            Ok(key) => {
                tracing::warn!(%hash, %field, "skipping a field of env {} in the hash of env {env}", key.env());
                continue;
            }
            Err(err) => {
                tracing::warn!(%hash, %field, error = %err, "skipping a field that breaks the layout");
                continue;
            }
        };
        match parse_node(hash, &field, &raw) {
            Ok(data) => nodes.push(RegisteredNode { key, data }),
            Err(err) => tracing::warn!(%hash, %field, error = %err, "skipping a field holding bad JSON"),
        }
    }
    nodes
}

impl SettingsStore for RedisSettings {
    fn get<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<Option<NodeData>, BackendError>> {
        Box::pin(self.hget(key))
    }

    fn put<'a>(&'a self, key: &'a NodeKey, data: &'a NodeData) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let (hash, field) = (redis_hash(key.env()), key.redis_field());
            let cmd = ::redis::cmd("HSET").arg(&hash).arg(&field).arg(data.to_json()).clone();
            self.query::<i64>(&cmd, || format!("HSET {hash} {field}")).await?;
            Ok(())
        })
    }

    fn get_or_put<'a>(
        &'a self,
        key: &'a NodeKey,
        data: &'a NodeData,
    ) -> BoxFuture<'a, Result<NodeData, BackendError>> {
        Box::pin(async move {
            let (hash, field) = (redis_hash(key.env()), key.redis_field());
            let cmd = ::redis::cmd("HSETNX").arg(&hash).arg(&field).arg(data.to_json()).clone();
            for _ in 0..GET_OR_PUT_ATTEMPTS {
                // HSETNX is atomic: of two providers racing, one stores its value and both read it.
                let created: bool = self.query(&cmd, || format!("HSETNX {hash} {field}")).await?;
                if created {
                    return Ok(data.clone());
                }
                if let Some(stored) = self.hget(key).await? {
                    return Ok(stored);
                }
            }
            Err(BackendError::Failed {
                backend: BACKEND,
                action: format!("HSETNX {hash} {field}"),
                detail: format!("the field was deleted {GET_OR_PUT_ATTEMPTS} times between HSETNX and HGET"),
            })
        })
    }

    fn remove<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move {
            let (hash, field) = (redis_hash(key.env()), key.redis_field());
            let cmd = ::redis::cmd("HDEL").arg(&hash).arg(&field).clone();
            let removed: i64 = self.query(&cmd, || format!("HDEL {hash} {field}")).await?;
            Ok(removed > 0)
        })
    }

    fn all(&self, env: Env) -> BoxFuture<'_, Result<Vec<RegisteredNode>, BackendError>> {
        Box::pin(async move {
            let hash = redis_hash(env);
            let cmd = ::redis::cmd("HGETALL").arg(&hash).clone();
            let fields: BTreeMap<Vec<u8>, Vec<u8>> = self.query(&cmd, || format!("HGETALL {hash}")).await?;
            Ok(parse_hash(env, &hash, fields))
        })
    }
}

impl MetricsStore for RedisSettings {
    fn publish<'a>(
        &'a self,
        key: &'a NodeKey,
        metrics: &'a NodeMetrics,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let (latest, history) = (metrics_key(key), metrics_history_key(key));
            let json = serde_json::to_vec(metrics).unwrap_or_default();
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let set = ::redis::cmd("SET").arg(&latest).arg(&json).arg("PX").arg(ttl_ms).clone();
            self.query::<()>(&set, || format!("SET {latest}")).await?;
            let push = ::redis::cmd("RPUSH").arg(&history).arg(&json).clone();
            self.query::<i64>(&push, || format!("RPUSH {history}")).await?;
            let keep = -(METRICS_HISTORY_LEN as i64);
            let trim = ::redis::cmd("LTRIM").arg(&history).arg(keep).arg(-1).clone();
            self.query::<()>(&trim, || format!("LTRIM {history}")).await?;
            let expire = ::redis::cmd("PEXPIRE").arg(&history).arg(ttl_ms).clone();
            self.query::<i64>(&expire, || format!("PEXPIRE {history}")).await?;
            Ok(())
        })
    }

    fn report_client<'a>(
        &'a self,
        env: Env,
        report: &'a ClientReport,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let hash = clients_key(env);
            let json = serde_json::to_vec(report).unwrap_or_default();
            let set = ::redis::cmd("HSET").arg(&hash).arg(report.field()).arg(json).clone();
            self.query::<i64>(&set, || format!("HSET {hash}")).await?;
            Ok(())
        })
    }

    fn client_reports(&self, env: Env) -> BoxFuture<'_, Result<Vec<ClientReport>, BackendError>> {
        Box::pin(async move {
            let hash = clients_key(env);
            let cmd = ::redis::cmd("HGETALL").arg(&hash).clone();
            let all: Vec<(String, Vec<u8>)> = self.query(&cmd, || format!("HGETALL {hash}")).await?;
            let now = super::backend::unix_ms();
            let mut current = Vec::new();
            for (field, raw) in all {
                match serde_json::from_slice::<ClientReport>(&raw) {
                    Ok(report) if !report.is_stale(now) => current.push(report),
                    // Gone clients (and reports this version cannot read) are dropped as they are met.
                    _ => {
                        let del = ::redis::cmd("HDEL").arg(&hash).arg(&field).clone();
                        self.query::<i64>(&del, || format!("HDEL {hash}")).await?;
                    }
                }
            }
            current
                .sort_by(|a, b| (&a.appkey, &a.service, &a.client).cmp(&(&b.appkey, &b.service, &b.client)));
            Ok(current)
        })
    }

    fn latest<'a>(
        &'a self,
        keys: &'a [NodeKey],
    ) -> BoxFuture<'a, Result<Vec<Option<NodeMetrics>>, BackendError>> {
        Box::pin(async move {
            let mut all = Vec::with_capacity(keys.len());
            for key in keys {
                let latest = metrics_key(key);
                let cmd = ::redis::cmd("GET").arg(&latest).clone();
                let raw: Option<Vec<u8>> = self.query(&cmd, || format!("GET {latest}")).await?;
                // A window this version cannot read counts as none: it expires soon anyway.
                all.push(raw.and_then(|raw| serde_json::from_slice(&raw).ok()));
            }
            Ok(all)
        })
    }

    fn history<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<Vec<NodeMetrics>, BackendError>> {
        Box::pin(async move {
            let history = metrics_history_key(key);
            let cmd = ::redis::cmd("LRANGE").arg(&history).arg(0).arg(-1).clone();
            let raw: Vec<Vec<u8>> = self.query(&cmd, || format!("LRANGE {history}")).await?;
            Ok(raw.iter().filter_map(|raw| serde_json::from_slice(raw).ok()).collect())
        })
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.conn {
            Connection::Single(_) => "single",
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisSettings").field("addr", &self.addr).field("mode", &mode).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(entries: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
        entries.iter().map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn hash_is_read_in_field_order_skipping_what_breaks_the_layout() {
        let raw = fields(&[
            ("b_app|dev|S|10.0.0.2|80", r#"{"host": "10.0.0.2", "port": 80, "weight": 5, "valid": 1}"#),
            ("a_app|dev|S|10.0.0.1|80", r#"{"valid":true,"port":80 , "weight":10,"host":"10.0.0.1"}"#),
            ("a_app|dev|S|10.0.0.3|80", "not json"),
            ("a_app|dev|S|10.0.0.5|80", r#"{"host": "10.0.0.5", "port": 80, "weight": "5", "valid": 1}"#),
            ("a_app|prod|S|10.0.0.4|80", r#"{"host": "10.0.0.4", "port": 80}"#),
            ("no-pipes", r#"{"host": "h", "port": 1}"#),
        ]);
        let nodes = parse_hash(Env::Dev, "thriftprobe_dev", raw);
        let names: Vec<String> = nodes.iter().map(|n| n.key.redis_field()).collect();
        assert_eq!(names, ["a_app|dev|S|10.0.0.1|80", "b_app|dev|S|10.0.0.2|80"]);
        assert_eq!(nodes[1].data.weight, 5);
        assert!(
            nodes[0].data.in_rotation() && nodes[0].data.valid.as_json() == &serde_json::Value::Bool(true)
        );
    }

    #[test]
    fn a_value_the_python_client_cannot_use_says_why() {
        let raw = br#"{"host": "h", "port": 1, "weight": "30", "valid": 1}"#;
        let err = parse_node("thriftprobe_dev", "a|dev|S|1.2.3.4|1", raw).unwrap_err().to_string();
        assert!(err.contains("\"weight\" is \"30\" (str)") && err.contains("fix or delete it"), "{err}");
        let loose = br#"{ "weight" : 30.0, "valid" : 1.0, "port" : 1, "host" : "h", "zone" : "b" }"#;
        let data = parse_node("thriftprobe_dev", "a|dev|S|1.2.3.4|1", loose).unwrap();
        assert_eq!((data.weight.units(), data.valid.is_on(), data.extra.len()), (30_000, true, 1));
    }

    #[test]
    fn bad_json_names_hash_and_field() {
        let err = parse_node("thriftprobe_dev", "a|dev|S|1.2.3.4|1", b"{oops").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, BackendError::BadData { .. }), "{err:?}");
        assert!(
            text.contains("thriftprobe_dev") && text.contains("a|dev|S|1.2.3.4|1") && text.contains("{oops"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn cluster_without_seeds_is_refused() {
        let err = RedisSettings::connect_cluster(&[]).await.unwrap_err();
        assert!(err.to_string().contains("no seed node"), "{err}");
    }

    #[tokio::test]
    async fn cluster_seeds_with_different_passwords_are_refused_without_showing_them() {
        let seeds: Vec<RedisUrl> = ["redis://:one@127.0.0.1:1/", "redis://:two@127.0.0.1:2/"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let err = RedisSettings::connect_cluster(&seeds).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, BackendError::Failed { .. }), "{err:?}");
        assert!(!text.contains("one@") && !text.contains("two@"), "{text}");
    }

    #[tokio::test]
    async fn closed_cluster_seed_is_unreachable() {
        let seeds = ["redis://:secret@127.0.0.1:1/".parse().unwrap()];
        let err = RedisSettings::connect_cluster(&seeds).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, BackendError::Unreachable { .. }), "{err:?}");
        assert!(text.contains("127.0.0.1:1") && !text.contains("secret"), "{text}");
    }
}
