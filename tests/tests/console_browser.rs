//! End to end: the console in Debian's headless Chromium over the real ZooKeeper, Redis and
//! MariaDB. An operator logs in, disables one of two providers in the nodes table and sees it
//! marked off; a client calling all along stops calling that node. Then the operator edits the
//! service's traffic rule: a bad share is shown at its line and column, the fixed rule is
//! previewed (the disabled node 0%, the other 100%) and applied, and the page shows the one
//! discovering client on the new revision once it reports it; a second revision is applied and
//! rolled back to the first, and the client follows. Last, the operator opens the disabled node's
//! request-limits panel: limits with a bad value are refused with the problem at its line and
//! column, good ones are applied to that node (its provider runs them), and the nodes table and the
//! audit log show them. Then the apps table shows the app without a credential, and the operator
//! sets the service's caller policy in its panel: a bad appkey is refused with its problem, then
//! the app itself is allowed and unauthenticated callers counted on both nodes; both providers run
//! it, the client (which proves no appkey) is still served and counted, and the audit log has it.
//! The browser is driven by `tests/browser/console.mjs` (playwright-core), which saves
//! `target/console-disabled.png`, `target/console-rules.png`, `target/console-limits.png` and
//! `target/console-callers.png`.
//!
//! The console serves HTTPS with the test certificate `scripts/services.sh up` makes; the browser
//! trusts the test CA through its own certificate store (an NSS database in a HOME of the test's,
//! made with `certutil`; no certificate error is ignored), and the test checks the session cookie
//! is `Secure`.
//!
//! Needs node, `/usr/bin/chromium`, `certutil` and playwright-core in `target/browser/node_modules`;
//! `scripts/test.sh` installs them. Without them the test fails and says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use probe_runtime::client::{Channel, ClusterOptions};
use probe_runtime::limits::RequestLimits;
use probe_runtime::security::CallerPolicy;
use probe_runtime::server::{LimitSource, PolicySource};
use probe_tests::console::ADMIN;
use probe_tests::governance::{add_app, client, node_key, start_provider, wait_for_routes};
use probe_tests::{real_backends, tls, unique};

const INSTALL_HINT: &str = "run `scripts/test.sh`, which installs Chromium (apt-get install chromium \
                            chromium-driver libnss3-tools) and playwright-core (npm ci in target/browser)";
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_owned()
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// What the browser test needs, or an error that says how to get it.
struct Browser {
    chromium: PathBuf,
    modules: PathBuf,
}

