//! `probe services list`: for each app with a path under `/services/{env}`, its services and how
//! many of their nodes are live and in rotation.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use futures_util::future::try_join_all;
use probe_runtime::registry::layout::{Env, zk_env_path};
use probe_runtime::registry::{Backends, RegisteredNode};
use serde_json::json;

use super::output::{Align, Report, Table};

/// One service of one app, counted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceCount {
    service: String,
    live: usize,
    in_rotation: usize,
}

/// Counts `nodes` per service, sorted by service name.
fn count(nodes: &[RegisteredNode]) -> Vec<ServiceCount> {
    let mut by_service = BTreeMap::<&str, (usize, usize)>::new();
    for node in nodes {
        let entry = by_service.entry(node.key.service()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(node.data.in_rotation());
    }
    by_service
        .into_iter()
        .map(|(service, (live, in_rotation))| ServiceCount { service: service.to_owned(), live, in_rotation })
        .collect()
}

/// The services of every app in `env`.
pub async fn list(backends: &Backends, env: Env) -> Result<Report> {
    let registry = &backends.registry;
    let appkeys = registry
        .apps(env)
        .await
        .with_context(|| format!("cannot list the apps under {}", zk_env_path(env)))?;
    let nodes = try_join_all(appkeys.iter().map(|appkey| registry.nodes(env, appkey)))
        .await
        .with_context(|| format!("cannot read the nodes under {}", zk_env_path(env)))?;
    let apps: Vec<(&String, Vec<ServiceCount>)> =
        appkeys.iter().zip(nodes.iter().map(|n| count(n))).collect();

    let json = json!({
        "env": env.as_str(),
        "apps": apps.iter().map(|(appkey, services)| json!({
            "appkey": appkey,
            "services": services.iter().map(|s| json!({
                "service": s.service,
                "live": s.live,
                "in_rotation": s.in_rotation,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });

    let text = if apps.is_empty() {
        format!(
            "no app has a path under {} in env {env}; providers create it when they start (try --env prod \
             or --env dev)",
            zk_env_path(env)
        )
    } else {
        let mut table = Table::new(&[
            ("APPKEY", Align::Left),
            ("SERVICE", Align::Left),
            ("LIVE", Align::Right),
            ("IN ROTATION", Align::Right),
        ]);
        for (appkey, services) in &apps {
            if services.is_empty() {
                table.row(vec![(*appkey).clone(), "-".into(), "0".into(), "0".into()]);
            }
            for s in services {
                table.row(vec![
                    (*appkey).clone(),
                    s.service.clone(),
                    s.live.to_string(),
                    s.in_rotation.to_string(),
                ]);
            }
        }
        format!("env {env}\n{}", table.render())
    };
    Ok(Report::new(json, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::registry::embedded::Embedded;
    use probe_runtime::registry::layout::{NodeData, NodeKey, Valid};

    #[tokio::test]
    async fn services_are_counted_per_app() {
        let embedded = Embedded::new();
        let backends = Backends::embedded(Env::Dev, &embedded);
        let session = backends.registry.session().await.unwrap();
        for (service, port, valid) in [("Order", 1, 1), ("Order", 2, 0), ("Stock", 3, 1)] {
            let key = NodeKey::new(Env::Dev, "shop", service, "10.0.0.1", port).unwrap();
            let mut data = NodeData::new("10.0.0.1", port);
            data.valid = Valid::from(valid == 1);
            session.register(&key, &data).await.unwrap();
        }
        let report = list(&backends, Env::Dev).await.unwrap();
        assert_eq!(report.json["apps"][0]["appkey"], "shop");
        assert_eq!(
            report.json["apps"][0]["services"][0],
            json!({"service": "Order", "live": 2, "in_rotation": 1})
        );
        assert!(report.text.contains("shop    Stock       1            1"), "{}", report.text);

        let prod = list(&backends, Env::Prod).await.unwrap();
        assert_eq!(prod.json["apps"], json!([]));
        assert!(prod.text.contains("/services/prod"), "{}", prod.text);
    }
}
