//! What both echo servers take on the command line, and how they start.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Args;
use tokio::net::TcpListener;
use tokio::runtime::{Builder, Runtime};

/// Where a server listens and how many threads it runs.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The address to listen on; port 0 picks a free port, printed as `listening on ADDR`.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Tokio worker threads; 0 for one per CPU.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl ServerArgs {
    /// A multi-thread runtime with the threads asked for.
    pub fn runtime(&self) -> Result<Runtime> {
        runtime(self.threads)
    }

    /// Binds the listener and prints `listening on ADDR`, the line `scripts/bench.sh` waits for.
    pub async fn bind(&self) -> Result<TcpListener> {
        let listener =
            TcpListener::bind(self.addr).await.with_context(|| format!("cannot listen on {}", self.addr))?;
        let local = listener.local_addr().context("the listener has no address")?;
        println!("listening on {local}");
        Ok(listener)
    }
}

/// A multi-thread tokio runtime with `threads` workers (0: one per CPU).
pub fn runtime(threads: usize) -> Result<Runtime> {
    let mut builder = Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    builder.enable_all().build().context("cannot start the tokio runtime")
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn terminated() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        ctrl_c = tokio::signal::ctrl_c() => ctrl_c.context("cannot listen for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}
