//! The checks a Redis or MySQL URL gets before a client library sees it, and password masking.
//!
//! This is not a URL parser: the client libraries parse the URL when they connect. It catches what
//! a typo makes (a missing or wrong scheme, no host, a bad port) with an error that names the setting.

use super::error::InvalidValue;

/// The parts of `scheme://[user[:password]@]host[:port][/path][?query]` the config checks.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct ParsedUrl {
    pub(super) raw: String,
    pub(super) host: String,
    pub(super) port: Option<u16>,
    /// The path without its leading `/`, up to the query.
    pub(super) path: String,
}

/// Checks `text` as a URL with one of `schemes`.
pub(super) fn parse(text: &str, schemes: &[&str]) -> Result<ParsedUrl, InvalidValue> {
    let want = schemes.iter().map(|scheme| format!("{scheme}://")).collect::<Vec<_>>().join(" or ");
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(InvalidValue::new(format!("it has no scheme: start it with {want}")));
    };
    if !schemes.contains(&scheme) {
        return Err(InvalidValue::new(format!("the scheme `{scheme}://` is not supported: use {want}")));
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host_port)| host_port);
    let (host, port) = split_host_port(host_port)?;
    let path = tail.strip_prefix('/').unwrap_or("");
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    Ok(ParsedUrl { raw: text.to_owned(), host: host.to_owned(), port, path: path.to_owned() })
}

/// Splits `host[:port]` or `[v6]:port`, checking both; `None` when the port is left out.
pub(super) fn split_host_port(text: &str) -> Result<(&str, Option<u16>), InvalidValue> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(InvalidValue::new(format!("`{text}` opens an IPv6 address with `[` but has no `]`")));
        };
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(InvalidValue::new(format!("`{text}` has `{after}` after its IPv6 address"))),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            Some(_) => {
                return Err(InvalidValue::new(format!(
                    "`{text}` has several `:`: write IPv6 addresses as [addr]:port"
                )));
            }
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(InvalidValue::new(format!("`{text}` names no host")));
    }
    if let Some(bad) = host.chars().find(|&c| !(c.is_alphanumeric() || "-._:%".contains(c))) {
        return Err(InvalidValue::new(format!("the host `{host}` has the character {bad:?}")));
    }
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

/// A port number from 1 to 65535.
fn parse_port(port: &str) -> Result<u16, InvalidValue> {
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(InvalidValue::new(format!("the port `{port}` is not a number from 1 to 65535"))),
    }
}

/// `text` with the password of a `scheme://user:password@host` URL replaced by `***`.
pub(super) fn redact(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else { return text.to_owned() };
    let authority_end = text[start..].find(['/', '?']).map_or(text.len(), |i| start + i);
    let Some(at) = text[start..authority_end].rfind('@').map(|i| start + i) else { return text.to_owned() };
    match text[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}:***{}", &text[..colon], &text[at..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIS: &[&str] = &["redis", "rediss"];

    fn problem(text: &str) -> String {
        parse(text, REDIS).err().map(|e| e.problem().to_owned()).unwrap_or_default()
    }

    #[test]
    fn parses_the_parts_it_checks() {
        let url = parse("redis://:pw@cache-1.internal:6380/2?protocol=resp3", REDIS).unwrap();
        assert_eq!((url.host.as_str(), url.port, url.path.as_str()), ("cache-1.internal", Some(6380), "2"));
        let url = parse("rediss://[::1]", REDIS).unwrap();
        assert_eq!((url.host.as_str(), url.port, url.path.as_str()), ("::1", None, ""));
        let url = parse("redis://10.0.0.5:7000", REDIS).unwrap();
        assert_eq!((url.host.as_str(), url.port), ("10.0.0.5", Some(7000)));
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(problem("cache:6379"), "it has no scheme: start it with redis:// or rediss://");
        assert_eq!(
            problem("http://cache"),
            "the scheme `http://` is not supported: use redis:// or rediss://"
        );
        assert_eq!(problem("redis://:6379"), "`:6379` names no host");
        assert_eq!(problem("redis://"), "`` names no host");
        assert_eq!(problem("redis://cache:0"), "the port `0` is not a number from 1 to 65535");
        assert_eq!(problem("redis://cache:70000"), "the port `70000` is not a number from 1 to 65535");
        assert_eq!(problem("redis://cache:"), "the port `` is not a number from 1 to 65535");
        assert_eq!(problem("redis://ca che"), "the host `ca che` has the character ' '");
        assert_eq!(problem("redis://[::1"), "`[::1` opens an IPv6 address with `[` but has no `]`");
        assert_eq!(
            problem("redis://::1:6379"),
            "`::1:6379` has several `:`: write IPv6 addresses as [addr]:port"
        );
    }

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(redact("mysql://probe:s3cr:t@db:3306/apps"), "mysql://probe:***@db:3306/apps");
        assert_eq!(redact("redis://:pw@cache"), "redis://:***@cache");
        assert_eq!(redact("mysql://probe@db/apps"), "mysql://probe@db/apps");
        assert_eq!(redact("redis://cache/0?user=a@b"), "redis://cache/0?user=a@b");
        assert_eq!(redact("not a url"), "not a url");
    }
}
