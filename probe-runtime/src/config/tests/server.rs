//! The server options a [`ServerBuilder`](crate::server::ServerBuilder) takes from a config.

use std::net::SocketAddr;

use super::*;
use crate::registry::backends::Backends;
use crate::registry::embedded::Embedded;
use crate::server::{Server, ServerHandle};
use crate::service::test_support::FakeService;

/// Server options asking for an admin endpoint on a free loopback port, with no grace period.
fn with_admin() -> ServerConfig {
    ServerConfig {
        admin_addr: Some(([127, 0, 0, 1], 0).into()),
        grace_period: Duration::ZERO,
        ..ServerConfig::default()
    }
}

/// The admin endpoint's address of a started server, after which the server is shut down.
async fn admin_of(handle: ServerHandle) -> Option<SocketAddr> {
    let admin = handle.admin_addr();
    handle.shutdown().await.unwrap();
    admin
}

#[tokio::test]
async fn with_config_starts_the_admin_endpoint_only_when_an_address_is_set() {
    let fake = || FakeService::new("ConfigAdmin", &[]);
    let on = Server::builder().add_service(fake()).with_config(&with_admin()).start("127.0.0.1:0");
    let admin = admin_of(on.await.unwrap()).await.unwrap();
    assert!(admin.ip().is_loopback() && admin.port() != 0, "{admin}");

    let off = Server::builder().add_service(fake()).with_config(&ServerConfig::default());
    assert_eq!(admin_of(off.start("127.0.0.1:0").await.unwrap()).await, None);
}

/// A server of one provider of `appkey`, registered on embedded backends that hold the appkey.
async fn registered(
    appkey: &str,
    service: &'static str,
    server: ServerConfig,
) -> (Backends, crate::server::ServerBuilder) {
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded).with_server_config(server);
    backends.apps.add(&crate::registry::App::new(appkey)).await.unwrap();
    let builder = Server::builder().add_service_for_app(appkey, FakeService::new(service, &[]));
    (backends, builder)
}

#[tokio::test]
async fn register_applies_the_configuration_the_backends_came_from() {
    let server = ServerConfig { advertise_host: Some("10.9.8.7".into()), ..with_admin() };
    let (backends, builder) = registered("config_app", "ConfigRegistered", server).await;
    let handle = builder.register(backends.clone()).start(("127.0.0.1", 0)).await.unwrap();
    let keys = handle.node_keys().to_vec();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!((keys[0].ip(), keys[0].port()), ("10.9.8.7", handle.local_addr().port()));
    assert_eq!(keys[0].zk_child(), format!("ConfigRegistered_10.9.8.7_{}", handle.local_addr().port()));
    assert!(admin_of(handle).await.is_some(), "the configured admin endpoint runs");
}

