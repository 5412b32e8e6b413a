//! `probe console`: serves the web console ([`crate::console::serve`]) with its access tokens,
//! generating the tokens that are not given.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{Context as _, Result, bail};
use probe_runtime::registry::Backends;
use serde_json::json;

use super::args::ConsoleArgs;
use super::output::Report;
use crate::console::limit::{LoginLimiter, TrustedProxies};
use crate::console::session::Tokens;
use crate::console::{ConsoleOptions, ConsoleTls};

/// A token: given (by option or environment variable) or generated here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    value: String,
    generated: bool,
}

impl Token {
    /// `given` unless it is absent or empty, else 32 random hex digits.
    fn given_or_random(given: Option<&str>) -> Token {
        match given.map(str::trim).filter(|t| !t.is_empty()) {
            Some(value) => Token { value: value.to_owned(), generated: false },
            None => Token { value: random_hex(), generated: true },
        }
    }

    /// The token when generated (it must be shown to be usable), else where it came from.
    fn shown(&self, variable: &str, option: &str) -> String {
        if self.generated {
            format!("{} (generated; choose one with {option} or {variable})", self.value)
        } else {
            format!("given ({option} or {variable})")
        }
    }
}

/// 128 random bits as 32 lowercase hex digits.
fn random_hex() -> String {
    rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a browser on this machine finds a console bound to `bind` (loopback for `0.0.0.0`).
fn url(bind: SocketAddr, https: bool) -> String {
    let mut addr = bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
    }
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{addr}/")
}

/// The options to serve with and what to print before serving.
fn prepare(args: &ConsoleArgs, env: &str) -> Result<(ConsoleOptions, Report)> {
    let admin = Token::given_or_random(args.admin_token.as_deref());
    let viewer = Token::given_or_random(args.viewer_token.as_deref());
    if admin.value == viewer.value {
        bail!(
            "the admin and viewer tokens are the same, so every viewer could change nodes: give them \
             different values (--admin-token/PROBE_CONSOLE_ADMIN_TOKEN, \
             --viewer-token/PROBE_CONSOLE_VIEWER_TOKEN)"
        );
    }
    // Refused before anything is printed: too short to withstand guessing.
    Tokens::new(&admin.value, &viewer.value).context(
        "cannot start the console (--admin-token/PROBE_CONSOLE_ADMIN_TOKEN, \
         --viewer-token/PROBE_CONSOLE_VIEWER_TOKEN)",
    )?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ConsoleTls::new(cert, key)),
        _ => None,
    };
    // Refused before anything is printed, as the tokens are.
    if let Some(tls) = &tls {
        tls.load().context("cannot start the console over HTTPS")?;
    }
    let url = url(args.bind, tls.is_some());
    let json = json!({
        "url": url,
        "env": env,
        "admin_token": admin.generated.then(|| admin.value.clone()),
        "viewer_token": viewer.generated.then(|| viewer.value.clone()),
    });
    let text = format!(
        "probe console for env {env} on {url}\nadmin token:  {}\nviewer token: {}",
        admin.shown("PROBE_CONSOLE_ADMIN_TOKEN", "--admin-token"),
        viewer.shown("PROBE_CONSOLE_VIEWER_TOKEN", "--viewer-token"),
    );
    let options =
        ConsoleOptions { bind: args.bind, admin_token: admin.value, viewer_token: viewer.value, tls };
    Ok((options, Report::new(json, text)))
}

/// `bind`, with port 0 replaced by a port free now, so the printed URL is the one served.
fn concrete(bind: SocketAddr) -> Result<SocketAddr> {
    if bind.port() != 0 {
        return Ok(bind);
    }
    std::net::TcpListener::bind(bind)
        .and_then(|listener| listener.local_addr())
        .with_context(|| format!("cannot find a free port on {}; give --bind ADDR:PORT", bind.ip()))
}

/// Prints the URL and tokens, then serves until the process is stopped.
pub async fn serve(args: &ConsoleArgs, backends: Backends, json: bool) -> Result<()> {
    let args = ConsoleArgs { bind: concrete(args.bind)?, ..args.clone() };
    let (options, report) = prepare(&args, backends.env.as_str())?;
    report.print(json)?;
    let bind = options.bind;
    let limiter = LoginLimiter::default().trusting(TrustedProxies::new(args.trusted_proxies.iter().copied()));
    crate::console::serve_with(options, limiter, backends)
        .await
        .with_context(|| format!("the console on {bind} stopped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(admin: Option<&str>, viewer: Option<&str>) -> ConsoleArgs {
        ConsoleArgs {
            bind: "127.0.0.1:8480".parse().unwrap(),
            admin_token: admin.map(str::to_owned),
            viewer_token: viewer.map(str::to_owned),
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
        }
    }

    #[test]
    fn missing_tokens_are_generated_and_shown() {
        let (options, report) = prepare(&args(None, Some("look-but-do-not-touch")), "dev").unwrap();
        assert_eq!(options.admin_token.len(), 32);
        assert!(options.admin_token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(options.viewer_token, "look-but-do-not-touch");
        assert_eq!(report.json["admin_token"], options.admin_token.as_str());
        assert_eq!(report.json["viewer_token"], serde_json::Value::Null);
        assert!(report.text.contains("http://127.0.0.1:8480/"), "{}", report.text);
        assert!(!report.text.contains("look-but"), "given tokens are not printed: {}", report.text);
        let (again, _) = prepare(&args(Some(""), None), "dev").unwrap();
        assert_ne!(again.admin_token, options.admin_token);
    }

    #[test]
    fn urls_name_an_address_a_browser_can_open() {
        assert_eq!(url("0.0.0.0:8480".parse().unwrap(), false), "http://127.0.0.1:8480/");
        assert_eq!(url("[::]:8480".parse().unwrap(), false), "http://[::1]:8480/");
        assert_eq!(url("10.0.0.7:80".parse().unwrap(), false), "http://10.0.0.7:80/");
        assert_eq!(url("10.0.0.7:8443".parse().unwrap(), true), "https://10.0.0.7:8443/");
    }

    #[test]
    fn equal_tokens_are_refused() {
        let err = prepare(&args(Some("same"), Some("same")), "dev").unwrap_err();
        assert!(err.to_string().contains("different values"), "{err}");
    }

    #[test]
    fn short_tokens_are_refused() {
        let err = prepare(&args(Some("fifteen-chars!!"), None), "dev").unwrap_err();
        assert!(format!("{err:#}").contains("admin token is shorter than 16 characters"), "{err:#}");
        // Generated tokens are long: 128 random bits.
        let (options, _) = prepare(&args(None, None), "dev").unwrap();
        assert!(options.admin_token.len() >= 32 && options.viewer_token.len() >= 32);
    }
}
