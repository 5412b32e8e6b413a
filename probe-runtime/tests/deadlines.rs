//! Deadlines end to end: a client never sends a call whose deadline passed; a probe server does not
//! start one, and drops a handler that runs past it, answering a timeout the client reports as
//! `Error::Timeout`; calls made inside a handler inherit the time it has left.
//!
//! The deadline itself is measured here (a call must not fail before it), but how soon after it a
//! call fails is checked loosely: the best of a few tries, so a loaded machine does not fail it.

mod server_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use probe_runtime::Error;
use probe_runtime::client::{CallOptions, Channel, TcpTransport};
use probe_runtime::codec::Limits;
use probe_runtime::context::{Context, Metadata, names};
use probe_runtime::service::Protocol;
use probe_runtime::transport::header::Headers;
use probe_runtime::transport::{Framing, MessageReader, WireFormat};
use server_support::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// `Echo.slow(msg, delay_ms)`.
async fn slow(channel: &Channel, delay_ms: i32) -> Result<String, Error> {
    call(channel, "Echo", "slow", EchoArgs { msg: "zz".into(), delay_ms }).await
}

fn header_channel(addr: std::net::SocketAddr, multiplex: bool) -> Channel {
    let transport = TcpTransport::builder(addr.to_string())
        .header(true)
        .multiplex(multiplex)
        .timeout(Duration::from_secs(10))
        .build();
    Channel::new(transport)
}