#[tokio::test]
async fn builder_settings_win_over_the_configuration_in_any_order() {
    let server = ServerConfig { advertise_host: Some("10.9.8.7".into()), ..with_admin() };
    let (backends, builder) = registered("config_app2", "ConfigOverride", server).await;
    // advertise_host before register: remembered, not dropped.
    let handle = builder.advertise_host("10.1.1.1").register(backends).start("127.0.0.1:0").await.unwrap();
    assert_eq!(handle.node_keys()[0].ip(), "10.1.1.1");
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn start_takes_a_host_and_port_pair_on_every_interface() {
    let handle = Server::builder()
        .add_service(FakeService::new("AnyInterface", &[]))
        .start(("0.0.0.0", 0))
        .await
        .unwrap();
    assert!(handle.local_addr().ip().is_unspecified() && handle.local_addr().port() != 0);
    assert!(handle.node_keys().is_empty());
    handle.shutdown().await.unwrap();
}

/// The JSON of the one node `build` registers for `appkey`, on fresh embedded backends whose
/// configuration is `server` (with no grace period), after which the server is shut down.
async fn node_json(
    appkey: &str,
    server: ServerConfig,
    build: impl FnOnce(crate::server::ServerBuilder) -> crate::server::ServerBuilder,
) -> serde_json::Value {
    let server = ServerConfig { grace_period: Duration::ZERO, ..server };
    let (backends, builder) = registered(appkey, "Declared", server).await;
    let handle = build(builder).register(backends.clone()).start("127.0.0.1:0").await.unwrap();
    let nodes = backends.registry.nodes(Env::Dev, appkey).await.unwrap();
    handle.shutdown().await.unwrap();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    serde_json::to_value(&nodes[0].data).unwrap()
}

/// `json`'s version, tags and tier, after checking it has exactly the fields probe registers.
fn declared(
    json: &serde_json::Value,
) -> (&serde_json::Value, Option<&serde_json::Value>, &serde_json::Value) {
    let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = vec![
        "headers",
        "host",
        "pid",
        "port",
        "protocol",
        "started_at",
        "tier",
        "transport",
        "valid",
        "version",
        "weight",
    ];
    if json.get("tags").is_some() {
        expected.push("tags");
        expected.sort_unstable();
    }
    assert_eq!(keys, expected, "{json}");
    (&json["version"], json.get("tags"), &json["tier"])
}

/// Version 2.0.0, tag zone=eu-1 and tier 1 as they read in a node's JSON.
fn declared_2_0_0() -> (serde_json::Value, Option<serde_json::Value>, serde_json::Value) {
    (serde_json::json!("2.0.0"), Some(serde_json::json!({ "zone": "eu-1" })), serde_json::json!(1))
}

fn owned(
    (version, tags, tier): (&serde_json::Value, Option<&serde_json::Value>, &serde_json::Value),
) -> (serde_json::Value, Option<serde_json::Value>, serde_json::Value) {
    (version.clone(), tags.cloned(), tier.clone())
}

#[tokio::test]
async fn a_server_registers_the_version_tags_and_tier_its_builder_sets() {
    let json = node_json("declared_app", ServerConfig::default(), |builder| {
        builder.version("2.0.0").tag("zone", "eu-1").tier(1)
    })
    .await;
    assert_eq!(owned(declared(&json)), declared_2_0_0());
}

#[tokio::test]
async fn by_default_a_server_registers_probes_version_tier_0_and_no_tags() {
    let json = node_json("undeclared_app", ServerConfig::default(), |builder| builder).await;
    let version = serde_json::json!(env!("CARGO_PKG_VERSION"));
    assert_eq!(owned(declared(&json)), (version, None, serde_json::json!(0)));
}

/// A config from variables declaring version 2.0.0, tag zone=eu-1 and tier 1.
fn declaring_config() -> Config {
    let vars = [
        ("PROBE_ZOOKEEPER", "embedded"),
        ("PROBE_REDIS", "embedded"),
        ("PROBE_MYSQL", "embedded"),
        ("PROBE_SERVER_VERSION", "2.0.0"),
        ("PROBE_SERVER_TAGS", "zone=eu-1"),
        ("PROBE_SERVER_TIER", "1"),
        ("PROBE_GRACE_PERIOD_MS", "0"),
    ];
    Config::from_vars(vars).unwrap()
}

#[tokio::test]
async fn with_config_and_the_backends_configuration_declare_the_same() {
    let config = declaring_config();
    let json = node_json("with_config_app", ServerConfig::default(), |b| b.with_config(&config.server)).await;
    assert_eq!(owned(declared(&json)), declared_2_0_0());
    // As Backends::connect(&config) carries it, with no call on the builder.
    let json = node_json("backends_app", config.server.clone(), |builder| builder).await;
    assert_eq!(owned(declared(&json)), declared_2_0_0());
}

#[tokio::test]
async fn builder_declarations_win_over_the_configuration_tags_key_by_key() {
    let config = declaring_config().server;
    let set_after = |builder: crate::server::ServerBuilder| {
        builder.with_config(&config).version("2.1.0").tag("zone", "us-1").tag("group", "blue").tier(0)
    };
    let json = node_json("after_app", ServerConfig::default(), set_after).await;
    let tags = serde_json::json!({ "group": "blue", "zone": "us-1" });
    assert_eq!(owned(declared(&json)), (serde_json::json!("2.1.0"), Some(tags), serde_json::json!(0)));

    // Over the backends' configuration, in any order; a tier past the last is the last.
    let set_before = |builder: crate::server::ServerBuilder| builder.tag("group", "blue").tier(7);
    let json = node_json("before_app", config.clone(), set_before).await;
    let tags = serde_json::json!({ "group": "blue", "zone": "eu-1" });
    assert_eq!(owned(declared(&json)), (serde_json::json!("2.0.0"), Some(tags), serde_json::json!(2)));
}

#[tokio::test]
async fn a_bad_version_or_tag_from_code_fails_the_start_naming_it() {
    let start = |build: fn(crate::server::ServerBuilder) -> crate::server::ServerBuilder| async move {
        let (backends, builder) =
            registered("bad_declaration_app", "BadDeclaration", ServerConfig::default()).await;
        let err = build(builder).register(backends.clone()).start("127.0.0.1:0").await.unwrap_err();
        assert!(backends.registry.nodes(Env::Dev, "bad_declaration_app").await.unwrap().is_empty());
        err.to_string()
    };
    assert_eq!(
        start(|builder| builder.version("2.0 beta")).await,
        "cannot register the server: invalid version \"2.0 beta\": it has the character ' '; give one without \
         spaces, as 2.0.0"
    );
    assert_eq!(
        start(|builder| builder.tag("zone", "eu/1")).await,
        "cannot register the server: invalid tag \"zone\" = \"eu/1\": the value of tag \"zone\" has the \
         character '/'; keys and values are letters, digits, `_`, `.` and `-`"
    );
}
