//! `probe apps add|list|remove`: the app registry, changed through [`Operator`] so every change
//! is audited.

use anyhow::{Context as _, Result};
use probe_runtime::registry::layout::check_appkey;
use probe_runtime::registry::{App, Operator};
use serde_json::json;

use super::output::{Align, Report, Table, or_dash};

/// Registers `app`; saying so when it was registered already.
pub async fn add(op: &Operator, app: App) -> Result<Report> {
    check_appkey(&app.appkey).context("cannot add the app")?;
    let added = op.add_app(&app).await.with_context(|| format!("cannot add app {}", app.appkey))?;
    let text = if added {
        format!("added app {}; its providers may start now", app.appkey)
    } else {
        format!("app {} is registered already; nothing changed (`probe apps list` shows it)", app.appkey)
    };
    let json = json!({
        "appkey": app.appkey,
        "description": app.description,
        "owner": app.owner,
        "added": added,
    });
    Ok(Report::new(json, text))
}

/// Every registered app.
pub async fn list(op: &Operator) -> Result<Report> {
    let apps = op.backends().apps.list().await.context("cannot list the apps")?;
    let json = json!({
        "apps": apps
            .iter()
            .map(|a| json!({ "appkey": a.appkey, "description": a.description, "owner": a.owner }))
            .collect::<Vec<_>>(),
    });
    let text = if apps.is_empty() {
        "no app is registered; add one with `probe apps add APPKEY --owner NAME`".to_owned()
    } else {
        let mut table =
            Table::new(&[("APPKEY", Align::Left), ("OWNER", Align::Left), ("DESCRIPTION", Align::Left)]);
        for app in &apps {
            table.row(vec![app.appkey.clone(), or_dash(Some(&app.owner)), or_dash(Some(&app.description))]);
        }
        table.render()
    };
    Ok(Report::new(json, text))
}

/// Unregisters `appkey`.
pub async fn remove(op: &Operator, appkey: &str) -> Result<Report> {
    check_appkey(appkey).context("cannot remove the app")?;
    let removed = op.remove_app(appkey).await.with_context(|| format!("cannot remove app {appkey}"))?;
    let text = if removed {
        format!("removed app {appkey}; its running providers keep serving but cannot start again")
    } else {
        format!("app {appkey} is not registered; nothing changed (`probe apps list` shows the apps)")
    };
    Ok(Report::new(json!({ "appkey": appkey, "removed": removed }), text))
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
}
