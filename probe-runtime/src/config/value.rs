//! Parsers of the setting values, shared by the config file and the environment: a value reads the
//! same from `PROBE_PORT=9090` as from `port = 9090`, and tags the same from
//! `PROBE_SERVER_TAGS=zone=eu-1` as from `tags = { zone = "eu-1" }`.

use std::collections::BTreeMap;
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

/// A version as nodes declare it and rules name it: no whitespace or control characters.
pub(crate) fn version(text: &str) -> Result<String, InvalidValue> {
    if text.is_empty() {
        return Err(InvalidValue::new("it is empty"));
    }
    match text.chars().find(|&c| c.is_whitespace() || c.is_control()) {
        Some(bad) => Err(InvalidValue::new(format!("it has the character {bad:?}"))),
        None => Ok(text.to_owned()),
    }
}

/// A priority tier, 0 to [`MAX_TIER`](crate::rules::MAX_TIER).
pub(super) fn tier(text: &str) -> Result<u8, InvalidValue> {
    match text.parse::<i64>() {
        Ok(tier) => match u8::try_from(tier) {
            Ok(tier) if tier <= crate::rules::MAX_TIER => Ok(tier),
            _ => Err(InvalidValue::new(format!("there is no tier {tier}"))),
        },
        Err(_) => Err(InvalidValue::new("it is not a whole number")),
    }
}

/// Tags as text: `zone=eu-1,group=blue`, spaces around a pair ignored.
pub(super) fn tags(text: &str) -> Result<BTreeMap<String, String>, InvalidValue> {
    tag_map(pairs(text, "tag", |pair| format!("the tag {pair:?} has no `=value`"))?)
}

/// The `key=value` pairs of comma-separated `text`, spaces around a pair ignored; `what` names a
/// pair in the error for an empty one, `missing` words the error for one without `=`.
pub(super) fn pairs<'t>(
    text: &'t str,
    what: &str,
    missing: impl Fn(&str) -> String,
) -> Result<Vec<(&'t str, &'t str)>, InvalidValue> {
    let mut pairs = Vec::new();
    for pair in text.split(',').map(str::trim) {
        if pair.is_empty() {
            return Err(InvalidValue::new(format!("it has an empty {what} between commas")));
        }
        match pair.split_once('=') {
            Some(pair) => pairs.push(pair),
            None => return Err(InvalidValue::new(missing(pair))),
        }
    }
    Ok(pairs)
}

/// Tags from key and value pairs (a TOML table's, or the text's), each checked with [`tag`]; a
/// key given twice is an error rather than a silent choice of one value.
pub(super) fn tag_map<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<BTreeMap<String, String>, InvalidValue> {
    let mut tags = BTreeMap::new();
    for (key, value) in pairs {
        tag(key, value)?;
        if tags.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(InvalidValue::new(format!("the key {key:?} is given twice")));
        }
    }
    Ok(tags)
}

/// A tag's key and value: each at least one of `A-Z`, `a-z`, `0-9`, `_`, `.` and `-`, so they
/// read the same in a variable, a node's JSON and a rule.
pub(crate) fn tag(key: &str, value: &str) -> Result<(), InvalidValue> {
    let bad = |text: &str| text.chars().find(|&c| !(c.is_ascii_alphanumeric() || "_.-".contains(c)));
    match (bad(key), bad(value)) {
        _ if key.is_empty() => {
            Err(InvalidValue::new(format!("the tag {:?} has no key", format!("{key}={value}"))))
        }
        _ if value.is_empty() => Err(InvalidValue::new(format!("the tag key {key:?} has an empty value"))),
        (Some(c), _) => Err(InvalidValue::new(format!("the tag key {key:?} has the character {c:?}"))),
        (None, Some(c)) => {
            Err(InvalidValue::new(format!("the value of tag {key:?} has the character {c:?}")))
        }
        (None, None) => Ok(()),
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
        assert_eq!(version("2.1.0-rc.1+build.7").unwrap(), "2.1.0-rc.1+build.7");
        assert_eq!((tier("0").unwrap(), tier("1").unwrap(), tier("2").unwrap()), (0, 1, 2));
        let expected =
            BTreeMap::from([("group".to_owned(), "blue".to_owned()), ("zone".to_owned(), "eu-1".to_owned())]);
        assert_eq!(tags("zone=eu-1,group=blue").unwrap(), expected);
        assert_eq!(tags(" zone=eu-1 , group=blue ").unwrap(), expected);
        assert_eq!(tag_map([("zone", "eu-1"), ("group", "blue")]).unwrap(), expected);
        assert_eq!(tags("A.b_c-9=Z_.-0").unwrap().len(), 1);
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
        assert_eq!(problem(version("")), "it is empty");
        assert_eq!(problem(version("2.0 beta")), "it has the character ' '");
        assert_eq!(problem(version("2.0\tbeta")), "it has the character '\\t'");
        assert_eq!(problem(version("2.0\u{7}")), "it has the character '\\u{7}'");
        assert_eq!(problem(tier("3")), "there is no tier 3");
        assert_eq!(problem(tier("-1")), "there is no tier -1");
        assert_eq!(problem(tier("1.0")), "it is not a whole number");
        assert_eq!(problem(tags("zone=eu-1,")), "it has an empty tag between commas");
        assert_eq!(problem(tags("zone")), "the tag \"zone\" has no `=value`");
        assert_eq!(problem(tags("=eu-1")), "the tag \"=eu-1\" has no key");
        assert_eq!(problem(tags("zone=")), "the tag key \"zone\" has an empty value");
        assert_eq!(problem(tags("zone=eu=1")), "the value of tag \"zone\" has the character '='");
        assert_eq!(problem(tags("zo ne=eu")), "the tag key \"zo ne\" has the character ' '");
        assert_eq!(
            problem(tags("zone=eu\u{202e}")),
            "the value of tag \"zone\" has the character '\\u{202e}'"
        );
        assert_eq!(problem(tags("zone=a,zone=b")), "the key \"zone\" is given twice");
    }
}
