//! Parsers of the scalar setting values, shared by the config file and the environment: a value
//! reads the same from `PROBE_PORT=9090` as from `port = 9090`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::error::InvalidValue;
use crate::balance::BalancerKind;
use crate::registry::layout::Env;

/// `dev` or `prod`.
pub(super) fn env(text: &str) -> Result<Env, InvalidValue> {
    text.parse().map_err(|_| InvalidValue::new("it is not an environment probe knows"))
}

/// A whole number of milliseconds, at least `min`.
pub(super) fn millis(text: &str, min: u64) -> Result<Duration, InvalidValue> {
    match text.parse::<u64>() {
        Ok(ms) if ms >= min => Ok(Duration::from_millis(ms)),
        Ok(ms) => Err(InvalidValue::new(format!("{ms} ms is too short"))),
        Err(_) => Err(InvalidValue::new("it is not a whole number of milliseconds")),
    }
}

/// A whole number, at least `min`.
pub(super) fn count(text: &str, min: usize) -> Result<usize, InvalidValue> {
    match text.parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        Ok(n) => Err(InvalidValue::new(format!("{n} is less than {min}"))),
        Err(_) => Err(InvalidValue::new("it is not a whole number")),
    }
}

/// `true` or `false`, in any case, or `1` or `0`.
pub(super) fn boolean(text: &str) -> Result<bool, InvalidValue> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(InvalidValue::new("it is neither true nor false")),
    }
}

/// A port, 0 included.
pub(super) fn port(text: &str) -> Result<u16, InvalidValue> {
    text.parse().map_err(|_| InvalidValue::new("it is not a port number"))
}

/// An IP address, with the port when one is given.
pub(super) fn bind(text: &str) -> Result<(IpAddr, Option<u16>), InvalidValue> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    match text.parse::<SocketAddr>() {
        Ok(addr) => Ok((addr.ip(), Some(addr.port()))),
        Err(_) => Err(InvalidValue::new("it is not an IP address or IP address and port")),
    }
}

/// An IP address and port, or `off` (in any case) for none.
pub(super) fn admin_addr(text: &str) -> Result<Option<SocketAddr>, InvalidValue> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match text.parse::<SocketAddr>() {
        Ok(addr) => Ok(Some(addr)),
        Err(_) if text.parse::<IpAddr>().is_ok() => Err(InvalidValue::new("it has no port")),
        Err(_) => Err(InvalidValue::new("it is not an IP address and port, nor `off`")),
    }
}

/// A host name or address: it lands in registry node names, which cannot hold `/`, `|` or spaces.
pub(super) fn host(text: &str) -> Result<String, InvalidValue> {
    match text.chars().find(|&c| !(c.is_alphanumeric() || "-._:%".contains(c))) {
        Some(bad) => Err(InvalidValue::new(format!("it has the character {bad:?}"))),
        None => Ok(text.to_owned()),
    }
}

/// A balancer name.
pub(super) fn balancer(text: &str) -> Result<BalancerKind, InvalidValue> {
    text.parse().map_err(|_| InvalidValue::new("probe has no balancer of that name"))
}

/// The share of calls retries may add, as [`crate::balance::RetryBudgetConfig::ratio`].
pub(super) fn ratio(text: &str) -> Result<f64, InvalidValue> {
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1000.0).contains(&ratio) => Ok(ratio),
        Ok(_) => Err(InvalidValue::new("it is out of range")),
        Err(_) => Err(InvalidValue::new("it is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem<T: std::fmt::Debug>(result: Result<T, InvalidValue>) -> String {
        result.unwrap_err().problem().to_owned()
    }

    #[test]
    fn parses_good_values() {
        assert_eq!(env("prod").unwrap(), Env::Prod);
        assert_eq!(millis("250", 1).unwrap(), Duration::from_millis(250));
        assert_eq!(millis("0", 0).unwrap(), Duration::ZERO);
        assert!(boolean("TRUE").unwrap() && boolean("1").unwrap() && !boolean("false").unwrap());
        assert_eq!(port("0").unwrap(), 0);
        assert_eq!(bind("10.0.0.7").unwrap(), ("10.0.0.7".parse().unwrap(), None));
        assert_eq!(bind("[::]:9090").unwrap(), ("::".parse().unwrap(), Some(9090)));
        assert_eq!(admin_addr("0.0.0.0:9464").unwrap(), Some("0.0.0.0:9464".parse().unwrap()));
        assert_eq!(admin_addr("[::1]:9464").unwrap(), Some("[::1]:9464".parse().unwrap()));
        assert_eq!(admin_addr("OFF").unwrap(), None);
        assert_eq!(host("node-7.example.com").unwrap(), "node-7.example.com");
        assert_eq!(balancer("consistent_hash").unwrap(), BalancerKind::ConsistentHash);
        assert_eq!(ratio("0.5").unwrap(), 0.5);
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(problem(env("staging")), "it is not an environment probe knows");
        assert_eq!(problem(millis("0", 1)), "0 ms is too short");
        assert_eq!(problem(millis("1.5", 1)), "it is not a whole number of milliseconds");
        assert_eq!(problem(millis("-5", 0)), "it is not a whole number of milliseconds");
        assert_eq!(problem(boolean("yes")), "it is neither true nor false");
        assert_eq!(problem(port("65536")), "it is not a port number");
        assert_eq!(problem(bind("localhost:80")), "it is not an IP address or IP address and port");
        assert_eq!(problem(admin_addr("127.0.0.1")), "it has no port");
        assert_eq!(problem(admin_addr("localhost:9464")), "it is not an IP address and port, nor `off`");
        assert_eq!(problem(host("a|b")), "it has the character '|'");
        assert_eq!(problem(balancer("RoundRobin")), "probe has no balancer of that name");
        assert_eq!(problem(ratio("NaN")), "it is out of range");
        assert_eq!(problem(ratio("-0.1")), "it is out of range");
        assert_eq!(problem(ratio("lots")), "it is not a number");
    }
}
