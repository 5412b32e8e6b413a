//! The task that publishes a registered server's windows: every interval, each node's window goes
//! to the metrics store (Redis) with a TTL of three intervals, so a node that stops publishing
//! disappears from the console by itself. Failures are logged, at most once a minute, never fatal.
//!
//! A window also says how many calls the node's request limits refused in it, by reason: the
//! difference of the server's cumulative refusal counters (every gate of the node's service, its
//! methods' included) between two windows; and, the same way, how many its caller policy refused.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval_at, timeout};
use tracing::{debug, info, warn};

use super::server::ServerStats;
use super::window::WindowTracker;
use crate::limits::REASONS;
use crate::registry::layout::NodeKey;
use crate::registry::{BackendError, MetricsStore, NodeMetrics};
use crate::security::callers::REFUSAL_REASONS;
use crate::server::{CallerStats, LimitStats};

/// Windows published per TTL: a window lives for this many intervals unless replaced.
const TTL_INTERVALS: u32 = 3;
/// The least time between two warnings about failed publishing.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A running publisher; stop it with [`Publisher::stop`]. Dropping it leaves it running (with
/// the server it publishes for).
#[derive(Debug)]
pub struct Publisher {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Publisher {
    /// Publishes the window of each of `nodes` (each a service of the server whose `stats` these
    /// are) to `store` every `interval`, the first one interval from now.
    pub fn spawn(
        store: Arc<dyn MetricsStore>,
        stats: Arc<ServerStats>,
        nodes: Vec<NodeKey>,
        interval: Duration,
    ) -> Publisher {
        let (stop, stopped) = oneshot::channel::<()>();
        let interval = interval.max(Duration::from_millis(1));
        // The first window starts now, not when the task first runs.
        let start = Instant::now();
        let refusals = Refusals::of(&stats);
        let trackers = nodes
            .into_iter()
            .map(|key| {
                let counts = stats.service(key.service());
                let (refused, refused_callers) = refusals.of_service(key.service());
                Tracker {
                    window: WindowTracker::new(counts, start.into_std()),
                    refused,
                    refused_callers,
                    key,
                }
            })
            .collect();
        let task = tokio::spawn(async move {
            let stopped = async move {
                // A dropped handle never stops the publisher.
                if stopped.await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = stopped => debug!("metrics publisher stopped"),
                () = run(store, stats, trackers, start, interval) => {}
            }
        });
        Publisher { stop: Some(stop), task }
    }

    /// Stops publishing and waits for the task to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// One node's last counts: its service's calls and refusals at the end of the last window.
#[derive(Debug)]
struct Tracker {
    key: NodeKey,
    window: WindowTracker,
    /// The service's refusals by its request limits so far, by [`REASONS`].
    refused: [u64; 3],
    /// The service's refusals by its caller policy so far, by [`REFUSAL_REASONS`].
    refused_callers: [u64; 3],
}

impl Tracker {
    /// The window from the last counts to those of `stats` and `refusals` (the server's limit
    /// and caller policy counters) at `now`; these become the last.
    fn next(&mut self, stats: &ServerStats, refusals: &Refusals, now: std::time::Instant) -> NodeMetrics {
        let mut window = self.window.next(stats.service(self.key.service()), now);
        let (refused, refused_callers) = refusals.of_service(self.key.service());
        let by_limits = since(&REASONS, self.refused, refused, &mut window.refused_by_reason);
        let by_policy = since(
            &REFUSAL_REASONS,
            self.refused_callers,
            refused_callers,
            &mut window.refused_callers_by_reason,
        );
        (window.refused, window.refused_callers) = (by_limits, by_policy);
        (self.refused, self.refused_callers) = (refused, refused_callers);
        window.limits_problem = stats.limits_problem(self.key.service());
        window
    }
}

/// What a server's request limits and caller policies refused so far, read once per window for
/// all its nodes.
struct Refusals {
    limits: Vec<LimitStats>,
    callers: Vec<CallerStats>,
}

impl Refusals {
    fn of(stats: &ServerStats) -> Refusals {
        Refusals { limits: stats.limit_stats(), callers: stats.caller_stats() }
    }

