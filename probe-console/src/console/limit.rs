//! A limit on failed logins, so the tokens cannot be guessed quickly.
//!
//! Every wrong token, given to `POST /api/login` or as `Authorization: Bearer`, counts as a
//! failure of the client's IP address (one shared bucket when the address is unknown, as in
//! in-process tests). A client with [`MAX_FAILURES`] failures within [`WINDOW`] gets 429 with a
//! `Retry-After` header, and its token is not even looked at, until the oldest failure leaves the
//! window. Successes do not count. Memory stays bounded: old failures are pruned and at most
//! [`MAX_CLIENTS`] addresses are tracked.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

/// How many failed logins a client may make within [`WINDOW`].
pub const MAX_FAILURES: usize = 10;

/// The window failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// How many client addresses the limiter tracks at most.
pub const MAX_CLIENTS: usize = 4096;

/// The client's IP address, from axum's [`ConnectInfo`] when the server provides it (`None`
/// otherwise, for example in `oneshot` tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// The address in `extensions`, if the server put one there.
    pub fn of(extensions: &axum::http::Extensions) -> Self {
        ClientIp(extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(&parts.extensions))
    }
}

/// 429: too many failed logins; try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// How long until the client may try again.
    pub retry_after: Duration,
}

impl Throttled {
    fn secs(self) -> u64 {
        // Round up, so a client that waits this long is let in.
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl IntoResponse for Throttled {
    fn into_response(self) -> Response {
        let secs = self.secs();
        let body = Json(serde_json::json!({ "error": format!("too many failed logins; wait {secs} s") }));
        (StatusCode::TOO_MANY_REQUESTS, [(RETRY_AFTER, secs.to_string())], body).into_response()
    }
}

/// The failed logins of each client within the window. The lock is never held across an `.await`.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    max_clients: usize,
    failures: Mutex<HashMap<ClientIp, VecDeque<Instant>>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(MAX_FAILURES, WINDOW, MAX_CLIENTS)
    }
}

impl LoginLimiter {
    /// At most `max_failures` per client within `window`, tracking at most `max_clients`.
    pub fn new(max_failures: usize, window: Duration, max_clients: usize) -> Self {
        LoginLimiter {
            max_failures: max_failures.max(1),
            window,
            max_clients: max_clients.max(1),
            failures: Mutex::default(),
        }
    }

    /// Runs `check` (which answers `None` for a wrong credential) unless `client` is throttled;
    /// a `None` counts as a failure of `client`.
    pub fn attempt<T>(
        &self,
        client: ClientIp,
        check: impl FnOnce() -> Option<T>,
    ) -> Result<Option<T>, Throttled> {
        self.attempt_at(client, Instant::now(), check)
    }

    /// [`LoginLimiter::attempt`] at time `now`.
    pub fn attempt_at<T>(
        &self,
        client: ClientIp,
        now: Instant,
        check: impl FnOnce() -> Option<T>,
    ) -> Result<Option<T>, Throttled> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = failures.get_mut(&client) {
            self.prune(times, now);
            if times.len() >= self.max_failures {
                let oldest = times.front().copied().unwrap_or(now);
                let retry_after = (oldest + self.window).saturating_duration_since(now);
                return Err(Throttled { retry_after });
            }
            if times.is_empty() {
                failures.remove(&client);
            }
        }
        // Checked under the lock, so concurrent guesses cannot overrun the limit.
        let outcome = check();
        if outcome.is_none() {
            if !failures.contains_key(&client) && failures.len() >= self.max_clients {
                self.make_room(&mut failures, now);
            }
            failures.entry(client).or_default().push_back(now);
        }
        Ok(outcome)
    }

    fn prune(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            times.pop_front();
        }
    }

    /// Drops clients without recent failures; if still full, the one whose last failure is oldest.
    fn make_room(&self, failures: &mut HashMap<ClientIp, VecDeque<Instant>>, now: Instant) {
        failures.retain(|_, times| {
            self.prune(times, now);
            !times.is_empty()
        });
        if failures.len() >= self.max_clients {
            let stalest = failures.iter().min_by_key(|(_, times)| times.back().copied()).map(|(k, _)| *k);
            if let Some(client) = stalest {
                failures.remove(&client);
            }
        }
    }

    /// How many clients are tracked.
    pub fn tracked(&self) -> usize {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> ClientIp {
        ClientIp(Some(IpAddr::from([10, 0, 0, last])))
    }

    #[test]
    fn failures_beyond_the_limit_are_throttled_until_the_window_passes() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60), 16);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(limiter.attempt_at(ip(1), t0 + Duration::from_secs(i), || None::<()>), Ok(None));
        }
        let mut checked = false;
        let throttled = limiter.attempt_at(ip(1), t0 + Duration::from_secs(10), || {
            checked = true;
            Some(())
        });
        assert_eq!(throttled, Err(Throttled { retry_after: Duration::from_secs(50) }));
        assert!(!checked, "a throttled client's token is not checked");
        // Another client, and successes, are unaffected.
        assert_eq!(limiter.attempt_at(ip(2), t0, || Some(7)), Ok(Some(7)));
        // Once the oldest failure leaves the window, one more attempt is allowed.
        let t60 = t0 + Duration::from_secs(60);
        assert_eq!(limiter.attempt_at(ip(1), t60, || None::<()>), Ok(None));
        let throttled = limiter.attempt_at(ip(1), t60, || Some(()));
        assert_eq!(throttled, Err(Throttled { retry_after: Duration::from_secs(1) }));
        assert_eq!(limiter.attempt_at(ip(1), t0 + Duration::from_secs(61), || Some(1)), Ok(Some(1)));
        assert_eq!(Throttled { retry_after: Duration::from_millis(1500) }.secs(), 2);
        assert_eq!(Throttled { retry_after: Duration::ZERO }.secs(), 1);
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60), 4);
        let t0 = Instant::now();
        for i in 0..100u8 {
            let _ = limiter.attempt_at(ip(i), t0 + Duration::from_millis(u64::from(i)), || None::<()>);
            assert!(limiter.tracked() <= 4);
        }
        // Old failures are pruned when room is needed.
        let later = t0 + Duration::from_secs(120);
        let _ = limiter.attempt_at(ip(200), later, || None::<()>);
        assert_eq!(limiter.tracked(), 1);
        // A client whose failures all left the window is dropped on its next attempt.
        assert_eq!(limiter.attempt_at(ip(200), later + Duration::from_secs(60), || Some(())), Ok(Some(())));
        assert_eq!(limiter.tracked(), 0);
    }
}
