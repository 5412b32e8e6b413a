//! The limit on failed logins: wrong tokens, at login or as bearer, are counted per client and in
//! all; beyond a client's limit its wrong tokens get 429 with `Retry-After` (its right ones still
//! get in), and beyond the global budget no token is checked. Client addresses come from
//! `X-Forwarded-For` only through trusted proxies.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{Method, StatusCode, header};
use serde_json::json;

use super::*;
use crate::console::limit::{LoginLimiter, MAX_FAILURES, TrustedProxies};

/// A console whose failure window is `window` and whose global budget is `global`.
fn limited(f: &Fixture, window: Duration, global: usize) -> Router {
    let limiter = LoginLimiter::new(MAX_FAILURES, window, 4096).with_global(global);
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
async fn ten_wrong_logins_then_wrong_tokens_are_429_but_the_right_one_gets_in() {
    let f = fixture().await;
    let app = limited(&f, Duration::from_millis(400), 1000);
    for i in 0..MAX_FAILURES {
        let (status, _, _) = send(&app, login_from(&format!("guess-{i}"), None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let (status, headers, json) = send(&app, login_from("one-more-guess", None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{json}");
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(json["error"], "too many failed logins; wait 1 s");
    assert_eq!(get(&app, "/api/whoami", Auth::Bearer("guess")).await.0, StatusCode::TOO_MANY_REQUESTS);
    // An operator behind the guesser's address (a shared NAT) still gets in.
    let (status, headers, json) = send(&app, login_from(ADMIN, None)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert!(headers.get(header::SET_COOKIE).is_some());
    assert_eq!(get(&app, "/api/whoami", Auth::Bearer(VIEWER)).await.0, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(send(&app, login_from("guess", None)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn successful_logins_do_not_count_and_clients_are_counted_apart() {
    let f = fixture().await;
    let app = limited(&f, Duration::from_secs(60), 1000);
    for _ in 0..3 * MAX_FAILURES {
        assert_eq!(send(&app, login_from(VIEWER, Some("10.0.0.1:5000"))).await.0, StatusCode::OK);
    }
    for _ in 0..MAX_FAILURES {
        assert_eq!(send(&app, login_from("guess", Some("10.0.0.2:5000"))).await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, json) = send(&app, login_from("guess", Some("10.0.0.2:6000"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{json}");
    let wait: u64 = headers.get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(json["error"], format!("too many failed logins; wait {wait} s"));
    // Another address's wrong token is a plain 401.
    assert_eq!(send(&app, login_from("guess", Some("10.0.0.1:5000"))).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&app, login_from(ADMIN, Some("[::1]:5000"))).await.0, StatusCode::OK);
}

#[tokio::test]
async fn rotating_addresses_get_only_the_global_budget_of_guesses_checked() {
    let f = fixture().await;
    let app = limited(&f, Duration::from_secs(60), 30);
    // 100 addresses x 10 guesses: the attack of issue 12.
    let mut checked = 0;
    for guess in 0..10 {
        for host in 0..100 {
            let from = format!("198.51.100.{host}:4000");
            let (status, _, _) = send(&app, login_from(&format!("guess-{guess}"), Some(&from))).await;
            match status {
                StatusCode::UNAUTHORIZED => checked += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("{other}"),
            }
        }
    }
    assert_eq!(checked, 30, "guesses checked out of 1000");
    // While the budget is spent no token is checked; sessions keep working.
    let (status, headers, _) = send(&app, login_from(ADMIN, Some("10.9.9.9:1"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.get(header::RETRY_AFTER).is_some());
    assert_eq!(get(&f.app, "/api/whoami", Auth::Bearer(ADMIN)).await.0, StatusCode::OK, "another console");
}

#[tokio::test]
async fn wrong_bearer_tokens_count_as_failed_logins() {
    let f = fixture().await;
    let app = limited(&f, Duration::from_secs(60), 1000);
    let from = |auth| {
        let mut req = request(Method::GET, "/api/apps", auth, None);
        req.extensions_mut().insert(ConnectInfo("10.0.0.3:1".parse::<SocketAddr>().unwrap()));
        req
    };
    for _ in 0..MAX_FAILURES {
        assert_eq!(send(&app, from(Auth::Bearer("guess"))).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(send(&app, from(Auth::Bearer("guess"))).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&app, login_from("guess", Some("10.0.0.3:2"))).await.0, StatusCode::TOO_MANY_REQUESTS);
    // The right token, and sessions, still work from that client.
    assert_eq!(send(&app, from(Auth::Bearer(ADMIN))).await.0, StatusCode::OK);
    let (id, _) = login(&app, VIEWER, "").await;
    assert_eq!(send(&app, from(Auth::Cookie(&id, None))).await.0, StatusCode::OK);
}

#[tokio::test]
async fn forwarded_for_names_the_client_only_through_a_trusted_proxy() {
    let f = fixture().await;
    let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();
    let limiter = LoginLimiter::new(MAX_FAILURES, Duration::from_secs(60), 64).trusting(trusted);
    let app = router(ConsoleState::with_limiter(&options(), f.backends.clone(), limiter).unwrap());
    let via = |peer: &str, forwarded: &str, token: &str| {
        let mut req = login_from(token, Some(peer));
        req.headers_mut().insert("x-forwarded-for", forwarded.parse().unwrap());
        req
    };
    // Through the proxy, clients are told apart by X-Forwarded-For, and a client cannot pose as
    // another by writing the header itself: the proxy appends the address it saw.
    for i in 0..MAX_FAILURES {
        let status = send(&app, via("10.0.0.1:1", &format!("192.0.2.{i}, 203.0.113.7"), "guess")).await.0;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(send(&app, via("10.0.0.1:1", "203.0.113.7", "guess")).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&app, via("10.0.0.1:1", "203.0.113.8", "guess")).await.0, StatusCode::UNAUTHORIZED);
    // From an untrusted peer the header is ignored: the peer is the client.
    for _ in 0..MAX_FAILURES {
        assert_eq!(
            send(&app, via("192.0.2.50:1", "198.51.100.1", "guess")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let status = send(&app, via("192.0.2.50:1", "198.51.100.99", "guess")).await.0;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "a forged header does not give a fresh budget");
}
