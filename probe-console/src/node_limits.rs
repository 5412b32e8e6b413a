//! What the CLI and the console show about a node's request limits
//! ([`probe_runtime::limits`]) and the calls they refused.
//!
//! A node's limits are the `limits` object of its data: the live registration's while it runs
//! (what its provider applies), else its stored settings' (what it applies when it registers
//! again). They are shown on one line, `qps 1000 (burst 50), concurrency 64; echo: qps 200`; the
//! refusals of the node's latest metrics window as `12 (qps 10, concurrency 2)`. When the node's
//! provider refused the limits in its data (it runs the ones before), its latest window says why
//! ([`NodeMetrics::limits_problem`]), and the limits are shown with `(refused by provider: ...)`.

use probe_runtime::limits::{MethodLimits, RequestLimits};
use probe_runtime::registry::{NodeMetrics, NodeView};
use serde_json::Value;

use crate::node_notes::effective;

/// The limits that count for a node (its live data's while it runs, else its stored ones); `None`
/// when it has none.
pub fn of_node(view: &NodeView) -> Option<&Value> {
    effective(view).and_then(|d| d.limits.as_ref())
}

/// The limits stored for a node when they differ from the live node's (an operator's change
/// that has not reached the live node, or a live node changed by hand).
pub fn stored_if_different(view: &NodeView) -> Option<Option<&Value>> {
    let (live, stored) = (view.live.as_ref()?, view.settings.as_ref()?);
    (live.limits != stored.limits).then_some(stored.limits.as_ref())
}

/// `limits` on one line: `qps 1000 (burst 50), concurrency 64, adaptive 4..1000,
/// connections 10000; echo: qps 200, concurrency 8`; `no limit` for an empty document.
pub fn summary(limits: &RequestLimits) -> String {
    let mut parts = rate_and_concurrency(limits.qps, limits.burst, limits.concurrency);
    if let Some(adaptive) = &limits.adaptive {
        parts.push(format!("adaptive {}..{}", adaptive.min, adaptive.max));
    }
    if let Some(connections) = limits.connections {
        parts.push(format!("connections {connections}"));
    }
    let mut text = parts.join(", ");
    for (name, method) in &limits.methods {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&format!("{name}: {}", method_summary(method)));
    }
    if text.is_empty() { "no limit".to_owned() } else { text }
}

fn method_summary(method: &MethodLimits) -> String {
    rate_and_concurrency(method.qps, method.burst, method.concurrency).join(", ")
}

fn rate_and_concurrency(qps: Option<f64>, burst: Option<u32>, concurrency: Option<u32>) -> Vec<String> {
    let mut parts = Vec::new();
    match (qps, burst) {
        (Some(qps), Some(burst)) => parts.push(format!("qps {qps} (burst {burst})")),
        (Some(qps), None) => parts.push(format!("qps {qps}")),
        _ => {}
    }
    if let Some(concurrency) = concurrency {
        parts.push(format!("concurrency {concurrency}"));
    }
    parts
}

/// A node's `limits` value on one line: `none`, its [`summary`], or why it is no limits document
/// (its provider keeps the limits it had).
pub fn shown(value: Option<&Value>) -> String {
    let Some(value) = value else { return "none".to_owned() };
    match RequestLimits::from_json(value) {
        Ok(limits) => summary(&limits),
        Err(problems) => {
            let first = problems.first().map_or_else(String::new, ToString::to_string);
            format!("not valid ({first}): {value}")
        }
    }
}

/// The node's limits on one line, with the stored ones when they differ: `qps 100 (stored qps 50)`.
pub fn cell(view: &NodeView) -> String {
    let now = shown(of_node(view));
    match stored_if_different(view) {
        Some(stored) => format!("{now} (stored {})", shown(stored)),
        None => now,
    }
}

/// Why the node's provider refused its limits, from its latest window: the first problem, with
/// how many more there are (`/methods/gett: unknown method ... (and 1 more)`).
pub fn first_problem(metrics: Option<&NodeMetrics>) -> Option<String> {
    let problem = metrics?.limits_problem.as_deref()?;
    let mut lines = problem.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or(problem);
    Some(match lines.count() {
        0 => first.to_owned(),
        more => format!("{first} (and {more} more)"),
    })
}

