//! Request limits on the real ZooKeeper, Redis and MariaDB (`scripts/services.sh up`): a node
//! limited live to 1,000 QPS under 3,000 QPS offered, with the client completing every call;
//! how fast a changed limit reaches the provider; sheddable calls refused before critical ones;
//! bad limits refused with nothing changed. Each prints one `limits:` line with its figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use probe::{CallError, Channel, Metadata, Priority};
use probe_runtime::client::{ClusterOptions, ClusterTransport};
use probe_runtime::discovery::ServiceRoutes;
use probe_runtime::limits::RequestLimits;
use probe_runtime::registry::layout::NodeKey;
use probe_runtime::registry::{Backends, Operator, OperatorError};
use probe_runtime::server::{LimitSource, Server, ServerHandle};
use probe_tests::governance::{add_app, wait_for_routes};
use probe_tests::idl::interop::{
    Base, Contact, Directory, DirectoryClient, DirectoryGetException, DirectoryServer, User, UserId,
};
use probe_tests::{real_backends, unique};

const SERVICE: &str = "Directory";

/// A provider that counts the calls it ran.
#[derive(Clone, Default)]
struct Counting {
    pings: Arc<AtomicU64>,
    puts: Arc<AtomicU64>,
}

impl Counting {
    fn ran(&self) -> u64 {
        self.pings.load(Ordering::Relaxed) + self.puts.load(Ordering::Relaxed)
    }
}

impl Base for Counting {
    async fn ping(&self, msg: String) -> Result<String, CallError> {
        self.pings.fetch_add(1, Ordering::Relaxed);
        Ok(msg)
    }
}

impl Directory for Counting {
    async fn get(&self, id: UserId) -> Result<User, CallError<DirectoryGetException>> {
        Err(probe::Error::handler(format!("no user {id}")).into())
    }
    async fn put(&self, _user: User) -> Result<(), CallError> {
        self.puts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn find(&self, _prefix: String, _limit: i32, _contact: Contact) -> Result<Vec<User>, CallError> {
        Ok(Vec::new())
    }
    async fn touch(&self, _id: UserId) -> Result<(), CallError> {
        Ok(())
    }
    async fn count(&self) -> Result<i32, CallError> {
        Ok(0)
    }
}

async fn provider(backends: &Backends, appkey: &str, handler: Counting) -> Result<ServerHandle> {
    Server::builder()
        .add_service_for_app(appkey, DirectoryServer::new(handler))
        .register(backends.clone())
        .advertise_host("127.0.0.1")
        .grace_period(Duration::from_millis(100))
        .start("127.0.0.1:0")
        .await
        .context("cannot start a provider")
}

fn limits(text: &str) -> RequestLimits {
    RequestLimits::parse(text).expect("a valid limits document")
}

fn key_of(handle: &ServerHandle) -> Result<NodeKey> {
    handle.node_keys().first().cloned().context("the provider registered no node")
}

/// Waits until `handle` runs `service` with the limits `expected` from its node's data.
async fn applied(handle: &ServerHandle, expected: &RequestLimits) -> Result<Duration> {
    let started = Instant::now();
    let mut changes = handle.request_limit_changes();
    loop {
        let now = handle.request_limits();
        if let Some(a) = now.get(SERVICE)
            && a.source == LimitSource::Node
            && a.limits == *expected
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("the provider did not apply {expected} within 10 s; it runs {now:?}");
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), changes.changed()).await;
    }
}

async fn channel(backends: &Backends, appkey: &str) -> Result<(ServiceRoutes, Channel)> {
    let routes = ServiceRoutes::watch(backends.registry.clone(), backends.env, appkey, SERVICE).await?;
    let channel = Channel::new(ClusterTransport::new(routes.clone(), ClusterOptions::default()));
    Ok((routes, channel))
}

fn user(id: i64) -> User {
    probe_tests::fixtures::sample_user(id)
}

