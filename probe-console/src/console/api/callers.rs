//! Caller policies ([`probe_runtime::security::callers`]) of a service's nodes: which apps may call
//! the service and what happens to calls that prove no appkey. `GET` shows each node's policy (the
//! live node's while it runs, else the stored one) and, for a node whose `callers` field holds a
//! document that is not a policy, its problems; `PUT` sets a policy on every node of the service,
//! `DELETE` clears it. Changes go through [`Operator::set_service_callers`]: stored, applied by the
//! live nodes' providers at once, and audited (`set_callers`) under the caller's name.
//!
//! The `PUT` body is the policy document itself, `{"allow": ["order_app"], "unauthenticated":
//! "count"}`; a refused one is 422 with its problems (each at a JSON pointer, and at a line and
//! column of the document laid out as the answer's `document`), and nothing is written.
//!
//! Credentials are never issued or shown here: `GET` only says which allowed apps have none (their
//! calls cannot prove their appkey), from the app store's record of what verifies them.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use probe_runtime::limits::LimitError;
use probe_runtime::registry::layout::{NodeData, check_appkey, check_service_name};
use probe_runtime::registry::{Backends, NodeChange, NodeView, Operator};
use probe_runtime::security::CallerPolicy;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EnvQuery;
use super::rules::{Problem, locate};
use crate::console::auth::{Admin, Caller};
use crate::console::error::{ApiError, ApiResult, Body};
use crate::console::state::ConsoleState;
use crate::node_notes::effective;

/// The longest policy document accepted, in bytes (one is a few hundred).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// What a node without a policy runs, as the view says it.
pub const NO_POLICY: &str = "none (the provider's configured policy, else any caller)";

/// The `{appkey}/{service}` of the callers routes.
#[derive(Debug, Deserialize)]
pub struct CallersOf {
    /// The app.
    pub appkey: String,
    /// The Thrift service.
    pub service: String,
}

fn open(
    state: &ConsoleState,
    of: &CallersOf,
    query: Result<Query<EnvQuery>, QueryRejection>,
) -> ApiResult<Backends> {
    check_appkey(&of.appkey)?;
    check_service_name(&of.service)?;
    let Query(query) = query?;
    query.backends(state)
}

/// A node's `callers` value as written: the typed field, or the raw one when it is not an object
/// (node data keeps such a value among its unknown fields).
fn callers_value(data: &NodeData) -> Option<&Value> {
    data.callers.as_ref().or_else(|| data.extra.get("callers"))
}

