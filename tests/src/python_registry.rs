//! Python peers that register and discover through the registry as the Python design does:
//! `tests/python/registry_provider.py` (the design's `start_service` + `__zk_connect`) and
//! `tests/python/registry_client.py` (its `ProbTClient._get_service_addr` and calls), run by the venv
//! Python `scripts/test.sh` makes, against the test services (`zk_addr`, `redis_url`, `mysql_url`).
//!
//! Peers are child processes killed when their handle drops, whatever the test's outcome; providers
//! also exit when their stdin closes, so none outlives the test process. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use probe_runtime::registry::layout::{Env, NodeKey};

use crate::peer::Peer;

const SETUP_HINT: &str = "run `scripts/test.sh`, which creates the venv (target/venv) with kazoo, redis, pymysql \
                          and thriftpy2 from scripts/requirements.txt";

/// How long a provider may take to register and print `READY <port>`.
const PROVIDER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// The registered host of every Python provider here.
pub const PYTHON_HOST: &str = "127.0.0.1";

/// Where the venv Python and the registry peer scripts are, and the test services they use.
#[derive(Debug, Clone)]
pub struct RegistryPeers {
    python: PathBuf,
    scripts: PathBuf,
    /// The provider's `--zk`, Redis and MySQL options; the client takes the first, `--zk`.
    service_args: Vec<String>,
}

impl RegistryPeers {
    /// The peers as `scripts/test.sh` prepares them, pointed at the test services; an error that
    /// says what to run when the venv or its libraries are missing.
    pub fn from_env() -> Result<Self> {
        let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = tests_dir.parent().unwrap_or(tests_dir);
        let python = std::env::var_os("PROBE_TEST_PYTHON")
            .filter(|v| !v.is_empty())
            .map_or_else(|| root.join("target/venv/bin/python"), PathBuf::from);
        ensure!(python.is_file(), "no Python at {} (PROBE_TEST_PYTHON); {SETUP_HINT}", python.display());
        let check = Command::new(&python)
            .args(["-c", "import kazoo, redis, pymysql, thriftpy2"])
            .output()
            .with_context(|| format!("cannot run {} (PROBE_TEST_PYTHON); {SETUP_HINT}", python.display()))?;
        ensure!(
            check.status.success(),
            "{} cannot import kazoo, redis, pymysql and thriftpy2: {}; {SETUP_HINT}",
            python.display(),
            String::from_utf8_lossy(&check.stderr).trim()
        );
        Ok(RegistryPeers { python, scripts: tests_dir.join("python"), service_args: service_args()? })
    }

    /// The venv's Python, with kazoo, redis, pymysql and thriftpy2.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// Starts `registry_provider.py` for `appkey` answering `ping` with `tag` on `port`, and waits
    /// until its node is in ZooKeeper.
    pub async fn start_provider(&self, appkey: &str, tag: &str, port: u16) -> Result<PythonProvider> {
        let args = ["--appkey", appkey, "--tag", tag, "--port", &port.to_string(), "--watch-stdin"];
        let what = format!("python provider {tag}");
        let mut peer = self.spawn("registry_provider.py", &what, &args, &self.service_args)?;
        let line = peer.next_line(PROVIDER_START_TIMEOUT).await?;
        let ready = line.strip_prefix("READY ").and_then(|p| p.trim().parse::<u16>().ok());
        let Some(ready) = ready else { bail!("{} printed {line:?}, not `READY <port>`", peer.what()) };
        ensure!(ready == port, "{} is ready on {ready}, not on {port}", peer.what());
        Ok(PythonProvider { peer, port })
    }

    /// The same peers with the app registry in MySQL database `database` instead of the test one.
    pub fn with_mysql_database(&self, database: &str) -> RegistryPeers {
        let mut peers = self.clone();
        for arg in &mut peers.service_args {
            if arg.starts_with("--mysql-database=") {
                *arg = format!("--mysql-database={database}");
            }
        }
        peers
    }

    /// Runs `design_operator.py` with the operations `ops` (a JSON list, see the script): what an
    /// operator of the Python design writes by hand, in MySQL, Redis and ZooKeeper.
    pub async fn run_operator(&self, ops: &serde_json::Value) -> Result<()> {
        let ops = ops.to_string();
        let mut peer =
            self.spawn("design_operator.py", "python operator", &[ops.as_str()], &self.service_args)?;
        let status = peer.wait(Duration::from_secs(30)).await?;
        let stdout = peer.rest_of_stdout(Duration::from_secs(5)).await;
        ensure!(
            status.success() && stdout.contains("DONE"),
            "{}: {status}\nstdout:\n{stdout}\nstderr:\n{}",
            peer.what(),
            peer.stderr()
        );
        Ok(())
    }

