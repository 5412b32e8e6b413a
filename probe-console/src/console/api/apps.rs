//! Apps: the registered appkeys (MySQL) with whether each has a credential, and what the registry
//! holds for each (services, nodes).
//!
//! A credential's secret is never shown or issued here (it is shown once, by `probe apps add` or
//! `probe apps credential rotate`): the list says only when the current credential was issued and
//! whether the one before it is still valid, never a secret or what verifies it.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use futures_util::future::try_join_all;
use probe_runtime::registry::layout::check_appkey;
use probe_runtime::registry::{App, BackendError, Operator};
use probe_runtime::security::StoredCredential;
use serde::{Deserialize, Serialize};

use super::EnvQuery;
use super::view::AppJson;
use crate::backend_health::public::{full_text, public_text};
use crate::console::auth::{Admin, Caller};
use crate::console::error::{ASK_AN_ADMIN, ApiError, ApiResult, Body};
use crate::console::session::Role;
use crate::console::state::ConsoleState;

/// Whether an app has a credential, as the apps list shows it: never the secret, nor what
/// verifies it (digest ids, public keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialStatus {
    /// `issued`, `none`, or `unknown` (the app store could not say; `problem` says why).
    pub state: &'static str,
    /// When the current credential was issued, milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_at_ms: Option<u64>,
    /// Whether the credential before the last rotation is still valid (until `probe apps
    /// credential retire`).
    pub previous_valid: bool,
    /// Why the state is `unknown`; left out otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl CredentialStatus {
    fn of(stored: Option<&StoredCredential>) -> Self {
        CredentialStatus {
            state: if stored.is_some() { "issued" } else { "none" },
            issued_at_ms: stored.map(|c| c.issued_at_ms),
            previous_valid: stored
                .is_some_and(|c| c.previous_zk_digest.is_some() || c.previous_caller_key.is_some()),
            problem: None,
        }
    }

    fn unknown(problem: &str) -> Self {
        CredentialStatus {
            state: "unknown",
            issued_at_ms: None,
            previous_valid: false,
            problem: Some(problem.to_owned()),
        }
    }
}

/// A registered app with its credential's status, as `GET /api/apps` lists it.
#[derive(Debug, Serialize)]
pub struct ListedApp {
    /// The app.
    #[serde(flatten)]
    pub app: AppJson,
    /// Whether it has a credential.
    pub credential: CredentialStatus,
}

/// What `caller` reads of an app store that failed: admins its own words, viewers which backend
/// failed (the detail goes to the log).
pub fn store_problem(caller: &Caller, err: &BackendError) -> String {
    tracing::warn!(error = %err, "console: cannot read the app credentials");
    match caller.role {
        Role::Admin => full_text(err),
        Role::Viewer => format!("{}; {ASK_AN_ADMIN}", public_text(err)),
    }
}

/// `GET /api/apps`: every registered app, sorted by appkey, with its credential's status. An app
/// store that cannot read credentials (a MySQL database before `probe db migrate`) leaves each
/// app's status `unknown`, saying why.
pub async fn list(caller: Caller, State(state): State<ConsoleState>) -> ApiResult<Json<Vec<ListedApp>>> {
    let store = &state.backends().apps;
    let (apps, credentials) = tokio::join!(store.list(), store.credentials());
    let credentials = credentials.map_err(|err| store_problem(&caller, &err));
    let listed = apps?
        .into_iter()
        .map(|app| {
            let credential = match &credentials {
                Ok(all) => CredentialStatus::of(all.iter().find(|c| c.appkey == app.appkey)),
                Err(problem) => CredentialStatus::unknown(problem),
            };
            ListedApp { credential, app: AppJson::from(app) }
        })
        .collect();
    Ok(Json(listed))
}

/// `POST /api/apps` body.
#[derive(Debug, Deserialize)]
pub struct NewApp {
    /// The appkey (`^\w+$`, at most 128 characters).
    pub appkey: String,
    /// Free text (at most 512 characters).
    #[serde(default)]
    pub description: String,
    /// Who owns it (at most 128 characters).
    #[serde(default)]
    pub owner: String,
}

