//! Rule documents of `ZooKeeperRegistry` against the real ZooKeeper of `scripts/services.sh up`:
//! compare-and-set writes with their history, live watches across session expiry, and the layout
//! (`/probe/rules/{env}/{appkey}/{service}`, never under the app path Python clients list).

use std::time::Duration;

use anyhow::{Context, Result};
use probe_runtime::config::ZooKeeperConfig;
use probe_runtime::registry::layout::{Env, NodeData, NodeKey, zk_app_path};
use probe_runtime::registry::zookeeper::{ZK_RULES_ROOT, ZooKeeperRegistry, zk_rule_path};
use probe_runtime::registry::{BackendError, Registry, RuleWatch, StoredRule};
use probe_tests::{remove_tree, unique, zk_addr, zookeeper};

/// How long a change may take to reach a watch.
const SOON: Duration = Duration::from_secs(1);

async fn registry() -> Result<ZooKeeperRegistry> {
    let mut config = ZooKeeperConfig::new(zk_addr().parse().context("bad PROBE_TEST_ZK")?);
    config.session_timeout = Duration::from_secs(4);
    config.connect_timeout = Duration::from_secs(5);
    ZooKeeperRegistry::connect(&config).await.context(
        "the test ZooKeeper is unreachable; start the test services with `scripts/services.sh up` \
         (or run `scripts/test.sh`)",
    )
}

fn rule(text: &str, version: i32) -> StoredRule {
    StoredRule { text: text.to_owned(), version }
}

/// The app's rule path, `/probe/rules/dev/{appkey}`.
fn rules_of(appkey: &str) -> String {
    format!("{ZK_RULES_ROOT}/dev/{appkey}")
}

/// Waits up to [`SOON`] until the watch holds `expected`.
async fn wait_for(watch: &mut RuleWatch, expected: Option<StoredRule>) -> Result<()> {
    let seen = tokio::time::timeout(SOON, watch.wait_for(|held| held.as_deref() == expected.as_ref()))
        .await
        .map(|seen| seen.map(drop));
    match seen {
        Ok(seen) => seen.context("the watch stopped"),
        Err(_) => {
            anyhow::bail!("the watch did not see {expected:?} within {SOON:?}; it holds {:?}", watch.borrow())
        }
    }
}

#[tokio::test]
async fn writes_compare_and_set_and_keep_the_history_in_order() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("rules_cas");
    assert_eq!(registry.read_rule(Env::Dev, &appkey, "S").await?, None, "no document yet");
    assert!(registry.rule_history(Env::Dev, &appkey, "S").await?.is_empty());

    // A later write of a document that is not there is a conflict, as is a second first write.
    let err = registry.write_rule(Env::Dev, &appkey, "S", "x", Some(0)).await.err().context("wrote")?;
    assert!(matches!(err, BackendError::Conflict { .. }), "{err:?}");
    assert_eq!(registry.write_rule(Env::Dev, &appkey, "S", "one", None).await?, 0);
    let err = registry.write_rule(Env::Dev, &appkey, "S", "x", None).await.err().context("wrote twice")?;
    assert!(err.to_string().contains("exists already (version 0)"), "{err}");
    assert_eq!(registry.read_rule(Env::Dev, &appkey, "S").await?, Some(rule("one", 0)));

    // Twelve writes: the history names sort by version past 9 and 10.
    let mut version = 0;
    for n in 1..=11 {
        version = registry.write_rule(Env::Dev, &appkey, "S", &format!("doc {n}"), Some(version)).await?;
        assert_eq!(version, n);
    }
    let err = registry.write_rule(Env::Dev, &appkey, "S", "stale", Some(3)).await.err().context("stale")?;
    assert_eq!(
        err,
        BackendError::Conflict {
            what: format!("the rule of {appkey}/S changed meanwhile (now version 11)"),
            fix: "read it again and retry".into(),
        }
    );
    assert_eq!(registry.read_rule(Env::Dev, &appkey, "S").await?, Some(rule("doc 11", 11)));
    let history = registry.rule_history(Env::Dev, &appkey, "S").await?;
    let mut expected = vec![rule("one", 0)];
    expected.extend((1..=10).map(|n| rule(&format!("doc {n}"), n)));
    assert_eq!(history, expected);

    // The layout: the history children are named by version, beside nothing else.
    let raw = zookeeper().await?;
    let path = zk_rule_path(Env::Dev, &appkey, "S");
    assert_eq!(path, format!("/probe/rules/dev/{appkey}/S"));
    let mut children = raw.list_children(&path).await?;
    children.sort();
    assert_eq!(children.first().map(String::as_str), Some("r0000000000"));
    assert_eq!(children.last().map(String::as_str), Some("r0000000010"));
    assert_eq!(children.len(), 11);
    let (data, stat) = raw.get_data(&path).await?;
    assert_eq!((data.as_slice(), stat.version), (b"doc 11".as_slice(), 11));

    // Services are apart, and names are checked.
    assert_eq!(registry.read_rule(Env::Dev, &appkey, "Other").await?, None);
    assert_eq!(registry.read_rule(Env::Prod, &appkey, "S").await?, None);
    let err = registry.write_rule(Env::Dev, &appkey, "S/x", "x", None).await.err().context("bad name")?;
    assert!(matches!(err, BackendError::Failed { .. }), "{err:?}");
    assert!(registry.read_rule(Env::Dev, "a-b", "S").await.is_err());
    remove_tree(&rules_of(&appkey)).await
}

