//! The host name the default env is decided on: what the Python design computes with
//! `socket.getfqdn(socket.gethostname())`, and its rule `re.match('^prod\d+$', name)`.
//!
//! CPython's `getfqdn(name)`: strip `name`; an empty name, `0.0.0.0` or `::` means the local host
//! name; then `gethostbyaddr(name)` (resolve the name, then look the first address up in reverse)
//! and take the first of `[hostname] + aliases` that contains a dot, else `hostname`; when the
//! lookup fails, `name` itself. The [`Resolver`] does the lookup, so tests inject their own.

use std::net::{IpAddr, ToSocketAddrs};

use crate::registry::layout::Env;

/// What `gethostbyaddr` returns that `getfqdn` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The official name of the address.
    pub name: String,
    /// Its other names.
    pub aliases: Vec<String>,
}

/// A host lookup as CPython's `socket.gethostbyaddr(name)` does it.
pub trait Resolver {
    /// The entry of the first address `name` resolves to, looked up in reverse; `None` when either
    /// step fails (Python raises `socket.herror` or `gaierror` then).
    fn host_by_addr(&self, name: &str) -> Option<HostEntry>;
}

/// The system resolver: `getaddrinfo` for the first address, `getnameinfo` with `NI_NAMEREQD` for
/// its name (glibc answers both from the same sources `gethostbyaddr` uses), and the aliases of the
/// `/etc/hosts` line that gave that name (`getnameinfo` does not return aliases).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn host_by_addr(&self, name: &str) -> Option<HostEntry> {
        let ip = (name, 0).to_socket_addrs().ok()?.next()?.ip();
        let official = dns_lookup::lookup_addr(&ip).ok()?;
        let aliases = std::fs::read_to_string("/etc/hosts")
            .map(|hosts| hosts_aliases(&hosts, ip, &official))
            .unwrap_or_default();
        Some(HostEntry { name: official, aliases })
    }
}

/// The aliases of the first line of an `/etc/hosts` text for `ip`, when that line names `official`
/// first (the line glibc's `gethostbyaddr` answers from).
fn hosts_aliases(hosts: &str, ip: IpAddr, official: &str) -> Vec<String> {
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(Ok(addr)) = words.next().map(str::parse::<IpAddr>) else { continue };
        if addr != ip {
            continue;
        }
        let names: Vec<&str> = words.collect();
        return match names.split_first() {
            Some((first, rest)) if *first == official => rest.iter().map(|s| (*s).to_owned()).collect(),
            _ => Vec::new(),
        };
    }
    Vec::new()
}

/// CPython's `socket.getfqdn(name)`, with `local` for `socket.gethostname()`.
pub fn getfqdn(name: &str, local: impl FnOnce() -> Option<String>, resolver: &dyn Resolver) -> String {
    let mut name = name.trim().to_owned();
    if name.is_empty() || name == "0.0.0.0" || name == "::" {
        name = local().unwrap_or_default();
    }
    match resolver.host_by_addr(&name) {
        Some(entry) => std::iter::once(&entry.name)
            .chain(&entry.aliases)
            .find(|n| n.contains('.'))
            .unwrap_or(&entry.name)
            .clone(),
        None => name,
    }
}

/// The Python design's env of a machine whose fully qualified name is `fqdn`:
/// `re.match('^prod\d+$', fqdn)` (see [`Env::from_hostname`]).
pub fn env_for_fqdn(fqdn: &str) -> Env {
    Env::from_hostname(fqdn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver that knows one name.
    struct Fake(&'static str, HostEntry);

    impl Resolver for Fake {
        fn host_by_addr(&self, name: &str) -> Option<HostEntry> {
            (name == self.0).then(|| self.1.clone())
        }
    }

    fn entry(name: &str, aliases: &[&str]) -> HostEntry {
        HostEntry { name: name.to_owned(), aliases: aliases.iter().map(|a| (*a).to_owned()).collect() }
    }

    #[test]
    fn a_host_whose_full_name_has_a_domain_is_dev() {
        let dns = Fake("prod3", entry("prod3.example.com", &["prod3"]));
        let fqdn = getfqdn("prod3", || None, &dns);
        assert_eq!((fqdn.as_str(), env_for_fqdn(&fqdn)), ("prod3.example.com", Env::Dev));
        // The first name with a dot wins, an alias too.
        let hosts = Fake("prod3", entry("prod3", &["other", "prod3.example.com"]));
        assert_eq!(getfqdn("prod3", || None, &hosts), "prod3.example.com");
    }

    #[test]
    fn a_host_whose_full_name_is_itself_is_prod() {
        let dns = Fake("prod3", entry("prod3", &[]));
        let fqdn = getfqdn("prod3", || None, &dns);
        assert_eq!((fqdn.as_str(), env_for_fqdn(&fqdn)), ("prod3", Env::Prod));
        // No answer: the name itself.
        assert_eq!(getfqdn("prod4", || None, &dns), "prod4");
        // No dotted name: the official one, whatever was asked (Python gives `localhost` so).
        let loopback = Fake("vm", entry("localhost", &[]));
        assert_eq!(getfqdn("vm", || None, &loopback), "localhost");
    }

    #[test]
    fn empty_and_any_addresses_mean_the_local_host() {
        let dns = Fake("prod7", entry("prod7", &[]));
        for name in ["", "  ", "0.0.0.0", "::"] {
            assert_eq!(getfqdn(name, || Some("prod7".to_owned()), &dns), "prod7", "{name:?}");
        }
    }

    #[test]
    fn the_prod_rule_is_pythons_re_match() {
        for prod in ["prod1", "prod042", "prod3\n", "prod\u{0663}"] {
            assert_eq!(env_for_fqdn(prod), Env::Prod, "{prod:?}");
        }
        for dev in ["prod", "prod1a", "myprod1", "prod1.example.com", "prod1\n\n", "Prod1", "prod1 ", ""] {
            assert_eq!(env_for_fqdn(dev), Env::Dev, "{dev:?}");
        }
    }

    #[test]
    fn aliases_come_from_the_hosts_line_that_named_the_address() {
        let hosts = "# comment\n127.0.0.1 localhost\n10.0.0.3 prod3 prod3.example.com # x\n10.0.0.3 other\n";
        let ip: IpAddr = "10.0.0.3".parse().unwrap();
        assert_eq!(hosts_aliases(hosts, ip, "prod3"), ["prod3.example.com"]);
        assert!(hosts_aliases(hosts, ip, "dns-name").is_empty());
        assert!(hosts_aliases(hosts, "10.9.9.9".parse().unwrap(), "x").is_empty());
    }
}
