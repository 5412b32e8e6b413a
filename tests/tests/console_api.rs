//! The console's API over HTTP against the real ZooKeeper, Redis and MariaDB: the access matrix
//! (401 without a token and nothing changes, 403 for the viewer, CSRF on cookie sessions) on a
//! real running node, with every change in the MySQL audit table and visible via `/api/audit`; and
//! a service's traffic rule through `/api/rules` (validate, apply with its 409 and 422, rollback)
//! with a discovering client's report of the revision it runs.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail, ensure};
use probe_runtime::client::{Channel, ClusterOptions};
use probe_runtime::registry::Backends;
use probe_runtime::registry::layout::{NodeKey, Valid};
use probe_tests::console::{ADMIN, VIEWER, start_console};
use probe_tests::governance::{add_app, node_key, start_provider};
use probe_tests::{real_backends, unique};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP answer: status, headers (lower-case names) and the JSON body (`Null` if none).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    json: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), as a browser or curl sends it.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Result<Answer> {
    let mut stream = TcpStream::connect(addr).await.context("cannot connect to the console")?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() {
        request += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    }
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += "\r\n";
    request += &body;
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw).context("the answer is not UTF-8")?;
    let (head, body) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).context("no status line")?.parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")) {
        bail!("unexpected chunked answer to {method} {path}");
    }
    let json = serde_json::from_str(body).unwrap_or(Value::Null);
    Ok(Answer { status, headers, json })
}

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
