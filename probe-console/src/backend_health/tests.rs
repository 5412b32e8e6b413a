use std::sync::Arc;

use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::{App, BackendError};
use probe_runtime::service::BoxFuture;

use super::*;

/// An app store whose every read fails as `fail` does, or never answers.
#[derive(Debug)]
enum BrokenApps {
    Unreachable,
    Silent,
}

impl BrokenApps {
    fn answer<'a, T: Send + 'a>(&'a self) -> BoxFuture<'a, Result<T, BackendError>> {
        Box::pin(async move {
            match self {
                BrokenApps::Unreachable => Err(BackendError::Unreachable {
                    backend: "MySQL",
                    addr: "mysql://probe_rw:***@127.0.0.1:1/billing_prod".into(),
                    detail: "connect: Connection refused (os error 111) for user probe_rw".into(),
                }),
                BrokenApps::Silent => std::future::pending().await,
            }
        })
    }
}

impl AppStore for BrokenApps {
    fn contains<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        self.answer()
    }
    fn add<'a>(&'a self, _: &'a App) -> BoxFuture<'a, Result<bool, BackendError>> {
        self.answer()
    }
    fn remove<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        self.answer()
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<App>, BackendError>> {
        self.answer()
    }
}

fn embedded() -> Backends {
    Backends::embedded(Env::Dev, &Embedded::new())
}

#[tokio::test]
async fn embedded_backends_all_answer() {
    let probes = check(&embedded()).await;
    let order: Vec<Backend> = probes.iter().map(|p| p.backend).collect();
    assert_eq!(order, Backend::ALL);
    assert!(probes.iter().all(Probe::ok), "{probes:?}");
    let json = report_json(&probes, Detail::Public);
    assert_eq!(json["ok"], true);
    assert_eq!(json["down"], json!([]));
    assert_eq!(json["backends"][2]["backend"], "mysql");
    assert_eq!(json["backends"][2]["setting"], "PROBE_MYSQL");
    assert_eq!(json["backends"][2]["error"], Value::Null);
}

#[tokio::test]
async fn an_unreachable_backend_is_named_with_its_setting_and_address() {
    let backends = Backends { apps: Arc::new(BrokenApps::Unreachable), ..embedded() };
    let probes = check(&backends).await;
    assert!(probes[0].ok() && probes[1].ok(), "{probes:?}");
    let json = report_json(&probes, Detail::Public);
    assert_eq!((json["ok"].clone(), json["down"].clone()), (json!(false), json!(["mysql"])));
    let row = &json["backends"][2];
    assert_eq!((row["backend"].as_str(), row["ok"].as_bool()), (Some("mysql"), Some(false)));
    assert_eq!(row["address"], "mysql://127.0.0.1:1");
    let error = row["error"].as_str().unwrap();
    assert!(
        error.starts_with("MySQL at mysql://127.0.0.1:1 is unreachable") && error.contains("PROBE_MYSQL"),
        "{error}"
    );
    assert!(!row.to_string().contains("probe_rw") && !row.to_string().contains("billing_prod"), "{row}");
    // Admins read what the backend said, the password still masked.
    let full = probes[2].to_json(Detail::Full);
    assert_eq!(full["address"], "mysql://probe_rw:***@127.0.0.1:1/billing_prod");
    assert!(full["error"].as_str().unwrap().contains("Connection refused"), "{full}");
}

#[tokio::test(start_paused = true)]
async fn a_backend_that_does_not_answer_is_down_after_the_timeout() {
    let backends = Backends { apps: Arc::new(BrokenApps::Silent), ..embedded() };
    let probes = check(&backends).await;
    let mysql = &probes[2];
    assert_eq!(mysql.trouble, Some(Trouble::Silent(TIMEOUT)));
    assert!(mysql.latency >= TIMEOUT, "{mysql:?}");
    assert_eq!(
        mysql.error_text(Detail::Public).unwrap(),
        "MySQL did not answer within 3 s; check that it runs and that PROBE_MYSQL (or `mysql` in the \
         config file) names it"
    );
    let with_address = Probe { address: Some("mysql://u:***@db1:3306/apps".into()), ..mysql.clone() };
    let text = with_address.error_text(Detail::Public).unwrap();
    assert!(text.starts_with("MySQL at mysql://db1:3306 did not answer"), "{text}");
}

#[test]
fn backends_are_found_by_the_name_probe_runtime_gives_them() {
    let err = |backend| BackendError::SessionEnded { backend };
    assert_eq!(Backend::of_error(&err("ZooKeeper")), Some(Backend::ZooKeeper));
    assert_eq!(Backend::of_error(&err("Redis")), Some(Backend::Redis));
    assert_eq!(Backend::of_error(&err("MySQL")), Some(Backend::MySql));
    assert_eq!(Backend::of_error(&err("embedded registry")), None);
    let conflict = BackendError::Conflict { what: "w".into(), fix: "f".into() };
    assert_eq!(Backend::of_error(&conflict), None);
    assert_eq!(Backend::MySql.configured_by(), "PROBE_MYSQL (or `mysql` in the config file)");
    assert_eq!(serde_json::to_value(Backend::ZooKeeper).unwrap(), "zookeeper");
}
