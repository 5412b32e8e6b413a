//! Setting and rolling back rules on the embedded backends: revisions, refusals, the audit log and
//! a writer who races us.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::registry::backend::{AppWatch, RegisteredNode, Registry, RegistrySession, RuleWatch};
use crate::registry::backends::Backends;
use crate::registry::embedded::Embedded;
use crate::registry::layout::{Env, NodeData, NodeKey};
use crate::service::BoxFuture;

const SPLIT: &str = r#"{"versions": [{"version": "1", "share": 90}, {"version": "2", "share": 10}]}"#;
const ALL_ON_2: &str = r#"{"versions": [{"version": "2", "share": 100}]}"#;

/// Registers two nodes of `Op` declaring versions "1" and "2"; the session keeps them.
async fn two_versions(backends: &Backends) -> Box<dyn RegistrySession> {
    let session = backends.registry.session().await.unwrap();
    for (port, version) in [(1, "1"), (2, "2")] {
        let key = NodeKey::new(Env::Dev, "op_app", "Op", "10.0.0.1", port).unwrap();
        let mut data = NodeData::new("10.0.0.1", port);
        data.version = Some(version.to_owned());
        session.register(&key, &data).await.unwrap();
    }
    session
}

#[tokio::test]
async fn sets_count_up_and_are_audited() {
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    let _nodes = two_versions(&backends).await;
    let op = Operator::new(backends.clone()).with_actor("cli:alice");

    let first = op.set_rule("op_app", "Op", SPLIT).await.unwrap();
    assert_eq!((first.rule.revision, first.version, first.before.is_none()), (1, 0, true));
    let second = op.set_rule("op_app", "Op", ALL_ON_2).await.unwrap();
    assert_eq!((second.rule.revision, second.version), (2, 1));
    assert_eq!(second.before.as_ref().and_then(RuleRevision::revision), Some(1));
    assert_eq!(second.audit, Ok(()));

    let revisions = op.rule_revisions("op_app", "Op").await.unwrap();
    let seen: Vec<_> = revisions.iter().map(|r| (r.revision(), r.stored.version, r.current)).collect();
    assert_eq!(seen, [(Some(1), 0, false), (Some(2), 1, true)]);
    let stored = backends.registry.read_rule(Env::Dev, "op_app", "Op").await.unwrap().unwrap();
    assert_eq!(Rule::parse(&stored.text).unwrap(), second.rule, "the document carries its revision");

    let log = backends.audit.recent(10).await.unwrap();
    let entries: Vec<_> = log
        .iter()
        .map(|e| {
            (e.actor.as_str(), e.action.as_str(), e.target.as_str(), e.before.as_str(), e.after.as_str())
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("cli:alice", "rule_set", "op_app/Op", "revision 1", "revision 2"),
            ("cli:alice", "rule_set", "op_app/Op", "", "revision 1"),
        ]
    );
}

