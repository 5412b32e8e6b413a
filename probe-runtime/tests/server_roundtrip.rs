//! Calls through `Channel` + `TcpTransport` to `Server`: every wire, pooled and multiplexed,
//! prefixed and plain names, pipelining, oneway, unknown methods, panicking handlers.

mod server_support;

use std::time::Duration;

use probe_runtime::Error;
use probe_runtime::client::{Channel, TcpTransport};
use probe_runtime::codec::ApplicationExceptionKind;
use probe_runtime::server::Server;
use probe_runtime::service::Protocol;
use probe_runtime::transport::{Framing, WireFormat};
use server_support::*;

#[tokio::test]
async fn every_wire_pooled_and_multiplexed_with_and_without_prefix() {
    let (server, _) = start_echo().await;
    for wire in WIRES {
        for multiplex in [false, true] {
            for prefix in [false, true] {
                let channel = channel(server.local_addr(), wire, multiplex, prefix);
                for i in 0..3 {
                    let msg = format!("{wire} mux={multiplex} prefix={prefix} #{i}");
                    assert_eq!(echo(&channel, &msg).await.unwrap(), msg);
                }
            }
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_hundred_calls_in_flight_on_one_multiplexed_connection() {
    for wire in WIRES {
        let (echo_service, _) = Echo::new("Echo", "");
        // One connection allowed: a second one would be closed at once and its calls would fail.
        let server = start(Server::builder().add_service(echo_service).max_connections(1)).await;
        let transport = TcpTransport::builder(server.local_addr().to_string())
            .protocol(wire.protocol)
            .framed(wire.framing == Framing::Framed)
            .multiplex(true)
            .pool_size(1)
            .timeout(Duration::from_secs(20))
            .build();
        let channel = Channel::new(transport);
        // `gate` returns only once all 200 calls are in the server at the same time.
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let channel = channel.clone();
                tokio::spawn(async move {
                    let args = EchoArgs { msg: format!("call {i}"), delay_ms: 200 };
                    (i, call(&channel, "Echo", "gate", args).await)
                })
            })
            .collect();
        for handle in calls {
            let (i, got) = handle.await.unwrap();
            assert_eq!(got.unwrap(), format!("call {i}"), "{wire}");
        }
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn oneway_calls_get_no_reply_and_the_connection_goes_on() {
    let (server, probe) = start_echo().await;
    for wire in WIRES {
        for multiplex in [false, true] {
            let channel = channel(server.local_addr(), wire, multiplex, false);
            let notified = probe.notify.notified();
            let got: Option<EchoResult> =
                channel.call("Echo", "notify", &EchoArgs::new(format!("{wire}")), ONEWAY).await.unwrap();
            assert_eq!(got, None);
            tokio::time::timeout(Duration::from_secs(10), notified).await.unwrap();
            assert_eq!(probe.notified.lock().unwrap().last().cloned(), Some(format!("{wire}")));
            assert_eq!(echo(&channel, "after").await.unwrap(), "after");
        }
    }
}

fn application_kind(got: Result<String, Error>) -> ApplicationExceptionKind {
    match got {
        Err(Error::Application(e)) => e.kind,
        other => panic!("expected a TApplicationException, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_methods_and_services_get_unknown_method() {
    let (server, _) = start_echo().await;
    for wire in WIRES {
        for multiplex in [false, true] {
            for prefix in [false, true] {
                let channel = channel(server.local_addr(), wire, multiplex, prefix);
                let got = call(&channel, "Echo", "shout", EchoArgs::new("x")).await;
                assert_eq!(application_kind(got), ApplicationExceptionKind::UnknownMethod);
                // The connection is still good.
                assert_eq!(echo(&channel, "ok").await.unwrap(), "ok");
            }
        }
    }
    let prefixed = channel(server.local_addr(), WIRES[0], false, true);
    let got = call(&prefixed, "Nope", "echo", EchoArgs::new("x")).await;
    assert_eq!(application_kind(got), ApplicationExceptionKind::UnknownMethod);
}

#[tokio::test]
async fn several_services_share_a_port_by_prefix() {
    let (a, _) = Echo::new("Echo", "");
    let (b, _) = Echo::new("Other", "other: ");
    let server = start(Server::builder().add_service(a).add_service(b)).await;
    for wire in WIRES {
        for multiplex in [false, true] {
            let prefixed = channel(server.local_addr(), wire, multiplex, true);
            assert_eq!(call(&prefixed, "Echo", "echo", EchoArgs::new("hi")).await.unwrap(), "hi");
            assert_eq!(call(&prefixed, "Other", "echo", EchoArgs::new("hi")).await.unwrap(), "other: hi");
            // Without the prefix the server cannot tell which service is meant.
            let plain = channel(server.local_addr(), wire, multiplex, false);
            let got = call(&plain, "Echo", "echo", EchoArgs::new("hi")).await;
            assert_eq!(application_kind(got), ApplicationExceptionKind::UnknownMethod);
        }
    }
}

#[tokio::test]
async fn a_panicking_handler_is_an_internal_error() {
    let (server, _) = start_echo().await;
    for multiplex in [false, true] {
        let channel = channel(server.local_addr(), WIRES[1], multiplex, false);
        let got = call(&channel, "Echo", "boom", EchoArgs::new("x")).await;
        assert_eq!(application_kind(got), ApplicationExceptionKind::InternalError);
        assert_eq!(echo(&channel, "alive").await.unwrap(), "alive");
    }
}

#[tokio::test]
async fn channel_connect_uses_the_defaults() {
    let (server, _) = start_echo().await;
    let channel = Channel::connect(server.local_addr().to_string()).await.unwrap();
    assert_eq!(echo(&channel, "hello").await.unwrap(), "hello");
    assert_eq!(echo(&channel.clone(), "again").await.unwrap(), "again");
}

#[tokio::test]
async fn old_non_strict_binary_clients_are_understood() {
    let (server, _) = start_echo().await;
    // name length, name, type byte (call), seqid, then the args struct.
    let mut old = vec![0, 0, 0, 4];
    old.extend_from_slice(b"echo");
    old.extend_from_slice(&[1, 0, 0, 0, 9]);
    old.extend_from_slice(&[11, 0, 1, 0, 0, 0, 3]);
    old.extend_from_slice(b"old");
    old.push(0);
    for framing in [Framing::Unframed, Framing::Framed] {
        let wire = WireFormat::new(Protocol::Binary, framing);
        let mut stream = send_raw(server.local_addr(), &on_wire(wire, &old)).await;
        let mut reader = probe_runtime::transport::MessageReader::new(&mut stream, wire, Default::default());
        let reply = reader.read_message().await.unwrap().unwrap();
        let (header, body) = Protocol::Binary.decode_header(reply, Default::default()).unwrap();
        assert_eq!((&*header.name, header.seqid), ("echo", 9));
        let result: EchoResult = Protocol::Binary.decode_body(body, Default::default()).unwrap();
        assert_eq!(result.success.as_deref(), Some("old"), "{framing:?}");
    }
}
