//! The API's answers and its errors: apps, services, nodes with metrics, history, audit, and
//! 400/404/409/415 with JSON bodies.

use axum::http::StatusCode;
use probe_runtime::registry::Operator;
use serde_json::json;

use super::*;

const A: Auth<'static> = Auth::Bearer(ADMIN);

#[tokio::test]
async fn apps_are_listed_added_once_and_checked() {
    let f = fixture().await;
    let (status, apps) = get(&f.app, "/api/apps", A).await;
    assert_eq!(status, StatusCode::OK);
    let credential = json!({ "state": "none", "previous_valid": false });
    assert_eq!(
        apps,
        json!([{ "appkey": APP, "description": "console tests", "owner": "qa", "credential": credential }])
    );

    let new = json!({ "appkey": "billing", "description": "bills", "owner": "team-b" });
    let (status, body) = post(&f.app, "/api/apps", A, new.clone()).await;
    assert_eq!((status, body.clone()), (StatusCode::CREATED, new.clone()), "{body}");
    let (status, body) = post(&f.app, "/api/apps", A, new).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"].as_str().unwrap().contains("registered already"), "{body}");
    for bad in [
        json!({ "appkey": "bad-key" }),
        json!({ "appkey": "" }),
        json!({ "appkey": "long_description", "description": "x".repeat(513) }),
        json!({ "description": "no appkey" }),
    ] {
        let (status, body) = post(&f.app, "/api/apps", A, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(get(&f.app, "/api/apps", A).await.1.as_array().unwrap().len(), 2);
    let entry = &f.backends.audit.recent(10).await.unwrap()[0];
    assert_eq!((entry.action.as_str(), entry.target.as_str()), ("add_app", "billing"));
    assert_eq!(entry.actor, "console-api:admin");
}

#[tokio::test]
async fn services_count_nodes_per_app_and_env() {
    let f = fixture().await;
    let (status, body) = get(&f.app, "/api/services", A).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["env"], "dev");
    let app = body["apps"].as_array().unwrap().iter().find(|a| a["appkey"] == APP).unwrap().clone();
    assert_eq!(
        app,
        json!({ "appkey": APP, "registered": true, "nodes": 1,
                "services": [{ "service": "Directory", "nodes": 1, "in_rotation": 1 }] })
    );
    let (status, prod) = get(&f.app, "/api/services?env=prod", A).await;
    assert_eq!((status, prod["env"].as_str()), (StatusCode::OK, Some("prod")));
    assert_eq!(prod["apps"][0]["nodes"], 0, "{prod}");
    let (status, body) = get(&f.app, "/api/services?env=qa", A).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("`dev` or `prod`"), "{body}");
}

