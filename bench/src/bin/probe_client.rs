//! probe's generated `EchoClient` calling `Echo.echo` in a closed loop: `callers` tasks, one call
//! in flight each, through a direct pooled or multiplexed [`TcpTransport`] or through
//! [`Channel::discover`] (embedded registry in this process, the server under test written into
//! it as a probe node, with `--theader` as probe's servers register themselves: routes, balancer,
//! ejection, retry budget and metrics all on the path). `--mode mux --theader` is the same wire
//! as a discovered call to a probe node, over a direct connection.
//!
//! ```text
//! probe-client --addr 127.0.0.1:PORT --mode mux -c 100 --connections 4 --server-pid PID
//! ```
//!
//! Prints one `key=value` line (see `probe_bench::callers`).

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use probe_bench::callers::run_callers;
use probe_bench::server_cli::{ClientRunArgs, runtime};
use probe_runtime::client::{Channel, ClusterOptions, TcpTransport};
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
use probe_runtime::registry::{Backends, Registry};

mod idl {
    probe::include_idl!();
}

use idl::echo::EchoClient;

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `TcpTransport`, one call in flight per connection, `--connections` of them.
    Pooled,
    /// `TcpTransport` multiplexed over `--connections` connections.
    Mux,
    /// `Channel::discover` over an embedded registry listing the server as a probe node.
    Discover,
}

/// Calls `Echo.echo` with probe's generated client and reports throughput, latency and CPU.
#[derive(Debug, Parser)]
struct Cli {
    /// The server.
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, value_enum, default_value_t = Mode::Mux)]
    mode: Mode,
    /// Connections (the transport's pool size, or the cluster's multiplexed connections per
    /// node); 0 for the default.
    #[arg(long, default_value_t = 0)]
    connections: usize,
    /// With `--mode discover`: the node advertises THeader, as probe's servers do (their calls
    /// then go in header frames, with the caller's request id and time left). With `--mode mux`
    /// or `pooled`: the transport speaks THeader and names calls `Echo:echo`, as a discovered
    /// call to a probe node goes (the same wire without discovery, balancing or node metrics).
    #[arg(long)]
    theader: bool,
    /// With `--mode discover`: also list this many nodes that refuse connections (a fleet with
    /// nodes down): calls drawn to them fail over, and their circuit breakers stay tracked.
    #[arg(long, default_value_t = 0)]
    dead_nodes: usize,
    #[command(flatten)]
    run: ClientRunArgs,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    runtime(cli.run.threads)?.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    // Kept alive for the run: the registry node lives as long as its session.
    let embedded = Embedded::new();
    let channel = match cli.mode {
        Mode::Pooled | Mode::Mux => {
            let mut builder = TcpTransport::builder(cli.addr.to_string())
                .multiplex(cli.mode == Mode::Mux)
                .header(cli.theader)
                .service_prefix(cli.theader);
            if cli.connections > 0 {
                builder = builder.pool_size(cli.connections);
            }
            Channel::new(builder.connect().await.context("cannot connect")?)
        }
        Mode::Discover => {
            let backends = Backends::embedded(Env::Dev, &embedded);
            let session = embedded.registry.session().await?;
            let (ip, port) = (cli.addr.ip().to_string(), cli.addr.port());
            let key = NodeKey::new(Env::Dev, "bench_app", "Echo", &ip, port)?;
            let mut node = NodeData::new(&ip, port);
            node.protocol = Some("binary".to_owned());
            node.transport = Some("framed".to_owned());
            node.version = Some(env!("CARGO_PKG_VERSION").to_owned());
            if cli.theader {
                node.headers = Some(probe_runtime::registry::layout::HEADERS_THEADER.to_owned());
            }
            session.register(&key, &node).await?;
            for port in refusing_ports(cli.dead_nodes)? {
                let key = NodeKey::new(Env::Dev, "bench_app", "Echo", "127.0.0.1", port)?;
                session.register(&key, &NodeData { port, ..node.clone() }).await?;
            }
            std::mem::forget(session);
            let mut options = ClusterOptions::default();
            if cli.connections > 0 {
                options.mux_connections = cli.connections;
            }
            Channel::discover(&backends, "bench_app", "Echo", options).await?
        }
    };
    let client = EchoClient::new(channel);
    // Static bytes: a clone per call counts no references (the load generator and the bare client
    // copy theirs from a template too), so the caller's own data costs the client nothing.
    let bytes: Vec<u8> = (0..cli.run.payload).map(|i| b'a' + (i % 26) as u8).collect();
    let payload = Bytes::from_static(Box::leak(bytes.into_boxed_slice()));
    run_callers(cli.run.plan(), move |mut calls| {
        let (client, payload) = (client.clone(), payload.clone());
        async move {
            while calls.more() {
                let reply = client.echo(payload.clone()).await.context("echo failed")?;
                if reply != payload {
                    bail!("the echoed payload differs");
                }
            }
            Ok(calls)
        }
    })
    .await
}

/// `n` loopback ports nothing listens on (each bound, then let go).
fn refusing_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port"))
        .collect::<Result<Vec<_>>>()?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}