fn assert_timeout(result: Result<String, Error>, budget_ms: u64) {
    match result {
        Err(Error::Timeout { method, timeout_ms }) => {
            assert_eq!(method, "slow");
            assert!(timeout_ms <= budget_ms, "{timeout_ms} ms reported for a {budget_ms} ms budget");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

/// Waits (up to 5 s) until `n` handlers of `slow` were dropped before finishing.
async fn dropped(probe: &Probe, n: usize) {
    let started = Instant::now();
    while probe.slow_dropped.load(Ordering::SeqCst) < n {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the server kept running the handler past the deadline"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_50ms_budget_fails_at_the_deadline_and_the_handler_is_dropped() {
    let (server, probe) = start_echo().await;
    for multiplex in [true, false] {
        let channel = header_channel(server.local_addr(), multiplex);
        let channel = channel.with_metadata(Metadata::new().deadline(Duration::from_millis(50)));
        // Warm the connection, so the first try measures the call and not the connect.
        assert!(slow(&channel, 0).await.is_ok());
        let before = probe.slow_dropped.load(Ordering::SeqCst);
        let mut took = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let result = slow(&channel, 500).await;
            took.push(started.elapsed());
            assert_timeout(result, 50);
        }
        assert!(took.iter().all(|t| *t >= Duration::from_millis(50)), "failed before the deadline: {took:?}");
        let best = took.iter().min().unwrap();
        assert!(*best < Duration::from_millis(60), "multiplex={multiplex}: {took:?}");
        assert!(took.iter().all(|t| *t < Duration::from_millis(500)), "waited for the handler: {took:?}");
        // Every handler's future was dropped at the server, long before its 500 ms sleep ended.
        dropped(&probe, before + 3).await;
        let sent: u64 = probe.slow_deadline_ms.lock().unwrap().as_deref().unwrap().parse().unwrap();
        assert!((40..=50).contains(&sent), "the server was told {sent} ms");
    }
    assert_serving(server.local_addr()).await;
}

#[tokio::test]
async fn the_server_answers_a_timeout_even_to_a_client_that_waits_longer() {
    // A raw header frame that says 30 ms; the client (this test) waits as long as it takes.
    let (server, probe) = start_echo().await;
    let headers: Headers = [(names::DEADLINE_MS, "30")].into_iter().collect();
    let frame = {
        use bytes::BytesMut;
        use probe_runtime::transport::encode_frame;
        use probe_runtime::transport::header::{self, HeaderFrame};
        let call = message(Protocol::Binary, "slow", 5, &EchoArgs { msg: "x".into(), delay_ms: 2_000 });
        let frame =
            HeaderFrame { seqid: 5, flags: 0, protocol: Protocol::Binary, transforms: vec![], headers };
        let mut body = BytesMut::new();
        header::encode(&frame, &call, &mut body).unwrap();
        let mut out = BytesMut::new();
        encode_frame(Framing::Header, &body, &mut out).unwrap();
        out
    };
    let started = Instant::now();
    let stream = send_raw(server.local_addr(), &frame).await;
    let mut reader =
        MessageReader::new(stream, WireFormat::new(Protocol::Binary, Framing::Header), Limits::DEFAULT);
    let reply = reader.read_message().await.unwrap().expect("a reply");
    let elapsed = started.elapsed();
    let (_, payload) = probe_runtime::transport::header::decode(reply, Limits::DEFAULT).unwrap();
    let (header, body) = Protocol::Binary.decode_header(payload, Limits::DEFAULT).unwrap();
    let e = exception(Protocol::Binary, &header, body);
    assert_eq!(e.kind, probe_runtime::codec::ApplicationExceptionKind::Timeout, "{e}");
    assert!(e.message.contains("30 ms"), "{e}");
    assert!(elapsed < Duration::from_millis(1_000), "answered at {elapsed:?}, not at the deadline");
    dropped(&probe, 1).await;
}

#[tokio::test]
async fn a_call_whose_deadline_passed_is_never_sent() {
    // A server that accepts every connection and counts the bytes it gets.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    counted.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    for multiplex in [true, false] {
        let transport = TcpTransport::builder(addr.to_string()).header(true).multiplex(multiplex);
        let channel = Channel::new(transport.connect().await.unwrap());
        // A handler whose caller's deadline has passed (0 ms left when it arrived).
        let inbound: Headers = [(names::DEADLINE_MS, "0")].into_iter().collect();
        let cx = Context::new(inbound, Instant::now());
        let result = cx.scope(slow(&channel, 0)).await;
        match result {
            Err(Error::Timeout { timeout_ms: 0, .. }) => {}
            other => panic!("expected an immediate timeout, got {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(received.load(Ordering::SeqCst), 0, "an expired call was written");
}

#[tokio::test]
async fn calls_inside_a_handler_inherit_the_time_it_has_left() {
    let (server, probe) = start_echo().await;
    for multiplex in [true, false] {
        // No budget on the channel (its transport allows 10 s): the handler's 80 ms bound it.
        let channel = header_channel(server.local_addr(), multiplex);
        assert!(slow(&channel, 0).await.is_ok());
        let before = probe.slow_dropped.load(Ordering::SeqCst);
        let inbound: Headers = [(names::DEADLINE_MS, "80")].into_iter().collect();
        let cx = Context::new(inbound, Instant::now());
        let started = Instant::now();
        let result = cx.scope(slow(&channel, 2_000)).await;
        let took = started.elapsed();
        assert_timeout(result, 80);
        assert!(took >= Duration::from_millis(70) && took < Duration::from_millis(1_500), "{took:?}");
        let sent: u64 = probe.slow_deadline_ms.lock().unwrap().as_deref().unwrap().parse().unwrap();
        assert!(sent <= 80, "the nested call told the server {sent} ms");
        dropped(&probe, before + 1).await;
    }
}

#[tokio::test]
async fn a_method_timeout_replaces_the_transports_and_the_channel_overrides_the_idl() {
    let (server, _probe) = start_echo().await;
    let channel = header_channel(server.local_addr(), true);
    let args = || EchoArgs { msg: "zz".into(), delay_ms: 400 };
    let with = |timeout_ms: u64| CallOptions { timeout: Some(Duration::from_millis(timeout_ms)), ..CALL };
    // The IDL's 50 ms in place of the transport's 10 s.
    let started = Instant::now();
    let result: Result<Option<EchoResult>, Error> = channel.call("Echo", "slow", &args(), with(50)).await;
    assert!(matches!(result, Err(Error::Timeout { timeout_ms: 50, .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_millis(400), "waited {:?}", started.elapsed());
    // The channel's setting wins over the IDL's, by `Service.method` or a bare method name.
    for name in ["Echo.slow", "slow"] {
        let longer = channel.method_timeout(name, Duration::from_secs(2));
        let result: Result<Option<EchoResult>, Error> = longer.call("Echo", "slow", &args(), with(50)).await;
        assert!(result.is_ok(), "{name}: {result:?}");
    }
    let other = channel.method_timeout("Other.slow", Duration::from_secs(2));
    let result: Result<Option<EchoResult>, Error> = other.call("Echo", "slow", &args(), with(50)).await;
    assert!(matches!(result, Err(Error::Timeout { .. })), "another service's setting applied: {result:?}");
    // A sooner deadline in the metadata still applies.
    let capped = channel
        .method_timeout("slow", Duration::from_secs(2))
        .with_metadata(Metadata::new().deadline(Duration::from_millis(30)));
    let result: Result<Option<EchoResult>, Error> = capped.call("Echo", "slow", &args(), CALL).await;
    assert!(matches!(result, Err(Error::Timeout { timeout_ms: 30, .. })), "{result:?}");
}
