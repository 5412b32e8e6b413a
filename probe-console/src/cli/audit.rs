//! `probe audit [--limit N]`: the most recent operator changes, newest first.

use anyhow::{Context as _, Result};
use probe_runtime::registry::{AuditEntry, Backends};
use serde_json::json;

use super::output::time::{rfc3339, utc};
use super::output::{Align, Report, Table, or_dash};

fn entry_json(entry: &AuditEntry) -> serde_json::Value {
    json!({
        "id": entry.id,
        "at_ms": entry.at_ms,
        "at": rfc3339(entry.at_ms / 1_000),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "before": entry.before,
        "after": entry.after,
    })
}

/// The last `limit` entries of the audit log.
pub async fn recent(backends: &Backends, limit: usize) -> Result<Report> {
    let entries = backends.audit.recent(limit).await.context("cannot read the audit log")?;
    let json = json!({ "entries": entries.iter().map(entry_json).collect::<Vec<_>>() });
    let text = if entries.is_empty() {
        "the audit log is empty: no operator has changed an app or a node yet".to_owned()
    } else {
        let mut table = Table::new(&[
            ("TIME", Align::Left),
            ("ACTOR", Align::Left),
            ("ACTION", Align::Left),
            ("TARGET", Align::Left),
            ("BEFORE", Align::Left),
            ("AFTER", Align::Left),
        ]);
        for e in &entries {
            table.row(vec![
                utc(e.at_ms / 1_000),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                or_dash(Some(&e.before)),
                or_dash(Some(&e.after)),
            ]);
        }
        table.render()
    };
    Ok(Report::new(json, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::registry::embedded::Embedded;
    use probe_runtime::registry::layout::Env;
    use probe_runtime::registry::{App, Operator};

    #[tokio::test]
    async fn entries_are_listed_newest_first() {
        let embedded = Embedded::new();
        let backends = Backends::embedded(Env::Dev, &embedded);
        assert!(recent(&backends, 5).await.unwrap().text.contains("empty"));
        let op = Operator::new(backends.clone()).with_actor("cli:t@h");
        let app = App { appkey: "a1".into(), description: String::new(), owner: String::new() };
        op.add_app(&app).await.unwrap();
        op.remove_app("a1").await.unwrap();
        let report = recent(&backends, 1).await.unwrap();
        assert_eq!(report.json["entries"].as_array().unwrap().len(), 1);
        assert_eq!(report.json["entries"][0]["action"], "remove_app");
        assert!(report.text.lines().nth(1).unwrap().contains("cli:t@h  remove_app  a1"), "{}", report.text);
    }
}