    /// Runs `registry_provider.py` for `appkey` to its end (for refusals): its exit status and stderr.
    pub async fn run_provider_to_end(&self, appkey: &str, port: u16) -> Result<(ExitStatus, String)> {
        let args = ["--appkey", appkey, "--tag", "never", "--port", &port.to_string()];
        let mut peer = self.spawn("registry_provider.py", "python provider", &args, &self.service_args)?;
        let status = peer.wait(PROVIDER_START_TIMEOUT).await?;
        Ok((status, peer.stderr()))
    }

    /// Runs `registry_client.py`: `calls` pings over the `Directory` nodes of `appkey`. Its JSON
    /// line (`counts`, `addrs`, `nodes`), or an error with its output when it failed.
    pub async fn run_client(&self, appkey: &str, calls: usize) -> Result<serde_json::Value> {
        let args = ["--appkey", appkey, "--calls", &calls.to_string()];
        let mut peer = self.spawn("registry_client.py", "python client", &args, &self.service_args[..1])?;
        let status = peer.wait(Duration::from_secs(120)).await?;
        let stdout = peer.rest_of_stdout(Duration::from_secs(5)).await;
        let context = || format!("{}: {status}\nstdout:\n{stdout}\nstderr:\n{}", peer.what(), peer.stderr());
        ensure!(status.success(), "{}", context());
        let line = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line).with_context(|| format!("no JSON line; {}", context()))
    }

    fn spawn(&self, script: &str, what: &str, args: &[&str], services: &[String]) -> Result<Peer> {
        let script = self.scripts.join(script);
        let mut command = Command::new(&self.python);
        command.arg(&script).args(args).args(services);
        Peer::spawn(command, what.to_owned())
            .with_context(|| format!("cannot start {} {}", self.python.display(), script.display()))
    }
}

/// The scripts' options for the test services: the ZooKeeper connect string, Redis and MySQL.
fn service_args() -> Result<Vec<String>> {
    let zk = crate::zk_addr();
    let redis_url = crate::redis_url();
    let redis = redis::Client::open(redis_url.as_str())
        .with_context(|| format!("bad PROBE_TEST_REDIS {redis_url}"))?;
    let info = redis.get_connection_info();
    let redis::ConnectionAddr::Tcp(redis_host, redis_port) = info.addr() else {
        bail!("PROBE_TEST_REDIS {redis_url} is not a plain TCP address, which the Python design needs")
    };
    let mysql_url = crate::mysql_url();
    let mysql = mysql_async::Opts::from_url(&mysql_url)
        .with_context(|| format!("bad PROBE_TEST_MYSQL {mysql_url}"))?;
    let mut args = vec![
        format!("--zk={zk}"),
        format!("--redis-host={redis_host}"),
        format!("--redis-port={redis_port}"),
        format!("--redis-db={}", info.redis_settings().db()),
        format!("--mysql-host={}", mysql.ip_or_hostname()),
        format!("--mysql-port={}", mysql.tcp_port()),
        format!("--mysql-user={}", mysql.user().unwrap_or_default()),
        format!("--mysql-password={}", mysql.pass().unwrap_or_default()),
        format!("--mysql-database={}", mysql.db_name().unwrap_or_default()),
    ];
    if let Some(password) = info.redis_settings().password() {
        args.push(format!("--redis-password={password}"));
    }
    Ok(args)
}

/// A free loopback port, for a provider whose Redis settings must be written before it starts.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind((PYTHON_HOST, 0)).context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// `json.dumps` of the design's node settings, byte for byte as Python writes them.
pub fn python_node_json(port: u16, weight: u32, valid: u8) -> String {
    format!(r#"{{"host": "{PYTHON_HOST}", "port": {port}, "weight": {weight}, "valid": {valid}}}"#)
}

/// A running `registry_provider.py`; killed when dropped.
#[derive(Debug)]
pub struct PythonProvider {
    peer: Peer,
    port: u16,
}

impl PythonProvider {
    /// The port it serves and registered.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its node's registry key in `env` under `appkey` (service `Directory`).
    pub fn node_key(&self, env: Env, appkey: &str) -> Result<NodeKey> {
        Ok(NodeKey::new(env, appkey, "Directory", PYTHON_HOST, self.port)?)
    }

    /// What it logged so far (the design logs every registry step).
    pub fn stderr(&self) -> String {
        self.peer.stderr()
    }
}