impl Browser {
    fn find() -> Result<Browser> {
        let node = Command::new("node").arg("--version").output();
        if !node.as_ref().is_ok_and(|o| o.status.success()) {
            bail!("node (Node.js) is not installed; {INSTALL_HINT}");
        }
        let chromium =
            std::env::var_os("PROBE_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
        ensure!(chromium.exists(), "{} is missing; {INSTALL_HINT}", chromium.display());
        let modules =
            std::env::var_os("PROBE_BROWSER_MODULES").map_or_else(|| target().join("browser"), PathBuf::from);
        let playwright = modules.join("node_modules/playwright-core/package.json");
        ensure!(playwright.exists(), "{} is missing; {INSTALL_HINT}", playwright.display());
        let certutil = Command::new("certutil").arg("-H").output();
        ensure!(certutil.is_ok(), "certutil (libnss3-tools) is not installed; {INSTALL_HINT}");
        Ok(Browser { chromium, modules })
    }

    /// A HOME whose NSS database (Chromium's certificate store on Linux) trusts the CA at `ca` to
    /// identify web sites, and nothing else was added to.
    fn home_trusting(ca: &Path) -> Result<PathBuf> {
        let home = target().join(format!("browser-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let nssdb = home.join(".pki/nssdb");
        std::fs::create_dir_all(&nssdb).with_context(|| format!("cannot make {}", nssdb.display()))?;
        let db = format!("sql:{}", nssdb.display());
        let ca = ca.to_str().context("the CA path is not UTF-8")?;
        for args in [
            vec!["-N", "-d", &db, "--empty-password"],
            vec!["-A", "-d", &db, "-t", "C,,", "-n", "probe test CA", "-i", ca],
        ] {
            let out = Command::new("certutil").args(&args).output().context("cannot run certutil")?;
            ensure!(
                out.status.success(),
                "certutil {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(home)
    }

    /// Runs `console.mjs` to the end (killed after [`BROWSER_TIMEOUT`]); answers what it printed.
    fn run(&self, url: &str, node: &str, version: &str, screenshot: &Path, home: &Path) -> Result<String> {
        let log = target().join("console-browser.log");
        let out = std::fs::File::create(&log).with_context(|| format!("cannot write {}", log.display()))?;
        let mut child = Command::new("node")
            .arg(root().join("tests/browser/console.mjs"))
            .args([url, ADMIN, node, version])
            .env("PROBE_CHROMIUM", &self.chromium)
            .env("PROBE_BROWSER_MODULES", &self.modules)
            .env("PROBE_SCREENSHOT", screenshot)
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("cannot start node")?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if started.elapsed() > BROWSER_TIMEOUT {
                child.kill()?;
                child.wait()?;
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let printed = std::fs::read_to_string(&log).unwrap_or_default();
        match status {
            Some(status) if status.success() => Ok(printed),
            Some(status) => bail!("console.mjs failed ({status}):\n{printed}"),
            None => bail!("console.mjs took longer than {BROWSER_TIMEOUT:?}; it printed:\n{printed}"),
        }
    }
}

type Counts = Arc<Mutex<BTreeMap<String, usize>>>;

fn snapshot(counts: &Counts) -> BTreeMap<String, usize> {
    counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_disables_a_node_in_the_browser_and_the_client_stops_calling_it() -> Result<()> {
    let browser = Browser::find()?;
    let backends = real_backends().await?;
    let appkey = unique("console_ui");
    add_app(&backends, &appkey).await?;
    let kept = start_provider(&backends, &appkey, "kept").await?;
    let victim = start_provider(&backends, &appkey, "victim").await?;
    let victim_key = node_key(&backends, &appkey, &victim);
    let (routes, client) = client(&backends, &appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "two nodes", |r| r.table.in_rotation().count() == 2).await?;

    // A client that calls all along, counting who answered.
    let counts: Counts = Arc::default();
    let stop_calls = Arc::new(AtomicBool::new(false));
    let caller = {
        let (counts, stop_calls) = (counts.clone(), stop_calls.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(240);
            let mut errors = Vec::new();
            while !stop_calls.load(Ordering::Relaxed) && Instant::now() < deadline {
                match client.ping("hi".into()).await {
                    Ok(tag) => *counts.lock().unwrap_or_else(|p| p.into_inner()).entry(tag).or_default() += 1,
                    Err(err) => errors.push(err.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            errors
        })
    };
    let started = Instant::now();
    while snapshot(&counts).len() < 2 {
        ensure!(
            started.elapsed() < Duration::from_secs(10),
            "the client did not reach both nodes: {:?}",
            snapshot(&counts)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A discovering client reports the rule revision it runs; the rule panel counts it.
    let discovered = Channel::discover(&backends, &appkey, "Directory", ClusterOptions::default()).await?;
    let nodes = backends.registry.nodes(backends.env, &appkey).await?;
    let version =
        nodes.iter().find_map(|n| n.data.version.clone()).context("the providers declare no version")?;

    let (addr, stop_console) = tls::start_console(&backends).await?;
    let url = format!("https://{addr}/");
    let home = Browser::home_trusting(&tls::ca()?)?;
    let screenshot = target().join("console-disabled.png");
    let before_run = SystemTime::now();
    let field = victim_key.redis_field();
    let printed = {
        let (url, field, screenshot, home) = (url.clone(), field.clone(), screenshot.clone(), home.clone());
        tokio::task::spawn_blocking(move || browser.run(&url, &field, &version, &screenshot, &home)).await??
    };
    println!("{printed}");
    let _ = std::fs::remove_dir_all(&home);
    ensure!(
        printed.contains("console.mjs: session cookie secure=true httpOnly=true sameSite=Strict"),
        "the browser did not see a Secure session cookie over HTTPS"
    );
    let shot = std::fs::metadata(&screenshot)
        .with_context(|| format!("no screenshot at {}", screenshot.display()))?;
    ensure!(
        shot.len() > 10_000 && shot.modified()? >= before_run,
        "stale or empty screenshot {}",
        screenshot.display()
    );

    // The rule the browser applied is in force, the clients run it, and it is audited.
    let revision: u64 = printed
        .lines()
        .find_map(|l| l.strip_prefix("console.mjs: revision in force "))
        .context("console.mjs printed no revision in force")?
        .trim()
        .parse()?;
    wait_for_routes(&routes, "the applied rule", |r| {
        r.rule.as_ref().is_some_and(|rule| rule.revision == revision)
    })
    .await?;
    let reports = backends.metrics.client_reports(backends.env).await?;
    let ours: Vec<u64> = reports.iter().filter(|r| r.appkey == appkey).map(|r| r.revision).collect();
    assert_eq!(ours, [revision], "client reports of {appkey}: {reports:?}");
    let target = format!("{appkey}/Directory");
    let audit = backends.audit.recent(200).await?;
    let changes: Vec<(&str, &str, &str)> = audit
        .iter()
        .filter(|e| e.target == target)
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.after.as_str()))
        .collect();
    let rolled_back = format!("revision {revision} (revision 1 again)");
    assert_eq!(
        changes,
        [
            ("console:admin/e2e", "rule_rollback", rolled_back.as_str()),
            ("console:admin/e2e", "rule_set", "revision 2"),
            ("console:admin/e2e", "rule_set", "revision 1"),
        ]
    );
    drop(discovered);

    // The client's table drops the node, and from then on it gets no calls.
    let id = victim_key.zk_child();
    wait_for_routes(&routes, "the node disabled", |r| r.table.get(&id).is_some_and(|e| !e.valid)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_change = snapshot(&counts);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = snapshot(&counts);
    let delta =
        |tag: &str| later.get(tag).copied().unwrap_or(0) - after_change.get(tag).copied().unwrap_or(0);
    println!(
        "calls in the 2 s after the disable: victim {}, kept {} (totals {later:?})",
        delta("victim"),
        delta("kept")
    );
    ensure!(delta("victim") == 0, "the disabled node still got {} calls", delta("victim"));
    ensure!(delta("kept") > 0, "the client stopped calling altogether");

    // The changes are in the MySQL audit table under the browser user's name: the disable, the
    // limits and the caller policy (the refused documents wrote nothing).
    let audit = backends.audit.recent(200).await?;
    let entries: Vec<(&str, &str, &str, &str)> = audit
        .iter()
        .filter(|e| e.target == field)
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.before.as_str(), e.after.as_str()))
        .collect();
    let limits = r#"{"methods":{"ping":{"concurrency":8}},"qps":500}"#;
    let after = format!("limits={limits}");
    let policy_json = format!(r#"{{"allow":["{appkey}"],"unauthenticated":"count"}}"#);
    let callers_after = format!("callers={policy_json}");
    assert_eq!(
        entries,
        [
            ("console:admin/e2e", "set_callers", "callers=none", callers_after.as_str()),
            ("console:admin/e2e", "set_limits", "limits=none", after.as_str()),
            ("console:admin/e2e", "disable", "weight=10 valid=1", "weight=10 valid=0"),
        ]
    );

    // The limits are stored on the victim only, and its provider runs them.
    ensure!(
        printed.contains("console.mjs: limits applied qps 500; ping: concurrency 8"),
        "console.mjs printed no limits applied"
    );
    let stored = backends.settings.get(&victim_key).await?.and_then(|d| d.limits);
    assert_eq!(stored, Some(serde_json::from_str(limits)?));
    let kept_key = node_key(&backends, &appkey, &kept);
    assert_eq!(backends.settings.get(&kept_key).await?.and_then(|d| d.limits), None);
    let expected = RequestLimits::parse(limits).map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let started = Instant::now();
    while !(victim.request_limits()["Directory"].source == LimitSource::Node
        && victim.request_limits()["Directory"].limits == expected)
    {
        ensure!(
            started.elapsed() < Duration::from_secs(10),
            "the provider runs {:?}",
            victim.request_limits()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The caller policy is on both nodes and both providers run it; the client, which proves no
    // appkey, is served and counted by the node it calls.
    ensure!(
        printed.contains(&format!("console.mjs: callers applied allow {appkey}; unauthenticated count")),
        "console.mjs printed no caller policy applied"
    );
    let policy = CallerPolicy::parse(&policy_json).map_err(|p| anyhow::anyhow!("{p:?}"))?;
    for (provider, key) in [(&victim, &victim_key), (&kept, &kept_key)] {
        let stored = backends.settings.get(key).await?.and_then(|d| d.callers);
        assert_eq!(stored, Some(policy.to_json()), "{key}");
        let started = Instant::now();
        while provider.caller_policies().get("Directory").map(|a| (&a.policy, a.source))
            != Some((&policy, PolicySource::Node))
        {
            ensure!(
                started.elapsed() < Duration::from_secs(10),
                "{key} runs {:?}",
                provider.caller_policies()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let started = Instant::now();
    while kept.caller_stats().iter().map(|s| s.unauthenticated).sum::<u64>() == 0 {
        ensure!(
            started.elapsed() < Duration::from_secs(10),
            "no unauthenticated call counted: {:?}",
            kept.caller_stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    stop_calls.store(true, Ordering::Relaxed);
    let errors = caller.await?;
    ensure!(errors.is_empty(), "{} calls failed, first: {}", errors.len(), errors[0]);
    drop(stop_console);
    victim.shutdown().await?;
    kept.shutdown().await?;
    Ok(())
}