#[tokio::test]
async fn refused_rules_name_every_problem_and_write_nothing() {
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    let _nodes = two_versions(&backends).await;
    let op = Operator::new(backends.clone());
    let problems = |err: OperatorError| match err {
        OperatorError::RuleRefused { target, problems } => {
            assert_eq!(target, "op_app/Op");
            problems
        }
        other => panic!("not refused: {other}"),
    };

    let sum = r#"{"versions": [{"version": "1", "share": 50}, {"version": "2", "share": 40}]}"#;
    let err = op.set_rule("op_app", "Op", sum).await.unwrap_err();
    assert!(err.to_string().contains("/versions: the shares sum to 90, not 100"), "{err}");
    assert_eq!(problems(err)[0].at, "/versions");

    let malformed = "{\n  \"versions\": [\n    {\"version\": \"1\", \"share\": 100},\n  ]\n}";
    let found = problems(op.set_rule("op_app", "Op", malformed).await.unwrap_err());
    assert!(found[0].at.starts_with("line 4, column"), "{found:?}");

    let unknown = r#"{"versions": [{"version": "1", "share": 50}, {"version": "3", "share": 50}]}"#;
    let found = problems(op.set_rule("op_app", "Op", unknown).await.unwrap_err());
    assert_eq!(found[0].at, "/versions/1/version");
    assert!(found[0].message.contains("unknown version \"3\"") && found[0].message.contains("live: 1, 2"));
    assert!(op.check_rule("op_app", "Op", SPLIT).await.is_ok());

    assert_eq!(backends.registry.read_rule(Env::Dev, "op_app", "Op").await.unwrap(), None);
    assert!(backends.audit.recent(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_document_that_does_not_parse_counts_by_its_place() {
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    let _nodes = two_versions(&backends).await;
    let registry = &backends.registry;
    registry.write_rule(Env::Dev, "op_app", "Op", r#"{"revision": 7}"#, None).await.unwrap();
    registry.write_rule(Env::Dev, "op_app", "Op", "hand-written", Some(0)).await.unwrap();
    registry.write_rule(Env::Dev, "op_app", "Op", "{not json", Some(1)).await.unwrap();
    let op = Operator::new(backends.clone());
    let revisions = op.rule_revisions("op_app", "Op").await.unwrap();
    assert_eq!(revisions.iter().map(RuleRevision::revision).collect::<Vec<_>>(), [Some(7), None, None]);

    // Two history entries + 1 = 3 for the document in force, but revision 7 is stored already.
    let change = op.set_rule("op_app", "Op", SPLIT).await.unwrap();
    assert_eq!((change.rule.revision, change.version), (8, 3));
    let log = backends.audit.recent(1).await.unwrap();
    assert_eq!(log[0].before, "store version 2 (not a valid rule)");

    let registry = &backends.registry;
    registry.write_rule(Env::Dev, "other_app", "Op", "junk", None).await.unwrap();
    registry.write_rule(Env::Dev, "other_app", "Op", "junk again", Some(0)).await.unwrap();
    let op = Operator::new(backends.clone());
    assert_eq!(op.set_rule("other_app", "Op", "{}").await.unwrap().rule.revision, 3);
}

#[tokio::test]
async fn rollbacks_write_an_earlier_document_again() {
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    let nodes = two_versions(&backends).await;
    let op = Operator::new(backends.clone()).with_actor("cli:bob");
    op.set_rule("op_app", "Op", SPLIT).await.unwrap();
    op.set_rule("op_app", "Op", ALL_ON_2).await.unwrap();

    // Version 2's node is gone: the rollback is not stopped, and says so.
    let two = NodeKey::new(Env::Dev, "op_app", "Op", "10.0.0.1", 2).unwrap();
    nodes.deregister(&two).await.unwrap();
    let change = op.rollback_rule("op_app", "Op", 1).await.unwrap();
    assert_eq!((change.rule.revision, change.version, change.from), (3, 2, Some(1)));
    assert_eq!(change.rule.versions, Rule::parse(SPLIT).unwrap().versions);
    assert_eq!(change.unknown_versions.len(), 1, "{:?}", change.unknown_versions);
    let log = backends.audit.recent(1).await.unwrap();
    assert_eq!(
        (log[0].action.as_str(), log[0].target.as_str(), log[0].before.as_str(), log[0].after.as_str()),
        ("rule_rollback", "op_app/Op", "revision 2", "revision 3 (revision 1 again)")
    );

    let err = op.rollback_rule("op_app", "Op", 9).await.unwrap_err();
    assert!(matches!(&err, OperatorError::UnknownRevision { revision: 9, .. }), "{err}");
    assert!(err.to_string().contains("(stored: 1, 2, 3)") && err.to_string().contains("probe rules history"));
    let err = op.rollback_rule("op_app", "Nothing", 1).await.unwrap_err();
    assert!(err.to_string().contains("(stored: none)"), "{err}");
}

/// A registry where someone else writes the rule right after our first read of it.
#[derive(Debug)]
struct Racing {
    inner: Arc<dyn Registry>,
    raced: AtomicBool,
}

impl Registry for Racing {
    fn session(&self) -> BoxFuture<'_, Result<Box<dyn RegistrySession>, BackendError>> {
        self.inner.session()
    }

    fn watch_app(&self, env: Env, appkey: &str) -> BoxFuture<'_, Result<AppWatch, BackendError>> {
        self.inner.watch_app(env, appkey)
    }

    fn nodes(&self, env: Env, appkey: &str) -> BoxFuture<'_, Result<Vec<RegisteredNode>, BackendError>> {
        self.inner.nodes(env, appkey)
    }

    fn apps(&self, env: Env) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        self.inner.apps(env)
    }

    fn update(&self, key: &NodeKey, data: &NodeData) -> BoxFuture<'_, Result<bool, BackendError>> {
        self.inner.update(key, data)
    }

    fn watch_rule(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<RuleWatch, BackendError>> {
        self.inner.watch_rule(env, appkey, service)
    }

    fn read_rule(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<Option<StoredRule>, BackendError>> {
        let (appkey, service) = (appkey.to_owned(), service.to_owned());
        Box::pin(async move {
            let read = self.inner.read_rule(env, &appkey, &service).await?;
            if !self.raced.swap(true, Ordering::SeqCst) {
                let expected = read.as_ref().map(|r| r.version);
                self.inner.write_rule(env, &appkey, &service, r#"{"revision": 40}"#, expected).await?;
            }
            Ok(read)
        })
    }

    fn write_rule<'a>(
        &'a self,
        env: Env,
        appkey: &'a str,
        service: &'a str,
        text: &'a str,
        expected: Option<i32>,
    ) -> BoxFuture<'a, Result<i32, BackendError>> {
        self.inner.write_rule(env, appkey, service, text, expected)
    }

    fn rule_history(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> BoxFuture<'_, Result<Vec<StoredRule>, BackendError>> {
        self.inner.rule_history(env, appkey, service)
    }
}

