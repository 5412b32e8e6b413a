//! The JSON API under `/api`.
//!
//! | method and path                        | role   | what                                              |
//! |----------------------------------------|--------|---------------------------------------------------|
//! | `POST /api/login {token, user?}`       | none   | sets the session cookie, answers the CSRF token   |
//! | `POST /api/logout`                     | any    | ends the session                                  |
//! | `GET /api/whoami`                      | any    | role, audit name, CSRF token                      |
//! | `GET /api/health`                      | any    | whether ZooKeeper, Redis and MySQL answer ([`health`]) |
//! | `GET /api/apps`                        | any    | registered apps (MySQL `serviceapp`), whether each has a credential |
//! | `POST /api/apps {appkey, description, owner}` | admin | registers an app                          |
//! | `GET /api/services?env=`               | any    | appkeys in the registry, services, node counts    |
//! | `GET /api/apps/{appkey}/nodes?env=`    | any    | nodes with settings, live data and metrics        |
//! | `GET /api/nodes/{node}/history`        | any    | the node's recent metrics windows                 |
//! | `POST /api/nodes/{node}/enable`        | admin  | valid 1                                           |
//! | `POST /api/nodes/{node}/disable`       | admin  | valid 0                                           |
//! | `POST /api/nodes/{node}/weight {weight}` | admin | sets the weight                                  |
//! | `GET /api/rules/{appkey}/{service}`    | any    | rule in force, history, live nodes, clients' revisions |
//! | `POST /api/rules/{appkey}/{service}/validate {text}` | any | the document's problems, located      |
//! | `POST /api/rules/{appkey}/{service}/preview {text, tags, headers}` | any | each node's share now and under text |
//! | `POST /api/rules/{appkey}/{service}/apply {text, expected_version}` | admin | the next revision (422, 409) |
//! | `POST /api/rules/{appkey}/{service}/rollback {revision}` | admin | an earlier revision again (404)   |
//! | `GET /api/limits/{appkey}/{service}`   | any    | each node's request limits and refused calls      |
//! | `PUT /api/limits/{appkey}/{service}?node= {text}` | admin | sets the limits of a node or of every node (422, 404) |
//! | `DELETE /api/limits/{appkey}/{service}?node=` | admin | clears them                                |
//! | `GET /api/callers/{appkey}/{service}`  | any    | each node's caller policy, a refused one's problems |
//! | `PUT /api/callers/{appkey}/{service} {allow?, unauthenticated?}` | admin | sets the service's caller policy (422, 404) |
//! | `DELETE /api/callers/{appkey}/{service}` | admin | clears it                                       |
//! | `GET /api/audit?limit=`                | any    | the latest changes, newest first                  |
//! | `GET /api/events?app=&env=`            | any    | server-sent events: `changed`, `tick`             |
//!
//! `{node}` is the node's Redis field `appkey|env|service|ip|port`, URL-encoded. The rules, limits
//! and callers endpoints take `?env=` like the nodes table ([`rules`], [`limits`] and [`callers`]
//! say what they answer); `?node=IP:PORT` names one node of the service for the limits.

mod apps;
pub mod callers;
pub mod health;
pub mod limits;
mod nodes;
pub mod rules;
pub mod view;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use probe_runtime::registry::layout::Env;
use probe_runtime::registry::{AuditEntry, Backends};
use serde::Deserialize;

use super::auth;
use super::error::{ApiError, ApiResult};
use super::live;
use super::state::ConsoleState;

/// The `/api` routes (to nest under `/api`): login, and the rest behind
/// [`authenticate`](auth::authenticate).
pub fn routes(state: &ConsoleState) -> Router<ConsoleState> {
    let guarded = Router::new()
        .route("/logout", post(auth::logout))
        .route("/whoami", get(auth::whoami))
        .route("/health", get(health::show))
        .route("/apps", get(apps::list).post(apps::add))
        .route("/services", get(apps::services))
        .route("/apps/{appkey}/nodes", get(nodes::list))
        .route("/nodes/{node}/history", get(nodes::history))
        .route("/nodes/{node}/enable", post(nodes::enable))
        .route("/nodes/{node}/disable", post(nodes::disable))
        .route("/nodes/{node}/weight", post(nodes::weight))
        .route("/rules/{appkey}/{service}", get(rules::show))
        .route("/rules/{appkey}/{service}/validate", post(rules::validate))
        .route("/rules/{appkey}/{service}/preview", post(rules::preview))
        .route("/rules/{appkey}/{service}/apply", post(rules::apply))
        .route("/rules/{appkey}/{service}/rollback", post(rules::rollback))
        .route("/limits/{appkey}/{service}", get(limits::show).put(limits::set).delete(limits::clear))
        .route("/callers/{appkey}/{service}", get(callers::show).put(callers::set).delete(callers::clear))
        .route("/audit", get(audit))
        .route("/events", get(live::events))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    Router::new().route("/login", post(auth::login)).merge(guarded).fallback(unknown)
}

async fn unknown() -> ApiError {
    ApiError::not_found("no such API endpoint; the console's API is listed in the probe-console docs")
}

/// The `env` query parameter.
#[derive(Debug, Default, Deserialize)]
pub struct EnvQuery {
    /// `dev` or `prod`; the console's env when absent.
    pub env: Option<String>,
}

impl EnvQuery {
    /// The backends of the asked env (the console's own when none was asked).
    pub fn backends(&self, state: &ConsoleState) -> ApiResult<Backends> {
        let backends = state.backends().clone();
        match self.env.as_deref() {
            None | Some("") => Ok(backends),
            Some(env) => Ok(Backends { env: env.parse::<Env>()?, ..backends }),
        }
    }
}

/// `GET /api/audit` query.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// How many entries (1..=500, default 50).
    pub limit: Option<usize>,
}

/// `GET /api/audit?limit=`: the latest audit entries, newest first.
async fn audit(
    State(state): State<ConsoleState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    let entries = state.backends().audit.recent(limit).await?;
    Ok(Json(entries))
}
