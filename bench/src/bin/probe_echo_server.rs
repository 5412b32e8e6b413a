//! probe's Thrift server serving the generated `Echo` service, whose handler returns the payload.

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use probe::CallError;
use probe_bench::server_cli::{ServerArgs, terminated};
use probe_runtime::middleware::{ServerService, layer_fn};
use probe_runtime::server::Server;

mod idl {
    probe::include_idl!();
}

use idl::echo::{Echo, EchoServer};

/// Serves `Echo.echo` with probe's server.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// Serve with per-call metrics off (on by default, as in every probe server), to measure
    /// what they cost.
    #[arg(long)]
    no_metrics: bool,
    /// Wrap every call in this many pass-through middleware layers (0: none, the default), to
    /// measure what the layered call path costs.
    #[arg(long, default_value_t = 0)]
    layers: usize,
    /// The handler yields to the scheduler once before it answers, as a handler that waits for
    /// anything (a database, another service) does: its call then waits under its deadline.
    #[arg(long)]
    yield_once: bool,
}

#[derive(Debug)]
struct EchoHandler {
    yield_once: bool,
}

impl Echo for EchoHandler {
    async fn echo(&self, payload: Bytes) -> Result<Bytes, CallError> {
        if self.yield_once {
            tokio::task::yield_now().await;
        }
        Ok(payload)
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let handler = EchoHandler { yield_once: cli.yield_once };
    cli.server.runtime()?.block_on(serve(cli.server, handler, !cli.no_metrics, cli.layers))
}

async fn serve(args: ServerArgs, handler: EchoHandler, metrics: bool, layers: usize) -> Result<()> {
    let listener = args.bind().await?;
    let mut builder = Server::builder().add_service(EchoServer::new(handler)).metrics(metrics);
    for _ in 0..layers {
        builder = builder.layer(layer_fn(|inner: ServerService| inner));
    }
    let server = builder.start_with_listener(listener).await.context("cannot start the probe server")?;
    terminated().await?;
    server.shutdown().await.context("the probe server did not stop cleanly")
}
