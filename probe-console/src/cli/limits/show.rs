//! `probe limits show APPKEY [SERVICE]`: each node's request limits (or none), the stored ones
//! when they differ from the live node's, why its provider refused them (if it did: it keeps the
//! limits before) and the calls they refused, both from the node's latest metrics window.

use anyhow::{Context as _, Result};
use probe_runtime::registry::layout::NodeKey;
use probe_runtime::registry::{NodeMetrics, NodeView, Operator};
use serde_json::{Value, json};

use crate::cli::output::{Align, Report, Table, yes_no};
use crate::node_limits::{cell_with_problem, of_node, refused, shown, stored_if_different};
use crate::node_notes::dialed;

/// The limits of the nodes of `appkey` (of `service` only, when given).
pub async fn show(op: &Operator, appkey: &str, service: Option<&str>) -> Result<Report> {
    let env = op.backends().env;
    let views: Vec<NodeView> = op
        .nodes(appkey)
        .await
        .with_context(|| format!("cannot list the nodes of {appkey}"))?
        .into_iter()
        .filter(|v| service.is_none_or(|s| v.key.service() == s))
        .collect();
    let keys: Vec<NodeKey> = views.iter().map(|v| v.key.clone()).collect();
    let metrics = op
        .backends()
        .metrics
        .latest(&keys)
        .await
        .with_context(|| format!("cannot read the metrics of {appkey}'s nodes"))?;
    let metric = |i: usize| metrics.get(i).and_then(Option::as_ref);
    let name = match service {
        Some(service) => format!("{appkey}/{service}"),
        None => appkey.to_owned(),
    };
    let json = json!({
        "env": env.as_str(),
        "appkey": appkey,
        "service": service,
        "nodes": views.iter().enumerate().map(|(i, v)| node_json(v, metric(i))).collect::<Vec<_>>(),
    });
    if views.is_empty() {
        let text = format!(
            "{name} has no node in env {env}: none is running and none has stored settings; check the names \
             (`probe services list`) and the env (--env dev|prod)"
        );
        return Ok(Report::new(json, text));
    }
    let mut table = Table::new(&[
        ("SERVICE", Align::Left),
        ("HOST", Align::Left),
        ("PORT", Align::Right),
        ("LIVE", Align::Left),
        ("REFUSED", Align::Right),
        ("LIMITS", Align::Left),
    ]);
    for (i, view) in views.iter().enumerate() {
        let (host, port) = dialed(view);
        table.row(vec![
            view.key.service().to_owned(),
            host.to_owned(),
            port.to_string(),
            yes_no(view.live.is_some()).to_owned(),
            metric(i).map_or_else(|| "-".to_owned(), refused),
            cell_with_problem(view, metric(i)),
        ]);
    }
    Ok(Report::new(json, format!("limits of {name} in env {env}\n{}", table.render())))
}

fn node_json(view: &NodeView, metrics: Option<&NodeMetrics>) -> Value {
    let (host, port) = dialed(view);
    json!({
        "node": view.key.redis_field(),
        "zk_path": view.key.zk_node_path(),
        "service": view.key.service(),
        "host": host,
        "port": port,
        "live": view.live.is_some(),
        "limits": of_node(view),
        "summary": shown(of_node(view)),
        "stored_limits_differ": stored_if_different(view).is_some(),
        "stored_limits": view.settings.as_ref().and_then(|d| d.limits.as_ref()),
        "methods": view.live.as_ref().map(|d| &d.methods),
        "limits_problem": metrics.and_then(|m| m.limits_problem.as_deref()),
        "refused": metrics.map(|m| m.refused),
        "refused_by_reason": metrics.map(|m| &m.refused_by_reason),
        "window_at_ms": metrics.map(|m| m.at_ms),
    })
}