#[tokio::test]
async fn a_write_that_raced_another_is_a_conflict_and_changes_nothing() {
    let embedded = Embedded::new();
    let plain = Backends::embedded(Env::Dev, &embedded);
    let _nodes = two_versions(&plain).await;
    Operator::new(plain.clone()).set_rule("op_app", "Op", SPLIT).await.unwrap();

    let racing = Racing { inner: Arc::clone(&plain.registry), raced: AtomicBool::new(false) };
    let op = Operator::new(Backends { registry: Arc::new(racing), ..plain.clone() });
    let err = op.set_rule("op_app", "Op", ALL_ON_2).await.unwrap_err();
    assert!(matches!(err, OperatorError::Backend(BackendError::Conflict { .. })), "{err}");
    assert_eq!(
        err.to_string(),
        "the rule of op_app/Op changed meanwhile (now version 1): read it again and retry"
    );
    let stored = plain.registry.read_rule(Env::Dev, "op_app", "Op").await.unwrap().unwrap();
    assert_eq!(stored.text, r#"{"revision": 40}"#, "the other writer's document stands");
    let actions: Vec<String> = plain.audit.recent(10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["rule_set"], "only the first set is audited");
}

#[tokio::test]
async fn an_editor_s_write_lands_only_on_the_version_it_read() {
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    let _nodes = two_versions(&backends).await;
    let op = Operator::new(backends.clone());
    // Nothing read yet, something there: refused.
    op.set_rule("op_app", "Op", SPLIT).await.unwrap();
    let stale = op.set_rule_at("op_app", "Op", ALL_ON_2, None).await.unwrap_err();
    assert!(matches!(stale, OperatorError::Backend(BackendError::Conflict { .. })), "{stale}");
    let stale = op.set_rule_at("op_app", "Op", ALL_ON_2, Some(7)).await.unwrap_err();
    assert!(stale.to_string().contains("changed meanwhile (now version 0)"), "{stale}");
    let revisions = op.rule_revisions("op_app", "Op").await.unwrap();
    assert_eq!(revisions.len(), 1, "nothing written");
    // At the version read: written.
    let change = op.set_rule_at("op_app", "Op", ALL_ON_2, Some(0)).await.unwrap();
    assert_eq!((change.rule.revision, change.version), (2, 1));
}