/// A policy document laid out on lines, as problems are located in it.
fn laid_out(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `value` on one line (its policy, or [`NO_POLICY`]) and its problems when it is no policy.
fn judged(value: Option<&Value>) -> (String, Vec<Problem>) {
    let Some(value) = value else { return (NO_POLICY.to_owned(), Vec::new()) };
    match CallerPolicy::from_json(value) {
        Ok(policy) => (policy.to_string(), Vec::new()),
        Err(problems) => {
            let located = locate(&laid_out(value), &problems);
            (
                format!(
                    "not a caller policy ({} problem(s)); its provider keeps the policy before",
                    located.len()
                ),
                located,
            )
        }
    }
}

/// One node of the service, as the callers view shows it.
#[derive(Debug, Serialize)]
pub struct CallersNodeJson {
    /// The Redis field `appkey|env|service|ip|port`.
    pub node: String,
    /// The ZooKeeper child name `service_ip_port`.
    pub id: String,
    /// `IP:PORT`.
    pub address: String,
    /// Whether it runs.
    pub running: bool,
    /// Its `callers` document as written (the live node's while it runs, else the stored one);
    /// `None` when it has none.
    pub callers: Option<Value>,
    /// `callers` on one line: `allow order_app, billing_app; unauthenticated count`, or
    /// [`NO_POLICY`].
    pub summary: String,
    /// The stored document's summary when it differs from the live node's (a change that has
    /// not reached the live node yet); left out otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<String>,
    /// Why `callers` is no caller policy (its provider refuses it and keeps the policy before),
    /// located in the document laid out on lines; empty when it is one.
    pub problems: Vec<Problem>,
}

impl CallersNodeJson {
    fn of(view: &NodeView) -> Self {
        let value = effective(view).and_then(callers_value);
        let (summary, problems) = judged(value);
        let stored = match (&view.live, &view.settings) {
            (Some(live), Some(stored)) if callers_value(live) != callers_value(stored) => {
                Some(judged(callers_value(stored)).0)
            }
            _ => None,
        };
        CallersNodeJson {
            node: view.key.redis_field(),
            id: view.key.zk_child(),
            address: format!("{}:{}", view.key.ip(), view.key.port()),
            running: view.live.is_some(),
            callers: value.cloned(),
            summary,
            stored,
            problems,
        }
    }
}

/// `GET /api/callers/{appkey}/{service}` answer.
#[derive(Debug, Serialize)]
pub struct CallersView {
    /// The env.
    pub env: String,
    /// The app.
    pub appkey: String,
    /// The service.
    pub service: String,
    /// Its nodes, running or stored, sorted by address.
    pub nodes: Vec<CallersNodeJson>,
    /// The apps the nodes' policies allow that have no credential: their calls cannot prove their
    /// appkey, so they count as callers that prove none (`unauthenticated`); issue one with `probe
    /// apps credential rotate APPKEY`. Empty when the app store could not say (see
    /// `credentials_problem`).
    pub without_credential: Vec<String>,
    /// Why the app store could not say which apps have a credential; left out when it could.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_problem: Option<String>,
}

/// `GET /api/callers/{appkey}/{service}?env=`: each node's caller policy, and the allowed apps
/// without a credential.
pub async fn show(
    caller: Caller,
    State(state): State<ConsoleState>,
    Path(of): Path<CallersOf>,
    query: Result<Query<EnvQuery>, QueryRejection>,
) -> ApiResult<Json<CallersView>> {
    let backends = open(&state, &of, query)?;
    let views: Vec<NodeView> = Operator::new(backends.clone())
        .nodes(&of.appkey)
        .await?
        .into_iter()
        .filter(|v| v.key.service() == of.service)
        .collect();
    let nodes: Vec<CallersNodeJson> = views.iter().map(CallersNodeJson::of).collect();
    let allowed: BTreeSet<String> = nodes
        .iter()
        .filter_map(|n| n.callers.as_ref().and_then(|v| CallerPolicy::from_json(v).ok()))
        .flat_map(|p| p.allow.unwrap_or_default())
        .collect();
    let (without_credential, credentials_problem) = if allowed.is_empty() {
        (Vec::new(), None)
    } else {
        // Credentials are an extra: a store that cannot say leaves the view without them.
        match backends.apps.credentials().await {
            Ok(issued) => {
                let issued: BTreeSet<String> = issued.into_iter().map(|c| c.appkey).collect();
                (allowed.difference(&issued).cloned().collect(), None)
            }
            Err(err) => (Vec::new(), Some(super::apps::store_problem(&caller, &err))),
        }
    };
    Ok(Json(CallersView {
        env: backends.env.to_string(),
        appkey: of.appkey,
        service: of.service,
        nodes,
        without_credential,
        credentials_problem,
    }))
}

/// One node's change.
#[derive(Debug, Serialize)]
pub struct CallersChangeJson {
    /// The Redis field `appkey|env|service|ip|port`.
    pub node: String,
    /// The policy before (`None`: none).
    pub before: Option<Value>,
    /// The policy after (`None`: none; its provider's configured one applies).
    pub after: Option<Value>,
    /// Whether a running node was updated (its provider applies it now); else it applies when
    /// the node registers again.
    pub live: bool,
}

/// `PUT` and `DELETE` answer: what was written on each node.
#[derive(Debug, Serialize)]
pub struct CallersChanged {
    /// `appkey/service`.
    pub target: String,
    /// The policy now, as stored (`None`: cleared).
    pub callers: Option<Value>,
    /// `callers` on one line, or [`NO_POLICY`].
    pub summary: String,
    /// Each node's change.
    pub changes: Vec<CallersChangeJson>,
    /// Always `true`: a change that was refused answers with an error instead.
    pub applied: bool,
    /// Why the audit log did not record some change, which stands; left out when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_warning: Option<String>,
}

async fn write(
    caller: &Caller,
    backends: Backends,
    of: &CallersOf,
    policy: Option<&CallerPolicy>,
) -> ApiResult<Json<CallersChanged>> {
    let op = Operator::new(backends).with_actor(caller.actor.as_str());
    let changes: Vec<NodeChange> = op.set_service_callers(&of.appkey, &of.service, policy).await?;
    let target = format!("{}/{}", of.appkey, of.service);
    let summary = policy.map_or_else(|| NO_POLICY.to_owned(), ToString::to_string);
    let missed: Vec<_> = changes.iter().filter_map(|c| c.audit.as_ref().err()).collect();
    tracing::info!(
        actor = %caller.actor,
        target = %target,
        callers = %summary,
        nodes = changes.len(),
        audited = missed.is_empty(),
        "console: caller policy changed"
    );
    Ok(Json(CallersChanged {
        target,
        callers: policy.map(CallerPolicy::to_json),
        summary,
        changes: changes
            .iter()
            .map(|c| CallersChangeJson {
                node: c.key.redis_field(),
                before: c.before.callers.clone(),
                after: c.after.callers.clone(),
                live: c.live,
            })
            .collect(),
        applied: true,
        audit_warning: missed
            .first()
            .map(|err| format!("applied on {} node(s) but not audited: {err}", missed.len())),
    }))
}

/// The 422 of a document refused for `problems`.
fn refused(of: &CallersOf, document: &Value, problems: &[LimitError]) -> ApiError {
    let located: Vec<Problem> = locate(&laid_out(document), problems);
    let message = format!(
        "{} problem(s) in the caller policy for {}/{}; nothing was changed",
        located.len(),
        of.appkey,
        of.service
    );
    ApiError::refused(message, serde_json::to_value(located).unwrap_or_default())
}

/// `PUT /api/callers/{appkey}/{service}?env= {allow?, unauthenticated?}`: sets the caller policy
/// of every node of the service (audited `set_callers`); 422 with the problems of a refused
/// document, 404 for a service without nodes.
pub async fn set(
    Admin(caller): Admin,
    State(state): State<ConsoleState>,
    Path(of): Path<CallersOf>,
    query: Result<Query<EnvQuery>, QueryRejection>,
    Body(document): Body<Value>,
) -> ApiResult<Json<CallersChanged>> {
    let backends = open(&state, &of, query)?;
    let size = document.to_string().len();
    if size > MAX_POLICY_BYTES {
        return Err(ApiError::bad_request(format!(
            "the caller policy is {size} bytes; at most {MAX_POLICY_BYTES} are accepted"
        )));
    }
    let policy = CallerPolicy::from_json(&document).map_err(|problems| refused(&of, &document, &problems))?;
    write(&caller, backends, &of, Some(&policy)).await
}

/// `DELETE /api/callers/{appkey}/{service}?env=`: removes the caller policy of every node of the
/// service (audited `set_callers`): their providers' configured policies apply.
pub async fn clear(
    Admin(caller): Admin,
    State(state): State<ConsoleState>,
    Path(of): Path<CallersOf>,
    query: Result<Query<EnvQuery>, QueryRejection>,
) -> ApiResult<Json<CallersChanged>> {
    let backends = open(&state, &of, query)?;
    write(&caller, backends, &of, None).await
}
