//! The `probe limits` reports on the embedded backends.

use std::sync::Arc;
use std::time::Duration;

use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::NodeData;
use probe_runtime::registry::{Backends, NodeMetrics, RegistrySession};

use super::*;
use crate::cli::args::NodeAddress;

/// The running node of the fleet, which declares the methods `get` and `put`.
fn running() -> NodeKey {
    NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", 9001).unwrap()
}

/// The fleet's node that is not running: it has stored settings only.
fn stopped() -> NodeKey {
    NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.2", 9002).unwrap()
}

fn of(node: Option<(&str, u16)>) -> LimitsOf {
    LimitsOf {
        appkey: "shop".into(),
        service: "Order".into(),
        node: node.map(|(ip, port)| NodeAddress { ip: ip.into(), port }),
    }
}

fn doc(text: &str) -> LimitsDocument {
    LimitsDocument::new("limits.json", text)
}

/// Embedded backends with the two `Order` nodes and a `Billing` node.
async fn fleet(backends: Backends) -> (Operator, Box<dyn RegistrySession>) {
    let session = backends.registry.session().await.unwrap();
    let mut live = NodeData::new("10.0.0.1", 9001);
    live.methods = vec!["get".into(), "put".into()];
    session.register(&running(), &live).await.unwrap();
    backends.settings.put(&running(), &NodeData::new("10.0.0.1", 9001)).await.unwrap();
    backends.settings.put(&stopped(), &NodeData::new("10.0.0.2", 9002)).await.unwrap();
    let billing = NodeKey::new(Env::Dev, "shop", "Billing", "10.0.0.1", 9003).unwrap();
    session.register(&billing, &NodeData::new("10.0.0.1", 9003)).await.unwrap();
    (Operator::new(backends).with_actor("cli:t@h"), session)
}

async fn embedded_fleet() -> (Operator, Box<dyn RegistrySession>) {
    fleet(Backends::embedded(Env::Dev, &Embedded::new())).await
}

/// The limits stored for `key` and those of its live node (`None` when not running).
async fn limits_of(op: &Operator, key: &NodeKey) -> (Option<Value>, Option<Option<Value>>) {
    let view = op.node(key).await.unwrap();
    (view.settings.and_then(|d| d.limits), view.live.map(|d| d.limits))
}

#[tokio::test]
async fn limits_are_set_on_every_node_of_a_service_then_on_one_and_cleared() {
    let (op, _nodes) = embedded_fleet().await;
    let report = set(&op, &of(None), &doc(r#"{"qps": 100, "concurrency": 8}"#)).await.unwrap().unwrap();
    let lines: Vec<&str> = report.text.lines().collect();
    assert_eq!(
        lines[0], "limits of shop/Order set: qps 100, concurrency 8, on 2 nodes in env dev",
        "{}",
        report.text
    );
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["NODE", "BEFORE", "LIVE", "NODE"]);
    assert!(
        lines[2].starts_with("shop|dev|Order|10.0.0.1|9001  none") && lines[2].ends_with("applies them now")
    );
    assert!(lines[3].ends_with("not running: they apply when it registers again"), "{}", report.text);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.json["limits"], json!({"qps": 100, "concurrency": 8}));
    assert_eq!(report.json["changes"][0]["live_updated"], true);
    assert_eq!(report.json["audited"], true);
    let set_limits = Some(json!({"qps": 100, "concurrency": 8}));
    assert_eq!(limits_of(&op, &running()).await, (set_limits.clone(), Some(set_limits.clone())));
    assert_eq!(limits_of(&op, &stopped()).await, (set_limits.clone(), None));

    let one = of(Some(("10.0.0.1", 9001)));
    let method = doc(r#"{"methods": {"get": {"qps": 5}}}"#);
    let report = set(&op, &one, &method).await.unwrap().unwrap();
    assert!(report.text.starts_with("limits of shop/Order_10.0.0.1_9001 set: get: qps 5, on 1 node"));
    assert!(report.text.contains("9001  qps 100, concurrency 8  updated"), "{}", report.text);
    assert_eq!(limits_of(&op, &stopped()).await.0, set_limits, "the other node keeps its limits");

    let shown = show(&op, "shop", Some("Order")).await.unwrap();
    let lines: Vec<&str> = shown.text.lines().collect();
    assert_eq!(lines[0], "limits of shop/Order in env dev");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["SERVICE", "HOST", "PORT", "LIVE", "REFUSED", "LIMITS"]
    );
    let cells = |line: &str| line.split_whitespace().skip(3).collect::<Vec<_>>().join(" ");
    assert_eq!(cells(lines[2]), "yes - get: qps 5", "{}", shown.text);
    assert_eq!(cells(lines[3]), "no - qps 100, concurrency 8", "{}", shown.text);
    assert_eq!(shown.json["nodes"][0]["methods"], json!(["get", "put"]));

    let report = clear(&op, &one).await.unwrap();
    assert!(report.text.starts_with("limits of shop/Order_10.0.0.1_9001 cleared"), "{}", report.text);
    assert_eq!((report.json["limits"].clone(), report.json["summary"].clone()), (Value::Null, json!("none")));
    assert_eq!(limits_of(&op, &running()).await, (None, Some(None)));

    let log = op.backends().audit.recent(10).await.unwrap();
    let seen: Vec<(&str, &str, &str, &str, &str)> = log
        .iter()
        .map(|e| {
            (e.actor.as_str(), e.action.as_str(), e.target.as_str(), e.before.as_str(), e.after.as_str())
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "cli:t@h",
                "set_limits",
                "shop|dev|Order|10.0.0.1|9001",
                r#"limits={"methods":{"get":{"qps":5}}}"#,
                "limits=none"
            ),
            (
                "cli:t@h",
                "set_limits",
                "shop|dev|Order|10.0.0.1|9001",
                r#"limits={"concurrency":8,"qps":100}"#,
                r#"limits={"methods":{"get":{"qps":5}}}"#
            ),
            (
                "cli:t@h",
                "set_limits",
                "shop|dev|Order|10.0.0.2|9002",
                "limits=none",
                r#"limits={"concurrency":8,"qps":100}"#
            ),
            (
                "cli:t@h",
                "set_limits",
                "shop|dev|Order|10.0.0.1|9001",
                "limits=none",
                r#"limits={"concurrency":8,"qps":100}"#
            ),
        ]
    );
}

