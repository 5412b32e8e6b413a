//! `probe limits` against the real ZooKeeper, Redis and MariaDB that `scripts/services.sh up`
//! starts, with a running provider: bad limits refused with nothing changed, limits set on the
//! service and applied live by the provider, the calls they refuse counted in the published
//! metrics window that `probe limits show` and `probe nodes list` read, limits the provider refuses
//! (written into its node by hand) shown with why, and a node's limits cleared, each change audited.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use probe_runtime::client::ClusterOptions;
use probe_runtime::limits::RequestLimits;
use probe_runtime::registry::Backends;
use probe_runtime::registry::layout::NodeKey;
use probe_runtime::server::{LimitSource, Server, ServerHandle};
use probe_tests::governance::{Tagged, add_app, client, wait_for_routes};
use probe_tests::idl::interop::DirectoryServer;
use probe_tests::{probe_vars, real_backends, unique};
use serde_json::Value;

const START_HINT: &str = "start the test services with `scripts/services.sh up`";

/// `probe` pointed at the test services, in a blocking task.
async fn probe(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_probe"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(probe_vars())
            .args(&args)
            .output()
            .expect("the probe binary runs")
    })
    .await
    .expect("the probe task ends")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Stdout of a run that must succeed.
fn ok(out: Output) -> String {
    assert!(out.status.success(), "probe failed ({START_HINT} if they are down): {}", text(&out.stderr));
    text(&out.stdout)
}

fn ok_json(out: Output) -> Value {
    let stdout = ok(out);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout}"))
}

/// Stdout and stderr of a run refused with exit status 1.
fn refused(out: Output) -> (String, String) {
    assert_eq!(out.status.code(), Some(1), "probe should have refused; it printed {}", text(&out.stdout));
    (text(&out.stdout), text(&out.stderr))
}

/// A registered `Directory` provider that publishes a metrics window every 200 ms.
async fn provider(backends: &Backends, appkey: &str) -> ServerHandle {
    Server::builder()
        .add_service_for_app(appkey, DirectoryServer::new(Tagged { tag: "limited".into() }))
        .register(backends.clone())
        .advertise_host("127.0.0.1")
        .grace_period(Duration::from_millis(100))
        .metrics_interval(Duration::from_millis(200))
        .start("127.0.0.1:0")
        .await
        .expect("the provider starts")
}

