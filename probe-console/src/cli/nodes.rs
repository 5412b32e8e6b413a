//! `probe nodes list APPKEY`: an app's nodes, running or only stored, with their settings, their
//! request limits and the live metrics their servers publish (calls the limits refused among
//! them). HOST and PORT are what clients dial (the node data's);
//! nodes whose data disagrees with their name, or whose weight is above the console's maximum, get
//! a note under the table ([`node_notes`](crate::node_notes)).

use anyhow::{Context as _, Result};
use probe_runtime::registry::layout::{NodeData, NodeKey, UnusableNode, check_appkey};
use probe_runtime::registry::{NodeMetrics, NodeView, Operator};
use serde_json::{Value, json};

use super::output::time::{now_secs, rfc3339, utc_ago};
use super::output::{Align, Report, Table, decimal, or_dash, yes_no};
use crate::node_limits;
use crate::node_notes::{dialed, effective, notes};

fn data_json(data: Option<&NodeData>) -> Value {
    data.map_or(Value::Null, |d| serde_json::to_value(d).unwrap_or(Value::Null))
}

fn node_json(view: &NodeView, metrics: Option<&NodeMetrics>) -> Value {
    let key = &view.key;
    let data = effective(view);
    let started_at = data.and_then(|d| d.started_at);
    json!({
        "node": key.redis_field(),
        "zk_path": key.zk_node_path(),
        "appkey": key.appkey(),
        "env": key.env().as_str(),
        "service": key.service(),
        "host": dialed(view).0,
        "port": dialed(view).1,
        "name_ip": key.ip(),
        "name_port": key.port(),
        "notes": notes(view),
        "weight": data.map(|d| d.weight),
        "valid": data.map(|d| &d.valid),
        "valid_on": data.map(|d| d.valid.is_on()),
        "in_rotation": view.live.as_ref().is_some_and(NodeData::in_rotation),
        "live": view.live.is_some(),
        "version": data.and_then(|d| d.version.clone()),
        "pid": data.and_then(|d| d.pid),
        "started_at": started_at,
        "started_at_utc": started_at.map(rfc3339),
        "settings": data_json(view.settings.as_ref()),
        "live_data": data_json(view.live.as_ref()),
        "limits": node_limits::of_node(view),
        "limits_summary": node_limits::shown(node_limits::of_node(view)),
        "refused": metrics.map(|m| m.refused),
        "metrics": metrics.map_or(Value::Null, |m| serde_json::to_value(m).unwrap_or(Value::Null)),
    })
}

/// `70`, or `70 (stored 10)` when the live node and its stored settings disagree.
fn weight_cell(view: &NodeView) -> String {
    match (&view.live, &view.settings) {
        (Some(live), Some(stored)) if live.weight != stored.weight => {
            format!("{} (stored {})", live.weight, stored.weight)
        }
        _ => effective(view).map_or_else(|| "-".to_owned(), |d| d.weight.to_string()),
    }
}

fn valid_cell(view: &NodeView) -> String {
    let text = |d: &NodeData| yes_no(d.valid.is_on()).to_owned();
    match (&view.live, &view.settings) {
        (Some(live), Some(stored)) if live.valid != stored.valid => {
            format!("{} (stored {})", text(live), text(stored))
        }
        _ => effective(view).map_or_else(|| "-".to_owned(), text),
    }
}

fn node_row(view: &NodeView, metrics: Option<&NodeMetrics>) -> Vec<String> {
    let data = effective(view);
    let (host, port) = dialed(view);
    vec![
        view.key.service().to_owned(),
        host.to_owned(),
        port.to_string(),
        weight_cell(view),
        valid_cell(view),
        yes_no(view.live.is_some()).to_owned(),
        or_dash(data.and_then(|d| d.version.as_deref())),
        data.and_then(|d| d.started_at).map_or_else(|| "-".to_owned(), utc_ago),
        decimal(metrics.map(|m| m.qps), ""),
        metrics.map_or_else(|| "-".to_owned(), |m| format!("{} ({:.1}%)", m.errors, m.error_rate * 100.0)),
        metrics.map_or_else(|| "-".to_owned(), node_limits::refused),
        decimal(metrics.map(|m| m.p99_ms), "ms"),
        match node_limits::of_node(view) {
            None if node_limits::stored_if_different(view).is_none() => "-".to_owned(),
            _ => node_limits::cell(view),
        },
    ]
}

