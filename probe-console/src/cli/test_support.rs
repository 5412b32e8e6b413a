//! Backends for the CLI's tests.

use probe_runtime::registry::{AuditEntry, AuditLog, BackendError};
use probe_runtime::service::BoxFuture;

/// An audit log whose table is missing, as on the design's database: every record fails the way
/// the MySQL store fails there.
#[derive(Debug)]
pub(crate) struct NoAuditTable;

impl AuditLog for NoAuditTable {
    fn record<'a>(&'a self, _: &'a AuditEntry) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async {
            Err(BackendError::NotMigrated {
                backend: "MySQL",
                database: "design".into(),
                missing: "table probe_audit".into(),
                fix: "run `probe db migrate` to enable the audit log".into(),
            })
        })
    }

    fn recent(&self, _: usize) -> BoxFuture<'_, Result<Vec<AuditEntry>, BackendError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}