/// Offers `rate` calls per second for `duration`, open loop (a call every `1/rate` whatever the
/// replies), alternating `ping` (idempotent) and `put` (not); returns the failures' texts.
async fn offer(client: &DirectoryClient, rate: u32, duration: Duration) -> Result<(u64, Vec<String>)> {
    let per_tick = rate / 1000;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0u64;
    while started.elapsed() < duration {
        ticker.tick().await;
        for _ in 0..per_tick {
            let client = client.clone();
            let i = sent;
            sent += 1;
            tasks.spawn(async move {
                match i % 2 {
                    0 => client.ping("x".into()).await.map(drop).map_err(|e| e.to_string()),
                    _ => client.put(user(i as i64)).await.map_err(|e| e.to_string()),
                }
            });
        }
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined? {
            failures.push(e);
        }
    }
    Ok((sent, failures))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_limited_live_serves_its_limit_and_the_client_completes_every_call() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("limits");
    add_app(&backends, &appkey).await?;
    let (free, limited) = (Counting::default(), Counting::default());
    let a = provider(&backends, &appkey, free.clone()).await?;
    let b = provider(&backends, &appkey, limited.clone()).await?;
    let op = Operator::new(backends.clone()).with_actor("test:limits");

    // A limit changed live: from the operator's call to the provider applying it.
    let mut delays = Vec::new();
    for i in 0..20 {
        let doc = limits(&format!(r#"{{"qps": {}}}"#, 2000 + i));
        let started = Instant::now();
        op.set_limits(&key_of(&b)?, Some(&doc)).await?;
        applied(&b, &doc).await?;
        delays.push(started.elapsed());
    }
    delays.sort();
    let (p50, p99) = (delays[delays.len() / 2], delays[delays.len() * 99 / 100]);
    println!(
        "limits: live change to the provider over 20 changes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        delays[delays.len() - 1].as_secs_f64() * 1e3
    );

    let doc = limits(r#"{"qps": 1000}"#);
    let change = op.set_limits(&key_of(&b)?, Some(&doc)).await?;
    ensure!(change.live && change.audit.is_ok(), "the change was not live or not audited: {change:?}");
    applied(&b, &doc).await?;
    let stored = backends.settings.get(&key_of(&b)?).await?.context("no stored settings")?;
    ensure!(stored.limits == Some(doc.to_json()), "the settings store holds {:?}", stored.limits);

    let (routes, channel) = channel(&backends, &appkey).await?;
    wait_for_routes(&routes, "both providers", |r| r.table.in_rotation().count() == 2).await?;
    let client = DirectoryClient::new(channel);
    let before = (free.ran(), limited.ran());
    let duration = Duration::from_secs(3);
    let started = Instant::now();
    let (sent, failures) = offer(&client, 3000, duration).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let (ran_free, ran_limited) = (free.ran() - before.0, limited.ran() - before.1);
    let limited_qps = ran_limited as f64 / duration.as_secs_f64();
    let refused: u64 = b.request_limit_stats().iter().map(|s| s.stats.refused.iter().sum::<u64>()).sum();
    println!(
        "limits: 2 nodes, one at 1000 qps, {} qps offered for {:.1} s: limited node {limited_qps:.0} qps \
         ({ran_limited} calls, {refused} refused and retried), other node {:.0} qps, {} of {sent} calls \
         failed",
        sent as f64 / duration.as_secs_f64(),
        elapsed,
        ran_free as f64 / duration.as_secs_f64(),
        failures.len()
    );
    ensure!(failures.is_empty(), "{} calls failed, first: {:?}", failures.len(), failures.first());
    ensure!(
        (950.0..=1050.0).contains(&limited_qps),
        "the limited node served {limited_qps:.0} qps, not 1000 +/- 5%"
    );
    ensure!(ran_free + ran_limited == sent, "{sent} calls sent, {} ran", ran_free + ran_limited);
    ensure!(refused > 0, "the limit refused nothing: the test offered too little");
    let audit = backends.audit.recent(50).await?;
    ensure!(
        audit
            .iter()
            .any(|e| e.action == "set_limits" && e.actor == "test:limits" && e.after.contains("1000")),
        "no audit record of the change"
    );

    // Cleared: the node runs without limits again.
    op.set_limits(&key_of(&b)?, None).await?;
    let started = Instant::now();
    while b.request_limits().get(SERVICE).map(|a| a.source.clone()) != Some(LimitSource::None) {
        ensure!(started.elapsed() < Duration::from_secs(10), "the cleared limits were not applied");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.shutdown().await?;
    a.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_overload_sheddable_calls_are_refused_first_and_critical_ones_all_succeed() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("shed");
    add_app(&backends, &appkey).await?;
    let handler = Counting::default();
    let node = provider(&backends, &appkey, handler.clone()).await?;
    let doc = limits(r#"{"qps": 500}"#);
    Operator::new(backends.clone()).set_service_limits(&appkey, SERVICE, Some(&doc)).await?;
    applied(&node, &doc).await?;

    let (routes, channel) = channel(&backends, &appkey).await?;
    wait_for_routes(&routes, "the provider", |r| r.table.in_rotation().count() == 1).await?;
    let critical = DirectoryClient::new(channel.with_metadata(Metadata::new().priority(Priority::CRITICAL)));
    let sheddable =
        DirectoryClient::new(channel.with_metadata(Metadata::new().priority(Priority::SHEDDABLE)));
    // 1,000 calls a second against 500: 300 critical, 700 sheddable, for 3 s.
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        ticker.tick().await;
        for i in 0..10 {
            let (client, is_critical) = match i < 3 {
                true => (critical.clone(), true),
                false => (sheddable.clone(), false),
            };
            tasks.spawn(async move { (is_critical, client.ping("p".into()).await) });
        }
    }
    let (mut critical_failed, mut critical_ok, mut sheddable_refused, mut other) =
        (0u64, 0u64, 0u64, Vec::new());
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            (true, Ok(_)) => critical_ok += 1,
            (true, Err(e)) => {
                critical_failed += 1;
                other.push(e.to_string());
            }
            (false, Ok(_)) => {}
            (false, Err(e)) if e.to_string().contains("qps limit") => sheddable_refused += 1,
            (false, Err(e)) => other.push(e.to_string()),
        }
    }
    let stats = node.request_limit_stats();
    let by_priority = stats.iter().fold([0u64; 3], |mut acc, s| {
        for (a, n) in acc.iter_mut().zip(s.stats.refused_by_priority) {
            *a += n;
        }
        acc
    });
    let refused: u64 = by_priority.iter().sum();
    let share = by_priority[2] as f64 / refused.max(1) as f64;
    println!(
        "limits: 1000 qps offered to a 500 qps node (30% critical): {critical_ok} critical calls ok, \
         {critical_failed} failed; {refused} refused, {:.1}% of them sheddable ({sheddable_refused} seen by \
         the client)",
        share * 100.0
    );
    ensure!(critical_failed == 0, "critical calls failed: {:?}", other.first());
    ensure!(refused > 0, "nothing was refused: the test offered too little");
    ensure!(share >= 0.95, "only {:.1}% of refused calls were sheddable", share * 100.0);
    ensure!(sheddable_refused == by_priority[2], "the client saw {sheddable_refused} refusals");
    node.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limits_are_refused_with_the_reason_and_nothing_changes() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("badlimits");
    add_app(&backends, &appkey).await?;
    let node = provider(&backends, &appkey, Counting::default()).await?;
    let key = key_of(&node)?;
    let op = Operator::new(backends.clone());
    let good = limits(r#"{"concurrency": 10}"#);
    op.set_limits(&key, Some(&good)).await?;
    applied(&node, &good).await?;
    let audited = backends.audit.recent(100).await?.len();

    // Unknown method: the running node declares its methods.
    let unknown = limits(r#"{"methods": {"pnig": {"qps": 5}}}"#);
    let err = op.set_limits(&key, Some(&unknown)).await.expect_err("an unknown method is refused");
    let text = err.to_string();
    ensure!(
        matches!(err, OperatorError::LimitsRefused { .. })
            && text.contains("/methods/pnig")
            && text.contains("ping"),
        "{text}"
    );
    let err = op.set_service_limits(&appkey, SERVICE, Some(&unknown)).await.expect_err("refused");
    ensure!(err.to_string().contains("unknown method"), "{err}");
    // Zero and negative values never parse; a hand-built zero is checked again.
    for (text, at) in
        [(r#"{"qps": -1}"#, "/qps"), (r#"{"concurrency": 0}"#, "/concurrency"), (r#"{"burst": 5}"#, "/burst")]
    {
        let problems = RequestLimits::parse(text).expect_err("refused");
        ensure!(problems[0].at == at, "{text}: {problems:?}");
    }
    let zero = RequestLimits { concurrency: Some(0), ..RequestLimits::default() };
    let err = op.set_limits(&key, Some(&zero)).await.expect_err("zero concurrency is refused");
    ensure!(err.to_string().contains("at least 1"), "{err}");
    let err = op.set_service_limits(&appkey, "Nothing", Some(&good)).await.expect_err("no such service");
    ensure!(matches!(err, OperatorError::NoNodes { .. }), "{err}");

    // Nothing changed: the store, the live node, the provider, the audit log.
    let stored = backends.settings.get(&key).await?.context("no stored settings")?;
    ensure!(stored.limits == Some(good.to_json()), "stored: {:?}", stored.limits);
    ensure!(node.request_limits()[SERVICE].limits == good);
    ensure!(backends.audit.recent(100).await?.len() == audited, "a refused change was audited");
    println!(
        "limits: bad limits refused with the reason (unknown method, zero, negative, burst without qps); nothing changed"
    );
    node.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_sees_a_refused_call_as_an_ordinary_application_error() -> Result<()> {
    let peers = probe_tests::python::PythonPeers::from_env()?;
    let server = Server::builder()
        .add_service(DirectoryServer::new(Counting::default()))
        .request_limits(SERVICE, limits(r#"{"qps": 1, "burst": 1}"#))
        .start("127.0.0.1:0")
        .await?;
    let idl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("idl");
    // thriftpy2 as the design's client uses it: buffered binary, one call per connection.
    let script = r#"
import json, sys, thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.thrift import TApplicationException
from thriftpy2.transport import TBufferedTransportFactory
idl, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
thrift = thriftpy2.load(idl + "/interop.thrift", module_name="limits_thrift", include_dirs=[idl])
seen = []
for _ in range(3):
    client = make_client(thrift.Directory, host, port, trans_factory=TBufferedTransportFactory(),
                         proto_factory=TBinaryProtocolFactory(), timeout=5000)
    try:
        seen.append({"ok": client.ping("py")})
    except TApplicationException as e:
        seen.append({"type": e.type, "message": e.message})
    finally:
        client.close()
print(json.dumps(seen))
"#;
    let addr = server.local_addr();
    let (python, idl) = (peers.python().to_owned(), idl.display().to_string());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", script, &idl, &addr.ip().to_string(), &addr.port().to_string()])
            .output()
    })
    .await?
    .context("cannot run the Python client")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
    let seen: Vec<serde_json::Value> = serde_json::from_str(stdout.trim())?;
    ensure!(seen[0]["ok"] == "py", "the first call is within the burst: {seen:?}");
    let refused = seen.iter().filter(|s| s["type"] == 11).count();
    ensure!(refused == 2, "expected two LOADSHEDDING (11) exceptions: {seen:?}");
    ensure!(seen[1]["message"].as_str().is_some_and(|m| m.contains("qps limit")), "{seen:?}");
    println!(
        "limits: a thriftpy2 client over the limit gets TApplicationException type 11: {}",
        seen[1]["message"]
    );
    server.shutdown().await?;
    Ok(())
}
