//! A trial adaptive limit, as a server layer: the gate of probe-runtime's `limits/gate.rs` (calls
//! in flight against a limit times the caller's priority share, refusals answered
//! `LOADSHEDDING`, latency from when the call was read) with the algorithm, its starting limit
//! and how samples reach it chosen on the command line, to try changes to the gate without
//! editing it.
//!
//! `--trial LABEL=ALGORITHM[,initial=N][,window=MS][,min=N][,max=N][,tolerance=X][,long=N][,critical=S]`:
//! `gradient2` (tower-acc's, as the gate runs it: one update per call) or `vegas`; `window=MS`
//! feeds the algorithm one sample per window (the mean latency and the most calls in flight of
//! the window's calls, at least 10 of them), as Netflix's `WindowedLimit` does; `long` is
//! Gradient2's long window (in updates), `probe` Vegas's probe multiplier; `critical=S` sends a share S of the calls critical and
//! the rest sheddable (all normal without it).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use probe_runtime::limits::{GateStats, PRIORITY_SHARES};
use probe_runtime::middleware::{
    ApplicationExceptionKind, BoxError, BoxFuture, Layer, Reply, ServerCall, Service,
};
use tower_acc::{Algorithm, Gradient2, Vegas};

/// Calls a window needs before it is fed to the algorithm.
const WINDOW_SAMPLES: u32 = 10;

/// What `--trial` asked for.
#[derive(Debug, Clone)]
pub struct TrialSpec {
    vegas: bool,
    initial: Option<u32>,
    window: Option<Duration>,
    min: u32,
    max: u32,
    tolerance: f64,
    long: Option<usize>,
    /// Vegas's probe multiplier (it resets its no-load latency every `probe` x limit updates).
    probe: Option<usize>,
    /// The share of critical calls (the rest sheddable); `None`: all normal.
    pub critical: Option<f64>,
}

impl TrialSpec {
    /// Reads `ALGORITHM[,key=value...]`.
    pub fn parse(text: &str) -> Result<TrialSpec> {
        let mut parts = text.split(',');
        let vegas = match parts.next().map(str::trim) {
            Some("gradient2") => false,
            Some("vegas") => true,
            other => bail!("unknown trial algorithm {other:?}: gradient2 or vegas"),
        };
        let mut spec = TrialSpec {
            vegas,
            initial: None,
            window: None,
            min: 4,
            max: 1000,
            tolerance: 1.5,
            long: None,
            probe: None,
            critical: None,
        };
        for part in parts {
            let (key, value) = part.split_once('=').with_context(|| format!("{part:?} is not key=value"))?;
            let number: f64 =
                value.trim().parse().with_context(|| format!("{key}: {value:?} is not a number"))?;
            match key.trim() {
                "initial" => spec.initial = Some(number as u32),
                "window" => spec.window = Some(Duration::from_secs_f64(number / 1e3)),
                "min" => spec.min = number as u32,
                "max" => spec.max = number as u32,
                "tolerance" => spec.tolerance = number.max(1.0),
                "long" => spec.long = Some(number as usize),
                "probe" => spec.probe = Some(number as usize),
                "critical" => spec.critical = Some(number.clamp(0.0, 1.0)),
                other => bail!("unknown trial setting {other:?}"),
            }
        }
        Ok(spec)
    }

    fn algorithm(&self) -> Box<dyn Algorithm + Send> {
        // The gate starts at half the maximum.
        let initial = self.initial.unwrap_or(self.max / 2).clamp(self.min, self.max) as usize;
        if self.vegas {
            let mut builder = Vegas::builder().initial_limit(initial).max_limit(self.max as usize);
            if let Some(probe) = self.probe {
                builder = builder.probe_multiplier(probe);
            }
            return Box::new(builder.build());
        }
        let mut builder = Gradient2::builder()
            .initial_limit(initial)
            .min_limit(self.min as usize)
            .max_limit(self.max as usize)
            .rtt_tolerance(self.tolerance);
        if let Some(long) = self.long {
            builder = builder.long_window(long);
        }
        Box::new(builder.build())
    }
}

/// Samples gathered for one update.
#[derive(Debug)]
struct Window {
    started: Instant,
    total: Duration,
    count: u32,
    most_in_flight: usize,
}

