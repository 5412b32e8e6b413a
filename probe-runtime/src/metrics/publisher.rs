//! The task that publishes a registered server's windows: every interval, each node's window goes
//! to the metrics store (Redis) with a TTL of three intervals, so a node that stops publishing
//! disappears from the console by itself. Failures are logged, at most once a minute, never fatal.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval_at, timeout};
use tracing::{debug, info, warn};

use super::server::ServerStats;
use super::window::WindowTracker;
use crate::registry::layout::NodeKey;
use crate::registry::{BackendError, MetricsStore};

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
        let trackers = nodes
            .into_iter()
            .map(|key| {
                let counts = stats.service(key.service());
                (key, WindowTracker::new(counts, start.into_std()))
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

async fn run(
    store: Arc<dyn MetricsStore>,
    stats: Arc<ServerStats>,
    mut trackers: Vec<(NodeKey, WindowTracker)>,
    start: Instant,
    interval: Duration,
) {
    let ttl = interval * TTL_INTERVALS;
    let mut ticks = interval_at(start + interval, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failures = Failures::default();
    loop {
        let now = ticks.tick().await.into_std();
        for (key, tracker) in &mut trackers {
            let window = tracker.next(stats.service(key.service()), now);
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
