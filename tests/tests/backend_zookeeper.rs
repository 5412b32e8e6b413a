//! `ZooKeeperRegistry` against the real ZooKeeper of `scripts/services.sh up`: provider sessions and
//! their ephemeral nodes, live app views, one-shot reads, and how sessions end.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use probe_runtime::config::ZooKeeperConfig;
use probe_runtime::registry::layout::{Env, NodeData, NodeKey, zk_app_path};
use probe_runtime::registry::zookeeper::ZooKeeperRegistry;
use probe_runtime::registry::{AppNodes, AppWatch, BackendError, Registry};
use probe_tests::{remove_tree, unique, zk_addr, zookeeper};
use zookeeper_client::{Acls, CreateMode};

/// How long a change may take to reach a watch.
const SOON: Duration = Duration::from_secs(5);

fn config() -> Result<ZooKeeperConfig> {
    let mut config = ZooKeeperConfig::new(zk_addr().parse().context("bad PROBE_TEST_ZK")?);
    config.session_timeout = Duration::from_secs(4);
    config.connect_timeout = Duration::from_secs(5);
    Ok(config)
}

async fn registry() -> Result<ZooKeeperRegistry> {
    ZooKeeperRegistry::connect(&config()?).await.context(
        "the test ZooKeeper is unreachable; start the test services with `scripts/services.sh up` \
         (or run `scripts/test.sh`)",
    )
}

fn key(appkey: &str, service: &str, port: u16) -> Result<NodeKey> {
    Ok(NodeKey::new(Env::Dev, appkey, service, "127.0.0.1", port)?)
}

fn data(port: u16) -> NodeData {
    NodeData::new("127.0.0.1", port)
}

/// Waits until the view satisfies `check`, and returns what it then holds.
async fn wait_for(
    watch: &mut AppWatch,
    what: &str,
    check: impl FnMut(&Arc<AppNodes>) -> bool,
) -> Result<Arc<AppNodes>> {
    let seen = tokio::time::timeout(SOON, watch.wait_for(check)).await.map(|seen| seen.map(|v| v.clone()));
    match seen {
        Ok(seen) => Ok(seen?),
        Err(_) => {
            anyhow::bail!("the watch did not see {what} within {SOON:?}; it holds {:?}", watch.borrow())
        }
    }
}

async fn remove_app(appkey: &str) -> Result<()> {
    remove_tree(&zk_app_path(Env::Dev, appkey)).await
}

fn ports(nodes: &AppNodes) -> Vec<u16> {
    nodes.nodes.iter().map(|n| n.key.port()).collect()
}

#[tokio::test]
async fn connect_to_a_closed_port_fails_fast_naming_the_hosts() -> Result<()> {
    let mut config = ZooKeeperConfig::new("127.0.0.1:1".parse()?);
    config.connect_timeout = Duration::from_millis(500);
    let started = tokio::time::Instant::now();
    let err = ZooKeeperRegistry::connect(&config).await.err().context("connected to port 1")?;
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(matches!(&err, BackendError::Unreachable { addr, .. } if addr == "127.0.0.1:1"), "{err:?}");
    assert!(err.to_string().contains("scripts/services.sh up"), "{err}");
    Ok(())
}

#[tokio::test]
async fn registered_node_shows_in_watches_with_its_data() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("zk_reg");
    // The app path does not exist yet.
    let mut watch = registry.watch_app(Env::Dev, &appkey).await?;
    assert_eq!((watch.borrow().generation, watch.borrow().nodes.len()), (1, 0));

    let session = registry.session().await?;
    let mut node = data(7001);
    node.protocol = Some("compact".into());
    session.register(&key(&appkey, "Shop_Api", 7001)?, &node).await?;
    session.register(&key(&appkey, "Shop_Api", 7000)?, &data(7000)).await?;
    let seen = wait_for(&mut watch, "both nodes", |v| v.nodes.len() == 2).await?;
    assert!(seen.generation > 1);
    assert_eq!(ports(&seen), [7000, 7001], "sorted by child name");
    assert_eq!(seen.nodes[1].data, node);
    assert_eq!(seen.nodes[1].key, key(&appkey, "Shop_Api", 7001)?);

    // A watch started now reads what is there.
    let late = registry.watch_app(Env::Dev, &appkey).await?;
    assert_eq!((late.borrow().generation, ports(&late.borrow())), (1, vec![7000, 7001]));
    session.close().await;
    remove_app(&appkey).await
}

