//! Load generator for the echo servers: C connections, D calls in flight on each, framed
//! strict-binary Thrift written by hand so the bytes per call are the same for every server.
//!
//! ```text
//! loadgen --addr 127.0.0.1:PORT -c 16 -d 1 --payload 128 --seconds 3 --warmup 1 \
//!         --server-pid PID --expect thrift --format kv
//! ```
//!
//! Reports calls per second, latency percentiles (send to reply, HDR-style histogram), and with
//! `--server-pid` the server's CPU time (user + system, from `/proc/PID/stat`) per call.

mod connection;
mod report;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use probe_bench::histogram::Histogram;
use probe_bench::server_cli::runtime;
use probe_bench::wire::{EchoCall, Expect, Header};
use tokio::net::TcpStream;

use connection::{Plan, drive};
use report::{CpuSampler, Format, Report};

/// Drives framed binary Thrift `echo` calls at a server and reports throughput, latency and CPU.
#[derive(Debug, Parser)]
struct Cli {
    /// The server.
    #[arg(long)]
    addr: SocketAddr,
    /// Connections.
    #[arg(short = 'c', long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Calls in flight per connection.
    #[arg(short = 'd', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    depth: u32,
    /// Payload bytes per call (the binary argument, echoed back).
    #[arg(long, default_value_t = 128)]
    payload: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// What the server answers: a Thrift reply (probe) or the call itself (raw echo server).
    #[arg(long, value_enum, default_value_t = Expect::Thrift)]
    expect: Expect,
    /// Framing: framed binary (`none`), or THeader without (`bare`) or with probe's info headers
    /// (`info`).
    #[arg(long, value_enum, default_value_t = Header::None)]
    header: Header,
    /// The server's process id, to report its CPU time per call.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Tokio worker threads of the load generator; 0 for one per CPU.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// `human` lines, or one `key=value` line for scripts.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if !(cli.seconds > 0.0 && cli.warmup >= 0.0) {
        bail!("--seconds must be positive and --warmup not negative");
    }
    let (latency, cpu) = runtime(cli.threads)?.block_on(run(&cli))?;
    // Joined off the runtime: the sampler thread wakes once more, at the end of the window.
    let frame_len = EchoCall::framed(cli.payload, cli.expect, cli.header)?.frame_len();
    Report::new(latency, cpu.join()?, frame_len).print(cli.format);
    Ok(())
}

/// Connects, runs the load, and returns the merged latencies and the running CPU sampler.
async fn run(cli: &Cli) -> Result<(Histogram, CpuSampler)> {
    let call = EchoCall::framed(cli.payload, cli.expect, cli.header)?;
    let mut streams = Vec::with_capacity(cli.connections as usize);
    for _ in 0..cli.connections {
        let stream =
            TcpStream::connect(cli.addr).await.with_context(|| format!("cannot connect to {}", cli.addr))?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(cli.warmup);
    let end = measure_from + Duration::from_secs_f64(cli.seconds);
    let plan = Arc::new(Plan { call, depth: cli.depth as usize, measure_from, end });
    let cpu = CpuSampler::spawn(cli.server_pid, measure_from, end);

    let tasks: Vec<_> = streams.into_iter().map(|stream| tokio::spawn(drive(stream, plan.clone()))).collect();
    let mut latency = Histogram::new();
    for task in tasks {
        let measured = task.await.context("a connection task failed")??;
        latency.merge(&measured.latency);
    }
    Ok((latency, cpu))
}
