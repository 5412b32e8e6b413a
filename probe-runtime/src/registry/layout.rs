//! The registry layout, byte-compatible with the Python "thriftprobe" design.
//!
//! - ZooKeeper: persistent `/services/{env}/{appkey}`, one EPHEMERAL child per provider named
//!   `{service}_{ip}_{port}` whose data is a UTF-8 JSON [`NodeData`].
//! - Redis: hash `thriftprobe_{env}`, field `{appkey}|{env}|{service}|{ip}|{port}`, the same JSON.
//! - MySQL: table `serviceapp` with a unique `appkey`.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use regex::Regex;

use serde::Serialize;

use super::node_data::{Fields, read_fields};
pub use super::node_data::{NodeProblem, UNITS_PER_WEIGHT, UnusableNode, UnusableReason, Valid, Weight};

/// Root of every service path in ZooKeeper.
pub const ZK_ROOT: &str = "/services";
/// Prefix of the Redis hash holding node settings; the env follows it.
pub const REDIS_HASH_PREFIX: &str = "thriftprobe_";
/// The MySQL table of registered appkeys.
pub const APPS_TABLE: &str = "serviceapp";
/// Weight a provider gets when Redis holds no settings for it.
pub const DEFAULT_WEIGHT: u32 = 10;

/// A deployment environment. Environments never see each other's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Env {
    /// Development and testing.
    Dev,
    /// Production.
    Prod,
}

impl Env {
    /// The env the Python design derives from a fully qualified host name:
    /// `re.match('^prod\d+$', name)` gives `prod` (`\d` is any Unicode decimal digit, and `$` also
    /// matches before a final newline), anything else `dev`. The name to pass is the one
    /// `socket.getfqdn(socket.gethostname())` gives: see [`crate::config::HostRule`].
    pub fn from_hostname(hostname: &str) -> Env {
        static PROD: OnceLock<Option<Regex>> = OnceLock::new();
        let prod = PROD.get_or_init(|| Regex::new(r"\Aprod\d+\n?\z").ok());
        match prod {
            Some(prod) if prod.is_match(hostname) => Env::Prod,
            _ => Env::Dev,
        }
    }

    /// The name used in paths and keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Env::Dev => "dev",
            Env::Prod => "prod",
        }
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Env {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dev" => Ok(Env::Dev),
            "prod" => Ok(Env::Prod),
            _ => Err(NameError { what: "env", value: s.to_owned(), rule: "`dev` or `prod`" }),
        }
    }
}

/// A name that breaks the layout's rules.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: it must be {rule}")]
pub struct NameError {
    what: &'static str,
    value: String,
    rule: &'static str,
}

crate::debug_as_display!(NameError);

/// Whether `name` matches `^\w+$` as Python's `re` reads it for `str`: letters, digits, underscore.
pub fn is_word(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn check_word(what: &'static str, value: &str) -> Result<(), NameError> {
    if is_word(value) {
        Ok(())
    } else {
        Err(NameError { what, value: value.to_owned(), rule: "letters, digits or underscores (^\\w+$)" })
    }
}

/// Checks an appkey against `^\w+$`.
pub fn check_appkey(appkey: &str) -> Result<(), NameError> {
    check_word("appkey", appkey)
}

/// Checks a service name against `^\w+$`.
pub fn check_service_name(service: &str) -> Result<(), NameError> {
    check_word("service name", service)
}

/// ZooKeeper path of an app's providers: `/services/{env}/{appkey}`.
pub fn zk_app_path(env: Env, appkey: &str) -> String {
    format!("{ZK_ROOT}/{env}/{appkey}")
}

/// ZooKeeper path of an env: `/services/{env}`.
pub fn zk_env_path(env: Env) -> String {
    format!("{ZK_ROOT}/{env}")
}

/// Redis hash of an env's node settings: `thriftprobe_{env}`.
pub fn redis_hash(env: Env) -> String {
    format!("{REDIS_HASH_PREFIX}{env}")
}

/// Redis hash of the client reports of `env`: `probe_clients_{env}`, one field per client and
/// service (which rule revision each runs).
pub fn clients_key(env: Env) -> String {
    format!("probe_clients_{env}")
}

/// Redis key of a node's latest metrics window: `probe_metrics:{<redis field>}`. The braces are
/// a Redis Cluster hash tag, so the window and its history share a slot.
pub fn metrics_key(key: &NodeKey) -> String {
    format!("probe_metrics:{{{}}}", key.redis_field())
}

/// Redis key of a node's metrics history list: `probe_metrics_history:{<redis field>}`.
pub fn metrics_history_key(key: &NodeKey) -> String {
    format!("probe_metrics_history:{{{}}}", key.redis_field())
}

/// Identity of one provider node in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeKey {
    env: Env,
    appkey: String,
    service: String,
    ip: String,
    port: u16,
}

