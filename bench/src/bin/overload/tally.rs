//! What the calls of one measured window came to, by priority: how many were sent, served,
//! refused (`LOADSHEDDING`), timed out or failed otherwise, or never sent because too many were
//! outstanding; the latency of the served ones; and what the server's gate counted meanwhile.

use std::time::Duration;

use probe::{CallError, Error};
use probe_bench::histogram::Histogram;
use probe_runtime::codec::ApplicationExceptionKind;

/// The priority levels, by index: critical, normal, sheddable.
pub const LEVELS: [&str; 3] = ["critical", "normal", "sheddable"];

/// How one call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served.
    Ok,
    /// Refused unexecuted by the server's limit.
    Refused,
    /// The caller's deadline passed.
    Timeout,
    /// Any other failure.
    Failed,
    /// Not sent: the load generator had too many calls outstanding.
    Unsent,
}

impl Outcome {
    /// The outcome of a call's result.
    pub fn of<T>(result: &Result<T, CallError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(CallError::Rpc(Error::Application(e)))
                if e.kind == ApplicationExceptionKind::Loadshedding =>
            {
                Outcome::Refused
            }
            Err(CallError::Rpc(Error::Timeout { .. })) => Outcome::Timeout,
            Err(_) => Outcome::Failed,
        }
    }
}

/// The calls of one priority level.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Calls scheduled in the window (sent or not).
    pub scheduled: u64,
    pub ok: u64,
    pub refused: u64,
    pub timeout: u64,
    pub failed: u64,
    pub unsent: u64,
    /// Latency of the served calls from the moment each was due to be sent, in nanoseconds.
    pub latency: Histogram,
}

impl Tally {
    /// Counts one call.
    pub fn add(&mut self, outcome: Outcome, latency: Duration) {
        self.scheduled += 1;
        match outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.latency.record(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
            }
            Outcome::Refused => self.refused += 1,
            Outcome::Timeout => self.timeout += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Unsent => self.unsent += 1,
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Tally) {
        self.scheduled += other.scheduled;
        self.ok += other.ok;
        self.refused += other.refused;
        self.timeout += other.timeout;
        self.failed += other.failed;
        self.unsent += other.unsent;
        self.latency.merge(&other.latency);
    }
}

/// The server's adaptive limit and calls in flight, sampled through the window.
#[derive(Debug, Default, Clone)]
pub struct GateTrace {
    /// `(seconds into the window, adaptive limit, calls in flight)`.
    pub samples: Vec<(f64, Option<u32>, u32)>,
    /// Calls the gate refused in the window, by priority level.
    pub refused_by_priority: [u64; 3],
}

impl GateTrace {
    /// The median adaptive limit of the window, if the gate is adaptive.
    pub fn median_limit(&self) -> Option<u32> {
        let mut limits: Vec<u32> = self.samples.iter().filter_map(|s| s.1).collect();
        limits.sort_unstable();
        limits.get(limits.len() / 2).copied()
    }

    /// The mean number of calls in flight at the server's gate (counted only with a limit set).
    pub fn mean_in_flight(&self) -> Option<f64> {
        let counted: Vec<u32> = self.samples.iter().filter(|s| s.1.is_some()).map(|s| s.2).collect();
        (!counted.is_empty())
            .then(|| counted.iter().map(|&n| f64::from(n)).sum::<f64>() / counted.len() as f64)
    }
}

/// CPU use over a window, in % of one core.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    /// This process: the server and the client.
    pub own_pct: f64,
    /// Every other process (the machine's busy time less this process's).
    pub others_pct: f64,
}

/// One measured window.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Calls per second offered.
    pub offered: f64,
    pub seconds: f64,
    /// By priority level ([`LEVELS`]).
    pub levels: [Tally; 3],
    pub gate: GateTrace,
    /// `None` when `/proc` could not be read.
    pub cpu: Option<Cpu>,
    /// The first failure other than a refusal or a timeout, for the report.
    pub first_failure: Option<String>,
}

impl Measured {
    /// Every level together.
    pub fn all(&self) -> Tally {
        let mut all = Tally::default();
        for level in &self.levels {
            all.merge(level);
        }
        all
    }

    /// Calls per second of `count` over the window.
    pub fn per_second(&self, count: u64) -> f64 {
        count as f64 / self.seconds.max(f64::EPSILON)
    }
}
