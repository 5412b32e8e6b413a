//! Graceful shutdown, the drain deadline, the connection limit and the idle read timeout.

mod server_support;

use std::time::Duration;

use probe_runtime::Error;
use probe_runtime::server::Server;
use probe_runtime::service::Protocol;
use probe_runtime::transport::{Framing, WireFormat};
use server_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FRAMED: WireFormat = WireFormat::new(Protocol::Binary, Framing::Framed);

/// Waits until the server closes `stream`; fails after 10 s.
async fn closed_by_server(mut stream: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server should have closed the connection");
    out
}

#[tokio::test]
async fn shutdown_lets_a_slow_call_finish_then_stops_accepting() {
    for multiplex in [false, true] {
        let (server, probe) = start_echo().await;
        let addr = server.local_addr();
        let channel = channel(addr, FRAMED, multiplex, false);
        let idle = send_raw(addr, &[]).await;
        let started = probe.slow_started.notified();
        let slow = tokio::spawn({
            let channel = channel.clone();
            async move { call(&channel, "Echo", "slow", EchoArgs { msg: "done".into(), delay_ms: 300 }).await }
        });
        tokio::time::timeout(Duration::from_secs(10), started).await.unwrap();
        server.shutdown().await.unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), "done");
        // Idle connections were closed, and nobody listens any more.
        closed_by_server(idle).await;
        let got = echo(&fresh_channel(addr), "late").await;
        assert!(matches!(got, Err(Error::Connect { .. }) | Err(Error::Transport { .. })), "{got:?}");
    }
}

/// A fresh channel, so no pooled connection is reused.
fn fresh_channel(addr: std::net::SocketAddr) -> probe_runtime::client::Channel {
    channel(addr, FRAMED, false, false)
}

#[tokio::test]
async fn calls_past_the_drain_timeout_are_cut_off() {
    let (echo_service, probe) = Echo::new("Echo", "");
    let builder = Server::builder().add_service(echo_service).drain_timeout(Duration::from_millis(200));
    let server = start(builder).await;
    let channel = channel(server.local_addr(), FRAMED, true, false);
    let started = probe.slow_started.notified();
    let slow = tokio::spawn({
        let channel = channel.clone();
        async move { call(&channel, "Echo", "slow", EchoArgs { msg: "never".into(), delay_ms: 60_000 }).await }
    });
    tokio::time::timeout(Duration::from_secs(10), started).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await.unwrap().unwrap();
    let got = slow.await.unwrap();
    assert!(matches!(got, Err(Error::Transport { .. })), "{got:?}");
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_once() {
    let (echo_service, _) = Echo::new("Echo", "");
    let server = start(Server::builder().add_service(echo_service).max_connections(1)).await;
    let addr = server.local_addr();
    let request = on_wire(FRAMED, &message(Protocol::Binary, "echo", 1, &EchoArgs::new("first")));
    // The first connection is served (its reply proves the server counts it)...
    let mut first = send_raw(addr, &request).await;
    let mut reader = probe_runtime::transport::MessageReader::new(&mut first, FRAMED, Default::default());
    assert!(reader.read_message().await.unwrap().is_some());
    // ...the second is closed without an answer...
    let second = send_raw(addr, &request).await;
    assert!(closed_by_server(second).await.is_empty());
    // ...and the first goes on.
    first.write_all(&request).await.unwrap();
    let mut reader = probe_runtime::transport::MessageReader::new(&mut first, FRAMED, Default::default());
    assert!(reader.read_message().await.unwrap().is_some());
    drop(first);
    // Once the first is gone, new connections are served again.
    let mut served = false;
    for _ in 0..100 {
        if echo(&fresh_channel(addr), "again").await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_read_timeout() {
    let (echo_service, _) = Echo::new("Echo", "");
    let builder = Server::builder().add_service(echo_service).read_timeout(Duration::from_millis(200));
    let server = start(builder).await;
    let addr = server.local_addr();
    // Silent from the start.
    closed_by_server(send_raw(addr, &[]).await).await;
    // Silent after one call: the reply comes, then the close.
    let request = on_wire(FRAMED, &message(Protocol::Binary, "echo", 1, &EchoArgs::new("once")));
    let replies = replies_until_closed(send_raw(addr, &request).await, FRAMED).await;
    assert_eq!(replies.len(), 1);
    // A call longer than the read timeout is not cut off by it.
    let channel = channel(addr, FRAMED, true, false);
    let args = EchoArgs { msg: "patient".into(), delay_ms: 600 };
    assert_eq!(call(&channel, "Echo", "slow", args).await.unwrap(), "patient");
}
