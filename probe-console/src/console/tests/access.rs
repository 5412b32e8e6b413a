//! The access matrix: no token is 401 and changes nothing, the viewer reads but gets 403 on every
//! change, the admin changes, and every change lands in the audit log.

use axum::http::StatusCode;
use serde_json::json;

use super::*;

/// Every state-changing request of the API, for the node `key`.
fn changes(key: &NodeKey) -> Vec<(String, Value)> {
    let node = enc(key);
    vec![
        (format!("/api/nodes/{node}/disable"), json!({})),
        (format!("/api/nodes/{node}/enable"), json!({})),
        (format!("/api/nodes/{node}/weight"), json!({ "weight": 0 })),
        ("/api/apps".to_owned(), json!({ "appkey": "stranger_app", "description": "", "owner": "" })),
    ]
}

fn reads(key: &NodeKey) -> Vec<String> {
    vec![
        "/api/whoami".to_owned(),
        "/api/apps".to_owned(),
        "/api/services".to_owned(),
        format!("/api/apps/{APP}/nodes"),
        format!("/api/nodes/{}/history", enc(key)),
        "/api/audit".to_owned(),
    ]
}

async fn unchanged(f: &Fixture) {
    assert_eq!(live(f).await, (1, 10), "the node changed");
    assert_eq!(audit_len(f).await, 0, "something was audited");
    assert!(!f.backends.apps.contains("stranger_app").await.unwrap(), "the app was added");
}

#[tokio::test]
async fn without_a_token_everything_is_401_and_nothing_changes() {
    let f = fixture().await;
    for path in reads(&f.key).iter().chain(["/api/events".to_owned()].iter()) {
        let (status, body) = get(&f.app, path, Auth::None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "GET {path}");
        assert!(body["error"].as_str().unwrap().contains("log in"), "{body}");
    }
    for (path, body) in changes(&f.key) {
        assert_eq!(post(&f.app, &path, Auth::None, body).await.0, StatusCode::UNAUTHORIZED, "POST {path}");
    }
    assert_eq!(post(&f.app, "/api/logout", Auth::None, json!({})).await.0, StatusCode::UNAUTHORIZED);
    unchanged(&f).await;
}

#[tokio::test]
async fn wrong_tokens_and_sessions_are_401() {
    let f = fixture().await;
    let (path, body) = changes(&f.key).remove(0);
    for auth in [
        Auth::Bearer("admin-token"),
        Auth::Bearer(""),
        Auth::Cookie("0123", Some("x")),
        Auth::Cookie(ADMIN, Some(ADMIN)),
    ] {
        assert_eq!(post(&f.app, &path, auth, body.clone()).await.0, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(get(&f.app, "/api/apps", auth).await.0, StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    // A bad Authorization header is not rescued by a good cookie.
    let (id, csrf) = login(&f.app, ADMIN, "").await;
    let mut req = request(axum::http::Method::POST, &path, Auth::Cookie(&id, Some(&csrf)), Some(body));
    req.headers_mut().insert(axum::http::header::AUTHORIZATION, "Basic YWRtaW4=".parse().unwrap());
    assert_eq!(send(&f.app, req).await.0, StatusCode::UNAUTHORIZED);
    unchanged(&f).await;
}

#[tokio::test]
async fn the_viewer_reads_but_every_change_is_403() {
    let f = fixture().await;
    for path in reads(&f.key) {
        assert_eq!(get(&f.app, &path, Auth::Bearer(VIEWER)).await.0, StatusCode::OK, "GET {path}");
    }
    let (id, csrf) = login(&f.app, VIEWER, "vic").await;
    for (path, body) in changes(&f.key) {
        let (status, answer) = post(&f.app, &path, Auth::Bearer(VIEWER), body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "POST {path}");
        assert!(answer["error"].as_str().unwrap().contains("admin token"), "{answer}");
        let cookie = Auth::Cookie(&id, Some(&csrf));
        assert_eq!(post(&f.app, &path, cookie, body).await.0, StatusCode::FORBIDDEN, "POST {path}");
    }
    // Even a body that would be a 400 for the admin is a 403 for the viewer.
    let bad = format!("/api/nodes/{}/weight", enc(&f.key));
    assert_eq!(
        post(&f.app, &bad, Auth::Bearer(VIEWER), json!({ "weight": -1 })).await.0,
        StatusCode::FORBIDDEN
    );
    unchanged(&f).await;
}

#[tokio::test]
async fn the_admin_changes_nodes_and_each_change_is_audited() {
    let f = fixture().await;
    let node = enc(&f.key);
    let admin = Auth::Bearer(ADMIN);
    let (status, body) = post(&f.app, &format!("/api/nodes/{node}/disable"), admin, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["before"], json!({ "weight": 10, "valid": 1 }));
    assert_eq!(body["after"], json!({ "weight": 10, "valid": 0 }));
    assert_eq!((body["live"].clone(), body["action"].clone()), (json!(true), json!("disable")));
    assert_eq!(live(&f).await, (0, 10));

    let (status, body) =
        post(&f.app, &format!("/api/nodes/{node}/weight"), admin, json!({ "weight": 25 })).await;
    assert_eq!((status, body["after"]["weight"].clone()), (StatusCode::OK, json!(25)));
    assert_eq!(post(&f.app, &format!("/api/nodes/{node}/enable"), admin, json!({})).await.0, StatusCode::OK);
    assert_eq!(live(&f).await, (1, 25));
    assert_eq!(f.backends.settings.get(&f.key).await.unwrap().unwrap().weight, 25);

    let (status, audit) = get(&f.app, "/api/audit?limit=10", Auth::Bearer(VIEWER)).await;
    assert_eq!(status, StatusCode::OK);
    let seen: Vec<(&str, &str, &str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["target"], f.key.redis_field());
            let field = |name: &str| e[name].as_str().unwrap();
            (field("actor"), field("action"), field("before"), field("after"))
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("console-api:admin", "enable", "weight=25 valid=0", "weight=25 valid=1"),
            ("console-api:admin", "set_weight", "weight=10 valid=0", "weight=25 valid=0"),
            ("console-api:admin", "disable", "weight=10 valid=1", "weight=10 valid=0"),
        ]
    );
}
