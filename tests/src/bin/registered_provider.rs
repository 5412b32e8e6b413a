//! A registered `Directory` provider in its own process, for tests that kill one with SIGKILL.
//!
//! Usage: `registered_provider APPKEY TAG`, with the backends in `PROBE_*` variables. Prints
//! `READY <port>` once registered, then serves until SIGTERM or ctrl-c.

use anyhow::{Context, Result};
use probe_runtime::config::Config;
use probe_runtime::registry::Backends;
use probe_runtime::server::shutdown_signal;
use probe_tests::governance::start_provider;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(appkey), Some(tag)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: registered_provider APPKEY TAG (backends in PROBE_* variables)");
    };
    let config = Config::from_env().context("bad PROBE_* configuration")?;
    let backends = Backends::connect(&config).await?;
    let server = start_provider(&backends, &appkey, &tag).await?;
    println!("READY {}", server.local_addr().port());
    shutdown_signal().await;
    server.shutdown().await?;
    Ok(())
}
