//! The operators' web console: a single page served by the binary and a JSON API under `/api`
//! (listed in [`api`]) over the registry, settings, app, metrics and audit backends.
//!
//! ```no_run
//! # async fn run(backends: probe_runtime::registry::Backends) -> anyhow::Result<()> {
//! use probe_console::console::{ConsoleOptions, serve};
//!
//! let options = ConsoleOptions {
//!     bind: "127.0.0.1:8480".parse()?,
//!     admin_token: "a long random admin token".into(),
//!     viewer_token: "a long random viewer token".into(),
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
//! caller's name.
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

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::middleware::map_response;
use probe_runtime::registry::Backends;
use tokio::net::TcpListener;

pub use limit::LoginLimiter;
pub use session::{Role, TokenError};
pub use state::ConsoleState;

/// Where the console listens and the tokens it accepts.
#[derive(Clone)]
pub struct ConsoleOptions {
    /// The address to listen on (`127.0.0.1:8480`; port 0 picks a free one).
    pub bind: SocketAddr,
    /// The token that may read and change (nodes, weights, apps).
    pub admin_token: String,
    /// The token that may only read.
    pub viewer_token: String,
}

impl std::fmt::Debug for ConsoleOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleOptions").field("bind", &self.bind).finish_non_exhaustive()
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
/// down gracefully. Fails when the tokens are unusable or the address cannot be bound.
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
    let listener = TcpListener::bind(options.bind).await.with_context(|| {
        format!("cannot listen on {}; pick another address or stop what uses it", options.bind)
    })?;
    serve_on(listener, state, probe_runtime::server::shutdown_signal()).await?;
    Ok(())
}

/// Serves the console on `listener` until `shutdown` resolves, then ends the live event streams
/// and lets requests in flight finish.
pub async fn serve_on(
    listener: TcpListener,
    state: ConsoleState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, env = %state.backends().env, "console: listening");
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
