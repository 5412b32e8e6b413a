//! The operators' web console: a single page served by the binary and a JSON API under `/api`
//! (listed in [`api`]) over the registry, settings, app, metrics and audit backends.
//!
//! ```no_run
//! # async fn run(backends: probe_runtime::registry::Backends) -> anyhow::Result<()> {
//! use probe_console::console::{ConsoleOptions, ConsoleTls, serve};
//!
//! let options = ConsoleOptions {
//!     bind: "127.0.0.1:8480".parse()?,
//!     admin_token: "a long random admin token".into(),
//!     viewer_token: "a long random viewer token".into(),
//!     tls: None, // or Some(ConsoleTls::new("console.pem", "console.key")): HTTPS
//! };
//! serve(options, backends).await // until Ctrl-C
//! # }
//! ```
//!
//! Security: every `/api` route but login needs a credential, either `Authorization: Bearer
//! <token>` (API clients) or the session cookie that `POST /api/login` sets (browsers; see
//! [`auth`]). The viewer token reads, the admin token also changes (a viewer gets 403). Changes
//! authenticated by cookie need the session's CSRF token ([`csrf`]). Tokens shorter than
//! [`MIN_TOKEN_LEN`](session::MIN_TOKEN_LEN) are refused. Wrong tokens are limited ([`limit`]):
//! beyond 10 failures a minute from one client address its wrong tokens get 429 (its right ones
//! still get in), and beyond 30 a minute from all clients together no token is checked. The client
//! address is the peer's, or from `X-Forwarded-For` when the peer is a trusted proxy
//! ([`client_ip`]). Every change is
//! recorded in the audit log by [`Operator`](probe_runtime::registry::Operator) under the
//! caller's name. With [`ConsoleOptions::tls`] the console serves HTTPS only ([`tls`]) and its
//! session cookie is `Secure`.
//!
//! For tests, [`router`] gives the whole console as an axum [`Router`] to call with `oneshot`.

pub mod api;
mod assets;
pub mod auth;
pub mod client_ip;
pub mod csrf;
pub mod error;
pub mod limit;
pub mod live;
pub mod session;
mod state;
pub mod tls;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::connect_info::Connected;
use axum::middleware::map_response;
use axum::serve::{IncomingStream, Listener, ListenerExt};
use probe_runtime::registry::Backends;
use tokio::net::TcpListener;

pub use limit::LoginLimiter;
pub use session::{Role, TokenError};
pub use state::ConsoleState;
pub use tls::{ConsoleTls, ConsoleTlsError, TlsListener};

/// Where the console listens and the tokens it accepts.
#[derive(Clone)]
pub struct ConsoleOptions {
    /// The address to listen on (`127.0.0.1:8480`; port 0 picks a free one).
    pub bind: SocketAddr,
    /// The token that may read and change (nodes, weights, apps).
    pub admin_token: String,
    /// The token that may only read.
    pub viewer_token: String,
    /// HTTPS with this certificate and key; `None` serves plain HTTP.
    pub tls: Option<ConsoleTls>,
}

impl std::fmt::Debug for ConsoleOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleOptions")
            .field("bind", &self.bind)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// The whole console: the page and its assets, and the API under `/api`.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .nest("/api", api::routes(&state))
        .merge(assets::routes())
        .layer(map_response(assets::secure_headers))
        .with_state(state)
}

/// Serves the console on `options.bind` over `backends` until Ctrl-C (or SIGTERM), then shuts
/// down gracefully; over HTTPS with `options.tls`. Fails when the tokens or TLS files are unusable
/// or the address cannot be bound.
pub async fn serve(options: ConsoleOptions, backends: Backends) -> anyhow::Result<()> {
    serve_with(options, LoginLimiter::default(), backends).await
}

/// [`serve`] with another login limit, for example one that trusts the `X-Forwarded-For` of the
/// proxies in front of the console ([`LoginLimiter::trusting`]).
pub async fn serve_with(
    options: ConsoleOptions,
    limiter: LoginLimiter,
    backends: Backends,
) -> anyhow::Result<()> {
    let state =
        ConsoleState::with_limiter(&options, backends, limiter).context("cannot start the console")?;
    let tls = options.tls.as_ref().map(ConsoleTls::load).transpose().context("cannot start the console")?;
    let listener = TcpListener::bind(options.bind).await.with_context(|| {
        format!("cannot listen on {}; pick another address or stop what uses it", options.bind)
    })?;
    let shutdown = probe_runtime::server::shutdown_signal();
    match tls {
        Some(tls) => serve_tls_on(listener, tls, state, shutdown).await?,
        None => serve_on(listener, state, shutdown).await?,
    }
    Ok(())
}

/// Serves the console on `listener` until `shutdown` resolves, then ends the live event streams
/// and lets requests in flight finish.
pub async fn serve_on(
    listener: TcpListener,
    state: ConsoleState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_listener(listener, "http", state, shutdown).await
}

/// [`serve_on`] over HTTPS: TLS with `tls` (from [`ConsoleTls::load`]) on every connection of
/// `listener`. `state` must come from options with [`ConsoleOptions::tls`] set, so its session
/// cookie is `Secure`; an error otherwise.
pub async fn serve_tls_on(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: ConsoleState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if !state.secure_cookies() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the console state was made from options without `tls`, so its session cookie would not \
             be Secure: set ConsoleOptions::tls",
        ));
    }
    // Small responses go out at once, not after Nagle's delay. (A tapped listener also has axum's
    // ConnectInfo: the peer address.)
    let listener = TlsListener::new(listener, tls).tap_io(|tls| {
        let _ = tls.get_ref().0.set_nodelay(true);
    });
    serve_listener(listener, "https", state, shutdown).await
}

async fn serve_listener<L>(
    listener: L,
    scheme: &str,
    state: ConsoleState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: Connected<IncomingStream<'a, L>>,
{
    let addr = listener.local_addr()?;
    tracing::info!(%addr, scheme, env = %state.backends().env, "console: listening");
    let app = router(state.clone());
    let signal = async move {
        shutdown.await;
        tracing::info!("console: shutting down");
        state.stop_streams();
    };
    // The peer address feeds the per-client limit on failed logins ([`limit`]).
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(signal).await
}
