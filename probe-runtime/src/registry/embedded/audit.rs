//! The embedded audit log: operator changes kept in memory, newest last.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::registry::backend::{AuditEntry, AuditLog, BackendError};
use crate::service::BoxFuture;

/// An in-process audit log with the MySQL log's semantics: ids count up from 1, `recent` is
/// newest first. Clones share one log.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedAudit {
    entries: Arc<Mutex<Vec<AuditEntry>>>,
}

impl EmbeddedAudit {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<AuditEntry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AuditLog for EmbeddedAudit {
    fn record<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), BackendError>> {
        let mut entries = self.lock();
        let id = entries.len() as u64 + 1;
        entries.push(AuditEntry { id, ..entry.clone() });
        Box::pin(async { Ok(()) })
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<AuditEntry>, BackendError>> {
        let recent = self.lock().iter().rev().take(limit).cloned().collect();
        Box::pin(async { Ok(recent) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_count_up_and_recent_is_newest_first() {
        let log = EmbeddedAudit::new();
        for action in ["disable", "enable", "set_weight"] {
            let entry = AuditEntry {
                id: 99,
                at_ms: 1,
                actor: "test".into(),
                action: action.into(),
                target: "a|dev|S|10.0.0.1|1".into(),
                before: String::new(),
                after: String::new(),
            };
            log.record(&entry).await.unwrap();
        }
        let recent = log.recent(2).await.unwrap();
        assert_eq!(
            recent.iter().map(|e| (e.id, e.action.as_str())).collect::<Vec<_>>(),
            [(3, "set_weight"), (2, "enable")]
        );
    }
}
