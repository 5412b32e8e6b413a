//! What the machine tells about itself: its host name (for the default env) and the address a
//! server registers under when none is configured.

use std::fs;
use std::net::{IpAddr, ToSocketAddrs};

use std::fmt;

use super::error::{ConfigError, Origin};
use super::fqdn::{Resolver, SystemResolver, env_for_fqdn, getfqdn};
use crate::registry::layout::Env;

/// The machine's host name, as Python's `socket.gethostname()` gives it: the kernel's
/// `/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `/etc/hostname`.
pub fn hostname() -> Option<String> {
    read_trimmed("/proc/sys/kernel/hostname")
        .or_else(|| {
            std::env::var("HOSTNAME").ok().map(|name| name.trim().to_owned()).filter(|n| !n.is_empty())
        })
        .or_else(|| read_trimmed("/etc/hostname"))
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// How a config's env was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvSource {
    /// `PROBE_ENV`, or `env` in a config file.
    Setting(Origin),
    /// The Python design's rule on the fully qualified host name.
    HostRule(HostRule),
}

impl fmt::Display for EnvSource {
    /// `PROBE_ENV`, `env in probe.toml`, or the host rule with the names it read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvSource::Setting(Origin::File { path, .. }) => write!(f, "env in {}", path.display()),
            EnvSource::Setting(_) => f.write_str("PROBE_ENV"),
            EnvSource::HostRule(rule) => write!(
                f,
                "host rule: fully qualified name {:?} (of host name {:?}) {} ^prod\\d+$",
                rule.fqdn,
                rule.hostname.as_deref().unwrap_or(""),
                if rule.env == Env::Prod { "matches" } else { "does not match" }
            ),
        }
    }
}

/// The Python design's default env: `prod` when `socket.getfqdn(socket.gethostname())` matches
/// `^prod\d+$`, else `dev`; with the names it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// The env the rule gives.
    pub env: Env,
    /// `socket.gethostname()`; `None` when the machine has none.
    pub hostname: Option<String>,
    /// The fully qualified name the rule matched, as `socket.getfqdn` computes it.
    pub fqdn: String,
}

impl HostRule {
    /// The rule on this machine, with the system resolver: looked up once per process, as the
    /// Python design does at start.
    pub fn of_this_machine() -> HostRule {
        static RULE: std::sync::OnceLock<HostRule> = std::sync::OnceLock::new();
        RULE.get_or_init(|| HostRule::with(hostname(), &SystemResolver)).clone()
    }

    /// The rule for a machine named `hostname`, looked up with `resolver`.
    pub fn with(hostname: Option<String>, resolver: &dyn Resolver) -> HostRule {
        let fqdn = getfqdn(hostname.as_deref().unwrap_or(""), || hostname.clone(), resolver);
        HostRule { env: env_for_fqdn(&fqdn), hostname, fqdn }
    }
}

/// The address a server registers under: `explicit` if given, else the bind address if it is a
/// specific one, else what the host name resolves to (see [`pick_address`]).
pub(super) fn advertise_host(explicit: Option<&str>, bind: IpAddr) -> Result<String, ConfigError> {
    if let Some(host) = explicit {
        return Ok(host.to_owned());
    }
    if !bind.is_unspecified() {
        return Ok(bind.to_string());
    }
    let Some(name) = hostname() else {
        return Err(ConfigError::NoAdvertiseHost { problem: "the machine has no host name".to_owned() });
    };
    let addrs = (name.as_str(), 0).to_socket_addrs().map_err(|err| ConfigError::NoAdvertiseHost {
        problem: format!("the host name {name:?} does not resolve ({err})"),
    })?;
    let addrs: Vec<IpAddr> = addrs.map(|addr| addr.ip()).collect();
    match pick_address(&addrs) {
        Some(ip) => Ok(ip.to_string()),
        None => Err(ConfigError::NoAdvertiseHost {
            problem: format!(
                "the host name {name:?} resolves to no address other machines can reach ({addrs:?})"
            ),
        }),
    }
}

/// The first IPv4 address that is not loopback, link-local or unspecified; failing that, the first
/// such IPv6 address.
pub(super) fn pick_address(addrs: &[IpAddr]) -> Option<IpAddr> {
    let reachable = |ip: &&IpAddr| match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()),
        IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unicast_link_local() || v6.is_unspecified()),
    };
    let first = |v4: bool| addrs.iter().filter(reachable).find(|ip| ip.is_ipv4() == v4).copied();
    first(true).or_else(|| first(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    /// A resolver that resolves nothing: every name is its own full name.
    struct NoDns;

    impl Resolver for NoDns {
        fn host_by_addr(&self, _: &str) -> Option<super::super::fqdn::HostEntry> {
            None
        }
    }

    #[test]
    fn env_follows_the_full_host_name_like_the_python_design() {
        let env = |name: Option<&str>| HostRule::with(name.map(str::to_owned), &NoDns).env;
        assert_eq!(env(Some("prod1")), Env::Prod);
        assert_eq!(env(Some("prod23")), Env::Prod);
        assert_eq!(env(Some("prod")), Env::Dev);
        assert_eq!(env(Some("prod1.example.com")), Env::Dev);
        assert_eq!(env(Some("web-prod1")), Env::Dev);
        assert_eq!(env(None), Env::Dev);
        let rule = HostRule::with(Some("prod3".to_owned()), &NoDns);
        let text = EnvSource::HostRule(rule).to_string();
        assert_eq!(
            text,
            r#"host rule: fully qualified name "prod3" (of host name "prod3") matches ^prod\d+$"#
        );
    }

    #[test]
    fn picks_a_reachable_address_preferring_ipv4() {
        let debian = ips(&["127.0.1.1", "fe80::1", "2001:db8::7", "10.0.0.7"]);
        assert_eq!(pick_address(&debian), Some("10.0.0.7".parse().unwrap()));
        let v6 = ips(&["::1", "169.254.0.3", "2001:db8::7"]);
        assert_eq!(pick_address(&v6), Some("2001:db8::7".parse().unwrap()));
        assert_eq!(pick_address(&ips(&["127.0.1.1", "::1"])), None);
    }

    #[test]
    fn an_explicit_host_or_a_specific_bind_address_wins_over_resolution() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert_eq!(advertise_host(Some("node7.internal"), any).unwrap(), "node7.internal");
        assert_eq!(advertise_host(None, "10.1.2.3".parse().unwrap()).unwrap(), "10.1.2.3");
    }

    #[test]
    fn no_advertise_host_says_what_to_set() {
        let err = ConfigError::NoAdvertiseHost { problem: "the host name \"box\" does not resolve".into() };
        assert_eq!(
            err.to_string(),
            "cannot tell which address to register this server at: the host name \"box\" does not \
             resolve; set PROBE_ADVERTISE_HOST=<ip> or `advertise_host` under [server] in the config file"
        );
    }
}
