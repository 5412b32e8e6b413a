//! A limit on failed logins, so the tokens cannot be guessed quickly, and so a guesser cannot lock
//! the operators out.
//!
//! Every wrong token, given to `POST /api/login` or as `Authorization: Bearer`, is a failure of the
//! client's address ([`ClientIp`], which believes `X-Forwarded-For` only from trusted proxies) and
//! of the console as a whole. Two budgets bound them within a sliding [`WINDOW`]:
//!
//! - **Global**: beyond [`MAX_GLOBAL_FAILURES`] failures from all addresses together, no token is
//!   checked (429 with `Retry-After`) until the oldest failure leaves the window. This bounds the
//!   guesses checked per window however many addresses a guesser rotates through. Cookie sessions
//!   are no guessable tokens and keep working.
//! - **Per address**: beyond [`MAX_FAILURES`] failures an address's wrong tokens answer 429 (not
//!   401) with `Retry-After`. A right token still gets in, so a guesser behind an operator's NAT
//!   cannot lock the operator out; its guesses keep counting against the global budget.
//!
//! Successes do not count. Memory stays bounded: old failures are pruned, an address keeps at most
//! [`MAX_FAILURES`] of them, and at most [`MAX_CLIENTS`] addresses are tracked. Refusals are logged
//! at most once per [`LOG_EVERY`], with the number refused since.
//!
//! This is a sliding-window log written here rather than `governor`: governor's GCRA spends a cell
//! on every check and cannot answer "is this address over its budget?" without spending one, while
//! this limit counts only failures, after the token is checked. The lock is never held across an
//! `.await`, and the token check runs under it so concurrent guesses cannot overrun a budget.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};

pub use super::client_ip::{ClientIp, TrustedProxies};

/// How many failed logins one address may make within [`WINDOW`] before its wrong tokens get 429.
pub const MAX_FAILURES: usize = 10;

/// How many failed logins all addresses together may make within [`WINDOW`]; beyond it no token
/// is checked.
pub const MAX_GLOBAL_FAILURES: usize = 30;

/// The window failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// How many client addresses the limiter tracks at most.
pub const MAX_CLIENTS: usize = 4096;

/// At most one warning about refused logins per this long.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

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

/// The failures within the window: per client and all together.
#[derive(Debug, Default)]
struct Failures {
    clients: HashMap<ClientIp, VecDeque<Instant>>,
    global: VecDeque<Instant>,
}

/// The limit on failed logins, and the proxies whose `X-Forwarded-For` names the client.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: usize,
    max_global: usize,
    window: Duration,
    max_clients: usize,
    trusted: TrustedProxies,
    failures: Mutex<Failures>,
    log: RefusalLog,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(MAX_FAILURES, WINDOW, MAX_CLIENTS)
    }
}

impl LoginLimiter {
    /// At most `max_failures` per client and [`MAX_GLOBAL_FAILURES`] in all within `window`,
    /// tracking at most `max_clients`.
    pub fn new(max_failures: usize, window: Duration, max_clients: usize) -> Self {
        LoginLimiter {
            max_failures: max_failures.max(1),
            max_global: MAX_GLOBAL_FAILURES,
            window,
            max_clients: max_clients.max(1),
            trusted: TrustedProxies::default(),
            failures: Mutex::default(),
            log: RefusalLog::default(),
        }
    }

    /// The same limiter with a global budget of `max_global` failures per window.
    pub fn with_global(mut self, max_global: usize) -> Self {
        self.max_global = max_global.max(1);
        self
    }

    /// The same limiter believing `X-Forwarded-For` from `trusted` proxies.
    pub fn trusting(mut self, trusted: TrustedProxies) -> Self {
        self.trusted = trusted;
        self
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    pub fn trusted(&self) -> &TrustedProxies {
        &self.trusted
    }

    /// Runs `check` (which answers `None` for a wrong credential) unless the global budget is
    /// spent; a `None` counts as a failure of `client` and of the console, and is `Throttled` when
    /// `client` is over its own budget.
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
        self.prune(&mut failures.global, now);
        if failures.global.len() >= self.max_global {
            let throttled = self.retry(&failures.global, now);
            drop(failures);
            self.log.refused(now, client, "all clients together");
            return Err(throttled);
        }
        let locked = match failures.clients.get_mut(&client) {
            Some(times) => {
                self.prune(times, now);
                times.len() >= self.max_failures
            }
            None => false,
        };
        // Checked under the lock, so concurrent guesses cannot overrun a budget. A right token
        // passes even when its address is locked.
        let outcome = check();
        if outcome.is_some() {
            return Ok(outcome);
        }
        failures.global.push_back(now);
        if !failures.clients.contains_key(&client) && failures.clients.len() >= self.max_clients {
            self.make_room(&mut failures.clients, now);
        }
        let times = failures.clients.entry(client).or_default();
        times.push_back(now);
        while times.len() > self.max_failures {
            times.pop_front();
        }
        if !locked {
            return Ok(None);
        }
        let throttled = self.retry(times, now);
        drop(failures);
        self.log.refused(now, client, "this client");
        Err(throttled)
    }

