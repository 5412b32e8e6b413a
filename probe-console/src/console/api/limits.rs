//! Request limits ([`probe_runtime::limits`]) of a service's nodes: what each node has, what its
//! limits refused and why its provider refused them (if it did), from its latest metrics window;
//! setting them on one node (`?node=IP:PORT`) or on every node of the service, and clearing them.
//! Changes go through [`Operator::set_limits`] and [`Operator::set_service_limits`]: checked
//! (against the methods the running nodes declare), stored, applied by the live nodes' providers
//! and audited (`set_limits`) under the caller's name.
//!
//! A document is sent as `{"text": "..."}` (what an editor holds: problems come back at a line and
//! column) or as `{"limits": {...}}`; a refused one is 422 with the located problems, and nothing
//! is written.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use probe_runtime::limits::{LimitError, RequestLimits};
use probe_runtime::registry::layout::{NodeKey, check_appkey, check_service_name};
use probe_runtime::registry::{Backends, NodeChange, Operator, OperatorError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EnvQuery;
use super::rules::{Problem, locate};
use crate::cli::args::parse_address;
use crate::console::auth::{Admin, Caller};
use crate::console::error::{ApiError, ApiResult, Body};
use crate::console::state::ConsoleState;
use crate::node_limits::{self, shown};

/// The longest limits document accepted, in bytes (one is a few hundred).
pub const MAX_LIMITS_TEXT: usize = 64 * 1024;

/// The `{appkey}/{service}` of the limits routes.
#[derive(Debug, Deserialize)]
pub struct LimitsOf {
    /// The app.
    pub appkey: String,
    /// The Thrift service.
    pub service: String,
}

/// The query of the limits routes.
#[derive(Debug, Default, Deserialize)]
pub struct LimitsQuery {
    /// `dev` or `prod`; the console's env when absent.
    pub env: Option<String>,
    /// `IP:PORT`: only the service's node at this address (every node of the service when absent).
    pub node: Option<String>,
}

/// What the routes act on: the backends of the asked env, and the node asked for, if any.
struct Target {
    backends: Backends,
    key: Option<NodeKey>,
    /// `appkey/service`, or `appkey/service_ip_port`.
    name: String,
}

fn open(
    state: &ConsoleState,
    of: &LimitsOf,
    query: Result<Query<LimitsQuery>, QueryRejection>,
) -> ApiResult<Target> {
    check_appkey(&of.appkey)?;
    check_service_name(&of.service)?;
    let Query(query) = query?;
    let backends = EnvQuery { env: query.env }.backends(state)?;
    let key = match query.node.as_deref().filter(|n| !n.is_empty()) {
        None => None,
        Some(node) => {
            let address = parse_address(node).map_err(ApiError::bad_request)?;
            let key = NodeKey::new(backends.env, &of.appkey, &of.service, &address.ip, address.port)
                .map_err(|err| ApiError::bad_request(format!("bad node {node:?}: {err}")))?;
            Some(key)
        }
    };
    let name = match &key {
        Some(key) => format!("{}/{}", of.appkey, key.zk_child()),
        None => format!("{}/{}", of.appkey, of.service),
    };
    Ok(Target { backends, key, name })
}

/// One node of the service, as the limits view shows it.
#[derive(Debug, Serialize)]
pub struct LimitsNodeJson {
    /// The Redis field `appkey|env|service|ip|port`.
    pub node: String,
    /// The ZooKeeper child name `service_ip_port`.
    pub id: String,
    /// `IP:PORT`, what `?node=` takes.
    pub address: String,
    /// Whether it runs.
    pub running: bool,
    /// Its limits (the live node's while it runs, else the stored ones).
    pub limits: Option<Value>,
    /// `limits` on one line, or `none`, with the stored ones when they differ.
    pub summary: String,
    /// The methods it declares (running nodes only).
    pub methods: Vec<String>,
    /// Calls its limits refused in its latest metrics window; `None` without a window.
    pub refused: Option<u64>,
    /// Why its provider refused the limits in its data (it runs the ones before), from its latest
    /// metrics window; `None` when it did not.
    pub limits_problem: Option<String>,
}

/// `GET /api/limits/{appkey}/{service}` answer.
#[derive(Debug, Serialize)]
pub struct LimitsView {
    /// The env.
    pub env: String,
    /// The app.
    pub appkey: String,
    /// The service.
    pub service: String,
    /// The methods its running nodes declare, sorted: what `methods` of a document may name.
    pub methods: Vec<String>,
    /// Its nodes, running or stored, sorted by address.
    pub nodes: Vec<LimitsNodeJson>,
}

/// `GET /api/limits/{appkey}/{service}?env=`: each node's limits and refused calls, and the
/// service's methods.
pub async fn show(
    State(state): State<ConsoleState>,
    Path(of): Path<LimitsOf>,
    query: Result<Query<LimitsQuery>, QueryRejection>,
) -> ApiResult<Json<LimitsView>> {
    let target = open(&state, &of, query)?;
    let backends = &target.backends;
    let views: Vec<_> = Operator::new(backends.clone())
        .nodes(&of.appkey)
        .await?
        .into_iter()
        .filter(|v| v.key.service() == of.service && target.key.as_ref().is_none_or(|k| *k == v.key))
        .collect();
    let keys: Vec<NodeKey> = views.iter().map(|v| v.key.clone()).collect();
    // Metrics are an extra: a metrics store that fails leaves the view without them.
    let metrics = backends.metrics.latest(&keys).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "console: cannot read node metrics");
        vec![None; keys.len()]
    });
    let mut methods: Vec<String> =
        views.iter().filter_map(|v| v.live.as_ref()).flat_map(|d| d.methods.iter().cloned()).collect();
    methods.sort_unstable();
    methods.dedup();
    let nodes = views
        .iter()
        .zip(metrics)
        .map(|(view, metrics)| LimitsNodeJson {
            node: view.key.redis_field(),
            id: view.key.zk_child(),
            address: format!("{}:{}", view.key.ip(), view.key.port()),
            running: view.live.is_some(),
            limits: node_limits::of_node(view).cloned(),
            summary: node_limits::cell(view),
            methods: view.live.as_ref().map(|d| d.methods.clone()).unwrap_or_default(),
            refused: metrics.as_ref().map(|m| m.refused),
            limits_problem: metrics.and_then(|m| m.limits_problem),
        })
        .collect();
    Ok(Json(LimitsView {
        env: backends.env.to_string(),
        appkey: of.appkey,
        service: of.service,
        methods,
        nodes,
    }))
}

