//! The tables probe uses in MySQL, as data: the design's `serviceapp` (a unique `appkey`) with
//! probe's optional columns, and probe's own `probe_audit`. From them and what a database holds,
//! [`SchemaStatus`] says what exists and what is missing, and which statements add it.
//!
//! `scripts/schema.sql` writes the same tables out in full; a unit test keeps the two equal.

use std::collections::BTreeMap;

use crate::registry::layout::APPS_TABLE;

/// The audit log's table.
pub const AUDIT_TABLE: &str = "probe_audit";

/// One column: its name and its SQL definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The name.
    pub name: &'static str,
    /// The type and constraints, as `CREATE TABLE` and `ADD COLUMN` take them.
    pub definition: &'static str,
    /// Whether probe cannot use the table without it (the design's own columns).
    pub required: bool,
}

/// One table probe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// The name.
    pub name: &'static str,
    /// What probe keeps there, for people.
    pub purpose: &'static str,
    /// Its columns, in `CREATE TABLE` order.
    pub columns: &'static [ColumnSpec],
    /// Its keys, as `CREATE TABLE` takes them.
    pub keys: &'static [&'static str],
}

const fn column(name: &'static str, definition: &'static str) -> ColumnSpec {
    ColumnSpec { name, definition, required: false }
}

/// `serviceapp`: the design's table (only `appkey`) and probe's columns for an app's description
/// and owner.
pub const SERVICEAPP: TableSpec = TableSpec {
    name: APPS_TABLE,
    purpose: "the registered apps",
    columns: &[
        ColumnSpec { name: "appkey", definition: "VARCHAR(128) NOT NULL", required: true },
        column("description", "VARCHAR(512) NOT NULL DEFAULT ''"),
        column("owner", "VARCHAR(128) NOT NULL DEFAULT ''"),
    ],
    keys: &["UNIQUE KEY uk_appkey (appkey)"],
};

/// `probe_audit`: every operator change (weight, enable, disable, apps).
pub const PROBE_AUDIT: TableSpec = TableSpec {
    name: AUDIT_TABLE,
    purpose: "the audit log of operator changes",
    columns: &[
        column("id", "BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY"),
        column("at_ms", "BIGINT UNSIGNED NOT NULL"),
        column("actor", "VARCHAR(128) NOT NULL"),
        column("action", "VARCHAR(64) NOT NULL"),
        column("target", "VARCHAR(512) NOT NULL"),
        column("before_value", "TEXT NOT NULL"),
        column("after_value", "TEXT NOT NULL"),
    ],
    keys: &["KEY idx_at (at_ms)"],
};

/// The app credentials' table.
pub const CREDENTIALS_TABLE: &str = "probe_app_credentials";

/// `probe_app_credentials`: what verifies each app's credential (its ZooKeeper digest id and caller
/// token public key, and those of the credential before the last rotation), never the secret.
pub const PROBE_APP_CREDENTIALS: TableSpec = TableSpec {
    name: CREDENTIALS_TABLE,
    purpose: "what verifies each app's credential (no secrets)",
    columns: &[
        column("appkey", "VARCHAR(128) NOT NULL PRIMARY KEY"),
        column("zk_digest", "VARCHAR(200) NOT NULL"),
        column("caller_key", "VARCHAR(64) NOT NULL"),
        column("previous_zk_digest", "VARCHAR(200) NULL"),
        column("previous_caller_key", "VARCHAR(64) NULL"),
        column("issued_at_ms", "BIGINT UNSIGNED NOT NULL"),
    ],
    keys: &[],
};

/// Every table probe uses, in the order they are created.
pub const TABLES: [TableSpec; 3] = [SERVICEAPP, PROBE_AUDIT, PROBE_APP_CREDENTIALS];

impl TableSpec {
    /// `CREATE TABLE IF NOT EXISTS` with every column and key.
    pub fn create(&self) -> String {
        let lines: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("    {} {}", c.name, c.definition))
            .chain(self.keys.iter().map(|k| format!("    {k}")))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} (\n{}\n) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
            self.name,
            lines.join(",\n")
        )
    }

    /// `ALTER TABLE ... ADD COLUMN` for `column`.
    pub fn add_column(&self, column: &ColumnSpec) -> String {
        format!("ALTER TABLE {} ADD COLUMN {} {}", self.name, column.name, column.definition)
    }
}

/// The query that reads which of probe's tables exist and their columns: rows of
/// `(table, column)`.
pub(super) const COLUMNS_QUERY: &str = "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS \
                                        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?, ?)";

/// One table as a database holds it, against what probe uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStatus {
    /// What probe uses.
    pub spec: TableSpec,
    /// Whether the table exists.
    pub exists: bool,
    /// probe's columns it has, in spec order (none when the table is missing).
    pub present: Vec<&'static str>,
    /// probe's columns it lacks, in spec order (all when the table is missing).
    pub missing: Vec<&'static str>,
}

