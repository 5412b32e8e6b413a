//! The JSON shapes the API answers with, built from the backends' types.

use probe_runtime::registry::layout::{NodeData, NodeKey, UnusableNode, Weight};
use probe_runtime::registry::{App, NodeChange, NodeMetrics, NodeView};
use serde::Serialize;
use serde_json::Value;

use crate::client_faults::BreakerCounts;
use crate::{node_limits, node_notes};

/// A registered app.
#[derive(Debug, Serialize)]
pub struct AppJson {
    /// The appkey.
    pub appkey: String,
    /// Free text.
    pub description: String,
    /// Who owns it.
    pub owner: String,
}

impl From<App> for AppJson {
    fn from(app: App) -> Self {
        AppJson { appkey: app.appkey, description: app.description, owner: app.owner }
    }
}

/// A node as the nodes table shows it. `weight`, `valid`, `host` and `port` are what clients see:
/// the live registration when the node runs, else the stored settings.
#[derive(Debug, Serialize)]
pub struct NodeJson {
    /// The Redis field `appkey|env|service|ip|port`: the node's id in API paths (URL-encoded).
    pub node: String,
    /// The ZooKeeper child name `service_ip_port`.
    pub id: String,
    /// The Thrift service.
    pub service: String,
    /// The address in the node's name.
    pub ip: String,
    /// The port in the node's name.
    pub name_port: u16,
    /// The host clients dial (the node data's).
    pub host: String,
    /// The port clients dial (the node data's).
    pub port: u16,
    /// What an operator should look at: data that names another address than the name, a weight
    /// above the console's maximum ([`node_notes`]).
    pub notes: Vec<String>,
    /// The weight, as the node JSON writes it (an integer, a float such as `30.5`, or a boolean).
    pub weight: Weight,
    /// 1 on (`valid` is `1`, `true` or `1.0`: what Python's `== 1` accepts), 0 off.
    pub valid: u8,
    /// Whether clients route calls here (valid and weight > 0, and running).
    pub in_rotation: bool,
    /// Whether a live registration exists.
    pub running: bool,
    /// probe version of the provider.
    pub version: Option<String>,
    /// Start time, seconds since the Unix epoch.
    pub started_at: Option<u64>,
    /// Thrift protocol.
    pub protocol: Option<String>,
    /// Transport.
    pub transport: Option<String>,
    /// What the settings store (Redis) holds.
    pub settings: Option<NodeData>,
    /// What the registry (ZooKeeper) holds.
    pub live: Option<NodeData>,
    /// The request limits that count for the node: the live node's while it runs (what its
    /// provider applies), else the stored ones; `None` when it has none.
    pub limits: Option<Value>,
    /// `limits` on one line (`qps 1000 (burst 50), concurrency 64; echo: qps 200`), or `none`,
    /// with the stored limits after it when they differ from the live node's.
    pub limits_summary: String,
    /// Why the node's provider refused the limits in its data (it runs the ones before), from its
    /// latest metrics window: each problem on a line; `None` when it did not.
    pub limits_problem: Option<String>,
    /// Calls the node's limits refused in its latest metrics window; `None` without a window.
    pub refused: Option<u64>,
    /// Calls the node's caller policy refused in its latest metrics window; `None` without a
    /// window.
    pub refused_callers: Option<u64>,
    /// In how many of its service's current clients the node's circuit breaker is open or half-open.
    pub breaker: BreakerCounts,
    /// `breaker` on one line: `closed`, `open in 2 of 5 clients`, or `-` without client reports.
    pub breaker_summary: String,
    /// The latest metrics window (with its per-method breakdown and refusals by reason), when the
    /// node published one recently.
    pub metrics: Option<NodeMetrics>,
}

impl NodeJson {
    /// The row of `view` with its latest `metrics` and its `breaker` in the clients.
    pub fn new(view: NodeView, metrics: Option<NodeMetrics>, breaker: BreakerCounts) -> Self {
        let key = &view.key;
        let shown = node_notes::effective(&view);
        let (host, port) = node_notes::dialed(&view);
        NodeJson {
            node: key.redis_field(),
            id: key.zk_child(),
            service: key.service().to_owned(),
            ip: key.ip().to_owned(),
            name_port: key.port(),
            host: host.to_owned(),
            port,
            notes: node_notes::notes(&view),
            weight: shown.map_or(Weight::from(0), |d| d.weight),
            valid: shown.map_or(0, |d| u8::from(d.valid.is_on())),
            in_rotation: view.live.as_ref().is_some_and(NodeData::in_rotation),
            running: view.live.is_some(),
            version: view.live.as_ref().and_then(|d| d.version.clone()),
            started_at: view.live.as_ref().and_then(|d| d.started_at),
            protocol: view.live.as_ref().and_then(|d| d.protocol.clone()),
            transport: view.live.as_ref().and_then(|d| d.transport.clone()),
            limits: node_limits::of_node(&view).cloned(),
            limits_summary: node_limits::cell(&view),
            limits_problem: metrics.as_ref().and_then(|m| m.limits_problem.clone()),
            refused: metrics.as_ref().map(|m| m.refused),
            refused_callers: metrics.as_ref().map(|m| m.refused_callers),
            breaker,
            breaker_summary: breaker.summary(),
            metrics,
            settings: view.settings,
            live: view.live,
        }
    }
}

/// Weight and valid flag, before or after a change.
#[derive(Debug, Serialize)]
pub struct SettingJson {
    /// The weight, as written.
    pub weight: Weight,
    /// 1 on, 0 off.
    pub valid: u8,
}

/// A registry node probe cannot use: it gets no calls until its data is fixed.
#[derive(Debug, Serialize)]
pub struct UnusableJson {
    /// The ZooKeeper child name.
    pub child: String,
    /// The service, when the child's name says.
    pub service: Option<String>,
    /// The Redis field `appkey|env|service|ip|port`, when the child's name follows the layout.
    pub node: Option<String>,
    /// Why probe cannot use it (and what the Python client does with it).
    pub reason: String,
    /// A short name of the reason (`weight_not_number`, `not_json`, ...).
    pub reason_kind: &'static str,
    /// The node data as text, shortened.
    pub data: String,
}

impl From<&UnusableNode> for UnusableJson {
    fn from(node: &UnusableNode) -> Self {
        UnusableJson {
            child: node.child.clone(),
            service: node.service().map(str::to_owned),
            node: node.key.as_ref().map(NodeKey::redis_field),
            reason: node.problem.to_string(),
            reason_kind: node.problem.kind(),
            data: node.data.clone(),
        }
    }
}

/// The answer to a node change.
#[derive(Debug, Serialize)]
pub struct ChangeJson {
    /// The node's Redis field.
    pub node: String,
    /// `enable`, `disable` or `set_weight`.
    pub action: &'static str,
    /// Before the change.
    pub before: SettingJson,
    /// After the change.
    pub after: SettingJson,
    /// Whether a running node was updated (else the change applies when it registers again).
    pub live: bool,
}

impl ChangeJson {
    /// The answer for `change`.
    pub fn new(action: &'static str, change: &NodeChange) -> Self {
        let setting = |d: &NodeData| SettingJson { weight: d.weight, valid: u8::from(d.valid.is_on()) };
        ChangeJson {
            node: change.key.redis_field(),
            action,
            before: setting(&change.before),
            after: setting(&change.after),
            live: change.live,
        }
    }
}
