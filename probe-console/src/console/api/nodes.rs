//! Nodes: the table of an app's nodes with live metrics and what the app's clients report (breaker
//! states per node, hedges and limited calls per service: [`client_faults`](crate::client_faults)),
//! a node's metrics history, and the operator actions (enable, disable, weight), each audited by
//! [`Operator`].

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use probe_runtime::registry::layout::{NodeKey, check_appkey};
use probe_runtime::registry::{NodeChange, NodeMetrics, Operator, OperatorError};
use serde::{Deserialize, Serialize};

use super::EnvQuery;
use super::view::{ChangeJson, NodeJson, UnusableJson};
use crate::client_faults::{ClientFaults, ServiceClients, now_ms};
use crate::console::auth::{Admin, Caller};
use crate::console::error::{ApiError, ApiResult, Body};
use crate::console::state::ConsoleState;

pub use crate::node_notes::MAX_WEIGHT;

/// Parses the `{node}` path segment: a Redis field `appkey|env|service|ip|port`.
pub fn parse_node(field: &str) -> ApiResult<NodeKey> {
    NodeKey::from_redis_field(field).map_err(|err| {
        ApiError::bad_request(format!(
            "bad node: {err}; a node is its Redis field `appkey|env|service|ip|port`, URL-encoded"
        ))
    })
}

/// `GET /api/apps/{appkey}/nodes` answer.
#[derive(Debug, Serialize)]
pub struct Nodes {
    /// The app.
    pub appkey: String,
    /// The env.
    pub env: String,
    /// Running nodes and nodes with stored settings, sorted by service and address.
    pub nodes: Vec<NodeJson>,
    /// Registry nodes probe cannot use, with the reason: they get no calls.
    pub unusable: Vec<UnusableJson>,
    /// Per service with current client reports: how many clients report, the backup requests
    /// they sent and the calls their own QPS limit refused, so far; sorted by service.
    pub clients: Vec<ServiceClients>,
}

/// `GET /api/apps/{appkey}/nodes?env=`: every node of the app with its settings, live data, latest
/// metrics and breaker states in the clients, and the app's clients per service.
pub async fn list(
    State(state): State<ConsoleState>,
    Path(appkey): Path<String>,
    query: Result<Query<EnvQuery>, QueryRejection>,
) -> ApiResult<Json<Nodes>> {
    check_appkey(&appkey)?;
    let Query(query) = query?;
    let backends = query.backends(&state)?;
    let env = backends.env;
    let views = Operator::new(backends.clone()).nodes(&appkey).await?;
    let keys: Vec<NodeKey> = views.iter().map(|v| v.key.clone()).collect();
    // Metrics are an extra: a metrics store that fails leaves the table without them.
    let metrics = match backends.metrics.latest(&keys).await {
        Ok(metrics) => metrics,
        Err(err) => {
            tracing::warn!(error = %err, "console: cannot read node metrics");
            vec![None; keys.len()]
        }
    };
    // So are the clients' reports.
    let reports = backends.metrics.client_reports(env).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "console: cannot read the client reports");
        Vec::new()
    });
    let faults = ClientFaults::new(&appkey, &reports, now_ms());
    let nodes = views
        .into_iter()
        .zip(metrics)
        .map(|(view, m)| {
            let breaker = faults.breaker(&view.key);
            NodeJson::new(view, m, breaker)
        })
        .collect();
    let watch = backends.registry.watch_app(env, &appkey).await?;
    let unusable = watch.borrow().unusable.iter().map(UnusableJson::from).collect();
    drop(watch);
    let clients = faults.services().cloned().collect();
    Ok(Json(Nodes { appkey, env: env.to_string(), nodes, unusable, clients }))
}

/// `GET /api/nodes/{node}/history` answer.
#[derive(Debug, Serialize)]
pub struct History {
    /// The node's Redis field.
    pub node: String,
    /// Recent windows, oldest first.
    pub windows: Vec<NodeMetrics>,
}

/// `GET /api/nodes/{node}/history`: the node's recent metrics windows, for the latency chart; 404
/// for a node nobody knows.
pub async fn history(
    State(state): State<ConsoleState>,
    Path(node): Path<String>,
) -> ApiResult<Json<History>> {
    let key = parse_node(&node)?;
    let backends = state.backends();
    let windows = backends.metrics.history(&key).await?;
    if windows.is_empty() {
        let view = Operator::new(backends.clone()).node(&key).await?;
        if view.settings.is_none() && view.live.is_none() {
            return Err(OperatorError::UnknownNode(key.to_string()).into());
        }
    }
    Ok(Json(History { node: key.redis_field(), windows }))
}

