//! `TcpTransport` on its own: typed errors, timeouts, the pool's bound, reconnecting, and a
//! stock-style peer that handles one call at a time and drops the service prefix in replies.

mod server_support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use probe_runtime::Error;
use probe_runtime::client::{Channel, TcpTransport};
use probe_runtime::codec::{Limits, MessageHeader, MessageType};
use probe_runtime::server::Server;
use probe_runtime::service::Protocol;
use probe_runtime::transport::{Framing, MessageReader, WireFormat, encode_frame};
use server_support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const FRAMED: WireFormat = WireFormat::new(Protocol::Binary, Framing::Framed);

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    for multiplex in [false, true] {
        let got = echo(&channel(addr, FRAMED, multiplex, false), "x").await;
        assert!(matches!(&got, Err(Error::Connect { peer, .. }) if *peer == addr.to_string()), "{got:?}");
        assert!(got.unwrap_err().is_connect_failure());
    }
    let got = Channel::connect(addr.to_string()).await;
    assert!(matches!(got, Err(Error::Connect { .. })), "{got:?}");
}

#[tokio::test]
async fn a_full_accept_queue_is_a_connect_timeout() {
    // A listener that never accepts, with its queue filled: further connects hang.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            fillers.push(s);
        }
    }
    let got =
        TcpTransport::builder(addr.to_string()).connect_timeout(Duration::from_millis(300)).connect().await;
    match got {
        Err(e @ Error::ConnectTimeout { timeout_ms: 300, .. }) => assert!(e.is_connect_failure()),
        other => panic!("expected a connect timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slow_reply_is_a_timeout_and_the_transport_recovers() {
    let (server, _) = start_echo().await;
    for multiplex in [false, true] {
        let transport = TcpTransport::builder(server.local_addr().to_string())
            .multiplex(multiplex)
            .pool_size(1)
            .timeout(Duration::from_millis(100))
            .build();
        let channel = Channel::new(transport);
        let got = call(&channel, "Echo", "slow", EchoArgs { msg: "late".into(), delay_ms: 1000 }).await;
        match got {
            Err(Error::Timeout { method, timeout_ms: 100 }) => assert_eq!(method, "slow"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(echo(&channel, "next").await.unwrap(), "next", "multiplex: {multiplex}");
    }
}

#[tokio::test]
async fn the_pool_never_opens_more_than_its_size() {
    let (echo_service, _) = Echo::new("Echo", "");
    // A third connection would be closed at once, failing its call.
    let server = start(Server::builder().add_service(echo_service).max_connections(2)).await;
    let transport = TcpTransport::builder(server.local_addr().to_string()).pool_size(2).build();
    let channel = Channel::new(transport);
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let channel = channel.clone();
            tokio::spawn(async move {
                let args = EchoArgs { msg: format!("{i}"), delay_ms: 20 };
                (i, call(&channel, "Echo", "slow", args).await)
            })
        })
        .collect();
    for handle in calls {
        let (i, got) = handle.await.unwrap();
        assert_eq!(got.unwrap(), format!("{i}"));
    }
}

#[tokio::test]
async fn connections_the_server_closed_are_replaced() {
    let (echo_service, _) = Echo::new("Echo", "");
    let builder = Server::builder().add_service(echo_service).read_timeout(Duration::from_millis(100));
    let server = start(builder).await;
    for wire in WIRES {
        for multiplex in [false, true] {
            let channel = channel(server.local_addr(), wire, multiplex, false);
            assert_eq!(echo(&channel, "one").await.unwrap(), "one");
            // The server closes the idle connection meanwhile.
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_eq!(echo(&channel, "two").await.unwrap(), "two", "{wire} multiplex: {multiplex}");
        }
    }
}

/// A peer that reads one request, then closes without replying.
async fn rude_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut reader = MessageReader::new(stream, FRAMED, Limits::default());
            let _ = reader.read_message().await;
        }
    });
    addr
}

#[tokio::test]
async fn a_server_that_hangs_up_mid_call_is_a_transport_error() {
    let addr = rude_server().await;
    for multiplex in [false, true] {
        let got = echo(&channel(addr, FRAMED, multiplex, false), "x").await;
        assert!(matches!(got, Err(Error::Transport { .. })), "{got:?}");
    }
}

/// A stock-style peer: one call at a time per connection, Apache `TMultiplexedProcessor` style
/// (replies named without the service prefix). Reports the names it was sent.
async fn stock_server(wire: WireFormat) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (names, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let names = names.clone();
            tokio::spawn(async move {
                let mut reader = MessageReader::new(stream, wire, Limits::default());
                while let Ok(Some(request)) = reader.read_message().await {
                    let (header, body) = wire.protocol.decode_header(request, Limits::default()).unwrap();
                    names.send(header.name.to_string()).unwrap();
                    let args: EchoArgs = wire.protocol.decode_body(body, Limits::default()).unwrap();
                    let plain = header.name.rsplit(':').next().unwrap().to_owned();
                    let reply = MessageHeader::new(plain, MessageType::Reply, header.seqid);
                    let mut message = BytesMut::new();
                    let result = EchoResult { success: Some(args.msg) };
                    wire.protocol.encode_message(&reply, &result, &mut message).unwrap();
                    let mut out = BytesMut::new();
                    encode_frame(wire.framing, &message, &mut out).unwrap();
                    reader.get_mut().write_all(&out).await.unwrap();
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn prefixed_calls_to_a_stock_server_accept_plain_reply_names() {
    for wire in WIRES {
        let (addr, mut names) = stock_server(wire).await;
        for prefix in [false, true] {
            let channel = channel(addr, wire, false, prefix);
            assert_eq!(echo(&channel, "hi").await.unwrap(), "hi", "{wire}");
            let sent = names.recv().await.unwrap();
            assert_eq!(sent, if prefix { "Echo:echo" } else { "echo" });
        }
    }
}