/// The nodes of `appkey` in the operator's env.
pub async fn list(op: &Operator, appkey: &str) -> Result<Report> {
    check_appkey(appkey).context("cannot list the nodes")?;
    let env = op.backends().env;
    let views = op.nodes(appkey).await.with_context(|| format!("cannot list the nodes of {appkey}"))?;
    let keys: Vec<NodeKey> = views.iter().map(|v| v.key.clone()).collect();
    let metrics = op
        .backends()
        .metrics
        .latest(&keys)
        .await
        .with_context(|| format!("cannot read the metrics of {appkey}'s nodes"))?;
    let metric = |i: usize| metrics.get(i).and_then(Option::as_ref);
    let watch = op
        .backends()
        .registry
        .watch_app(env, appkey)
        .await
        .with_context(|| format!("cannot read the registry nodes of {appkey}"))?;
    let unusable = watch.borrow().unusable.clone();
    drop(watch);

    let json = json!({
        "env": env.as_str(),
        "appkey": appkey,
        "at": rfc3339(now_secs()),
        "nodes": views.iter().enumerate().map(|(i, v)| node_json(v, metric(i))).collect::<Vec<_>>(),
        "unusable": unusable.iter().map(unusable_json).collect::<Vec<_>>(),
    });
    let mut text = if views.is_empty() && unusable.is_empty() {
        format!(
            "{appkey} has no node in env {env}: none is running and none has stored settings; check the \
             appkey (`probe services list`) and the env (--env dev|prod)"
        )
    } else {
        let mut table = Table::new(&[
            ("SERVICE", Align::Left),
            ("HOST", Align::Left),
            ("PORT", Align::Right),
            ("WEIGHT", Align::Right),
            ("VALID", Align::Left),
            ("LIVE", Align::Left),
            ("VERSION", Align::Left),
            ("STARTED", Align::Left),
            ("QPS", Align::Right),
            ("ERRORS", Align::Right),
            ("REFUSED", Align::Right),
            ("P99", Align::Right),
            ("LIMITS", Align::Left),
        ]);
        for (i, view) in views.iter().enumerate() {
            table.row(node_row(view, metric(i)));
        }
        format!("{appkey} in env {env}\n{}", table.render())
    };
    let notes: Vec<String> = views
        .iter()
        .flat_map(|view| notes(view).into_iter().map(|note| format!("note: {}: {note}", view.key.zk_child())))
        .collect();
    if !notes.is_empty() {
        text.push_str(&format!("\n{}\n", notes.join("\n")));
    }
    if !unusable.is_empty() {
        text.push_str(&unusable_text(&unusable));
    }
    Ok(Report::new(json, text))
}

/// An unusable node for `--json`: its child name, service (when its name says), reason and data.
pub fn unusable_json(node: &UnusableNode) -> Value {
    json!({
        "child": node.child,
        "service": node.service(),
        "node": node.key.as_ref().map(NodeKey::redis_field),
        "reason": node.problem.to_string(),
        "reason_kind": node.problem.kind(),
        "data": node.data,
    })
}

/// The table of unusable nodes, after the others.
fn unusable_text(nodes: &[UnusableNode]) -> String {
    let mut table = Table::new(&[("NODE", Align::Left), ("REASON", Align::Left), ("DATA", Align::Left)]);
    for node in nodes {
        table.row(vec![node.child.clone(), node.problem.to_string(), node.data.clone()]);
    }
    format!(
        "\n{} node(s) probe cannot use (they get no calls; fix their data):\n{}",
        nodes.len(),
        table.render()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::registry::Backends;
    use probe_runtime::registry::embedded::Embedded;
    use probe_runtime::registry::layout::Env;
    use std::time::Duration;

    #[tokio::test]
    async fn live_and_stored_nodes_are_listed_with_metrics() {
        let embedded = Embedded::new();
        let backends = Backends::embedded(Env::Dev, &embedded);
        let running = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", 9001).unwrap();
        let stopped = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.2", 9002).unwrap();
        let mut live = NodeData::new("10.0.0.1", 9001);
        live.version = Some("0.1.0".into());
        live.started_at = Some(1_714_566_896);
        live.weight = 70.into();
        live.limits = Some(serde_json::json!({"qps": 50, "methods": {"get": {"concurrency": 4}}}));
        let session = backends.registry.session().await.unwrap();
        session.register(&running, &live).await.unwrap();
        backends.settings.put(&running, &NodeData::new("10.0.0.1", 9001)).await.unwrap();
        backends.settings.put(&stopped, &NodeData::new("10.0.0.2", 9002)).await.unwrap();
        let mut metrics = NodeMetrics {
            calls: 200,
            errors: 2,
            qps: 40.0,
            error_rate: 0.01,
            p99_ms: 3.25,
            refused: 7,
            ..NodeMetrics::default()
        };
        metrics.refused_by_reason.insert("qps".into(), 7);
        backends.metrics.publish(&running, &metrics, Duration::from_secs(60)).await.unwrap();

        let report = list(&Operator::new(backends), "shop").await.unwrap();
        let nodes = report.json["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0]["live"], true);
        assert_eq!(nodes[0]["weight"], 70);
        assert_eq!(nodes[0]["started_at_utc"], "2024-05-01T12:34:56Z");
        assert_eq!(nodes[0]["metrics"]["p99_ms"], 3.25);
        assert_eq!(nodes[1]["live"], false);
        assert_eq!(nodes[1]["metrics"], Value::Null);
        let lines: Vec<&str> = report.text.lines().collect();
        assert!(lines[1].starts_with("SERVICE  HOST"), "{}", report.text);
        assert!(
            lines[2].contains("70 (stored 10)") && lines[2].contains("2024-05-01 12:34:56 UTC"),
            "{}",
            report.text
        );
        assert!(
            lines[2].ends_with("40.0  2 (1.0%)  7 (qps 7)  3.2ms  qps 50; get: concurrency 4 (stored none)"),
            "{}",
            report.text
        );
        assert!(lines[3].contains("no") && lines[3].ends_with("-  -"), "{}", report.text);
        assert_eq!(nodes[0]["limits"]["qps"], 50);
        assert_eq!(nodes[0]["limits_summary"], "qps 50; get: concurrency 4");
        assert_eq!((nodes[0]["refused"].clone(), nodes[1]["refused"].clone()), (json!(7), Value::Null));
        assert_eq!(nodes[0]["metrics"]["refused_by_reason"]["qps"], 7);
        assert_eq!(nodes[1]["limits"], Value::Null);
    }

    #[tokio::test]
    async fn unknown_apps_say_what_to_check() {
        let embedded = Embedded::new();
        let report = list(&Operator::new(Backends::embedded(Env::Dev, &embedded)), "nobody").await.unwrap();
        assert!(report.text.contains("probe services list"), "{}", report.text);
    }
}
