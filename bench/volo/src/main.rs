//! Volo's generated Thrift client (volo-thrift, its defaults but for the codec) calling `Echo.echo`
//! in a closed loop, reporting like probe's `probe-client` bench.
//!
//! ```text
//! volo-client --addr 127.0.0.1:PORT -c 16 --payload 128 --seconds 3 --warmup 1 --server-pid PID
//! ```
//!
//! The one setting changed from Volo's defaults is the codec: plain framed binary instead of
//! TTHeader-in-framed, which neither probe's server nor the raw echo server speaks. Connections
//! are Volo's default pool (one call in flight per connection, pingpong).

// The measuring loop and its statistics, shared with probe's client bench.
#[path = "../../src/callers.rs"]
mod callers;
#[path = "../../src/histogram.rs"]
#[allow(dead_code)]
mod histogram;
#[path = "../../src/proc_stat.rs"]
mod proc_stat;

mod generated {
    #![allow(warnings, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/volo_gen.rs"));
}

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use callers::{CallerPlan, run_callers};
use generated::volo_gen::echo::{EchoClient, EchoClientBuilder};

struct Cli {
    addr: SocketAddr,
    plan: CallerPlan,
    payload: usize,
    threads: usize,
}

fn parse() -> Result<Cli> {
    let mut cli = Cli {
        addr: "127.0.0.1:0".parse()?,
        plan: CallerPlan { callers: 16, warmup: 1.0, seconds: 3.0, server_pid: None },
        payload: 128,
        threads: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => cli.addr = value.parse()?,
            "-c" | "--callers" => cli.plan.callers = value.parse()?,
            "--warmup" => cli.plan.warmup = value.parse()?,
            "--seconds" => cli.plan.seconds = value.parse()?,
            "--server-pid" => cli.plan.server_pid = Some(value.parse()?),
            "--payload" => cli.payload = value.parse()?,
            "--threads" => cli.threads = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(cli)
}

fn main() -> Result<()> {
    let cli = parse()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if cli.threads > 0 {
        builder.worker_threads(cli.threads);
    }
    builder.enable_all().build()?.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let client: EchoClient = EchoClientBuilder::new("echo")
        .address(cli.addr)
        .make_codec(volo_thrift::codec::default::DefaultMakeCodec::framed())
        .build();
    // Static bytes, as probe's client bench sends: a clone per call counts no references.
    let bytes: Vec<u8> = (0..cli.payload).map(|i| b'a' + (i % 26) as u8).collect();
    let payload = pilota::Bytes::from_static(Box::leak(bytes.into_boxed_slice()));
    run_callers(cli.plan, move |mut calls| {
        let (client, payload) = (client.clone(), payload.clone());
        async move {
            while calls.more() {
                let reply =
                    client.echo(payload.clone()).await.map_err(|e| anyhow::anyhow!("echo failed: {e}"))?;
                if reply != payload {
                    bail!("the echoed payload differs");
                }
            }
            Ok(calls)
        }
    })
    .await
}
