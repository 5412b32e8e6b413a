//! The caller policy API: set on every node of a service and cleared, with the audit record and the
//! node data (stored and live); refused documents (422 with located problems) that change
//! nothing; who may change; a stored document that is no policy shown with its problems; and the
//! apps list's credential status, which never holds a secret or what verifies one.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use probe_runtime::registry::embedded::EmbeddedApps;
use probe_runtime::registry::{App, AppStore, BackendError, Operator};
use probe_runtime::service::BoxFuture;
use serde_json::{Value, json};

use super::*;
use crate::console::api::callers::NO_POLICY;
use crate::console::error::ASK_AN_ADMIN;

const A: Auth<'static> = Auth::Bearer(ADMIN);
const V: Auth<'static> = Auth::Bearer(VIEWER);
const CALLERS: &str = "/api/callers/console_app/Directory";

/// The fixture with a second `Directory` node, stored only.
async fn with_stored_node() -> (Fixture, NodeKey) {
    let f = fixture().await;
    let stored = NodeKey::new(Env::Dev, APP, "Directory", "127.0.0.1", 7002).unwrap();
    f.backends.settings.put(&stored, &NodeData::new("127.0.0.1", 7002)).await.unwrap();
    (f, stored)
}

async fn put(app: &Router, path: &str, auth: Auth<'_>, body: Value) -> (StatusCode, Value) {
    let (status, _, body) = send(app, request(Method::PUT, path, auth, Some(body))).await;
    (status, body)
}

async fn delete(app: &Router, path: &str, auth: Auth<'_>) -> (StatusCode, Value) {
    let (status, _, body) = send(app, request(Method::DELETE, path, auth, None)).await;
    (status, body)
}

/// The caller policy a node holds: (stored, live; `None` when it does not run).
async fn node_callers(f: &Fixture, key: &NodeKey) -> (Option<Value>, Option<Value>) {
    let stored = f.backends.settings.get(key).await.unwrap().and_then(|d| d.callers);
    let nodes = f.backends.registry.nodes(Env::Dev, APP).await.unwrap();
    let live = nodes.into_iter().find(|n| n.key == *key).and_then(|n| n.data.callers);
    (stored, live)
}

#[tokio::test]
async fn a_policy_is_set_on_every_node_of_the_service_and_cleared_with_audit_records() {
    let (f, stored) = with_stored_node().await;
    let (session, csrf) = login(&f.app, ADMIN, "ops").await;
    let ops = Auth::Cookie(&session, Some(&csrf));
    let policy = json!({ "allow": ["order_app", "billing_app"], "unauthenticated": "count" });
    let (status, body) = put(&f.app, CALLERS, ops, policy).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored_form = json!({ "allow": ["billing_app", "order_app"], "unauthenticated": "count" });
    assert_eq!(
        (body["target"].clone(), body["summary"].clone(), body["callers"].clone(), body["applied"].clone()),
        (
            json!("console_app/Directory"),
            json!("allow billing_app, order_app; unauthenticated count"),
            stored_form.clone(),
            json!(true)
        )
    );
    let changes: Vec<(Value, Value, Value, Value)> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["node"].clone(), c["before"].clone(), c["after"].clone(), c["live"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (json!(f.key.redis_field()), Value::Null, stored_form.clone(), json!(true)),
            (json!(stored.redis_field()), Value::Null, stored_form.clone(), json!(false)),
        ]
    );
    assert!(body.get("audit_warning").is_none(), "{body}");
    // The running node's live data (what its provider applies) and the stored settings of both.
    assert_eq!(node_callers(&f, &f.key).await, (Some(stored_form.clone()), Some(stored_form.clone())));
    assert_eq!(node_callers(&f, &stored).await, (Some(stored_form.clone()), None));

    // The view shows both nodes, and the allowed apps without a credential: all of them yet.
    let (status, view) = get(&f.app, CALLERS, V).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let rows: Vec<(Value, Value, Value, Value)> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["address"].clone(), n["running"].clone(), n["summary"].clone(), n["problems"].clone()))
        .collect();
    let summary = json!("allow billing_app, order_app; unauthenticated count");
    assert_eq!(
        rows,
        [
            (json!("127.0.0.1:7001"), json!(true), summary.clone(), json!([])),
            (json!("127.0.0.1:7002"), json!(false), summary.clone(), json!([])),
        ]
    );
    assert_eq!(view["without_credential"], json!(["billing_app", "order_app"]));
    // Once billing_app has a credential, only order_app is listed.
    f.backends.apps.add(&App { appkey: "billing_app".into(), ..App::default() }).await.unwrap();
    Operator::new(f.backends.clone()).issue_credential("billing_app").await.unwrap();
    let (_, view) = get(&f.app, CALLERS, V).await;
    assert_eq!(view["without_credential"], json!(["order_app"]));

    // An API client clears it: every node, the live one too.
    let (status, body) = delete(&f.app, CALLERS, A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["callers"].clone(), body["summary"].clone()), (Value::Null, json!(NO_POLICY)));
    assert_eq!(node_callers(&f, &f.key).await, (None, None));
    assert_eq!(node_callers(&f, &stored).await, (None, None));
    let (_, view) = get(&f.app, CALLERS, V).await;
    assert_eq!(view["nodes"][0]["summary"], NO_POLICY);
    assert_eq!(view["without_credential"], json!([]));

    let log = f.backends.audit.recent(10).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = log
        .iter()
        .filter(|e| e.action == "set_callers")
        .map(|e| (e.actor.as_str(), e.target.as_str(), e.after.as_str()))
        .collect();
    let (live, other) = (f.key.redis_field(), stored.redis_field());
    let set = r#"callers={"allow":["billing_app","order_app"],"unauthenticated":"count"}"#;
    assert_eq!(
        seen,
        [
            ("console-api:admin", other.as_str(), "callers=none"),
            ("console-api:admin", live.as_str(), "callers=none"),
            ("console:admin/ops", other.as_str(), set),
            ("console:admin/ops", live.as_str(), set),
        ]
    );
}

