//! App credentials in `probe_app_credentials`: what verifies each app's credential, never the
//! secret.

use mysql_async::Row;
use mysql_async::prelude::Queryable;

use super::MySqlApps;
use super::pool::{BACKEND, ER_NO_SUCH_TABLE, MIGRATE_HINT, OPERATION_TIMEOUT, server_code};
use super::schema::CREDENTIALS_TABLE;
use crate::registry::backend::BackendError;
use crate::security::StoredCredential;

const COLUMNS: &str = "appkey, zk_digest, caller_key, previous_zk_digest, previous_caller_key, issued_at_ms";

impl MySqlApps {
    fn credentials_error(&self, action: String, err: mysql_async::Error) -> BackendError {
        if server_code(&err) == Some(ER_NO_SUCH_TABLE) {
            return self.db.not_migrated(format!("table {CREDENTIALS_TABLE}"), MIGRATE_HINT);
        }
        self.db.error(action, err)
    }

    fn credential_from_row(&self, row: Row) -> Result<StoredCredential, BackendError> {
        type Columns = (String, String, String, Option<String>, Option<String>, u64);
        let (appkey, zk_digest, caller_key, previous_zk_digest, previous_caller_key, issued_at_ms) =
            mysql_async::from_row_opt::<Columns>(row).map_err(|e| BackendError::BadData {
                backend: BACKEND,
                location: format!("the table {CREDENTIALS_TABLE} of the database {}", self.db.name),
                detail: format!("a row is not (text, text, text, text or NULL, text or NULL, integer): {e}"),
            })?;
        Ok(StoredCredential {
            appkey,
            zk_digest,
            caller_key,
            previous_zk_digest,
            previous_caller_key,
            issued_at_ms,
        })
    }

    pub(super) async fn credentials_now(
        &self,
        appkey: Option<&str>,
    ) -> Result<Vec<StoredCredential>, BackendError> {
        let action = match appkey {
            Some(appkey) => format!("read the credential of {appkey}"),
            None => "read the app credentials".to_owned(),
        };
        let rows = self
            .db
            .within(OPERATION_TIMEOUT, &action, async {
                let mut conn = self.db.pool.get_conn().await?;
                match appkey {
                    Some(appkey) => {
                        let sql = format!("SELECT {COLUMNS} FROM {CREDENTIALS_TABLE} WHERE appkey = ?");
                        conn.exec::<Row, _, _>(sql, (appkey,)).await
                    }
                    None => conn.query::<Row, _>(format!("SELECT {COLUMNS} FROM {CREDENTIALS_TABLE}")).await,
                }
            })
            .await?
            .map_err(|e| self.credentials_error(action, e))?;
        rows.into_iter().map(|row| self.credential_from_row(row)).collect()
    }

    pub(super) async fn store_credential(&self, credential: &StoredCredential) -> Result<(), BackendError> {
        let action = format!("store the credential of {}", credential.appkey);
        let sql = format!(
            "INSERT INTO {CREDENTIALS_TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
             zk_digest = VALUES(zk_digest), caller_key = VALUES(caller_key), \
             previous_zk_digest = VALUES(previous_zk_digest), previous_caller_key = VALUES(previous_caller_key), \
             issued_at_ms = VALUES(issued_at_ms)"
        );
        let c = credential.clone();
        self.db
            .within(OPERATION_TIMEOUT, &action, async {
                let mut conn = self.db.pool.get_conn().await?;
                conn.exec_drop(
                    sql,
                    (
                        c.appkey,
                        c.zk_digest,
                        c.caller_key,
                        c.previous_zk_digest,
                        c.previous_caller_key,
                        c.issued_at_ms,
                    ),
                )
                .await
            })
            .await?
            .map_err(|e| self.credentials_error(action, e))
    }
}
