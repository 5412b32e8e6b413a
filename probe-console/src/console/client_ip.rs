//! Which client a request comes from, for the limit on failed logins ([`limit`](super::limit)).
//!
//! The client is the peer address of the connection, unless that peer is one of the configured
//! trusted proxies (`--trusted-proxy CIDR`, `PROBE_CONSOLE_TRUSTED_PROXIES`): then it is the
//! rightmost address in `X-Forwarded-For` that is not a trusted proxy. The entries to its left were
//! written by the client itself and are never believed; a header from an untrusted peer is
//! ignored. CIDR blocks come from the `ipnet` crate.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

use super::state::ConsoleState;

/// The `X-Forwarded-For` header.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's IP address (`None` when the server gives no peer address, as in `oneshot`
/// tests: such requests share one bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// The client of a request with these `extensions` (where axum's [`ConnectInfo`] holds the
    /// peer) and `headers`, believing `X-Forwarded-For` only from `trusted` peers.
    pub fn of(extensions: &Extensions, headers: &HeaderMap, trusted: &TrustedProxies) -> Self {
        let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
        ClientIp(peer.map(|peer| trusted.client(peer, headers)))
    }
}

impl FromRequestParts<ConsoleState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(&parts.extensions, &parts.headers, state.limiter().trusted()))
    }
}

/// The proxies whose `X-Forwarded-For` is believed; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts the proxies in `nets`.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        TrustedProxies(nets.into_iter().collect())
    }

    /// Whether `ip` is a trusted proxy (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer`: `peer` itself unless it is trusted; else the rightmost
    /// `X-Forwarded-For` entry that is not trusted. An entry that is no address ends the walk at
    /// the proxy that passed it on; a header of trusted proxies only names its leftmost entry.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        if !self.contains(peer) {
            return client;
        }
        let entries: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for entry in entries.iter().rev() {
            let Some(ip) = parse_entry(entry) else { return client };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: `ip`, `ip:port` or `[ipv6]:port`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated CIDR blocks or addresses: `10.0.0.0/8, 127.0.0.1, ::1`.
    fn from_str(text: &str) -> Result<Self, String> {
        let nets = text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(parse_net);
        nets.collect::<Result<Vec<_>, _>>().map(TrustedProxies)
    }
}

/// A CIDR block (`10.0.0.0/8`) or one address (`10.0.0.7`, as `/32` or `/128`).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not an address or a CIDR block such as 10.0.0.0/8 or fd00::/8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let trusted: TrustedProxies = "10.0.0.0/8, ::1".parse().unwrap();
        let spoofed = xff(&["1.2.3.4"]);
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(trusted.client(ip("203.0.113.9"), &spoofed), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::default().client(ip("10.0.0.1"), &spoofed), ip("10.0.0.1"));
        // Through a trusted proxy: the rightmost untrusted entry; what the client wrote is ignored.
        let chain = xff(&["6.6.6.6, 198.51.100.7", "10.1.1.1"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &chain), ip("198.51.100.7"));
        assert_eq!(trusted.client(ip("::1"), &xff(&["198.51.100.7:5123"])), ip("198.51.100.7"));
        assert_eq!(trusted.client(ip("::ffff:10.0.0.1"), &xff(&["[2001:db8::1]:80"])), ip("2001:db8::1"));
        // No header, only proxies, or garbage: the last hop the trusted proxies vouch for.
        assert_eq!(trusted.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
        assert_eq!(trusted.client(ip("10.0.0.1"), &xff(&["10.0.0.3, 10.0.0.2"])), ip("10.0.0.3"));
        assert_eq!(trusted.client(ip("10.0.0.1"), &xff(&["1.1.1.1, junk, 10.0.0.2"])), ip("10.0.0.2"));
    }

    #[test]
    fn proxies_are_cidr_blocks_or_addresses() {
        let trusted: TrustedProxies = " 192.168.0.0/16 ,127.0.0.1,".parse().unwrap();
        assert!(trusted.contains(ip("192.168.7.7")) && trusted.contains(ip("127.0.0.1")));
        assert!(!trusted.contains(ip("127.0.0.2")));
        assert_eq!("".parse::<TrustedProxies>().unwrap(), TrustedProxies::default());
        let err = "10.0.0.0/33".parse::<TrustedProxies>().unwrap_err();
        assert!(err.contains("`10.0.0.0/33` is not an address or a CIDR block"), "{err}");
    }
}