#[tokio::test]
async fn bad_limits_are_refused_with_located_problems_and_nothing_changes() {
    let (op, _nodes) = embedded_fleet().await;
    let bad = "{\n  \"qps\": -5,\n  \"concurrency\": 0,\n  \"colour\": 1\n}";
    let report = set(&op, &of(None), &doc(bad)).await.unwrap().unwrap_err();
    assert_eq!(
        report.text,
        "limits.json: /colour: unknown field \"colour\": a limits document has qps, burst, concurrency, \
         adaptive, connections and methods\nlimits.json: /concurrency: concurrency must be at least 1, not \
         0\nlimits.json: /qps: qps must be above 0, not -5: to stop calls to a node set its weight to 0 or \
         disable it\n3 problem(s) in the limits for shop/Order; nothing was changed\n"
    );
    assert_eq!(
        (report.json["ok"].clone(), report.json["problems"][1]["pointer"].clone()),
        (json!(false), json!("/concurrency"))
    );

    let broken = set(&op, &of(None), &doc("{\"qps\": }")).await.unwrap().unwrap_err();
    assert!(broken.text.starts_with("limits.json:1:9: expected value\n  1 | {\"qps\": }\n    |         ^\n"));

    let unknown = doc(r#"{"methods": {"gett": {"qps": 5}}}"#);
    let report = set(&op, &of(None), &unknown).await.unwrap().unwrap_err();
    assert_eq!(
        report.text,
        "limits.json: /methods/gett: unknown method \"gett\": service Order has the methods get, put\n1 \
         problem(s) in the limits for shop/Order; nothing was changed\n"
    );
    let one = of(Some(("10.0.0.1", 9001)));
    assert!(set(&op, &one, &unknown).await.unwrap().is_err(), "one node is checked the same way");

    assert_eq!(limits_of(&op, &running()).await, (None, Some(None)));
    assert_eq!(limits_of(&op, &stopped()).await.0, None);
    assert!(op.backends().audit.recent(10).await.unwrap().is_empty(), "nothing was audited");
}

#[tokio::test]
async fn unknown_services_and_nodes_say_how_to_list_the_nodes() {
    let (op, _nodes) = embedded_fleet().await;
    let nobody = LimitsOf { service: "Nobody".into(), ..of(None) };
    let err = set(&op, &nobody, &doc(r#"{"qps": 1}"#)).await.unwrap_err();
    assert!(format!("{err:#}").contains("service Nobody of shop has no node"), "{err:#}");
    let err = clear(&op, &of(Some(("10.0.0.9", 1)))).await.unwrap_err();
    assert!(format!("{err:#}").contains("probe nodes list"), "{err:#}");
    let shown = show(&op, "shop", Some("Nobody")).await.unwrap();
    assert!(shown.text.starts_with("shop/Nobody has no node in env dev"), "{}", shown.text);
}

#[tokio::test]
async fn methods_no_running_node_declares_are_set_with_a_warning() {
    let (op, _nodes) = embedded_fleet().await;
    let report = set(&op, &of(Some(("10.0.0.2", 9002))), &doc(r#"{"methods": {"any": {"concurrency": 1}}}"#))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(
        report.warnings[0]
            .starts_with("no running node of shop/Order_10.0.0.2_9002 declares its methods, so any")
    );
}

#[tokio::test]
async fn show_has_each_nodes_refused_calls_in_its_latest_window() {
    let (op, _nodes) = embedded_fleet().await;
    set(&op, &of(None), &doc(r#"{"qps": 10}"#)).await.unwrap().unwrap();
    let mut window = NodeMetrics { calls: 40, refused: 12, ..NodeMetrics::default() };
    window.refused_by_reason.insert("qps".into(), 12);
    op.backends().metrics.publish(&running(), &window, Duration::from_secs(60)).await.unwrap();

    let shown = show(&op, "shop", None).await.unwrap();
    let lines: Vec<&str> = shown.text.lines().collect();
    assert_eq!(lines[0], "limits of shop in env dev");
    assert!(lines[2].starts_with("Billing") && lines[2].ends_with("-  none"), "{}", shown.text);
    assert!(lines[3].ends_with("yes   12 (qps 12)  qps 10"), "{}", shown.text);
    let order = &shown.json["nodes"][1];
    assert_eq!(
        (order["refused"].clone(), order["refused_by_reason"].clone()),
        (json!(12), json!({"qps": 12}))
    );
    assert_eq!(shown.json["nodes"][2]["refused"], Value::Null);
    assert_eq!(order["limits_problem"], Value::Null);
}

#[tokio::test]
async fn show_says_why_the_provider_refused_a_nodes_limits() {
    let (op, _nodes) = embedded_fleet().await;
    set(&op, &of(Some(("10.0.0.1", 9001))), &doc(r#"{"qps": 10}"#)).await.unwrap().unwrap();
    let problem = "/qps: qps 10 is over what this provider allows\n/burst: second problem";
    let window = NodeMetrics { limits_problem: Some(problem.into()), ..NodeMetrics::default() };
    op.backends().metrics.publish(&running(), &window, Duration::from_secs(60)).await.unwrap();

    let shown = show(&op, "shop", Some("Order")).await.unwrap();
    let lines: Vec<&str> = shown.text.lines().collect();
    assert!(
        lines[2].ends_with(
            "0  qps 10 (refused by provider: /qps: qps 10 is over what this provider allows (and 1 more))"
        ),
        "{}",
        shown.text
    );
    assert!(lines[3].ends_with("none"), "the stopped node has no window: {}", shown.text);
    assert_eq!(shown.json["nodes"][0]["limits_problem"], problem);
    assert_eq!(shown.json["nodes"][1]["limits_problem"], Value::Null);
}

use crate::cli::test_support::NoAuditTable;

#[tokio::test]
async fn changes_the_audit_log_misses_are_applied_with_one_warning() {
    let embedded = Embedded::new();
    let backends = Backends { audit: Arc::new(NoAuditTable), ..Backends::embedded(Env::Dev, &embedded) };
    let (op, _nodes) = fleet(backends).await;
    let report = set(&op, &of(None), &doc(r#"{"concurrency": 4}"#)).await.unwrap().expect("applied");
    assert_eq!(
        report.warnings,
        ["the change of 2 nodes was applied but not audited: table probe_audit is missing in the MySQL \
          database design; run `probe db migrate` to enable the audit log"]
    );
    assert_eq!(report.json["audited"], false);
    assert!(report.json["changes"][1]["audit_error"].as_str().unwrap().contains("probe db migrate"));
    assert_eq!(limits_of(&op, &stopped()).await.0, Some(json!({"concurrency": 4})));
}
