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
