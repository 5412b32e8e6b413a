//! The `probe` binary against the real ZooKeeper, Redis and MariaDB that `scripts/services.sh up`
//! starts: apps, nodes of a running provider, services, traffic rules, the audit log, errors, IDL,
//! the console, and the design's minimal database (`serviceapp` with only `appkey`) before and after
//! `probe db migrate`, each test on a database of its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use futures_util::FutureExt as _;
use mysql_async::prelude::Queryable as _;
use probe_runtime::config::Config;
use probe_runtime::registry::layout::{NodeData, NodeKey};
use probe_runtime::registry::zookeeper::ZK_RULES_ROOT;
use probe_runtime::registry::{Backends, RegistrySession};
use probe_tests::governance::{node_key, start_provider};
use probe_tests::{mysql_url, probe_vars, real_backends, unique};
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
    // Its credential is shown once, in the text; --json never holds one.
    assert!(added.contains(&format!("PROBE_APP_CREDENTIAL={appkey}:probe1.")), "{added}");
    let other = unique("cli_app_json");
    let refused = failed(probe(&["--json", "apps", "add", &other]).await);
    assert!(refused.contains("--credential-file"), "{refused}");
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
    assert_eq!(
        mine,
        [
            ("remove_app", appkey.as_str()),
            ("issue_credential", appkey.as_str()),
            ("add_app", appkey.as_str())
        ]
    );
}

