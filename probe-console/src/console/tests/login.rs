//! Browser sessions: login sets an HttpOnly SameSite=Strict cookie and answers a CSRF token;
//! cookie-authenticated changes need that token; logout ends the session.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use super::*;

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_answers_the_csrf_token() {
    let f = fixture().await;
    let body = json!({ "token": ADMIN, "user": "alice" });
    let (status, headers, json) =
        send(&f.app, request(Method::POST, "/api/login", Auth::None, Some(body))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(cookie.starts_with(&format!("{SESSION_COOKIE}=")), "{cookie}");
    assert!(!cookie.contains(ADMIN), "the cookie must hold a session id, not the token: {cookie}");
    assert_eq!((json["role"].as_str(), json["actor"].as_str()), (Some("admin"), Some("console:admin/alice")));
    let csrf = json["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(csrf.len(), 64);

    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    let (status, who) = get(&f.app, "/api/whoami", Auth::Cookie(id, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((who["role"].as_str(), who["csrf_token"].as_str()), (Some("admin"), Some(csrf.as_str())));
    assert_eq!(who["env"], "dev");
    let (_, who) = get(&f.app, "/api/whoami", Auth::Bearer(VIEWER)).await;
    assert_eq!((who["role"].as_str(), who.get("csrf_token")), (Some("viewer"), None));
}

#[tokio::test]
async fn a_wrong_token_or_a_bad_body_logs_nobody_in() {
    let f = fixture().await;
    let body = json!({ "token": "guess" });
    let (status, headers, json) =
        send(&f.app, request(Method::POST, "/api/login", Auth::None, Some(body))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert!(json["error"].as_str().unwrap().contains("wrong token"), "{json}");
    let bad_user = json!({ "token": ADMIN, "user": "<script>" });
    assert_eq!(post(&f.app, "/api/login", Auth::None, bad_user).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        post(&f.app, "/api/login", Auth::None, json!({ "tok": ADMIN })).await.0,
        StatusCode::BAD_REQUEST
    );
    // A cross-site form cannot send JSON: a form-encoded login is refused.
    let form = axum::http::Request::post("/api/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("token={ADMIN}")))
        .unwrap();
    let (status, _, json) = send(&f.app, form).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(json["error"].is_string(), "errors are JSON: {json}");
}

#[tokio::test]
async fn cookie_changes_need_the_sessions_csrf_token() {
    let f = fixture().await;
    let (id, csrf) = login(&f.app, ADMIN, "alice").await;
    let (other_id, other_csrf) = login(&f.app, ADMIN, "").await;
    assert_ne!((&id, &csrf), (&other_id, &other_csrf));
    let disable = format!("/api/nodes/{}/disable", enc(&f.key));
    for wrong in [None, Some(""), Some("0000"), Some(other_csrf.as_str())] {
        let (status, body) = post(&f.app, &disable, Auth::Cookie(&id, wrong), json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "csrf {wrong:?}");
        assert!(body["error"].as_str().unwrap().contains("X-CSRF-Token"), "{body}");
    }
    let add = json!({ "appkey": "csrf_app" });
    assert_eq!(
        post(&f.app, "/api/apps", Auth::Cookie(&id, None), add.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&f.app, "/api/logout", Auth::Cookie(&id, None), json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!((live(&f).await, audit_len(&f).await), ((1, 10), 0));

    // Reads need no CSRF token; the right token lets the change through.
    assert_eq!(get(&f.app, "/api/apps", Auth::Cookie(&id, None)).await.0, StatusCode::OK);
    let (status, body) = post(&f.app, &disable, Auth::Cookie(&id, Some(&csrf)), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(live(&f).await, (0, 10));
    let entry = &f.backends.audit.recent(1).await.unwrap()[0];
    assert_eq!((entry.actor.as_str(), entry.action.as_str()), ("console:admin/alice", "disable"));
    assert_eq!(post(&f.app, "/api/apps", Auth::Cookie(&id, Some(&csrf)), add).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let f = fixture().await;
    let (id, csrf) = login(&f.app, VIEWER, "").await;
    assert_eq!(get(&f.app, "/api/whoami", Auth::Cookie(&id, None)).await.0, StatusCode::OK);
    let req = request(Method::POST, "/api/logout", Auth::Cookie(&id, Some(&csrf)), Some(json!({})));
    let (status, headers, _) = send(&f.app, req).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert_eq!(get(&f.app, "/api/whoami", Auth::Cookie(&id, None)).await.0, StatusCode::UNAUTHORIZED);
    // Bearer callers have no session; logout is a no-op for them.
    assert_eq!(post(&f.app, "/api/logout", Auth::Bearer(ADMIN), json!({})).await.0, StatusCode::OK);
    assert_eq!(get(&f.app, "/api/whoami", Auth::Bearer(ADMIN)).await.0, StatusCode::OK);
}

#[test]
fn unusable_tokens_are_refused() {
    let backends = Backends::embedded(Env::Dev, &Embedded::new());
    let same = ConsoleOptions { viewer_token: ADMIN.into(), ..options() };
    assert!(ConsoleState::new(&same, backends.clone()).unwrap_err().to_string().contains("viewer"));
    let empty = ConsoleOptions { admin_token: " ".into(), ..options() };
    assert!(ConsoleState::new(&empty, backends).is_err());
    assert!(!format!("{:?}", options()).contains(ADMIN), "Debug must not show tokens");
}