#[tokio::test]
async fn update_reaches_the_watch_and_misses_absent_nodes() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("zk_upd");
    let session = registry.session().await?;
    let node = key(&appkey, "S", 7100)?;
    session.register(&node, &data(7100)).await?;
    let mut watch = registry.watch_app(Env::Dev, &appkey).await?;

    let mut changed = data(7100);
    changed.weight = 0.into();
    changed.valid = probe_runtime::registry::layout::Valid::off();
    let started = tokio::time::Instant::now();
    assert!(registry.update(&node, &changed).await?);
    let seen =
        wait_for(&mut watch, "the new weight", |v| v.nodes.first().is_some_and(|n| n.data.weight == 0))
            .await?;
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert_eq!(seen.nodes[0].data, changed);

    assert!(!registry.update(&key(&appkey, "S", 7199)?, &changed).await?, "no such node");
    session.close().await;
    remove_app(&appkey).await
}

#[tokio::test]
async fn deregister_and_close_remove_nodes_from_the_watch() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("zk_dereg");
    let session = registry.session().await?;
    let (a, b) = (key(&appkey, "S", 7200)?, key(&appkey, "S", 7201)?);
    session.register(&a, &data(7200)).await?;
    session.register(&b, &data(7201)).await?;
    let mut watch = registry.watch_app(Env::Dev, &appkey).await?;
    assert_eq!(ports(&watch.borrow()), [7200, 7201]);

    session.deregister(&a).await?;
    session.deregister(&a).await?; // already gone: fine
    wait_for(&mut watch, "7200 gone", |v| ports(v) == [7201]).await?;

    session.close().await;
    let seen = wait_for(&mut watch, "7201 gone", |v| v.nodes.is_empty()).await?;
    assert!(registry.nodes(Env::Dev, &appkey).await?.is_empty());
    assert!(seen.generation >= 3);
    remove_app(&appkey).await
}

#[tokio::test]
async fn expired_session_ends_and_a_new_one_registers_again() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("zk_exp");
    let node = key(&appkey, "S", 7300)?;
    let session = registry.session().await?;
    session.register(&node, &data(7300)).await?;
    let mut watch = registry.watch_app(Env::Dev, &appkey).await?;
    assert_eq!(ports(&watch.borrow()), [7300]);
    assert!(session.id().starts_with("0x"), "{}", session.id());

    session.expire().await?;
    tokio::time::timeout(SOON, session.ended()).await.context("ended() did not fire after expire()")?;
    wait_for(&mut watch, "the node of the expired session gone", |v| v.nodes.is_empty()).await?;
    let err = session.register(&node, &data(7300)).await.err().context("registered on an expired session")?;
    assert!(matches!(err, BackendError::SessionEnded { .. }), "{err:?}");

    let fresh = registry.session().await?;
    assert_ne!(fresh.id(), session.id());
    fresh.register(&node, &data(7300)).await?;
    wait_for(&mut watch, "the node registered again", |v| ports(v) == [7300]).await?;
    session.close().await;
    fresh.close().await;
    remove_app(&appkey).await
}

#[tokio::test]
async fn a_node_left_by_another_session_is_replaced() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("zk_replace");
    let node = key(&appkey, "S", 7400)?;
    let old = registry.session().await?;
    old.register(&node, &data(7400)).await?;
    let mut watch = registry.watch_app(Env::Dev, &appkey).await?;

    // The provider restarts on the same address while its old session still lives.
    let new = registry.session().await?;
    let mut restarted = data(7400);
    restarted.pid = Some(42);
    new.register(&node, &restarted).await?;
    wait_for(&mut watch, "the restarted provider's data", |v| {
        v.nodes.first().is_some_and(|n| n.data.pid == Some(42))
    })
    .await?;
    let observer = zookeeper().await?;
    let (_, stat) = observer.get_data(&node.zk_node_path()).await?;
    assert_eq!(format!("{:#x}", stat.ephemeral_owner), new.id(), "the new session owns the node");

    // Registering again in the owning session rewrites the data in place.
    restarted.pid = Some(43);
    new.register(&node, &restarted).await?;
    wait_for(&mut watch, "the rewritten data", |v| v.nodes.first().is_some_and(|n| n.data.pid == Some(43)))
        .await?;

    // The old session ending does not take the new node with it, and its deregister leaves it.
    old.deregister(&node).await?;
    old.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ports(&watch.borrow()), [7400]);
    assert_eq!(registry.nodes(Env::Dev, &appkey).await?.len(), 1);
    new.close().await;
    remove_app(&appkey).await
}

