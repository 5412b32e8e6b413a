//! The limits API: set on a node and on a service, clear, refusals with located problems (bad
//! values, unknown fields and methods) that change nothing, the audit record, and who may change;
//! the nodes view with why a provider refused its limits and the breakers in the clients.

use axum::http::{Method, StatusCode};
use probe_runtime::registry::ClientReport;
use serde_json::{Value, json};

use super::*;
use crate::client_faults::now_ms;

const A: Auth<'static> = Auth::Bearer(ADMIN);
const V: Auth<'static> = Auth::Bearer(VIEWER);
const LIMITS: &str = "/api/limits/console_app/Directory";
/// The fixture's node, as `?node=` names it.
const NODE: &str = "node=127.0.0.1:7001";

/// The fixture with its node declaring `Directory`'s methods and a second node, stored only.
async fn with_methods() -> Fixture {
    let f = fixture().await;
    let mut live = NodeData::new("127.0.0.1", 7001);
    live.version = Some("0.1.0".into());
    live.methods = ["ping", "get", "put", "find", "touch", "count"].map(String::from).to_vec();
    f._session.register(&f.key, &live).await.unwrap();
    let stored = NodeKey::new(Env::Dev, APP, "Directory", "127.0.0.1", 7002).unwrap();
    f.backends.settings.put(&stored, &NodeData::new("127.0.0.1", 7002)).await.unwrap();
    f
}

async fn put(app: &Router, path: &str, auth: Auth<'_>, body: Value) -> (StatusCode, Value) {
    let (status, _, body) = send(app, request(Method::PUT, path, auth, Some(body))).await;
    (status, body)
}

async fn delete(app: &Router, path: &str, auth: Auth<'_>) -> (StatusCode, Value) {
    let (status, _, body) = send(app, request(Method::DELETE, path, auth, None)).await;
    (status, body)
}

/// The limits the fixture's node holds: (stored, live).
async fn node_limits(f: &Fixture) -> (Option<Value>, Option<Value>) {
    let stored = f.backends.settings.get(&f.key).await.unwrap().and_then(|d| d.limits);
    let nodes = f.backends.registry.nodes(Env::Dev, APP).await.unwrap();
    let live = nodes.into_iter().find(|n| n.key == f.key).and_then(|n| n.data.limits);
    (stored, live)
}

fn text(text: &str) -> Value {
    json!({ "text": text })
}

