//! Who is calling: a bearer token (API clients) or the session cookie a login set (browsers).
//!
//! [`authenticate`] guards every `/api` route but login: no valid credential is 401 and the
//! handler never runs; a cookie-authenticated request that changes something must pass the
//! [CSRF check](super::csrf). Handlers that change something take [`Admin`], which turns a viewer
//! away with 403. Wrong tokens (at login or as bearer) are counted per client and in all by
//! [`limit`](super::limit).

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::csrf;
use super::error::{ApiError, ApiResult, BackendDetail, Body};
use super::limit::ClientIp;
use super::session::{Role, SESSION_TTL};
use super::state::ConsoleState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "probe_console_session";

/// How a caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The session cookie.
    Session {
        /// The session id.
        id: String,
        /// The session's CSRF token.
        csrf: String,
    },
}

/// An authenticated caller, as [`authenticate`] leaves it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// What the caller may do.
    pub role: Role,
    /// The name changes are audited under: `console:admin`, `console:admin/alice`,
    /// `console-api:admin`.
    pub actor: String,
    /// How the caller authenticated.
    pub via: Via,
}

fn bearer(headers: &HeaderMap) -> Option<Option<&str>> {
    let value = headers.get(AUTHORIZATION)?;
    let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    Some(token)
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// The caller a bearer token (`None` when the header is not `Bearer <token>`) stands for.
fn bearer_caller(state: &ConsoleState, token: Option<&str>) -> Option<Caller> {
    let role = state.tokens().role_of(token?)?;
    Some(Caller { role, actor: format!("console-api:{}", role.as_str()), via: Via::Bearer })
}

fn session_caller(state: &ConsoleState, headers: &HeaderMap) -> Option<Caller> {
    let id = session_cookie(headers)?;
    let session = state.sessions().get(id)?;
    let actor = session_actor(session.role, &session.user);
    Some(Caller { role: session.role, actor, via: Via::Session { id: id.to_owned(), csrf: session.csrf } })
}

fn session_actor(role: Role, user: &str) -> String {
    match user {
        "" => format!("console:{}", role.as_str()),
        user => format!("console:{}/{user}", role.as_str()),
    }
}

/// Middleware: 401 without a valid credential, 403 on a cookie-authenticated change without the
/// session's CSRF token; otherwise runs the handler with the [`Caller`] in the extensions, and
/// gives a viewer the public text of a backend failure ([`BackendDetail`]: which backend, where,
/// and its setting) in place of the backend's own words. A wrong bearer token
/// counts as a failed login, and a client with too many gets 429 ([`limit`](super::limit)).
pub async fn authenticate(State(state): State<ConsoleState>, mut req: Request, next: Next) -> Response {
    // An Authorization header, when present, is the only credential looked at.
    let caller = match bearer(req.headers()) {
        Some(token) => {
            let client = ClientIp::of(req.extensions(), req.headers(), state.limiter().trusted());
            match state.limiter().attempt(client, || bearer_caller(&state, token)) {
                Ok(caller) => caller,
                // The limiter logs refusals, at most once per `LOG_EVERY`.
                Err(throttled) => return throttled.into_response(),
            }
        }
        None => session_caller(&state, req.headers()),
    };
    let Some(caller) = caller else {
        return ApiError::unauthorized().into_response();
    };
    if let Via::Session { csrf, .. } = &caller.via {
        if !csrf::is_safe(req.method()) {
            if let Err(err) = csrf::check(req.headers(), csrf) {
                return err.into_response();
            }
        }
    }
    let viewer = caller.role == Role::Viewer;
    req.extensions_mut().insert(caller);
    let response = next.run(req).await;
    if viewer {
        if let Some(BackendDetail(public)) = response.extensions().get::<BackendDetail>() {
            // The detail names database users, hosts and databases; it is in the log.
            return ApiError::new(response.status(), public.clone()).into_response();
        }
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(ApiError::unauthorized)
    }
}

/// A caller with the admin role; a viewer gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            Role::Admin => Ok(Admin(caller)),
            Role::Viewer => Err(ApiError::forbidden(
                "the viewer token can only read; log in with the admin token to change nodes and apps",
            )),
        }
    }
}

/// `POST /api/login` body.
#[derive(Debug, Deserialize)]
pub struct Login {
    /// The admin or viewer token.
    pub token: String,
    /// Who is logging in, for the audit log (optional).
    #[serde(default)]
    pub user: String,
}

/// What login and whoami answer.
#[derive(Debug, Serialize)]
pub struct WhoAmI {
    /// `admin` or `viewer`.
    pub role: Role,
    /// The name changes are audited under.
    pub actor: String,
    /// The token to send in `X-CSRF-Token` (cookie sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// The console's env.
    pub env: String,
}

fn check_user(user: &str) -> ApiResult<()> {
    let ok = user.len() <= 32 && user.chars().all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c));
    if ok { Ok(()) } else { Err(ApiError::bad_request("user must be at most 32 letters, digits or `_.@-`")) }
}

/// The session cookie; `Secure` (sent over HTTPS only) when the console serves HTTPS.
fn cookie(state: &ConsoleState, value: &str, max_age_secs: u64) -> ApiResult<HeaderValue> {
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    );
    HeaderValue::from_str(&cookie).map_err(|_| ApiError::bad_request("cannot build the session cookie"))
}

/// `POST /api/login {token, user?}`: starts a browser session (sets the cookie) and answers the
/// role and the CSRF token; 401 for a wrong token, 429 for a wrong token from a client with too
/// many, and 429 for any token while the console's whole budget of failures is spent
/// ([`limit`](super::limit)).
pub async fn login(
    State(state): State<ConsoleState>,
    client: ClientIp,
    Body(login): Body<Login>,
) -> ApiResult<Response> {
    check_user(&login.user)?;
    let role = match state.limiter().attempt(client, || state.tokens().role_of(login.token.trim())) {
        Ok(role) => role,
        // The limiter logs refusals, at most once per `LOG_EVERY`.
        Err(throttled) => return Ok(throttled.into_response()),
    };
    let Some(role) = role else {
        tracing::info!(client = ?client.0, user = %login.user, "console: login with a wrong token");
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "wrong token: use the admin or viewer token that `probe console` printed",
        ));
    };
    let (id, session) = state.sessions().create(role, &login.user);
    let actor = session_actor(role, &login.user);
    tracing::info!(%actor, "console: login");
    let body = WhoAmI { role, actor, csrf_token: Some(session.csrf), env: state.backends().env.to_string() };
    let set_cookie = cookie(&state, &id, SESSION_TTL.as_secs())?;
    Ok(([(SET_COOKIE, set_cookie)], Json(body)).into_response())
}

/// `POST /api/logout`: ends the cookie session and clears the cookie (a no-op for bearer callers).
pub async fn logout(State(state): State<ConsoleState>, caller: Caller) -> ApiResult<Response> {
    if let Via::Session { id, .. } = &caller.via {
        state.sessions().remove(id);
        tracing::info!(actor = %caller.actor, "console: logout");
    }
    let body = Json(serde_json::json!({ "logged_out": true }));
    Ok(([(SET_COOKIE, cookie(&state, "", 0)?)], body).into_response())
}

/// `GET /api/whoami`: the caller's role, audit name and (for cookie sessions) CSRF token.
pub async fn whoami(State(state): State<ConsoleState>, caller: Caller) -> Json<WhoAmI> {
    let csrf_token = match caller.via {
        Via::Session { csrf, .. } => Some(csrf),
        Via::Bearer => None,
    };
    Json(WhoAmI { role: caller.role, actor: caller.actor, csrf_token, env: state.backends().env.to_string() })
}
