//! Apps: the registered appkeys (MySQL) and what the registry holds for each (services, nodes).

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use futures_util::future::try_join_all;
use probe_runtime::registry::layout::check_appkey;
use probe_runtime::registry::{App, Operator};
use serde::{Deserialize, Serialize};

use super::EnvQuery;
use super::view::AppJson;
use crate::console::auth::Admin;
use crate::console::error::{ApiError, ApiResult, Body};
use crate::console::state::ConsoleState;

/// `GET /api/apps`: every registered app, sorted by appkey.
pub async fn list(State(state): State<ConsoleState>) -> ApiResult<Json<Vec<AppJson>>> {
    let apps = state.backends().apps.list().await?;
    Ok(Json(apps.into_iter().map(AppJson::from).collect()))
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
