//! The closed loop of a client benchmark: `callers` tasks, each making one call after another
//! through a client under test, for a warm-up and then a measured window; then one report line.
//!
//! Shared by probe's client bench (`probe-client`) and Volo's (`bench/volo`, which includes this
//! file by path so it builds without probe): it uses only std, tokio, anyhow and the
//! [`histogram`](crate::histogram) and [`proc_stat`](crate::proc_stat) modules.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use crate::histogram::{Histogram, ThreadHistogram};
use crate::proc_stat::{clock_ticks, context_switches, cpu_time, machine_busy, migrations};

/// When and how hard to call.
#[derive(Debug, Clone, Copy)]
pub struct CallerPlan {
    /// Concurrent callers (tasks), each with one call in flight.
    pub callers: usize,
    /// Seconds of calls before the window opens.
    pub warmup: f64,
    /// Seconds the window stays open.
    pub seconds: f64,
    /// The server's process id, for its CPU time per call.
    pub server_pid: Option<u32>,
}

/// One caller's closed loop, as its task sees it: [`more`](Calls::more) before each call says
/// whether to make it and records the one before (one clock read per call: the end of a call is
/// the start of the next).
#[derive(Debug)]
pub struct Calls {
    from: Instant,
    end: Instant,
    /// When the call in progress was sent, if one is.
    sent: Option<Instant>,
}

/// Every thread's latencies, merged once the callers are done.
static THREADS: Mutex<Vec<Arc<ThreadHistogram>>> = Mutex::new(Vec::new());

thread_local! {
    /// The latencies of the calls that ended on this thread, whichever callers made them. A
    /// histogram per caller (100 of them, 30 KB each, touched from either core as tasks move)
    /// missed the cache on most calls, which the client's CPU time per call counted; the load
    /// generator keeps one per connection. This one stays in its core's cache, and recording
    /// takes no lock (a lock per call was 1% of the client's CPU): only this thread writes it.
    static LATENCY: Arc<ThreadHistogram> = {
        let latency = Arc::new(ThreadHistogram::default());
        THREADS.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&latency));
        latency
    };
}

/// The latencies every thread recorded so far, taken.
fn take_latencies() -> Histogram {
    let mut merged = Histogram::new();
    for latency in THREADS.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        merged.merge(&latency.take());
    }
    merged
}

impl Calls {
    /// Records the call just made (if it was sent in the window and ended in it); `true` while
    /// the window is open, so another call is to be made.
    pub fn more(&mut self) -> bool {
        let now = Instant::now();
        if let Some(sent) = self.sent.take()
            && sent >= self.from
            && now < self.end
        {
            let nanos = u64::try_from(now.duration_since(sent).as_nanos()).unwrap_or(u64::MAX);
            LATENCY.with(|latency| latency.record(nanos));
        }
        if now >= self.end {
            return false;
        }
        self.sent = Some(now);
        true
    }
}

/// Runs `plan.callers` tasks, each the future `caller` makes (which calls in a loop while
/// [`Calls::more`] says so, with a client of its own, as a user's task holds one, and returns its
/// [`Calls`]); prints one `key=value` line: calls per second, latency percentiles, the client's
/// (this process's) and the server's CPU microseconds per call, and the CPU % other processes
/// used.
pub async fn run_callers<F, Fut>(plan: CallerPlan, caller: F) -> Result<()>
where
    F: Fn(Calls) -> Fut,
    Fut: Future<Output = Result<Calls>> + Send + 'static,
{
    if !(plan.seconds > 0.0 && plan.warmup >= 0.0) {
        anyhow::bail!("--seconds must be positive and --warmup not negative");
    }
    let start = Instant::now();
    let from = start + Duration::from_secs_f64(plan.warmup);
    let end = from + Duration::from_secs_f64(plan.seconds);
    let sampler = thread::spawn(move || sample_window(plan.server_pid, from, end));
    let tasks: Vec<_> =
        (0..plan.callers.max(1)).map(|_| tokio::spawn(caller(Calls { from, end, sent: None }))).collect();
    for task in tasks {
        task.await.context("a caller task failed")??;
    }
    // Every call was recorded before its task ended, and every task has ended.
    let latency = take_latencies();
    let window = tokio::task::spawn_blocking(move || sampler.join())
        .await?
        .map_err(|_| anyhow!("the CPU sampler panicked"))??;
    print_line(&latency, &window);
    Ok(())
}

/// CPU times over the measured window.
struct Window {
    wall: Duration,
    client: Duration,
    server: Option<Duration>,
    machine: Duration,
    /// The client's context switches.
    switches: u64,
    /// Moves of the client's and the server's threads to another CPU.
    migrations: u64,
}

/// The counters a [`Window`] is the difference of, read at `at`.
struct Counters {
    at: Instant,
    client: Duration,
    server: Option<Duration>,
    machine: Duration,
    switches: u64,
    migrations: u64,
}

impl Counters {
    fn read(server_pid: Option<u32>, ticks: u64) -> Result<Counters> {
        let server_migrations = server_pid.map(|pid| migrations(Some(pid))).transpose()?;
        Ok(Counters {
            server: server_pid.map(|pid| cpu_time(Some(pid), ticks)).transpose()?,
            switches: context_switches(None)?,
            migrations: migrations(None)? + server_migrations.unwrap_or(0),
            at: Instant::now(),
            client: cpu_time(None, ticks)?,
            machine: machine_busy(ticks)?,
        })
    }
}

fn sample_window(server_pid: Option<u32>, from: Instant, to: Instant) -> Result<Window> {
    let ticks = clock_ticks();
    thread::sleep(from.saturating_duration_since(Instant::now()));
    let first = Counters::read(server_pid, ticks)?;
    thread::sleep(to.saturating_duration_since(Instant::now()));
    let last = Counters::read(server_pid, ticks)?;
    Ok(Window {
        wall: last.at - first.at,
        client: last.client.saturating_sub(first.client),
        server: first.server.zip(last.server).map(|(a, b)| b.saturating_sub(a)),
        machine: last.machine.saturating_sub(first.machine),
        switches: last.switches.saturating_sub(first.switches),
        migrations: last.migrations.saturating_sub(first.migrations),
    })
}

fn print_line(latency: &Histogram, w: &Window) {
    let calls = latency.len();
    let wall = w.wall.as_secs_f64().max(f64::EPSILON);
    let per_call = |cpu: Duration| if calls == 0 { 0.0 } else { cpu.as_secs_f64() * 1e6 / calls as f64 };
    let us = |q: f64| latency.quantile(q) as f64 / 1e3;
    let others = w.machine.saturating_sub(w.client + w.server.unwrap_or_default());
    println!(
        "qps={:.0} p50_us={:.1} p99_us={:.1} calls={calls} client_cpu_us_per_call={:.2} \
         server_cpu_us_per_call={} others_cpu_pct={:.0} client_switches_per_kcall={:.1} \
         migrations_per_s={:.0}",
        calls as f64 / wall,
        us(0.5),
        us(0.99),
        per_call(w.client),
        w.server.map_or_else(|| "-".to_owned(), |s| format!("{:.2}", per_call(s))),
        others.as_secs_f64() * 100.0 / wall,
        if calls == 0 { 0.0 } else { w.switches as f64 * 1000.0 / calls as f64 },
        w.migrations as f64 / wall,
    );
}
