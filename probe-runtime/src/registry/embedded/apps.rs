//! The embedded app store: the registered appkeys, as the MySQL table `serviceapp` holds them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::registry::backend::{App, AppStore, BackendError};
use crate::registry::layout;
use crate::security::StoredCredential;
use crate::service::BoxFuture;

/// An in-process app store with the MySQL store's semantics: unique appkeys that match `^\w+$`.
/// Clones share one store. Its errors name the "embedded app store".
#[derive(Debug, Clone, Default)]
pub struct EmbeddedApps {
    apps: Arc<Mutex<BTreeMap<String, App>>>,
    credentials: Arc<Mutex<BTreeMap<String, StoredCredential>>>,
}

impl EmbeddedApps {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `appkeys`, with empty description and owner. Appkeys that break `^\w+$`
    /// are left out with a warning, as [`AppStore::add`] would refuse them.
    pub fn with_apps(appkeys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let store = Self::new();
        for appkey in appkeys {
            let app = App { appkey: appkey.into(), description: String::new(), owner: String::new() };
            // A duplicate changes nothing; a bad appkey is skipped.
            if let Err(err) = store.add_now(&app) {
                tracing::warn!("{err}");
            }
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, App>> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn credentials_lock(&self) -> MutexGuard<'_, BTreeMap<String, StoredCredential>> {
        self.credentials.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add_now(&self, app: &App) -> Result<bool, BackendError> {
        layout::check_appkey(&app.appkey).map_err(|err| BackendError::Failed {
            backend: "embedded app store",
            action: format!("add app {:?} to {}", app.appkey, layout::APPS_TABLE),
            detail: err.to_string(),
        })?;
        let mut apps = self.lock();
        if apps.contains_key(&app.appkey) {
            return Ok(false);
        }
        apps.insert(app.appkey.clone(), app.clone());
        Ok(true)
    }
}

impl AppStore for EmbeddedApps {
    fn contains<'a>(&'a self, appkey: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move { Ok(self.lock().contains_key(appkey)) })
    }

    fn add<'a>(&'a self, app: &'a App) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move { self.add_now(app) })
    }

    fn remove<'a>(&'a self, appkey: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move { Ok(self.lock().remove(appkey).is_some()) })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<App>, BackendError>> {
        Box::pin(async move { Ok(self.lock().values().cloned().collect()) })
    }

    fn credential<'a>(
        &'a self,
        appkey: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredCredential>, BackendError>> {
        Box::pin(async move { Ok(self.credentials_lock().get(appkey).cloned()) })
    }

    fn credentials(&self) -> BoxFuture<'_, Result<Vec<StoredCredential>, BackendError>> {
        Box::pin(async move { Ok(self.credentials_lock().values().cloned().collect()) })
    }

    fn set_credential<'a>(
        &'a self,
        credential: &'a StoredCredential,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.credentials_lock().insert(credential.appkey.clone(), credential.clone());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(appkey: &str, owner: &str) -> App {
        App { appkey: appkey.to_owned(), description: format!("{appkey} app"), owner: owner.to_owned() }
    }

    #[tokio::test]
    async fn add_contains_remove() {
        let store = EmbeddedApps::new();
        assert!(!store.contains("orders").await.unwrap());
        assert!(store.add(&app("orders", "ann")).await.unwrap());
        assert!(store.contains("orders").await.unwrap());
        assert!(store.remove("orders").await.unwrap());
        assert!(!store.remove("orders").await.unwrap());
        assert!(!store.contains("orders").await.unwrap());
    }

    #[tokio::test]
    async fn duplicate_add_changes_nothing() {
        let store = EmbeddedApps::new();
        assert!(store.add(&app("orders", "ann")).await.unwrap());
        assert!(!store.add(&app("orders", "bob")).await.unwrap());
        assert_eq!(store.list().await.unwrap(), [app("orders", "ann")]);
    }

    #[tokio::test]
    async fn invalid_appkey_is_refused_with_a_clear_error() {
        let store = EmbeddedApps::new();
        let err = store.add(&app("bad-key", "ann")).await.unwrap_err();
        assert!(matches!(err, BackendError::Failed { backend: "embedded app store", .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("bad-key") && message.contains("serviceapp"), "{message}");
        assert!(message.contains(r"^\w+$"), "{message}");
        assert!(store.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn list_is_sorted_and_with_apps_fills_the_store() {
        let store = EmbeddedApps::with_apps(["zeta", "alpha", "bad key", "alpha", "mid_1"]);
        let keys: Vec<String> = store.list().await.unwrap().into_iter().map(|app| app.appkey).collect();
        assert_eq!(keys, ["alpha", "mid_1", "zeta"]);
        let clone = store.clone();
        assert!(clone.remove("mid_1").await.unwrap());
        assert!(!store.contains("mid_1").await.unwrap(), "clones share one store");
    }
}
