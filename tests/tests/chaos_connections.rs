//! Chaos: 10,000 idle connections and slow-loris senders against one server (its own process, so
//! its memory can be read from `/proc`), with a real client calling it throughout. Prints one
//! `chaos:` line: the calls and failures of the real client, its p99 quiet and flooded, the
//! server's memory per connection under its configured limit, and what happens to connections
//! beyond the limit (slow-loris ones are evicted first, then new ones are closed).
//!
//! Everything stays on 127.0.0.1 and ends with the test. `PROBE_CHAOS_IDLE` sets the number of
//! idle connections (default 10,000; the process needs twice as many file descriptors).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use probe::Channel;
use probe_runtime::client::TcpTransport;
use probe_tests::idl::interop::DirectoryClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Slow-loris connections: each sends a frame's first bytes, one every 200 ms, never a whole one.
const LORIS: usize = 20;
/// Connections tried beyond the limit.
const BEYOND: usize = 200;

/// The target process, killed when dropped.
struct Target {
    child: Child,
    port: u16,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_target(max_connections: usize) -> Result<Target> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flood_target"))
        .arg(max_connections.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start flood_target")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port = line.strip_prefix("READY ").and_then(|p| p.trim().parse().ok());
    match port {
        Some(port) => Ok(Target { child, port }),
        None => {
            let _ = child.kill();
            bail!("flood_target printed {line:?} instead of READY <port>")
        }
    }
}

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS")?;
    Ok(kb * 1024)
}

/// A framed, strict binary `ping("x")` call.
fn ping_frame(seqid: i32) -> Vec<u8> {
    let mut message = Vec::new();
    message.extend_from_slice(&0x8001_0001u32.to_be_bytes());
    message.extend_from_slice(&4u32.to_be_bytes());
    message.extend_from_slice(b"ping");
    message.extend_from_slice(&seqid.to_be_bytes());
    message.extend_from_slice(&[11, 0, 1]);
    message.extend_from_slice(&1u32.to_be_bytes());
    message.push(b'x');
    message.push(0);
    let mut frame = (message.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&message);
    frame
}

/// Connects, makes one call, and returns the open connection (established, then idle); `None`
/// when the server closed it.
async fn established(port: u16) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.write_all(&ping_frame(1)).await.ok()?;
    let mut len = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut len)).await.ok()?.ok()?;
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut reply).await.ok()?;
    Some(stream)
}

/// Runs `futures` concurrently; their outputs.
async fn all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for future in futures {
        set.spawn(future);
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        out.extend(joined.ok());
    }
    out
}

/// `calls` pings from 4 callers; the latencies, and the failures.
async fn measure(client: &DirectoryClient, calls: usize) -> (Vec<Duration>, usize) {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = (Vec::new(), 0);
            for _ in 0..calls / 4 {
                let started = Instant::now();
                match client.ping("real".into()).await {
                    Ok(_) => out.0.push(started.elapsed()),
                    Err(_) => out.1 += 1,
                }
            }
            out
        }));
    }
    let mut all = (Vec::new(), 0);
    for task in tasks {
        if let Ok((latencies, failed)) = task.await {
            all.0.extend(latencies);
            all.1 += failed;
        }
    }
    all.0.sort();
    all
}

fn p99(latencies: &[Duration]) -> Duration {
    latencies.get(latencies.len() * 99 / 100).copied().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_and_slow_loris_keep_memory_bounded_and_clients_served() -> Result<()> {
    let idle: usize = std::env::var("PROBE_CHAOS_IDLE").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    // Room for the idle ones, the slow-loris ones and the real client; nothing more.
    let limit = idle + LORIS + 1;
    let target = start_target(limit)?;
    let pid = target.child.id();
    let port = target.port;
    let transport = TcpTransport::builder(format!("127.0.0.1:{port}")).multiplex(true).build();
    let client = DirectoryClient::new(Channel::new(transport));
    client.ping("warm".into()).await.context("the target does not answer")?;

    let (quiet, quiet_failed) = measure(&client, 2000).await;
    let rss_before = rss(pid)?;

    // The idle connections, 500 at a time.
    let mut held = Vec::with_capacity(idle);
    let started = Instant::now();
    while held.len() < idle {
        let batch = (idle - held.len()).min(500);
        let opened = all((0..batch).map(|_| established(port))).await;
        let before = held.len();
        held.extend(opened.into_iter().flatten());
        ensure!(held.len() > before, "the server took no more connections at {before}");
    }
    let opening = started.elapsed();

    // Slow-loris: a frame length promising 100 bytes, then one byte every 200 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let loris_closed = Arc::new(AtomicUsize::new(0));
    let mut loris = Vec::new();
    for _ in 0..LORIS {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(&100u32.to_be_bytes()).await?;
        let (stop, closed) = (stop.clone(), loris_closed.clone());
        loris.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(&[0x80]).await.is_err() {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_flooded = rss(pid)?;
    let (flooded, flooded_failed) = measure(&client, 2000).await;

    // Beyond the limit: new connections evict the slow-loris ones (pending, no whole request),
    // then are closed at once.
    let beyond = all((0..BEYOND).map(|_| established(port))).await;
    let served_beyond = beyond.iter().filter(|c| c.is_some()).count();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let evicted = loris_closed.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for task in loris {
        let _ = task.await;
    }
    let (after, after_failed) = measure(&client, 400).await;

    let calls = quiet.len() + flooded.len() + after.len() + quiet_failed + flooded_failed + after_failed;
    let failed = quiet_failed + flooded_failed + after_failed;
    let per_connection = rss_flooded.saturating_sub(rss_before) / (idle + LORIS) as u64;
    let (q, f) = (p99(&quiet), p99(&flooded));
    println!(
        "chaos: connection flood: {calls} calls, {failed} failed, {idle} idle + {LORIS} slow-loris connections \
         (limit {limit}, opened in {:.1} s): server RSS {:.1} -> {:.1} MB ({:.1} KB per connection); client \
         p99 quiet {:.2} ms, flooded {:.2} ms ({:.2}x); {BEYOND} connections beyond the limit: {served_beyond} \
         served after evicting {evicted} slow-loris, {} closed",
        opening.as_secs_f64(),
        rss_before as f64 / 1e6,
        rss_flooded as f64 / 1e6,
        per_connection as f64 / 1024.0,
        q.as_secs_f64() * 1e3,
        f.as_secs_f64() * 1e3,
        f.as_secs_f64() / q.as_secs_f64().max(1e-9),
        BEYOND - served_beyond
    );
    ensure!(failed == 0, "the real client had {failed} failed calls");
    ensure!(per_connection < 64 * 1024, "{per_connection} bytes per idle connection");
    ensure!(evicted == LORIS, "only {evicted} of {LORIS} slow-loris connections were evicted");
    ensure!(served_beyond <= LORIS, "{served_beyond} connections beyond the limit were served");
    drop(held);
    drop(target);
    Ok(())
}