/// `POST /api/apps` answer: the app as given, and what the store or the audit log missed.
#[derive(Debug, Serialize)]
pub struct AddedApp {
    /// The app.
    #[serde(flatten)]
    pub app: AppJson,
    /// Fields given that the app store does not keep (the design's `serviceapp` has only
    /// `appkey`; `probe db migrate` adds the others); left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_stored: Vec<&'static str>,
    /// Why the audit log did not record the registration, which stands; left out when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_warning: Option<String>,
}

/// `POST /api/apps {appkey, description, owner}`: registers an app (201), 409 when it is already.
pub async fn add(
    Admin(caller): Admin,
    State(state): State<ConsoleState>,
    Body(app): Body<NewApp>,
) -> ApiResult<(StatusCode, Json<AddedApp>)> {
    check_appkey(&app.appkey)?;
    let too_long = |what: &str, max: usize| ApiError::bad_request(format!("{what} is longer than {max}"));
    if app.appkey.chars().count() > 128 {
        return Err(too_long("appkey", 128));
    }
    if app.description.chars().count() > 512 {
        return Err(too_long("description", 512));
    }
    if app.owner.chars().count() > 128 {
        return Err(too_long("owner", 128));
    }
    let app = App { appkey: app.appkey, description: app.description, owner: app.owner };
    let operator = Operator::new(state.backends().clone()).with_actor(caller.actor.as_str());
    let change = operator.add_app(&app).await?;
    if !change.changed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("app {} is registered already; nothing changed", app.appkey),
        ));
    }
    tracing::info!(actor = %caller.actor, appkey = %app.appkey, audited = change.audit.is_ok(), "console: app added");
    let audit_warning = change.audit.err().map(|err| format!("applied but not audited: {err}"));
    let added = AddedApp { app: AppJson::from(app), not_stored: change.not_stored, audit_warning };
    Ok((StatusCode::CREATED, Json(added)))
}

/// One service of an app, as `GET /api/services` counts it.
#[derive(Debug, Serialize)]
pub struct ServiceCount {
    /// The Thrift service.
    pub service: String,
    /// Registered (running) nodes.
    pub nodes: usize,
    /// Of those, how many clients route to.
    pub in_rotation: usize,
}

/// One appkey, as `GET /api/services` lists it.
#[derive(Debug, Serialize)]
pub struct AppServices {
    /// The appkey.
    pub appkey: String,
    /// Whether MySQL has the app registered.
    pub registered: bool,
    /// Running nodes over all services.
    pub nodes: usize,
    /// Its services, sorted by name.
    pub services: Vec<ServiceCount>,
}

/// `GET /api/services` answer.
#[derive(Debug, Serialize)]
pub struct Services {
    /// The env listed.
    pub env: String,
    /// Every appkey with a registry path in the env, and every registered app.
    pub apps: Vec<AppServices>,
}

/// `GET /api/services?env=`: appkeys in the registry of an env with their services and node
/// counts, plus registered apps with no nodes yet.
pub async fn services(
    State(state): State<ConsoleState>,
    query: Result<Query<EnvQuery>, QueryRejection>,
) -> ApiResult<Json<Services>> {
    let Query(query) = query?;
    let backends = query.backends(&state)?;
    let env = backends.env;
    let (in_registry, registered) = tokio::try_join!(backends.registry.apps(env), backends.apps.list())?;
    let registered: BTreeSet<String> = registered.into_iter().map(|a| a.appkey).collect();
    let appkeys: BTreeSet<String> = in_registry.into_iter().chain(registered.iter().cloned()).collect();
    let nodes = try_join_all(appkeys.iter().map(|appkey| backends.registry.nodes(env, appkey))).await?;
    let apps = appkeys
        .into_iter()
        .zip(nodes)
        .map(|(appkey, nodes)| {
            let mut services = BTreeMap::<String, ServiceCount>::new();
            for node in &nodes {
                let service = node.key.service().to_owned();
                let count = services.entry(service.clone()).or_insert(ServiceCount {
                    service,
                    nodes: 0,
                    in_rotation: 0,
                });
                count.nodes += 1;
                count.in_rotation += usize::from(node.data.in_rotation());
            }
            AppServices {
                registered: registered.contains(&appkey),
                appkey,
                nodes: nodes.len(),
                services: services.into_values().collect(),
            }
        })
        .collect();
    Ok(Json(Services { env: env.to_string(), apps }))
}
