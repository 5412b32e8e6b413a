//! A connection pool to one MySQL database, with the time limits and error mapping every MySQL
//! store of probe shares. A URL with `?require_ssl=true` connects over TLS (mysql_async's rustls
//! support), checking the server's certificate against the URL's CA bundle
//! ([`MySqlUrl::with_ca`]) alone, else the webpki roots.

use std::future::Future;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool};

use super::schema::{COLUMNS_QUERY, PROBE_APP_CREDENTIALS, PROBE_AUDIT, SERVICEAPP, SchemaStatus};
use crate::config::{MySqlUrl, Setting};
use crate::registry::backend::BackendError;
use crate::registry::tls_problem;

pub(super) const BACKEND: &str = "MySQL";
/// How long connecting may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one operation, waiting for a pooled connection included, may take.
pub(super) const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// MySQL's `ER_DUP_ENTRY`.
pub(super) const ER_DUP_ENTRY: u16 = 1062;
/// MySQL's `ER_DUP_FIELDNAME`: `ADD COLUMN` of a column that exists.
pub(super) const ER_DUP_FIELDNAME: u16 = 1060;
/// MySQL's `ER_BAD_FIELD_ERROR`: a column that does not exist.
pub(super) const ER_BAD_FIELD_ERROR: u16 = 1054;
/// MySQL's `ER_NO_SUCH_TABLE`.
pub(super) const ER_NO_SUCH_TABLE: u16 = 1146;

/// What to do about a missing table or column.
pub(super) const MIGRATE_HINT: &str = "run `probe db migrate` to add probe's tables and columns \
                                       (`probe db status` shows what exists)";

/// The pool of one database. Clones share it.
#[derive(Clone)]
pub(super) struct Database {
    pub(super) pool: Pool,
    /// The URL without password, for errors and logs.
    pub(super) addr: String,
    /// The database's name.
    pub(super) name: String,
}

impl Database {
    /// Builds the pool and checks the server lets us in.
    pub(super) async fn open(url: &MySqlUrl) -> Result<Self, BackendError> {
        let addr = url.to_string();
        let mut opts = Opts::from_url(url.as_str()).map_err(|err| BackendError::Failed {
            backend: BACKEND,
            action: format!("use the URL {addr}"),
            detail: err.to_string(),
        })?;
        if let (Some(ca), Some(ssl)) = (url.ca(), opts.ssl_opts()) {
            let ssl =
                ssl.clone().with_root_certs(vec![ca.pem().to_vec().into()]).with_disable_built_in_roots(true);
            opts = OptsBuilder::from_opts(opts).ssl_opts(ssl).into();
        }
        let db = Database { pool: Pool::new(opts), addr, name: url.database().to_owned() };
        let connected = db
            .within(CONNECT_TIMEOUT, "connect", async {
                let mut conn: Conn = db.pool.get_conn().await?;
                conn.ping().await
            })
            .await?;
        match connected {
            Ok(()) => Ok(db),
            Err(err) => match tls_problem::hint(&err, Setting::MySqlTlsCa, url.ca()) {
                Some(hint) => Err(BackendError::Failed {
                    backend: BACKEND,
                    action: format!("connect to {} over TLS", db.addr),
                    detail: format!("{}; {hint}", innermost(&err)),
                }),
                None => Err(db.error("connect".to_owned(), err)),
            },
        }
    }

    /// Runs `op` within `limit`, turning its failure or time-out into a [`BackendError`].
    pub(super) async fn timed<T>(
        &self,
        limit: Duration,
        action: impl Into<String>,
        op: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<T, BackendError> {
        let action = action.into();
        match self.within(limit, &action, op).await? {
            Ok(value) => Ok(value),
            Err(err) => Err(self.error(action, err)),
        }
    }

    /// Runs `op` within `limit`: its own result, or the time-out as a [`BackendError`], for callers
    /// that look at MySQL's error codes.
    pub(super) async fn within<T>(
        &self,
        limit: Duration,
        action: &str,
        op: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<Result<T, mysql_async::Error>, BackendError> {
        tokio::time::timeout(limit, op).await.map_err(|_| BackendError::Unreachable {
            backend: BACKEND,
            addr: self.addr.clone(),
            detail: format!("{action}: no answer within {} s", limit.as_secs()),
        })
    }

    /// What the database holds of probe's tables.
    pub(super) async fn schema(&self) -> Result<SchemaStatus, BackendError> {
        let columns = self
            .timed(OPERATION_TIMEOUT, "read the columns of probe's tables", async {
                let mut conn = self.pool.get_conn().await?;
                conn.exec(COLUMNS_QUERY, (SERVICEAPP.name, PROBE_AUDIT.name, PROBE_APP_CREDENTIALS.name))
                    .await
            })
            .await?;
        Ok(SchemaStatus::new(&self.name, &columns))
    }

    /// The error for a missing `table` (or column), saying how to add it.
    pub(super) fn not_migrated(&self, missing: String, fix: &str) -> BackendError {
        BackendError::NotMigrated {
            backend: BACKEND,
            database: self.name.clone(),
            missing,
            fix: fix.to_owned(),
        }
    }

    pub(super) fn error(&self, action: String, err: mysql_async::Error) -> BackendError {
        error(&self.addr, action, err)
    }

    /// Closes the connections of the pool, which every clone shares; operations still running
    /// finish first.
    pub(super) async fn disconnect(self) -> Result<(), BackendError> {
        let addr = self.addr.clone();
        self.pool.disconnect().await.map_err(|err| error(&addr, "disconnect".to_owned(), err))
    }
}

/// A MySQL error as a [`BackendError`]: connection trouble is `Unreachable`, a missing table or
/// column says to migrate.
pub(super) fn error(addr: &str, action: String, err: mysql_async::Error) -> BackendError {
    use mysql_async::{DriverError, Error};
    match err {
        Error::Io(_) | Error::Driver(DriverError::ConnectionClosed | DriverError::PoolDisconnected) => {
            BackendError::Unreachable {
                backend: BACKEND,
                addr: addr.to_owned(),
                detail: format!("{action}: {}", innermost(&err)),
            }
        }
        Error::Server(ref server) if [ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR].contains(&server.code) => {
            BackendError::Failed { backend: BACKEND, action, detail: format!("{err}; {MIGRATE_HINT}") }
        }
        err => BackendError::Failed { backend: BACKEND, action, detail: err.to_string() },
    }
}

/// The innermost cause of `err`: mysql_async wraps an I/O error twice, each layer prefixing
/// "Input/output error".
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// The server error code of `err`, if the server answered with one.
pub(super) fn server_code(err: &mysql_async::Error) -> Option<u16> {
    match err {
        mysql_async::Error::Server(server) => Some(server.code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_unreachable_and_missing_tables_say_to_migrate() {
        let io = mysql_async::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into());
        assert!(matches!(error("mysql://db/x", "connect".into(), io), BackendError::Unreachable { .. }));
        let missing = mysql_async::Error::Server(mysql_async::ServerError {
            code: ER_NO_SUCH_TABLE,
            message: "Table 'x.serviceapp' doesn't exist".into(),
            state: "42S02".into(),
        });
        assert_eq!(server_code(&missing), Some(ER_NO_SUCH_TABLE));
        let err = error("mysql://db/x", "list the apps".into(), missing);
        assert!(err.to_string().contains("probe db migrate"), "{err}");
    }
}
