//! Hostile and broken input on raw sockets: each connection gets a `TApplicationException` or is
//! closed, and the server goes on answering other connections.

mod server_support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use probe_runtime::codec::{
    ApplicationExceptionKind, Encode, MessageHeader, MessageType, ProtocolError, ProtocolWriter,
};
use probe_runtime::server::{Server, ServerHandle};
use probe_runtime::service::Protocol;
use probe_runtime::transport::{Framing, WireFormat};
use server_support::*;
use tokio::io::AsyncWriteExt;

/// Writes nothing, to encode a message header alone.
struct NoBody;

impl Encode for NoBody {
    fn encode<W: ProtocolWriter>(&self, _: &mut W) -> Result<(), ProtocolError> {
        Ok(())
    }
}

/// A call of `echo` #77 whose arguments are the raw `body` bytes.
fn raw_call(protocol: Protocol, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    protocol.encode_message(&MessageHeader::new("echo", MessageType::Call, 77), &NoBody, &mut buf).unwrap();
    buf.extend_from_slice(body);
    buf.to_vec()
}

/// Arguments whose field 1 is a `list<i64>` claiming 2^31 elements, with 10 bytes behind it.
fn huge_list(protocol: Protocol) -> Vec<u8> {
    let mut body = match protocol {
        Protocol::Binary => vec![15, 0, 1, 10, 0x80, 0, 0, 0],
        Protocol::Compact => vec![0x19, 0xf6, 0x80, 0x80, 0x80, 0x80, 0x08],
    };
    body.extend([0; 10]);
    body
}

/// Arguments whose field 1 is a struct nested 1,000 deep.
fn deep_structs(protocol: Protocol) -> Vec<u8> {
    let field: &[u8] = match protocol {
        Protocol::Binary => &[12, 0, 1],
        Protocol::Compact => &[0x1c],
    };
    let mut body = field.repeat(1000);
    body.extend([0; 1001]);
    body
}

/// A server whose read timeout is short, so that input that stalls is closed quickly too.
async fn server() -> ServerHandle {
    let (echo, _) = Echo::new("Echo", "");
    start(Server::builder().add_service(echo).read_timeout(Duration::from_secs(1))).await
}

/// Sends `bytes` (closing our sending side if `half_close`) and returns what the server sent
/// before it closed the connection.
async fn exchange(
    addr: SocketAddr,
    wire: WireFormat,
    bytes: &[u8],
    half_close: bool,
) -> Vec<(MessageHeader, Bytes)> {
    let mut stream = send_raw(addr, bytes).await;
    if half_close {
        stream.shutdown().await.unwrap();
    }
    replies_until_closed(stream, wire).await
}

/// Checks the replies are one `ProtocolError` exception for call #77.
fn assert_protocol_error(wire: WireFormat, replies: Vec<(MessageHeader, Bytes)>) {
    assert_eq!(replies.len(), 1, "{wire}: {replies:?}");
    for (header, body) in replies {
        assert_eq!((&*header.name, header.seqid), ("echo", 77), "{wire}");
        let e = exception(wire.protocol, &header, body);
        assert_eq!(e.kind, ApplicationExceptionKind::ProtocolError, "{wire}: {e}");
    }
}

#[tokio::test]
async fn a_2_gib_frame_length_closes_the_connection() {
    let server = server().await;
    let addr = server.local_addr();
    let framed = WireFormat::new(Protocol::Binary, Framing::Framed);
    // As the first bytes: no Thrift message starts with 80 00.
    let replies = exchange(addr, framed, &[0x80, 0, 0, 0, 0x80, 0x01, 0, 1], false).await;
    assert!(replies.is_empty());
    // After a good call: that call is answered, then the connection closed.
    let mut bytes = on_wire(framed, &message(Protocol::Binary, "echo", 1, &EchoArgs::new("first")));
    bytes.extend_from_slice(&[0x80, 0, 0, 0, 0x80, 0x01]);
    let replies = exchange(addr, framed, &bytes, false).await;
    assert_eq!(replies.len(), 1);
    // A 1 GiB frame of framed binary: refused at its length, no allocation.
    let replies = exchange(addr, framed, &[0x40, 0, 0, 0, 0x80, 0x01, 0, 1], false).await;
    assert!(replies.is_empty());
    assert_serving(addr).await;
}

#[tokio::test]
async fn a_list_of_2_pow_31_elements_gets_a_protocol_error() {
    let server = server().await;
    for wire in WIRES {
        let bytes = on_wire(wire, &raw_call(wire.protocol, &huge_list(wire.protocol)));
        // Unframed, the server cannot find the message's end and closes by itself; framed, the
        // connection stays usable, so the client closes it.
        let half_close = wire.framing == Framing::Framed;
        assert_protocol_error(wire, exchange(server.local_addr(), wire, &bytes, half_close).await);
        assert_serving(server.local_addr()).await;
    }
}

#[tokio::test]
async fn thousand_deep_structs_get_a_protocol_error() {
    let server = server().await;
    for wire in WIRES {
        let bytes = on_wire(wire, &raw_call(wire.protocol, &deep_structs(wire.protocol)));
        let half_close = wire.framing == Framing::Framed;
        assert_protocol_error(wire, exchange(server.local_addr(), wire, &bytes, half_close).await);
        assert_serving(server.local_addr()).await;
    }
}

#[tokio::test]
async fn truncated_messages_are_refused() {
    let server = server().await;
    let addr = server.local_addr();
    for wire in WIRES {
        let whole = message(wire.protocol, "echo", 77, &EchoArgs::new("truncated"));
        let cut = &whole[..whole.len() - 5];
        match wire.framing {
            Framing::Framed | Framing::Header => {
                // A whole frame holding a cut message: its arguments do not decode.
                assert_protocol_error(wire, exchange(addr, wire, &on_wire(wire, cut), true).await);
                // A frame cut short by the end of the stream.
                let bytes = on_wire(wire, &whole);
                assert!(exchange(addr, wire, &bytes[..bytes.len() - 5], true).await.is_empty());
            }
            Framing::Unframed => {
                // The end of the stream in the middle of a message.
                assert!(exchange(addr, wire, cut, true).await.is_empty(), "{wire}");
                // A message that never ends: closed by the read timeout.
                assert!(exchange(addr, wire, cut, false).await.is_empty(), "{wire}");
            }
        }
        assert_serving(addr).await;
    }
}

#[tokio::test]
async fn garbage_closes_the_connection() {
    let server = server().await;
    let addr = server.local_addr();
    let mut seed: u32 = 12345;
    let mut garbage = Vec::new();
    for _ in 0..8 {
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        garbage.push(bytes);
    }
    garbage.push(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec());
    garbage.push(vec![0x82; 64]);
    garbage.push(vec![0; 64]);
    for bytes in garbage {
        // The replies, if any, are whatever the server made of it; it must close in the end.
        let stream = send_raw(addr, &bytes).await;
        drop(replies_until_closed_lenient(stream).await);
    }
    assert_serving(addr).await;
}

/// Reads until the server closes the connection, whatever it sends. Fails after 10 s.
async fn replies_until_closed_lenient(mut stream: tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server should close the connection");
    out
}