    /// Until the oldest of `times` leaves the window.
    fn retry(&self, times: &VecDeque<Instant>, now: Instant) -> Throttled {
        let oldest = times.front().copied().unwrap_or(now);
        Throttled { retry_after: (oldest + self.window).saturating_duration_since(now) }
    }

    fn prune(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            times.pop_front();
        }
    }

    /// Drops clients without recent failures; if still full, the one whose last failure is oldest.
    fn make_room(&self, clients: &mut HashMap<ClientIp, VecDeque<Instant>>, now: Instant) {
        clients.retain(|_, times| {
            self.prune(times, now);
            !times.is_empty()
        });
        if clients.len() >= self.max_clients {
            let stalest = clients.iter().min_by_key(|(_, times)| times.back().copied()).map(|(k, _)| *k);
            if let Some(client) = stalest {
                clients.remove(&client);
            }
        }
    }

    /// How many clients are tracked.
    pub fn tracked(&self) -> usize {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).clients.len()
    }
}

/// Refused logins, logged at most once per [`LOG_EVERY`] so a flood of guesses cannot flood the
/// log.
#[derive(Debug, Default)]
struct RefusalLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl RefusalLog {
    fn refused(&self, now: Instant, client: ClientIp, over: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (last, suppressed) = &mut *state;
        if last.is_some_and(|last| now.saturating_duration_since(last) < LOG_EVERY) {
            *suppressed += 1;
            return;
        }
        let since = std::mem::take(suppressed);
        *last = Some(now);
        drop(state);
        tracing::warn!(
            client = ?client.0,
            over,
            refused_since_last_warning = since,
            "console: login refused, too many failed logins (logged at most every {} s)",
            LOG_EVERY.as_secs()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

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
        let throttled = limiter.attempt_at(ip(1), t0 + Duration::from_secs(10), || None::<()>);
        assert_eq!(throttled, Err(Throttled { retry_after: Duration::from_secs(51) }));
        // The right token passes the lockout of its address.
        assert_eq!(limiter.attempt_at(ip(1), t0 + Duration::from_secs(10), || Some(5)), Ok(Some(5)));
        // Another client, and successes, are unaffected.
        assert_eq!(limiter.attempt_at(ip(2), t0, || Some(7)), Ok(Some(7)));
        assert_eq!(limiter.attempt_at(ip(2), t0, || None::<()>), Ok(None));
        // Once the failures leave the window, a wrong token is a plain failure again.
        let t80 = t0 + Duration::from_secs(80);
        assert_eq!(limiter.attempt_at(ip(1), t80, || None::<()>), Ok(None));
        assert_eq!(Throttled { retry_after: Duration::from_millis(1500) }.secs(), 2);
        assert_eq!(Throttled { retry_after: Duration::ZERO }.secs(), 1);
    }

    #[test]
    fn the_global_budget_bounds_guesses_from_rotating_addresses() {
        let limiter = LoginLimiter::new(10, Duration::from_secs(60), 4096).with_global(30);
        let t0 = Instant::now();
        let mut checked = 0;
        for i in 0..1000u32 {
            let client = ClientIp(Some(IpAddr::from((i % 100).to_be_bytes())));
            let _ = limiter.attempt_at(client, t0 + Duration::from_millis(u64::from(i)), || {
                checked += 1;
                None::<()>
            });
        }
        assert_eq!(checked, 30, "100 addresses x 10 guesses: only the global budget is checked");
        // While it is spent no token is checked, the right one neither.
        let at = t0 + Duration::from_secs(2);
        let spent = limiter.attempt_at(ip(9), at, || Some(()));
        assert_eq!(spent, Err(Throttled { retry_after: Duration::from_secs(58) }));
        assert_eq!(limiter.attempt_at(ip(9), t0 + Duration::from_secs(61), || Some(())), Ok(Some(())));
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60), 4).with_global(1000);
        let t0 = Instant::now();
        for i in 0..100u8 {
            let _ = limiter.attempt_at(ip(i), t0 + Duration::from_millis(u64::from(i)), || None::<()>);
            assert!(limiter.tracked() <= 4);
        }
        for _ in 0..100 {
            let _ = limiter.attempt_at(ip(7), t0, || None::<()>);
        }
        let per_client = limiter.failures.lock().unwrap().clients.values().map(VecDeque::len).max();
        assert_eq!(per_client, Some(3));
        // Old failures are pruned when room is needed.
        let later = t0 + Duration::from_secs(120);
        let _ = limiter.attempt_at(ip(200), later, || None::<()>);
        assert_eq!(limiter.tracked(), 1);
    }
}
