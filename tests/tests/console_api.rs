//! The console's API over HTTP against the real ZooKeeper, Redis and MariaDB: the access matrix
//! (401 without a token and nothing changes, 403 for the viewer, CSRF on cookie sessions) on a
//! real running node, with every change in the MySQL audit table and visible via `/api/audit`; and
//! a service's traffic rule through `/api/rules` (validate, apply with its 409 and 422, rollback)
//! with a discovering client's report of the revision it runs; a service's caller policy through
//! `/api/callers` (403 for the viewer and without CSRF, 422 for a bad document) reaching the running
//! provider, which refuses a caller without a credential until the policy is cleared, and the apps
//! list's credential status (MySQL's credential table) without a secret. Last, MySQL and Redis reached
//! through proxies that then close (the shared services keep running): `/api/health` and the data
//! endpoints name the backend that is down, its address and its setting, to viewers without the
//! database user or name.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use probe_runtime::client::{Channel, ClusterOptions};
use probe_runtime::config::{MySqlUrl, RedisUrl};
use probe_runtime::registry::layout::{NodeKey, Valid};
use probe_runtime::registry::mysql::MySqlApps;
use probe_runtime::registry::redis::RedisSettings;
use probe_runtime::registry::{Backends, Operator};
use probe_runtime::security::CallerPolicy;
use probe_runtime::server::PolicySource;
use probe_tests::console::{ADMIN, Answer, VIEWER, http, start_console};
use probe_tests::governance::{add_app, client, node_key, start_provider, wait_for_routes};
use probe_tests::proxy::Proxy;
use probe_tests::{mysql_url, real_backends, redis_url, unique};
use serde_json::{Value, json};

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The node's valid flag and weight as the registry holds them now.
async fn live(backends: &Backends, key: &NodeKey) -> Result<(u8, u32)> {
    let nodes = backends.registry.nodes(key.env(), key.appkey()).await?;
    let node = nodes.iter().find(|n| n.key == *key).context("the node left the registry")?;
    Ok((u8::from(node.data.valid.is_on()), node.data.weight.value() as u32))
}

