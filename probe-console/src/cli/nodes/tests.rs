//! `probe nodes list` on the embedded backends: settings, metrics, refused limits, breakers in the
//! clients and their counters.

use super::*;
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::Env;
use probe_runtime::registry::{Backends, ClientReport};
use std::time::Duration;

fn client(name: &str, breakers: &[(&str, &str)], hedges: u64, limited: u64) -> ClientReport {
    ClientReport {
        client: name.into(),
        appkey: "shop".into(),
        service: "Order".into(),
        revision: 0,
        applied_at_ms: 0,
        problem: false,
        reported_at_ms: now_ms(),
        breakers: breakers.iter().map(|(n, s)| ((*n).to_owned(), (*s).to_owned())).collect(),
        hedges,
        limited,
    }
}

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
    metrics.refused_callers = 3;
    metrics.refused_callers_by_reason.insert("not_allowed".into(), 2);
    metrics.refused_callers_by_reason.insert("unauthenticated".into(), 1);
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
        lines[2].ends_with(
            "40.0  2 (1.0%)  7 (qps 7) + callers 3 (not_allowed 2, unauthenticated 1)  3.2ms  -        \
                 qps 50; get: concurrency 4 (stored none)"
        ),
        "{}",
        report.text
    );
    assert!(lines[3].contains("no") && lines[3].ends_with("-  -        -"), "{}", report.text);
    assert_eq!(lines.len(), 4, "no client reports: no client line\n{}", report.text);
    assert_eq!(nodes[0]["limits"]["qps"], 50);
    assert_eq!(nodes[0]["limits_summary"], "qps 50; get: concurrency 4");
    assert_eq!(nodes[0]["limits_problem"], Value::Null);
    assert_eq!((nodes[0]["refused"].clone(), nodes[1]["refused"].clone()), (json!(7), Value::Null));
    assert_eq!(nodes[0]["metrics"]["refused_by_reason"]["qps"], 7);
    assert_eq!(
        (nodes[0]["refused_callers"].clone(), nodes[1]["refused_callers"].clone()),
        (json!(3), Value::Null)
    );
    assert_eq!(nodes[0]["metrics"]["refused_callers_by_reason"]["not_allowed"], 2);
    assert_eq!(nodes[1]["limits"], Value::Null);
    assert_eq!(nodes[0]["breaker"], json!({"open": 0, "half_open": 0, "clients": 0}));
    assert_eq!(report.json["clients"], json!([]));
}

#[tokio::test]
async fn refused_limits_breakers_and_client_counters_are_shown() {
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    let running = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", 9001).unwrap();
    let other = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.2", 9002).unwrap();
    let session = backends.registry.session().await.unwrap();
    let mut live = NodeData::new("10.0.0.1", 9001);
    live.limits = Some(json!({"methods": {"gett": {"qps": 5}}}));
    session.register(&running, &live).await.unwrap();
    session.register(&other, &NodeData::new("10.0.0.2", 9002)).await.unwrap();
    let problem = "/methods/gett: unknown method \"gett\": service Order has the methods get\n/qps: two";
    let window = NodeMetrics { limits_problem: Some(problem.into()), ..NodeMetrics::default() };
    backends.metrics.publish(&running, &window, Duration::from_secs(60)).await.unwrap();
    let id = running.zk_child();
    for report in [
        client("a:1", &[(id.as_str(), "open")], 12, 0),
        client("b:2", &[(id.as_str(), "open"), ("Order_10.0.0.2_9002", "half_open")], 0, 3),
        client("c:3", &[], 0, 0),
        ClientReport { reported_at_ms: now_ms() - 60_000, ..client("d:4", &[(id.as_str(), "open")], 9, 9) },
    ] {
        backends.metrics.report_client(Env::Dev, &report).await.unwrap();
    }

    let report = list(&Operator::new(backends), "shop").await.unwrap();
    let lines: Vec<&str> = report.text.lines().collect();
    assert!(lines[1].ends_with("P99  BREAKER                      LIMITS"), "{}", report.text);
    assert!(
        lines[2].ends_with(
            "open in 2 of 3 clients       gett: qps 5 (refused by provider: /methods/gett: unknown method \
             \"gett\": service Order has the methods get (and 1 more))"
        ),
        "{}",
        report.text
    );
    assert!(lines[3].ends_with("-  half-open in 1 of 3 clients  -"), "{}", report.text);
    assert_eq!(
        lines[5],
        "clients of Order (3 reporting): 12 backup requests (hedges), 3 calls refused by their own QPS limit, \
         so far",
        "{}",
        report.text
    );
    let nodes = report.json["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["limits_problem"], problem);
    assert_eq!(nodes[0]["breaker"], json!({"open": 2, "half_open": 0, "clients": 3}));
    assert_eq!(nodes[0]["breaker_summary"], "open in 2 of 3 clients");
    assert_eq!(nodes[1]["breaker"], json!({"open": 0, "half_open": 1, "clients": 3}));
    assert_eq!(
        report.json["clients"],
        json!([{"service": "Order", "clients": 3, "hedges": 12, "limited": 3}])
    );
}

#[tokio::test]
async fn unknown_apps_say_what_to_check() {
    let embedded = Embedded::new();
    let report = list(&Operator::new(Backends::embedded(Env::Dev, &embedded)), "nobody").await.unwrap();
    assert!(report.text.contains("probe services list"), "{}", report.text);
}