/// Waits until the provider runs `Directory` with `expected` (`None`: no limits of its node's).
async fn applied(server: &ServerHandle, expected: Option<&str>) {
    let expected = expected.map(|e| RequestLimits::parse(e).unwrap());
    let started = Instant::now();
    let mut changes = server.request_limit_changes();
    loop {
        let now = server.request_limits();
        let directory = &now["Directory"];
        let from_node = directory.source == LimitSource::Node;
        if from_node == expected.is_some() && expected.as_ref().is_none_or(|e| directory.limits == *e) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not applied within 10 s: {now:?}");
        let _ = tokio::time::timeout(Duration::from_millis(100), changes.changed()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_refused_set_live_counted_in_refusals_and_cleared() {
    let backends = real_backends().await.expect("the test services are reachable");
    let appkey = unique("cli_limits");
    let actor = unique("cli:limits-test");
    add_app(&backends, &appkey).await.unwrap();
    let server = provider(&backends, &appkey).await;
    let key =
        NodeKey::new(backends.env, &appkey, "Directory", "127.0.0.1", server.local_addr().port()).unwrap();
    let node = format!("127.0.0.1:{}", server.local_addr().port());
    let app = appkey.as_str();

    // Refused: nothing is stored, applied or audited.
    let (out, err) = refused(probe(&["limits", "set", app, "Directory", "--concurrency", "0"]).await);
    assert_eq!(out, "", "the problems go to stderr");
    assert!(err.starts_with("flags: /concurrency: concurrency must be at least 1, not 0\n"), "{err}");
    let (out, _) = refused(probe(&["--json", "limits", "set", app, "Directory", "--qps", "-5"]).await);
    let problems: Value = serde_json::from_str(&out).expect("--json prints the problems on stdout");
    assert_eq!(problems["problems"][0]["pointer"], "/qps", "{problems:#}");
    let (_, err) =
        refused(probe(&["limits", "set", app, "Directory", "--method", "gett", "--qps", "5"]).await);
    assert!(
        err.starts_with("flags: /methods/gett: unknown method \"gett\": service Directory has the methods")
    );
    let (_, err) = refused(probe(&["limits", "set", app, "Directory", "--text", r#"{"colour": 1}"#]).await);
    assert!(err.contains("--text: /colour: unknown field"), "{err}");
    assert_eq!(backends.settings.get(&key).await.unwrap().and_then(|d| d.limits), None);

    // Set on the service: its provider applies them, and refuses what is over them.
    let set =
        ok(probe(&["--actor", &actor, "limits", "set", app, "Directory", "--qps", "2", "--burst", "1"])
            .await);
    assert!(set.starts_with(&format!("limits of {app}/Directory set: qps 2 (burst 1), on 1 node")), "{set}");
    assert!(set.contains("updated: its provider applies them now"), "{set}");
    applied(&server, Some(r#"{"qps": 2, "burst": 1}"#)).await;
    let (routes, directory) = client(&backends, app, ClusterOptions::default()).await.unwrap();
    wait_for_routes(&routes, "the provider", |r| r.table.in_rotation().count() == 1).await.unwrap();
    let calls = (0..30).map(|_| directory.ping("x".into()));
    let answered = futures_util::future::join_all(calls).await;
    let failed = answered.iter().filter(|a| a.is_err()).count();
    assert!(failed >= 20, "{failed} of 30 calls over 2 qps failed");

    // The next windows count the refusals.
    let started = Instant::now();
    let shown = loop {
        let shown = ok_json(probe(&["--json", "limits", "show", app, "Directory"]).await);
        if shown["nodes"][0]["refused"].as_u64().unwrap_or(0) > 0
            || started.elapsed() > Duration::from_secs(10)
        {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let shown_node = &shown["nodes"][0];
    assert!(shown_node["refused_by_reason"]["qps"].as_u64().unwrap_or(0) > 0, "{shown:#}");
    assert_eq!(shown_node["summary"], "qps 2 (burst 1)");
    let listed = ok(probe(&["nodes", "list", app]).await);
    assert!(listed.lines().next_back().unwrap_or_default().ends_with("qps 2 (burst 1)"), "{listed}");

    // Limits written into the live node by hand, naming a method it does not have: the provider
    // refuses them, keeps the ones before, and says why in its metrics window.
    let mut data = backends.registry.node(&key).await.unwrap().expect("the provider runs");
    data.limits = Some(serde_json::json!({"methods": {"gett": {"qps": 5}}}));
    assert!(backends.registry.update(&key, &data).await.unwrap());
    let started = Instant::now();
    let shown = loop {
        let shown = ok_json(probe(&["--json", "limits", "show", app, "Directory"]).await);
        if shown["nodes"][0]["limits_problem"].is_string() || started.elapsed() > Duration::from_secs(10) {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let problem = shown["nodes"][0]["limits_problem"].as_str().unwrap_or_default();
    assert!(problem.starts_with("/methods/gett: unknown method \"gett\""), "{shown:#}");
    applied(&server, Some(r#"{"qps": 2, "burst": 1}"#)).await;
    let table = ok(probe(&["limits", "show", app, "Directory"]).await);
    assert!(
        table.contains(
            "gett: qps 5 (stored qps 2 (burst 1)) (refused by provider: /methods/gett: unknown method"
        ),
        "{table}"
    );
    let listed = ok_json(probe(&["--json", "nodes", "list", app]).await);
    assert_eq!(listed["nodes"][0]["limits_problem"], problem, "{listed:#}");
    assert_eq!(listed["nodes"][0]["breaker"]["open"], 0, "{listed:#}");

    // Cleared on the node: the provider has no limits of its node's again.
    let cleared = ok(probe(&["--actor", &actor, "limits", "clear", app, "Directory", "--node", &node]).await);
    assert!(cleared.contains("cleared: the providers' configured limits apply, on 1 node"), "{cleared}");
    applied(&server, None).await;
    // The problem is gone from the provider's next window.
    let started = Instant::now();
    while ok_json(probe(&["--json", "limits", "show", app]).await)["nodes"][0]["limits_problem"].is_string() {
        assert!(started.elapsed() < Duration::from_secs(10), "the problem outlived the clear");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let table = ok(probe(&["limits", "show", app]).await);
    assert!(table.lines().nth(2).unwrap_or_default().ends_with("none"), "{table}");

    let log = backends.audit.recent(200).await.unwrap();
    let mine: Vec<(&str, &str, &str)> = log
        .iter()
        .filter(|e| e.actor == actor)
        .map(|e| (e.action.as_str(), e.before.as_str(), e.after.as_str()))
        .collect();
    assert_eq!(
        mine,
        [
            ("set_limits", r#"limits={"burst":1,"qps":2}"#, "limits=none"),
            ("set_limits", "limits=none", r#"limits={"burst":1,"qps":2}"#),
        ]
    );
    server.shutdown().await.unwrap();
    backends.settings.remove(&key).await.unwrap();
    backends.apps.remove(app).await.unwrap();
}
