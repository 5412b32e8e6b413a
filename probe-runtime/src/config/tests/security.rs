//! The app credential and the operator's ZooKeeper secret: parsed when the configuration loads,
//! handed to the ZooKeeper sessions and the clients, and never shown in errors.

use super::*;
use crate::security::{OPERATOR_USER, Secret};

#[test]
fn credentials_go_to_zookeeper_and_the_clients() {
    let secret = Secret::generate();
    let credential = format!("order_app:{}", secret.expose());
    let operator = "an-operator-secret-of-some-length";
    let config = from_vars(&[
        ("PROBE_ZOOKEEPER", "zk1:2181"),
        ("PROBE_REDIS", "embedded"),
        ("PROBE_MYSQL", "embedded"),
        ("PROBE_APP_CREDENTIAL", credential.as_str()),
        ("PROBE_ZK_OPERATOR_SECRET", operator),
    ])
    .unwrap();
    let Some(RegistryBackend::ZooKeeper(zk)) = &config.registry else { panic!("{config:?}") };
    let app = zk.app_credential.as_ref().unwrap();
    assert_eq!((app.appkey.as_str(), &app.secret), ("order_app", &secret));
    assert_eq!(
        zk.operator_secret.as_ref().unwrap().zk_digest_id(OPERATOR_USER),
        operator.parse::<Secret>().unwrap().zk_digest_id(OPERATOR_USER)
    );
    assert_eq!(config.client.credential.as_ref().map(|c| c.appkey.as_str()), Some("order_app"));
    let shown = format!("{config:?}");
    assert!(!shown.contains(secret.expose()) && !shown.contains(operator), "{shown}");
}

#[test]
fn bad_credentials_are_refused_without_showing_them() {
    let secret = Secret::generate();
    let mangled = format!("order_app:{}x", secret.expose());
    for (name, value) in [
        ("PROBE_APP_CREDENTIAL", mangled.as_str()),
        ("PROBE_APP_CREDENTIAL", "no-colon-here-at-all"),
        ("PROBE_ZK_OPERATOR_SECRET", "short:secret"),
    ] {
        let err = from_vars(&[("PROBE_ZOOKEEPER", "zk1:2181"), (name, value)]).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("<redacted>"), "{err}");
        assert!(!err.contains(value) && !err.contains(secret.expose()), "{err}");
    }
}