#[tokio::test]
async fn nodes_show_settings_live_data_and_metrics() {
    let f = fixture().await;
    let (status, body) = get(&f.app, &format!("/api/apps/{APP}/nodes"), A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let node = &body["nodes"][0];
    assert_eq!(node["node"], f.key.redis_field());
    assert_eq!(node["id"], "Directory_127.0.0.1_7001");
    for (field, value) in [
        ("host", json!("127.0.0.1")),
        ("port", json!(7001)),
        ("weight", json!(10)),
        ("valid", json!(1)),
        ("in_rotation", json!(true)),
        ("running", json!(true)),
        ("version", json!("0.1.0")),
        ("started_at", json!(1_700_000_000u64)),
    ] {
        assert_eq!(node[field], value, "{field} in {node}");
    }
    let metrics = &node["metrics"];
    assert_eq!((metrics["qps"].as_f64(), metrics["errors"].as_u64()), (Some(100.0), Some(5)));
    assert_eq!((metrics["p50_ms"].as_f64(), metrics["p99_ms"].as_f64()), (Some(1.5), Some(6.5)));
    assert_eq!(metrics["error_rate"].as_f64(), Some(0.01));
    assert_eq!(node["settings"]["weight"], 10);
    // Refused calls of the latest window; limits set on the node.
    assert_eq!(
        (node["refused"].clone(), metrics["refused_by_reason"].clone()),
        (json!(3), json!({ "concurrency": 3 }))
    );
    assert_eq!(
        (node["refused_callers"].clone(), metrics["refused_callers_by_reason"].clone()),
        (json!(2), json!({ "not_allowed": 2 }))
    );
    assert_eq!((node["limits"].clone(), node["limits_summary"].clone()), (json!(null), json!("none")));
    let limits = probe_runtime::limits::RequestLimits::parse(r#"{"concurrency": 2}"#).unwrap();
    Operator::new(f.backends.clone()).set_limits(&f.key, Some(&limits)).await.unwrap();
    let (_, body) = get(&f.app, &format!("/api/apps/{APP}/nodes"), A).await;
    assert_eq!(
        (body["nodes"][0]["limits"].clone(), body["nodes"][0]["limits_summary"].clone()),
        (json!({ "concurrency": 2 }), json!("concurrency 2"))
    );

    let (status, body) = get(&f.app, "/api/apps/no_such_app/nodes", A).await;
    assert_eq!((status, body["nodes"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    assert_eq!(get(&f.app, "/api/apps/bad%20app/nodes", A).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn history_feeds_the_chart_and_unknown_nodes_are_404() {
    let f = fixture().await;
    let (status, body) = get(&f.app, &format!("/api/nodes/{}/history", enc(&f.key)), A).await;
    assert_eq!(status, StatusCode::OK);
    let p99: Vec<f64> =
        body["windows"].as_array().unwrap().iter().map(|w| w["p99_ms"].as_f64().unwrap()).collect();
    assert_eq!(p99, [4.0, 6.5]);

    let stranger = NodeKey::new(Env::Dev, APP, "Directory", "127.0.0.1", 9).unwrap();
    let (status, body) = get(&f.app, &format!("/api/nodes/{}/history", enc(&stranger)), A).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("no node"), "{body}");
    assert_eq!(get(&f.app, "/api/nodes/garbage/history", A).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_and_unknown_nodes_change_nothing() {
    let f = fixture().await;
    let stranger = NodeKey::new(Env::Dev, APP, "Directory", "127.0.0.1", 9).unwrap();
    let (status, body) = post(&f.app, &format!("/api/nodes/{}/disable", enc(&stranger)), A, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("no node"), "{body}");
    for bad in
        ["garbage", "a%7Cdev%7CS%7C1.2.3.4", "a%7Cqa%7CS%7C1.2.3.4%7C1", "a%7Cdev%7CS%7C1.2.3.4%7C99999"]
    {
        let (status, body) = post(&f.app, &format!("/api/nodes/{bad}/enable"), A, json!({})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["error"].as_str().unwrap().contains("appkey|env|service|ip|port"), "{body}");
    }
    let weight = format!("/api/nodes/{}/weight", enc(&f.key));
    for bad in [json!({ "weight": -1 }), json!({ "weight": 1_000_001 }), json!({ "weight": "10" }), json!({})]
    {
        let (status, body) = post(&f.app, &weight, A, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    assert_eq!((live(&f).await, audit_len(&f).await), ((1, 10), 0));
    let (status, body) = get(&f.app, "/api/no/such/endpoint", A).await;
    assert_eq!((status, body["error"].is_string()), (StatusCode::NOT_FOUND, true));
}

#[tokio::test]
async fn audit_limit_is_checked() {
    let f = fixture().await;
    for _ in 0..3 {
        post(&f.app, &format!("/api/nodes/{}/disable", enc(&f.key)), A, json!({})).await;
    }
    assert_eq!(get(&f.app, "/api/audit", A).await.1.as_array().unwrap().len(), 3);
    assert_eq!(get(&f.app, "/api/audit?limit=2", A).await.1.as_array().unwrap().len(), 2);
    for bad in ["0", "501", "x"] {
        assert_eq!(
            get(&f.app, &format!("/api/audit?limit={bad}"), A).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}