#[tokio::test]
async fn limits_are_set_on_a_node_then_on_the_service_and_cleared_with_audit_records() {
    let f = with_methods().await;
    let (session, csrf) = login(&f.app, ADMIN, "ops").await;
    let ops = Auth::Cookie(&session, Some(&csrf));
    let doc = r#"{"qps": 200, "methods": {"get": {"concurrency": 8}}}"#;
    let (status, body) = put(&f.app, &format!("{LIMITS}?{NODE}"), ops, text(doc)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["target"].clone(), body["summary"].clone(), body["applied"].clone()),
        (json!("console_app/Directory_127.0.0.1_7001"), json!("qps 200; get: concurrency 8"), json!(true))
    );
    assert_eq!(
        body["changes"],
        json!([{ "node": f.key.redis_field(), "before": null, "live": true,
                 "after": { "qps": 200, "methods": { "get": { "concurrency": 8 } } } }])
    );
    assert!(body.get("audit_warning").is_none(), "{body}");
    let set = Some(json!({ "qps": 200, "methods": { "get": { "concurrency": 8 } } }));
    assert_eq!(node_limits(&f).await, (set.clone(), set));

    // The nodes view and the limits view show them.
    let (_, nodes) = get(&f.app, &format!("/api/apps/{APP}/nodes"), V).await;
    let node =
        nodes["nodes"].as_array().unwrap().iter().find(|n| n["id"] == "Directory_127.0.0.1_7001").unwrap();
    assert_eq!(
        (node["limits"]["qps"].clone(), node["limits_summary"].clone()),
        (json!(200), json!("qps 200; get: concurrency 8"))
    );
    let (status, view) = get(&f.app, LIMITS, V).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["methods"], json!(["count", "find", "get", "ping", "put", "touch"]));
    let summaries: Vec<(Value, Value, Value)> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["address"].clone(), n["summary"].clone(), n["refused"].clone()))
        .collect();
    assert_eq!(
        summaries,
        [
            (json!("127.0.0.1:7001"), json!("qps 200; get: concurrency 8"), json!(3)),
            (json!("127.0.0.1:7002"), json!("none"), Value::Null),
        ]
    );

    // Every node of the service, the stored one too; as an API client, with a JSON document.
    let (status, body) =
        put(&f.app, LIMITS, A, json!({ "limits": { "concurrency": 64, "adaptive": true } })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lives: Vec<Value> = body["changes"].as_array().unwrap().iter().map(|c| c["live"].clone()).collect();
    assert_eq!(lives, [json!(true), json!(false)]);
    assert_eq!(body["summary"], "concurrency 64, adaptive 4..1000");

    let (status, body) = delete(&f.app, &format!("{LIMITS}?{NODE}"), ops).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["limits"].clone(), body["summary"].clone()), (Value::Null, json!("none")));
    assert_eq!(node_limits(&f).await, (None, None));

    let log = f.backends.audit.recent(10).await.unwrap();
    let seen: Vec<(&str, &str, &str)> =
        log.iter().map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str())).collect();
    let node = f.key.redis_field();
    assert_eq!(
        seen,
        [
            ("console:admin/ops", "set_limits", node.as_str()),
            ("console-api:admin", "set_limits", "console_app|dev|Directory|127.0.0.1|7002"),
            ("console-api:admin", "set_limits", node.as_str()),
            ("console:admin/ops", "set_limits", node.as_str()),
        ]
    );
    assert_eq!(log[3].before, "limits=none");
    assert_eq!(log[3].after, r#"limits={"methods":{"get":{"concurrency":8}},"qps":200}"#);
    assert_eq!(log[0].after, "limits=none");
}

#[tokio::test]
async fn bad_limits_are_422_with_located_problems_and_change_nothing() {
    let f = with_methods().await;
    let bad = "{\n  \"qps\": -5,\n  \"concurrency\": 0,\n  \"colour\": 1\n}";
    let (status, body) = put(&f.app, &format!("{LIMITS}?{NODE}"), A, text(bad)).await;
    assert_eq!((status, body["ok"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!(false)), "{body}");
    let at: Vec<(Value, Value, Value)> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["pointer"].clone(), p["line"].clone(), p["column"].clone()))
        .collect();
    assert_eq!(
        at,
        [
            (json!("/colour"), json!(4), json!(13)),
            (json!("/concurrency"), json!(3), json!(18)),
            (json!("/qps"), json!(2), json!(10)),
        ]
    );
    assert_eq!(body["problems"][1]["message"], "concurrency must be at least 1, not 0");
    assert_eq!(
        body["error"],
        "3 problem(s) in the limits for console_app/Directory_127.0.0.1_7001; nothing was changed"
    );

    let (status, body) = put(&f.app, LIMITS, A, text("{\"qps\": }")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["problems"],
        json!([{ "line": 1, "column": 9, "pointer": null, "message": "expected value" }])
    );

    let unknown = "{\"methods\": {\n  \"gett\": {\"qps\": 5}\n}}";
    for path in [LIMITS.to_owned(), format!("{LIMITS}?{NODE}")] {
        let (status, body) = put(&f.app, &path, A, text(unknown)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        let problem = &body["problems"][0];
        assert_eq!((problem["pointer"].clone(), problem["line"].clone()), (json!("/methods/gett"), json!(2)));
        assert!(
            problem["message"]
                .as_str()
                .unwrap()
                .starts_with("unknown method \"gett\": service Directory has")
        );
    }
    assert_eq!(node_limits(&f).await, (None, None));
    assert_eq!(audit_len(&f).await, 0, "nothing was audited");
}

