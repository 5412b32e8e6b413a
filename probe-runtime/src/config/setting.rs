//! The table of settings: each one's environment variable, config-file key and expected format.

use std::fmt;

/// One setting of a [`Config`](super::Config), as an environment variable and a config-file key
/// name it. Errors use it to say which setting is wrong and how to set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setting {
    /// `PROBE_ENV`, `env`.
    Env,
    /// `PROBE_ZOOKEEPER`, `zookeeper`.
    ZooKeeper,
    /// `PROBE_ZK_SESSION_TIMEOUT_MS`, `zk_session_timeout_ms`.
    ZkSessionTimeout,
    /// `PROBE_ZK_CONNECT_TIMEOUT_MS`, `zk_connect_timeout_ms`.
    ZkConnectTimeout,
    /// `PROBE_REDIS`, `redis`.
    Redis,
    /// `PROBE_REDIS_CLUSTER`, `redis_cluster`.
    RedisCluster,
    /// `PROBE_MYSQL`, `mysql`.
    MySql,
    /// `PROBE_REDIS_TLS_CA`, `redis_tls_ca`.
    RedisTlsCa,
    /// `PROBE_MYSQL_TLS_CA`, `mysql_tls_ca`.
    MySqlTlsCa,
    /// `PROBE_APP_CREDENTIAL`, `app_credential`.
    AppCredential,
    /// `PROBE_ZK_OPERATOR_SECRET`, `zk_operator_secret`.
    ZkOperatorSecret,
    /// `PROBE_BIND`, `server.bind`.
    Bind,
    /// `PROBE_PORT`, `server.port`.
    Port,
    /// `PROBE_ADVERTISE_HOST`, `server.advertise_host`.
    AdvertiseHost,
    /// `PROBE_GRACE_PERIOD_MS`, `server.grace_period_ms`.
    GracePeriod,
    /// `PROBE_ADMIN_ADDR`, `server.admin_addr`.
    AdminAddr,
    /// `PROBE_ALLOW_UNFRAMED`, `server.allow_unframed`.
    AllowUnframed,
    /// `PROBE_HANDSHAKE_TIMEOUT_MS`, `server.handshake_timeout_ms`.
    HandshakeTimeout,
    /// `PROBE_MAX_CONNECTIONS_PER_PEER`, `server.max_connections_per_peer`.
    MaxConnectionsPerPeer,
    /// `PROBE_RESERVED_CONNECTIONS`, `server.reserved_connections`.
    ReservedConnections,
    /// `PROBE_MEMORY_BUDGET_MB`, `server.memory_budget_mb`.
    MemoryBudget,
    /// `PROBE_SERVER_VERSION`, `server.version`.
    ServerVersion,
    /// `PROBE_SERVER_TAGS`, `server.tags`.
    ServerTags,
    /// `PROBE_SERVER_TIER`, `server.tier`.
    ServerTier,
    /// `PROBE_BALANCER`, `client.balancer`.
    Balancer,
    /// `PROBE_CALL_TIMEOUT_MS`, `client.call_timeout_ms`.
    CallTimeout,
    /// `PROBE_CONNECT_TIMEOUT_MS`, `client.connect_timeout_ms`.
    ConnectTimeout,
    /// `PROBE_RETRY_BUDGET_RATIO`, `client.retry_budget_ratio`.
    RetryBudgetRatio,
    /// `PROBE_CLIENT_TAGS`, `client.tags`.
    ClientTags,
    /// `PROBE_CLIENT_METHOD_TIMEOUTS`, `client.method_timeouts`.
    MethodTimeouts,
    /// `PROBE_CLIENT_QPS_LIMIT`, `client.qps_limit`.
    QpsLimit,
    /// `PROBE_CLIENT_HEDGE_PERCENTILE`, `client.hedge_percentile`.
    HedgePercentile,
    /// `PROBE_CLIENT_BREAKER_FAILURES`, `client.breaker_failures`.
    BreakerFailures,
    /// `PROBE_CLIENT_BREAKER_ERROR_RATE`, `client.breaker_error_rate`.
    BreakerErrorRate,
    /// `PROBE_SERVER_TLS_MODE`, `server.tls.mode`.
    ServerTlsMode,
    /// `PROBE_SERVER_TLS_CERT`, `server.tls.cert`.
    ServerTlsCert,
    /// `PROBE_SERVER_TLS_KEY`, `server.tls.key`.
    ServerTlsKey,
    /// `PROBE_SERVER_TLS_CLIENT_AUTH`, `server.tls.client_auth`.
    ServerTlsClientAuth,
    /// `PROBE_SERVER_TLS_CLIENT_CA`, `server.tls.client_ca`.
    ServerTlsClientCa,
    /// `PROBE_CLIENT_TLS_CA`, `client.tls.ca`.
    ClientTlsCa,
    /// `PROBE_CLIENT_TLS_CERT`, `client.tls.cert`.
    ClientTlsCert,
    /// `PROBE_CLIENT_TLS_KEY`, `client.tls.key`.
    ClientTlsKey,
    /// `PROBE_CLIENT_TLS_SERVER_NAME`, `client.tls.server_name`.
    ClientTlsServerName,
}

