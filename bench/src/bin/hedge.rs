//! Hedged requests against a slow node: three nodes of one service, one of them answering in
//! `--slow-ms` (200) instead of `--fast-ms` (1); the same probe client calls them through
//! discovery (the embedded registry, real TCP on 127.0.0.1) without and then with hedging, in
//! alternating rounds, and prints one table: p50, p99 and max per mode, the p99 ratio, and the
//! backups sent. `echo` is marked idempotent for the client (`ClusterOptions::idempotent`).
//!
//! Run by `scripts/bench.sh hedge`.

mod idl {
    probe::include_idl!();
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use probe::{CallError, Channel};
use probe_bench::histogram::Histogram;
use probe_runtime::client::{ClusterOptions, ClusterTransport, HedgeConfig};
use probe_runtime::discovery::ServiceRoutes;
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
use probe_runtime::registry::{Registry, RegistrySession};
use probe_runtime::server::{Server, ServerHandle};

use idl::echo::{Echo, EchoClient, EchoServer};

#[derive(Parser, Debug)]
#[command(about = "p99 with and without hedged requests, one of three nodes slow")]
struct Args {
    /// Calls per round and mode.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Callers making them at once.
    #[arg(long, default_value_t = 8)]
    callers: usize,
    /// Rounds (each mode once per round, alternating).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The fast nodes' answer time.
    #[arg(long, default_value_t = 1)]
    fast_ms: u64,
    /// The slow node's answer time.
    #[arg(long, default_value_t = 200)]
    slow_ms: u64,
    /// The latency percentile after which a backup goes.
    #[arg(long, default_value_t = 0.5)]
    percentile: f64,
    /// Retries per call the budget allows (hedges spend it).
    #[arg(long, default_value_t = 0.5)]
    budget: f64,
}

/// Answers after a fixed time.
struct Delayed(Duration);

impl Echo for Delayed {
    async fn echo(&self, payload: Bytes) -> Result<Bytes, CallError> {
        tokio::time::sleep(self.0).await;
        Ok(payload)
    }
}

async fn node(delay: Duration, session: &dyn RegistrySession) -> Result<ServerHandle> {
    let server = Server::builder().add_service(EchoServer::new(Delayed(delay))).start("127.0.0.1:0").await?;
    let addr = server.local_addr();
    let key = NodeKey::new(Env::Dev, "hedge_bench", "Echo", "127.0.0.1", addr.port())?;
    let mut data = NodeData::new("127.0.0.1", addr.port());
    (data.protocol, data.transport) = (Some("binary".into()), Some("framed".into()));
    session.register(&key, &data).await?;
    Ok(server)
}

/// A client over the three nodes; hedging with `hedge`.
async fn client(
    embedded: &Embedded,
    args: &Args,
    hedge: Option<HedgeConfig>,
) -> Result<(EchoClient, Arc<ClusterTransport>)> {
    let registry: Arc<dyn Registry> = Arc::new(embedded.registry.clone());
    let routes = ServiceRoutes::watch(registry, Env::Dev, "hedge_bench", "Echo").await?;
    let mut options = ClusterOptions::default().idempotent("echo");
    options.retry_budget.ratio = args.budget;
    if let Some(hedge) = hedge {
        options = options.hedge(hedge);
    }
    let transport = Arc::new(ClusterTransport::new(routes, options));
    Ok((EchoClient::new(Channel::new(Shared(transport.clone()))), transport))
}

/// The transport, shared with the bench (which reads its backups).
#[derive(Debug)]
struct Shared(Arc<ClusterTransport>);

impl probe_runtime::client::Transport for Shared {
    fn protocol(&self) -> probe_runtime::service::Protocol {
        self.0.protocol()
    }
    fn send(
        &self,
        call: probe_runtime::client::Call,
    ) -> probe_runtime::service::BoxFuture<'_, Result<Option<Bytes>, probe_runtime::Error>> {
        self.0.send(call)
    }
    fn timeout(&self) -> Option<Duration> {
        self.0.timeout()
    }
}

/// `calls` calls from `callers` at once; their latencies in microseconds.
async fn run(client: &EchoClient, calls: usize, callers: usize) -> Result<Histogram> {
    let mut tasks = Vec::new();
    for c in 0..callers {
        let client = client.clone();
        let share = calls / callers + usize::from(c < calls % callers);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Histogram::new();
            let payload = Bytes::from_static(&[7; 64]);
            for _ in 0..share {
                let started = Instant::now();
                client.echo(payload.clone()).await?;
                latencies.record(started.elapsed().as_micros() as u64);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Histogram::new();
    for task in tasks {
        all.merge(&task.await.context("a caller panicked")??);
    }
    Ok(all)
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let embedded = Embedded::new();
    let session = embedded.registry.session().await?;
    let (fast, slow) = (Duration::from_millis(args.fast_ms), Duration::from_millis(args.slow_ms));
    let _nodes = [
        node(fast, session.as_ref()).await?,
        node(fast, session.as_ref()).await?,
        node(slow, session.as_ref()).await?,
    ];
    let hedge = HedgeConfig { percentile: args.percentile, ..HedgeConfig::default() };
    let (plain, _) = client(&embedded, &args, None).await?;
    let (hedged, transport) = client(&embedded, &args, Some(hedge)).await?;
    // Warm both (connections; the hedge delay's first percentile).
    run(&plain, 200, args.callers).await?;
    run(&hedged, 400, args.callers).await?;
    let (mut without, mut with) = (Histogram::new(), Histogram::new());
    let backups_before = transport.hedges_sent();
    for _ in 0..args.rounds {
        without.merge(&run(&plain, args.calls, args.callers).await?);
        with.merge(&run(&hedged, args.calls, args.callers).await?);
    }
    let backups = transport.hedges_sent() - backups_before;
    println!(
        "hedge: 3 nodes, one answering in {} ms instead of {} ms; {} callers, {} calls per mode",
        args.slow_ms,
        args.fast_ms,
        args.callers,
        without.len()
    );
    println!("| mode | p50 ms | p99 ms | max ms | backups |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (mode, h, sent) in [("no hedging", &without, 0), ("hedging (p50 delay)", &with, backups)] {
        println!(
            "| {mode} | {} | {} | {} | {sent} ({:.0}%) |",
            ms(h.quantile(0.5)),
            ms(h.quantile(0.99)),
            ms(h.max()),
            sent as f64 * 100.0 / h.len().max(1) as f64
        );
    }
    let ratio = without.quantile(0.99) as f64 / with.quantile(0.99).max(1) as f64;
    println!("hedge: p99 without / with hedging = {ratio:.1}x (goal: at least 5x)");
    Ok(())
}
