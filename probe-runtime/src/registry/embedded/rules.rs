//! The embedded registry's rule documents: in memory, with ZooKeeper's semantics (the first
//! document is version 0 and each write adds one; a write replaces the version it expects or fails
//! with a conflict; the replaced texts are kept, oldest first) and a watch channel per document.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use super::registry::BACKEND;
use crate::registry::backend::{BackendError, RuleWatch, StoredRule};
use crate::registry::layout::{Env, check_appkey, check_service_name};
use crate::registry::zookeeper::zk_rule_path;

/// Every rule document of one embedded registry. Clones share them.
#[derive(Debug, Clone, Default)]
pub(super) struct EmbeddedRules {
    docs: Arc<Mutex<HashMap<RuleId, Doc>>>,
}

/// Which document: env, appkey, service.
type RuleId = (Env, String, String);

/// One service's document, its history and the view of it that watches share.
#[derive(Debug)]
struct Doc {
    current: Option<Arc<StoredRule>>,
    /// The replaced documents, oldest first.
    history: Vec<StoredRule>,
    view: watch::Sender<Option<Arc<StoredRule>>>,
}

impl Default for Doc {
    fn default() -> Self {
        Doc { current: None, history: Vec::new(), view: watch::Sender::new(None) }
    }
}

/// Checks the names of a rule, as ZooKeeper would reject a bad path; returns its id.
fn rule_id(env: Env, appkey: &str, service: &str, action: &str) -> Result<RuleId, BackendError> {
    match check_appkey(appkey).and_then(|()| check_service_name(service)) {
        Ok(()) => Ok((env, appkey.to_owned(), service.to_owned())),
        Err(err) => Err(BackendError::Failed {
            backend: BACKEND,
            action: format!("{action} {}", zk_rule_path(env, appkey, service)),
            detail: err.to_string(),
        }),
    }
}

impl EmbeddedRules {
    /// Locks the documents; a panic elsewhere cannot leave one half-changed, so a poisoned lock
    /// is fine.
    fn lock(&self) -> MutexGuard<'_, HashMap<RuleId, Doc>> {
        self.docs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn watch(&self, env: Env, appkey: &str, service: &str) -> Result<RuleWatch, BackendError> {
        let id = rule_id(env, appkey, service, "watch")?;
        let mut docs = self.lock();
        // Forget the watched-only documents nobody watches any more.
        docs.retain(|_, doc| doc.current.is_some() || doc.view.receiver_count() > 0);
        Ok(docs.entry(id).or_default().view.subscribe())
    }

