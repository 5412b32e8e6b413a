//! One node at three times its capacity, with and without request limits.
//!
//! The node is probe's server in front of a backend of `--workers` slots held `--service-ms`
//! each (calls past them queue in the handler), in this process with a probe client on a runtime
//! of its own. The bench measures the node's capacity (a closed loop of many callers) and its p99
//! at `--idle-load` of it (open loop). Then each overload run offers the idle load for `--lead`
//! seconds, steps up to `--factor` times the capacity and measures `--seconds` after `--warmup`:
//! without a limit, with the adaptive limit (`--adaptive`), with it and a mix of priorities
//! (`--critical` of the calls critical, the rest sheddable), and with a static concurrency limit
//! (`--concurrency`) for reference; then any `--run` runs. Each run gets a fresh
//! server. Prints one table.
//!
//! ```text
//! overload                                  # K=8 workers x 2 ms, 3x, 10 s per run
//! overload --seconds 60 --trace             # longer, with the adaptive limit over time
//! overload --only-extra --run 'wide={"adaptive": {"min": 8, "max": 64}}'
//! ```
//!
//! Run by `scripts/bench.sh overload`.

mod backend;
mod load;
mod table;
mod tally;

mod idl {
    probe::include_idl!();
}

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use probe_bench::server_cli::runtime;
use probe_runtime::limits::RequestLimits;
use tokio::runtime::Runtime;

use backend::{Limiter, Node, Shape};
use load::{Clients, Offer};
use table::{Row, Table};
use tally::Measured;

