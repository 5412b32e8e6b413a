//! `probe db status|migrate`: the MySQL database of the app registry. probe works on the design's
//! database as it is (a `serviceapp` with only a unique `appkey`); `probe db migrate` adds probe's
//! optional columns (an app's description and owner) and tables (the audit log `probe_audit`),
//! only what is missing, so running it twice changes nothing. `--dry-run` prints the statements
//! as SQL without running them.

use anyhow::{Context as _, Result, bail};
use probe_runtime::config::{AppsBackend, Config, MySqlUrl};
use probe_runtime::registry::mysql::MySqlMigration;
use probe_runtime::registry::mysql::schema::{SchemaStatus, TableStatus};
use serde_json::json;

use super::output::{Align, Report, Table};

/// The MySQL URL of `config`'s app registry; an error when it is embedded or not set.
fn mysql_url(config: &Config) -> Result<&MySqlUrl> {
    match &config.apps {
        Some(AppsBackend::MySql(url)) => Ok(url),
        Some(_) => {
            bail!("the app registry is not MySQL (PROBE_MYSQL=embedded?): it has no database to migrate")
        }
        None => bail!(
            "no app registry is configured: set PROBE_MYSQL (or `mysql` in the config file) to the \
             database holding the table serviceapp, e.g. mysql://user:password@host:3306/database"
        ),
    }
}

async fn connect(config: &Config) -> Result<MySqlMigration> {
    let url = mysql_url(config)?;
    MySqlMigration::connect(url).await.with_context(|| format!("cannot connect to the database {url}"))
}

fn table_json(table: &TableStatus) -> serde_json::Value {
    json!({
        "table": table.spec.name,
        "purpose": table.spec.purpose,
        "exists": table.exists,
        "columns": table.present,
        "missing_columns": table.missing,
    })
}

/// What the database holds of probe's tables, what is missing, and what `migrate` would run.
pub async fn status(config: &Config) -> Result<Report> {
    let db = connect(config).await?;
    let status = db.status().await.context("cannot read the database's tables")?;
    let _ = db.disconnect().await;
    Ok(status_report(&status))
}

fn status_report(status: &SchemaStatus) -> Report {
    let statements = status.statements();
    let mut table = Table::new(&[
        ("TABLE", Align::Left),
        ("STATE", Align::Left),
        ("MISSING", Align::Left),
        ("FOR", Align::Left),
    ]);
    for t in &status.tables {
        let (state, missing) = match (t.exists, t.missing.is_empty()) {
            (false, _) => ("missing", "the table".to_owned()),
            (true, true) => ("complete", "-".to_owned()),
            (true, false) => ("partial", format!("columns {}", t.missing.join(", "))),
        };
        table.row(vec![t.spec.name.to_owned(), state.to_owned(), missing, t.spec.purpose.to_owned()]);
    }
    let mut text = format!("database {}\n{}", status.database, table.render());
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let unusable: Vec<String> = status
        .tables
        .iter()
        .filter(|t| !t.missing_required().is_empty())
        .map(|t| format!("{} has no column {}", t.spec.name, t.missing_required().join(", ")))
        .collect();
    if !unusable.is_empty() {
        text.push_str(&format!("probe cannot use it: {}; fix it by hand\n", unusable.join("; ")));
    } else if statements.is_empty() {
        text.push_str("up to date: nothing to migrate\n");
    } else {
        text.push_str(&format!(
            "{} statement(s) to run: `probe db migrate` adds what is missing (`--dry-run` prints them)\n",
            statements.len()
        ));
    }
    let json = json!({
        "database": status.database,
        "tables": status.tables.iter().map(table_json).collect::<Vec<_>>(),
        "up_to_date": statements.is_empty(),
        "statements": statements,
    });
    Report::new(json, text)
}

/// Adds what the database lacks of probe's tables and columns, or (`dry_run`) prints the
/// statements that would.
pub async fn migrate(config: &Config, dry_run: bool) -> Result<Report> {
    let db = connect(config).await?;
    let result = if dry_run {
        db.status().await.context("cannot read the database's tables").map(|s| s.statements())
    } else {
        db.migrate().await.with_context(|| format!("cannot migrate the database {}", db.database()))
    };
    let database = db.database().to_owned();
    let _ = db.disconnect().await;
    Ok(migrate_report(&database, &result?, dry_run))
}

fn migrate_report(database: &str, statements: &[String], dry_run: bool) -> Report {
    let json = json!({
        "database": database,
        "dry_run": dry_run,
        "statements": statements,
        "applied": !dry_run && !statements.is_empty(),
    });
    if statements.is_empty() {
        let text = format!("nothing to do: the database {database} has every table and column probe uses");
        return Report::new(json, text);
    }
    let mut text = match dry_run {
        true => {
            format!("-- dry run: {} statement(s) for the database {database}, not run\n", statements.len())
        }
        false => format!("-- {} statement(s) run on the database {database}\n", statements.len()),
    };
    for statement in statements {
        text.push_str(statement);
        text.push_str(";\n");
    }
    if !dry_run {
        text.push_str("-- the database is up to date\n");
    }
    Report::new(json, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(t, c)| ((*t).to_owned(), (*c).to_owned())).collect()
    }

    #[test]
    fn status_of_the_designs_table_names_what_is_missing() {
        let status = SchemaStatus::new("design", &rows(&[("serviceapp", "appkey")]));
        let report = status_report(&status);
        let lines: Vec<&str> = report.text.lines().collect();
        assert_eq!(lines[0], "database design");
        assert!(
            lines[2].starts_with("serviceapp             partial  columns description, owner"),
            "{}",
            report.text
        );
        assert!(lines[3].starts_with("probe_audit            missing  the table"), "{}", report.text);
        assert!(lines[4].starts_with("probe_app_credentials  missing  the table"), "{}", report.text);
        assert!(lines[5].starts_with("4 statement(s) to run: `probe db migrate`"), "{}", report.text);
        assert_eq!(report.json["tables"][0]["missing_columns"], json!(["description", "owner"]));
        assert_eq!(report.json["up_to_date"], false);
    }

    #[test]
    fn migrate_prints_sql_or_nothing_to_do() {
        let statements =
            vec!["ALTER TABLE serviceapp ADD COLUMN owner VARCHAR(128) NOT NULL DEFAULT ''".to_owned()];
        let report = migrate_report("d", &statements, true);
        assert_eq!(
            report.text,
            "-- dry run: 1 statement(s) for the database d, not run\n\
             ALTER TABLE serviceapp ADD COLUMN owner VARCHAR(128) NOT NULL DEFAULT '';\n"
        );
        assert_eq!(report.json["applied"], false);
        let report = migrate_report("d", &[], false);
        assert!(report.text.starts_with("nothing to do"), "{}", report.text);
    }

    #[test]
    fn an_embedded_app_registry_has_no_database() {
        let err = mysql_url(&Config::embedded()).unwrap_err();
        assert!(err.to_string().contains("no database to migrate"), "{err}");
    }
}
