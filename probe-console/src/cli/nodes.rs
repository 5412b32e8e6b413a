//! `probe nodes list APPKEY`: an app's nodes, running or only stored, with their settings, their
//! request limits (with why the provider refused them, if it did), the live metrics their servers
//! publish (calls the limits and the caller policy refused among them) and where their circuit breakers stand in the
//! clients ([`client_faults`](crate::client_faults)); a line per service whose clients sent backup
//! requests or were held back by their own QPS limit. HOST and PORT are what clients dial (the
//! node data's); nodes whose data disagrees with their name, or whose weight is above the console's
//! maximum, get a note under the table ([`node_notes`](crate::node_notes)).

use anyhow::{Context as _, Result};
use probe_runtime::registry::layout::{NodeData, NodeKey, UnusableNode, check_appkey};
use probe_runtime::registry::{NodeMetrics, NodeView, Operator};
use serde_json::{Value, json};

use super::output::time::{now_secs, rfc3339, utc_ago};
use super::output::{Align, Report, Table, decimal, or_dash, yes_no};
use crate::client_faults::{BreakerCounts, ClientFaults, now_ms};
use crate::node_limits;
use crate::node_notes::{dialed, effective, notes};

fn data_json(data: Option<&NodeData>) -> Value {
    data.map_or(Value::Null, |d| serde_json::to_value(d).unwrap_or(Value::Null))
}

/// What `list` shows of one node: its views and what is measured of it.
struct Node<'a> {
    view: &'a NodeView,
    metrics: Option<&'a NodeMetrics>,
    breaker: BreakerCounts,
}

fn node_json(node: &Node<'_>) -> Value {
    let Node { view, metrics, breaker } = *node;
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
        "limits_problem": metrics.and_then(|m| m.limits_problem.as_deref()),
        "refused": metrics.map(|m| m.refused),
        "refused_callers": metrics.map(|m| m.refused_callers),
        "breaker": breaker,
        "breaker_summary": breaker.summary(),
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

/// What the node refused in its latest window: by its request limits (`7 (qps 7)`), then by its
/// caller policy, when it refused any (`7 (qps 7) + callers 2 (not_allowed 2)`).
fn refused_cell(metrics: &NodeMetrics) -> String {
    let limits = node_limits::refused(metrics);
    if metrics.refused_callers == 0 {
        return limits;
    }
    let reasons: Vec<String> =
        metrics.refused_callers_by_reason.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
    format!("{limits} + callers {} ({})", metrics.refused_callers, reasons.join(", "))
}

fn node_row(node: &Node<'_>) -> Vec<String> {
    let Node { view, metrics, breaker } = *node;
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
        metrics.map_or_else(|| "-".to_owned(), refused_cell),
        decimal(metrics.map(|m| m.p99_ms), "ms"),
        breaker.summary(),
        match node_limits::of_node(view) {
            None if node_limits::stored_if_different(view).is_none()
                && node_limits::first_problem(metrics).is_none() =>
            {
                "-".to_owned()
            }
            _ => node_limits::cell_with_problem(view, metrics),
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
    let reports = op
        .backends()
        .metrics
        .client_reports(env)
        .await
        .with_context(|| format!("cannot read the reports of {appkey}'s clients"))?;
    let faults = ClientFaults::new(appkey, &reports, now_ms());
    let nodes: Vec<Node<'_>> = views
        .iter()
        .enumerate()
        .map(|(i, view)| Node {
            view,
            metrics: metrics.get(i).and_then(Option::as_ref),
            breaker: faults.breaker(&view.key),
        })
        .collect();
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
        "nodes": nodes.iter().map(node_json).collect::<Vec<_>>(),
        "clients": faults.services().collect::<Vec<_>>(),
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
            ("BREAKER", Align::Left),
            ("LIMITS", Align::Left),
        ]);
        for node in &nodes {
            table.row(node_row(node));
        }
        format!("{appkey} in env {env}\n{}", table.render())
    };
    let clients = faults.lines();
    if !clients.is_empty() {
        text.push_str(&format!("\n{}\n", clients.join("\n")));
    }
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
mod tests;
