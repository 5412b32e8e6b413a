//! API errors: each is a status code and a JSON body `{"error": "..."}` that says what failed and
//! what to do about it.
//!
//! A rule or request limits refused for their problems are 422 with the located problems beside
//! the message ([`ApiError::refused`]); a stale compare-and-set write is 409, an unknown rule
//! revision or a service without nodes 404.
//!
//! A backend's own error text names database users, hosts and databases: admins see it (with the
//! setting that configures the backend), viewers get its [public form](crate::backend_health::public)
//! instead: which backend failed (ZooKeeper, Redis or MySQL), its address without credentials,
//! database or options, and its setting, then [`ASK_AN_ADMIN`] (the detail goes to the log).
//! [`ApiError::into_response`] marks such a response with [`BackendDetail`], and
//! [`authenticate`](super::auth::authenticate) replaces its body for viewers.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use probe_runtime::registry::layout::NameError;
use probe_runtime::registry::{BackendError, OperatorError};
use serde::de::DeserializeOwned;

use crate::backend_health::public::{full_text, public_text};

/// What a viewer reads after the public text of a backend failure.
pub const ASK_AN_ADMIN: &str = "try again, or ask an admin: the console's log and the admin's view say what \
     the backend answered";

/// An API failure: the status code and the message shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What failed and what to do.
    pub message: String,
    /// When `message` is a backend's own text, which viewers do not see: what they see instead.
    pub viewer_message: Option<String>,
    /// For a refused rule: its located problems, sent as `problems` beside `error`.
    pub problems: Option<serde_json::Value>,
}

/// Marks a response whose error text came from a backend, with the text viewers get instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendDetail(pub String);

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), viewer_message: None, problems: None }
    }

    /// An error whose `message` is a backend's own text; viewers see `public` (what failed, without
    /// the backend's words) and [`ASK_AN_ADMIN`].
    pub fn backend(status: StatusCode, message: impl Into<String>, public: &str) -> Self {
        ApiError { viewer_message: Some(format!("{public}; {ASK_AN_ADMIN}")), ..Self::new(status, message) }
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
        if let Some(viewer_message) = self.viewer_message {
            response.extensions_mut().insert(BackendDetail(viewer_message));
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
        ApiError::backend(status, full_text(&err), &public_text(&err))
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
                let public = public_operator_text(&other);
                ApiError::backend(StatusCode::INTERNAL_SERVER_ERROR, other.to_string(), &public)
            }
        }
    }
}

/// What a viewer reads of an operator action that stopped: the public text of the backend failure
/// that stopped it.
fn public_operator_text(err: &OperatorError) -> String {
    match err {
        OperatorError::PartlyApplied { target, changed, error } => format!(
            "the change of {target} stopped after {} of its nodes: {}",
            changed.len(),
            public_operator_text(error)
        ),
        OperatorError::Backend(backend) => public_text(backend),
        _ => "an operator action stopped".to_owned(),
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
    fn backend_failures_name_the_backend_for_every_role() {
        let down = BackendError::Unreachable {
            backend: "MySQL",
            addr: "mysql://probe_rw:***@db7.internal:3306/billing_prod".into(),
            detail: "list the apps: Access denied for user 'probe_rw'".into(),
        };
        let answer = ApiError::from(down.clone());
        assert!(
            answer.message.contains("Access denied") && answer.message.contains("PROBE_MYSQL"),
            "{}",
            answer.message
        );
        let viewer = answer.viewer_message.unwrap();
        assert_eq!(
            viewer,
            format!(
                "MySQL at mysql://db7.internal:3306 is unreachable; check that it runs and that \
                 PROBE_MYSQL (or `mysql` in the config file) names it; {ASK_AN_ADMIN}"
            )
        );
        let failed =
            BackendError::Failed { backend: "Redis", action: "read".into(), detail: "NOAUTH".into() };
        let answer = ApiError::from(failed);
        assert!(
            answer.message.ends_with("Redis is configured by PROBE_REDIS (or `redis` in the config file)")
        );
        assert!(answer.viewer_message.unwrap().starts_with("Redis failed; it is configured by PROBE_REDIS"));
        let partly = OperatorError::PartlyApplied {
            target: "shop/Order".into(),
            changed: vec!["a".into()],
            error: Box::new(OperatorError::Backend(BackendError::SessionEnded { backend: "ZooKeeper" })),
        };
        let answer = ApiError::from(partly);
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        let viewer = answer.viewer_message.unwrap();
        assert!(
            viewer.starts_with(
                "the change of shop/Order stopped after 1 of its nodes: the ZooKeeper session ended"
            ),
            "{viewer}"
        );
    }

    #[test]
    fn rule_errors_map_to_their_own_status_codes() {
        let conflict = BackendError::Conflict {
            what: "the rule of shop/Order changed meanwhile (now version 4)".into(),
            fix: "read it again and retry".into(),
        };
        let answer = ApiError::from(OperatorError::Backend(conflict.clone()));
        assert_eq!((answer.status, answer.viewer_message), (StatusCode::CONFLICT, None));
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
