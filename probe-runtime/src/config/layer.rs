//! One source's settings (a config file or the environment), checked but not yet combined: layers
//! stack, the later over the earlier, and the result is applied to the defaults.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::backend::{AppsBackend, RedisUrl, RegistryBackend, SettingsBackend, ZooKeeperConfig};
use super::error::{ConfigError, InvalidValue, Origin};
use super::faults::{self, FaultSettings};
use super::rpc_tls::RpcTlsSettings;
use super::setting::Setting;
use super::tls::{self, CaBundle, GivenCa};
use super::value;
use super::zookeeper::ZkConnect;
use super::{Config, EnvSource};
use crate::balance::BalancerKind;
use crate::registry::layout::Env;

/// A backend chosen by a source: the real one, or the embedded one by name.
#[derive(Debug, Clone)]
enum Choice<T> {
    Real(T),
    Embedded,
}

/// The settings one source gave; `None` for those it left out.
#[derive(Debug, Clone, Default)]
pub(super) struct Layer {
    env: Option<(Env, Origin)>,
    zookeeper: Option<Choice<ZkConnect>>,
    zk_session_timeout: Option<Duration>,
    zk_connect_timeout: Option<Duration>,
    redis: Option<Choice<Vec<RedisUrl>>>,
    redis_cluster: Option<(bool, Origin)>,
    mysql: Option<AppsBackend>,
    redis_tls_ca: Option<GivenCa>,
    mysql_tls_ca: Option<GivenCa>,
    app_credential: Option<crate::security::AppCredential>,
    zk_operator_secret: Option<crate::security::Secret>,
    bind: Option<IpAddr>,
    /// The port of `bind = "ip:port"`; `port` wins over it within one source.
    bind_port: Option<u16>,
    port: Option<u16>,
    advertise_host: Option<String>,
    grace_period: Option<Duration>,
    /// `Some(None)`: `off` was given, which overrides an address of a source below.
    admin_addr: Option<Option<SocketAddr>>,
    allow_unframed: Option<bool>,
    handshake_timeout: Option<Duration>,
    max_connections_per_peer: Option<usize>,
    reserved_connections: Option<usize>,
    /// In bytes.
    memory_budget: Option<usize>,
    server_version: Option<String>,
    server_tags: Option<BTreeMap<String, String>>,
    server_tier: Option<u8>,
    balancer: Option<BalancerKind>,
    call_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry_budget_ratio: Option<f64>,
    client_tags: Option<BTreeMap<String, String>>,
    /// Method timeouts, the QPS limit, hedging and the breakers.
    faults: FaultSettings,
    /// TLS on the RPC port, server and client.
    rpc_tls: RpcTlsSettings,
}

/// `embedded`, in any case, chooses an embedded backend.
fn is_embedded(text: &str) -> bool {
    text.eq_ignore_ascii_case("embedded")
}

