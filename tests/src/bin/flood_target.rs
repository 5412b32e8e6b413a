//! A `Directory` server in its own process, for the connection-flood chaos test (which holds
//! thousands of sockets of its own and reads this process's memory from `/proc`).
//!
//! Usage: `flood_target MAX_CONNECTIONS`. Prints `READY <port>`, then serves on 127.0.0.1 until
//! SIGTERM or ctrl-c.

use std::time::Duration;

use anyhow::{Context, Result};
use probe_runtime::server::{Server, shutdown_signal};
use probe_tests::governance::Tagged;
use probe_tests::idl::interop::DirectoryServer;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let max: usize = std::env::args()
        .nth(1)
        .context("usage: flood_target MAX_CONNECTIONS")?
        .parse()
        .context("MAX_CONNECTIONS must be a number")?;
    let server = Server::builder()
        .add_service(DirectoryServer::new(Tagged { tag: "target".into() }))
        .max_connections(max)
        .max_connections_per_peer(max)
        .handshake_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(120))
        .start("127.0.0.1:0")
        .await?;
    println!("READY {}", server.local_addr().port());
    shutdown_signal().await;
    server.shutdown().await?;
    Ok(())
}
