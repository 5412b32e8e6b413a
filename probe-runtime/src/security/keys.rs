//! A provider's copy of the caller keys in the app store: loaded when the first caller policy
//! applies, reloaded every [`RELOAD_EVERY`], and at once (at most once a second) when a token names
//! an app it does not know. Lookups on the call path are one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tracing::{debug, warn};

use super::StoredCredential;
use crate::registry::AppStore;

/// How often the keys are read again.
pub(crate) const RELOAD_EVERY: Duration = Duration::from_secs(10);
/// The shortest time between two reads.
const MIN_GAP: Duration = Duration::from_secs(1);

/// The caller keys of every app, by appkey.
pub(crate) struct CallerKeys {
    keys: ArcSwap<HashMap<String, StoredCredential>>,
    started: AtomicBool,
    /// Whether a read succeeded once.
    loaded: AtomicBool,
    reload: Notify,
    /// Why the last read failed, if it did.
    problem: Mutex<Option<String>>,
}

impl std::fmt::Debug for CallerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerKeys").field("apps", &self.keys.load().len()).finish_non_exhaustive()
    }
}

impl CallerKeys {
    pub(crate) fn new() -> Arc<CallerKeys> {
        Arc::new(CallerKeys {
            keys: ArcSwap::from_pointee(HashMap::new()),
            started: AtomicBool::new(false),
            loaded: AtomicBool::new(false),
            reload: Notify::new(),
            problem: Mutex::new(None),
        })
    }

    /// The stored credential of `appkey`, if known; asks for a reload when it is not.
    pub(crate) fn get(&self, appkey: &str) -> Option<StoredCredential> {
        let keys = self.keys.load();
        let found = keys.get(appkey).cloned();
        if found.is_none() {
            self.reload.notify_one();
        }
        found
    }

    /// Why the last read failed, if it did.
    pub(crate) fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Reads the keys now.
    pub(crate) async fn load(&self, apps: &dyn AppStore) {
        match apps.credentials().await {
            Ok(list) => {
                let keys: HashMap<String, StoredCredential> =
                    list.into_iter().map(|c| (c.appkey.clone(), c)).collect();
                debug!(apps = keys.len(), "caller keys loaded");
                self.keys.store(Arc::new(keys));
                self.loaded.store(true, Ordering::Release);
                *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
            Err(e) => {
                warn!(error = %e, "cannot read the caller keys; the ones read before stay");
                *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
            }
        }
    }

    /// Reads the keys now unless a read succeeded before.
    pub(crate) async fn ensure_loaded(&self, apps: &dyn AppStore) {
        if !self.loaded.load(Ordering::Acquire) {
            self.load(apps).await;
        }
    }

    /// Starts reloading from `apps` in the background (once; later calls do nothing). The task ends
    /// when every other holder of the keys has dropped them.
    pub(crate) fn start(self: &Arc<Self>, apps: Arc<dyn AppStore>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            // Each round holds the keys until its wait ends: the task stops within one round of
            // the server dropping them.
            while let Some(keys) = weak.upgrade() {
                keys.load(apps.as_ref()).await;
                tokio::select! {
                    () = keys.reload.notified() => {}
                    () = tokio::time::sleep(RELOAD_EVERY) => {}
                }
                drop(keys);
                tokio::time::sleep(MIN_GAP).await;
            }
        });
    }
}
