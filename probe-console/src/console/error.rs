//! API errors: each is a status code and a JSON body `{"error": "..."}` that says what failed and
//! what to do about it.
//!
//! A rule or request limits refused for their problems are 422 with the located problems beside
//! the message ([`ApiError::refused`]); a stale compare-and-set write is 409, an unknown rule
//! revision or a service without nodes 404.
//!
//! A backend's own error text names database users, hosts and databases: admins see it, viewers
//! get [`BACKEND_FAILED`] instead (the detail goes to the log). [`ApiError::into_response`] marks
//! such a response with [`BackendDetail`], and [`authenticate`](super::auth::authenticate)
//! replaces its body for viewers.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use probe_runtime::registry::layout::NameError;
use probe_runtime::registry::{BackendError, OperatorError};
use serde::de::DeserializeOwned;

/// What a viewer reads instead of a backend's error text.
pub const BACKEND_FAILED: &str = "a backend (ZooKeeper, Redis or MySQL) failed; try again, or ask an admin: the console's log and \
     the admin's view say what failed";

/// An API failure: the status code and the message shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What failed and what to do.
    pub message: String,
    /// Whether `message` is a backend's own text, which viewers do not see.
    pub backend_detail: bool,
    /// For a refused rule: its located problems, sent as `problems` beside `error`.
    pub problems: Option<serde_json::Value>,
}

/// Marks a response whose error text came from a backend: viewers get [`BACKEND_FAILED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendDetail;

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), backend_detail: false, problems: None }
    }

    /// An error whose `message` is a backend's own text (viewers see [`BACKEND_FAILED`]).
    pub fn backend(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { backend_detail: true, ..Self::new(status, message) }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: no valid token or session.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "not logged in: log in on the console page, or send `Authorization: Bearer <token>` with \
             the admin or viewer token that `probe console` printed",
        )
    }

    /// 403: authenticated, but not allowed to do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: someone changed the thing since the caller read it; nothing was written.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 422: a rule or limits refused for `problems` (a JSON list, each located); nothing was
    /// written.
    pub fn refused(message: impl Into<String>, problems: serde_json::Value) -> Self {
        ApiError { problems: Some(problems), ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, message) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.problems {
            None => serde_json::json!({ "error": self.message }),
            Some(problems) => serde_json::json!({ "error": self.message, "ok": false, "problems": problems }),
        };
        let body = Json(body);
        let mut response = (self.status, body).into_response();
        if self.backend_detail {
            response.extensions_mut().insert(BackendDetail);
        }
        response
    }
}

impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> Self {
        let status = match err {
            // Says what changed and what to do; no backend detail.
            BackendError::Conflict { .. } => return ApiError::conflict(err.to_string()),
            BackendError::BadData { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_GATEWAY,
        };
        tracing::warn!(error = %err, "console: backend failed");
        ApiError::backend(status, err.to_string())
    }
}

impl From<OperatorError> for ApiError {
    fn from(err: OperatorError) -> Self {
        match err {
            OperatorError::UnknownNode(_)
            | OperatorError::UnknownRevision { .. }
            | OperatorError::NoNodes { .. } => ApiError::not_found(err.to_string()),
            // Handlers that hold the document locate the problems themselves ([`ApiError::refused`]).
            OperatorError::RuleRefused { .. } | OperatorError::LimitsRefused { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, err.to_string())
            }
            OperatorError::Backend(backend) => backend.into(),
            other => {
                tracing::error!(error = %other, "console: operator action incomplete");
                ApiError::backend(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

impl From<NameError> for ApiError {
    fn from(err: NameError) -> Self {
        ApiError::bad_request(err.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = match rejection.status() {
            // A body over the limit is 413, a body that is not JSON 415; the rest is 400.
            status @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => status,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, format!("bad request body: {}; send a JSON object", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(format!("bad query string: {}", rejection.body_text()))
    }
}

/// A JSON request body whose rejections are [`ApiError`]s (JSON, not axum's plain text).
#[derive(Debug, Clone, Copy, Default)]
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
    }
}

/// Result of an API handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::registry::layout::check_appkey;

    #[test]
    fn errors_map_to_status_codes() {
        let unreachable = BackendError::Unreachable {
            backend: "Redis",
            addr: "127.0.0.1:1".into(),
            detail: "refused".into(),
        };
        assert_eq!(ApiError::from(unreachable.clone()).status, StatusCode::BAD_GATEWAY);
        assert_eq!(ApiError::from(OperatorError::Backend(unreachable)).status, StatusCode::BAD_GATEWAY);
        let unknown = OperatorError::UnknownNode("x".into());
        assert_eq!(ApiError::from(unknown).status, StatusCode::NOT_FOUND);
        let name = check_appkey("bad key").unwrap_err();
        assert_eq!(ApiError::from(name).status, StatusCode::BAD_REQUEST);
        assert_eq!(ApiError::unauthorized().status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn rule_errors_map_to_their_own_status_codes() {
        let conflict = BackendError::Conflict {
            what: "the rule of shop/Order changed meanwhile (now version 4)".into(),
            fix: "read it again and retry".into(),
        };
        let answer = ApiError::from(OperatorError::Backend(conflict.clone()));
        assert_eq!((answer.status, answer.backend_detail), (StatusCode::CONFLICT, false));
        assert!(answer.message.contains("changed meanwhile"), "{}", answer.message);
        assert_eq!(ApiError::from(conflict).status, StatusCode::CONFLICT);
        let unknown =
            OperatorError::UnknownRevision { target: "shop/Order".into(), revision: 9, known: vec![1, 2] };
        assert_eq!(ApiError::from(unknown).status, StatusCode::NOT_FOUND);
        let problems =
            vec![probe_runtime::rules::RuleError { at: "/versions".into(), message: "sum".into() }];
        let refused = OperatorError::RuleRefused { target: "shop/Order".into(), problems };
        assert_eq!(ApiError::from(refused).status, StatusCode::UNPROCESSABLE_ENTITY);
        let problems =
            vec![probe_runtime::limits::LimitError { at: "/qps".into(), message: "above 0".into() }];
        let refused = OperatorError::LimitsRefused { target: "shop/Order".into(), problems };
        assert_eq!(ApiError::from(refused).status, StatusCode::UNPROCESSABLE_ENTITY);
        let none = OperatorError::NoNodes { appkey: "shop".into(), service: "Order".into() };
        assert_eq!(ApiError::from(none).status, StatusCode::NOT_FOUND);
    }
}
