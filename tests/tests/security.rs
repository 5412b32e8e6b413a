//! Security on the real services: ZooKeeper ACLs per appkey (`probe zk secure`, credentials
//! issued by the operator), caller tokens checked against per-service allow-lists changed live,
//! and secrets kept out of every output.
//!
//! The ZooKeeper tests run under a chroot of their own, so securing `/services/dev` there leaves
//! the other tests' tree alone. Prints `security:` lines with what was measured.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use probe_runtime::client::ClusterOptions;
use probe_runtime::config::Config;
use probe_runtime::registry::layout::{NodeData, NodeKey};
use probe_runtime::registry::{Backends, Operator};
use probe_runtime::security::{AppCredential, CallerPolicy, OPERATOR_USER, Secret, Unauthenticated};
use probe_tests::governance::{
    add_app, client, node_key, start_provider, start_publishing_provider, wait_for_routes,
};
use probe_tests::{probe_vars, unique, zk_addr};

/// Backends on the test services with the ZooKeeper chroot `chroot` and extra `PROBE_*` settings.
async fn backends(chroot: &str, extra: &[(&'static str, String)]) -> Result<Backends> {
    let vars = probe_vars()
        .into_iter()
        .map(|(name, value)| match name {
            "PROBE_ZOOKEEPER" => (name, format!("{}{chroot}", zk_addr())),
            _ => (name, value),
        })
        .chain(extra.iter().cloned());
    let config = Config::from_vars(vars).context("bad test configuration")?;
    Backends::connect(&config)
        .await
        .context("the test services are unreachable; start them with `scripts/services.sh up`")
}

/// Makes sure the database has probe's tables (the credentials table among them).
async fn migrated() -> Result<()> {
    let url = probe_tests::mysql_url().parse().context("bad PROBE_TEST_MYSQL")?;
    probe_runtime::registry::mysql::MySqlApps::connect_and_ensure_schema(&url).await?;
    Ok(())
}

/// Deletes the chroot's tree as the operator (the only one who may, once it is secured).
async fn remove_secured_tree(chroot: &str, operator: &Secret) -> Result<()> {
    let auth = format!("{OPERATOR_USER}:{}", operator.expose());
    let raw = zookeeper_client::Client::connector()
        .with_auth("digest", auth.as_bytes())
        .connect(&zk_addr())
        .await
        .context("ZooKeeper is unreachable; start it with `scripts/services.sh up`")?;
    probe_tests::remove_tree_with(&raw, chroot).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zookeeper_acls_keep_each_app_to_its_own_nodes() -> Result<()> {
    migrated().await?;
    let chroot = format!("/{}", unique("security_acl"));
    let operator_secret = Secret::generate();
    let result = acl_scenario(&chroot, &operator_secret).await;
    remove_secured_tree(&chroot, &operator_secret).await?;
    result
}

async fn acl_scenario(chroot: &str, operator_secret: &Secret) -> Result<()> {
    let (app_a, app_b) = (unique("sec_a"), unique("sec_b"));
    // An unsecured tree first: the app registered, a provider running, as before security.
    let plain = backends(chroot, &[]).await?;
    add_app(&plain, &app_a).await?;
    add_app(&plain, &app_b).await?;
    let plain_op = Operator::new(plain.clone()).with_actor("test");
    let issued_a = plain_op.issue_credential(&app_a).await?;
    ensure!(issued_a.secured.is_none(), "without the operator's secret no path is secured");
    let issued_b = plain_op.issue_credential(&app_b).await?;
    let legacy = start_provider(&plain, &app_a, "legacy").await?;

    // The operator secures the env: a dry run writes nothing, then the real run.
    let operator =
        backends(chroot, &[("PROBE_ZK_OPERATOR_SECRET", operator_secret.expose().to_owned())]).await?;
    let op = Operator::new(operator.clone()).with_actor("test");
    let app_path = format!("/services/dev/{app_a}");
    let dry = op.secure_zk(operator.env, true).await?;
    let planned = dry.paths.iter().filter(|c| c.changes()).count();
    let still = operator.registry.acl(&app_path).await?.context("the app path exists")?;
    ensure!(!probe_runtime::security::acl::is_secured(&still), "the dry run changed {app_path}: {still:?}");
    ensure!(planned == 4, "the dry run plans /services, /services/dev, the app path and its node: {planned}");
    let secured = op.secure_zk(operator.env, false).await?;
    let acl = operator.registry.acl(&app_path).await?.context("the app path exists")?;
    ensure!(probe_runtime::security::acl::is_secured(&acl), "{app_path} is not secured: {acl:?}");
    let again = op.secure_zk(operator.env, true).await?;
    ensure!(again.paths.iter().all(|c| !c.changes()), "securing twice changes nothing: {:?}", again.paths);

    // A provider without its app's credential cannot register, naming the credential.
    let refused = match start_provider(&plain, &app_a, "anonymous").await {
        Ok(server) => {
            server.shutdown().await?;
            bail!("a provider without a credential registered under a secured app path")
        }
        Err(e) => format!("{e:#}"),
    };
    ensure!(refused.contains("PROBE_APP_CREDENTIAL"), "the refusal does not name the credential: {refused}");

    // With it, it registers; the running legacy node stayed.
    let credential_a = [("PROBE_APP_CREDENTIAL", format!("{app_a}:{}", issued_a.credential.secret.expose()))];
    let with_a = backends(chroot, &credential_a).await?;
    let provider = start_provider(&with_a, &app_a, "secured").await?;
    let (routes, _directory) = client(&plain, &app_a, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "both providers", |r| r.table.in_rotation().count() == 2).await?;

    // Another app's credential cannot touch the node: neither change it nor create beside it.
    let credential_b = [("PROBE_APP_CREDENTIAL", format!("{app_b}:{}", issued_b.credential.secret.expose()))];
    let with_b = backends(chroot, &credential_b).await?;
    let key = node_key(&with_a, &app_a, &provider);
    let live = with_b.registry.node(&key).await?.context("everyone reads the node")?;
    let mut changed = live.clone();
    changed.weight = 1.into();
    let update = with_b.registry.update(&key, &changed).await;
    ensure!(update.is_err(), "app B changed app A's node");
    let intruder = NodeKey::new(with_b.env, &app_a, "Directory", "127.0.0.1", 1)?;
    let session = with_b.registry.session().await?;
    let created = session.register(&intruder, &NodeData::new("127.0.0.1", 1)).await;
    ensure!(created.is_err(), "app B created a node under app A");
    let update_error = update.unwrap_err().to_string();

    // The operator changes data: a weight, on both nodes.
    op.set_weight(&key, 5).await?;
    op.set_weight(&node_key(&plain, &app_a, &legacy), 0).await?;
    wait_for_routes(&routes, "the operator's weights", |r| r.table.in_rotation().count() == 1).await?;
    println!(
        "security: zk secure: {planned} paths planned by the dry run, {} changed; a provider without its \
         credential: {refused:?}; another app's update: {update_error:?}",
        secured.paths.iter().filter(|c| c.changes()).count()
    );
    // A Python provider (kazoo) registers under the secured path with the README's auth_data line,
    // and not without it.
    let kazoo =
        kazoo_registers(chroot, &app_path, &format!("{app_a}:{}", issued_a.credential.secret.expose()))
            .await?;
    ensure!(kazoo["without"] == "NoAuth" && kazoo["with"] == "created", "kazoo: {kazoo}");
    println!("security: kazoo provider: {kazoo}");
    provider.shutdown().await?;
    legacy.shutdown().await?;
    Ok(())
}

/// What a kazoo client does creating an ephemeral node under `app_path`: without auth data, and
/// with `auth_data=[("digest", credential)]`.
async fn kazoo_registers(chroot: &str, app_path: &str, credential: &str) -> Result<serde_json::Value> {
    let peers = probe_tests::python_registry::RegistryPeers::from_env()?;
    let script = r#"
import json, sys
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
hosts, path, credential = sys.argv[1], sys.argv[2], sys.argv[3]
seen = {}
for name, auth_data in [("without", None), ("with", [("digest", credential)])]:
    zk = KazooClient(hosts=hosts, auth_data=auth_data)
    zk.start(timeout=10)
    try:
        zk.create(path + "/Python_127.0.0.1_" + str(len(seen) + 1), b'{"host": "127.0.0.1", "port": 1, "weight": 10, "valid": 1}', ephemeral=True)
        seen[name] = "created"
    except NoAuthError:
        seen[name] = "NoAuth"
    finally:
        zk.stop()
print(json.dumps(seen))
"#;
    let hosts = format!("{}{chroot}", zk_addr());
    let (python, path, credential) = (peers.python().to_owned(), app_path.to_owned(), credential.to_owned());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python).args(["-c", script, &hosts, &path, &credential]).output()
    })
    .await?
    .context("cannot run the kazoo client")?;
    ensure!(output.status.success(), "kazoo failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// Waits until `server`'s caller policy of `Directory` is `expected`.
async fn wait_for_policy(
    server: &probe_runtime::server::ServerHandle,
    expected: &CallerPolicy,
) -> Result<Duration> {
    let started = Instant::now();
    let mut changes = server.caller_policy_changes();
    loop {
        if server.caller_policies().get("Directory").map(|a| &a.policy) == Some(expected) {
            return Ok(started.elapsed());
        }
        if tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.is_err() {
            bail!("the policy {expected} did not apply within 10 s: {:?}", server.caller_policies());
        }
    }
}

/// The answer of one ping, or the error's text.
async fn ping(directory: &probe_tests::idl::interop::DirectoryClient) -> Result<String, String> {
    directory.ping("hi".into()).await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_prove_their_appkey_and_allow_lists_change_live() -> Result<()> {
    migrated().await?;
    let backends = probe_tests::real_backends().await?;
    let (provider_app, good, bad) = (unique("sec_p"), unique("sec_good"), unique("sec_bad"));
    for appkey in [&provider_app, &good, &bad] {
        add_app(&backends, appkey).await?;
    }
    let op = Operator::new(backends.clone()).with_actor("test");
    let good_credential = op.issue_credential(&good).await?.credential;
    let bad_credential = op.issue_credential(&bad).await?.credential;
    let server = start_publishing_provider(&backends, &provider_app, "p", Duration::from_millis(200)).await?;
    let key = node_key(&backends, &provider_app, &server);

    let caller = |credential: Option<AppCredential>| {
        let backends = backends.clone();
        let provider_app = provider_app.clone();
        async move {
            let mut options = ClusterOptions::default();
            options.credential = credential;
            let (routes, directory) = client(&backends, &provider_app, options).await?;
            wait_for_routes(&routes, "the provider", |r| r.table.in_rotation().count() == 1).await?;
            anyhow::Ok(directory)
        }
    };
    let good_client = caller(Some(good_credential.clone())).await?;
    let bad_client = caller(Some(bad_credential.clone())).await?;
    let anonymous = caller(None).await?;
    // A caller claiming the good appkey with a secret that is not its own.
    let forged = caller(Some(AppCredential::new(&good, Secret::generate())?)).await?;

    // Without a policy everyone is served.
    for directory in [&good_client, &bad_client, &anonymous, &forged] {
        ensure!(ping(directory).await == Ok("p".into()), "a call without a policy failed");
    }

    // Only `good`, and no unauthenticated callers.
    let policy = CallerPolicy {
        allow: Some(BTreeSet::from([good.clone()])),
        unauthenticated: Unauthenticated::Refuse,
    };
    op.set_service_callers(&provider_app, "Directory", Some(&policy)).await?;
    let applied_in = wait_for_policy(&server, &policy).await?;
    ensure!(ping(&good_client).await == Ok("p".into()), "the allowed caller was refused");
    let not_allowed = ping(&bad_client).await.err().context("a caller off the list was served")?;
    ensure!(not_allowed.contains("not on the allow-list") && not_allowed.contains(&bad), "{not_allowed}");
    let unproven = ping(&anonymous).await.err().context("an unauthenticated caller was served")?;
    ensure!(unproven.contains("proved no appkey"), "{unproven}");
    let bad_signature = ping(&forged).await.err().context("a forged credential was served")?;
    ensure!(bad_signature.contains("bad signature"), "{bad_signature}");

    // Live: `bad` joins the list; unauthenticated callers are counted, not refused.
    let mut wider = policy.clone();
    wider.allow.get_or_insert_with(BTreeSet::new).insert(bad.clone());
    wider.unauthenticated = Unauthenticated::Count;
    op.set_service_callers(&provider_app, "Directory", Some(&wider)).await?;
    let widened_in = wait_for_policy(&server, &wider).await?;
    ensure!(ping(&bad_client).await == Ok("p".into()), "the caller added live was refused");
    ensure!(ping(&anonymous).await == Ok("p".into()), "a counted unauthenticated caller was refused");
    ensure!(ping(&forged).await.is_err(), "a forged credential is refused under any policy");

    let stats = server.caller_stats();
    let directory = stats.iter().find(|s| s.service == "Directory").context("no caller stats")?;
    ensure!(
        directory.refused == [1, 1, 2],
        "refusals by reason (not_allowed, unauthenticated, bad): {:?}",
        directory.refused
    );
    ensure!(directory.unauthenticated == 1, "counted unauthenticated calls: {}", directory.unauthenticated);
    let peers: Vec<String> = directory.recent_refusals.iter().map(|r| r.peer.to_string()).collect();
    ensure!(
        peers.iter().all(|p| p.starts_with("127.0.0.1:")),
        "refusals keep the caller's address: {peers:?}"
    );
    let metrics = probe_runtime::metrics::global().render();
    ensure!(metrics.contains("probe_server_refused_callers_total"), "no refusal metric");
    // The node's metrics windows carry the refusals too, for the console and `probe nodes list`.
    let started = Instant::now();
    let by_reason = loop {
        let mut by_reason = std::collections::BTreeMap::<String, u64>::new();
        for window in backends.metrics.history(&key).await? {
            for (reason, n) in window.refused_callers_by_reason {
                *by_reason.entry(reason).or_default() += n;
            }
        }
        if by_reason.values().sum::<u64>() == 4 || started.elapsed() > Duration::from_secs(10) {
            break by_reason;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let expected = [("bad_credential", 2), ("not_allowed", 1), ("unauthenticated", 1)];
    ensure!(
        by_reason.iter().map(|(r, n)| (r.as_str(), *n)).eq(expected),
        "refusals in the published windows: {by_reason:?}, not {expected:?}"
    );

    // Cleared: every caller is served again.
    op.set_service_callers(&provider_app, "Directory", None).await?;
    let started = Instant::now();
    while !server.caller_policies().is_empty() {
        ensure!(started.elapsed() < Duration::from_secs(10), "the cleared policy still applies");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(ping(&bad_client).await.is_ok() && ping(&forged).await.is_ok(), "calls after clearing failed");
    println!(
        "security: callers: allow-list applied in {applied_in:?}, widened live in {widened_in:?}; refused: \
         {not_allowed:?}; {unproven:?}; {bad_signature:?}"
    );
    server.shutdown().await?;
    Ok(())
}

/// A log writer that keeps every line, to search for secrets.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn secrets_never_reach_logs_errors_metrics_or_json() -> Result<()> {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let outputs = tracing::subscriber::with_default(subscriber, || runtime.block_on(secrets_scenario()))?;
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        .into_owned();
    let (secrets, texts) = outputs;
    let mut searched = texts;
    searched.push(("logs".into(), logs));
    let mut bytes = 0;
    for (what, text) in &searched {
        bytes += text.len();
        for secret in &secrets {
            ensure!(!text.contains(secret.as_str()), "a secret appears in {what}");
            // Nor its distinctive body (in case of other quoting).
            let body = secret.split('.').nth(1).unwrap_or(secret);
            ensure!(!text.contains(body), "a secret's body appears in {what}");
        }
    }
    println!(
        "security: secrets grep: {} secrets, {} outputs ({} KB: logs, errors, metrics, CLI JSON and text, console API) — none found",
        secrets.len(),
        searched.len(),
        bytes / 1024
    );
    Ok(())
}

/// Issues credentials (to files), runs callers and operator tools with them, and returns the
/// secrets used and every output made: errors, metrics, CLI reports.
async fn secrets_scenario() -> Result<(Vec<String>, Vec<(String, String)>)> {
    migrated().await?;
    let backends = probe_tests::real_backends().await?;
    let (provider_app, caller_app) = (unique("sec_grep_p"), unique("sec_grep_c"));
    add_app(&backends, &provider_app).await?;
    let dir = tempdir()?;
    let file = dir.join("caller.credential");
    let op = Operator::new(backends.clone()).with_actor("test");
    let mut outputs: Vec<(String, String)> = Vec::new();
    fn report(outputs: &mut Vec<(String, String)>, what: &str, r: &probe_console::cli::output::Report) {
        outputs.push((format!("{what} --json"), r.json.to_string()));
        outputs.push((format!("{what} text"), r.text.clone()));
        outputs.push((format!("{what} warnings"), r.warnings.join("\n")));
    }
    let app = probe_runtime::registry::App::new(&caller_app);
    let out = probe_console::cli::security::SecretOut::new(Some(&file), true)?;
    let added = probe_console::cli::apps::add_with_credential(&op, app, Some(out)).await?;
    report(&mut outputs, "probe apps add", &added);
    let text = std::fs::read_to_string(&file)?;
    let credential: AppCredential = text.trim().parse()?;
    let rotated_file = dir.join("rotated.credential");
    let rotated = probe_console::cli::security::rotate(
        &op,
        &caller_app,
        probe_console::cli::security::SecretOut::new(Some(&rotated_file), true)?,
    )
    .await?;
    report(&mut outputs, "probe apps credential rotate", &rotated);
    let rotated_credential: AppCredential = std::fs::read_to_string(&rotated_file)?.trim().parse()?;
    report(
        &mut outputs,
        "probe apps credential show",
        &probe_console::cli::security::show(&op, &caller_app).await?,
    );
    let no_json = probe_console::cli::security::SecretOut::new(None, true)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    outputs.push(("--json without a credential file".into(), no_json));

    let server = start_provider(&backends, &provider_app, "p").await?;
    let policy =
        CallerPolicy { allow: Some(BTreeSet::from([caller_app.clone()])), ..CallerPolicy::default() };
    op.set_service_callers(&provider_app, "Directory", Some(&policy)).await?;
    wait_for_policy(&server, &policy).await?;
    report(
        &mut outputs,
        "probe callers show",
        &probe_console::cli::security::callers_show(&op, &provider_app, None).await?,
    );
    for credential in [credential.clone(), rotated_credential.clone()] {
        let mut options = ClusterOptions::default();
        options.credential = Some(credential);
        let (routes, directory) = client(&backends, &provider_app, options).await?;
        wait_for_routes(&routes, "the provider", |r| r.table.in_rotation().count() == 1).await?;
        ensure!(ping(&directory).await == Ok("p".into()), "a credential's call failed");
    }
    // Failures, whose messages must not carry the secret either: a forged and a mangled credential.
    let forged = AppCredential::new(&caller_app, Secret::generate())?;
    let mut options = ClusterOptions::default();
    options.credential = Some(forged.clone());
    let (_, directory) = client(&backends, &provider_app, options).await?;
    outputs.push(("a forged caller's error".into(), ping(&directory).await.err().unwrap_or_default()));
    let mangled = format!("{caller_app}:{}x", credential.secret.expose());
    outputs.push((
        "a bad credential's error".into(),
        mangled.parse::<AppCredential>().err().map(|e| e.to_string()).unwrap_or_default(),
    ));
    let bad_config = Config::from_vars([
        ("PROBE_APP_CREDENTIAL", mangled.clone()),
        ("PROBE_ZOOKEEPER", "embedded".into()),
    ])
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    outputs.push(("a bad PROBE_APP_CREDENTIAL".into(), bad_config));
    outputs
        .push(("Debug of the credential".into(), format!("{credential:?} {:?}", rotated_credential.secret)));
    outputs.push(("metrics".into(), probe_runtime::metrics::global().render()));
    outputs.push(("caller stats".into(), format!("{:?}", server.caller_stats())));
    let audit = probe_console::cli::audit::recent(&backends, 50).await?;
    report(&mut outputs, "probe audit", &audit);
    server.shutdown().await?;
    let _ = std::fs::remove_dir_all(&dir);
    let secrets = [credential, rotated_credential, forged]
        .iter()
        .map(|c| c.secret.expose().to_owned())
        .chain(std::iter::once(mangled))
        .collect();
    Ok((secrets, outputs))
}

fn tempdir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(unique("probe_secrets"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