/// [`cell`] with why the provider refused the limits, when it did: `qps 100 (refused by provider:
/// /methods/gett: unknown method ...)`.
pub fn cell_with_problem(view: &NodeView, metrics: Option<&NodeMetrics>) -> String {
    let cell = cell(view);
    match first_problem(metrics) {
        Some(problem) => format!("{cell} (refused by provider: {problem})"),
        None => cell,
    }
}

/// The calls a window's limits refused: `12 (qps 10, concurrency 2)`, or `0`.
pub fn refused(metrics: &NodeMetrics) -> String {
    if metrics.refused_by_reason.is_empty() {
        return metrics.refused.to_string();
    }
    let reasons: Vec<String> =
        metrics.refused_by_reason.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
    format!("{} ({})", metrics.refused, reasons.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
    use serde_json::json;

    #[test]
    fn limits_read_on_one_line() {
        let full = RequestLimits::parse(
            r#"{"qps": 1000, "burst": 50, "concurrency": 64, "adaptive": true, "connections": 10000,
                "methods": {"echo": {"qps": 200.5, "concurrency": 8}, "sum": {"concurrency": 2}}}"#,
        )
        .unwrap();
        assert_eq!(
            summary(&full),
            "qps 1000 (burst 50), concurrency 64, adaptive 4..1000, connections 10000; \
             echo: qps 200.5, concurrency 8; sum: concurrency 2"
        );
        let method_only = RequestLimits::parse(r#"{"methods": {"echo": {"qps": 5}}}"#).unwrap();
        assert_eq!(summary(&method_only), "echo: qps 5");
        assert_eq!(summary(&RequestLimits::default()), "no limit");
        assert_eq!(shown(None), "none");
        assert_eq!(
            shown(Some(&json!({"qps": -1}))),
            "not valid (/qps: qps must be above 0, not -1: to stop calls to a node set its weight to 0 or disable it): {\"qps\":-1}"
        );
    }

    #[test]
    fn a_node_shows_its_live_limits_and_stored_ones_that_differ() {
        let key = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", 1).unwrap();
        let mut live = NodeData::new("10.0.0.1", 1);
        live.limits = Some(json!({"qps": 100}));
        let mut stored = live.clone();
        let view = NodeView { key: key.clone(), settings: Some(stored.clone()), live: Some(live.clone()) };
        assert_eq!(cell(&view), "qps 100");
        stored.limits = None;
        let view = NodeView { key: key.clone(), settings: Some(stored), live: Some(live.clone()) };
        assert_eq!(cell(&view), "qps 100 (stored none)");
        let stopped = NodeView { key, settings: Some(live), live: None };
        assert_eq!(of_node(&stopped), Some(&json!({"qps": 100})));
    }

    #[test]
    fn limits_the_provider_refused_say_why() {
        let key = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", 1).unwrap();
        let mut live = NodeData::new("10.0.0.1", 1);
        live.limits = Some(json!({"methods": {"gett": {"qps": 5}}}));
        let view = NodeView { key, settings: Some(live.clone()), live: Some(live) };
        let mut window = NodeMetrics::default();
        assert_eq!(cell_with_problem(&view, Some(&window)), "gett: qps 5");
        assert_eq!(cell_with_problem(&view, None), "gett: qps 5");
        window.limits_problem = Some("/methods/gett: unknown method \"gett\"".into());
        assert_eq!(
            cell_with_problem(&view, Some(&window)),
            "gett: qps 5 (refused by provider: /methods/gett: unknown method \"gett\")"
        );
        window.limits_problem = Some("/a: one\n/b: two\n/c: three".into());
        assert_eq!(first_problem(Some(&window)).as_deref(), Some("/a: one (and 2 more)"));
    }

    #[test]
    fn refusals_name_their_reasons() {
        let mut window = NodeMetrics { refused: 12, ..NodeMetrics::default() };
        window.refused_by_reason.insert("qps".into(), 10);
        window.refused_by_reason.insert("concurrency".into(), 2);
        assert_eq!(refused(&window), "12 (concurrency 2, qps 10)");
        assert_eq!(refused(&NodeMetrics::default()), "0");
    }
}
