//! The MySQL [`AuditLog`]: operator changes in the table `probe_audit`, which the design's database
//! lacks until `probe db migrate` adds it.

use mysql_async::prelude::Queryable;

use super::MySqlApps;
use super::pool::{ER_NO_SUCH_TABLE, OPERATION_TIMEOUT, server_code};
use super::schema::AUDIT_TABLE;
use crate::registry::backend::{AuditEntry, AuditLog, BackendError};
use crate::service::BoxFuture;

const INSERT: &str = "INSERT INTO probe_audit (at_ms, actor, action, target, before_value, after_value) \
                      VALUES (?, ?, ?, ?, ?, ?)";
const RECENT: &str = "SELECT id, at_ms, actor, action, target, before_value, after_value FROM probe_audit \
                      ORDER BY id DESC LIMIT ?";

/// What to do when `probe_audit` is missing.
pub(super) const ENABLE_HINT: &str = "run `probe db migrate` to enable the audit log";

impl MySqlApps {
    /// `err` as a [`BackendError`]; a missing `probe_audit` says how to add it.
    fn audit_error(&self, action: String, err: mysql_async::Error) -> BackendError {
        if server_code(&err) == Some(ER_NO_SUCH_TABLE) {
            return self.db.not_migrated(format!("table {AUDIT_TABLE}"), ENABLE_HINT);
        }
        self.db.error(action, err)
    }
}

impl AuditLog for MySqlApps {
    fn record<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let action = format!("record {} of {} in {AUDIT_TABLE}", entry.action, entry.target);
            let insert = async {
                let mut conn = self.db.pool.get_conn().await?;
                let row =
                    (entry.at_ms, &entry.actor, &entry.action, &entry.target, &entry.before, &entry.after);
                conn.exec_drop(INSERT, row).await
            };
            self.db
                .within(OPERATION_TIMEOUT, &action, insert)
                .await?
                .map_err(|err| self.audit_error(action, err))
        })
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<AuditEntry>, BackendError>> {
        Box::pin(async move {
            let action = format!("read {AUDIT_TABLE}");
            let select = async {
                let mut conn = self.db.pool.get_conn().await?;
                type Row = (u64, u64, String, String, String, String, String);
                conn.exec::<Row, _, _>(RECENT, (limit as u64,)).await
            };
            let rows = self.db.within(OPERATION_TIMEOUT, &action, select).await?;
            let rows = rows.map_err(|err| self.audit_error(action, err))?;
            Ok(rows
                .into_iter()
                .map(|(id, at_ms, actor, action, target, before, after)| AuditEntry {
                    id,
                    at_ms,
                    actor,
                    action,
                    target,
                    before,
                    after,
                })
                .collect())
        })
    }
}