    pub(super) fn read(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> Result<Option<StoredRule>, BackendError> {
        let id = rule_id(env, appkey, service, "read")?;
        Ok(self.lock().get(&id).and_then(|doc| doc.current.as_deref().cloned()))
    }

    pub(super) fn write(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
        text: &str,
        expected: Option<i32>,
    ) -> Result<i32, BackendError> {
        let id = rule_id(env, appkey, service, "write")?;
        let mut docs = self.lock();
        let doc = docs.entry(id).or_default();
        let now = doc.current.as_ref().map(|current| current.version);
        if now != expected {
            return Err(BackendError::rule_conflict(appkey, service, expected, now));
        }
        let version = match doc.current.take() {
            Some(replaced) => {
                let version = replaced.version + 1;
                doc.history.push(Arc::unwrap_or_clone(replaced));
                version
            }
            None => 0,
        };
        let current = Arc::new(StoredRule { text: text.to_owned(), version });
        doc.current = Some(current.clone());
        doc.view.send_replace(Some(current));
        Ok(version)
    }

    pub(super) fn history(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
    ) -> Result<Vec<StoredRule>, BackendError> {
        let id = rule_id(env, appkey, service, "read the history of")?;
        Ok(self.lock().get(&id).map(|doc| doc.history.clone()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use crate::registry::embedded::EmbeddedRegistry;

    fn rule(text: &str, version: i32) -> StoredRule {
        StoredRule { text: text.to_owned(), version }
    }

    #[tokio::test]
    async fn writes_compare_and_set_and_keep_the_history_in_order() {
        let registry = EmbeddedRegistry::new();
        assert_eq!(registry.read_rule(Env::Dev, "app", "Svc").await.unwrap(), None);
        assert!(registry.rule_history(Env::Dev, "app", "Svc").await.unwrap().is_empty());

        assert_eq!(registry.write_rule(Env::Dev, "app", "Svc", "one", None).await.unwrap(), 0);
        assert_eq!(registry.read_rule(Env::Dev, "app", "Svc").await.unwrap(), Some(rule("one", 0)));
        assert_eq!(registry.write_rule(Env::Dev, "app", "Svc", "two", Some(0)).await.unwrap(), 1);
        assert_eq!(registry.write_rule(Env::Dev, "app", "Svc", "three", Some(1)).await.unwrap(), 2);
        assert_eq!(registry.read_rule(Env::Dev, "app", "Svc").await.unwrap(), Some(rule("three", 2)));
        let history = registry.rule_history(Env::Dev, "app", "Svc").await.unwrap();
        assert_eq!(history, [rule("one", 0), rule("two", 1)]);
    }

    #[tokio::test]
    async fn a_stale_version_is_a_conflict_and_changes_nothing() {
        let registry = EmbeddedRegistry::new();
        let err = registry.write_rule(Env::Dev, "order_app", "Order", "x", Some(0)).await.unwrap_err();
        assert!(matches!(err, BackendError::Conflict { .. }), "{err:?}");
        assert!(err.to_string().contains("is not there"), "{err}");
        registry.write_rule(Env::Dev, "order_app", "Order", "a", None).await.unwrap();
        let err = registry.write_rule(Env::Dev, "order_app", "Order", "b", None).await.unwrap_err();
        assert!(err.to_string().contains("exists already (version 0)"), "{err}");
        registry.write_rule(Env::Dev, "order_app", "Order", "b", Some(0)).await.unwrap();
        let err = registry.write_rule(Env::Dev, "order_app", "Order", "c", Some(0)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the rule of order_app/Order changed meanwhile (now version 1): read it again and retry"
        );
        assert_eq!(registry.read_rule(Env::Dev, "order_app", "Order").await.unwrap(), Some(rule("b", 1)));
        assert_eq!(registry.rule_history(Env::Dev, "order_app", "Order").await.unwrap(), [rule("a", 0)]);
    }

    #[tokio::test]
    async fn a_watch_is_current_and_follows_writes() {
        let registry = EmbeddedRegistry::new();
        let mut watch = registry.watch_rule(Env::Dev, "app", "Svc").await.unwrap();
        assert_eq!(*watch.borrow_and_update(), None, "no document yet");
        registry.write_rule(Env::Dev, "app", "Svc", "one", None).await.unwrap();
        watch.changed().await.unwrap();
        assert_eq!(watch.borrow_and_update().as_deref(), Some(&rule("one", 0)));
        registry.write_rule(Env::Dev, "app", "Svc", "two", Some(0)).await.unwrap();
        watch.changed().await.unwrap();
        assert_eq!(watch.borrow_and_update().as_deref(), Some(&rule("two", 1)));

        let late = registry.watch_rule(Env::Dev, "app", "Svc").await.unwrap();
        assert_eq!(late.borrow().as_deref(), Some(&rule("two", 1)), "current at once");
        assert!(late.same_channel(&watch), "one channel per document");
    }

    #[tokio::test]
    async fn documents_are_apart_by_env_app_and_service() {
        let registry = EmbeddedRegistry::new();
        let prod = registry.watch_rule(Env::Prod, "app", "Svc").await.unwrap();
        let other = registry.watch_rule(Env::Dev, "app", "Other").await.unwrap();
        registry.write_rule(Env::Dev, "app", "Svc", "dev", None).await.unwrap();
        assert!(!prod.has_changed().unwrap() && !other.has_changed().unwrap());
        assert_eq!(registry.read_rule(Env::Prod, "app", "Svc").await.unwrap(), None);
        assert_eq!(registry.read_rule(Env::Dev, "app2", "Svc").await.unwrap(), None);
        assert_eq!(registry.write_rule(Env::Prod, "app", "Svc", "prod", None).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn rules_are_not_apps_or_nodes() {
        let registry = EmbeddedRegistry::new();
        registry.write_rule(Env::Dev, "app", "Svc", "doc", None).await.unwrap();
        assert!(registry.apps(Env::Dev).await.unwrap().is_empty());
        assert!(registry.nodes(Env::Dev, "app").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn bad_names_are_refused_naming_the_path() {
        let registry = EmbeddedRegistry::new();
        let err = registry.watch_rule(Env::Dev, "a/b", "Svc").await.unwrap_err();
        assert!(matches!(err, BackendError::Failed { backend: "embedded registry", .. }), "{err:?}");
        assert!(err.to_string().contains("/probe/rules/dev/a/b/Svc"), "{err}");
        assert!(registry.read_rule(Env::Dev, "app", "").await.is_err());
        assert!(registry.write_rule(Env::Dev, "app", "S-1", "x", None).await.is_err());
        assert!(registry.rule_history(Env::Dev, "", "Svc").await.is_err());
    }

    #[tokio::test]
    async fn watched_only_documents_nobody_watches_are_forgotten() {
        let registry = EmbeddedRegistry::new();
        drop(registry.watch_rule(Env::Dev, "app", "Gone").await.unwrap());
        registry.write_rule(Env::Dev, "app", "Kept", "doc", None).await.unwrap();
        let _watch = registry.watch_rule(Env::Dev, "app", "Watched").await.unwrap();
        let mut ids: Vec<String> =
            registry.rules.lock().keys().map(|(_, _, service)| service.clone()).collect();
        ids.sort();
        assert_eq!(ids, ["Kept", "Watched"]);
    }
}
