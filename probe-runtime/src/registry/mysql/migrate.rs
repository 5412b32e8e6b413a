//! `probe db status` and `probe db migrate`: what a database holds of probe's tables, and the
//! statements that add the rest. The design's database (a `serviceapp` with only a unique `appkey`)
//! works as it is; the migration adds probe's optional columns and tables, never drops or changes
//! anything, and does nothing on a database that is up to date.

use std::fmt;

use mysql_async::prelude::Queryable;

use super::pool::{Database, ER_DUP_FIELDNAME, OPERATION_TIMEOUT, server_code};
use super::schema::SchemaStatus;
use crate::config::MySqlUrl;
use crate::registry::backend::BackendError;

/// The schema of one MySQL database, read and migrated.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use probe_runtime::registry::mysql::MySqlMigration;
///
/// let db = MySqlMigration::connect(&"mysql://probe:secret@127.0.0.1/probe".parse()?).await?;
/// for statement in db.migrate().await? {
///     println!("applied: {statement}");
/// }
/// # Ok(())
/// # }
/// ```
pub struct MySqlMigration {
    db: Database,
}

impl MySqlMigration {
    /// Connects to the database of `url`, which need not hold any table yet.
    pub async fn connect(url: &MySqlUrl) -> Result<Self, BackendError> {
        Ok(Self::over(Database::open(url).await?))
    }

    pub(super) fn over(db: Database) -> Self {
        MySqlMigration { db }
    }

    /// What the database holds of probe's tables and what is missing.
    pub async fn status(&self) -> Result<SchemaStatus, BackendError> {
        self.db.schema().await
    }

    /// Adds what [`MySqlMigration::status`] finds missing and returns the statements it ran, in
    /// order: none when the database is up to date. Refuses a `serviceapp` without `appkey`.
    pub async fn migrate(&self) -> Result<Vec<String>, BackendError> {
        let status = self.status().await?;
        if let Some(table) = status.tables.iter().find(|t| !t.missing_required().is_empty()) {
            return Err(BackendError::Failed {
                backend: super::pool::BACKEND,
                action: format!("migrate the database {}", self.db.name),
                detail: format!(
                    "its table {} has no column {}, so it is not the design's table; probe adds only \
                     optional columns: fix the table by hand",
                    table.spec.name,
                    table.missing_required().join(", ")
                ),
            });
        }
        let statements = status.statements();
        for statement in &statements {
            let action = format!("run `{statement}`");
            let run = async {
                let mut conn = self.db.pool.get_conn().await?;
                conn.query_drop(statement).await
            };
            match self.db.within(OPERATION_TIMEOUT, &action, run).await? {
                // Another migration added the column first.
                Err(err) if server_code(&err) == Some(ER_DUP_FIELDNAME) => {}
                result => result.map_err(|err| self.db.error(action, err))?,
            }
        }
        Ok(statements)
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        &self.db.name
    }

    /// Closes the connections.
    pub async fn disconnect(self) -> Result<(), BackendError> {
        self.db.disconnect().await
    }
}

impl fmt::Debug for MySqlMigration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlMigration").field("addr", &self.db.addr).finish_non_exhaustive()
    }
}
