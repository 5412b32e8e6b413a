//! The ZooKeeper connect string: `host:port[,host:port...][/chroot]`.

use std::fmt;
use std::str::FromStr;

use super::error::InvalidValue;
use super::url::split_host_port;

/// The port a ZooKeeper host listens on when the connect string leaves it out.
pub const ZK_DEFAULT_PORT: u16 = 2181;

/// A checked ZooKeeper connect string: the ensemble's hosts and an optional chroot path under which
/// every path (`/services/...`) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkConnect {
    hosts: Vec<(String, u16)>,
    chroot: Option<String>,
}

impl ZkConnect {
    /// The ensemble's `(host, port)` pairs, in the order given.
    pub fn hosts(&self) -> &[(String, u16)] {
        &self.hosts
    }

    /// The chroot path (`/probe`), if any.
    pub fn chroot(&self) -> Option<&str> {
        self.chroot.as_deref()
    }
}

impl FromStr for ZkConnect {
    type Err = InvalidValue;

    /// Parses `h1:2181,h2:2181/chroot`; a host without a port gets 2181, IPv6 hosts are written
    /// `[addr]:port`, and the chroot (after the last host) must be an absolute path.
    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let text = text.trim();
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(InvalidValue::new(format!("it starts with the scheme `{scheme}://`: leave it out")));
        }
        let (hosts_text, chroot) = match text.find('/') {
            Some(slash) => (&text[..slash], Some(&text[slash..])),
            None => (text, None),
        };
        if hosts_text.trim().is_empty() {
            return Err(InvalidValue::new("it names no host"));
        }
        let mut hosts = Vec::new();
        for item in hosts_text.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(InvalidValue::new("it has an empty host between commas"));
            }
            let (host, port) = split_host_port(item)?;
            hosts.push((host.to_owned(), port.unwrap_or(ZK_DEFAULT_PORT)));
        }
        let chroot = chroot.map(check_chroot).transpose()?.flatten();
        Ok(ZkConnect { hosts, chroot })
    }
}

/// `None` for `/`; an error for empty segments or a trailing `/`.
fn check_chroot(chroot: &str) -> Result<Option<String>, InvalidValue> {
    if chroot == "/" {
        return Ok(None);
    }
    if chroot.ends_with('/') || chroot.contains("//") || chroot.contains(char::is_whitespace) {
        return Err(InvalidValue::new(format!(
            "the chroot `{chroot}` is not a ZooKeeper path: /name[/name...] without empty parts or spaces"
        )));
    }
    Ok(Some(chroot.to_owned()))
}

impl fmt::Display for ZkConnect {
    /// The connect string, in the form ZooKeeper clients take.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (host, port)) in self.hosts.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            match host.contains(':') {
                true => write!(f, "{sep}[{host}]:{port}")?,
                false => write!(f, "{sep}{host}:{port}")?,
            }
        }
        f.write_str(self.chroot.as_deref().unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        text.parse::<ZkConnect>().err().map(|e| e.problem().to_owned()).unwrap_or_default()
    }

    #[test]
    fn parses_several_hosts_default_ports_and_a_chroot() {
        let zk: ZkConnect = "zk1:2181, zk2 ,[fe80::1]:2281/probe/dev".parse().unwrap();
        let hosts: Vec<_> = zk.hosts().iter().map(|(h, p)| (h.as_str(), *p)).collect();
        assert_eq!(hosts, [("zk1", 2181), ("zk2", 2181), ("fe80::1", 2281)]);
        assert_eq!(zk.chroot(), Some("/probe/dev"));
        assert_eq!(zk.to_string(), "zk1:2181,zk2:2181,[fe80::1]:2281/probe/dev");
        let root: ZkConnect = "127.0.0.1:2181/".parse().unwrap();
        assert_eq!((root.chroot(), root.to_string().as_str()), (None, "127.0.0.1:2181"));
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(problem(""), "it names no host");
        assert_eq!(problem("/probe"), "it names no host");
        assert_eq!(problem("zk1:2181,,zk2:2181"), "it has an empty host between commas");
        assert_eq!(problem("zk1:2181,"), "it has an empty host between commas");
        assert_eq!(problem("zk1:abc"), "the port `abc` is not a number from 1 to 65535");
        assert_eq!(problem("zk1:65536"), "the port `65536` is not a number from 1 to 65535");
        assert_eq!(problem("zk://zk1:2181"), "it starts with the scheme `zk://`: leave it out");
        assert_eq!(
            problem("zk1:2181/probe/"),
            "the chroot `/probe/` is not a ZooKeeper path: /name[/name...] without empty parts or spaces"
        );
    }
}