    /// The refusals of `service`: by every gate of its limits (its own and its methods'; a call
    /// is refused by one gate only, so the sum counts each once), by [`REASONS`]; and by its
    /// caller policy, by [`REFUSAL_REASONS`].
    fn of_service(&self, service: &str) -> ([u64; 3], [u64; 3]) {
        let mut limits = [0; 3];
        for gate in self.limits.iter().filter(|l| l.service == service) {
            for (total, count) in limits.iter_mut().zip(gate.stats.refused) {
                *total += count;
            }
        }
        let callers = self.callers.iter().find(|c| c.service == service).map_or([0; 3], |c| c.refused);
        (limits, callers)
    }
}

/// The refusals from `before` to `now`, in all; by reason (those with refusals) into `by_reason`.
fn since(
    reasons: &[&str; 3],
    before: [u64; 3],
    now: [u64; 3],
    by_reason: &mut std::collections::BTreeMap<String, u64>,
) -> u64 {
    let mut all = 0;
    for ((reason, before), now) in reasons.iter().zip(before).zip(now) {
        let refused = now.saturating_sub(before);
        if refused > 0 {
            all += refused;
            by_reason.insert((*reason).to_owned(), refused);
        }
    }
    all
}

async fn run(
    store: Arc<dyn MetricsStore>,
    stats: Arc<ServerStats>,
    mut trackers: Vec<Tracker>,
    start: Instant,
    interval: Duration,
) {
    let ttl = interval * TTL_INTERVALS;
    let mut ticks = interval_at(start + interval, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failures = Failures::default();
    loop {
        let now = ticks.tick().await.into_std();
        let refusals = Refusals::of(&stats);
        for tracker in &mut trackers {
            let window = tracker.next(&stats, &refusals, now);
            let key = &tracker.key;
            let published = match timeout(interval, store.publish(key, &window, ttl)).await {
                Ok(result) => result,
                Err(_) => Err(BackendError::Failed {
                    backend: "metrics store",
                    action: format!("publish the metrics of {key}"),
                    detail: format!("no answer within {interval:?}"),
                }),
            };
            failures.note(key, published);
        }
    }
}

/// Failed publishing, logged at most once per [`WARN_EVERY`].
#[derive(Debug, Default)]
struct Failures {
    last_warning: Option<Instant>,
    suppressed: u64,
    failing: bool,
}

impl Failures {
    fn note(&mut self, key: &NodeKey, result: Result<(), BackendError>) {
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                info!(node = %key, "publishing metrics works again");
            }
            Ok(()) => {}
            Err(error) => {
                self.failing = true;
                let now = Instant::now();
                if self.last_warning.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
                    self.suppressed += 1;
                    return;
                }
                warn!(node = %key, %error, suppressed = self.suppressed, "cannot publish metrics; the server serves on");
                self.last_warning = Some(now);
                self.suppressed = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::GateStats;
    use crate::metrics::Outcome;
    use crate::metrics::server::tests::fake;
    use crate::registry::embedded::EmbeddedMetrics;
    use crate::registry::layout::Env;
    use crate::service::Dispatch;

    #[tokio::test]
    async fn windows_are_published_until_stopped() {
        let store = EmbeddedMetrics::new();
        let stats = Arc::new(ServerStats::new([&fake("Demo") as &dyn Dispatch]));
        let key = NodeKey::new(Env::Dev, "app", "Demo", "10.0.0.1", 9).unwrap();
        let interval = Duration::from_millis(50);
        let publisher = Publisher::spawn(Arc::new(store.clone()), stats.clone(), vec![key.clone()], interval);
        for _ in 0..10 {
            stats.record("Demo", "get", Outcome::Ok, Duration::from_micros(700));
        }
        tokio::time::sleep(interval * 3).await;
        publisher.stop().await;
        let history = store.history(&key).await.unwrap();
        assert!(history.len() >= 2, "{history:?}");
        assert_eq!(history.iter().map(|w| w.calls).sum::<u64>(), 10, "{history:?}");
        let busy = history.iter().find(|w| w.calls == 10).expect("one window has the calls");
        assert!((0.5..=0.9).contains(&busy.p50_ms), "{busy:?}");
        assert_eq!(busy.methods[0].method, "get");
    }

    /// What a gate of `service` (`method`: one of its methods') refused so far, by reason.
    fn gate(service: &'static str, method: Option<&'static str>, refused: [u64; 3]) -> LimitStats {
        let stats = GateStats { refused, ..GateStats::default() };
        LimitStats { service, method, stats, qps: Some(10.0), concurrency: None }
    }

    /// What the caller policy of `service` refused so far, by reason.
    fn policy(service: &'static str, refused: [u64; 3]) -> CallerStats {
        CallerStats { service, refused, unauthenticated: 0, recent_refusals: Vec::new() }
    }

    #[test]
    fn windows_count_the_refusals_of_the_nodes_service_since_the_last() {
        let stats = ServerStats::new([&fake("Demo") as &dyn Dispatch, &fake("Other")]);
        let key = NodeKey::new(Env::Dev, "app", "Demo", "10.0.0.1", 9).unwrap();
        let start = std::time::Instant::now();
        let before = Refusals {
            limits: vec![gate("Demo", None, [5, 0, 0]), gate("Other", None, [100, 0, 0])],
            callers: vec![policy("Other", [50, 0, 0]), policy("Demo", [1, 2, 0])],
        };
        let (refused, refused_callers) = before.of_service("Demo");
        let mut tracker = Tracker {
            window: WindowTracker::new(stats.service("Demo"), start),
            refused,
            refused_callers,
            key,
        };
        // The service's gate and its method's: each refusal is counted by one gate only.
        let later = Refusals {
            limits: vec![
                gate("Demo", None, [12, 0, 1]),
                gate("Demo", Some("get"), [0, 3, 0]),
                gate("Other", None, [900, 0, 0]),
            ],
            callers: vec![policy("Other", [70, 0, 0]), policy("Demo", [5, 2, 1])],
        };
        let window = tracker.next(&stats, &later, start + Duration::from_secs(5));
        assert_eq!(window.refused, 11, "{window:?}");
        let reasons: Vec<(&str, u64)> =
            window.refused_by_reason.iter().map(|(r, n)| (r.as_str(), *n)).collect();
        assert_eq!(reasons, [("adaptive", 1), ("concurrency", 3), ("qps", 7)]);
        assert_eq!(window.refused_callers, 5, "{window:?}");
        let reasons: Vec<(&str, u64)> =
            window.refused_callers_by_reason.iter().map(|(r, n)| (r.as_str(), *n)).collect();
        assert_eq!(reasons, [("bad_credential", 1), ("not_allowed", 4)]);

        let idle = tracker.next(&stats, &later, start + Duration::from_secs(10));
        assert_eq!((idle.refused, idle.refused_by_reason.len()), (0, 0), "{idle:?}");
        assert_eq!((idle.refused_callers, idle.refused_callers_by_reason.len()), (0, 0), "{idle:?}");
        // A server without limits or caller policies has nothing to count.
        let none = Refusals { limits: Vec::new(), callers: Vec::new() };
        let none = tracker.next(&stats, &none, start + Duration::from_secs(15));
        assert_eq!((none.refused, none.refused_callers), (0, 0));
    }

    #[test]
    fn windows_without_refusals_read_and_write_as_before() {
        let old = r#"{"at_ms":1,"window_ms":5000,"calls":3,"errors":0,"qps":0.6,"error_rate":0.0,
            "p50_ms":1.0,"p99_ms":2.0}"#;
        let window: NodeMetrics = serde_json::from_str(old).unwrap();
        assert_eq!((window.calls, window.refused, window.refused_by_reason.len()), (3, 0, 0));
        let written = serde_json::to_value(&window).unwrap();
        assert_eq!(written["refused"], 0);
        assert!(written.get("refused_by_reason").is_none(), "{written}");
        assert!(
            written.get("refused_callers").is_none() && written.get("refused_callers_by_reason").is_none()
        );
        let mut refusing = window.clone();
        refusing.refused = since(&REASONS, [0, 0, 0], [4, 0, 0], &mut refusing.refused_by_reason);
        refusing.refused_callers =
            since(&REFUSAL_REASONS, [0, 0, 0], [0, 2, 0], &mut refusing.refused_callers_by_reason);
        let read: NodeMetrics = serde_json::from_value(serde_json::to_value(&refusing).unwrap()).unwrap();
        assert_eq!((read.refused, read.refused_by_reason["qps"]), (4, 4));
        assert_eq!((read.refused_callers, read.refused_callers_by_reason["unauthenticated"]), (2, 2));
    }

    #[test]
    fn failures_are_logged_once_a_minute() {
        let key = NodeKey::new(Env::Dev, "app", "Demo", "10.0.0.1", 9).unwrap();
        let mut failures = Failures::default();
        let error = || Err(BackendError::SessionEnded { backend: "test" });
        failures.note(&key, error());
        failures.note(&key, error());
        failures.note(&key, error());
        assert_eq!((failures.suppressed, failures.failing), (2, true));
        failures.note(&key, Ok(()));
        assert!(!failures.failing);
    }
}