impl Layer {
    /// Sets `setting` from `text`, or says what is wrong with it and where it came from.
    pub(super) fn set(&mut self, setting: Setting, text: &str, origin: &Origin) -> Result<(), ConfigError> {
        let fail = |problem| ConfigError::invalid(setting, origin.clone(), text, problem);
        let value = text.trim();
        if value.is_empty() {
            return Err(fail(InvalidValue::new("it is empty")));
        }
        match setting {
            Setting::Env => self.env = Some((value::env(value).map_err(fail)?, origin.clone())),
            Setting::ZooKeeper if is_embedded(value) => self.zookeeper = Some(Choice::Embedded),
            Setting::ZooKeeper => self.zookeeper = Some(Choice::Real(value.parse().map_err(fail)?)),
            Setting::ZkSessionTimeout => {
                self.zk_session_timeout = Some(value::millis(value, 1).map_err(fail)?)
            }
            Setting::ZkConnectTimeout => {
                self.zk_connect_timeout = Some(value::millis(value, 1).map_err(fail)?)
            }
            Setting::Redis if is_embedded(value) => self.redis = Some(Choice::Embedded),
            Setting::Redis => return self.set_redis(value.split(',')).map_err(fail),
            Setting::RedisCluster => {
                self.redis_cluster = Some((value::boolean(value).map_err(fail)?, origin.clone()));
            }
            Setting::MySql if is_embedded(value) => self.mysql = Some(AppsBackend::Embedded),
            Setting::MySql => self.mysql = Some(AppsBackend::MySql(value.parse().map_err(fail)?)),
            Setting::RedisTlsCa => {
                self.redis_tls_ca = Some((CaBundle::read(value).map_err(fail)?, origin.clone()))
            }
            Setting::MySqlTlsCa => {
                self.mysql_tls_ca = Some((CaBundle::read(value).map_err(fail)?, origin.clone()))
            }
            Setting::AppCredential => {
                self.app_credential =
                    Some(value.parse().map_err(|e: crate::security::CredentialError| {
                        fail(InvalidValue::new(e.to_string()))
                    })?)
            }
            Setting::ZkOperatorSecret => {
                self.zk_operator_secret =
                    Some(value.parse().map_err(|e: crate::security::CredentialError| {
                        fail(InvalidValue::new(e.to_string()))
                    })?)
            }
            Setting::Bind => {
                (self.bind, self.bind_port) = value::bind(value).map(|(ip, p)| (Some(ip), p)).map_err(fail)?
            }
            Setting::Port => self.port = Some(value::port(value).map_err(fail)?),
            Setting::AdvertiseHost => self.advertise_host = Some(value::host(value).map_err(fail)?),
            Setting::GracePeriod => self.grace_period = Some(value::millis(value, 0).map_err(fail)?),
            Setting::AdminAddr => self.admin_addr = Some(value::admin_addr(value).map_err(fail)?),
            Setting::AllowUnframed => self.allow_unframed = Some(value::boolean(value).map_err(fail)?),
            Setting::HandshakeTimeout => {
                self.handshake_timeout = Some(value::millis(value, 1).map_err(fail)?)
            }
            Setting::MaxConnectionsPerPeer => {
                self.max_connections_per_peer = Some(value::count(value, 1).map_err(fail)?)
            }
            Setting::ReservedConnections => {
                self.reserved_connections = Some(value::count(value, 0).map_err(fail)?)
            }
            Setting::MemoryBudget => {
                self.memory_budget = Some(value::count(value, 1).map_err(fail)?.saturating_mul(1 << 20))
            }
            Setting::Balancer => self.balancer = Some(value::balancer(value).map_err(fail)?),
            Setting::CallTimeout => self.call_timeout = Some(value::millis(value, 1).map_err(fail)?),
            Setting::ConnectTimeout => self.connect_timeout = Some(value::millis(value, 1).map_err(fail)?),
            Setting::RetryBudgetRatio => self.retry_budget_ratio = Some(value::ratio(value).map_err(fail)?),
            Setting::ServerVersion => self.server_version = Some(value::version(value).map_err(fail)?),
            Setting::ServerTier => self.server_tier = Some(value::tier(value).map_err(fail)?),
            Setting::ServerTags | Setting::ClientTags => {
                *self.tags_of(setting) = Some(value::tags(value).map_err(fail)?)
            }
            Setting::MethodTimeouts => {
                self.faults.method_timeouts = Some(faults::method_timeouts(value).map_err(fail)?)
            }
            Setting::QpsLimit => self.faults.qps_limit = Some(faults::qps_limit(value).map_err(fail)?),
            Setting::HedgePercentile => {
                self.faults.hedge_percentile = Some(faults::hedge_percentile(value).map_err(fail)?)
            }
            Setting::BreakerFailures => {
                self.faults.breaker_failures = Some(faults::breaker_failures(value).map_err(fail)?)
            }
            Setting::BreakerErrorRate => {
                self.faults.breaker_error_rate = Some(faults::breaker_error_rate(value).map_err(fail)?)
            }
            tls => {
                self.rpc_tls.set(tls, value, origin).map_err(fail)?;
            }
        }
        Ok(())
    }

