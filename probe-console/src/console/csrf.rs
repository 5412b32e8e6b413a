//! Cross-site request forgery protection for requests authenticated by the session cookie.
//!
//! A browser attaches the cookie to any request to the console, including one a hostile page
//! makes; so a state-changing request (any method but GET, HEAD and OPTIONS) authenticated by the
//! cookie must also carry the session's CSRF token in the `X-CSRF-Token` header. A hostile page
//! cannot read the token (it comes in a JSON body of the same origin) nor set a custom header on a
//! cross-origin request without a CORS preflight, which the console never grants. The cookie is
//! also SameSite=Strict, so modern browsers do not send it cross-site at all.
//!
//! Requests with `Authorization: Bearer` need no CSRF token: a browser never adds that header by
//! itself. Login needs none either: it takes a token in a JSON body (a content type a cross-site
//! form cannot send without a preflight) and grants nothing an attacker does not already hold.

use axum::http::{HeaderMap, Method};

use super::error::ApiError;
use super::session::same;

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Whether `method` only reads (needs no CSRF token).
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Checks that `headers` carry `expected` in `X-CSRF-Token`, in constant time; 403 otherwise.
pub fn check(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match sent {
        Some(sent) if same(sent, expected) => Ok(()),
        Some(_) => Err(ApiError::forbidden(
            "the X-CSRF-Token header does not match this session; reload the console page and try again",
        )),
        None => Err(ApiError::forbidden(
            "missing X-CSRF-Token header: requests that change something and use the session cookie \
             must send the token that login (or GET /api/whoami) returned",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};

    #[test]
    fn only_reads_are_safe() {
        assert!(is_safe(&Method::GET) && is_safe(&Method::HEAD) && is_safe(&Method::OPTIONS));
        assert!(!is_safe(&Method::POST) && !is_safe(&Method::PUT) && !is_safe(&Method::DELETE));
    }

    #[test]
    fn token_must_match() {
        let mut headers = HeaderMap::new();
        let missing = check(&headers, "abc").unwrap_err();
        assert_eq!(missing.status, StatusCode::FORBIDDEN);
        assert!(missing.message.contains("missing"), "{}", missing.message);
        headers.insert(CSRF_HEADER, HeaderValue::from_static("abd"));
        assert!(check(&headers, "abc").unwrap_err().message.contains("does not match"));
        headers.insert(CSRF_HEADER, HeaderValue::from_static("abc"));
        assert!(check(&headers, "abc").is_ok());
    }
}
