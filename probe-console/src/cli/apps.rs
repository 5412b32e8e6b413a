//! `probe apps add|list|remove`: the app registry, changed through [`Operator`] so every change
//! is audited.

use anyhow::{Context as _, Result};
use probe_runtime::registry::layout::check_appkey;
use probe_runtime::registry::{App, AppChange, AppFields, Operator};
use serde_json::{Map, Value, json};

use super::output::{Align, Report, Table, or_dash};

/// Registers `app`; saying so when it was registered already. Fields the app store does not keep
/// (the design's `serviceapp` has only `appkey`) and a change the audit log missed are warnings.
pub async fn add(op: &Operator, app: App) -> Result<Report> {
    check_appkey(&app.appkey).context("cannot add the app")?;
    let change = op.add_app(&app).await.with_context(|| format!("cannot add app {}", app.appkey))?;
    let text = if change.changed {
        format!("added app {}; its providers may start now", app.appkey)
    } else {
        format!("app {} is registered already; nothing changed (`probe apps list` shows it)", app.appkey)
    };
    let mut json = json!({
        "appkey": app.appkey,
        "description": app.description,
        "owner": app.owner,
        "added": change.changed,
        "not_stored": change.not_stored,
    });
    let mut report = Report::new(Value::Null, text);
    if change.changed && !change.not_stored.is_empty() {
        let fields = change.not_stored.join(" and ");
        let (was, them) = if change.not_stored.len() == 1 { ("was", "it") } else { ("were", "them") };
        report = report.with_warning(format!(
            "the {fields} of app {} {was} not stored: the table serviceapp has no column for {them}; \
             run `probe db migrate` to add probe's columns",
            app.appkey
        ));
    }
    report = with_audit(report, &mut json, &change);
    report.json = json;
    Ok(report)
}

/// Registers `app` as [`add`] does, then issues its credential to `out` (none with `None`). A
/// credential that cannot be issued (the database lacks probe's credentials table) is a warning:
/// the app is registered.
pub async fn add_with_credential(
    op: &Operator,
    app: App,
    out: Option<super::security::SecretOut<'_>>,
) -> Result<Report> {
    if let Some(super::security::SecretOut::File(path)) = out
        && path.exists()
    {
        anyhow::bail!("cannot add the app: the credential file {} exists already", path.display());
    }
    let appkey = app.appkey.clone();
    let mut report = add(op, app).await?;
    let Some(out) = out else { return Ok(report) };
    if report.json["added"] != true {
        return Ok(report);
    }
    match super::security::issue_on_add(op, &appkey, out).await? {
        Ok(issued) => {
            report.text.push_str(&issued.text);
            report.json["credential"] = issued.json;
            report.warnings.extend(issued.warnings);
        }
        Err(warning) => report = report.with_warning(warning),
    }
    Ok(report)
}

/// The audit outcome of `change` in `json`, and as a warning when the audit log missed it.
fn with_audit(report: Report, json: &mut Value, change: &AppChange) -> Report {
    json["audited"] = json!(change.changed && change.audit.is_ok());
    json["audit_error"] = json!(change.audit.as_ref().err().map(ToString::to_string));
    match &change.audit {
        Ok(()) => report,
        Err(err) => report.with_warning(format!("the change was applied but not audited: {err}")),
    }
}

/// Every registered app, with the fields the app store keeps: on the design's `serviceapp` only
/// the appkey.
pub async fn list(op: &Operator) -> Result<Report> {
    let apps = op.backends().apps.list().await.context("cannot list the apps")?;
    let fields = op.backends().apps.fields().await.context("cannot list the apps")?;
    let json = json!({
        "apps": apps.iter().map(|a| app_json(a, fields)).collect::<Vec<_>>(),
        "fields": field_names(fields),
    });
    let text = if apps.is_empty() {
        "no app is registered; add one with `probe apps add APPKEY --owner NAME`".to_owned()
    } else {
        let mut columns = vec![("APPKEY", Align::Left)];
        columns.extend(fields.owner.then_some(("OWNER", Align::Left)));
        columns.extend(fields.description.then_some(("DESCRIPTION", Align::Left)));
        let mut table = Table::new(&columns);
        for app in &apps {
            let mut row = vec![app.appkey.clone()];
            row.extend(fields.owner.then(|| or_dash(Some(&app.owner))));
            row.extend(fields.description.then(|| or_dash(Some(&app.description))));
            table.row(row);
        }
        table.render()
    };
    Ok(Report::new(json, text))
}