#[tokio::test]
async fn a_document_that_is_not_utf8_is_bad_data() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("rules_bytes");
    registry.write_rule(Env::Dev, &appkey, "S", "good", None).await?;
    let mut watch = registry.watch_rule(Env::Dev, &appkey, "S").await?;
    let raw = zookeeper().await?;
    raw.set_data(&zk_rule_path(Env::Dev, &appkey, "S"), &[0xff, 0xfe], None).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = registry.read_rule(Env::Dev, &appkey, "S").await.err().context("read bytes")?;
    assert!(matches!(err, BackendError::BadData { .. }), "{err:?}");
    assert_eq!(
        watch.borrow_and_update().as_deref(),
        Some(&rule("good", 0)),
        "the watch keeps the last good one"
    );
    raw.set_data(&zk_rule_path(Env::Dev, &appkey, "S"), b"fixed", None).await?;
    wait_for(&mut watch, Some(rule("fixed", 2))).await?;
    remove_tree(&rules_of(&appkey)).await
}

#[tokio::test]
async fn a_watch_sees_create_change_and_delete_within_a_second() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("rules_watch");
    let mut watch = registry.watch_rule(Env::Dev, &appkey, "S").await?;
    assert_eq!(*watch.borrow_and_update(), None, "the node need not exist");

    registry.write_rule(Env::Dev, &appkey, "S", "created", None).await?;
    wait_for(&mut watch, Some(rule("created", 0))).await?;
    registry.write_rule(Env::Dev, &appkey, "S", "changed", Some(0)).await?;
    wait_for(&mut watch, Some(rule("changed", 1))).await?;
    // A change made outside probe is seen too.
    let raw = zookeeper().await?;
    raw.set_data(&zk_rule_path(Env::Dev, &appkey, "S"), b"by hand", None).await?;
    wait_for(&mut watch, Some(rule("by hand", 2))).await?;

    // A watch started now reads what is there.
    let late = registry.watch_rule(Env::Dev, &appkey, "S").await?;
    assert_eq!(late.borrow().as_deref(), Some(&rule("by hand", 2)));

    // Deleting the document (its history first) empties the view; creating it again shows.
    remove_tree(&zk_rule_path(Env::Dev, &appkey, "S")).await?;
    wait_for(&mut watch, None).await?;
    assert_eq!(registry.read_rule(Env::Dev, &appkey, "S").await?, None);
    assert!(registry.rule_history(Env::Dev, &appkey, "S").await?.is_empty(), "the history went with it");
    registry.write_rule(Env::Dev, &appkey, "S", "again", None).await?;
    wait_for(&mut watch, Some(rule("again", 0))).await?;
    remove_tree(&rules_of(&appkey)).await
}

#[tokio::test]
async fn a_watch_keeps_working_after_the_shared_session_expires() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("rules_expiry");
    registry.write_rule(Env::Dev, &appkey, "S", "before", None).await?;
    let mut watch = registry.watch_rule(Env::Dev, &appkey, "S").await?;
    assert_eq!(watch.borrow_and_update().as_deref(), Some(&rule("before", 0)));

    registry.expire_shared_session().await?;
    // A change made while the watch moves to the new session still reaches it.
    let raw = zookeeper().await?;
    raw.set_data(&zk_rule_path(Env::Dev, &appkey, "S"), b"during", None).await?;
    wait_for(&mut watch, Some(rule("during", 1))).await?;
    // And the registry writes on its new session; the watch follows.
    registry.write_rule(Env::Dev, &appkey, "S", "after", Some(1)).await?;
    wait_for(&mut watch, Some(rule("after", 2))).await?;

    registry.expire_shared_session().await?;
    registry.expire_shared_session().await?;
    registry.write_rule(Env::Dev, &appkey, "S", "twice", Some(2)).await?;
    wait_for(&mut watch, Some(rule("twice", 3))).await?;
    remove_tree(&zk_rule_path(Env::Dev, &appkey, "S")).await?;
    wait_for(&mut watch, None).await?;
    remove_tree(&rules_of(&appkey)).await
}

#[tokio::test]
async fn rules_add_no_children_to_the_app_path() -> Result<()> {
    let registry = registry().await?;
    let appkey = unique("rules_apart");
    let session = registry.session().await?;
    let node = NodeKey::new(Env::Dev, &appkey, "S", "127.0.0.1", 7900)?;
    session.register(&node, &NodeData::new("127.0.0.1", 7900)).await?;
    let raw = zookeeper().await?;
    let app = zk_app_path(Env::Dev, &appkey);
    let before = raw.list_children(&app).await?;
    assert_eq!(before, [node.zk_child()]);

    let _watch = registry.watch_rule(Env::Dev, &appkey, "S").await?;
    registry.write_rule(Env::Dev, &appkey, "S", "one", None).await?;
    registry.write_rule(Env::Dev, &appkey, "S", "two", Some(0)).await?;
    registry.write_rule(Env::Dev, &appkey, "Other", "one", None).await?;
    assert_eq!(raw.list_children(&app).await?, before, "the app path holds the provider only");
    assert_eq!(registry.nodes(Env::Dev, &appkey).await?.len(), 1);
    let other = unique("rules_only");
    registry.write_rule(Env::Dev, &other, "S", "one", None).await?;
    assert!(!registry.apps(Env::Dev).await?.contains(&other), "a rule makes no app");
    assert_eq!(raw.check_stat(&zk_app_path(Env::Dev, &other)).await?, None);

    session.close().await;
    remove_tree(&app).await?;
    remove_tree(&rules_of(&other)).await?;
    remove_tree(&rules_of(&appkey)).await
}