/// `PUT` body: the document, as text or as JSON (one of them).
#[derive(Debug, Deserialize)]
pub struct Document {
    /// The limits document as text, as an editor holds it.
    #[serde(default)]
    pub text: Option<String>,
    /// The limits document as JSON.
    #[serde(default)]
    pub limits: Option<Value>,
}

impl Document {
    /// The document's text: `text`, or `limits` laid out on lines (so problems have a line).
    fn text(self) -> ApiResult<String> {
        let text = match (self.text, self.limits) {
            (Some(text), None) => text,
            (None, Some(limits)) => serde_json::to_string_pretty(&limits).unwrap_or_default(),
            _ => {
                return Err(ApiError::bad_request(
                    "send the limits as {\"text\": \"<JSON document>\"} or as {\"limits\": {...}}, one of them",
                ));
            }
        };
        if text.len() > MAX_LIMITS_TEXT {
            return Err(ApiError::bad_request(format!(
                "the limits document is {} bytes; at most {MAX_LIMITS_TEXT} are accepted",
                text.len()
            )));
        }
        Ok(text)
    }
}

/// One node's change.
#[derive(Debug, Serialize)]
pub struct LimitChangeJson {
    /// The Redis field `appkey|env|service|ip|port`.
    pub node: String,
    /// The limits before (`None`: none).
    pub before: Option<Value>,
    /// The limits after (`None`: none; its provider's configured ones apply).
    pub after: Option<Value>,
    /// Whether a running node was updated (its provider applies them now); else they apply when
    /// it registers again.
    pub live: bool,
}

