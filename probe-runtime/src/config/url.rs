//! The checks a Redis or MySQL URL gets before a client library sees it, and password masking.
//!
//! The client libraries parse the URL when they connect, with the `url` crate (WHATWG rules); the
//! checks here catch what a typo makes (a missing or wrong scheme, no host, a bad port) with an
//! error that names the setting. Masking uses the same `url` crate, so it splits the user info from
//! the host exactly as the client would; a URL it cannot split has its whole credential masked, and
//! no error message quotes text that may hold a password.

use ::url::Url;

use super::error::InvalidValue;

/// What masks a password.
const MASK: &str = "***";

/// The parts of `scheme://[user[:password]@]host[:port][/path][?query]` the config checks.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct ParsedUrl {
    pub(super) raw: String,
    pub(super) host: String,
    pub(super) port: Option<u16>,
    /// The path without its leading `/`, up to the query.
    pub(super) path: String,
}

/// `text`'s scheme and what follows `://`, when it starts with a scheme (which holds no `@`, `:`
/// or `/`, so it cannot be part of a credential).
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    text.split_once("://").filter(|(scheme, _)| !scheme.is_empty() && !scheme.contains(['@', ':', '/']))
}

/// Checks `text` as a URL with one of `schemes`. No error quotes the user info.
pub(super) fn parse(text: &str, schemes: &[&str]) -> Result<ParsedUrl, InvalidValue> {
    let want = schemes.iter().map(|scheme| format!("{scheme}://")).collect::<Vec<_>>().join(" or ");
    let Some((scheme, rest)) = split_scheme(text) else {
        return Err(InvalidValue::new(format!("it has no scheme: start it with {want}")));
    };
    if !schemes.contains(&scheme) {
        return Err(InvalidValue::new(format!("the scheme `{scheme}://` is not supported: use {want}")));
    }
    let parsed = Url::parse(text);
    if let Err(err) = parsed {
        if rest.contains('@') {
            // It may hold a password that splits where the client would not: quote nothing.
            return Err(InvalidValue::new(format!(
                "it is not a valid URL ({err}); percent-encode `/`, `?`, `#`, `@` and `:` in the user \
                 name and password (`/` is %2F)"
            )));
        }
    }
    // The authority ends where the URL parser ends it; its last `@` ends the user info.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host_port)| host_port);
    let (host, port) = checked_host_port(host_port, false)?;
    if let Err(err) = parsed {
        return Err(InvalidValue::new(format!("it is not a valid URL: {err}")));
    }
    let path = tail.strip_prefix('/').unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or("");
    Ok(ParsedUrl { raw: text.to_owned(), host: host.to_owned(), port, path: path.to_owned() })
}

/// Splits `host[:port]` or `[v6]:port`, checking both; `None` when the port is left out.
pub(super) fn split_host_port(text: &str) -> Result<(&str, Option<u16>), InvalidValue> {
    checked_host_port(text, true)
}

/// [`split_host_port`]; a port that is not digits is quoted only when `quote_port`.
fn checked_host_port(text: &str, quote_port: bool) -> Result<(&str, Option<u16>), InvalidValue> {
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
    let port = port.map(|port| parse_port(port, quote_port)).transpose()?;
    Ok((host, port))
}

/// A port number from 1 to 65535. A port that is not digits is quoted only when `quote`: in a URL
/// whose user info is not split right, it may be a password.
fn parse_port(port: &str, quote: bool) -> Result<u16, InvalidValue> {
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ if quote || port.bytes().all(|b| b.is_ascii_digit()) => {
            Err(InvalidValue::new(format!("the port `{port}` is not a number from 1 to 65535")))
        }
        _ => Err(InvalidValue::new(
            "the port is not a number from 1 to 65535 (if that is a password, percent-encode its `/`, \
             `?`, `#` and `@`)",
        )),
    }
}