impl Setting {
    /// Every setting, in the order of the config file.
    pub const ALL: [Setting; 43] = [
        Setting::Env,
        Setting::ZooKeeper,
        Setting::ZkSessionTimeout,
        Setting::ZkConnectTimeout,
        Setting::Redis,
        Setting::RedisCluster,
        Setting::MySql,
        Setting::RedisTlsCa,
        Setting::MySqlTlsCa,
        Setting::AppCredential,
        Setting::ZkOperatorSecret,
        Setting::Bind,
        Setting::Port,
        Setting::AdvertiseHost,
        Setting::GracePeriod,
        Setting::AdminAddr,
        Setting::AllowUnframed,
        Setting::HandshakeTimeout,
        Setting::MaxConnectionsPerPeer,
        Setting::ReservedConnections,
        Setting::MemoryBudget,
        Setting::ServerVersion,
        Setting::ServerTags,
        Setting::ServerTier,
        Setting::Balancer,
        Setting::CallTimeout,
        Setting::ConnectTimeout,
        Setting::RetryBudgetRatio,
        Setting::ClientTags,
        Setting::MethodTimeouts,
        Setting::QpsLimit,
        Setting::HedgePercentile,
        Setting::BreakerFailures,
        Setting::BreakerErrorRate,
        Setting::ServerTlsMode,
        Setting::ServerTlsCert,
        Setting::ServerTlsKey,
        Setting::ServerTlsClientAuth,
        Setting::ServerTlsClientCa,
        Setting::ClientTlsCa,
        Setting::ClientTlsCert,
        Setting::ClientTlsKey,
        Setting::ClientTlsServerName,
    ];

