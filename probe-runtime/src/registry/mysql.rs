//! The MySQL [`AppStore`]: the registered appkeys in the table `serviceapp` of the Python design,
//! whose schema is `scripts/schema.sql`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Pool};

use super::backend::{App, AppStore, AuditEntry, AuditLog, BackendError};
use super::layout::{APPS_TABLE, check_appkey};
use crate::config::MySqlUrl;
use crate::service::BoxFuture;

const BACKEND: &str = "MySQL";
/// How long connecting (and checking the table) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one operation, waiting for a pooled connection included, may take.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema probe uses, applied by [`MySqlApps::ensure_schema`].
const SCHEMA_SQL: &str = include_str!("../../../scripts/schema.sql");

/// MySQL's `ER_DUP_ENTRY`.
const ER_DUP_ENTRY: u16 = 1062;
/// MySQL's `ER_NO_SUCH_TABLE`.
const ER_NO_SUCH_TABLE: u16 = 1146;

const TABLE_EXISTS: &str =
    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?";
const CONTAINS: &str = "SELECT count(*) FROM serviceapp WHERE appkey = ?";
const INSERT: &str = "INSERT INTO serviceapp (appkey, description, owner) VALUES (?, ?, ?)";
const DELETE: &str = "DELETE FROM serviceapp WHERE appkey = ?";
const LIST: &str = "SELECT appkey, description, owner FROM serviceapp ORDER BY appkey";

const SCHEMA_HINT: &str = "apply scripts/schema.sql to it (`mysql <database> < scripts/schema.sql`; \
                           `scripts/services.sh up` does it for the test services)";

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
    pool: Pool,
    /// The URL without password, for errors and logs.
    addr: String,
}

impl MySqlApps {
    /// Connects to the database of `url` and checks that it holds the table `serviceapp`; when it
    /// does not, the error says to apply `scripts/schema.sql`.
    pub async fn connect(url: &MySqlUrl) -> Result<Self, BackendError> {
        let apps = Self::open(url).await?;
        let exists = apps
            .timed(CONNECT_TIMEOUT, "check the table serviceapp", async {
                let mut conn = apps.pool.get_conn().await?;
                conn.exec_first::<u64, _, _>(TABLE_EXISTS, (APPS_TABLE,)).await
            })
            .await?;
        if exists.unwrap_or(0) > 0 {
            return Ok(apps);
        }
        Err(BackendError::Failed {
            backend: BACKEND,
            action: format!("find the table {APPS_TABLE}"),
            detail: format!("the database {} has no table {APPS_TABLE}; {SCHEMA_HINT}", url.database()),
        })
    }

    /// Connects to the database of `url` and creates the table `serviceapp` there if it is
    /// missing: what a setup tool calls before [`MySqlApps::connect`] can succeed.
    pub async fn connect_and_ensure_schema(url: &MySqlUrl) -> Result<Self, BackendError> {
        let apps = Self::open(url).await?;
        apps.ensure_schema().await?;
        Ok(apps)
    }

    /// Applies `scripts/schema.sql` (`CREATE TABLE IF NOT EXISTS`), leaving an existing table as
    /// it is.
    pub async fn ensure_schema(&self) -> Result<(), BackendError> {
        self.timed(OPERATION_TIMEOUT, "apply scripts/schema.sql", async {
            let mut conn = self.pool.get_conn().await?;
            for statement in schema_statements() {
                conn.query_drop(statement).await?;
            }
            Ok(())
        })
        .await
    }

    /// Closes the connections of the pool, which every clone of this store shares; operations still
    /// running finish first.
    pub async fn disconnect(self) -> Result<(), BackendError> {
        let addr = self.addr.clone();
        self.pool.disconnect().await.map_err(|err| error(&addr, "disconnect".to_owned(), err))
    }

    /// Builds the pool and checks the server lets us in.
    async fn open(url: &MySqlUrl) -> Result<Self, BackendError> {
        let addr = url.to_string();
        let opts = Opts::from_url(url.as_str()).map_err(|err| BackendError::Failed {
            backend: BACKEND,
            action: format!("use the URL {addr}"),
            detail: err.to_string(),
        })?;
        let apps = MySqlApps { pool: Pool::new(opts), addr };
        apps.timed(CONNECT_TIMEOUT, "connect", async {
            let mut conn: Conn = apps.pool.get_conn().await?;
            conn.ping().await
        })
        .await?;
        Ok(apps)
    }

