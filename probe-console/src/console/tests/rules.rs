//! The rules API: validate with located problems, preview shares, apply (with its conflict and
//! refusal), rollback, and the clients' revisions in `GET`.

use axum::http::StatusCode;
use probe_runtime::registry::ClientReport;
use serde_json::{Value, json};

use super::*;

const A: Auth<'static> = Auth::Bearer(ADMIN);
const V: Auth<'static> = Auth::Bearer(VIEWER);
const RULE: &str = "/api/rules/console_app/Directory";

/// A 90/10 split between the fixture's node (0.1.0) and a second one (0.2.0).
const SPLIT: &str = "{\n  \"versions\": [\n    {\"version\": \"0.1.0\", \"share\": 90},\n    {\"version\": \"0.2.0\", \"share\": 10}\n  ]\n}\n";

/// The fixture with a second `Directory` node, version 0.2.0, in zone b.
async fn two_versions() -> Fixture {
    let f = fixture().await;
    let key = NodeKey::new(Env::Dev, APP, "Directory", "127.0.0.1", 7002).unwrap();
    let mut data = NodeData::new("127.0.0.1", 7002);
    data.version = Some("0.2.0".into());
    data.tags.insert("zone".into(), "b".into());
    data.tier = Some(1);
    f._session.register(&key, &data).await.unwrap();
    f
}

fn text(text: &str) -> Value {
    json!({ "text": text })
}

