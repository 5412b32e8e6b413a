//! Where the TLS test services are (`scripts/services.sh up`, scripts/lib/tls.sh): the test CA, a
//! CA that signed nothing, the server certificate for 127.0.0.1, a Redis that speaks only TLS, the
//! MariaDB user let in over TLS only, and (`up --cluster`) a Redis Cluster that speaks only TLS.
//! Each is read from its `PROBE_TEST_*` variable, else the script's paths and ports.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use probe_runtime::config::Config;
use probe_runtime::registry::Backends;

const START_HINT: &str = "start the test services with `scripts/services.sh up` (or run `scripts/test.sh`), \
                          which makes the test CA and starts Redis and MariaDB with TLS";

fn tls_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent");
    root.join("target/services/tls")
}

fn file(var: &str, name: &str) -> Result<PathBuf> {
    let path = std::env::var_os(var).map_or_else(|| tls_dir().join(name), PathBuf::from);
    ensure!(path.exists(), "{} ({var}) is missing; {START_HINT}", path.display());
    Ok(path)
}

/// The test CA's certificate (`PROBE_TEST_TLS_CA`).
pub fn ca() -> Result<PathBuf> {
    file("PROBE_TEST_TLS_CA", "ca.pem")
}

/// A CA that signed none of the test certificates (`PROBE_TEST_TLS_OTHER_CA`).
pub fn other_ca() -> Result<PathBuf> {
    file("PROBE_TEST_TLS_OTHER_CA", "other-ca.pem")
}

/// The test servers' certificate, for IP 127.0.0.1 (`PROBE_TEST_TLS_CERT`).
pub fn server_cert() -> Result<PathBuf> {
    file("PROBE_TEST_TLS_CERT", "server.pem")
}

/// Its private key (`PROBE_TEST_TLS_KEY`).
pub fn server_key() -> Result<PathBuf> {
    file("PROBE_TEST_TLS_KEY", "server.key")
}

/// The Redis that speaks only TLS (`PROBE_TEST_REDIS_TLS`).
pub fn redis_url() -> String {
    std::env::var("PROBE_TEST_REDIS_TLS").unwrap_or_else(|_| "rediss://127.0.0.1:26380/".to_owned())
}

/// The test database as the user MariaDB lets in over TLS only (`PROBE_TEST_MYSQL_TLS`).
pub fn mysql_url() -> String {
    std::env::var("PROBE_TEST_MYSQL_TLS")
        .unwrap_or_else(|_| "mysql://probe_tls:probe@127.0.0.1:23306/probe_test?require_ssl=true".to_owned())
}

/// The Redis Cluster that speaks only TLS, its seeds comma-separated (`PROBE_TEST_REDIS_TLS_CLUSTER`).
pub fn redis_cluster_urls() -> String {
    std::env::var("PROBE_TEST_REDIS_TLS_CLUSTER").unwrap_or_else(|_| {
        (26411..=26413).map(|port| format!("rediss://127.0.0.1:{port}/")).collect::<Vec<_>>().join(",")
    })
}

/// The `PROBE_*` settings of the test services with Redis and MySQL over TLS, trusting `ca`.
pub fn probe_vars(ca: &Path) -> Vec<(&'static str, String)> {
    let ca = ca.display().to_string();
    crate::probe_vars()
        .into_iter()
        .map(|(name, value)| match name {
            "PROBE_REDIS" => (name, redis_url()),
            "PROBE_MYSQL" => (name, mysql_url()),
            _ => (name, value),
        })
        .chain([("PROBE_REDIS_TLS_CA", ca.clone()), ("PROBE_MYSQL_TLS_CA", ca)])
        .collect()
}

/// probe's backends on the test services, Redis and MySQL over TLS trusting the test CA.
pub async fn backends() -> Result<Backends> {
    let config = Config::from_vars(probe_vars(&ca()?)).context("bad test configuration")?;
    Backends::connect(&config).await.with_context(|| START_HINT.to_owned())
}

/// The console over HTTPS with the test server certificate, on 127.0.0.1 (a free port), over
/// `backends`, with [`ADMIN`](crate::console::ADMIN) and [`VIEWER`](crate::console::VIEWER), until
/// the sender fires or is dropped; answers its address.
pub async fn start_console(
    backends: &Backends,
) -> Result<(std::net::SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    use probe_console::console::{ConsoleOptions, ConsoleState, ConsoleTls, serve_tls_on};
    let tls = ConsoleTls::new(server_cert()?, server_key()?);
    let config = tls.load().with_context(|| format!("the test certificate; {START_HINT}"))?;
    let options = ConsoleOptions {
        bind: "127.0.0.1:0".parse()?,
        admin_token: crate::console::ADMIN.into(),
        viewer_token: crate::console::VIEWER.into(),
        tls: Some(tls),
    };
    let state = ConsoleState::new(&options, backends.clone())?;
    let listener = tokio::net::TcpListener::bind(options.bind).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_tls_on(listener, config, state, async move {
        let _ = stopped.await;
    }));
    Ok((addr, stop))
}
