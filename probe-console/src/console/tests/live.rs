//! The event stream and the page: `changed` after a node change, `tick` on a timer, the stream's
//! end at logout and shutdown; the page and assets are public and carry the security headers.

use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use futures_util::StreamExt;
use serde_json::json;

use super::*;

type Frames =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Send>>;

async fn open(app: &Router, path: &str, auth: Auth<'_>) -> Frames {
    let response = app.clone().oneshot(request(Method::GET, path, auth, None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    Box::pin(response.into_body().into_data_stream())
}

/// The next event's name and data (skipping keep-alive comments); `None` when the stream ended.
async fn next(frames: &mut Frames) -> Option<(String, Value)> {
    loop {
        let frame =
            tokio::time::timeout(Duration::from_secs(10), frames.next()).await.expect("no event in 10 s")?;
        let text = String::from_utf8(frame.unwrap().to_vec()).unwrap();
        let field =
            |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).map(str::to_owned);
        if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
            return Some((event, serde_json::from_str(&data).unwrap()));
        }
    }
}

#[tokio::test]
async fn events_tick_and_report_node_changes() {
    let f = fixture().await;
    let mut events = open(&f.app, &format!("/api/events?app={APP}"), Auth::Bearer(VIEWER)).await;
    let (event, data) = next(&mut events).await.unwrap();
    assert_eq!(event, "tick");
    assert!(data["at_ms"].as_u64().unwrap() > 0);
    let path = format!("/api/nodes/{}/disable", enc(&f.key));
    assert_eq!(post(&f.app, &path, Auth::Bearer(ADMIN), json!({})).await.0, StatusCode::OK);
    let (event, data) = next(&mut events).await.unwrap();
    assert_eq!((event.as_str(), data["app"].as_str()), ("changed", Some(APP)));
    assert!(data["generation"].as_u64().is_some(), "{data}");
    assert_eq!(get(&f.app, "/api/events?app=bad-app", Auth::Bearer(VIEWER)).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn streams_end_at_logout_and_at_shutdown() {
    let backends = Backends::embedded(Env::Dev, &Embedded::new());
    let state = ConsoleState::new(&options(), backends).unwrap();
    let app = router(state.clone());
    let (id, csrf) = login(&app, ADMIN, "").await;
    let mut by_cookie = open(&app, "/api/events", Auth::Cookie(&id, None)).await;
    assert_eq!(next(&mut by_cookie).await.unwrap().0, "tick");
    assert_eq!(post(&app, "/api/logout", Auth::Cookie(&id, Some(&csrf)), json!({})).await.0, StatusCode::OK);
    assert_eq!(next(&mut by_cookie).await, None, "the stream outlived the session");

    let mut by_token = open(&app, "/api/events", Auth::Bearer(VIEWER)).await;
    assert_eq!(next(&mut by_token).await.unwrap().0, "tick");
    state.stop_streams();
    assert_eq!(next(&mut by_token).await, None, "the stream outlived the console");
}

#[tokio::test]
async fn the_page_and_its_assets_are_public_with_security_headers() {
    let f = fixture().await;
    for (path, kind, needle) in [
        ("/", "text/html", "id=\"nodes-table\""),
        ("/assets/console.js", "text/javascript", "X-CSRF-Token"),
        ("/assets/chart.js", "text/javascript", "getContext('2d')"),
        ("/assets/rules.js", "text/javascript", "window.ProbeRules"),
        ("/assets/limits.js", "text/javascript", "window.ProbeLimits"),
        ("/assets/callers.js", "text/javascript", "window.ProbeCallers"),
        ("/assets/console.css", "text/css", ".badge.off"),
        ("/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = f.app.clone().oneshot(request(Method::GET, path, Auth::None, None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind), "{path}");
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains(needle), "{path} lacks {needle}");
    }
    let (_, headers, _) = send(&f.app, request(Method::GET, "/api/apps", Auth::Bearer(VIEWER), None)).await;
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
}