/// Offers a node three times its capacity, with and without request limits.
#[derive(Debug, Parser)]
struct Cli {
    /// The backend's workers (calls served at once).
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Milliseconds each call holds a worker (tokio's timer rounds up to the next millisecond).
    #[arg(long, default_value_t = 2.0)]
    service_ms: f64,
    /// The offered load, as a multiple of the measured capacity.
    #[arg(long, default_value_t = 3.0)]
    factor: f64,
    /// The load at which the idle p99 is measured, as a share of the capacity.
    #[arg(long, default_value_t = 0.4)]
    idle_load: f64,
    /// Measured seconds of each overload run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds of each run before the window opens (the queue and the limit settle).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds each overload run offers the idle load before it steps up to the overload (the
    /// node serves normally first, as it would before a surge).
    #[arg(long, default_value_t = 3.0)]
    lead: f64,
    /// Measured seconds of the capacity and idle runs.
    #[arg(long, default_value_t = 4.0)]
    idle_seconds: f64,
    /// Closed-loop callers that measure the capacity (default: 16 per worker).
    #[arg(long)]
    callers: Option<usize>,
    /// Skip measuring the capacity: take this many calls per second.
    #[arg(long)]
    capacity: Option<f64>,
    /// Every call's timeout in milliseconds (the server is told the time left).
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// The adaptive run's limits document.
    #[arg(long, default_value = r#"{"adaptive": {"min": 4, "max": 1000}}"#)]
    adaptive: String,
    /// The share of critical calls in the mixed-priority adaptive run (the rest sheddable); 0
    /// skips the run.
    #[arg(long, default_value_t = 0.2)]
    critical: f64,
    /// A static concurrency limit to run for reference; 0 skips it (default: twice the workers).
    #[arg(long)]
    concurrency: Option<u32>,
    /// More runs: `LABEL=LIMITS_JSON`, all calls normal (repeatable).
    #[arg(long = "run", value_name = "LABEL=JSON")]
    runs: Vec<String>,
    /// Multiplexed connections from the client.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// The most calls the client keeps outstanding (calls due past it are counted unsent).
    #[arg(long, default_value_t = 50_000)]
    max_outstanding: usize,
    /// Tokio worker threads of the server; 0 for one per CPU.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// Tokio worker threads of the client; 0 for one per CPU.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Only the `--run` runs (after the capacity and idle ones).
    #[arg(long)]
    only_extra: bool,
    /// Print each limited run's adaptive limit and calls in flight over time.
    #[arg(long)]
    trace: bool,
}

/// One overload run: its label, what limits the node, and the share of critical calls (the rest
/// sheddable; `None`: all normal).
struct Run {
    label: String,
    limiter: Limiter,
    critical: Option<f64>,
}

impl Run {
    fn new(label: impl Into<String>, limiter: Limiter) -> Run {
        Run { label: label.into(), limiter, critical: None }
    }
}

/// The overload runs `cli` asks for, in order.
fn runs(cli: &Cli) -> Result<Vec<Run>> {
    let limits = |text: &str| {
        RequestLimits::parse(text)
            .map(Limiter::Limits)
            .map_err(|e| anyhow!("bad limits {text}: {}", probe_runtime::limits::describe(&e)))
    };
    let mut runs = Vec::new();
    if !cli.only_extra {
        runs.push(Run::new("no limit", Limiter::None));
        runs.push(Run::new("adaptive", limits(&cli.adaptive)?));
        if cli.critical > 0.0 {
            let label = format!("adaptive, {:.0}% critical", cli.critical * 100.0);
            runs.push(Run {
                critical: Some(cli.critical.min(1.0)),
                ..Run::new(label, limits(&cli.adaptive)?)
            });
        }
        let concurrency = cli.concurrency.unwrap_or(2 * cli.workers as u32);
        if concurrency > 0 {
            let text = format!(r#"{{"concurrency": {concurrency}}}"#);
            runs.push(Run::new(format!("concurrency {concurrency}"), limits(&text)?));
        }
    }
    for run in &cli.runs {
        let (label, text) = run.split_once('=').context("--run takes LABEL=LIMITS_JSON")?;
        runs.push(Run::new(label, limits(text)?));
    }
    Ok(runs)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if !(cli.seconds > 0.0 && cli.idle_seconds > 0.0 && cli.factor > 0.0 && cli.idle_load > 0.0) {
        bail!("--seconds, --idle-seconds, --factor and --idle-load must be positive");
    }
    if !(cli.warmup >= 0.0 && cli.lead >= 0.0) {
        bail!("--warmup and --lead must not be negative");
    }
    let runs = runs(&cli)?;
    let mut bench = Bench {
        client: runtime(cli.client_threads)?,
        server: Some(runtime(cli.server_threads)?),
        shape: Shape { workers: cli.workers, service: Duration::from_secs_f64(cli.service_ms / 1e3) },
        timeout: Duration::from_millis(cli.timeout_ms),
        connections: cli.connections,
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "overload: {} workers x {} ms; {} CPUs shared by the server and the client; load average {}",
        cli.workers,
        cli.service_ms,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split(' ').take(3).collect::<Vec<_>>().join(" "),
    );
    let capacity = match cli.capacity {
        Some(capacity) => capacity,
        None => {
            let callers = cli.callers.unwrap_or(cli.workers * 16);
            bench.capacity(callers, Duration::from_secs_f64(cli.idle_seconds))?
        }
    };
    if capacity <= 0.0 {
        bail!("the node served nothing: no capacity to measure against");
    }
    let mut table = Table::new(capacity, cli.trace);
    table.header();

    let secs = Duration::from_secs_f64;
    let idle = Offer {
        lead: None,
        rate: capacity * cli.idle_load,
        warmup: Duration::from_secs(1),
        window: secs(cli.idle_seconds),
        max_outstanding: cli.max_outstanding,
        critical: None,
    };
    let label = format!("idle ({:.0}% of capacity)", cli.idle_load * 100.0);
    table.idle(Row { label, measured: bench.offer(Limiter::None, idle)?, judged: false });
    let overload = Offer {
        lead: (cli.lead > 0.0).then_some((secs(cli.lead), idle.rate)),
        rate: capacity * cli.factor,
        warmup: secs(cli.warmup),
        window: secs(cli.seconds),
        ..idle
    };
    for run in runs {
        let judged = !matches!(run.limiter, Limiter::None);
        let measured = bench.offer(run.limiter, Offer { critical: run.critical, ..overload })?;
        table.row(Row { label: run.label, measured, judged });
    }
    table.footer();
    Ok(())
}

/// The runtimes and what every run shares.
struct Bench {
    client: Runtime,
    /// The server's runtime, lent to each node while it runs.
    server: Option<Runtime>,
    shape: Shape,
    timeout: Duration,
    connections: usize,
}

impl Bench {
    /// Starts a fresh node limited by `limiter`, runs `body` against it, and stops it.
    fn with_node<T>(
        &mut self,
        limiter: Limiter,
        body: impl AsyncFnOnce(&Clients, &Node) -> Result<T>,
    ) -> Result<T> {
        let server = self.server.take().context("the server's runtime is lent out")?;
        let node = Node::start(server, self.shape, limiter)?;
        let out = self.client.block_on(async {
            let clients = Clients::connect(&node.addr(), self.connections, self.timeout).await?;
            body(&clients, &node).await
        });
        self.server = Some(node.stop()?);
        out
    }

    /// The node's capacity: calls per second served to `callers` closed-loop callers.
    fn capacity(&mut self, callers: usize, window: Duration) -> Result<f64> {
        let warmup = Duration::from_secs(1);
        self.with_node(Limiter::None, async |clients, _| {
            load::capacity(clients, callers, warmup, window).await
        })
    }

    /// `offer` to a fresh node limited by `limiter`.
    fn offer(&mut self, limiter: Limiter, offer: Offer) -> Result<Measured> {
        self.with_node(limiter, async |clients, node| load::open_loop(clients, offer, node.gate()).await)
    }
}
