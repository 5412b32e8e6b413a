//! The probe demo: three providers of `examples/idl/demo.thrift` with weights 10/20/70, a client
//! calling them through discovery with a live line of calls per node, and, half-way, one node
//! switched off through the operator API; its traffic falls to zero. Ctrl-c stops everything.
//!
//! With no option it runs on embedded in-process backends: nothing to install. With
//! `--config examples/real-backends.toml` it is the same program on ZooKeeper, Redis and MySQL
//! (`scripts/services.sh up` starts them on loopback).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use probe::registry::{Backends, Operator};
use probe::{Config, shutdown_signal};
use probe_console::console::{ConsoleOptions, ConsoleState, serve_on};
use probe_examples::fleet::{self, Node};
use tokio::sync::oneshot;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "probe demo: weighted providers, a live client, and a node switched off half-way")]
struct Args {
    /// A probe config file for real backends (e.g. examples/real-backends.toml); default: embedded.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seconds before the weight-70 node is switched off.
    #[arg(long, default_value_t = 10)]
    disable_after: u64,
    /// Stop by itself after this many seconds (default: run until ctrl-c).
    #[arg(long)]
    seconds: Option<u64>,
    /// Where the console listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8480")]
    console: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => Config::load(Some(path)).with_context(|| format!("cannot load {}", path.display()))?,
        None => Config::embedded(),
    };
    let backends = Backends::connect(&config).await.context("cannot reach the backends")?;
    println!(
        "probe demo on {} backends, env {}",
        if args.config.is_some() { "real" } else { "embedded" },
        config.env
    );
    let operator = Operator::new(backends.clone()).with_actor("demo");
    fleet::register_app(&operator).await?;

    let mut nodes = Vec::new();
    for weight in [10, 20, 70] {
        let node = fleet::start_node(&backends, &operator, weight).await?;
        println!("provider {} registered with weight {weight}", node.key.zk_node_path());
        nodes.push(node);
    }
    let names: Vec<String> = [10, 20, 70].iter().map(|w| format!("weight {w}")).collect();
    let (stop_console, console) = start_console(args.console, &backends).await?;
    let mut callers = fleet::start_client(&backends, 4, Duration::from_millis(1)).await?;
    println!("client calling Demo.say through discovery; calls per node each second:");

    let outcome = run(&args, &operator, &nodes, &names, &callers).await;
    callers.tasks.shutdown().await;
    let _ = stop_console.send(());
    console.await??;
    for node in nodes {
        node.server.shutdown().await?;
    }
    outcome
}

/// Serves the console on `bind` with fresh tokens, and prints where and how to log in.
async fn start_console(
    bind: SocketAddr,
    backends: &Backends,
) -> Result<(oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let token = || format!("{:032x}", rand::random::<u128>());
    let options = ConsoleOptions { bind, admin_token: token(), viewer_token: token(), tls: None };
    let state = ConsoleState::new(&options, backends.clone())?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot serve the console on {bind}; choose another with --console"))?;
    println!(
        "console: http://{}/  admin token {}  (viewer token {})",
        listener.local_addr()?,
        options.admin_token,
        options.viewer_token
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_on(listener, state, async {
        let _ = stopped.await;
    }));
    Ok((stop, task))
}

/// Prints a line a second, switches the last node off half-way, and sums up when stopped.
async fn run(
    args: &Args,
    operator: &Operator,
    nodes: &[Node],
    names: &[String],
    callers: &fleet::Callers,
) -> Result<()> {
    let tally = &callers.tally;
    let started = Instant::now();
    let (mut before, mut after) = (BTreeMap::<String, u64>::new(), BTreeMap::<String, u64>::new());
    let mut disabled = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {}
        }
        let (counts, errors) = tally.take();
        println!("{}", fleet::render(&format!("{}s", started.elapsed().as_secs()), names, &counts, errors));
        let total = if disabled { &mut after } else { &mut before };
        for (node, n) in counts {
            *total.entry(node).or_default() += n;
        }
        if !disabled && started.elapsed() >= Duration::from_secs(args.disable_after) {
            let change = operator.disable(&nodes[2].key).await?;
            println!(
                "switched off {} (valid {} -> {}) through the operator API; its calls fall to zero",
                nodes[2].key.zk_child(),
                change.before.valid,
                change.after.valid
            );
            disabled = true;
            // From here on count only calls that picked their node after the client saw the switch.
            let off = nodes[2].key.zk_child();
            let mut changes = callers.routes.changes();
            let seen = changes.wait_for(|_| callers.routes.load().table.get(&off).is_some_and(|e| !e.valid));
            tokio::time::timeout(Duration::from_secs(5), seen)
                .await
                .context("the client did not see the switch-off within 5 s")??;
            tally.count_from(callers.routes.load().table.generation);
            tally.take();
        }
        if args.seconds.is_some_and(|s| started.elapsed() >= Duration::from_secs(s)) {
            break;
        }
    }
    println!("{}", fleet::render("before", names, &before, 0));
    if disabled {
        println!("{}", fleet::render("after", names, &after, 0));
    }
    println!("stopped cleanly");
    Ok(())
}
