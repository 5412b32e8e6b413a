//! The load: a closed loop to find the node's capacity, and an open loop that offers a fixed
//! arrival rate whatever the replies (calls are issued on schedule, each with the client's
//! timeout, at most `max_outstanding` at once), with a share of its calls critical and the rest
//! sheddable, or all normal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use probe::CallError;
use probe_bench::proc_stat::{clock_ticks, cpu_time, machine_busy};
use probe_runtime::client::{Channel, TcpTransport};
use probe_runtime::context::{Metadata, Priority};
use probe_runtime::limits::GateStats;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::sleep_until;

use crate::idl::echo::EchoClient;
use crate::tally::{Cpu, GateTrace, Measured, Outcome, Tally};

/// How often the sampler reads the server's gate.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// One client per priority level (critical, normal, sheddable) over one multiplexed transport
/// that speaks THeader, so each call carries its priority and deadline.
#[derive(Debug, Clone)]
pub struct Clients {
    levels: [EchoClient; 3],
    payload: Bytes,
}

impl Clients {
    /// Connects to `addr` with `connections` multiplexed connections; calls time out after
    /// `timeout` (the server is told the time left, and stops waiting then too).
    pub async fn connect(addr: &str, connections: usize, timeout: Duration) -> Result<Clients> {
        let transport = TcpTransport::builder(addr)
            .header(true)
            .multiplex(true)
            .pool_size(connections)
            .timeout(timeout)
            .connect()
            .await
            .context("cannot connect to the server")?;
        let channel = Channel::new(transport);
        let with = |p: Priority| EchoClient::new(channel.with_metadata(Metadata::new().priority(p)));
        Ok(Clients {
            levels: [with(Priority::CRITICAL), with(Priority::NORMAL), with(Priority::SHEDDABLE)],
            payload: Bytes::from_static(&[b'x'; 128]),
        })
    }

    /// One call at priority `level` (an index of [`LEVELS`](crate::tally::LEVELS)).
    async fn call(&self, level: usize) -> Result<Bytes, CallError> {
        self.levels[level].echo(self.payload.clone()).await
    }
}

/// Calls per second served by `callers` callers with one call in flight each, over `window`
/// after `warmup`: with callers well above the node's workers, its capacity.
pub async fn capacity(clients: &Clients, callers: usize, warmup: Duration, window: Duration) -> Result<f64> {
    let from = Instant::now() + warmup;
    let end = from + window;
    let tasks: Vec<_> = (0..callers.max(1))
        .map(|_| {
            let clients = clients.clone();
            tokio::spawn(async move {
                let mut served = 0u64;
                while Instant::now() < end {
                    let outcome = Outcome::of(&clients.call(1).await);
                    let now = Instant::now();
                    if outcome == Outcome::Ok && now >= from && now < end {
                        served += 1;
                    }
                }
                served
            })
        })
        .collect();
    let mut served = 0;
    for task in tasks {
        served += task.await.context("a caller task failed")?;
    }
    Ok(served as f64 / window.as_secs_f64())
}

/// An open-loop offer: `lead` (seconds at a rate of calls per second) first, if any, then
/// `rate` for `warmup` and `window`.
#[derive(Debug, Clone, Copy)]
pub struct Offer {
    pub lead: Option<(Duration, f64)>,
    /// Calls per second.
    pub rate: f64,
    /// Seconds of calls before the window opens (not counted).
    pub warmup: Duration,
    pub window: Duration,
    /// The most calls outstanding; calls due past it are counted unsent.
    pub max_outstanding: usize,
    /// The share of calls sent critical, the rest sheddable; `None`: all normal.
    pub critical: Option<f64>,
}

impl Offer {
    /// The priority level of call `i`: critical calls spread evenly through the others.
    fn level(&self, i: u64) -> usize {
        match self.critical {
            None => 1,
            Some(share) if ((i + 1) as f64 * share).floor() > (i as f64 * share).floor() => 0,
            Some(_) => 2,
        }
    }
}

/// One finished call: its level, when it was due, how it ended and when.
struct Done {
    level: usize,
    due: Instant,
    outcome: Outcome,
    latency: Duration,
}

