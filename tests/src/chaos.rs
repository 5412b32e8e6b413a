//! What the chaos tests do to the services `scripts/services.sh` runs: find a service's process,
//! kill it, start what is missing again, and read node settings back from Redis.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use probe_runtime::registry::layout::{NodeData, NodeKey, redis_hash};

/// The project's root: the tests crate's parent.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The pid `scripts/services.sh` wrote for `service` (`zk1`, `redis-cluster/2`, `mariadb`, ...).
pub fn service_pid(service: &str) -> Result<String> {
    let pid_file = project_root().join(format!("target/services/{service}/pid"));
    let pid = std::fs::read_to_string(&pid_file).with_context(|| {
        format!(
            "no pid file {}: {service} was not started by `scripts/services.sh up --cluster`",
            pid_file.display()
        )
    })?;
    Ok(pid.trim().to_owned())
}

/// Sends `signal` (`-9`, `-TERM`) to `pid`.
pub fn kill(pid: &str, signal: &str) -> Result<()> {
    ensure!(Command::new("kill").args([signal, pid]).status()?.success(), "kill {signal} {pid} failed");
    Ok(())
}

/// Whether process `pid` still runs.
pub fn running(pid: &str) -> Result<bool> {
    Ok(Command::new("kill").args(["-0", pid]).stderr(std::process::Stdio::null()).status()?.success())
}

/// Runs `scripts/services.sh up ARGS`: starts what is not running and waits until it answers.
pub fn services_up(args: &[&str]) -> Result<()> {
    let out =
        Command::new("bash").arg(project_root().join("scripts/services.sh")).arg("up").args(args).output()?;
    ensure!(
        out.status.success(),
        "scripts/services.sh up {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The settings of `key` in its env's Redis hash, through `conn` (a server or a cluster).
pub async fn stored_settings(conn: &mut impl redis::aio::ConnectionLike, key: &NodeKey) -> Result<NodeData> {
    let value: Option<String> =
        redis::cmd("HGET").arg(redis_hash(key.env())).arg(key.redis_field()).query_async(conn).await?;
    let value = value.with_context(|| format!("no settings in Redis for {key}"))?;
    Ok(NodeData::from_json(value.as_bytes())?)
}