    /// Sets the tags of `setting` (server or client) from a table's pairs.
    pub(super) fn set_tags<'a>(
        &mut self,
        setting: Setting,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), InvalidValue> {
        *self.tags_of(setting) = Some(value::tag_map(pairs)?);
        Ok(())
    }

    /// Sets the client's method timeouts from a table's method and milliseconds pairs.
    pub(super) fn set_method_timeouts<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), InvalidValue> {
        self.faults.method_timeouts = Some(faults::method_timeout_map(pairs)?);
        Ok(())
    }

    /// The client's tags for [`Setting::ClientTags`], else the server's.
    fn tags_of(&mut self, setting: Setting) -> &mut Option<BTreeMap<String, String>> {
        match setting {
            Setting::ClientTags => &mut self.client_tags,
            _ => &mut self.server_tags,
        }
    }

    /// Sets the Redis seed URLs from a list; several mean a Redis Cluster.
    pub(super) fn set_redis<'a>(
        &mut self,
        urls: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), InvalidValue> {
        let mut seeds = Vec::new();
        for url in urls.into_iter().map(str::trim) {
            if url.is_empty() {
                return Err(InvalidValue::new("it has an empty URL in its list"));
            }
            seeds.push(url.parse::<RedisUrl>()?);
        }
        if seeds.is_empty() {
            return Err(InvalidValue::new("it is an empty list"));
        }
        self.redis = Some(Choice::Real(seeds));
        Ok(())
    }

    /// This layer with every setting `top` gives replaced by `top`'s value.
    pub(super) fn under(self, top: Layer) -> Layer {
        let port = top.port.or(top.bind_port).or(self.port).or(self.bind_port);
        Layer {
            env: top.env.or(self.env),
            zookeeper: top.zookeeper.or(self.zookeeper),
            zk_session_timeout: top.zk_session_timeout.or(self.zk_session_timeout),
            zk_connect_timeout: top.zk_connect_timeout.or(self.zk_connect_timeout),
            redis: top.redis.or(self.redis),
            redis_cluster: top.redis_cluster.or(self.redis_cluster),
            mysql: top.mysql.or(self.mysql),
            redis_tls_ca: top.redis_tls_ca.or(self.redis_tls_ca),
            mysql_tls_ca: top.mysql_tls_ca.or(self.mysql_tls_ca),
            app_credential: top.app_credential.or(self.app_credential),
            zk_operator_secret: top.zk_operator_secret.or(self.zk_operator_secret),
            bind: top.bind.or(self.bind),
            bind_port: None,
            port,
            advertise_host: top.advertise_host.or(self.advertise_host),
            grace_period: top.grace_period.or(self.grace_period),
            admin_addr: top.admin_addr.or(self.admin_addr),
            allow_unframed: top.allow_unframed.or(self.allow_unframed),
            handshake_timeout: top.handshake_timeout.or(self.handshake_timeout),
            max_connections_per_peer: top.max_connections_per_peer.or(self.max_connections_per_peer),
            reserved_connections: top.reserved_connections.or(self.reserved_connections),
            memory_budget: top.memory_budget.or(self.memory_budget),
            server_version: top.server_version.or(self.server_version),
            server_tags: top.server_tags.or(self.server_tags),
            server_tier: top.server_tier.or(self.server_tier),
            balancer: top.balancer.or(self.balancer),
            call_timeout: top.call_timeout.or(self.call_timeout),
            connect_timeout: top.connect_timeout.or(self.connect_timeout),
            retry_budget_ratio: top.retry_budget_ratio.or(self.retry_budget_ratio),
            client_tags: top.client_tags.or(self.client_tags),
            faults: self.faults.under(top.faults),
            rpc_tls: self.rpc_tls.under(top.rpc_tls),
        }
    }

    /// Whether this layer sets the env (so the host rule need not be looked up).
    pub(super) fn names_env(&self) -> bool {
        self.env.is_some()
    }

    /// Writes the settings this layer gives into `config`.
    pub(super) fn apply(self, config: &mut Config) -> Result<(), ConfigError> {
        if let Some((env, origin)) = self.env {
            config.env = env;
            config.env_source = EnvSource::Setting(origin);
        }
        match self.zookeeper {
            Some(Choice::Real(connect)) => {
                config.registry = Some(RegistryBackend::ZooKeeper(ZooKeeperConfig::new(connect)));
            }
            Some(Choice::Embedded) => config.registry = Some(RegistryBackend::Embedded),
            None => {}
        }
        if let Some(RegistryBackend::ZooKeeper(zk)) = &mut config.registry {
            zk.session_timeout = self.zk_session_timeout.unwrap_or(zk.session_timeout);
            zk.connect_timeout = self.zk_connect_timeout.unwrap_or(zk.connect_timeout);
            zk.app_credential = self.app_credential.clone().or(zk.app_credential.take());
            zk.operator_secret = self.zk_operator_secret.or(zk.operator_secret.take());
        }
        config.client.credential = self.app_credential.or(config.client.credential.take());
        match self.redis {
            Some(Choice::Real(seeds)) => config.settings = Some(redis_backend(seeds, self.redis_cluster)?),
            Some(Choice::Embedded) => config.settings = Some(SettingsBackend::Embedded),
            None => {}
        }
        config.apps = self.mysql.or(config.apps.take());
        tls::apply(&mut config.settings, &mut config.apps, self.redis_tls_ca, self.mysql_tls_ca)?;
        let (server, client) = (&mut config.server, &mut config.client);
        server.bind = self.bind.unwrap_or(server.bind);
        server.port = self.port.or(self.bind_port).unwrap_or(server.port);
        server.advertise_host = self.advertise_host.or(server.advertise_host.take());
        server.grace_period = self.grace_period.unwrap_or(server.grace_period);
        server.admin_addr = self.admin_addr.unwrap_or(server.admin_addr);
        server.allow_unframed = self.allow_unframed.unwrap_or(server.allow_unframed);
        server.handshake_timeout = self.handshake_timeout.unwrap_or(server.handshake_timeout);
        server.max_connections_per_peer =
            self.max_connections_per_peer.unwrap_or(server.max_connections_per_peer);
        server.reserved_connections = self.reserved_connections.unwrap_or(server.reserved_connections);
        server.memory_budget = self.memory_budget.unwrap_or(server.memory_budget);
        server.version = self.server_version.or(server.version.take());
        server.tags = self.server_tags.unwrap_or_else(|| std::mem::take(&mut server.tags));
        server.tier = self.server_tier.unwrap_or(server.tier);
        client.balancer = self.balancer.unwrap_or(client.balancer);
        client.call_timeout = self.call_timeout.unwrap_or(client.call_timeout);
        client.connect_timeout = self.connect_timeout.unwrap_or(client.connect_timeout);
        client.retry_budget_ratio = self.retry_budget_ratio.unwrap_or(client.retry_budget_ratio);
        client.tags = self.client_tags.unwrap_or_else(|| std::mem::take(&mut client.tags));
        self.faults.apply(client);
        self.rpc_tls.apply(server, client)?;
        Ok(())
    }
}

/// One seed is a single server unless the cluster flag says otherwise; several are a cluster, and
/// a flag that says they are not is an error rather than a silent choice of one of them.
fn redis_backend(
    mut seeds: Vec<RedisUrl>,
    cluster: Option<(bool, Origin)>,
) -> Result<SettingsBackend, ConfigError> {
    match cluster {
        Some((false, origin)) if seeds.len() > 1 => Err(ConfigError::invalid(
            Setting::RedisCluster,
            origin,
            "false",
            InvalidValue::new(format!(
                "redis lists {} URLs, and a single Redis takes one: give one URL, or set it to true",
                seeds.len()
            )),
        )),
        Some((true, _)) => Ok(SettingsBackend::RedisCluster(seeds)),
        _ if seeds.len() > 1 => Ok(SettingsBackend::RedisCluster(seeds)),
        _ => match seeds.pop() {
            Some(seed) => Ok(SettingsBackend::Redis(seed)),
            None => Err(ConfigError::NoSettingsStore),
        },
    }
}
