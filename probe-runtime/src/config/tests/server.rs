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

#[tokio::test]
async fn register_with_config_starts_the_admin_endpoint_too() {
    let backends = Backends::embedded(Env::Dev, &Embedded::new());
    let builder = Server::builder().add_service(FakeService::new("ConfigAdminRegistered", &[]));
    let handle = builder.register_with_config(backends, &with_admin()).start("127.0.0.1:0").await.unwrap();
    assert!(admin_of(handle).await.is_some());
}
