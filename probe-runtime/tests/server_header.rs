//! THeader on the server: header frames of either protocol, with and without zlib, get replies in
//! header frames that mirror them and carry the headers the handler set; the handler reads the
//! caller's headers through `Context::current()`; malformed header frames close the connection
//! and are counted.

mod server_support;

use bytes::{Bytes, BytesMut};
use probe_runtime::codec::Limits;
use probe_runtime::context::names;
use probe_runtime::server::Server;
use probe_runtime::service::Protocol;
use probe_runtime::transport::header::{self, HeaderFrame, Headers, Transform};
use probe_runtime::transport::{Framing, MessageReader, WireFormat, encode_frame};
use server_support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A header frame around an `echo(msg)` call, with the length prefix.
fn header_call(
    protocol: Protocol,
    seqid: i32,
    transforms: Vec<Transform>,
    headers: Headers,
    msg: &str,
) -> Vec<u8> {
    let call = message(protocol, "echo", seqid, &EchoArgs::new(msg));
    let frame = HeaderFrame { seqid, flags: 0, protocol, transforms, headers };
    let mut body = BytesMut::new();
    header::encode(&frame, &call, &mut body).unwrap();
    let mut out = BytesMut::new();
    encode_frame(Framing::Header, &body, &mut out).unwrap();
    out.to_vec()
}

/// The reply frames to `count` calls written on one connection.
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8], count: usize) -> Vec<(HeaderFrame, Bytes)> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let wire = WireFormat::new(Protocol::Binary, Framing::Header);
    let mut reader = MessageReader::new(stream, wire, Limits::DEFAULT);
    let mut replies = Vec::new();
    for _ in 0..count {
        let frame = reader.read_message().await.unwrap().expect("a reply");
        replies.push(header::decode(frame, Limits::DEFAULT).unwrap());
    }
    replies
}

fn echoed(protocol: Protocol, payload: Bytes) -> String {
    let (header, body) = protocol.decode_header(payload, Limits::DEFAULT).unwrap();
    assert_eq!(header.name, "echo");
    let result: EchoResult = protocol.decode_body(body, Limits::DEFAULT).unwrap();
    result.success.unwrap()
}

#[tokio::test]
async fn header_calls_get_header_replies_with_the_handlers_headers() {
    let (server, _) = start_echo().await;
    for protocol in [Protocol::Binary, Protocol::Compact] {
        for transforms in [vec![], vec![Transform::Zlib]] {
            let headers: Headers = [
                (names::CALLER_APPKEY, "caller_app"),
                (names::CALLER_SERVICE, "Caller"),
                (names::REQUEST_ID, "req-42"),
                (names::DEADLINE_MS, "1500"),
                (names::PRIORITY, "critical"),
                (names::TRACEPARENT, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                ("x-tenant", "acme"),
            ]
            .into_iter()
            .collect();
            // Two pipelined calls: one with headers, one without.
            let mut bytes = header_call(protocol, 7, transforms.clone(), headers, "hi");
            bytes.extend(header_call(protocol, 8, transforms.clone(), Headers::new(), "again"));
            let replies = exchange(server.local_addr(), &bytes, 2).await;
            let (frame, payload) = &replies[0];
            assert_eq!((frame.seqid, frame.protocol, &frame.transforms), (7, protocol, &transforms));
            assert_eq!(echoed(protocol, payload.clone()), "hi");
            assert_eq!(frame.headers.get("x-tenant"), Some("acme"));
            assert_eq!(
                frame.headers.get("saw"),
                Some(
                    "appkey=Some(\"caller_app\") service=Some(\"Caller\") request_id=Some(\"req-42\") \
                     priority=Some(0) deadline=true \
                     trace=Some(\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\")"
                ),
                "{protocol:?} {transforms:?}"
            );
            let (frame, payload) = &replies[1];
            assert_eq!(frame.seqid, 8);
            assert_eq!(echoed(protocol, payload.clone()), "again");
            assert_eq!(frame.headers.get("x-tenant"), None, "headers are per call");
        }
    }
    // Plain framed calls on the same port still work, without a context.
    assert_serving(server.local_addr()).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_header_frames_close_the_connection_and_are_counted() {
    let server = Server::builder().add_service(Echo::new("Echo", "").0).start("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    let good = header_call(Protocol::Binary, 1, vec![], Headers::new(), "x");
    let mut cases = Vec::new();
    // Header words past the frame.
    let mut past = good.clone();
    past[12..14].copy_from_slice(&0x4000u16.to_be_bytes());
    cases.push(past);
    // An unknown transform (snappy, 3) in place of the transform count 0... then id 3.
    let mut snappy = good.clone();
    snappy[15] = 1;
    snappy[16] = 3;
    cases.push(snappy);
    // A zlib transform over a payload that is not zlib.
    let mut not_zlib = good.clone();
    not_zlib[15] = 1;
    not_zlib[16] = 1;
    cases.push(not_zlib);
    for case in &cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(case).await.unwrap();
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut got).await.unwrap();
        assert!(got.is_empty(), "no reply, the connection closes: {got:02x?}");
    }
    let text = probe_runtime::metrics::global().render();
    let series = format!("probe_server_bad_header_frames_total{{node=\"{addr}\"}} ");
    let count = text.lines().find_map(|l| l.strip_prefix(&series)).map(|v| v.trim().parse::<u64>().unwrap());
    assert_eq!(count, Some(cases.len() as u64), "{text}");
    assert_serving(addr).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn probe_clients_send_metadata_in_header_frames() {
    use probe_runtime::client::{Channel, TcpTransport};
    use probe_runtime::context::{Metadata, Priority};
    let (server, _) = start_echo().await;
    for protocol in [Protocol::Binary, Protocol::Compact] {
        for (multiplex, zlib, prefix) in [(false, false, false), (true, true, true), (true, false, false)] {
            let transport = TcpTransport::builder(server.local_addr().to_string())
                .protocol(protocol)
                .header(true)
                .header_zlib(zlib)
                .multiplex(multiplex)
                .service_prefix(prefix)
                .build();
            assert_eq!(transport.wire(), WireFormat::new(protocol, Framing::Header));
            let channel = Channel::new(transport);
            let metadata = Metadata::new()
                .caller("caller_app", "Caller")
                .priority(Priority::SHEDDABLE)
                .deadline(std::time::Duration::from_secs(2))
                .traceparent("00-aa-bb-01")
                .header("x-tenant", "acme");
            let with = channel.with_metadata(metadata.clone());
            assert_eq!(echo(&with, "hi").await.unwrap(), "hi");
            let reply = metadata.reply_headers().expect("a header reply");
            assert_eq!(reply.get("x-tenant"), Some("acme"));
            let saw = reply.get("saw").unwrap();
            assert!(
                saw.starts_with("appkey=Some(\"caller_app\") service=Some(\"Caller\") request_id=Some("),
                "{saw}"
            );
            assert!(saw.ends_with("priority=Some(2) deadline=true trace=Some(\"00-aa-bb-01\")"), "{saw}");
            // Without metadata: still a header call, with a request id only.
            assert_eq!(echo(&channel, "plain").await.unwrap(), "plain");
        }
    }
    server.shutdown().await.unwrap();
}