/// The fields of an app the store keeps, `appkey` first.
fn field_names(fields: AppFields) -> Vec<&'static str> {
    let optional = [("description", fields.description), ("owner", fields.owner)];
    std::iter::once("appkey").chain(optional.into_iter().filter(|(_, kept)| *kept).map(|(n, _)| n)).collect()
}

fn app_json(app: &App, fields: AppFields) -> Value {
    let mut object = Map::new();
    object.insert("appkey".into(), json!(app.appkey));
    if fields.description {
        object.insert("description".into(), json!(app.description));
    }
    if fields.owner {
        object.insert("owner".into(), json!(app.owner));
    }
    Value::Object(object)
}

/// Unregisters `appkey`.
pub async fn remove(op: &Operator, appkey: &str) -> Result<Report> {
    check_appkey(appkey).context("cannot remove the app")?;
    let change = op.remove_app(appkey).await.with_context(|| format!("cannot remove app {appkey}"))?;
    let text = if change.changed {
        format!("removed app {appkey}; its running providers keep serving but cannot start again")
    } else {
        format!("app {appkey} is not registered; nothing changed (`probe apps list` shows the apps)")
    };
    let mut json = json!({ "appkey": appkey, "removed": change.changed });
    let mut report = with_audit(Report::new(Value::Null, text), &mut json, &change);
    report.json = json;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::registry::Backends;
    use probe_runtime::registry::embedded::Embedded;
    use probe_runtime::registry::layout::Env;

    fn app(appkey: &str) -> App {
        App { appkey: appkey.into(), description: "orders".into(), owner: "alice".into() }
    }

    #[tokio::test]
    async fn add_list_remove_are_audited() {
        let embedded = Embedded::new();
        let op = Operator::new(Backends::embedded(Env::Dev, &embedded)).with_actor("cli:t@h");
        let report = add(&op, app("order_app")).await.unwrap();
        assert_eq!(report.json["added"], true);
        assert!(add(&op, app("order_app")).await.unwrap().text.contains("already"));

        let listed = list(&op).await.unwrap();
        assert_eq!(listed.json["apps"][0]["owner"], "alice");
        assert!(listed.text.starts_with("APPKEY"), "{}", listed.text);
        assert!(listed.text.contains("order_app  alice  orders"), "{}", listed.text);

        assert_eq!(remove(&op, "order_app").await.unwrap().json["removed"], true);
        assert_eq!(remove(&op, "order_app").await.unwrap().json["removed"], false);
        assert!(list(&op).await.unwrap().text.contains("probe apps add"));
        let log = op.backends().audit.recent(10).await.unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].actor, "cli:t@h");
    }

    #[tokio::test]
    async fn bad_appkeys_are_refused_with_the_rule() {
        let embedded = Embedded::new();
        let op = Operator::new(Backends::embedded(Env::Dev, &embedded));
        let err = add(&op, app("bad-key")).await.unwrap_err();
        assert!(format!("{err:#}").contains("letters, digits or underscores"), "{err:#}");
    }

    #[test]
    fn lists_show_only_the_fields_the_store_keeps() {
        let minimal = AppFields { description: false, owner: false };
        assert_eq!(field_names(minimal), ["appkey"]);
        assert_eq!(app_json(&app("a"), minimal), json!({ "appkey": "a" }));
        assert_eq!(field_names(AppFields::ALL), ["appkey", "description", "owner"]);
    }
}