/// The trial gate, shared by every call.
pub struct Trial {
    algorithm: Mutex<(Box<dyn Algorithm + Send>, Window)>,
    window: Option<Duration>,
    limit: AtomicU32,
    in_flight: AtomicU32,
    refused_by_priority: [AtomicU64; 3],
}

impl Trial {
    pub fn new(spec: &TrialSpec) -> Arc<Trial> {
        let algorithm = spec.algorithm();
        let limit = algorithm.max_concurrency() as u32;
        let window = Window { started: Instant::now(), total: Duration::ZERO, count: 0, most_in_flight: 0 };
        Arc::new(Trial {
            algorithm: Mutex::new((algorithm, window)),
            window: spec.window,
            limit: AtomicU32::new(limit),
            in_flight: AtomicU32::new(0),
            refused_by_priority: Default::default(),
        })
    }

    /// What the trial gate counted, as the server's gate would report it.
    pub fn stats(&self) -> GateStats {
        GateStats {
            in_flight: self.in_flight.load(Relaxed),
            adaptive_limit: Some(self.limit.load(Relaxed)),
            refused: [0, 0, self.refused_by_priority.iter().map(|c| c.load(Relaxed)).sum()],
            refused_by_priority: self.refused_by_priority.each_ref().map(|c| c.load(Relaxed)),
        }
    }

    fn acquire(&self, level: usize) -> bool {
        let allowed = ((f64::from(self.limit.load(Relaxed)) * PRIORITY_SHARES[level]) as u32).max(1);
        if self.in_flight.fetch_add(1, AcqRel) >= allowed {
            self.in_flight.fetch_sub(1, AcqRel);
            self.refused_by_priority[level].fetch_add(1, Relaxed);
            return false;
        }
        true
    }

    fn release(&self, started: Instant) {
        let in_flight = self.in_flight.fetch_sub(1, AcqRel) as usize;
        let now = Instant::now();
        let rtt = now.saturating_duration_since(started);
        let mut guard = self.algorithm.lock().unwrap_or_else(PoisonError::into_inner);
        let (algorithm, window) = &mut *guard;
        match self.window {
            None => algorithm.update(rtt, in_flight, false, false),
            Some(length) => {
                window.total += rtt;
                window.count += 1;
                window.most_in_flight = window.most_in_flight.max(in_flight);
                if window.count >= WINDOW_SAMPLES && now.saturating_duration_since(window.started) >= length {
                    algorithm.update(window.total / window.count, window.most_in_flight, false, false);
                    *window = Window { started: now, total: Duration::ZERO, count: 0, most_in_flight: 0 };
                }
            }
        }
        self.limit.store((algorithm.max_concurrency() as u32).max(1), Relaxed);
    }
}

/// Puts every call through a [`Trial`].
#[derive(Clone)]
pub struct TrialLayer(pub Arc<Trial>);

impl<S> Layer<S> for TrialLayer {
    type Service = TrialService<S>;

    fn layer(&self, inner: S) -> TrialService<S> {
        TrialService { trial: self.0.clone(), inner }
    }
}

/// The service of [`TrialLayer`].
#[derive(Clone)]
pub struct TrialService<S> {
    trial: Arc<Trial>,
    inner: S,
}

/// A call's place in the trial gate, given back when the call ends or is dropped.
struct Place {
    trial: Arc<Trial>,
    started: Instant,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.trial.release(self.started);
    }
}

impl<S> Service<ServerCall> for TrialService<S>
where
    S: Service<ServerCall, Response = Reply, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Reply, BoxError>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: ServerCall) -> Self::Future {
        let level =
            call.context.as_ref().and_then(|c| c.priority()).unwrap_or_default().level().min(2) as usize;
        if !self.trial.acquire(level) {
            let reply = call.reject(ApplicationExceptionKind::Loadshedding, "the trial limit is reached");
            return Box::pin(async move { Ok(reply) });
        }
        let started = call.context.as_ref().map_or_else(Instant::now, |c| c.received());
        let place = Place { trial: self.trial.clone(), started };
        let reply = self.inner.call(call);
        Box::pin(async move {
            let reply = reply.await;
            drop(place);
            reply
        })
    }
}
