//! The MySQL stores: the registered appkeys in the table `serviceapp` of the Python design
//! ([`MySqlApps`]), the audit log in `probe_audit`, and the migration that adds probe's optional
//! tables and columns ([`MySqlMigration`], `probe db migrate`).
//!
//! The design's `serviceapp` has only a unique `appkey`. probe reads the table's columns when it
//! connects (again when they are older than a few seconds, or a statement names one that is gone)
//! and reads and writes only those that exist: on the design's table an app has no description or
//! owner, and without `probe_audit` changes are applied and reported as not audited.

mod audit;
mod credentials;
mod migrate;
mod pool;
pub mod schema;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mysql_async::Row;
use mysql_async::prelude::Queryable;

pub use migrate::MySqlMigration;
use pool::{
    BACKEND, CONNECT_TIMEOUT, Database, ER_BAD_FIELD_ERROR, ER_DUP_ENTRY, OPERATION_TIMEOUT, server_code,
};
use schema::{SERVICEAPP, SchemaStatus};

use super::backend::{App, AppFields, AppStore, BackendError};
use super::layout::{APPS_TABLE, check_appkey};
use crate::config::MySqlUrl;
use crate::security::StoredCredential;
use crate::service::BoxFuture;

/// How long the columns read from `serviceapp` are trusted before they are read again.
const COLUMNS_TTL: Duration = Duration::from_secs(10);

const CONTAINS: &str = "SELECT count(*) FROM serviceapp WHERE appkey = ?";
const DELETE: &str = "DELETE FROM serviceapp WHERE appkey = ?";

/// The registered apps in MySQL or MariaDB, through a connection pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use probe_runtime::registry::AppStore;
/// use probe_runtime::registry::mysql::MySqlApps;
///
/// let apps = MySqlApps::connect(&"mysql://probe:secret@127.0.0.1/probe".parse()?).await?;
/// if !apps.contains("demo_app").await? {
///     eprintln!("demo_app is not registered");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MySqlApps {
    db: Database,
    /// The optional columns `serviceapp` has, and when they were read.
    fields: Arc<Mutex<(Instant, AppFields)>>,
}