#[tokio::test]
async fn children_with_bad_names_or_json_are_left_out() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("zk_bad");
    let session = registry.session().await?;
    let good = key(&appkey, "S", 7500)?;
    session.register(&good, &data(7500)).await?;

    let raw = zookeeper().await?;
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let app = zk_app_path(Env::Dev, &appkey);
    raw.create(&format!("{app}/not-a-node"), &data(1).to_json(), &ephemeral).await?;
    raw.create(&format!("{app}/S_127.0.0.1_7501"), b"{not json", &ephemeral).await?;
    let mut watch = registry.watch_app(Env::Dev, &appkey).await?;
    assert_eq!(ports(&watch.borrow()), [7500]);
    assert_eq!(registry.nodes(Env::Dev, &appkey).await?.len(), 1);

    // Bad data arriving while watched is left out too; good data then shows.
    raw.create(&format!("{app}/S_127.0.0.1_7502"), b"[]", &ephemeral).await?;
    raw.set_data(&format!("{app}/S_127.0.0.1_7501"), &data(7501).to_json(), None).await?;
    let seen = wait_for(&mut watch, "7501 fixed", |v| v.nodes.len() == 2).await?;
    assert_eq!(ports(&seen), [7500, 7501]);
    // A valid node turning bad leaves the view.
    raw.set_data(&format!("{app}/S_127.0.0.1_7501"), b"oops", None).await?;
    wait_for(&mut watch, "7501 bad again", |v| ports(v) == [7500]).await?;
    session.close().await;
    remove_app(&appkey).await
}

#[tokio::test]
async fn nodes_and_apps_read_the_registry_now() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("zk_read");
    assert!(registry.nodes(Env::Dev, &appkey).await?.is_empty(), "missing app path");
    assert!(!registry.apps(Env::Dev).await?.contains(&appkey));

    let session = registry.session().await?;
    session.register(&key(&appkey, "B", 7601)?, &data(7601)).await?;
    session.register(&key(&appkey, "A", 7600)?, &data(7600)).await?;
    let nodes = registry.nodes(Env::Dev, &appkey).await?;
    let services: Vec<&str> = nodes.iter().map(|n| n.key.service()).collect();
    assert_eq!(services, ["A", "B"]);
    assert_eq!(nodes[0].data, data(7600));

    let apps = registry.apps(Env::Dev).await?;
    assert!(apps.contains(&appkey), "{apps:?}");
    assert!(apps.windows(2).all(|w| w[0] <= w[1]), "sorted");
    assert!(!registry.apps(Env::Prod).await?.contains(&appkey), "envs are apart");
    assert!(registry.nodes(Env::Prod, &appkey).await?.is_empty());
    session.close().await;
    remove_app(&appkey).await
}

#[tokio::test]
async fn watches_and_reads_survive_the_shared_session_expiring() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("zk_shared");
    let session = registry.session().await?;
    session.register(&key(&appkey, "S", 7700)?, &data(7700)).await?;
    let mut watch = registry.watch_app(Env::Dev, &appkey).await?;
    assert_eq!(ports(&watch.borrow()), [7700]);

    registry.expire_shared_session().await?;
    // A change made while the registry opens its new session still reaches the watch.
    session.register(&key(&appkey, "S", 7701)?, &data(7701)).await?;
    wait_for(&mut watch, "7701 after the shared session expired", |v| ports(v) == [7700, 7701]).await?;
    session.deregister(&key(&appkey, "S", 7700)?).await?;
    wait_for(&mut watch, "7700 gone on the new shared session", |v| ports(v) == [7701]).await?;
    assert_eq!(registry.nodes(Env::Dev, &appkey).await?.len(), 1);
    session.close().await;
    remove_app(&appkey).await
}

#[tokio::test]
async fn a_bad_appkey_is_refused() -> Result<()> {
    let registry = registry().await?;
    let err = registry.watch_app(Env::Dev, "a/b").await.err().context("watched a/b")?;
    assert!(matches!(err, BackendError::Failed { .. }), "{err:?}");
    assert!(err.to_string().contains("a/b"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_chroot_prefixes_every_path_and_is_created() -> Result<()> {
    let root = format!("/{}", unique("probe_chroot"));
    let mut config = config()?;
    config.connect = format!("{}{root}", zk_addr()).parse()?;
    let registry = ZooKeeperRegistry::connect(&config).await?;
    let mut watch = registry.watch_app(Env::Dev, "chrooted").await?;
    let session = registry.session().await?;
    let node = key("chrooted", "S", 7800)?;
    session.register(&node, &data(7800)).await?;
    wait_for(&mut watch, "the node under the chroot", |v| ports(v) == [7800]).await?;
    assert_eq!(registry.apps(Env::Dev).await?, ["chrooted"]);

    let raw = zookeeper().await?;
    let (_, stat) = raw.get_data(&format!("{root}{}", node.zk_node_path())).await?;
    assert_eq!(format!("{:#x}", stat.ephemeral_owner), session.id());
    session.close().await;
    wait_for(&mut watch, "the node gone", |v| v.nodes.is_empty()).await?;
    remove_tree(&root).await
}