/// Redis settings and live ZooKeeper data of `key` as `(weight, valid)`.
async fn node_state(backends: &Backends, key: &NodeKey) -> ((u32, u8), (u32, u8)) {
    let stored = backends.settings.get(key).await.unwrap().expect("the node has settings");
    let live = backends.registry.nodes(key.env(), key.appkey()).await.unwrap();
    let live = live.into_iter().find(|n| n.key == *key).expect("the node is live").data;
    let pair =
        |d: &probe_runtime::registry::layout::NodeData| (d.weight.value() as u32, u8::from(d.valid.is_on()));
    (pair(&stored), pair(&live))
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
fn status_names_the_backend_that_is_down_and_exits_1() {
    let up = ok(probe_with(&probe_vars(), &["status"]));
    let states: Vec<(&str, &str)> = up
        .lines()
        .skip(1)
        .take(3)
        .map(|l| {
            let mut words = l.split_whitespace();
            (words.next().unwrap_or_default(), words.next().unwrap_or_default())
        })
        .collect();
    assert_eq!(states, [("ZooKeeper", "up"), ("Redis", "up"), ("MySQL", "up")], "{up}");
    assert!(up.contains("all 3 backends answered (env dev)"), "{up}");

    // MySQL on a closed port, with a password that must not show.
    let vars: Vec<_> = probe_vars()
        .into_iter()
        .map(|(k, v)| match k {
            "PROBE_MYSQL" => (k, "mysql://probe:status-secret@127.0.0.1:1/probe".to_owned()),
            _ => (k, v),
        })
        .collect();
    let down = probe_with(&vars, &["backends"]);
    assert_eq!(down.status.code(), Some(1), "{}", stderr(&down));
    let text = stdout(&down);
    let mysql = text.lines().find(|l| l.starts_with("MySQL ")).unwrap_or_default();
    assert!(
        mysql.contains("down") && mysql.contains("PROBE_MYSQL") && mysql.contains("127.0.0.1:1"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("Redis ") && l.contains(" up ")), "{text}");
    assert!(
        text.contains("\nMySQL is down: MySQL at mysql://probe:***@127.0.0.1:1/probe is unreachable"),
        "{text}"
    );
    let json = probe_with(&vars, &["status", "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(
        (json["ok"].clone(), json["down"].clone()),
        (Value::Bool(false), serde_json::json!(["mysql"]))
    );
    assert_eq!(json["backends"][2]["setting"], "PROBE_MYSQL");
    assert!(!format!("{text}{json}{}", stderr(&down)).contains("status-secret"));
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
        .env("PROBE_CONSOLE_VIEWER_TOKEN", "viewer-secret-0123456789")
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

#[test]
fn console_refuses_tokens_under_16_characters() {
    let out = Command::new(env!("CARGO_BIN_EXE_probe"))
        .env_clear()
        .envs(probe_vars())
        .env("PROBE_CONSOLE_ADMIN_TOKEN", "short-admin")
        .args(["console", "--bind", "127.0.0.1:0"])
        .output()
        .expect("the probe binary runs");
    let err = failed(out);
    assert!(err.contains("admin token is shorter than 16 characters"), "{err}");
}

/// The design's table: only a unique `appkey`.
const DESIGN_TABLE: &str =
    "CREATE TABLE serviceapp (appkey VARCHAR(128) NOT NULL, UNIQUE KEY uk_appkey (appkey))";

/// A database of its own on the test server, named `<test database>_<unique>` (which
/// `scripts/services.sh up` lets the test user create), holding what `setup` creates. `test` runs
/// with the `PROBE_*` variables pointed at it; the database is dropped afterwards, pass or fail.
async fn with_database<F, Fut>(setup: &[&str], test: F)
where
    F: FnOnce(Vec<(&'static str, String)>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let base = mysql_url();
    let (server, base_db) = base.rsplit_once('/').expect("PROBE_TEST_MYSQL names a database");
    let name = format!("{base_db}_{}", unique("db").replace("db_", ""));
    let mut conn = probe_tests::mysql().await.expect("the test MariaDB is reachable");
    conn.query_drop(format!("CREATE DATABASE {name}")).await.unwrap_or_else(|e| {
        panic!("cannot create the database {name} ({e}); `scripts/services.sh up` grants the test user {base_db}_*")
    });
    for statement in setup {
        conn.query_drop(format!("USE {name}")).await.expect("use the new database");
        conn.query_drop(*statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let vars: Vec<_> = probe_vars()
        .into_iter()
        .map(|(k, v)| if k == "PROBE_MYSQL" { (k, format!("{server}/{name}")) } else { (k, v) })
        .collect();
    let outcome = std::panic::AssertUnwindSafe(test(vars)).catch_unwind().await;
    conn.query_drop(format!("DROP DATABASE {name}")).await.expect("drop the test database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `probe` with `vars`, in a blocking task.
async fn probe_in(vars: &[(&'static str, String)], args: &[&str]) -> Output {
    let vars = vars.to_vec();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        probe_with(&vars, &args)
    })
    .await
    .expect("the probe task ends")
}

/// The `warning:` lines of a run's stderr.
fn warnings(out: &Output) -> Vec<String> {
    stderr(out).lines().filter(|l| l.starts_with("warning: ")).map(str::to_owned).collect()
}

const NOT_AUDITED: &str = "warning: the change was applied but not audited: table probe_audit is missing in the \
                           MySQL database";
const ENABLE_AUDIT: &str = "run `probe db migrate` to enable the audit log";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_designs_minimal_table_serves_apps_providers_and_node_changes() {
    with_database(&[DESIGN_TABLE], |vars| async move {
        let appkey = unique("cli_design");
        let added = probe_in(&vars, &["apps", "add", &appkey]).await;
        assert!(stdout(&added).contains(&format!("added app {appkey}")), "{}", stderr(&added));
        assert!(added.status.success(), "an applied change exits 0: {}", stderr(&added));
        let warned = warnings(&added);
        assert!(
            warned.len() == 2 && warned[0].starts_with(NOT_AUDITED) && warned[0].ends_with(ENABLE_AUDIT),
            "{warned:?}"
        );
        // The design's database keeps no credentials: none is issued, and it says how to fix that.
        assert!(
            warned[1].contains(&format!("no credential was issued to {appkey}"))
                && warned[1].contains("probe db migrate"),
            "{warned:?}"
        );

        // Fields the table has no column for are not written, and said so.
        let other = unique("cli_design_owned");
        let added = probe_in(&vars, &["apps", "add", &other, "--owner", "alice"]).await;
        assert!(added.status.success(), "{}", stderr(&added));
        assert!(
            stderr(&added).contains("the owner of app") && stderr(&added).contains("probe db migrate"),
            "{}",
            stderr(&added)
        );

        let listed = ok_json(probe_in(&vars, &["apps", "list", "--json"]).await);
        assert_eq!(listed["fields"], serde_json::json!(["appkey"]), "{listed:#}");
        let mine =
            listed["apps"].as_array().unwrap().iter().find(|a| a["appkey"] == appkey.as_str()).cloned();
        assert_eq!(mine, Some(serde_json::json!({ "appkey": appkey })), "{listed:#}");
        let table = ok(probe_in(&vars, &["apps", "list"]).await);
        assert_eq!(table.lines().next().map(str::trim_end), Some("APPKEY"), "{table}");

        // A provider's registration check reads the design's table.
        let config =
            Config::from_vars(vars.iter().map(|(k, v)| (*k, v.as_str()))).expect("test configuration");
        let backends =
            Backends::connect(&config).await.expect("the backends connect to the design's database");
        let server = start_provider(&backends, &appkey, "design").await.expect("a registered appkey starts");
        let key = node_key(&backends, &appkey, &server);
        let field = key.redis_field();

        let changed = probe_in(&vars, &["nodes", "weight", &field, "70"]).await;
        assert!(changed.status.success(), "the change was applied: {}", stderr(&changed));
        assert!(stdout(&changed).contains("weight 10 -> 70"), "{}", stdout(&changed));
        let warned = warnings(&changed);
        assert!(
            warned.len() == 1 && warned[0].starts_with(NOT_AUDITED) && warned[0].ends_with(ENABLE_AUDIT),
            "{warned:?}"
        );
        assert!(!stderr(&changed).contains("cannot"), "{}", stderr(&changed));
        assert_eq!(node_state(&backends, &key).await, ((70, 1), (70, 1)));

        let changed = probe_in(&vars, &["--json", "nodes", "disable", &field]).await;
        assert!(changed.status.success(), "{}", stderr(&changed));
        let json: Value = serde_json::from_slice(&changed.stdout).expect("one JSON document");
        assert_eq!((json["after"].as_u64(), json["audited"].as_bool()), (Some(0), Some(false)), "{json:#}");
        assert_eq!(warnings(&changed).len(), 1, "{}", stderr(&changed));
        assert_eq!(node_state(&backends, &key).await, ((70, 0), (70, 0)));

        let err = failed(probe_in(&vars, &["audit"]).await);
        assert!(err.contains("probe_audit") && err.contains(ENABLE_AUDIT), "{err}");

        server.shutdown().await.expect("the provider stops");
        backends.settings.remove(&key).await.expect("the test's settings are removed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_migrate_adds_what_the_designs_table_lacks_once() {
    let keep = "INSERT INTO serviceapp (appkey) VALUES ('kept_app')";
    with_database(&[DESIGN_TABLE, keep], |vars| async move {
        let status = ok(probe_in(&vars, &["db", "status"]).await);
        assert!(status.contains("serviceapp             partial  columns description, owner"), "{status}");
        assert!(status.contains("probe_audit            missing  the table"), "{status}");
        assert!(status.contains("probe_app_credentials  missing  the table"), "{status}");

        let dry = ok(probe_in(&vars, &["db", "migrate", "--dry-run"]).await);
        let statements: Vec<&str> = dry.lines().filter(|l| !l.starts_with("--")).collect();
        assert_eq!(
            statements[..2],
            [
                "ALTER TABLE serviceapp ADD COLUMN description VARCHAR(512) NOT NULL DEFAULT '';",
                "ALTER TABLE serviceapp ADD COLUMN owner VARCHAR(128) NOT NULL DEFAULT '';",
            ],
            "{dry}"
        );
        assert!(statements[2].starts_with("CREATE TABLE IF NOT EXISTS probe_audit ("), "{dry}");
        assert!(
            statements.iter().any(|l| l.starts_with("CREATE TABLE IF NOT EXISTS probe_app_credentials (")),
            "{dry}"
        );
        assert!(dry.starts_with("-- dry run: 4 statement(s)"), "{dry}");
        let still = ok_json(probe_in(&vars, &["db", "status", "--json"]).await);
        assert_eq!(still["up_to_date"], false, "a dry run changes nothing: {still:#}");

        let migrated = ok_json(probe_in(&vars, &["db", "migrate", "--json"]).await);
        assert_eq!(
            (migrated["applied"].as_bool(), migrated["statements"].as_array().map(Vec::len)),
            (Some(true), Some(4))
        );
        let again = ok(probe_in(&vars, &["db", "migrate"]).await);
        assert!(again.starts_with("nothing to do"), "{again}");
        let status = ok_json(probe_in(&vars, &["db", "status", "--json"]).await);
        assert_eq!(status["up_to_date"], true, "{status:#}");

        // The migrated table keeps its rows and takes probe's fields; changes are audited.
        let appkey = unique("cli_migrated");
        let actor = unique("cli:migrated");
        let added = probe_in(&vars, &["--actor", &actor, "apps", "add", &appkey, "--owner", "bob"]).await;
        assert!(added.status.success() && warnings(&added).is_empty(), "{}", stderr(&added));
        let listed = ok_json(probe_in(&vars, &["apps", "list", "--json"]).await);
        assert_eq!(listed["fields"], serde_json::json!(["appkey", "description", "owner"]));
        let apps = listed["apps"].as_array().unwrap();
        assert!(apps.iter().any(|a| a["appkey"] == "kept_app" && a["owner"] == ""), "{listed:#}");
        assert!(apps.iter().any(|a| a["appkey"] == appkey.as_str() && a["owner"] == "bob"), "{listed:#}");
        let audit = ok_json(probe_in(&vars, &["audit", "--json"]).await);
        assert_eq!(audit["entries"][0]["actor"], actor.as_str(), "{audit:#}");
        assert_eq!(audit["entries"][0]["action"], "issue_credential");
        assert_eq!(audit["entries"][1]["action"], "add_app");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_migrate_creates_both_tables_in_an_empty_database() {
    with_database(&[], |vars| async move {
        let err = failed(probe_in(&vars, &["apps", "list"]).await);
        assert!(err.contains("table serviceapp is missing") && err.contains("probe db migrate"), "{err}");
        let migrated = ok(probe_in(&vars, &["db", "migrate"]).await);
        assert!(
            migrated.contains("CREATE TABLE IF NOT EXISTS serviceapp (") && migrated.contains("probe_audit"),
            "{migrated}"
        );
        assert!(ok(probe_in(&vars, &["db", "migrate", "--dry-run"]).await).starts_with("nothing to do"));
        let listed = ok(probe_in(&vars, &["apps", "list"]).await);
        assert!(listed.contains("no app is registered"), "{listed}");
    })
    .await;
}

/// `probe` fed `input` on stdin, in a blocking task.
async fn probe_input(args: &[&str], input: &str) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_probe"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(probe_vars())
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the probe binary runs");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("probe reads stdin");
        child.wait_with_output().expect("the probe binary ends")
    })
    .await
    .expect("the probe task ends")
}

/// A run that must exit with status 1: its stdout and stderr.
fn refused(out: Output) -> (String, String) {
    assert_eq!(out.status.code(), Some(1), "probe should have refused; it printed {}", stdout(&out));
    (stdout(&out), stderr(&out))
}

/// The service the rule tests give rules to.
const RULED: &str = "Ruled";

/// 90% of the calls to version 1, 10% to version 2.
const SPLIT: &str = "{\n  \"versions\": [\n    {\"version\": \"1\", \"share\": 90},\n    {\"version\": \"2\", \"share\": 10}\n  ]\n}\n";

/// A fresh app with two live nodes of [`RULED`] declaring versions "1" and "2", and a directory for
/// rule files; the nodes live while the session does.
struct RuleFixture {
    appkey: String,
    session: Box<dyn RegistrySession>,
    dir: std::path::PathBuf,
}

impl RuleFixture {
    async fn new(backends: &Backends) -> RuleFixture {
        let appkey = unique("cli_rules");
        let session = backends.registry.session().await.expect("a registry session");
        for (port, version) in [(7001, "1"), (7002, "2")] {
            let key = NodeKey::new(backends.env, &appkey, RULED, "127.0.0.1", port).unwrap();
            let mut data = NodeData::new("127.0.0.1", port);
            data.version = Some(version.to_owned());
            session.register(&key, &data).await.expect("the node registers");
        }
        let dir = std::env::temp_dir().join(&appkey);
        std::fs::create_dir_all(&dir).expect("a directory for rule files");
        RuleFixture { appkey, session, dir }
    }

    /// Writes a rule file; returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("the rule file is written");
        path.display().to_string()
    }

    /// Ends the nodes, deletes the rule documents and the files.
    async fn remove(self, backends: &Backends) {
        self.session.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
        let root = format!("{ZK_RULES_ROOT}/{}/{}", backends.env.as_str(), self.appkey);
        let raw = probe_tests::zookeeper().await.expect("the test ZooKeeper is reachable");
        let mut paths = vec![root];
        let mut i = 0;
        while let Some(parent) = paths.get(i).cloned() {
            for child in raw.list_children(&parent).await.unwrap_or_default() {
                paths.push(format!("{parent}/{child}"));
            }
            i += 1;
        }
        for path in paths.iter().rev() {
            let _ = raw.delete(path, None).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_set_shown_listed_and_rolled_back_with_audit_entries() {
    let backends = backends().await;
    let fx = RuleFixture::new(&backends).await;
    let app = fx.appkey.as_str();
    let actor = unique("cli:rules-test");
    let split = fx.file("split.json", SPLIT);
    let all_on_2 = fx.file("all_on_2.json", r#"{"versions": [{"version": "2", "share": 100}]}"#);

    let none = ok(probe(&["rules", "show", app, RULED]).await);
    assert!(none.contains(&format!("{app}/{RULED} has no rule in env dev")), "{none}");
    let set = ok(probe(&["--actor", &actor, "rules", "set", app, RULED, &split]).await);
    assert!(set.starts_with(&format!("rule of {app}/{RULED} set: revision 1 (store version 0)")), "{set}");
    let shown = ok(probe(&["rules", "show", app, RULED]).await);
    assert!(
        shown.starts_with(&format!(
            "rule of {app}/{RULED} in env dev: revision 1 (store version 0)\nversions 1 90%, 2 10%\n{{"
        )),
        "{shown}"
    );
    let shown = ok_json(probe(&["rules", "show", app, RULED, "--json"]).await);
    assert_eq!(
        (shown["revision"].as_u64(), shown["rule"]["versions"][1]["share"].as_f64()),
        (Some(1), Some(10.0))
    );

    let set = ok_json(probe(&["--json", "--actor", &actor, "rules", "set", app, RULED, &all_on_2]).await);
    assert_eq!(
        (set["revision"].as_u64(), set["version"].as_u64(), set["before_revision"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    let listed = ok_json(probe(&["rules", "history", app, RULED, "--json"]).await);
    let seen: Vec<(u64, u64, bool)> = listed["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["revision"].as_u64().unwrap(), r["version"].as_u64().unwrap(), r["current"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(seen, [(1, 0, false), (2, 1, true)], "{listed:#}");

    let rolled = ok(probe(&["--actor", &actor, "rules", "rollback", app, RULED, "1"]).await);
    assert!(
        rolled.starts_with(&format!(
            "rule of {app}/{RULED} rolled back to revision 1: now revision 3 (store version 2)"
        )),
        "{rolled}"
    );
    let table = ok(probe(&["rules", "history", app, RULED]).await);
    let rows: Vec<Vec<&str>> = table.lines().skip(2).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["1", "0", "versions", "1", "90%,", "2", "10%"], "{table}");
    assert_eq!(rows[1], ["2", "1", "versions", "2", "100%"], "{table}");
    assert_eq!(rows[2], ["3", "2", "yes", "versions", "1", "90%,", "2", "10%"], "{table}");
    let err = failed(probe(&["rules", "rollback", app, RULED, "9"]).await);
    assert!(err.contains("has no revision 9 (stored: 1, 2, 3)"), "{err}");

    let log = backends.audit.recent(200).await.unwrap();
    let target = format!("{app}/{RULED}");
    let mine: Vec<(&str, &str, &str)> = log
        .iter()
        .filter(|e| e.actor == actor)
        .map(|e| (e.action.as_str(), e.target.as_str(), e.after.as_str()))
        .collect();
    assert_eq!(
        mine,
        [
            ("rule_rollback", target.as_str(), "revision 3 (revision 1 again)"),
            ("rule_set", target.as_str(), "revision 2"),
            ("rule_set", target.as_str(), "revision 1"),
        ]
    );
    fx.remove(&backends).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_with_problems_are_refused_with_located_errors() {
    let backends = backends().await;
    let fx = RuleFixture::new(&backends).await;
    let app = fx.appkey.as_str();
    let sum = fx
        .file("sum.json", r#"{"versions": [{"version": "1", "share": 50}, {"version": "2", "share": 40}]}"#);
    let broken =
        fx.file("broken.json", "{\n  \"versions\": [\n    {\"version\": \"1\", \"share\": 100},\n  ]\n}\n");
    let unknown = fx.file(
        "unknown.json",
        r#"{"versions": [{"version": "1", "share": 50}, {"version": "3", "share": 50}]}"#,
    );

    for command in ["validate", "set"] {
        let (out, err) = refused(probe(&["rules", command, app, RULED, &sum]).await);
        assert_eq!(out, "", "problems go to stderr");
        assert!(err.starts_with(&format!("{sum}: /versions: the shares sum to 90, not 100\n")), "{err}");
        let (_, err) = refused(probe(&["rules", command, app, RULED, &broken]).await);
        assert!(err.starts_with(&format!("{broken}:4:3: trailing comma\n  4 |   ]\n    |   ^\n")), "{err}");
        let (_, err) = refused(probe(&["rules", command, app, RULED, &unknown]).await);
        assert!(
            err.starts_with(&format!("{unknown}: /versions/1/version: unknown version \"3\": no node of the service declares it (live: 1, 2)")),
            "{err}"
        );
    }
    let (_, err) = refused(probe(&["rules", "set", app, RULED, &unknown]).await);
    assert!(err.trim_end().ends_with("the rule was not set"), "{err}");
    let (out, _) = refused(probe(&["rules", "validate", app, RULED, &broken, "--json"]).await);
    let json: Value = serde_json::from_str(&out).expect("--json prints the problems on stdout");
    assert_eq!(
        (json["ok"].as_bool(), json["problems"][0]["line"].as_u64(), json["problems"][0]["column"].as_u64()),
        (Some(false), Some(4), Some(3)),
        "{json:#}"
    );
    let shown = ok_json(probe(&["rules", "show", app, RULED, "--json"]).await);
    assert_eq!(shown["exists"], false, "nothing was written: {shown:#}");

    let fine = ok(probe_input(&["rules", "validate", app, RULED, "-"], SPLIT).await);
    assert_eq!(fine, format!("ok: <stdin> is a valid rule for {app}/{RULED}: versions 1 90%, 2 10%\n"));
    let (_, err) = refused(probe_input(&["rules", "validate", app, RULED, "-"], "{\"versions\": [}").await);
    assert!(err.starts_with("<stdin>:1:15: "), "{err}");
    fx.remove(&backends).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_preview_shows_each_nodes_share_now_and_under_the_file() {
    let backends = backends().await;
    let fx = RuleFixture::new(&backends).await;
    let app = fx.appkey.as_str();
    let split = fx.file("split.json", SPLIT);

    let table = ok(probe(&["rules", "preview", app, RULED, &split, "--tag", "zone=a"]).await);
    let share = |node: &str, column: usize| -> f64 {
        let row = table.lines().find(|l| l.starts_with(node)).unwrap_or_else(|| panic!("{node} in {table}"));
        let cell = row.split_whitespace().nth(column).unwrap_or_default();
        cell.trim_end_matches('%').parse().unwrap_or_else(|_| panic!("{cell:?} is no percentage: {table}"))
    };
    let (one, two) = (format!("{RULED}_127.0.0.1_7001"), format!("{RULED}_127.0.0.1_7002"));
    // NODE VERSION TAGS TIER IN-ROTATION NOW NEW
    assert!((share(&one, 6) - 90.0).abs() < 1.0 && (share(&two, 6) - 10.0).abs() < 1.0, "{table}");
    assert!((share(&one, 5) - 50.0).abs() < 2.0, "no rule yet: by weight: {table}");
    assert!(table.contains("now: no rule") && table.contains("caller tags zone=a"), "{table}");

    let json = ok_json(probe(&["--json", "rules", "preview", app, RULED, &split]).await);
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!((nodes.len(), json["draws"].as_u64()), (2, Some(20_000)), "{json:#}");
    assert_eq!((nodes[0]["version"].as_str(), nodes[0]["in_rotation"].as_bool()), (Some("1"), Some(true)));
    let new = nodes[1]["new"].as_f64().unwrap();
    assert!((new - 0.1).abs() < 0.01, "{json:#}");
    fx.remove(&backends).await;
}

/// `probe apps add` with a credential file, `probe apps credential`, `probe zk secure` (dry run and
/// real) and `probe callers`, through the binary, under a ZooKeeper chroot of their own; the
/// secrets never appear in any of their outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_commands_issue_credentials_secure_zookeeper_and_set_caller_policies() {
    let chroot = format!("/{}", unique("cli_secure"));
    let operator = "cli-test-operator-secret-0123";
    let vars: Vec<(&'static str, String)> = probe_vars()
        .into_iter()
        .map(|(k, v)| if k == "PROBE_ZOOKEEPER" { (k, format!("{v}{chroot}")) } else { (k, v) })
        .chain([("PROBE_ZK_OPERATOR_SECRET", operator.to_owned())])
        .collect();
    ok(probe_in(&vars, &["db", "migrate"]).await);
    let appkey = unique("cli_sec");
    let dir = std::env::temp_dir().join(unique("cli_sec_files"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("first");
    let file_arg = file.display().to_string();
    let mut outputs = Vec::new();

    let added =
        ok_json(probe_in(&vars, &["--json", "apps", "add", &appkey, "--credential-file", &file_arg]).await);
    assert_eq!(added["credential"]["secured_path"], format!("/services/dev/{appkey}"), "{added:#}");
    outputs.push(added.to_string());
    let first = std::fs::read_to_string(&file).unwrap();
    assert!(first.starts_with(&format!("{appkey}:probe1.")), "the file holds appkey:secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let again = failed(
        probe_in(&vars, &["apps", "credential", "rotate", &appkey, "--credential-file", &file_arg]).await,
    );
    assert!(again.contains("exists already"), "an existing credential file is never overwritten: {again}");

    let second = dir.join("second").display().to_string();
    let rotated =
        probe_in(&vars, &["apps", "credential", "rotate", &appkey, "--credential-file", &second]).await;
    let text = stdout(&rotated);
    assert!(
        rotated.status.success() && text.contains("previous one stays valid"),
        "{text}{}",
        stderr(&rotated)
    );
    outputs.push(text);
    let shown = ok(probe_in(&vars, &["apps", "credential", "show", &appkey]).await);
    assert!(shown.contains("the previous one is still valid"), "{shown}");
    outputs.push(shown);
    let retired = ok(probe_in(&vars, &["apps", "credential", "retire", &appkey]).await);
    outputs.push(retired);

    // The tree is secured already by `apps add`; a dry run of `zk secure` finds nothing to change.
    let dry = ok_json(probe_in(&vars, &["--json", "zk", "secure", "--dry-run"]).await);
    assert_eq!(dry["dry_run"], true, "{dry:#}");
    assert_eq!(dry["changed"], 0, "{dry:#}");
    outputs.push(dry.to_string());
    let no_operator: Vec<(&'static str, String)> =
        vars.iter().filter(|(k, _)| *k != "PROBE_ZK_OPERATOR_SECRET").cloned().collect();
    let refused = failed(probe_in(&no_operator, &["zk", "secure"]).await);
    assert!(refused.contains("PROBE_ZK_OPERATOR_SECRET"), "{refused}");

    // Caller policies need a node: a stored one is enough.
    let backends = backends().await;
    let key =
        probe_runtime::registry::layout::NodeKey::new(backends.env, &appkey, "Directory", "127.0.0.1", 9)
            .unwrap();
    backends
        .settings
        .put(&key, &probe_runtime::registry::layout::NodeData::new("127.0.0.1", 9))
        .await
        .unwrap();
    let set = ok(probe_in(
        &vars,
        &["callers", "set", &appkey, "Directory", "--allow", "a_app,b_app", "--unauthenticated", "count"],
    )
    .await);
    assert!(set.contains("allow a_app, b_app; unauthenticated count"), "{set}");
    let added =
        ok(probe_in(&vars, &["callers", "set", &appkey, "Directory", "--add", "c_app", "--remove", "a_app"])
            .await);
    assert!(added.contains("allow b_app, c_app; unauthenticated count"), "{added}");
    let listed = ok_json(probe_in(&vars, &["--json", "callers", "show", &appkey]).await);
    assert_eq!(listed["nodes"][0]["callers"]["allow"], serde_json::json!(["b_app", "c_app"]), "{listed:#}");
    let bad = failed(
        probe_in(&vars, &["callers", "set", &appkey, "Directory", "--unauthenticated", "maybe"]).await,
    );
    assert!(bad.contains("allow, count, refuse"), "{bad}");
    ok(probe_in(&vars, &["callers", "clear", &appkey, "Directory"]).await);
    let stored = backends.settings.get(&key).await.unwrap().unwrap();
    assert_eq!(stored.callers, None, "cleared");
    outputs.push(ok(probe_in(&vars, &["audit", "--limit", "20"]).await));

    let secrets: Vec<String> = [first, std::fs::read_to_string(dir.join("second")).unwrap()]
        .iter()
        .map(|line| line.trim().split_once(':').unwrap().1.to_owned())
        .chain([operator.to_owned()])
        .collect();
    for output in &outputs {
        for secret in &secrets {
            assert!(!output.contains(secret.as_str()), "a secret appears in: {output}");
        }
    }
    backends.settings.remove(&key).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
