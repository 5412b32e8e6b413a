//! The `probe` binary against the real ZooKeeper, Redis and MariaDB that `scripts/services.sh up`
//! starts: apps, nodes of a running provider, services, the audit log, errors, IDL and the console.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use probe_runtime::registry::Backends;
use probe_runtime::registry::layout::NodeKey;
use probe_tests::governance::{node_key, start_provider};
use probe_tests::{probe_vars, real_backends, unique};
use serde_json::Value;

const START_HINT: &str = "start the test services with `scripts/services.sh up`";

/// `probe` with `vars` as its whole environment (plus PATH).
fn probe_with(vars: &[(&str, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_probe"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .output()
        .expect("the probe binary runs")
}

/// `probe` pointed at the test services, in a blocking task.
async fn probe(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        probe_with(&probe_vars(), &args)
    })
    .await
    .expect("the probe task ends")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout of a run that must succeed; on failure, the error and how to start the services.
fn ok(out: Output) -> String {
    assert!(out.status.success(), "probe failed ({START_HINT} if they are down): {}", stderr(&out));
    stdout(&out)
}

fn ok_json(out: Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not one JSON document ({e}): {text}"))
}

/// Stderr of a run that must fail, after checking it printed nothing on stdout.
fn failed(out: Output) -> String {
    assert!(!out.status.success(), "probe should have failed; it printed {}", stdout(&out));
    assert_eq!(stdout(&out), "", "errors go to stderr");
    stderr(&out)
}

async fn backends() -> Backends {
    real_backends().await.expect("the test services are reachable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_are_added_listed_and_removed_with_audit_entries() {
    let backends = backends().await;
    let appkey = unique("cli_app");
    let actor = unique("cli:apps-test");
    let added = ok(probe(&[
        "--actor",
        &actor,
        "apps",
        "add",
        &appkey,
        "--owner",
        "alice",
        "--description",
        "cli test",
    ])
    .await);
    assert!(added.contains(&format!("added app {appkey}")), "{added}");
    let again = ok(probe(&["apps", "add", &appkey]).await);
    assert!(again.contains("already"), "{again}");

    let listed = ok_json(probe(&["apps", "list", "--json"]).await);
    let app = listed["apps"].as_array().unwrap().iter().find(|a| a["appkey"] == appkey.as_str()).cloned();
    assert_eq!(app.expect("the new app is listed")["owner"], "alice");
    let table = ok(probe(&["apps", "list"]).await);
    assert!(table.starts_with("APPKEY") && table.contains(&appkey), "{table}");

    let removed = ok_json(probe(&["--json", "--actor", &actor, "apps", "remove", &appkey]).await);
    assert_eq!(removed["removed"], true);
    let listed = ok_json(probe(&["apps", "list", "--json"]).await);
    assert!(!listed["apps"].as_array().unwrap().iter().any(|a| a["appkey"] == appkey.as_str()));

    let log = backends.audit.recent(200).await.unwrap();
    let mine: Vec<(&str, &str)> =
        log.iter().filter(|e| e.actor == actor).map(|e| (e.action.as_str(), e.target.as_str())).collect();
    assert_eq!(mine, [("remove_app", appkey.as_str()), ("add_app", appkey.as_str())]);
}

/// Redis settings and live ZooKeeper data of `key` as `(weight, valid)`.
async fn node_state(backends: &Backends, key: &NodeKey) -> ((u32, u8), (u32, u8)) {
    let stored = backends.settings.get(key).await.unwrap().expect("the node has settings");
    let live = backends.registry.nodes(key.env(), key.appkey()).await.unwrap();
    let live = live.into_iter().find(|n| n.key == *key).expect("the node is live").data;
    ((stored.weight, stored.valid), (live.weight, live.valid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_a_running_provider_are_listed_and_changed() {
    let backends = backends().await;
    let appkey = unique("cli_nodes");
    let actor = unique("cli:nodes-test");
    ok(probe(&["apps", "add", &appkey, "--owner", "tests"]).await);
    let server = start_provider(&backends, &appkey, "one").await.unwrap();
    let key = node_key(&backends, &appkey, &server);
    let field = key.redis_field();
    let zk_name = format!("{appkey}/{}", key.zk_child());

    let listed = ok_json(probe(&["nodes", "list", &appkey, "--json"]).await);
    let nodes = listed["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{listed:#}");
    assert_eq!((nodes[0]["node"].as_str(), nodes[0]["live"].as_bool()), (Some(field.as_str()), Some(true)));
    assert_eq!((nodes[0]["service"].as_str(), nodes[0]["weight"].as_u64()), (Some("Directory"), Some(10)));
    assert!(nodes[0]["started_at_utc"].is_string(), "{listed:#}");
    let table = ok(probe(&["nodes", "list", &appkey]).await);
    assert!(table.contains("SERVICE") && table.contains("Directory") && table.contains(" UTC "), "{table}");

    let changed = ok(probe(&["--actor", &actor, "nodes", "weight", &field, "70"]).await);
    assert!(changed.contains("weight 10 -> 70") && changed.contains("live node"), "{changed}");
    assert!(changed.contains("updated"), "{changed}");
    assert_eq!(node_state(&backends, &key).await, ((70, 1), (70, 1)));

    let changed = ok_json(probe(&["--json", "--actor", &actor, "nodes", "disable", &zk_name]).await);
    assert_eq!((changed["before"].as_u64(), changed["after"].as_u64()), (Some(1), Some(0)));
    assert_eq!(changed["live_updated"], true);
    assert_eq!(node_state(&backends, &key).await, ((70, 0), (70, 0)));
    let services = ok_json(probe(&["services", "list", "--json"]).await);
    let app = services["apps"].as_array().unwrap().iter().find(|a| a["appkey"] == appkey.as_str()).cloned();
    let counts = &app.expect("services list shows the app")["services"][0];
    assert_eq!((counts["live"].as_u64(), counts["in_rotation"].as_u64()), (Some(1), Some(0)), "{counts}");

    let changed = ok(probe(&["--actor", &actor, "nodes", "enable", &zk_name]).await);
    assert!(changed.contains("valid 0 -> 1"), "{changed}");
    assert_eq!(node_state(&backends, &key).await, ((70, 1), (70, 1)));
    let services = ok(probe(&["services", "list", "--env", "dev"]).await);
    let row = services.lines().find(|l| l.starts_with(&appkey)).unwrap_or_default();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [appkey.as_str(), "Directory", "1", "1"],
        "{services}"
    );

    let log = backends.audit.recent(200).await.unwrap();
    let mine: Vec<(&str, &str, &str, &str)> = log
        .iter()
        .filter(|e| e.actor == actor)
        .map(|e| (e.action.as_str(), e.target.as_str(), e.before.as_str(), e.after.as_str()))
        .collect();
    assert_eq!(
        mine,
        [
            ("enable", field.as_str(), "weight=70 valid=0", "weight=70 valid=1"),
            ("disable", field.as_str(), "weight=70 valid=1", "weight=70 valid=0"),
            ("set_weight", field.as_str(), "weight=10 valid=1", "weight=70 valid=1"),
        ]
    );
    let audit = ok_json(probe(&["audit", "--limit", "200", "--json"]).await);
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.iter().filter(|e| e["actor"] == actor.as_str()).count(), 3);

    server.shutdown().await.unwrap();
    backends.settings.remove(&key).await.unwrap();
    ok(probe(&["apps", "remove", &appkey]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_unknown_nodes_explain_what_to_give() {
    let err = failed(probe(&["--json", "nodes", "weight", "not-a-node", "5"]).await);
    assert!(err.contains("appkey|env|service|ip|port") && err.contains("appkey/service_ip_port"), "{err}");
    let err = failed(probe(&["nodes", "disable", "app|qa|S|1.2.3.4|1"]).await);
    assert!(err.contains("`dev` or `prod`"), "{err}");
    let nobody = format!("{}/Directory_127.0.0.1_1", unique("cli_nobody"));
    let err = failed(probe(&["nodes", "disable", &nobody]).await);
    assert!(err.contains("probe nodes list APPKEY"), "{err}");
}

#[test]
fn missing_configuration_names_the_setting() {
    let err = failed(probe_with(&[], &["apps", "list"]));
    assert!(err.contains("PROBE_ZOOKEEPER") && err.contains("embedded"), "{err}");
    let vars = probe_vars();
    let without_redis: Vec<_> = vars.into_iter().filter(|(k, _)| *k != "PROBE_REDIS").collect();
    let err = failed(probe_with(&without_redis, &["nodes", "list", "x"]));
    assert!(err.contains("PROBE_REDIS"), "{err}");
    let err = failed(probe_with(&[], &["--config", "/nonexistent/probe.toml", "services", "list"]));
    assert!(err.contains("/nonexistent/probe.toml"), "{err}");
}

#[test]
fn unreachable_backend_names_its_address_and_the_fix() {
    let vars: Vec<_> = probe_vars()
        .into_iter()
        .map(|(k, v)| if k == "PROBE_REDIS" { (k, "redis://127.0.0.1:1/".to_owned()) } else { (k, v) })
        .collect();
    let err = failed(probe_with(&vars, &["apps", "list"]));
    assert!(err.contains("127.0.0.1:1") && err.contains("scripts/services.sh up"), "{err}");
}

#[test]
fn idl_check_and_locate_need_no_backend() {
    let idl = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/idl/interop.thrift");
    let out = ok(probe_with(&[], &["idl", "check", idl]));
    assert!(out.starts_with("ok: ") && out.contains("definition(s)"), "{out}");
    let json = ok_json(probe_with(&[], &["idl", "check", idl, "--json"]));
    assert_eq!(json["ok"], true);
    let out = ok(probe_with(&[], &["locate", "app", "S", "10.0.0.1", "80", "--env", "prod"]));
    assert!(out.contains("/services/prod/app/S_10.0.0.1_80"), "{out}");
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

#[test]
fn console_prints_generated_tokens_and_serves() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_probe"))
        .env_clear()
        .envs(probe_vars())
        .env("PROBE_CONSOLE_VIEWER_TOKEN", "viewer-secret")
        .args(["console", "--bind", &bind])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the probe binary runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    for _ in 0..3 {
        printed.push(lines.next().and_then(Result::ok).unwrap_or_default());
    }
    let printed = printed.join("\n");
    let mut answer = String::new();
    for _ in 0..50 {
        if let Ok(mut conn) = TcpStream::connect(&bind) {
            let _ = conn.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            let _ = conn.read_to_string(&mut answer);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(printed.contains(&format!("http://{bind}/")), "{printed}");
    let admin = printed.lines().find_map(|l| l.strip_prefix("admin token:  ")).unwrap_or_default();
    let token = admin.split_whitespace().next().unwrap_or_default();
    assert!(token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{printed}");
    assert!(!printed.contains("viewer-secret"), "a given token is not printed: {printed}");
    assert!(answer.starts_with("HTTP/1.1 200"), "the console answers: {answer}");
}