impl NodeKey {
    /// A node key, after checking appkey and service name against `^\w+$`.
    pub fn new(env: Env, appkey: &str, service: &str, ip: &str, port: u16) -> Result<Self, NameError> {
        check_appkey(appkey)?;
        check_service_name(service)?;
        if ip.is_empty() || ip.contains(['/', '|']) {
            return Err(NameError {
                what: "ip",
                value: ip.to_owned(),
                rule: "an address without '/' or '|'",
            });
        }
        Ok(NodeKey { env, appkey: appkey.to_owned(), service: service.to_owned(), ip: ip.to_owned(), port })
    }

    /// Parses a Redis field `{appkey}|{env}|{service}|{ip}|{port}`.
    pub fn from_redis_field(field: &str) -> Result<Self, NameError> {
        let bad = || NameError {
            what: "redis field",
            value: field.to_owned(),
            rule: "`appkey|env|service|ip|port`",
        };
        let parts: Vec<&str> = field.split('|').collect();
        let [appkey, env, service, ip, port] = parts.as_slice() else { return Err(bad()) };
        let port = port.parse().map_err(|_| bad())?;
        NodeKey::new(env.parse()?, appkey, service, ip, port)
    }

    /// Parses the child name `{service}_{ip}_{port}` of `/services/{env}/{appkey}`. Service names may
    /// contain `_`, so the ip and port are taken from the right.
    pub fn from_zk_child(env: Env, appkey: &str, child: &str) -> Result<Self, NameError> {
        let bad = || NameError { what: "node name", value: child.to_owned(), rule: "`service_ip_port`" };
        let (rest, port) = child.rsplit_once('_').ok_or_else(bad)?;
        let (service, ip) = rest.rsplit_once('_').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        NodeKey::new(env, appkey, service, ip, port)
    }

    /// The environment.
    pub fn env(&self) -> Env {
        self.env
    }
    /// The appkey.
    pub fn appkey(&self) -> &str {
        &self.appkey
    }
    /// The Thrift service name.
    pub fn service(&self) -> &str {
        &self.service
    }
    /// The provider's address as registered.
    pub fn ip(&self) -> &str {
        &self.ip
    }
    /// The provider's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The EPHEMERAL node's name: `{service}_{ip}_{port}`.
    pub fn zk_child(&self) -> String {
        format!("{}_{}_{}", self.service, self.ip, self.port)
    }

    /// The EPHEMERAL node's full path.
    pub fn zk_node_path(&self) -> String {
        format!("{}/{}", zk_app_path(self.env, &self.appkey), self.zk_child())
    }

    /// The field in [`redis_hash`] holding this node's settings.
    pub fn redis_field(&self) -> String {
        format!("{}|{}|{}|{}|{}", self.appkey, self.env, self.service, self.ip, self.port)
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}@{}:{}", self.env, self.appkey, self.service, self.ip, self.port)
    }
}

/// The value of [`NodeData::headers`] of a provider that reads THeader.
pub const HEADERS_THEADER: &str = "theader";