/// Offers `offer` to the node; `gate` reads its gate. Counts the calls due in the window, with
/// latency from when each was due (so a late client does not hide queueing).
pub async fn open_loop<G>(clients: &Clients, offer: Offer, gate: G) -> Result<Measured>
where
    G: Fn() -> Option<GateStats> + Send + Sync + 'static,
{
    let start = Instant::now() + Duration::from_millis(10);
    let (lead, lead_rate) = offer.lead.unwrap_or((Duration::ZERO, 1.0));
    let step = start + lead;
    let from = step + offer.warmup;
    let end = from + offer.window;
    let led = (lead.as_secs_f64() * lead_rate) as u64;
    let total = led + ((offer.warmup + offer.window).as_secs_f64() * offer.rate) as u64;
    let (done, mut finished) = mpsc::unbounded_channel::<Done>();
    let collector = tokio::spawn(async move {
        let mut levels: [Tally; 3] = Default::default();
        while let Some(d) = finished.recv().await {
            if d.due >= from && d.due < end {
                levels[d.level].add(d.outcome, d.latency);
            }
        }
        levels
    });
    let sampler = tokio::spawn(sample(gate, from, end));
    let cpu = tokio::spawn(cpu_between(from, end));
    let outstanding = Arc::new(Semaphore::new(offer.max_outstanding.max(1)));
    let first_failure = Arc::new(std::sync::OnceLock::new());
    for i in 0..total {
        let due = match i.checked_sub(led) {
            None => start + Duration::from_secs_f64(i as f64 / lead_rate),
            Some(i) => step + Duration::from_secs_f64(i as f64 / offer.rate),
        };
        if due > Instant::now() {
            sleep_until(due.into()).await;
        }
        let level = offer.level(i);
        let Ok(permit) = outstanding.clone().try_acquire_owned() else {
            let _ = done.send(Done { level, due, outcome: Outcome::Unsent, latency: Duration::ZERO });
            continue;
        };
        let (clients, done, first_failure) = (clients.clone(), done.clone(), first_failure.clone());
        tokio::spawn(async move {
            let result = clients.call(level).await;
            let latency = due.elapsed();
            drop(permit);
            let outcome = Outcome::of(&result);
            if let (Outcome::Failed, Err(e)) = (outcome, &result) {
                let _ = first_failure.set(e.to_string());
            }
            let _ = done.send(Done { level, due, outcome, latency });
        });
    }
    drop(done);
    let levels = collector.await.context("the collector failed")?;
    let gate = sampler.await.context("the sampler failed")?;
    let cpu = cpu.await.context("the CPU sampler failed")?;
    Ok(Measured {
        offered: offer.rate,
        seconds: offer.window.as_secs_f64(),
        levels,
        gate,
        cpu,
        first_failure: first_failure.get().cloned(),
    })
}

/// The CPU this process and the others used from `from` to `end`.
async fn cpu_between(from: Instant, end: Instant) -> Option<Cpu> {
    let ticks = clock_ticks();
    let read = || Some((Instant::now(), cpu_time(None, ticks).ok()?, machine_busy(ticks).ok()?));
    sleep_until(from.into()).await;
    let first = read();
    sleep_until(end.into()).await;
    let (a, b) = first.zip(read())?;
    let wall = (b.0 - a.0).as_secs_f64().max(f64::EPSILON);
    let own = b.1.saturating_sub(a.1);
    let others = b.2.saturating_sub(a.2).saturating_sub(own);
    Some(Cpu { own_pct: own.as_secs_f64() * 100.0 / wall, others_pct: others.as_secs_f64() * 100.0 / wall })
}

/// Reads the gate every [`SAMPLE_EVERY`] from `from` to `end`.
async fn sample<G>(gate: G, from: Instant, end: Instant) -> GateTrace
where
    G: Fn() -> Option<GateStats>,
{
    sleep_until(from.into()).await;
    let first = gate().unwrap_or_default();
    let mut trace = GateTrace::default();
    let mut at = from;
    let mut last = first.clone();
    while at < end {
        last = gate().unwrap_or_default();
        trace.samples.push((at.duration_since(from).as_secs_f64(), last.adaptive_limit, last.in_flight));
        at += SAMPLE_EVERY;
        sleep_until(at.into()).await;
    }
    for (level, refused) in trace.refused_by_priority.iter_mut().enumerate() {
        *refused = last.refused_by_priority[level].saturating_sub(first.refused_by_priority[level]);
    }
    trace
}