#[tokio::test]
async fn validate_answers_every_problem_at_its_line_and_column() {
    let f = two_versions().await;
    let bad = SPLIT.replace("\"share\": 90", "\"share\": 120");
    let (status, body) = post(&f.app, &format!("{RULE}/validate"), V, text(&bad)).await;
    assert_eq!((status, body["ok"].clone()), (StatusCode::OK, json!(false)), "{body}");
    assert_eq!(
        body["problems"],
        json!([
            { "line": 3, "column": 35, "pointer": "/versions/0/share", "message": "share 120 is not between 0 and 100" },
            { "line": 2, "column": 15, "pointer": "/versions", "message": "the shares sum to 130, not 100" },
        ])
    );

    let broken = "{\"versions\": [\n  {\"version\": \"0.1.0\" \"share\": 100}\n]}";
    let (status, body) = post(&f.app, &format!("{RULE}/validate"), V, text(broken)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["problems"],
        json!([{ "line": 2, "column": 23, "pointer": null, "message": "expected `,` or `}`" }])
    );

    let unknown = r#"{"header_routes": [{"header": "canary", "value": "1", "version": "3.0"}]}"#;
    let (_, body) = post(&f.app, &format!("{RULE}/validate"), V, text(unknown)).await;
    let problem = &body["problems"][0];
    assert_eq!(
        (problem["pointer"].clone(), problem["column"].clone()),
        (json!("/header_routes/0/version"), json!(66))
    );
    assert!(problem["message"].as_str().unwrap().starts_with("unknown version \"3.0\""), "{body}");

    let (status, body) = post(&f.app, &format!("{RULE}/validate"), V, text(SPLIT)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "ok": true, "problems": [], "summary": "versions 0.1.0 90%, 0.2.0 10%" }));

    let (status, _) = post(&f.app, "/api/rules/bad-app/Directory/validate", V, text(SPLIT)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = post(&f.app, &format!("{RULE}/validate"), V, text(&" ".repeat(70_000))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(post(&f.app, &format!("{RULE}/validate"), V, json!({})).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn preview_gives_each_node_its_share_now_and_under_the_text() {
    let f = two_versions().await;
    let (status, body) = post(&f.app, &format!("{RULE}/preview"), V, json!({ "text": SPLIT })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["draws"].clone(), body["current_revision"].clone()), (json!(20_000), json!(null)));
    let nodes = body["nodes"].as_array().unwrap();
    let ids: Vec<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["Directory_127.0.0.1_7001", "Directory_127.0.0.1_7002"]);
    assert_eq!(
        (nodes[1]["version"].clone(), nodes[1]["tags"].clone(), nodes[1]["tier"].clone()),
        (json!("0.2.0"), json!({ "zone": "b" }), json!(1))
    );
    let share = |n: &Value, when: &str| n[when].as_f64().unwrap();
    // Now, without a rule, tier 0 takes every call; under the split the tier-1 node gets 10%.
    assert_eq!((share(&nodes[0], "now"), share(&nodes[1], "now")), (1.0, 0.0));
    assert!((share(&nodes[1], "new") - 0.1).abs() < 0.01, "{body}");

    let canary = r#"{"header_routes": [{"header": "canary", "value": "1", "version": "0.2.0"}]}"#;
    let request = json!({ "text": canary, "headers": { "canary": "1" }, "tags": { "zone": "a" } });
    let (_, body) = post(&f.app, &format!("{RULE}/preview"), V, request).await;
    assert_eq!(share(&body["nodes"][1], "new"), 1.0, "{body}");

    let unknown = r#"{"versions": [{"version": "9", "share": 100}]}"#;
    let (status, body) = post(&f.app, &format!("{RULE}/preview"), V, text(unknown)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["problems"][0]["pointer"], "/versions/0/version", "{body}");

    let (status, body) = post(&f.app, &format!("{RULE}/preview"), V, text("{\"versions\": 1}")).await;
    assert_eq!((status, body["ok"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!(false)), "{body}");
    assert_eq!(
        (body["problems"][0]["line"].clone(), body["problems"][0]["column"].clone()),
        (json!(1), json!(14))
    );
    assert!(body["error"].as_str().unwrap().contains("nothing to preview"), "{body}");
}

#[tokio::test]
async fn apply_writes_the_next_revision_unless_refused_or_stale() {
    let f = two_versions().await;
    let apply = format!("{RULE}/apply");
    let (status, _) = post(&f.app, &apply, V, text(SPLIT)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (session, _csrf) = login(&f.app, ADMIN, "ops").await;
    assert_eq!(
        post(&f.app, &apply, Auth::Cookie(&session, None), text(SPLIT)).await.0,
        StatusCode::FORBIDDEN
    );

    let (status, body) = post(&f.app, &apply, A, text(SPLIT)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["revision"].clone(), body["version"].clone(), body["before_revision"].clone()),
        (json!(1), json!(0), json!(null))
    );
    assert_eq!(body["summary"], "versions 0.1.0 90%, 0.2.0 10%");

    // The editor read "no rule": someone applied meanwhile.
    let (status, body) = post(&f.app, &apply, A, text(SPLIT)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("changed since you read it (no rule); it is at revision 1")
    );
    let stale = json!({ "text": SPLIT, "expected_version": 7 });
    assert_eq!(post(&f.app, &apply, A, stale).await.0, StatusCode::CONFLICT);

    let bad = json!({ "text": SPLIT.replace("\"share\": 10", "\"share\": 5"), "expected_version": 0 });
    let (status, body) = post(&f.app, &apply, A, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["problems"],
        json!([{ "line": 2, "column": 15, "pointer": "/versions", "message": "the shares sum to 95, not 100" }])
    );
    assert!(body["error"].as_str().unwrap().ends_with("the rule was not applied"), "{body}");

    let all_new =
        json!({ "text": r#"{"versions": [{"version": "0.2.0", "share": 100}]}"#, "expected_version": 0 });
    let (status, body) = post(&f.app, &apply, A, all_new).await;
    assert_eq!(
        (status, body["revision"].clone(), body["before_revision"].clone()),
        (StatusCode::OK, json!(2), json!(1))
    );
    assert!(body.get("audit_warning").is_none(), "{body}");

    let (_, shown) = get(&f.app, RULE, V).await;
    assert_eq!((shown["rule"]["revision"].clone(), shown["rule"]["version"].clone()), (json!(2), json!(1)));
    let log = f.backends.audit.recent(10).await.unwrap();
    let seen: Vec<(&str, &str, &str, &str)> = log
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str(), e.after.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("console-api:admin", "rule_set", "console_app/Directory", "revision 2"),
            ("console-api:admin", "rule_set", "console_app/Directory", "revision 1"),
        ]
    );
}

#[tokio::test]
async fn rollback_writes_an_earlier_revision_again() {
    let f = two_versions().await;
    let apply = format!("{RULE}/apply");
    post(&f.app, &apply, A, text(SPLIT)).await;
    let all_new =
        json!({ "text": r#"{"versions": [{"version": "0.2.0", "share": 100}]}"#, "expected_version": 0 });
    post(&f.app, &apply, A, all_new).await;

    let rollback = format!("{RULE}/rollback");
    assert_eq!(post(&f.app, &rollback, V, json!({ "revision": 1 })).await.0, StatusCode::FORBIDDEN);
    let (status, body) = post(&f.app, &rollback, A, json!({ "revision": 1 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["revision"].clone(), body["from_revision"].clone(), body["summary"].clone()),
        (json!(3), json!(1), json!("versions 0.1.0 90%, 0.2.0 10%"))
    );
    let (status, body) = post(&f.app, &rollback, A, json!({ "revision": 9 })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].as_str().unwrap().contains("has no revision 9 (stored: 1, 2, 3)"), "{body}");
    assert_eq!(post(&f.app, &rollback, A, json!({ "revision": "1" })).await.0, StatusCode::BAD_REQUEST);

    let (_, shown) = get(&f.app, RULE, V).await;
    let history: Vec<(Value, Value)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["revision"].clone(), r["current"].clone()))
        .collect();
    assert_eq!(history, [(json!(1), json!(false)), (json!(2), json!(false)), (json!(3), json!(true))]);
    let entry = &f.backends.audit.recent(1).await.unwrap()[0];
    assert_eq!(
        (entry.action.as_str(), entry.after.as_str()),
        ("rule_rollback", "revision 3 (revision 1 again)")
    );
}

fn report(client: &str, service: &str, revision: u64) -> ClientReport {
    ClientReport {
        client: client.into(),
        appkey: APP.into(),
        service: service.into(),
        revision,
        applied_at_ms: 1_700_000_000_000 + revision,
        problem: false,
        reported_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
        breakers: Default::default(),
        hedges: 0,
        limited: 0,
    }
}

#[tokio::test]
async fn get_shows_the_rule_the_nodes_and_which_clients_run_it() {
    let f = two_versions().await;
    let (status, body) = get(&f.app, RULE, V).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["rule"].clone(), body["history"].clone()), (json!(null), json!([])));
    assert_eq!(
        body["clients"],
        json!({ "revision": 0, "total": 0, "on_current": 0, "not_current": [], "reports": [] })
    );
    assert_eq!(
        body["nodes"][0],
        json!({ "id": "Directory_127.0.0.1_7001", "node": f.key.redis_field(),
        "version": "0.1.0", "tags": {}, "tier": 0, "in_rotation": true })
    );

    post(&f.app, &format!("{RULE}/apply"), A, text(SPLIT)).await;
    let metrics = &f.backends.metrics;
    for r in [
        report("host-a:1", "Directory", 1),
        report("host-b:2", "Directory", 0),
        report("host-c:3", "Other", 0),
    ] {
        metrics.report_client(Env::Dev, &r).await.unwrap();
    }
    let (_, body) = get(&f.app, RULE, V).await;
    let clients = &body["clients"];
    assert_eq!(
        (clients["revision"].clone(), clients["total"].clone(), clients["on_current"].clone()),
        (json!(1), json!(2), json!(1))
    );
    assert_eq!(
        clients["not_current"],
        json!([{ "client": "host-b:2", "revision": 0, "applied_at_ms": 1_700_000_000_000u64, "problem": false,
                 "reported_at_ms": clients["not_current"][0]["reported_at_ms"] }])
    );
    assert_eq!(body["rule"]["text"].as_str().unwrap().lines().nth(1), Some("  \"revision\": 1,"));

    // A hand-written document that is not a rule: shown with its problems; no revision to be on.
    f.backends.registry.write_rule(Env::Dev, APP, "Directory", "{\"versions\": 1}", Some(0)).await.unwrap();
    let (_, body) = get(&f.app, RULE, V).await;
    assert_eq!(
        (body["rule"]["valid"].clone(), body["rule"]["revision"].clone()),
        (json!(false), json!(null))
    );
    assert_eq!(body["rule"]["problems"][0]["line"], 1, "{body}");
    assert_eq!(
        (body["clients"]["revision"].clone(), body["clients"]["on_current"].clone()),
        (json!(null), json!(0))
    );
    assert_eq!(get(&f.app, "/api/rules/console_app/bad%20name", V).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(get(&f.app, &format!("{RULE}?env=qa"), V).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(get(&f.app, RULE, Auth::None).await.0, StatusCode::UNAUTHORIZED);
}