fn operator(state: &ConsoleState, caller: &Caller) -> Operator {
    Operator::new(state.backends().clone()).with_actor(caller.actor.as_str())
}

/// A node action's answer: the change, which was applied, and whether the audit log recorded it.
#[derive(Debug, Serialize)]
pub struct Changed {
    /// The change.
    #[serde(flatten)]
    pub change: ChangeJson,
    /// Always `true`: an action that changed nothing answers with an error instead.
    pub applied: bool,
    /// Why the audit log did not record the change, which stands (`probe db migrate` adds a
    /// missing audit table); left out when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_warning: Option<String>,
}

fn changed(caller: &Caller, action: &'static str, change: &NodeChange) -> Json<Changed> {
    tracing::info!(
        actor = %caller.actor,
        node = %change.key,
        action,
        before = format_args!("weight={} valid={}", change.before.weight, change.before.valid),
        after = format_args!("weight={} valid={}", change.after.weight, change.after.valid),
        audited = change.audit.is_ok(),
        "console: node changed"
    );
    Json(Changed {
        change: ChangeJson::new(action, change),
        applied: true,
        audit_warning: change.audit.as_ref().err().map(|err| format!("applied but not audited: {err}")),
    })
}

/// `POST /api/nodes/{node}/enable`: puts the node back into rotation.
pub async fn enable(
    Admin(caller): Admin,
    State(state): State<ConsoleState>,
    Path(node): Path<String>,
) -> ApiResult<Json<Changed>> {
    let key = parse_node(&node)?;
    let change = operator(&state, &caller).enable(&key).await?;
    Ok(changed(&caller, "enable", &change))
}

/// `POST /api/nodes/{node}/disable`: takes the node out of rotation.
pub async fn disable(
    Admin(caller): Admin,
    State(state): State<ConsoleState>,
    Path(node): Path<String>,
) -> ApiResult<Json<Changed>> {
    let key = parse_node(&node)?;
    let change = operator(&state, &caller).disable(&key).await?;
    Ok(changed(&caller, "disable", &change))
}

/// `POST /api/nodes/{node}/weight` body.
#[derive(Debug, Deserialize)]
pub struct Weight {
    /// The new weight (0 takes the node out of rotation).
    pub weight: u32,
}

/// `POST /api/nodes/{node}/weight {weight}`: sets the node's weight.
pub async fn weight(
    Admin(caller): Admin,
    State(state): State<ConsoleState>,
    Path(node): Path<String>,
    Body(body): Body<Weight>,
) -> ApiResult<Json<Changed>> {
    let key = parse_node(&node)?;
    if body.weight > MAX_WEIGHT {
        return Err(ApiError::bad_request(format!("weight must be between 0 and {MAX_WEIGHT}")));
    }
    let change = operator(&state, &caller).set_weight(&key, body.weight).await?;
    Ok(changed(&caller, "set_weight", &change))
}

#[cfg(test)]
mod tests {
    use probe_runtime::registry::layout::{Env, NodeData};
    use probe_runtime::registry::{AuditError, BackendError};
    use serde_json::json;

    use super::*;
    use crate::console::auth::Via;
    use crate::console::session::Role;

    #[test]
    fn a_change_the_audit_log_missed_is_answered_as_applied_with_the_warning() {
        let caller = Caller { role: Role::Admin, actor: "console-api:admin".into(), via: Via::Bearer };
        let key = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", 1).unwrap();
        let cause = BackendError::NotMigrated {
            backend: "MySQL",
            database: "design".into(),
            missing: "table probe_audit".into(),
            fix: "run `probe db migrate` to enable the audit log".into(),
        };
        let audit = Err(AuditError { action: "disable".into(), target: key.redis_field(), cause });
        let mut after = NodeData::new("10.0.0.1", 1);
        after.valid = false.into();
        let change = NodeChange { key, before: NodeData::new("10.0.0.1", 1), after, live: true, audit };
        let Json(answer) = changed(&caller, "disable", &change);
        let answer = serde_json::to_value(answer).unwrap();
        assert_eq!((answer["applied"].clone(), answer["after"]["valid"].clone()), (json!(true), json!(0)));
        assert_eq!(
            answer["audit_warning"],
            "applied but not audited: table probe_audit is missing in the MySQL database design; run \
             `probe db migrate` to enable the audit log"
        );

        let audited = NodeChange { audit: Ok(()), ..change };
        let answer = serde_json::to_value(changed(&caller, "disable", &audited).0).unwrap();
        assert!(answer.get("audit_warning").is_none(), "{answer}");
    }
}
