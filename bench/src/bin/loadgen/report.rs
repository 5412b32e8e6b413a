//! CPU sampling over the measured window, and the numbers printed at the end.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use probe_bench::histogram::Histogram;
use probe_bench::proc_stat::{clock_ticks, cpu_time, machine_busy};

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Lines for people.
    Human,
    /// One line of `key=value` pairs, for `scripts/bench.sh`.
    Kv,
}

/// CPU time used over the measured window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuWindow {
    /// Wall time between the two samples.
    pub(crate) wall: Duration,
    /// The server's CPU time, if its pid was given.
    pub(crate) server: Option<Duration>,
    /// The load generator's own CPU time.
    pub(crate) loadgen: Duration,
    /// CPU time of every process on the machine (all CPUs), ours included.
    pub(crate) machine: Duration,
}

impl CpuWindow {
    /// CPU time used by other processes than the server and the load generator: when it is not
    /// near zero, something else competed for the CPUs and the numbers are noisy.
    fn others(&self) -> Duration {
        self.machine.saturating_sub(self.loadgen + self.server.unwrap_or_default())
    }
}

/// A thread that samples CPU times when the window opens and when it closes, off the runtime so
/// busy workers cannot delay it.
#[derive(Debug)]
pub(crate) struct CpuSampler(JoinHandle<Result<CpuWindow>>);

impl CpuSampler {
    pub(crate) fn spawn(server_pid: Option<u32>, from: Instant, to: Instant) -> Self {
        CpuSampler(thread::spawn(move || {
            let ticks = clock_ticks();
            let sample = || -> Result<Sample> {
                let server = server_pid.map(|pid| cpu_time(Some(pid), ticks)).transpose()?;
                let loadgen = cpu_time(None, ticks)?;
                Ok(Sample { at: Instant::now(), server, loadgen, machine: machine_busy(ticks)? })
            };
            thread::sleep(from.saturating_duration_since(Instant::now()));
            let first = sample()?;
            thread::sleep(to.saturating_duration_since(Instant::now()));
            let last = sample()?;
            Ok(CpuWindow {
                wall: last.at - first.at,
                server: first.server.zip(last.server).map(|(a, b)| b.saturating_sub(a)),
                loadgen: last.loadgen.saturating_sub(first.loadgen),
                machine: last.machine.saturating_sub(first.machine),
            })
        }))
    }

    pub(crate) fn join(self) -> Result<CpuWindow> {
        self.0.join().map_err(|_| anyhow::anyhow!("the CPU sampler panicked"))?.context("sampling CPU time")
    }
}

/// CPU times so far, at one moment.
struct Sample {
    at: Instant,
    server: Option<Duration>,
    loadgen: Duration,
    machine: Duration,
}

/// The results of a run.
#[derive(Debug)]
pub(crate) struct Report {
    latency: Histogram,
    cpu: CpuWindow,
    frame_len: usize,
}

impl Report {
    pub(crate) fn new(latency: Histogram, cpu: CpuWindow, frame_len: usize) -> Self {
        Report { latency, cpu, frame_len }
    }

    pub(crate) fn print(&self, format: Format) {
        let calls = self.latency.len();
        let wall = self.cpu.wall.as_secs_f64().max(f64::EPSILON);
        let qps = calls as f64 / wall;
        let us = |q: f64| self.latency.quantile(q) as f64 / 1e3;
        let per_call = |cpu: Duration| if calls == 0 { 0.0 } else { cpu.as_secs_f64() * 1e6 / calls as f64 };
        let server_us = self.cpu.server.map(per_call);
        let server_pct = self.cpu.server.map(|cpu| cpu.as_secs_f64() * 100.0 / wall);
        let loadgen_pct = self.cpu.loadgen.as_secs_f64() * 100.0 / wall;
        let others_pct = self.cpu.others().as_secs_f64() * 100.0 / wall;
        let shown = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        match format {
            Format::Kv => println!(
                "qps={qps:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} calls={calls} \
                 server_cpu_us_per_call={} server_cpu_pct={} loadgen_cpu_pct={loadgen_pct:.0} loadgen_cpu_us_per_call={:.2} \
                 others_cpu_pct={others_pct:.0} frame_bytes={}",
                us(0.5),
                us(0.99),
                us(0.999),
                self.latency.max() as f64 / 1e3,
                shown(server_us),
                shown(server_pct),
                per_call(self.cpu.loadgen),
                self.frame_len,
            ),
            Format::Human => {
                println!("calls      {calls} in {wall:.2} s ({} bytes per frame each way)", self.frame_len);
                println!("qps        {qps:.0}");
                println!(
                    "latency    p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
                    us(0.5),
                    us(0.99),
                    us(0.999),
                    self.latency.max() as f64 / 1e3
                );
                println!("server CPU {} us per call ({} % of one core)", shown(server_us), shown(server_pct));
                println!("loadgen    {loadgen_pct:.0} % of one core");
                println!("others     {others_pct:.0} % of one core (other processes on the machine)");
            }
        }
    }
}