impl TableStatus {
    /// The statements that give the table what probe uses: `CREATE TABLE` when it is missing,
    /// else one `ADD COLUMN` per missing column.
    pub fn statements(&self) -> Vec<String> {
        if !self.exists {
            return vec![self.spec.create()];
        }
        let spec = self.spec;
        spec.columns.iter().filter(|c| self.missing.contains(&c.name)).map(|c| spec.add_column(c)).collect()
    }

    /// Required columns the existing table lacks: probe cannot use it, and no migration adds them.
    pub fn missing_required(&self) -> Vec<&'static str> {
        let required = |name: &&str| self.spec.columns.iter().any(|c| c.name == *name && c.required);
        if self.exists { self.missing.iter().copied().filter(required).collect() } else { Vec::new() }
    }
}

/// What a database holds of probe's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The database.
    pub database: String,
    /// Each of [`TABLES`].
    pub tables: Vec<TableStatus>,
}

impl SchemaStatus {
    /// The status of `database`, whose `(table, column)` pairs are `columns` (the rows of
    /// [`COLUMNS_QUERY`]; names compare without case, as MySQL compares column names).
    pub fn new(database: impl Into<String>, columns: &[(String, String)]) -> Self {
        let mut held: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (table, column) in columns {
            held.entry(table.as_str()).or_default().push(column.to_ascii_lowercase());
        }
        let tables = TABLES
            .iter()
            .map(|spec| {
                let have = held.get(spec.name);
                let (present, missing) = spec
                    .columns
                    .iter()
                    .map(|c| c.name)
                    .partition(|name| have.is_some_and(|cols| cols.iter().any(|c| c == name)));
                TableStatus { spec: *spec, exists: have.is_some(), present, missing }
            })
            .collect();
        SchemaStatus { database: database.into(), tables }
    }

    /// The statements that add what is missing, in order; empty when the database is up to date.
    pub fn statements(&self) -> Vec<String> {
        self.tables.iter().flat_map(TableStatus::statements).collect()
    }

    /// The status of `table`.
    pub fn table(&self, name: &str) -> Option<&TableStatus> {
        self.tables.iter().find(|t| t.spec.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements of `scripts/schema.sql`, without comments, with spacing made one space.
    fn schema_sql() -> Vec<String> {
        let text = include_str!("../../../../scripts/schema.sql");
        let text: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("--")).collect();
        text.join("\n").split(';').map(squeeze).filter(|s| !s.is_empty()).collect()
    }

    fn squeeze(sql: &str) -> String {
        sql.split_whitespace().collect::<Vec<_>>().join(" ").replace("( ", "(").replace(" )", ")")
    }

    fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(t, c)| ((*t).to_owned(), (*c).to_owned())).collect()
    }

    #[test]
    fn schema_sql_creates_exactly_the_specified_tables() {
        let specified: Vec<String> = TABLES.iter().map(|t| squeeze(&t.create())).collect();
        assert_eq!(schema_sql(), specified);
    }

    #[test]
    fn the_designs_minimal_table_gets_probes_columns_and_the_audit_table() {
        let status = SchemaStatus::new("db", &rows(&[("serviceapp", "appkey")]));
        let apps = status.table("serviceapp").unwrap();
        assert_eq!((apps.exists, apps.present.as_slice()), (true, ["appkey"].as_slice()));
        assert!(apps.missing_required().is_empty());
        assert_eq!(
            status.statements(),
            [
                "ALTER TABLE serviceapp ADD COLUMN description VARCHAR(512) NOT NULL DEFAULT ''".to_owned(),
                "ALTER TABLE serviceapp ADD COLUMN owner VARCHAR(128) NOT NULL DEFAULT ''".to_owned(),
                PROBE_AUDIT.create(),
                PROBE_APP_CREDENTIALS.create(),
            ]
        );
    }

    #[test]
    fn an_up_to_date_database_needs_nothing_and_extra_columns_are_ignored() {
        let mut pairs =
            vec![("serviceapp", "APPKEY"), ("serviceapp", "Owner"), ("serviceapp", "description")];
        pairs.push(("serviceapp", "created_at"));
        pairs.extend(PROBE_AUDIT.columns.iter().map(|c| ("probe_audit", c.name)));
        pairs.extend(PROBE_APP_CREDENTIALS.columns.iter().map(|c| ("probe_app_credentials", c.name)));
        assert_eq!(SchemaStatus::new("db", &rows(&pairs)).statements(), Vec::<String>::new());
    }

    #[test]
    fn an_empty_database_gets_every_table_and_a_table_without_appkey_is_unusable() {
        assert_eq!(
            SchemaStatus::new("db", &[]).statements(),
            [SERVICEAPP.create(), PROBE_AUDIT.create(), PROBE_APP_CREDENTIALS.create()]
        );
        let status = SchemaStatus::new("db", &rows(&[("serviceapp", "name")]));
        assert_eq!(status.table("serviceapp").unwrap().missing_required(), ["appkey"]);
    }
}
