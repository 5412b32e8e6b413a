//! A server's request limits set by its builder, over real connections: a method's concurrency
//! limit refuses the call over it with `LOADSHEDDING` while other methods run; the connection
//! limit closes connections over it; the limits in force and what they refused are visible.

mod server_support;

use std::time::Duration;

use probe_runtime::Error;
use probe_runtime::codec::ApplicationExceptionKind;
use probe_runtime::limits::RequestLimits;
use probe_runtime::server::{LimitSource, Server};
use probe_runtime::service::Protocol;
use probe_runtime::transport::{Framing, WireFormat};
use server_support::*;

const FRAMED: WireFormat = WireFormat::new(Protocol::Binary, Framing::Framed);

fn limits(text: &str) -> RequestLimits {
    RequestLimits::parse(text).unwrap()
}

#[tokio::test]
async fn a_methods_concurrency_limit_refuses_the_call_over_it_and_spares_other_methods() {
    let (service, probe) = Echo::new("Echo", "");
    let builder = Server::builder().add_service(service);
    let server =
        start(builder.request_limits("Echo", limits(r#"{"methods": {"slow": {"concurrency": 2}}}"#))).await;
    let channel = channel(server.local_addr(), FRAMED, true, false);
    let started = probe.slow_started.notified();
    tokio::pin!(started);
    started.as_mut().enable();
    let running: Vec<_> = (0..2)
        .map(|_| {
            let channel = channel.clone();
            tokio::spawn(async move {
                call(&channel, "Echo", "slow", EchoArgs { msg: "s".into(), delay_ms: 300 }).await
            })
        })
        .collect();
    // Both slow calls are in their handlers (normal calls may use 80% of 2, rounded: both).
    started.await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let third = call(&channel, "Echo", "slow", EchoArgs { msg: "t".into(), delay_ms: 0 }).await;
    match third {
        Err(Error::Application(e)) => {
            assert_eq!(e.kind, ApplicationExceptionKind::Loadshedding);
            assert!(e.message.contains("concurrency limit (2 calls in flight)"), "{e}");
            assert!(e.message.contains("method slow of service Echo"), "{e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Another method is not limited.
    assert_eq!(echo(&channel, "free").await.unwrap(), "free");
    let mut done = 0;
    for task in running {
        done += usize::from(task.await.unwrap().is_ok());
    }
    assert_eq!(done, 2, "both slow calls ran");
    let stats = server.request_limit_stats();
    let slow = stats.iter().find(|s| s.method == Some("slow")).expect("the limited method's counts");
    assert_eq!((slow.concurrency, slow.stats.in_flight), (Some(2), 0));
    assert_eq!(slow.stats.refused[1], 1, "refused by concurrency");
    let applied = &server.request_limits()["Echo"];
    assert_eq!(applied.source, LimitSource::Configured);
    let text = probe_runtime::metrics::global().render();
    assert!(
        text.contains("probe_server_refused_calls_total{node=")
            && text.contains("method=\"slow\",reason=\"concurrency\"}"),
        "{text}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_connection_limit_closes_connections_over_it() {
    let (service, _) = Echo::new("Echo", "");
    let builder = Server::builder().add_service(service);
    let server = start(builder.request_limits("Echo", limits(r#"{"connections": 2}"#))).await;
    let addr = server.local_addr();
    // Two connections that sent a call hold both places.
    let held: Vec<_> = (0..2).map(|_| channel(addr, FRAMED, false, false)).collect();
    for channel in &held {
        assert_eq!(echo(channel, "in").await.unwrap(), "in");
    }
    let third = channel(addr, FRAMED, false, false);
    let refused = echo(&third, "out").await;
    assert!(
        matches!(refused, Err(Error::Transport { .. } | Error::Connect { .. })),
        "a third connection was served: {refused:?}"
    );
    // The two still work.
    for channel in &held {
        assert_eq!(echo(channel, "still").await.unwrap(), "still");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn limits_naming_a_method_the_service_lacks_stop_the_server_from_starting() {
    let (service, _) = Echo::new("Echo", "");
    let builder = Server::builder().add_service(service);
    let err = builder
        .request_limits("Echo", limits(r#"{"methods": {"shout": {"qps": 5}}}"#))
        .start("127.0.0.1:0")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("/methods/shout") && text.contains("echo, slow"), "{text}");
    let (service, _) = Echo::new("Echo", "");
    let err = Server::builder()
        .add_service(service)
        .request_limits("Nope", limits(r#"{"qps": 5}"#))
        .start("127.0.0.1:0")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not served here (served: Echo)"), "{err}");
}