    /// Runs `op` within `limit`, turning its failure or time-out into a [`BackendError`].
    async fn timed<T>(
        &self,
        limit: Duration,
        action: impl Into<String>,
        op: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<T, BackendError> {
        let result = tokio::time::timeout(limit, op).await;
        let action = action.into();
        match result {
            Ok(result) => result.map_err(|err| error(&self.addr, action, err)),
            Err(_) => Err(BackendError::Unreachable {
                backend: BACKEND,
                addr: self.addr.clone(),
                detail: format!("{action}: no answer within {} s", limit.as_secs()),
            }),
        }
    }
}

/// The statements of `scripts/schema.sql`, without its comments.
fn schema_statements() -> Vec<String> {
    let text =
        SCHEMA_SQL.lines().filter(|line| !line.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    text.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn error(addr: &str, action: String, err: mysql_async::Error) -> BackendError {
    use mysql_async::{DriverError, Error};
    match err {
        Error::Io(_) | Error::Driver(DriverError::ConnectionClosed | DriverError::PoolDisconnected) => {
            BackendError::Unreachable {
                backend: BACKEND,
                addr: addr.to_owned(),
                detail: format!("{action}: {err}"),
            }
        }
        Error::Server(ref server) if server.code == ER_NO_SUCH_TABLE => {
            BackendError::Failed { backend: BACKEND, action, detail: format!("{err}; {SCHEMA_HINT}") }
        }
        err => BackendError::Failed { backend: BACKEND, action, detail: err.to_string() },
    }
}

impl AppStore for MySqlApps {
    fn contains<'a>(&'a self, appkey: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(self.timed(OPERATION_TIMEOUT, format!("look up the appkey {appkey}"), async move {
            let mut conn = self.pool.get_conn().await?;
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
            self.timed(OPERATION_TIMEOUT, action, async {
                let mut conn = self.pool.get_conn().await?;
                match conn.exec_drop(INSERT, (&app.appkey, &app.description, &app.owner)).await {
                    Ok(()) => Ok(true),
                    Err(mysql_async::Error::Server(err)) if err.code == ER_DUP_ENTRY => Ok(false),
                    Err(err) => Err(err),
                }
            })
            .await
        })
    }

    fn remove<'a>(&'a self, appkey: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(self.timed(OPERATION_TIMEOUT, format!("remove the appkey {appkey}"), async move {
            let mut conn = self.pool.get_conn().await?;
            conn.exec_drop(DELETE, (appkey,)).await?;
            Ok(conn.affected_rows() > 0)
        }))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<App>, BackendError>> {
        Box::pin(self.timed(OPERATION_TIMEOUT, "list the apps", async {
            let mut conn = self.pool.get_conn().await?;
            let rows: Vec<(String, String, String)> = conn.query(LIST).await?;
            let mut apps: Vec<App> = rows
                .into_iter()
                .map(|(appkey, description, owner)| App { appkey, description, owner })
                .collect();
            // ORDER BY follows the column's collation; sort by code point, as the trait promises.
            apps.sort_by(|a, b| a.appkey.cmp(&b.appkey));
            Ok(apps)
        }))
    }
}

const AUDIT_INSERT: &str = "INSERT INTO probe_audit (at_ms, actor, action, target, before_value, after_value) \
                            VALUES (?, ?, ?, ?, ?, ?)";
const AUDIT_RECENT: &str = "SELECT id, at_ms, actor, action, target, before_value, after_value FROM probe_audit \
                            ORDER BY id DESC LIMIT ?";

impl AuditLog for MySqlApps {
    fn record<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.timed(
            OPERATION_TIMEOUT,
            format!("record {} of {} in probe_audit", entry.action, entry.target),
            async {
                let mut conn = self.pool.get_conn().await?;
                let row =
                    (entry.at_ms, &entry.actor, &entry.action, &entry.target, &entry.before, &entry.after);
                conn.exec_drop(AUDIT_INSERT, row).await
            },
        ))
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<AuditEntry>, BackendError>> {
        Box::pin(self.timed(OPERATION_TIMEOUT, "read probe_audit", async move {
            let mut conn = self.pool.get_conn().await?;
            type Row = (u64, u64, String, String, String, String, String);
            let rows: Vec<Row> = conn.exec(AUDIT_RECENT, (limit as u64,)).await?;
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
        }))
    }
}

impl fmt::Debug for MySqlApps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlApps").field("addr", &self.addr).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_creates_serviceapp_and_the_audit_table() {
        let statements = schema_statements();
        assert_eq!(statements.len(), 2, "{statements:?}");
        assert!(statements[1].starts_with("CREATE TABLE IF NOT EXISTS probe_audit ("), "{statements:?}");
        assert!(
            statements[0].starts_with(&format!("CREATE TABLE IF NOT EXISTS {APPS_TABLE} (")),
            "{statements:?}"
        );
        assert!(statements[0].contains("UNIQUE KEY uk_appkey (appkey)"));
    }

    #[test]
    fn queries_name_the_layout_table() {
        for sql in [CONTAINS, INSERT, DELETE, LIST] {
            assert!(sql.contains(&format!(" {APPS_TABLE} ")), "{sql}");
        }
    }

    #[test]
    fn connection_errors_are_unreachable_and_server_errors_failed() {
        let io = mysql_async::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into());
        assert!(matches!(error("mysql://db/x", "connect".into(), io), BackendError::Unreachable { .. }));
        let missing = mysql_async::Error::Server(mysql_async::ServerError {
            code: ER_NO_SUCH_TABLE,
            message: "Table 'x.serviceapp' doesn't exist".into(),
            state: "42S02".into(),
        });
        let err = error("mysql://db/x", "list the apps".into(), missing);
        assert!(err.to_string().contains("scripts/schema.sql"), "{err}");
    }
}
