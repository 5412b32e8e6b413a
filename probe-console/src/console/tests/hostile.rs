//! Hostile input from the registry and from callers (issue 12, items 8 and 10): the address shown is
//! the one clients dial, odd node data is noted, big bodies are 413, refused logins cannot flood the
//! log, and viewers never see a backend's own error text.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use probe_runtime::registry::{App, AppStore, BackendError};
use probe_runtime::service::BoxFuture;
use serde_json::json;

use super::*;
use crate::console::error::ASK_AN_ADMIN;
use crate::console::limit::{LoginLimiter, MAX_FAILURES};

const A: Auth<'static> = Auth::Bearer(ADMIN);
const V: Auth<'static> = Auth::Bearer(VIEWER);

#[tokio::test]
async fn nodes_show_the_address_clients_dial_and_note_odd_data() {
    let f = fixture().await;
    // Named 127.0.0.1:7002, but its data sends clients to 203.0.113.5:22 with a huge weight.
    let key = NodeKey::new(Env::Dev, APP, "Directory", "127.0.0.1", 7002).unwrap();
    let mut data = NodeData::new("203.0.113.5", 22);
    data.weight = 5_000_000.into();
    let session = f.backends.registry.session().await.unwrap();
    session.register(&key, &data).await.unwrap();

    let (status, body) = get(&f.app, &format!("/api/apps/{APP}/nodes"), V).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let nodes = body["nodes"].as_array().unwrap();
    let odd = nodes.iter().find(|n| n["node"] == key.redis_field()).unwrap();
    assert_eq!((odd["host"].clone(), odd["port"].clone()), (json!("203.0.113.5"), json!(22)));
    assert_eq!((odd["ip"].clone(), odd["name_port"].clone()), (json!("127.0.0.1"), json!(7002)));
    let notes: Vec<&str> = odd["notes"].as_array().unwrap().iter().filter_map(|n| n.as_str()).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("its data says 203.0.113.5:22 while its name says 127.0.0.1:7002"));
    assert!(notes[1].starts_with("weight 5000000 is above 1000000"));
    let honest = nodes.iter().find(|n| n["node"] == f.key.redis_field()).unwrap();
    assert_eq!(honest["notes"], json!([]));
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let f = fixture().await;
    let big = json!({ "appkey": "big_app", "description": "x".repeat(3 << 20), "owner": "qa" });
    let (status, body) = post(&f.app, "/api/apps", A, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("bad request body"), "{body}");
    let (status, _) = post(&f.app, "/api/apps", A, json!({ "appkey": 1 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// An app store that fails as MySQL does, naming its user, host and database.
#[derive(Debug)]
struct DeniedApps;

const DENIED: &str = "Access denied for user 'probe_rw'@'db7.internal' to database 'billing_prod'";

impl DeniedApps {
    fn fail<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, BackendError>> {
        Box::pin(async {
            Err(BackendError::Failed { backend: "MySQL", action: "list apps".into(), detail: DENIED.into() })
        })
    }
}

impl AppStore for DeniedApps {
    fn contains<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        Self::fail()
    }
    fn add<'a>(&'a self, _: &'a App) -> BoxFuture<'a, Result<bool, BackendError>> {
        Self::fail()
    }
    fn remove<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        Self::fail()
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<App>, BackendError>> {
        Self::fail()
    }
}

#[tokio::test]
async fn viewers_learn_which_backend_failed_but_not_what_it_said() {
    let f = fixture().await;
    let backends = Backends { apps: Arc::new(DeniedApps), ..f.backends.clone() };
    let app = router(ConsoleState::new(&options(), backends).unwrap());
    let (status, body) = get(&app, "/api/apps", V).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let public = format!(
        "MySQL failed; it is configured by PROBE_MYSQL (or `mysql` in the config file); {ASK_AN_ADMIN}"
    );
    assert_eq!(body["error"], public.as_str());
    for secret in ["probe_rw", "db7.internal", "billing_prod"] {
        assert!(!body.to_string().contains(secret), "{body}");
    }
    let (id, _) = login(&app, VIEWER, "ann").await;
    let (_, body) = get(&app, "/api/apps", Auth::Cookie(&id, None)).await;
    assert_eq!(body["error"], public.as_str());
    // Admins see what failed.
    let (status, body) = get(&app, "/api/apps", A).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body["error"].as_str().unwrap().contains(DENIED), "{body}");
}

/// A log writer that keeps what is written.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_flood_of_refused_logins_logs_one_warning() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let f = fixture().await;
    let limiter = LoginLimiter::new(MAX_FAILURES, Duration::from_secs(60), 64);
    let app = router(ConsoleState::with_limiter(&options(), f.backends.clone(), limiter).unwrap());
    let mut refused = 0;
    for i in 0..MAX_FAILURES + 500 {
        let body = json!({ "token": format!("guess-{i}") });
        let (status, _, _) = send(&app, request(Method::POST, "/api/login", Auth::None, Some(body))).await;
        refused += usize::from(status == StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(refused, 500);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings = log.lines().filter(|l| l.contains("login refused")).count();
    // One line per LOG_EVERY (10 s) at most, however fast the refusals come.
    assert!(warnings >= 1 && warnings * 100 <= refused, "{warnings} warnings for {refused} refusals: {log}");
}