impl MySqlApps {
    /// Connects to the database of `url` and checks that it holds the table `serviceapp` with a
    /// column `appkey`; when it does not, the error says to run `probe db migrate`.
    pub async fn connect(url: &MySqlUrl) -> Result<Self, BackendError> {
        let db = Database::open(url).await?;
        let status = tokio::time::timeout(CONNECT_TIMEOUT, db.schema()).await.map_err(|_| {
            BackendError::Unreachable {
                backend: BACKEND,
                addr: db.addr.clone(),
                detail: format!(
                    "check the table {APPS_TABLE}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            }
        })??;
        let fields = usable_fields(&db, &status)?;
        Ok(MySqlApps { db, fields: Arc::new(Mutex::new((Instant::now(), fields))) })
    }

    /// Connects to the database of `url` and adds what it lacks of probe's tables and columns
    /// ([`MySqlMigration::migrate`]): what a setup tool calls before [`MySqlApps::connect`].
    pub async fn connect_and_ensure_schema(url: &MySqlUrl) -> Result<Self, BackendError> {
        let migration = MySqlMigration::connect(url).await?;
        migration.migrate().await?;
        Self::connect(url).await
    }

    /// Adds what the database lacks of probe's tables and columns, leaving existing tables and
    /// rows as they are ([`MySqlMigration::migrate`]).
    pub async fn ensure_schema(&self) -> Result<(), BackendError> {
        MySqlMigration::over(self.db.clone()).migrate().await?;
        self.fields_now(true).await?;
        Ok(())
    }

    /// Closes the connections of the pool, which every clone of this store shares; operations still
    /// running finish first.
    pub async fn disconnect(self) -> Result<(), BackendError> {
        self.db.disconnect().await
    }

    /// The optional columns of `serviceapp`: those read last, unless they are older than
    /// [`COLUMNS_TTL`] or `refresh` asks to read them again.
    async fn fields_now(&self, refresh: bool) -> Result<AppFields, BackendError> {
        let (read_at, fields) = *self.fields.lock().unwrap_or_else(PoisonError::into_inner);
        if !refresh && read_at.elapsed() < COLUMNS_TTL {
            return Ok(fields);
        }
        let fields = usable_fields(&self.db, &self.db.schema().await?)?;
        *self.fields.lock().unwrap_or_else(PoisonError::into_inner) = (Instant::now(), fields);
        Ok(fields)
    }

    /// Runs `op` over the columns `serviceapp` has; when a column it names has gone since they were
    /// read, reads them again and runs it once more.
    async fn on_columns<T, Fut>(
        &self,
        action: String,
        op: impl Fn(AppFields) -> Fut,
    ) -> Result<T, BackendError>
    where
        Fut: Future<Output = Result<T, mysql_async::Error>>,
    {
        let fields = self.fields_now(false).await?;
        match self.db.within(OPERATION_TIMEOUT, &action, op(fields)).await? {
            Err(err) if server_code(&err) == Some(ER_BAD_FIELD_ERROR) => {}
            result => return result.map_err(|err| self.db.error(action, err)),
        }
        let fields = self.fields_now(true).await?;
        self.db.timed(OPERATION_TIMEOUT, action, op(fields)).await
    }
}

/// The optional fields of `serviceapp` in `status`; an error when the table or its `appkey` is
/// missing.
fn usable_fields(db: &Database, status: &SchemaStatus) -> Result<AppFields, BackendError> {
    let Some(table) = status.table(APPS_TABLE).filter(|t| t.exists) else {
        return Err(db.not_migrated(
            format!("table {APPS_TABLE}"),
            "run `probe db migrate` to create it (or create the design's table: a unique `appkey` column)",
        ));
    };
    if !table.missing_required().is_empty() {
        return Err(BackendError::Failed {
            backend: BACKEND,
            action: format!("use the table {APPS_TABLE} of the database {}", db.name),
            detail: format!(
                "it has no column `appkey`, so it is not the design's table; give it a unique `appkey` \
                 column, or point PROBE_MYSQL at the database that has the design's {APPS_TABLE}"
            ),
        });
    }
    Ok(AppFields {
        description: table.present.contains(&"description"),
        owner: table.present.contains(&"owner"),
    })
}

/// The columns written and read for `fields`, in order: `appkey` first.
fn columns(fields: AppFields) -> Vec<&'static str> {
    let optional = [("description", fields.description), ("owner", fields.owner)];
    std::iter::once("appkey").chain(optional.into_iter().filter(|(_, kept)| *kept).map(|(c, _)| c)).collect()
}

fn insert_sql(fields: AppFields) -> String {
    let columns = columns(fields);
    let marks = vec!["?"; columns.len()].join(", ");
    format!("INSERT INTO {} ({}) VALUES ({marks})", SERVICEAPP.name, columns.join(", "))
}

fn list_sql(fields: AppFields) -> String {
    format!("SELECT {} FROM {} ORDER BY appkey", columns(fields).join(", "), SERVICEAPP.name)
}

/// The app in `row` of [`list_sql`]; NULL is empty text.
fn app_from_row(mut row: Row, fields: AppFields) -> Result<App, mysql_async::FromValueError> {
    let mut next = {
        let mut at = 0;
        move |row: &mut Row| -> Result<String, mysql_async::FromValueError> {
            at += 1;
            Ok(row.take_opt::<Option<String>, _>(at - 1).transpose()?.flatten().unwrap_or_default())
        }
    };
    let appkey = next(&mut row)?;
    let description = if fields.description { next(&mut row)? } else { String::new() };
    let owner = if fields.owner { next(&mut row)? } else { String::new() };
    Ok(App { appkey, description, owner })
}

impl AppStore for MySqlApps {
    fn contains<'a>(&'a self, appkey: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(self.db.timed(OPERATION_TIMEOUT, format!("look up the appkey {appkey}"), async move {
            let mut conn = self.db.pool.get_conn().await?;
            let count: Option<u64> = conn.exec_first(CONTAINS, (appkey,)).await?;
            Ok(count.unwrap_or(0) > 0)
        }))
    }

