//! What the echo servers and the client benches take on the command line, and how they start.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Args;
use tokio::net::TcpListener;
use tokio::runtime::{Builder, Runtime};

use crate::callers::CallerPlan;

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

/// How many callers a client bench runs, for how long, and what it reports on: what
/// `probe-client` and `bare-client` both take (Volo's bench, which builds without clap, parses the
/// same flags by hand).
#[derive(Debug, Clone, Args)]
pub struct ClientRunArgs {
    /// Concurrent callers, one call in flight each.
    #[arg(short = 'c', long, default_value_t = 16)]
    pub callers: usize,
    /// Payload bytes per call.
    #[arg(long, default_value_t = 128)]
    pub payload: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Seconds of calls before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// The server's process id, to report its CPU time per call.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Tokio worker threads; 0 for one per CPU.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl ClientRunArgs {
    /// The callers' plan.
    pub fn plan(&self) -> CallerPlan {
        CallerPlan {
            callers: self.callers,
            warmup: self.warmup,
            seconds: self.seconds,
            server_pid: self.server_pid,
        }
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