/// `PUT` and `DELETE` answer: what was written on each node.
#[derive(Debug, Serialize)]
pub struct LimitsChanged {
    /// The service, or the node: `appkey/service`, `appkey/service_ip_port`.
    pub target: String,
    /// The limits now (`None`: cleared).
    pub limits: Option<Value>,
    /// `limits` on one line, or `none`.
    pub summary: String,
    /// Each node's change.
    pub changes: Vec<LimitChangeJson>,
    /// Always `true`: a change that was refused answers with an error instead.
    pub applied: bool,
    /// Why the audit log did not record some change, which stands; left out when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_warning: Option<String>,
}

fn changed(caller: &Caller, target: &Target, changes: &[NodeChange]) -> Json<LimitsChanged> {
    let limits = changes.first().and_then(|c| c.after.limits.clone());
    let missed = changes.iter().filter_map(|c| c.audit.as_ref().err()).collect::<Vec<_>>();
    tracing::info!(
        actor = %caller.actor,
        target = %target.name,
        limits = %shown(limits.as_ref()),
        nodes = changes.len(),
        audited = missed.is_empty(),
        "console: limits changed"
    );
    Json(LimitsChanged {
        target: target.name.clone(),
        summary: shown(limits.as_ref()),
        limits,
        changes: changes
            .iter()
            .map(|c| LimitChangeJson {
                node: c.key.redis_field(),
                before: c.before.limits.clone(),
                after: c.after.limits.clone(),
                live: c.live,
            })
            .collect(),
        applied: true,
        audit_warning: missed
            .first()
            .map(|err| format!("applied on {} node(s) but not audited: {err}", missed.len())),
    })
}

/// The 422 of a document refused for `problems`, located in `text`.
fn refused(target: &Target, text: &str, problems: &[LimitError]) -> ApiError {
    let located: Vec<Problem> = locate(text, problems);
    let message =
        format!("{} problem(s) in the limits for {}; nothing was changed", located.len(), target.name);
    ApiError::refused(message, serde_json::to_value(located).unwrap_or_default())
}

async fn write(
    caller: &Caller,
    target: &Target,
    of: &LimitsOf,
    limits: Option<&RequestLimits>,
) -> Result<Vec<NodeChange>, OperatorError> {
    let op = Operator::new(target.backends.clone()).with_actor(caller.actor.as_str());
    match &target.key {
        Some(key) => Ok(vec![op.set_limits(key, limits).await?]),
        None => op.set_service_limits(&of.appkey, &of.service, limits).await,
    }
}

/// `PUT /api/limits/{appkey}/{service}?env=&node=IP:PORT {text | limits}`: sets the limits of the
/// node, or of every node of the service (audited `set_limits`); 422 with the located problems of a
/// refused document (unknown methods included), 404 for a node or service nobody knows.
pub async fn set(
    Admin(caller): Admin,
    State(state): State<ConsoleState>,
    Path(of): Path<LimitsOf>,
    query: Result<Query<LimitsQuery>, QueryRejection>,
    Body(document): Body<Document>,
) -> ApiResult<Json<LimitsChanged>> {
    let target = open(&state, &of, query)?;
    let text = document.text()?;
    let limits = RequestLimits::parse(&text).map_err(|problems| refused(&target, &text, &problems))?;
    match write(&caller, &target, &of, Some(&limits)).await {
        Ok(changes) => Ok(changed(&caller, &target, &changes)),
        Err(OperatorError::LimitsRefused { problems, .. }) => Err(refused(&target, &text, &problems)),
        Err(err) => Err(err.into()),
    }
}

/// `DELETE /api/limits/{appkey}/{service}?env=&node=IP:PORT`: removes the limits of the node, or of
/// every node of the service (audited `set_limits`): their providers' configured limits apply.
pub async fn clear(
    Admin(caller): Admin,
    State(state): State<ConsoleState>,
    Path(of): Path<LimitsOf>,
    query: Result<Query<LimitsQuery>, QueryRejection>,
) -> ApiResult<Json<LimitsChanged>> {
    let target = open(&state, &of, query)?;
    let changes = write(&caller, &target, &of, None).await?;
    Ok(changed(&caller, &target, &changes))
}