/// The audit rows of `target` that `/api/audit` shows: (actor, action, before, after), newest first.
async fn audited(addr: SocketAddr, target: &str) -> Result<Vec<(String, String, String, String)>> {
    let answer =
        http(addr, "GET", "/api/audit?limit=500", &[("Authorization", &bearer(VIEWER))], None).await?;
    ensure!(answer.status == 200, "GET /api/audit: {answer:?}");
    let rows = answer.json.as_array().context("audit is not a list")?;
    let text = |e: &Value, f: &str| e[f].as_str().unwrap_or_default().to_owned();
    Ok(rows
        .iter()
        .filter(|e| e["target"] == target)
        .map(|e| (text(e, "actor"), text(e, "action"), text(e, "before"), text(e, "after")))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_api_on_real_services() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("console_api");
    add_app(&backends, &appkey).await?;
    let server = start_provider(&backends, &appkey, "api").await?;
    let key = node_key(&backends, &appkey, &server);
    let field = key.redis_field();
    let node = field.replace('|', "%7C");
    let (addr, stop) = start_console(&backends).await?;
    let (admin, viewer) = (bearer(ADMIN), bearer(VIEWER));
    let disable = format!("/api/nodes/{node}/disable");
    let new_app = unique("console_api_new");

    // Without a token: 401 everywhere, and nothing changes.
    for path in ["/api/apps", "/api/audit", "/api/whoami", &format!("/api/apps/{appkey}/nodes")] {
        assert_eq!(http(addr, "GET", path, &[], None).await?.status, 401, "GET {path}");
    }
    let answer = http(addr, "POST", &disable, &[], Some(json!({}))).await?;
    assert_eq!(answer.status, 401);
    assert!(answer.json["error"].as_str().unwrap_or_default().contains("log in"), "{answer:?}");
    let add = json!({ "appkey": new_app, "description": "console test", "owner": "tests" });
    assert_eq!(http(addr, "POST", "/api/apps", &[], Some(add.clone())).await?.status, 401);
    assert_eq!(live(&backends, &key).await?, (1, 10));

    // The viewer reads the real node but every change is 403.
    let answer =
        http(addr, "GET", &format!("/api/apps/{appkey}/nodes"), &[("Authorization", &viewer)], None).await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    let row = &answer.json["nodes"][0];
    assert_eq!((row["node"].as_str(), row["running"].as_bool()), (Some(field.as_str()), Some(true)));
    assert!(row["version"].is_string() && row["started_at"].is_u64(), "{row}");
    for (path, body) in [
        (disable.clone(), json!({})),
        (format!("/api/nodes/{node}/weight"), json!({ "weight": 0 })),
        ("/api/apps".to_owned(), add.clone()),
    ] {
        assert_eq!(
            http(addr, "POST", &path, &[("Authorization", &viewer)], Some(body)).await?.status,
            403,
            "{path}"
        );
    }
    assert_eq!(live(&backends, &key).await?, (1, 10));
    assert!(!backends.apps.contains(&new_app).await?, "an unauthorised request added the app");
    assert!(audited(addr, &field).await?.is_empty(), "a refused change was audited");

    // A browser session: the cookie alone is not enough to change something.
    let login = http(addr, "POST", "/api/login", &[], Some(json!({ "token": ADMIN, "user": "ops" }))).await?;
    assert_eq!(login.status, 200, "{login:?}");
    let set_cookie = login.header("set-cookie").context("login set no cookie")?;
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().context("empty cookie")?.to_owned();
    let csrf = login.json["csrf_token"].as_str().context("no CSRF token")?.to_owned();
    let answer = http(addr, "POST", &disable, &[("Cookie", &cookie)], Some(json!({}))).await?;
    assert_eq!(answer.status, 403, "{answer:?}");
    let wrong = [("Cookie", cookie.as_str()), ("X-CSRF-Token", "forged")];
    assert_eq!(http(addr, "POST", &disable, &wrong, Some(json!({}))).await?.status, 403);
    assert_eq!(live(&backends, &key).await?, (1, 10));

    // With the CSRF token the admin session disables the node: Redis, the live node and the audit.
    let with_csrf = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let answer = http(addr, "POST", &disable, &with_csrf, Some(json!({}))).await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json["live"], true);
    assert_eq!(live(&backends, &key).await?, (0, 10));
    assert_eq!(backends.settings.get(&key).await?.context("no settings")?.valid, Valid::off());

    // The admin token: weight and enable.
    let weight = format!("/api/nodes/{node}/weight");
    let answer =
        http(addr, "POST", &weight, &[("Authorization", &admin)], Some(json!({ "weight": 30 }))).await?;
    assert_eq!((answer.status, answer.json["after"]["weight"].as_u64()), (200, Some(30)), "{answer:?}");
    let enable = format!("/api/nodes/{node}/enable");
    assert_eq!(http(addr, "POST", &enable, &[("Authorization", &admin)], Some(json!({}))).await?.status, 200);
    assert_eq!(live(&backends, &key).await?, (1, 30));
    let rows = audited(addr, &field).await?;
    let expected = [
        ("console-api:admin", "enable", "weight=30 valid=0", "weight=30 valid=1"),
        ("console-api:admin", "set_weight", "weight=10 valid=0", "weight=30 valid=0"),
        ("console:admin/ops", "disable", "weight=10 valid=1", "weight=10 valid=0"),
    ];
    let rows: Vec<(&str, &str, &str, &str)> =
        rows.iter().map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str())).collect();
    assert_eq!(rows, expected);

    // Apps: added once into MySQL, audited; bad input and unknown nodes are explained.
    let answer = http(addr, "POST", "/api/apps", &[("Authorization", &admin)], Some(add.clone())).await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(http(addr, "POST", "/api/apps", &[("Authorization", &admin)], Some(add)).await?.status, 409);
    assert!(backends.apps.contains(&new_app).await?);
    let listed = http(addr, "GET", "/api/apps", &[("Authorization", &viewer)], None).await?;
    assert!(listed.json.as_array().is_some_and(|apps| apps.iter().any(|a| a["appkey"] == new_app.as_str())));
    assert_eq!(audited(addr, &new_app).await?.first().map(|r| r.1.as_str()), Some("add_app"));
    let services = http(addr, "GET", "/api/services?env=dev", &[("Authorization", &viewer)], None).await?;
    let ours =
        services.json["apps"].as_array().and_then(|a| a.iter().find(|a| a["appkey"] == appkey.as_str()));
    assert_eq!(ours.map(|a| a["nodes"].clone()), Some(json!(1)), "{services:?}");
    let stranger =
        NodeKey::new(backends.env, &appkey, "Directory", "127.0.0.1", 1)?.redis_field().replace('|', "%7C");
    let answer = http(
        addr,
        "POST",
        &format!("/api/nodes/{stranger}/disable"),
        &[("Authorization", &admin)],
        Some(json!({})),
    )
    .await?;
    assert_eq!(answer.status, 404, "{answer:?}");
    let answer =
        http(addr, "POST", "/api/nodes/not-a-node/disable", &[("Authorization", &admin)], Some(json!({})))
            .await?;
    assert_eq!(answer.status, 400, "{answer:?}");

    // Logout ends the session.
    let answer = http(addr, "POST", "/api/logout", &with_csrf, Some(json!({}))).await?;
    assert_eq!(answer.status, 200);
    assert_eq!(http(addr, "GET", "/api/whoami", &[("Cookie", &cookie)], None).await?.status, 401);

    drop(stop);
    backends.apps.remove(&new_app).await?;
    server.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_api_on_real_services() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("console_rules");
    add_app(&backends, &appkey).await?;
    let server = start_provider(&backends, &appkey, "rules").await?;
    let version = backends
        .registry
        .nodes(backends.env, &appkey)
        .await?
        .iter()
        .find_map(|n| n.data.version.clone())
        .context("the provider declares no version")?;
    // A discovering client: it reports the revision it runs to Redis.
    let channel = Channel::discover(&backends, &appkey, "Directory", ClusterOptions::default()).await?;
    let (addr, stop) = start_console(&backends).await?;
    let (admin, viewer) = (bearer(ADMIN), bearer(VIEWER));
    let rule = format!("/api/rules/{appkey}/Directory");
    let doc = |share: u32| {
        format!("{{\n  \"versions\": [\n    {{\"version\": {version:?}, \"share\": {share}}}\n  ]\n}}\n")
    };

    // The viewer checks a document: the bad share at its line and column.
    let answer = http(
        addr,
        "POST",
        &format!("{rule}/validate"),
        &[("Authorization", &viewer)],
        Some(json!({ "text": doc(120) })),
    )
    .await?;
    assert_eq!((answer.status, answer.json["ok"].clone()), (200, json!(false)), "{answer:?}");
    let problem = &answer.json["problems"][0];
    let column = doc(120).lines().nth(2).and_then(|l| l.find("120")).context("no share")? + 1;
    assert_eq!((problem["line"].clone(), problem["column"].clone()), (json!(3), json!(column)), "{answer:?}");
    let refused = http(
        addr,
        "POST",
        &format!("{rule}/apply"),
        &[("Authorization", &viewer)],
        Some(json!({ "text": doc(100) })),
    )
    .await?;
    assert_eq!(refused.status, 403);

    // A browser session applies with its CSRF token; a stale editor gets 409, a bad document 422.
    let login = http(addr, "POST", "/api/login", &[], Some(json!({ "token": ADMIN, "user": "ops" }))).await?;
    let cookie =
        login.header("set-cookie").and_then(|c| c.split(';').next()).context("no cookie")?.to_owned();
    let csrf = login.json["csrf_token"].as_str().context("no CSRF token")?.to_owned();
    let session = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let apply = format!("{rule}/apply");
    let answer = http(addr, "POST", &apply, &session, Some(json!({ "text": doc(100) }))).await?;
    assert_eq!((answer.status, answer.json["revision"].clone()), (200, json!(1)), "{answer:?}");
    let answer = http(addr, "POST", &apply, &session, Some(json!({ "text": doc(100) }))).await?;
    assert_eq!(answer.status, 409, "{answer:?}");
    let bad = json!({ "text": doc(50), "expected_version": 0 });
    let answer = http(addr, "POST", &apply, &[("Authorization", &admin)], Some(bad)).await?;
    assert_eq!((answer.status, answer.json["problems"][0]["pointer"].clone()), (422, json!("/versions")));
    let again = json!({ "text": doc(100), "expected_version": 0 });
    let answer = http(addr, "POST", &apply, &[("Authorization", &admin)], Some(again)).await?;
    assert_eq!((answer.status, answer.json["revision"].clone()), (200, json!(2)), "{answer:?}");
    let rollback = format!("{rule}/rollback");
    let answer = http(addr, "POST", &rollback, &session, Some(json!({ "revision": 7 }))).await?;
    assert_eq!(answer.status, 404, "{answer:?}");
    let answer = http(addr, "POST", &rollback, &session, Some(json!({ "revision": 1 }))).await?;
    assert_eq!((answer.status, answer.json["revision"].clone()), (200, json!(3)), "{answer:?}");

    // The client reports revision 3 (at once on the change): GET counts it on the current one.
    let started = std::time::Instant::now();
    let shown = loop {
        let shown = http(addr, "GET", &rule, &[("Authorization", &viewer)], None).await?;
        ensure!(shown.status == 200, "GET {rule}: {shown:?}");
        if shown.json["clients"]["on_current"] == 1 {
            break shown;
        }
        ensure!(started.elapsed().as_secs() < 10, "the client did not report revision 3: {shown:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        (shown.json["clients"]["total"].clone(), shown.json["clients"]["revision"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(
        (shown.json["rule"]["revision"].clone(), shown.json["history"].as_array().map(Vec::len)),
        (json!(3), Some(3))
    );
    let target = format!("{appkey}/Directory");
    let rows = audited(addr, &target).await?;
    let rows: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(
        rows,
        [
            ("console:admin/ops", "rule_rollback"),
            ("console-api:admin", "rule_set"),
            ("console:admin/ops", "rule_set"),
        ]
    );

    drop((channel, stop));
    server.shutdown().await?;
    Ok(())
}