    fn add<'a>(&'a self, app: &'a App) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move {
            let action = format!("register the appkey {:?}", app.appkey);
            check_appkey(&app.appkey).map_err(|err| BackendError::Failed {
                backend: BACKEND,
                action: action.clone(),
                detail: err.to_string(),
            })?;
            self.on_columns(action, |fields| async move {
                let mut values = vec![app.appkey.clone()];
                values.extend(fields.description.then(|| app.description.clone()));
                values.extend(fields.owner.then(|| app.owner.clone()));
                let mut conn = self.db.pool.get_conn().await?;
                match conn.exec_drop(insert_sql(fields), values).await {
                    Ok(()) => Ok(true),
                    Err(err) if server_code(&err) == Some(ER_DUP_ENTRY) => Ok(false),
                    Err(err) => Err(err),
                }
            })
            .await
        })
    }

    fn remove<'a>(&'a self, appkey: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(self.db.timed(OPERATION_TIMEOUT, format!("remove the appkey {appkey}"), async move {
            let mut conn = self.db.pool.get_conn().await?;
            conn.exec_drop(DELETE, (appkey,)).await?;
            Ok(conn.affected_rows() > 0)
        }))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<App>, BackendError>> {
        Box::pin(async move {
            let (fields, rows) = self
                .on_columns("list the apps".to_owned(), |fields| async move {
                    let mut conn = self.db.pool.get_conn().await?;
                    let rows: Vec<Row> = conn.query(list_sql(fields)).await?;
                    Ok((fields, rows))
                })
                .await?;
            let mut apps = rows
                .into_iter()
                .map(|row| app_from_row(row, fields))
                .collect::<Result<Vec<App>, _>>()
                .map_err(|err| BackendError::BadData {
                    backend: BACKEND,
                    location: format!("the table {APPS_TABLE} of the database {}", self.db.name),
                    detail: format!("a value is not text: {err}"),
                })?;
            // ORDER BY follows the column's collation; sort by code point, as the trait promises.
            apps.sort_by(|a, b| a.appkey.cmp(&b.appkey));
            Ok(apps)
        })
    }

    fn fields(&self) -> BoxFuture<'_, Result<AppFields, BackendError>> {
        Box::pin(self.fields_now(false))
    }

    fn credential<'a>(
        &'a self,
        appkey: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredCredential>, BackendError>> {
        Box::pin(async move { Ok(self.credentials_now(Some(appkey)).await?.pop()) })
    }

    fn credentials(&self) -> BoxFuture<'_, Result<Vec<StoredCredential>, BackendError>> {
        Box::pin(self.credentials_now(None))
    }

    fn set_credential<'a>(
        &'a self,
        credential: &'a StoredCredential,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.store_credential(credential))
    }
}

impl fmt::Debug for MySqlApps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlApps").field("addr", &self.db.addr).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: AppFields = AppFields { description: false, owner: false };

    #[test]
    fn statements_name_only_the_columns_that_exist() {
        assert_eq!(insert_sql(MINIMAL), "INSERT INTO serviceapp (appkey) VALUES (?)");
        assert_eq!(list_sql(MINIMAL), "SELECT appkey FROM serviceapp ORDER BY appkey");
        assert_eq!(
            insert_sql(AppFields::ALL),
            "INSERT INTO serviceapp (appkey, description, owner) VALUES (?, ?, ?)"
        );
        let owner_only = AppFields { description: false, owner: true };
        assert_eq!(list_sql(owner_only), "SELECT appkey, owner FROM serviceapp ORDER BY appkey");
    }

    #[test]
    fn queries_name_the_layout_table() {
        for sql in [CONTAINS, DELETE] {
            assert!(sql.contains(&format!(" {APPS_TABLE} ")), "{sql}");
        }
    }
}
