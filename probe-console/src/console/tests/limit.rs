//! The limit on failed logins: wrong tokens, at login or as bearer, are counted per client; beyond
//! the limit the client gets 429 with `Retry-After` and its token is not checked.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{Method, StatusCode, header};
use serde_json::json;

use super::*;
use crate::console::limit::{LoginLimiter, MAX_FAILURES};

/// A console whose failure window is `window`.
fn limited(f: &Fixture, window: Duration) -> Router {
    let limiter = LoginLimiter::new(MAX_FAILURES, window, 64);
    router(ConsoleState::with_limiter(&options(), f.backends.clone(), limiter).unwrap())
}

/// A login request from `from` (no address, as without `ConnectInfo`, when `None`).
fn login_from(token: &str, from: Option<&str>) -> Request<Body> {
    let mut req = request(Method::POST, "/api/login", Auth::None, Some(json!({ "token": token })));
    if let Some(addr) = from {
        req.extensions_mut().insert(ConnectInfo(addr.parse::<SocketAddr>().unwrap()));
    }
    req
}

#[tokio::test]
async fn ten_wrong_logins_then_even_the_right_token_is_429_until_the_window_passes() {
    let f = fixture().await;
    let app = limited(&f, Duration::from_millis(400));
    for i in 0..MAX_FAILURES {
        let (status, _, _) = send(&app, login_from(&format!("guess-{i}"), None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let (status, headers, json) = send(&app, login_from(ADMIN, None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{json}");
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(json["error"], "too many failed logins; wait 1 s");
    // Bearer callers from the same client are throttled too.
    assert_eq!(get(&app, "/api/whoami", Auth::Bearer(ADMIN)).await.0, StatusCode::TOO_MANY_REQUESTS);

    tokio::time::sleep(Duration::from_millis(450)).await;
    let (status, _, json) = send(&app, login_from(ADMIN, None)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(get(&app, "/api/whoami", Auth::Bearer(VIEWER)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn successful_logins_do_not_count_and_clients_are_counted_apart() {
    let f = fixture().await;
    let app = limited(&f, Duration::from_secs(60));
    for _ in 0..3 * MAX_FAILURES {
        assert_eq!(send(&app, login_from(VIEWER, Some("10.0.0.1:5000"))).await.0, StatusCode::OK);
    }
    for _ in 0..MAX_FAILURES {
        assert_eq!(send(&app, login_from("guess", Some("10.0.0.2:5000"))).await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, json) = send(&app, login_from(ADMIN, Some("10.0.0.2:6000"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{json}");
    let wait: u64 = headers.get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(json["error"], format!("too many failed logins; wait {wait} s"));
    // Another address, and the one with only successes, still log in.
    assert_eq!(send(&app, login_from(ADMIN, Some("10.0.0.1:5000"))).await.0, StatusCode::OK);
    assert_eq!(send(&app, login_from(ADMIN, Some("[::1]:5000"))).await.0, StatusCode::OK);
}

#[tokio::test]
async fn wrong_bearer_tokens_count_as_failed_logins() {
    let f = fixture().await;
    let app = limited(&f, Duration::from_secs(60));
    let from = |auth| {
        let mut req = request(Method::GET, "/api/apps", auth, None);
        req.extensions_mut().insert(ConnectInfo("10.0.0.3:1".parse::<SocketAddr>().unwrap()));
        req
    };
    for _ in 0..MAX_FAILURES {
        assert_eq!(send(&app, from(Auth::Bearer("guess"))).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(send(&app, from(Auth::Bearer(ADMIN))).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&app, login_from(ADMIN, Some("10.0.0.3:2"))).await.0, StatusCode::TOO_MANY_REQUESTS);
    // Sessions are not guessable tokens: a cookie from that client still works.
    let (id, _) = login(&app, VIEWER, "").await;
    assert_eq!(send(&app, from(Auth::Cookie(&id, None))).await.0, StatusCode::OK);
    assert_eq!(get(&app, "/api/apps", Auth::Bearer(ADMIN)).await.0, StatusCode::OK);
}