/// Waits until the provider runs `expected` as `Directory`'s caller policy (`None`: no policy).
async fn runs_policy(
    server: &probe_runtime::server::ServerHandle,
    expected: Option<&CallerPolicy>,
) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let applied = server.caller_policies();
        let now = applied.get("Directory");
        if now.map(|a| (&a.policy, a.source)) == expected.map(|p| (p, PolicySource::Node)) {
            return Ok(());
        }
        ensure!(started.elapsed().as_secs() < 10, "the provider runs {applied:?}, not {expected:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_api_on_real_services() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("console_callers");
    add_app(&backends, &appkey).await?;
    let server = start_provider(&backends, &appkey, "callers").await?;
    let key = node_key(&backends, &appkey, &server);
    let field = key.redis_field();
    let (routes, client) = client(&backends, &appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "the node", |r| r.table.in_rotation().count() == 1).await?;
    let (addr, stop) = start_console(&backends).await?;
    let (admin, viewer) = (bearer(ADMIN), bearer(VIEWER));
    let callers = format!("/api/callers/{appkey}/Directory");
    let refuse = json!({ "unauthenticated": "refuse" });
    let node_callers = || async {
        let stored = backends.settings.get(&key).await?.and_then(|d| d.callers);
        let nodes = backends.registry.nodes(backends.env, &appkey).await?;
        let live = nodes.into_iter().find(|n| n.key == key).and_then(|n| n.data.callers);
        anyhow::Ok((stored, live))
    };

    // The viewer reads but cannot change; a cookie session needs its CSRF token.
    let answer = http(addr, "GET", &callers, &[("Authorization", &viewer)], None).await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json["nodes"][0]["running"], true, "{answer:?}");
    for method in ["PUT", "DELETE"] {
        let body = (method == "PUT").then(|| refuse.clone());
        let answer = http(addr, method, &callers, &[("Authorization", &viewer)], body).await?;
        assert_eq!(answer.status, 403, "{method}: {answer:?}");
    }
    let login = http(addr, "POST", "/api/login", &[], Some(json!({ "token": ADMIN, "user": "ops" }))).await?;
    let cookie =
        login.header("set-cookie").and_then(|c| c.split(';').next()).context("no cookie")?.to_owned();
    let csrf = login.json["csrf_token"].as_str().context("no CSRF token")?.to_owned();
    let answer = http(addr, "PUT", &callers, &[("Cookie", &cookie)], Some(refuse.clone())).await?;
    assert_eq!(answer.status, 403, "{answer:?}");

    // A bad document: 422 with its problems, and nothing written.
    let bad = json!({ "allow": ["bad-app"], "unauthenticated": "sometimes" });
    let answer = http(addr, "PUT", &callers, &[("Authorization", &admin)], Some(bad)).await?;
    assert_eq!(answer.status, 422, "{answer:?}");
    let pointers: Vec<&str> = answer.json["problems"]
        .as_array()
        .context("no problems")?
        .iter()
        .filter_map(|p| p["pointer"].as_str())
        .collect();
    assert_eq!(pointers, ["/allow/0", "/unauthenticated"], "{answer:?}");
    assert_eq!(node_callers().await?, (None, None));

    // The admin session refuses callers that prove no appkey: Redis and the live node hold it,
    // the provider runs it, and this client's calls (no credential) are refused.
    let session = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let answer = http(addr, "PUT", &callers, &session, Some(refuse.clone())).await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json["summary"], "any proven caller; unauthenticated refuse");
    let stored = json!({ "unauthenticated": "refuse" });
    assert_eq!(node_callers().await?, (Some(stored.clone()), Some(stored)));
    let policy = CallerPolicy::from_json(&refuse).map_err(|p| anyhow::anyhow!("{p:?}"))?;
    runs_policy(&server, Some(&policy)).await?;
    let refused = client.ping("hi".into()).await.err().context("a call without a credential was served")?;
    assert!(refused.to_string().contains("serves only authenticated callers"), "{refused}");
    let stats = server.caller_stats();
    assert_eq!(stats.iter().map(|s| s.refused[1]).sum::<u64>(), 1, "{stats:?}");

    // The view names the allowed apps without a credential (MySQL's credential table).
    let allow = json!({ "allow": [appkey], "unauthenticated": "count" });
    let answer = http(addr, "PUT", &callers, &[("Authorization", &admin)], Some(allow)).await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    let view = http(addr, "GET", &callers, &[("Authorization", &viewer)], None).await?;
    assert_eq!(view.json["without_credential"], json!([appkey]), "{view:?}");
    assert_eq!(view.json["nodes"][0]["summary"], format!("allow {appkey}; unauthenticated count"));

    // DELETE clears it everywhere; the client is served again.
    let answer = http(addr, "DELETE", &callers, &session, None).await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(node_callers().await?, (None, None));
    runs_policy(&server, None).await?;
    assert_eq!(client.ping("hi".into()).await?, "callers");

    let rows = audited(addr, &field).await?;
    let rows: Vec<(&str, &str, &str)> =
        rows.iter().map(|r| (r.0.as_str(), r.1.as_str(), r.3.as_str())).collect();
    let allowed = format!(r#"callers={{"allow":["{appkey}"],"unauthenticated":"count"}}"#);
    assert_eq!(
        rows,
        [
            ("console:admin/ops", "set_callers", "callers=none"),
            ("console-api:admin", "set_callers", allowed.as_str()),
            ("console:admin/ops", "set_callers", r#"callers={"unauthenticated":"refuse"}"#),
        ]
    );

    // The apps list says whether the app has a credential, never what it is.
    let credential = |apps: &Value| {
        apps.as_array()
            .and_then(|a| a.iter().find(|a| a["appkey"] == appkey.as_str()))
            .map(|a| a["credential"].clone())
    };
    let apps = http(addr, "GET", "/api/apps", &[("Authorization", &viewer)], None).await?;
    assert_eq!(credential(&apps.json), Some(json!({ "state": "none", "previous_valid": false })), "{apps:?}");
    let issued = Operator::new(backends.clone()).issue_credential(&appkey).await?;
    let apps = http(addr, "GET", "/api/apps", &[("Authorization", &admin)], None).await?;
    let expected =
        json!({ "state": "issued", "issued_at_ms": issued.stored.issued_at_ms, "previous_valid": false });
    assert_eq!(credential(&apps.json), Some(expected), "{apps:?}");
    let text = apps.json.to_string();
    for hidden in [issued.credential.secret.expose(), issued.stored.caller_key.as_str()] {
        ensure!(!text.contains(hidden), "the apps list holds a secret or key");
    }
    ensure!(
        !text.contains(issued.stored.zk_digest.split(':').nth(1).unwrap_or("?")),
        "the apps list holds a digest"
    );

    drop((stop, client, routes));
    server.shutdown().await?;
    Ok(())
}

/// `url` with its `host:port` replaced by `proxy`'s address.
fn through(url: &str, host: &str, port: u16, proxy: &Proxy) -> Result<String> {
    let direct = format!("@{host}:{port}/");
    let (direct, via) = match url.contains(&direct) {
        true => (direct, format!("@{}/", proxy.addr)),
        false => (format!("//{host}:{port}/"), format!("//{}/", proxy.addr)),
    };
    ensure!(url.contains(&direct), "cannot find {direct} in the test URL {url}");
    Ok(url.replacen(&direct, &via, 1))
}

/// The health row of `backend` (`mysql`, ...) in a `/api/health` answer.
fn health_row<'a>(answer: &'a Answer, backend: &str) -> Result<&'a Value> {
    let rows = answer.json["backends"].as_array().context("no backends in /api/health")?;
    rows.iter().find(|r| r["backend"] == backend).with_context(|| format!("no {backend} row: {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_names_the_backend_that_is_down() -> Result<()> {
    let real = real_backends().await?;
    let mysql: MySqlUrl = mysql_url().parse()?;
    let mut mysql_proxy = Proxy::start(format!("{}:{}", mysql.host(), mysql.port())).await?;
    // Over TCP only: the client would switch to MariaDB's Unix socket on loopback, past the proxy.
    let proxied_mysql = through(&mysql_url(), mysql.host(), mysql.port(), &mysql_proxy)?;
    ensure!(!proxied_mysql.contains('?'), "the test URL has options already: {proxied_mysql}");
    let proxied_mysql: MySqlUrl = format!("{proxied_mysql}?prefer_socket=false").parse()?;
    let apps = MySqlApps::connect(&proxied_mysql).await?;
    let redis: RedisUrl = redis_url().parse()?;
    let mut redis_proxy = Proxy::start(format!("{}:{}", redis.host(), redis.port())).await?;
    let proxied_redis: RedisUrl = through(&redis_url(), redis.host(), redis.port(), &redis_proxy)?.parse()?;
    let settings = Arc::new(RedisSettings::connect(&proxied_redis).await?);
    let backends = Backends {
        apps: Arc::new(apps.clone()),
        audit: Arc::new(apps),
        settings: settings.clone(),
        metrics: settings,
        ..real
    };
    let (addr, stop) = start_console(&backends).await?;
    let (admin, viewer) = (bearer(ADMIN), bearer(VIEWER));

    // All three answer.
    let health = http(addr, "GET", "/api/health", &[("Authorization", &viewer)], None).await?;
    assert_eq!((health.status, health.json["ok"].clone()), (200, json!(true)), "{health:?}");
    assert_eq!(http(addr, "GET", "/api/health", &[], None).await?.status, 401);

    // MySQL goes away: its port refuses connections.
    mysql_proxy.close().await;
    let public_mysql = format!("mysql://{}", mysql_proxy.addr);
    let health = http(addr, "GET", "/api/health", &[("Authorization", &viewer)], None).await?;
    println!("health with MySQL down, as a viewer: {}", health.json);
    assert_eq!((health.status, health.json["ok"].clone()), (200, json!(false)), "{health:?}");
    assert_eq!(health.json["down"], json!(["mysql"]));
    let row = health_row(&health, "mysql")?;
    let error = row["error"].as_str().context("no error for MySQL")?;
    assert_eq!(row["setting"], "PROBE_MYSQL");
    assert!(error.contains("MySQL") && error.contains("PROBE_MYSQL"), "{error}");
    assert_eq!(row["address"], public_mysql.as_str(), "{row}");
    for secret in [format!("{}:", "probe"), mysql.database().to_owned(), "***".to_owned()] {
        assert!(!row.to_string().contains(&secret), "{secret} in {row}");
    }
    assert_eq!(health_row(&health, "zookeeper")?["ok"], true);
    assert_eq!(health_row(&health, "redis")?["ok"], true);

    // A data endpoint says the same to a viewer, and the backend's own words to an admin.
    let apps = http(addr, "GET", "/api/apps", &[("Authorization", &viewer)], None).await?;
    println!("GET /api/apps with MySQL down, as a viewer: {} {}", apps.status, apps.json);
    assert_eq!(apps.status, 502, "{apps:?}");
    let error = apps.json["error"].as_str().context("no error")?;
    assert!(
        error.contains(&format!("MySQL at {public_mysql} is unreachable")) && error.contains("PROBE_MYSQL"),
        "{error}"
    );
    assert!(!error.contains(mysql.database()), "{error}");
    let apps = http(addr, "GET", "/api/apps", &[("Authorization", &admin)], None).await?;
    let error = apps.json["error"].as_str().context("no error")?;
    assert!(error.contains("MySQL") && error.contains(&format!("@{}/", mysql_proxy.addr)), "{error}");
    assert!(!error.contains(":probe@"), "the password shows: {error}");

    // Redis too.
    redis_proxy.close().await;
    let health = http(addr, "GET", "/api/health", &[("Authorization", &admin)], None).await?;
    println!("health with MySQL and Redis down, as an admin: {}", health.json);
    assert_eq!(health.json["down"], json!(["redis", "mysql"]), "{health:?}");
    let error = health_row(&health, "redis")?["error"].as_str().context("no error for Redis")?;
    assert!(error.contains("Redis") && error.contains("PROBE_REDIS"), "{error}");
    drop(stop);
    Ok(())
}