    /// The environment variable that sets it.
    pub fn env_var(self) -> &'static str {
        match self {
            Setting::Env => "PROBE_ENV",
            Setting::ZooKeeper => "PROBE_ZOOKEEPER",
            Setting::ZkSessionTimeout => "PROBE_ZK_SESSION_TIMEOUT_MS",
            Setting::ZkConnectTimeout => "PROBE_ZK_CONNECT_TIMEOUT_MS",
            Setting::Redis => "PROBE_REDIS",
            Setting::RedisCluster => "PROBE_REDIS_CLUSTER",
            Setting::MySql => "PROBE_MYSQL",
            Setting::RedisTlsCa => "PROBE_REDIS_TLS_CA",
            Setting::MySqlTlsCa => "PROBE_MYSQL_TLS_CA",
            Setting::AppCredential => "PROBE_APP_CREDENTIAL",
            Setting::ZkOperatorSecret => "PROBE_ZK_OPERATOR_SECRET",
            Setting::Bind => "PROBE_BIND",
            Setting::Port => "PROBE_PORT",
            Setting::AdvertiseHost => "PROBE_ADVERTISE_HOST",
            Setting::GracePeriod => "PROBE_GRACE_PERIOD_MS",
            Setting::AdminAddr => "PROBE_ADMIN_ADDR",
            Setting::AllowUnframed => "PROBE_ALLOW_UNFRAMED",
            Setting::HandshakeTimeout => "PROBE_HANDSHAKE_TIMEOUT_MS",
            Setting::MaxConnectionsPerPeer => "PROBE_MAX_CONNECTIONS_PER_PEER",
            Setting::ReservedConnections => "PROBE_RESERVED_CONNECTIONS",
            Setting::MemoryBudget => "PROBE_MEMORY_BUDGET_MB",
            Setting::ServerVersion => "PROBE_SERVER_VERSION",
            Setting::ServerTags => "PROBE_SERVER_TAGS",
            Setting::ServerTier => "PROBE_SERVER_TIER",
            Setting::Balancer => "PROBE_BALANCER",
            Setting::CallTimeout => "PROBE_CALL_TIMEOUT_MS",
            Setting::ConnectTimeout => "PROBE_CONNECT_TIMEOUT_MS",
            Setting::RetryBudgetRatio => "PROBE_RETRY_BUDGET_RATIO",
            Setting::ClientTags => "PROBE_CLIENT_TAGS",
            Setting::MethodTimeouts => "PROBE_CLIENT_METHOD_TIMEOUTS",
            Setting::QpsLimit => "PROBE_CLIENT_QPS_LIMIT",
            Setting::HedgePercentile => "PROBE_CLIENT_HEDGE_PERCENTILE",
            Setting::BreakerFailures => "PROBE_CLIENT_BREAKER_FAILURES",
            Setting::BreakerErrorRate => "PROBE_CLIENT_BREAKER_ERROR_RATE",
            Setting::ServerTlsMode => "PROBE_SERVER_TLS_MODE",
            Setting::ServerTlsCert => "PROBE_SERVER_TLS_CERT",
            Setting::ServerTlsKey => "PROBE_SERVER_TLS_KEY",
            Setting::ServerTlsClientAuth => "PROBE_SERVER_TLS_CLIENT_AUTH",
            Setting::ServerTlsClientCa => "PROBE_SERVER_TLS_CLIENT_CA",
            Setting::ClientTlsCa => "PROBE_CLIENT_TLS_CA",
            Setting::ClientTlsCert => "PROBE_CLIENT_TLS_CERT",
            Setting::ClientTlsKey => "PROBE_CLIENT_TLS_KEY",
            Setting::ClientTlsServerName => "PROBE_CLIENT_TLS_SERVER_NAME",
        }
    }

    /// The config-file key, with its table: `zookeeper`, `server.port`.
    pub fn file_key(self) -> &'static str {
        match self {
            Setting::Env => "env",
            Setting::ZooKeeper => "zookeeper",
            Setting::ZkSessionTimeout => "zk_session_timeout_ms",
            Setting::ZkConnectTimeout => "zk_connect_timeout_ms",
            Setting::Redis => "redis",
            Setting::RedisCluster => "redis_cluster",
            Setting::MySql => "mysql",
            Setting::RedisTlsCa => "redis_tls_ca",
            Setting::MySqlTlsCa => "mysql_tls_ca",
            Setting::AppCredential => "app_credential",
            Setting::ZkOperatorSecret => "zk_operator_secret",
            Setting::Bind => "server.bind",
            Setting::Port => "server.port",
            Setting::AdvertiseHost => "server.advertise_host",
            Setting::GracePeriod => "server.grace_period_ms",
            Setting::AdminAddr => "server.admin_addr",
            Setting::AllowUnframed => "server.allow_unframed",
            Setting::HandshakeTimeout => "server.handshake_timeout_ms",
            Setting::MaxConnectionsPerPeer => "server.max_connections_per_peer",
            Setting::ReservedConnections => "server.reserved_connections",
            Setting::MemoryBudget => "server.memory_budget_mb",
            Setting::ServerVersion => "server.version",
            Setting::ServerTags => "server.tags",
            Setting::ServerTier => "server.tier",
            Setting::Balancer => "client.balancer",
            Setting::CallTimeout => "client.call_timeout_ms",
            Setting::ConnectTimeout => "client.connect_timeout_ms",
            Setting::RetryBudgetRatio => "client.retry_budget_ratio",
            Setting::ClientTags => "client.tags",
            Setting::MethodTimeouts => "client.method_timeouts",
            Setting::QpsLimit => "client.qps_limit",
            Setting::HedgePercentile => "client.hedge_percentile",
            Setting::BreakerFailures => "client.breaker_failures",
            Setting::BreakerErrorRate => "client.breaker_error_rate",
            Setting::ServerTlsMode => "server.tls.mode",
            Setting::ServerTlsCert => "server.tls.cert",
            Setting::ServerTlsKey => "server.tls.key",
            Setting::ServerTlsClientAuth => "server.tls.client_auth",
            Setting::ServerTlsClientCa => "server.tls.client_ca",
            Setting::ClientTlsCa => "client.tls.ca",
            Setting::ClientTlsCert => "client.tls.cert",
            Setting::ClientTlsKey => "client.tls.key",
            Setting::ClientTlsServerName => "client.tls.server_name",
        }
    }

    /// What a valid value looks like.
    pub fn expected(self) -> &'static str {
        match self {
            Setting::Env => "`dev` or `prod`",
            Setting::ZooKeeper => "host:port[,host:port...][/chroot], or `embedded`",
            Setting::ZkSessionTimeout
            | Setting::ZkConnectTimeout
            | Setting::CallTimeout
            | Setting::ConnectTimeout
            | Setting::HandshakeTimeout => "a whole number of milliseconds, at least 1",
            Setting::MaxConnectionsPerPeer => "a whole number of connections, at least 1",
            Setting::ReservedConnections => "a whole number of connections",
            Setting::MemoryBudget => "a whole number of MiB, at least 1",
            Setting::GracePeriod => "a whole number of milliseconds",
            Setting::Redis => {
                "redis://[user:password@]host[:port][/db] (or rediss://), several separated by commas \
                 for a Redis Cluster, or `embedded`"
            }
            Setting::RedisCluster | Setting::AllowUnframed => "`true` or `false`",
            Setting::MySql => "mysql://user:password@host[:port]/database[?require_ssl=true], or `embedded`",
            Setting::RedisTlsCa => {
                "the path of a PEM file of the CA certificates that signed the Redis servers' \
                 certificates, for rediss:// URLs"
            }
            Setting::MySqlTlsCa => {
                "the path of a PEM file of the CA certificates that signed the MySQL server's \
                 certificate, for URLs with ?require_ssl=true"
            }
            Setting::AppCredential => "appkey:secret, the line `probe apps add` printed",
            Setting::ZkOperatorSecret => {
                "the operator's ZooKeeper secret: 16 or more characters, no `:` or spaces"
            }
            Setting::Bind => "an IP address, optionally with a port: 0.0.0.0, 10.0.0.7:9090, [::]:9090",
            Setting::Port => "a port number from 0 to 65535 (0: any free port)",
            Setting::AdvertiseHost => "the IP address or host name other machines reach this one at",
            Setting::AdminAddr => {
                "an IP address and port for the admin endpoint: 127.0.0.1:9464, 0.0.0.0:9464, [::1]:9464, \
                 or `off`"
            }
            Setting::Balancer => "one of random, round_robin, least_loaded, consistent_hash",
            Setting::RetryBudgetRatio => "a number from 0 to 1000; 0.2 lets retries add 20% to the calls",
            Setting::ServerVersion => {
                "a version without spaces, as traffic rules name it: 2.0.0, 2.1.0-rc.1, canary"
            }
            Setting::ServerTags | Setting::ClientTags => {
                "key=value pairs separated by commas, each key once, keys and values of letters, digits, \
                 `_`, `.` and `-`: zone=eu-1,group=blue (in the file also a table: { zone = \"eu-1\" })"
            }
            Setting::ServerTier => "0, 1 or 2: tiers are 0 (primary), 1 and 2 (backups)",
            Setting::MethodTimeouts => {
                "method=milliseconds pairs separated by commas, each method once, a method as \
                 Service.method or a bare method of any service, milliseconds whole and at least 1: \
                 Echo.echo=200,slow=2000 (in the file also a table: { \"Echo.echo\" = 200 })"
            }
            Setting::QpsLimit => {
                "a number of calls per second to each service, above 0 and at most 1000000000, or `off`"
            }
            Setting::HedgePercentile => {
                "a number between 0 and 1, both excluded, or `off`: 0.95 sends an idempotent call to a \
                 second node once it has waited longer than 95% of recent calls took"
            }
            Setting::BreakerFailures => "a whole number of failures in a row, at least 1",
            Setting::BreakerErrorRate => {
                "a number above 0 and at most 1: 0.5 opens a node's breaker when half its recent calls fail"
            }
            Setting::ServerTlsMode => "`off`, `optional` (TLS and plaintext on one port) or `required`",
            Setting::ServerTlsClientAuth => "`none`, `optional` or `required` (client certificates)",
            Setting::ServerTlsCert | Setting::ClientTlsCert => "the path of a PEM certificate chain",
            Setting::ServerTlsKey | Setting::ClientTlsKey => "the path of a PEM private key",
            Setting::ServerTlsClientCa | Setting::ClientTlsCa => {
                "the path of a PEM bundle of CA certificates"
            }
            Setting::ClientTlsServerName => "the DNS name or IP address server certificates must name",
        }
    }

    /// The setting an environment variable names, if it is one of probe's.
    pub fn from_env_var(name: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|setting| setting.env_var() == name)
    }

    /// Whether a value of this setting may hold a password, so errors must not echo it.
    pub(super) fn is_secret_url(self) -> bool {
        matches!(self, Setting::Redis | Setting::MySql)
    }

    /// Whether its whole value is a secret, never shown.
    pub(super) fn is_secret(self) -> bool {
        matches!(self, Setting::AppCredential | Setting::ZkOperatorSecret)
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (`{}`)", self.env_var(), self.file_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::BalancerKind;

    #[test]
    fn env_vars_and_file_keys_are_unique_and_follow_one_naming_rule() {
        for (i, a) in Setting::ALL.iter().enumerate() {
            assert_eq!(Setting::from_env_var(a.env_var()), Some(*a));
            // The key, or the key with its table where the key alone says too little
            // (`PROBE_SERVER_TAGS`, `PROBE_CLIENT_TAGS`, `PROBE_CLIENT_QPS_LIMIT`).
            let key = a.file_key().rsplit('.').next().unwrap_or_default();
            let name = a.env_var().strip_prefix("PROBE_").unwrap().to_lowercase();
            assert!(name == key || name == a.file_key().replace('.', "_"), "{a:?}");
            for b in &Setting::ALL[i + 1..] {
                assert_ne!(a.env_var(), b.env_var());
                assert_ne!(a.file_key(), b.file_key());
            }
        }
        assert_eq!(Setting::from_env_var("PROBE_ZK_PORT"), None);
    }

    #[test]
    fn tier_hint_names_every_tier() {
        assert_eq!(crate::rules::MAX_TIER, 2, "Setting::ServerTier's text names tiers 0 to 2");
        assert!(Setting::ServerTier.expected().contains("1 and 2 (backups)"));
    }

    #[test]
    fn balancer_hint_lists_every_balancer() {
        for kind in BalancerKind::ALL {
            assert!(Setting::Balancer.expected().contains(kind.as_str()), "{kind}");
        }
    }
}