/// `text` with the password of a `scheme://user:password@host` URL replaced by `***`, as the
/// `url` crate splits it. Text that is no such URL keeps nothing that may be a credential: all
/// before its last `@`, or an authority whose "port" is not digits, is masked.
pub(super) fn redact(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.has_host() && split_scheme(text).is_some() => {
            let Some(password) = url.password() else { return text.to_owned() };
            // The text as written, with the password the parser found cut out; else the parser's
            // own form of the URL.
            if let Some(masked) = splice_password(text, password) {
                return masked;
            }
            if url.set_password(Some(MASK)).is_err() {
                return redact_unparsed(text);
            }
            url.to_string()
        }
        _ => redact_unparsed(text),
    }
}

/// `text` with `password`, where a parsed URL has it (`scheme://user:password@`), masked.
fn splice_password(text: &str, password: &str) -> Option<String> {
    let (scheme, rest) = split_scheme(text)?;
    let start = scheme.len() + 3;
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@')?;
    let colon = rest[..at].find(':')?;
    (&rest[colon + 1..at] == password).then(|| format!("{}{MASK}{}", &text[..start + colon + 1], &rest[at..]))
}

/// [`redact`] of each URL in a comma-separated list (a Redis Cluster's seeds).
pub(super) fn redact_list(text: &str) -> String {
    text.split(',').map(redact).collect::<Vec<_>>().join(",")
}

/// [`redact`] of text the URL parser cannot split.
fn redact_unparsed(text: &str) -> String {
    let (prefix, rest) = match split_scheme(text) {
        Some((scheme, rest)) => (&text[..scheme.len() + 3], rest),
        None => ("", text),
    };
    if let Some(at) = rest.rfind('@') {
        return format!("{prefix}{MASK}{}", &rest[at..]);
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rsplit_once(':') {
        Some((_, port)) if !port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{prefix}{MASK}{}", &rest[end..])
        }
        _ => text.to_owned(),
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
        assert_eq!(redact("redis://cache:6379/0"), "redis://cache:6379/0");
    }

    /// Passwords with `/`, `?`, `#`, `@` or `:` unencoded, and URLs without `://`.
    const HOSTILE: &[&str] = &[
        "mysql://probe:S3cret/PW@db:3306/apps",
        "mysql://probe:S3cret?PW@db/apps",
        "mysql://probe:S3cret#PW@db/apps",
        "mysql://probe:S3cret@PW@db/apps",
        "mysql://probe:S3cret:PW@db/apps",
        "mysql://probe:S3cret/PW",
        "mysql:probe:S3cret@db/apps",
        "mysql:/probe:S3cret/PW@db/apps",
        "probe:S3cret/PW@db/apps",
        "mysql//probe:S3cret@db/apps",
        "redis://:S3cret/PW@cache:6379",
        "rediss://default:S3cret?PW@cache",
        "redis:S3cret@cache",
        "redis://:S3cret/PW@[::1]:6379/0",
    ];

    #[test]
    fn hostile_urls_never_show_the_password() {
        for text in HOSTILE {
            let shown = redact(text);
            assert!(!shown.contains("S3cret") && !shown.contains("PW@"), "{text} -> {shown}");
            for schemes in [&["mysql"][..], REDIS] {
                if let Err(err) = parse(text, schemes) {
                    assert!(!err.problem().contains("S3cret"), "{text}: {}", err.problem());
                }
            }
        }
        // What the URL parser splits right keeps everything but the password.
        assert_eq!(redact("mysql://probe:S3cret@PW@db/apps"), "mysql://probe:***@db/apps");
        assert_eq!(redact("mysql://probe:S3cret/PW@db:3306/apps"), "mysql://***@db:3306/apps");
        assert_eq!(redact("probe:S3cret/PW@db/apps"), "***@db/apps");
        assert_eq!(redact("mysql://probe:S3cret/PW"), "mysql://***/PW");
    }
}
