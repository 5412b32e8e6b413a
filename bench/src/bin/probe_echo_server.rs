//! probe's Thrift server serving the generated `Echo` service, whose handler returns the payload.

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use probe::CallError;
use probe_bench::server_cli::{ServerArgs, terminated};
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
}

#[derive(Debug)]
struct EchoHandler;

impl Echo for EchoHandler {
    async fn echo(&self, payload: Bytes) -> Result<Bytes, CallError> {
        Ok(payload)
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    cli.server.runtime()?.block_on(serve(cli.server, !cli.no_metrics))
}

async fn serve(args: ServerArgs, metrics: bool) -> Result<()> {
    let listener = args.bind().await?;
    let server = Server::builder()
        .add_service(EchoServer::new(EchoHandler))
        .metrics(metrics)
        .start_with_listener(listener)
        .await
        .context("cannot start the probe server")?;
    terminated().await?;
    server.shutdown().await.context("the probe server did not stop cleanly")
}