/// The JSON stored in the ephemeral node and in Redis. The first four fields are the Python design's,
/// read as the Python client reads them (see [`NodeData::from_json`]); the optional ones are probe's
/// additions, which Python clients ignore. Unknown fields are kept so a rewrite by an operator tool
/// loses nothing, and `weight` and `valid` keep the form they were written in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeData {
    /// Address clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: u16,
    /// Relative share of calls (an integer, a float or a boolean); 0 takes the node out of rotation.
    pub weight: Weight,
    /// On (`1`, `true`, `1.0`) while serving; anything else, `0` when an operator switched it off.
    pub valid: Valid,
    /// Thrift protocol (`binary` or `compact`); absent on Python providers, which speak binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Transport (`framed` or `buffered`); absent on Python providers, which are unframed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The provider's version, as traffic rules name it (`[server] version`; by default probe's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The provider's tags (`zone`, `group`, any key), as tag affinity compares them.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Priority tier: 0 primary (the default), 1 and 2 backups, which take calls only as the tiers
    /// below them lose health.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<u8>,
    /// Per-call metadata the provider takes: `"theader"` when it reads Apache's header transport
    /// (probe providers do), so probe clients send calls with their headers. The provider still
    /// takes `protocol`/`transport` calls on the same port (Python and Apache clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<String>,
    /// The methods of the service, as the provider declares them (operators' tools check limits
    /// against them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// The request limits an operator set on the node ([`RequestLimits`](crate::limits::RequestLimits)
    /// as JSON), kept as written: the provider checks and applies them, reporting a bad document
    /// instead of dropping the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<serde_json::Value>,
    /// The caller policy an operator set on the node ([`CallerPolicy`](crate::security::CallerPolicy)
    /// as JSON: `allow`, `unauthenticated`), kept as written like `limits`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callers: Option<serde_json::Value>,
    /// Provider process id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Start time, seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// Fields this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl NodeData {
    /// The settings a provider gets when Redis holds none: weight 10, valid 1.
    pub fn new(host: &str, port: u16) -> Self {
        NodeData {
            host: host.to_owned(),
            port,
            weight: Weight::default(),
            valid: Valid::on(),
            protocol: None,
            transport: None,
            version: None,
            tags: std::collections::BTreeMap::new(),
            tier: None,
            headers: None,
            methods: Vec::new(),
            limits: None,
            callers: None,
            pid: None,
            started_at: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Whether clients may route calls here: on (`valid == 1` as Python compares) and with a
    /// positive weight.
    pub fn in_rotation(&self) -> bool {
        self.valid.is_on() && self.weight.is_positive()
    }

    /// Parses node JSON as the Python client reads it: any encoding `json.loads` detects, any
    /// spacing and key order, `valid` on when it equals 1 (`1`, `true`, `1.0`), `weight` any
    /// non-negative number or boolean, unknown fields kept. Data that would make the Python client
    /// raise (not JSON, not an object, a missing field, a weight that is not a number, a host that
    /// is not a string, a port that is not one) is a [`NodeProblem`]. probe's own fields are taken
    /// when they have their type, else kept among the unknown ones.
    pub fn from_json(bytes: &[u8]) -> Result<Self, NodeProblem> {
        let Fields { host, port, weight, valid, mut rest } = read_fields(bytes)?;
        let string = |rest: &mut serde_json::Map<String, serde_json::Value>, name: &str| {
            take(rest, name, |v| v.as_str().map(str::to_owned))
        };
        Ok(NodeData {
            host,
            port,
            weight,
            valid,
            protocol: string(&mut rest, "protocol"),
            transport: string(&mut rest, "transport"),
            version: string(&mut rest, "version"),
            tags: take(&mut rest, "tags", |v| {
                v.as_object()?.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect()
            })
            .unwrap_or_default(),
            tier: take(&mut rest, "tier", |v| v.as_u64().and_then(|n| u8::try_from(n).ok())),
            headers: string(&mut rest, "headers"),
            methods: take(&mut rest, "methods", |v| {
                v.as_array()?.iter().map(|m| m.as_str().map(str::to_owned)).collect()
            })
            .unwrap_or_default(),
            limits: take(&mut rest, "limits", |v| v.is_object().then(|| v.clone())),
            callers: take(&mut rest, "callers", |v| v.is_object().then(|| v.clone())),
            pid: take(&mut rest, "pid", |v| v.as_u64().and_then(|n| u32::try_from(n).ok())),
            started_at: take(&mut rest, "started_at", serde_json::Value::as_u64),
            extra: rest,
        })
    }

    /// Whether the provider reads THeader frames (`"headers": "theader"`).
    pub fn speaks_theader(&self) -> bool {
        self.headers.as_deref() == Some(HEADERS_THEADER)
    }

    /// Serialises node JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings, numbers and a JSON map cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Removes `name` from `rest` when `read` takes its value; leaves it there otherwise.
fn take<T>(
    rest: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    read: impl Fn(&serde_json::Value) -> Option<T>,
) -> Option<T> {
    let value = read(rest.get(name)?)?;
    rest.remove(name);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_from_hostname_follows_python_rule() {
        assert_eq!(Env::from_hostname("prod1"), Env::Prod);
        assert_eq!(Env::from_hostname("prod042"), Env::Prod);
        assert_eq!(Env::from_hostname("prod"), Env::Dev);
        assert_eq!(Env::from_hostname("prod1a"), Env::Dev);
        assert_eq!(Env::from_hostname("myprod1"), Env::Dev);
        assert_eq!(Env::from_hostname("build-box"), Env::Dev);
    }

    #[test]
    fn paths_and_fields_match_python_design() {
        let key = NodeKey::new(Env::Prod, "order_app", "Order_Service", "192.168.1.2", 8081).unwrap();
        assert_eq!(key.zk_node_path(), "/services/prod/order_app/Order_Service_192.168.1.2_8081");
        assert_eq!(redis_hash(Env::Prod), "thriftprobe_prod");
        assert_eq!(key.redis_field(), "order_app|prod|Order_Service|192.168.1.2|8081");
        assert_eq!(NodeKey::from_redis_field(&key.redis_field()).unwrap(), key);
        assert_eq!(NodeKey::from_zk_child(Env::Prod, "order_app", &key.zk_child()).unwrap(), key);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_appkey("app_1").is_ok());
        assert!(check_appkey("").is_err());
        let err = check_appkey("bad-key").unwrap_err();
        assert!(err.to_string().contains("bad-key"), "{err}");
        assert!(NodeKey::new(Env::Dev, "a", "S", "1.2.3.4|x", 1).is_err());
        assert!(NodeKey::from_redis_field("a|dev|S|1.2.3.4").is_err());
        assert!(NodeKey::from_redis_field("a|qa|S|1.2.3.4|1").is_err());
        assert!(NodeKey::from_zk_child(Env::Dev, "a", "S_1.2.3.4_port").is_err());
    }

    #[test]
    fn python_json_roundtrips_and_keeps_unknown_fields() {
        let python = br#"{"host": "10.1.1.1", "port": 8081, "weight": 20, "valid": 0, "zone": "b"}"#;
        let data = NodeData::from_json(python).unwrap();
        assert_eq!((data.weight, data.valid.is_on(), data.in_rotation()), (Weight::from(20), false, false));
        assert_eq!(data.protocol, None);
        let back: serde_json::Value = serde_json::from_slice(&data.to_json()).unwrap();
        assert_eq!(back["zone"], "b");
        assert_eq!(back.get("protocol"), None);
        let python = NodeData::from_json(br#"{"host": "h", "port": 1, "weight": 10, "valid": 1}"#).unwrap();
        assert_eq!(python, NodeData::new("h", 1));
    }
}