#[tokio::test]
async fn bad_policies_are_422_with_located_problems_and_change_nothing() {
    let (f, stored) = with_stored_node().await;
    let bad = json!({ "allow": ["a_app", "a_app", "bad-app", 3], "unauthenticated": "maybe", "colour": 1 });
    let (status, body) = put(&f.app, CALLERS, A, bad).await;
    assert_eq!((status, body["ok"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!(false)), "{body}");
    assert_eq!(
        body["error"],
        "5 problem(s) in the caller policy for console_app/Directory; nothing was changed"
    );
    let problems = body["problems"].as_array().unwrap();
    let at: Vec<(Value, Value)> =
        problems.iter().map(|p| (p["pointer"].clone(), p["line"].clone())).collect();
    // Located in the document laid out on lines, its keys sorted: allow's items, colour, unauthenticated.
    assert_eq!(
        at,
        [
            (json!("/allow/1"), json!(4)),
            (json!("/allow/2"), json!(5)),
            (json!("/allow/3"), json!(6)),
            (json!("/colour"), json!(8)),
            (json!("/unauthenticated"), json!(9)),
        ]
    );
    assert_eq!(problems[0]["message"], "a_app is listed twice");
    assert!(problems[1]["message"].as_str().unwrap().contains("bad-app"), "{body}");
    assert_eq!(problems[4]["message"], "one of allow, count, refuse");

    for doc in [json!([]), json!("refuse"), json!({ "allow": "a_app" })] {
        let (status, body) = put(&f.app, CALLERS, A, doc.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{doc}: {body}");
        assert_eq!(body["problems"].as_array().map(Vec::len), Some(1), "{doc}: {body}");
    }
    let huge = json!({ "allow": vec!["a_app"; 10_000] });
    let (status, body) = put(&f.app, CALLERS, A, huge).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("at most 65536"), "{body}");

    assert_eq!(node_callers(&f, &f.key).await, (None, None));
    assert_eq!(node_callers(&f, &stored).await, (None, None));
    assert_eq!(audit_len(&f).await, 0, "nothing was audited");
}

#[tokio::test]
async fn only_admins_change_policies_and_unknown_targets_are_refused() {
    let f = fixture().await;
    let doc = json!({ "unauthenticated": "refuse" });
    assert_eq!(put(&f.app, CALLERS, V, doc.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(delete(&f.app, CALLERS, V).await.0, StatusCode::FORBIDDEN);
    let (viewer, viewer_csrf) = login(&f.app, VIEWER, "ann").await;
    let ann = Auth::Cookie(&viewer, Some(&viewer_csrf));
    assert_eq!(put(&f.app, CALLERS, ann, doc.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(put(&f.app, CALLERS, Auth::None, doc.clone()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&f.app, CALLERS, Auth::None).await.0, StatusCode::UNAUTHORIZED);
    // A browser session needs the CSRF token.
    let (session, _csrf) = login(&f.app, ADMIN, "ops").await;
    assert_eq!(
        put(&f.app, CALLERS, Auth::Cookie(&session, None), doc.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    let forged = Auth::Cookie(&session, Some("forged"));
    assert_eq!(delete(&f.app, CALLERS, forged).await.0, StatusCode::FORBIDDEN);

    let (status, body) = put(&f.app, "/api/callers/console_app/Nobody", A, doc.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].as_str().unwrap().contains("service Nobody of console_app has no node"), "{body}");
    assert_eq!(delete(&f.app, "/api/callers/console_app/Nobody", A).await.0, StatusCode::NOT_FOUND);
    for bad in [
        "/api/callers/bad-app/Directory",
        "/api/callers/console_app/Bad-Service",
        &format!("{CALLERS}?env=qa"),
    ] {
        let (status, body) = put(&f.app, bad, A, doc.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, _, body) = send(
        &f.app,
        Request::builder()
            .method(Method::PUT)
            .uri(CALLERS)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from("{\"allow\": ["))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(node_callers(&f, &f.key).await, (None, None));
    assert_eq!(audit_len(&f).await, 0);
}

#[tokio::test]
async fn a_stored_document_that_is_no_policy_is_shown_with_its_problems() {
    let (f, stored) = with_stored_node().await;
    // Written by hand: the live node's `callers` is no policy; the stored node's is not an object.
    let mut live = NodeData::new("127.0.0.1", 7001);
    live.callers = Some(json!({ "allow": ["ok_app", "no good"] }));
    f._session.register(&f.key, &live).await.unwrap();
    let mut odd = NodeData::new("127.0.0.1", 7002);
    odd.extra.insert("callers".into(), json!("refuse"));
    f.backends.settings.put(&stored, &odd).await.unwrap();

    let (status, view) = get(&f.app, CALLERS, V).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let running = &view["nodes"][0];
    assert_eq!(
        running["summary"],
        "not a caller policy (1 problem(s)); its provider keeps the policy before"
    );
    assert_eq!(running["callers"], json!({ "allow": ["ok_app", "no good"] }));
    // The stored settings hold no policy while the live node holds this one.
    assert_eq!(running["stored"], NO_POLICY);
    let problem = &running["problems"][0];
    assert_eq!((problem["pointer"].clone(), problem["line"].clone()), (json!("/allow/1"), json!(4)));
    assert!(problem["message"].as_str().unwrap().contains("no good"), "{view}");
    let other = &view["nodes"][1];
    assert_eq!(other["callers"], "refuse");
    assert_eq!(other["problems"][0]["message"], "a caller policy is a JSON object");
    assert_eq!(view["without_credential"], json!([]), "a refused document allows nobody: {view}");
}

#[tokio::test]
async fn the_apps_list_says_whether_each_app_has_a_credential_and_never_what_it_is() {
    let f = fixture().await;
    let credential = |apps: &Value| {
        let ours = apps.as_array().unwrap().iter().find(|a| a["appkey"] == APP).unwrap();
        ours["credential"].clone()
    };
    let (status, apps) = get(&f.app, "/api/apps", V).await;
    assert_eq!(status, StatusCode::OK, "{apps}");
    assert_eq!(credential(&apps), json!({ "state": "none", "previous_valid": false }));

    let op = Operator::new(f.backends.clone());
    let first = op.issue_credential(APP).await.unwrap();
    let (_, apps) = get(&f.app, "/api/apps", V).await;
    let issued_at = first.stored.issued_at_ms;
    assert_eq!(
        credential(&apps),
        json!({ "state": "issued", "issued_at_ms": issued_at, "previous_valid": false })
    );

    let second = op.issue_credential(APP).await.unwrap();
    assert!(second.rotated);
    for auth in [V, A] {
        let (_, apps) = get(&f.app, "/api/apps", auth).await;
        let shown = credential(&apps);
        assert_eq!((shown["state"].clone(), shown["previous_valid"].clone()), (json!("issued"), json!(true)));
        // No secret, digest or public key, current or previous, in the answer.
        let text = apps.to_string();
        for issued in [&first, &second] {
            let stored = &issued.stored;
            for hidden in [issued.credential.secret.expose(), &stored.zk_digest, &stored.caller_key] {
                let part = hidden.rsplit(':').next().unwrap();
                assert!(!text.contains(part), "{part} in {text}");
            }
        }
    }
    op.retire_credential(APP).await.unwrap();
    let (_, apps) = get(&f.app, "/api/apps", V).await;
    assert_eq!(credential(&apps)["previous_valid"], false);
}

/// The embedded app store without credentials: `credentials()` fails as stores that keep none do.
#[derive(Debug, Default)]
struct NoCredentials(EmbeddedApps);

impl AppStore for NoCredentials {
    fn contains<'a>(&'a self, appkey: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        self.0.contains(appkey)
    }
    fn add<'a>(&'a self, app: &'a App) -> BoxFuture<'a, Result<bool, BackendError>> {
        self.0.add(app)
    }
    fn remove<'a>(&'a self, appkey: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        self.0.remove(appkey)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<App>, BackendError>> {
        self.0.list()
    }
}

#[tokio::test]
async fn apps_are_listed_when_the_store_cannot_say_which_have_credentials() {
    let f = fixture().await;
    let apps = NoCredentials::default();
    apps.add(&App { appkey: APP.into(), ..App::default() }).await.unwrap();
    let backends = Backends { apps: Arc::new(apps), ..f.backends.clone() };
    let app = router(ConsoleState::new(&options(), backends).unwrap());
    let (status, listed) = get(&app, "/api/apps", A).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let shown = &listed[0]["credential"];
    assert_eq!(shown["state"], "unknown");
    assert!(shown["problem"].as_str().unwrap().contains("keeps no credentials"), "{listed}");
    let (_, listed) = get(&app, "/api/apps", V).await;
    let problem = listed[0]["credential"]["problem"].as_str().unwrap();
    assert!(problem.ends_with(ASK_AN_ADMIN) && !problem.contains("keeps no credentials"), "{problem}");
}
