//! What a backend failure says to whom: the full text for admins and the CLI (the backend's own
//! words, which can name database users, hosts and databases; passwords are masked already), and a
//! public text for the console's viewers that names only the backend, its address without user
//! name, password, database or options, and the setting that configures it.
//!
//! Addresses are split with the `url` crate, as probe-runtime's password masking and the client
//! libraries split them, so the user info is cut exactly where the client would cut it.

use probe_runtime::registry::BackendError;
use url::Url;

use super::Backend;

/// `err`'s own text, then the setting of its backend when the text does not name it (every
/// failure but an unreachable backend's).
pub fn full_text(err: &BackendError) -> String {
    let text = err.to_string();
    match Backend::of_error(err) {
        Some(backend) if !text.contains(backend.setting()) => {
            format!("{text}; {} is configured by {}", backend.name(), backend.configured_by())
        }
        _ => text,
    }
}

/// What `err` says to a viewer: which backend failed, how, where it is (without credentials,
/// database or options) and which setting names it; nothing the backend itself said.
pub fn public_text(err: &BackendError) -> String {
    let Some(backend) = Backend::of_error(err) else {
        // An embedded or other in-process store: probe's own name for it, no detail.
        return format!("the {} failed", name_of(err));
    };
    let (name, configured) = (backend.name(), backend.configured_by());
    match err {
        BackendError::Unreachable { addr, .. } => format!(
            "{name} at {} is unreachable; check that it runs and that {configured} names it",
            public_address(addr)
        ),
        BackendError::SessionEnded { .. } => {
            format!("the {name} session ended; {name} is configured by {configured}")
        }
        BackendError::NotMigrated { missing, fix, .. } => {
            format!("{missing} is missing in the {name} database; {fix}")
        }
        BackendError::BadData { .. } => {
            format!("{name} holds data probe cannot read; it is configured by {configured}")
        }
        BackendError::Conflict { .. } => err.to_string(),
        _ => format!("{name} failed; it is configured by {configured}"),
    }
}

/// The backend's name as the error gives it.
fn name_of(err: &BackendError) -> &'static str {
    match err {
        BackendError::Unreachable { backend, .. }
        | BackendError::Failed { backend, .. }
        | BackendError::BadData { backend, .. }
        | BackendError::SessionEnded { backend }
        | BackendError::NotMigrated { backend, .. } => backend,
        _ => "backend",
    }
}

/// `addr` (a URL, a comma-separated list of them, or ZooKeeper's `host:port,...[/chroot]`) with
/// only each server's scheme, host and port: `mysql://probe:***@db1:3306/apps?ssl=true` is
/// `mysql://db1:3306`.
pub fn public_address(addr: &str) -> String {
    addr.split(',').map(public_server).collect::<Vec<_>>().join(",")
}

fn public_server(text: &str) -> String {
    let text = text.trim();
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) if !scheme.contains(['@', ':', '/']) => (Some(scheme), rest),
        _ => (None, text),
    };
    if let (Some(scheme), Ok(url)) = (scheme, Url::parse(text)) {
        if let Some(host) = url.host_str() {
            return match url.port() {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            };
        }
    }
    // Not a URL the parser splits (or ZooKeeper's host list): the authority after its last `@`.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host_port)| host_port);
    match scheme {
        Some(scheme) => format!("{scheme}://{host_port}"),
        None => host_port.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENIED: &str = "Access denied for user 'probe_rw'@'db7.internal' to database 'billing_prod'";

    #[test]
    fn addresses_keep_only_scheme_host_and_port() {
        let cases = [
            ("mysql://probe_rw:***@db7.internal:3306/billing_prod", "mysql://db7.internal:3306"),
            ("mysql://probe_rw@db7.internal/billing_prod?ssl=true", "mysql://db7.internal"),
            ("redis://:***@127.0.0.1:6379/", "redis://127.0.0.1:6379"),
            (
                "redis://u:***@10.0.0.5:7000,redis://u:***@10.0.0.6:7000",
                "redis://10.0.0.5:7000,redis://10.0.0.6:7000",
            ),
            ("rediss://[::1]:7000/2", "rediss://[::1]:7000"),
            ("zk1:2181,zk2:2181/probe/dev", "zk1:2181,zk2:2181"),
            // What the masking leaves of a URL the parser cannot split.
            ("mysql://***@db1/apps", "mysql://db1"),
            ("***@db1/apps", "db1"),
        ];
        for (addr, public) in cases {
            assert_eq!(public_address(addr), public, "{addr}");
        }
    }

    #[test]
    fn viewers_learn_the_backend_the_address_and_the_setting_but_not_what_it_said() {
        let unreachable = BackendError::Unreachable {
            backend: "MySQL",
            addr: "mysql://probe_rw:***@db7.internal:3306/billing_prod".into(),
            detail: DENIED.into(),
        };
        let text = public_text(&unreachable);
        assert_eq!(
            text,
            "MySQL at mysql://db7.internal:3306 is unreachable; check that it runs and that PROBE_MYSQL \
             (or `mysql` in the config file) names it"
        );
        let failed =
            BackendError::Failed { backend: "MySQL", action: "list apps".into(), detail: DENIED.into() };
        let text = public_text(&failed);
        assert!(text.starts_with("MySQL failed") && text.contains("PROBE_MYSQL"), "{text}");
        for text in [public_text(&unreachable), text] {
            for secret in ["probe_rw", "billing_prod", "Access denied"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
        let bad = BackendError::BadData { backend: "Redis", location: "f".into(), detail: "x".into() };
        assert!(public_text(&bad).contains("PROBE_REDIS"), "{}", public_text(&bad));
        let ended = BackendError::SessionEnded { backend: "ZooKeeper" };
        assert!(public_text(&ended).contains("PROBE_ZOOKEEPER"), "{}", public_text(&ended));
        let migrate = BackendError::NotMigrated {
            backend: "MySQL",
            database: "billing_prod".into(),
            missing: "table probe_audit".into(),
            fix: "run `probe db migrate`".into(),
        };
        assert_eq!(
            public_text(&migrate),
            "table probe_audit is missing in the MySQL database; run `probe db migrate`"
        );
        let embedded =
            BackendError::Failed { backend: "embedded app store", action: "a".into(), detail: "d".into() };
        assert_eq!(public_text(&embedded), "the embedded app store failed");
    }

    #[test]
    fn full_texts_name_the_setting_once() {
        let failed =
            BackendError::Failed { backend: "MySQL", action: "list apps".into(), detail: DENIED.into() };
        let text = full_text(&failed);
        assert!(
            text.contains(DENIED)
                && text.ends_with("; MySQL is configured by PROBE_MYSQL (or `mysql` in the config file)"),
            "{text}"
        );
        let unreachable = BackendError::Unreachable {
            backend: "Redis",
            addr: "redis://127.0.0.1:1/".into(),
            detail: "refused".into(),
        };
        assert_eq!(full_text(&unreachable), unreachable.to_string());
        assert_eq!(full_text(&unreachable).matches("PROBE_REDIS").count(), 1);
    }
}