#[tokio::test]
async fn only_admins_change_limits_and_unknown_targets_are_refused() {
    let f = with_methods().await;
    let doc = text(r#"{"qps": 5}"#);
    assert_eq!(put(&f.app, LIMITS, V, doc.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(delete(&f.app, LIMITS, V).await.0, StatusCode::FORBIDDEN);
    assert_eq!(put(&f.app, LIMITS, Auth::None, doc.clone()).await.0, StatusCode::UNAUTHORIZED);
    let (session, _csrf) = login(&f.app, ADMIN, "ops").await;
    assert_eq!(put(&f.app, LIMITS, Auth::Cookie(&session, None), doc.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(delete(&f.app, LIMITS, Auth::Cookie(&session, None)).await.0, StatusCode::FORBIDDEN);

    let (status, body) = put(&f.app, "/api/limits/console_app/Nobody", A, doc.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("service Nobody of console_app has no node"), "{body}");
    let (status, body) = delete(&f.app, &format!("{LIMITS}?node=127.0.0.1:9"), A).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("no node"), "{body}");
    for bad in ["?node=127.0.0.1", "?node=127.0.0.1:99999", "?env=qa"] {
        let (status, body) = put(&f.app, &format!("{LIMITS}{bad}"), A, doc.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    assert_eq!(put(&f.app, "/api/limits/bad-app/Directory", A, doc.clone()).await.0, StatusCode::BAD_REQUEST);
    for bad in [json!({}), json!({ "text": "{}", "limits": {} }), text(&" ".repeat(70_000))] {
        assert_eq!(put(&f.app, LIMITS, A, bad).await.0, StatusCode::BAD_REQUEST);
    }
    assert_eq!(node_limits(&f).await, (None, None));
    assert_eq!(audit_len(&f).await, 0);
}

/// A current report of a `Directory` client of the fixture's app.
fn client(name: &str, breakers: &[(&str, &str)], hedges: u64, limited: u64) -> ClientReport {
    ClientReport {
        client: name.into(),
        appkey: APP.into(),
        service: "Directory".into(),
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
async fn nodes_show_refused_limits_breakers_in_the_clients_and_their_counters() {
    let f = with_methods().await;
    let problem = "/methods/gett: unknown method \"gett\"\n/qps: second";
    let window = NodeMetrics { limits_problem: Some(problem.into()), ..NodeMetrics::default() };
    f.backends.metrics.publish(&f.key, &window, Duration::from_secs(60)).await.unwrap();
    let id = f.key.zk_child();
    for report in [
        client("a:1", &[(id.as_str(), "open")], 4, 0),
        client("b:2", &[(id.as_str(), "half_open")], 0, 2),
        client("c:3", &[], 0, 0),
        ClientReport { appkey: "other_app".into(), ..client("d:4", &[(id.as_str(), "open")], 9, 9) },
    ] {
        f.backends.metrics.report_client(Env::Dev, &report).await.unwrap();
    }

    let (status, body) = get(&f.app, &format!("/api/apps/{APP}/nodes"), V).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let nodes = body["nodes"].as_array().unwrap();
    let running = nodes.iter().find(|n| n["id"] == id.as_str()).unwrap();
    assert_eq!(running["limits_problem"], problem);
    assert_eq!(running["breaker"], json!({ "open": 1, "half_open": 1, "clients": 3 }));
    assert_eq!(running["breaker_summary"], "open in 1 of 3 clients, half-open in 1");
    let stored = nodes.iter().find(|n| n["id"] == "Directory_127.0.0.1_7002").unwrap();
    assert_eq!(
        (stored["limits_problem"].clone(), stored["breaker_summary"].clone()),
        (Value::Null, json!("closed"))
    );
    assert_eq!(body["clients"], json!([{ "service": "Directory", "clients": 3, "hedges": 4, "limited": 2 }]));

    let (status, view) = get(&f.app, LIMITS, V).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let problems: Vec<Value> =
        view["nodes"].as_array().unwrap().iter().map(|n| n["limits_problem"].clone()).collect();
    assert_eq!(problems, [json!(problem), Value::Null]);
}
