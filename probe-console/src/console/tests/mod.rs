//! In-process tests of the console: the whole router called with `oneshot` over embedded backends.

mod access;
mod api;
mod callers;
mod hostile;
mod limit;
mod live;
mod login;
mod request_limits;
mod rules;
mod tls;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
use probe_runtime::registry::{App, Backends, NodeMetrics, RegistrySession};
use serde_json::Value;
use tower::ServiceExt;

use super::auth::SESSION_COOKIE;
use super::{ConsoleOptions, ConsoleState, router};

const ADMIN: &str = "admin-token-0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789abcdef";
const APP: &str = "console_app";

/// How a test request authenticates.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    /// Session id and the CSRF header to send (if any).
    Cookie(&'a str, Option<&'a str>),
}

/// A console over fresh embedded backends with one registered app and one live node.
struct Fixture {
    backends: Backends,
    app: Router,
    key: NodeKey,
    _session: Box<dyn RegistrySession>,
}

fn options() -> ConsoleOptions {
    ConsoleOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        admin_token: ADMIN.into(),
        viewer_token: VIEWER.into(),
        tls: None,
    }
}

async fn fixture() -> Fixture {
    let backends = Backends::embedded(Env::Dev, &Embedded::new());
    let app = App { appkey: APP.into(), description: "console tests".into(), owner: "qa".into() };
    backends.apps.add(&app).await.unwrap();
    let key = NodeKey::new(Env::Dev, APP, "Directory", "127.0.0.1", 7001).unwrap();
    let mut live = NodeData::new("127.0.0.1", 7001);
    live.version = Some("0.1.0".into());
    live.started_at = Some(1_700_000_000);
    let session = backends.registry.session().await.unwrap();
    session.register(&key, &live).await.unwrap();
    backends.settings.put(&key, &NodeData::new("127.0.0.1", 7001)).await.unwrap();
    for (i, p99) in [4.0, 6.5].into_iter().enumerate() {
        // The latest window has 3 calls refused by the node's concurrency limit, and 2 its caller
        // policy refused.
        let mut window = NodeMetrics {
            at_ms: 1_700_000_000_000 + i as u64 * 5_000,
            window_ms: 5_000,
            calls: 500,
            errors: 5,
            qps: 100.0,
            error_rate: 0.01,
            p50_ms: 1.5,
            p99_ms: p99,
            methods: Vec::new(),
            refused: 3 * i as u64,
            ..NodeMetrics::default()
        };
        if window.refused > 0 {
            window.refused_by_reason.insert("concurrency".into(), window.refused);
            window.refused_callers = 2;
            window.refused_callers_by_reason.insert("not_allowed".into(), 2);
        }
        backends.metrics.publish(&key, &window, Duration::from_secs(60)).await.unwrap();
    }
    let state = ConsoleState::new(&options(), backends.clone()).unwrap();
    Fixture { backends, app: router(state), key, _session: session }
}

/// The node's path segment: its Redis field, URL-encoded.
fn enc(key: &NodeKey) -> String {
    key.redis_field().replace('|', "%7C")
}

fn request(method: Method, path: &str, auth: Auth<'_>, body: Option<Value>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    match auth {
        Auth::None => {}
        Auth::Bearer(token) => builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
        Auth::Cookie(id, csrf) => {
            builder = builder.header(header::COOKIE, format!("theme=dark; {SESSION_COOKIE}={id}"));
            if let Some(csrf) = csrf {
                builder = builder.header("x-csrf-token", csrf);
            }
        }
    }
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// Sends one request; answers the status, headers and JSON body (`Null` when not JSON).
async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, json)
}

async fn get(app: &Router, path: &str, auth: Auth<'_>) -> (StatusCode, Value) {
    let (status, _, body) = send(app, request(Method::GET, path, auth, None)).await;
    (status, body)
}

async fn post(app: &Router, path: &str, auth: Auth<'_>, body: Value) -> (StatusCode, Value) {
    let (status, _, body) = send(app, request(Method::POST, path, auth, Some(body))).await;
    (status, body)
}

/// Logs in with `token`; answers the session id and the CSRF token.
async fn login(app: &Router, token: &str, user: &str) -> (String, String) {
    let body = serde_json::json!({ "token": token, "user": user });
    let (status, headers, json) =
        send(app, request(Method::POST, "/api/login", Auth::None, Some(body))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
    (id, json["csrf_token"].as_str().unwrap().to_owned())
}

/// The node's live valid flag and weight.
async fn live(f: &Fixture) -> (u8, u32) {
    let nodes = f.backends.registry.nodes(Env::Dev, APP).await.unwrap();
    let node = nodes.iter().find(|n| n.key == f.key).unwrap();
    (u8::from(node.data.valid.is_on()), node.data.weight.value() as u32)
}

async fn audit_len(f: &Fixture) -> usize {
    f.backends.audit.recent(100).await.unwrap().len()
}
