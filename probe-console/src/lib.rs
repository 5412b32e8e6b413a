//! The `probe` operator tool: the command line ([`cli`]) and the web console ([`console`]) over
//! probe's registry, settings, app and audit backends.
//!
//! The console is an axum router; embedded backends make it testable in one process:
//!
//! ```
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use probe_console::console::{ConsoleOptions, ConsoleState, router};
//! use probe_runtime::registry::Backends;
//! use probe_runtime::registry::embedded::Embedded;
//! use probe_runtime::registry::layout::Env;
//! use tower::ServiceExt;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ConsoleOptions {
//!     bind: "127.0.0.1:8480".parse()?,
//!     admin_token: "admin-secret-0123456789abcdef".into(),
//!     viewer_token: "viewer-secret-0123456789abcdef".into(),
//!     tls: None,
//! };
//! let state = ConsoleState::new(&options, Backends::embedded(Env::Dev, &Embedded::new()))?;
//!
//! // Without a token the API answers 401; with the admin token it answers.
//! let anonymous = router(state.clone()).oneshot(Request::get("/api/apps").body(Body::empty())?).await?;
//! assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
//! let admin = Request::get("/api/apps").header("authorization", format!("Bearer {}", options.admin_token));
//! let response = router(state).oneshot(admin.body(Body::empty())?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

pub mod backend_health;
pub mod cli;
pub mod client_faults;
pub mod console;
pub mod located;
pub mod node_limits;
pub mod node_notes;
