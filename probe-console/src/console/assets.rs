//! The front end, compiled into the binary: one HTML page, its script and its style sheet
//! (hand-written, no build step, no CDN), and the security headers every response carries.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::state::ConsoleState;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const CONSOLE_JS: &str = include_str!("../../assets/console.js");
const CHART_JS: &str = include_str!("../../assets/chart.js");
const RULES_JS: &str = include_str!("../../assets/rules.js");
const LIMITS_JS: &str = include_str!("../../assets/limits.js");
const CALLERS_JS: &str = include_str!("../../assets/callers.js");
const CONSOLE_CSS: &str = include_str!("../../assets/console.css");
const FAVICON_SVG: &str = include_str!("../../assets/favicon.svg");

/// The page may load only its own scripts, styles and API; nothing inline, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")];
    (headers, body).into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// The routes of the page and its assets (public: they hold no data).
pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/console.js", get(|| async { asset("text/javascript; charset=utf-8", CONSOLE_JS) }))
        .route("/assets/chart.js", get(|| async { asset("text/javascript; charset=utf-8", CHART_JS) }))
        .route("/assets/rules.js", get(|| async { asset("text/javascript; charset=utf-8", RULES_JS) }))
        .route("/assets/limits.js", get(|| async { asset("text/javascript; charset=utf-8", LIMITS_JS) }))
        .route("/assets/callers.js", get(|| async { asset("text/javascript; charset=utf-8", CALLERS_JS) }))
        .route("/assets/console.css", get(|| async { asset("text/css; charset=utf-8", CONSOLE_CSS) }))
        .route("/favicon.svg", get(|| async { asset("image/svg+xml", FAVICON_SVG) }))
}

/// Adds the security headers to a response that does not set them: CSP, no sniffing, no framing,
/// no referrer, and no caching of API answers.
pub async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let defaults: [(HeaderName, &'static str); 4] = [
        (CONTENT_SECURITY_POLICY, CSP),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
        (HeaderName::from_static("x-frame-options"), "DENY"),
        (REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in defaults {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}
