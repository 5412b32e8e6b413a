//! Shared pieces of the governance tests: a provider that names itself, starting providers that
//! register, and counting which node answered.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use probe::{CallError, Channel};
use probe_runtime::client::{ClusterOptions, ClusterTransport};
use probe_runtime::discovery::ServiceRoutes;
use probe_runtime::registry::layout::NodeKey;
use probe_runtime::registry::{App, Backends};
use probe_runtime::server::{Server, ServerHandle};

use crate::idl::interop::*;

/// A `Directory` whose `ping` answers with the provider's tag, so a client can count who answered,
/// and whose `get` answers, throws `NotFound` (id 404) or fails in the handler (id 500), so a test
/// can make every outcome.
#[derive(Debug, Clone)]
pub struct Tagged {
    /// What `ping` answers.
    pub tag: String,
}

impl Base for Tagged {
    async fn ping(&self, _msg: String) -> Result<String, CallError> {
        Ok(self.tag.clone())
    }
}

impl Directory for Tagged {
    async fn get(&self, id: UserId) -> Result<User, CallError<DirectoryGetException>> {
        match id {
            404 => Err(NotFound { message: "no such user".into(), id }.into()),
            500 => Err(probe::Error::handler("database down").into()),
            _ => Ok(crate::fixtures::sample_user(id)),
        }
    }
    async fn put(&self, _user: User) -> Result<(), CallError> {
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

/// Registers `appkey` in the app store.
pub async fn add_app(backends: &Backends, appkey: &str) -> Result<()> {
    let app = App { appkey: appkey.to_owned(), description: "governance test".into(), owner: "tests".into() };
    backends.apps.add(&app).await.context("cannot register the test app")?;
    Ok(())
}

/// Starts a registered `Directory` provider of `appkey` on 127.0.0.1 that answers `ping` with `tag`.
pub async fn start_provider(backends: &Backends, appkey: &str, tag: &str) -> Result<ServerHandle> {
    provider(backends, appkey, tag)
        .start("127.0.0.1:0")
        .await
        .with_context(|| format!("cannot start provider {tag}"))
}

/// [`start_provider`], publishing its metrics window every `every` (instead of every 5 s).
pub async fn start_publishing_provider(
    backends: &Backends,
    appkey: &str,
    tag: &str,
    every: Duration,
) -> Result<ServerHandle> {
    provider(backends, appkey, tag)
        .metrics_interval(every)
        .start("127.0.0.1:0")
        .await
        .with_context(|| format!("cannot start provider {tag}"))
}

fn provider(backends: &Backends, appkey: &str, tag: &str) -> probe_runtime::server::ServerBuilder {
    Server::builder()
        .add_service_for_app(appkey, DirectoryServer::new(Tagged { tag: tag.to_owned() }))
        .register(backends.clone())
        .advertise_host("127.0.0.1")
        .grace_period(Duration::from_millis(300))
        .drain_timeout(Duration::from_secs(5))
}

/// The registry key of a provider started by [`start_provider`].
pub fn node_key(backends: &Backends, appkey: &str, server: &ServerHandle) -> NodeKey {
    NodeKey::new(backends.env, appkey, "Directory", "127.0.0.1", server.local_addr().port())
        .expect("test names are valid")
}

/// The routes of the test app's `Directory`, and a client over them.
pub async fn client(
    backends: &Backends,
    appkey: &str,
    options: ClusterOptions,
) -> Result<(ServiceRoutes, DirectoryClient)> {
    let routes = ServiceRoutes::watch(backends.registry.clone(), backends.env, appkey, "Directory").await?;
    let channel = Channel::new(ClusterTransport::new(routes.clone(), options));
    Ok((routes, DirectoryClient::new(channel)))
}

/// Waits until `ready` holds for the current routes.
pub async fn wait_for_routes(
    routes: &ServiceRoutes,
    what: &str,
    ready: impl Fn(&probe_runtime::discovery::Routes) -> bool,
) -> Result<Duration> {
    let started = Instant::now();
    let mut changes = routes.changes();
    loop {
        if ready(&routes.load()) {
            return Ok(started.elapsed());
        }
        if tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.is_err() {
            bail!("routes did not reach `{what}` within 10 s; they are {:?}", routes.load().table);
        }
    }
}

/// Makes `calls` pings over `parallel` tasks and counts the answers per tag; fails on any error.
pub async fn count_pings(
    client: &DirectoryClient,
    calls: usize,
    parallel: usize,
) -> Result<BTreeMap<String, usize>> {
    let client = Arc::new(client.clone());
    let mut tasks = Vec::new();
    for t in 0..parallel {
        let client = Arc::clone(&client);
        let share = calls / parallel + usize::from(t < calls % parallel);
        tasks.push(tokio::spawn(async move {
            let mut counts = BTreeMap::<String, usize>::new();
            for _ in 0..share {
                *counts.entry(client.ping("hi".into()).await?).or_default() += 1;
            }
            Ok::<_, CallError>(counts)
        }));
    }
    let mut total = BTreeMap::new();
    for task in tasks {
        for (tag, n) in task.await.context("a caller task failed")?.context("a call failed")? {
            *total.entry(tag).or_default() += n;
        }
    }
    Ok(total)
}

/// A `registered_provider` process (a registered `Directory` provider of its own), killed with
/// SIGKILL when dropped.
#[derive(Debug)]
pub struct ProviderProcess {
    child: Child,
    /// The port it serves.
    pub port: u16,
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` (the `registered_provider` binary of this package) for `appkey` answering
/// `ping` with `tag`, with the test services' `PROBE_*` variables and `extra` ones; returns once
/// it registered.
pub fn spawn_provider(
    binary: &str,
    appkey: &str,
    tag: &str,
    extra: &[(&str, String)],
) -> Result<ProviderProcess> {
    let mut child = Command::new(binary)
        .args([appkey, tag])
        .envs(crate::probe_vars())
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the registered_provider binary")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut provider = ProviderProcess { child, port: 0 };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    match line.trim().strip_prefix("READY ") {
        Some(port) => provider.port = port.parse()?,
        None => bail!("provider {tag} did not start; it printed {line:?}"),
    }
    Ok(provider)
}
