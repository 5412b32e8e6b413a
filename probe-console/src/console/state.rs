//! What every handler shares: the backends, the tokens, the sessions, the limit on failed logins
//! and the stop signal of the live streams.

use std::sync::Arc;

use probe_runtime::registry::Backends;
use tokio::sync::watch;

use super::ConsoleOptions;
use super::limit::LoginLimiter;
use super::session::{Sessions, TokenError, Tokens};

/// The console's shared state; clones share it. Build it with [`ConsoleState::new`] and pass it to
/// [`router`](super::router).
#[derive(Debug, Clone)]
pub struct ConsoleState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backends: Backends,
    tokens: Tokens,
    sessions: Sessions,
    limiter: LoginLimiter,
    /// Whether the session cookie is `Secure`: the console serves HTTPS.
    secure_cookies: bool,
    stop: watch::Sender<bool>,
}

impl ConsoleState {
    /// State over `backends` accepting the tokens of `options` (which must be different and at
    /// least [`MIN_TOKEN_LEN`](super::session::MIN_TOKEN_LEN) characters long).
    pub fn new(options: &ConsoleOptions, backends: Backends) -> Result<Self, TokenError> {
        Self::with_limiter(options, backends, LoginLimiter::default())
    }

    /// [`ConsoleState::new`] with another limit on failed logins (tests use a shorter window; a
    /// console behind a proxy trusts its `X-Forwarded-For`: [`LoginLimiter::trusting`]).
    pub fn with_limiter(
        options: &ConsoleOptions,
        backends: Backends,
        limiter: LoginLimiter,
    ) -> Result<Self, TokenError> {
        let tokens = Tokens::new(&options.admin_token, &options.viewer_token)?;
        let (stop, _) = watch::channel(false);
        let secure_cookies = options.tls.is_some();
        let inner = Inner { backends, tokens, sessions: Sessions::new(), limiter, secure_cookies, stop };
        Ok(ConsoleState { inner: Arc::new(inner) })
    }

    /// The backends the console reads and changes.
    pub fn backends(&self) -> &Backends {
        &self.inner.backends
    }

    pub(crate) fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub(crate) fn limiter(&self) -> &LoginLimiter {
        &self.inner.limiter
    }

    /// Whether the session cookie is `Secure` (sent by browsers over HTTPS only): the options
    /// asked for TLS.
    pub fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }

    /// Ends every live event stream (`/api/events`), so a graceful shutdown need not wait for
    /// browsers to close them. Streams opened after this end at once.
    pub fn stop_streams(&self) {
        self.inner.stop.send_replace(true);
    }

    /// Resolves once [`ConsoleState::stop_streams`] was called.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.inner.stop.subscribe();
        async move {
            // An error means the sender is gone, which also means stop.
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    }
}
