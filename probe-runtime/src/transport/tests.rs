//! Reading and writing messages over in-memory streams, whole and one byte at a time.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};

use super::*;
use crate::codec::{ApplicationException, Limits, MessageHeader, MessageType};

/// Hands out its bytes one per read.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(&b) = this.bytes.get(this.at) {
            buf.put_slice(&[b]);
            this.at += 1;
        }
        Poll::Ready(Ok(()))
    }
}

fn message(protocol: Protocol, name: &'static str, seqid: i32) -> Bytes {
    let mut buf = BytesMut::new();
    let body = ApplicationException::unknown_method(name);
    let header = MessageHeader::new(name, MessageType::Exception, seqid);
    protocol.encode_message(&header, &body, &mut buf).unwrap();
    buf.freeze()
}

fn wire_bytes(wire: WireFormat, messages: &[Bytes]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for m in messages {
        encode_frame(wire.framing, m, &mut out).unwrap();
    }
    out.to_vec()
}

const WIRES: [WireFormat; 4] = [
    WireFormat::new(Protocol::Binary, Framing::Framed),
    WireFormat::new(Protocol::Binary, Framing::Unframed),
    WireFormat::new(Protocol::Compact, Framing::Framed),
    WireFormat::new(Protocol::Compact, Framing::Unframed),
];

#[tokio::test]
async fn detects_then_reads_pipelined_messages_whole_or_trickled() {
    for wire in WIRES {
        let messages = [message(wire.protocol, "a", 1), message(wire.protocol, "bb", 2)];
        let bytes = wire_bytes(wire, &messages);
        let whole = MessageReader::detect(&bytes[..], Limits::default()).await.unwrap().unwrap();
        let trickled = Trickle { bytes: bytes.clone(), at: 0 };
        let trickled = MessageReader::detect(trickled, Limits::default()).await.unwrap().unwrap();
        assert_eq!((whole.wire(), trickled.wire()), (wire, wire));
        for mut reader in [Box::new(whole) as Box<dyn ReadAll>, Box::new(trickled)] {
            assert_eq!(reader.all().await.unwrap(), messages, "{wire}");
        }
    }
}

/// Reads messages until the end of the stream.
trait ReadAll {
    fn all(&mut self) -> Pin<Box<dyn Future<Output = Result<Vec<Bytes>, WireError>> + '_>>;
}

impl<R: AsyncRead + Unpin> ReadAll for MessageReader<R> {
    fn all(&mut self) -> Pin<Box<dyn Future<Output = Result<Vec<Bytes>, WireError>> + '_>> {
        Box::pin(async move {
            let mut out = Vec::new();
            while let Some(m) = self.read_message().await? {
                out.push(m);
            }
            Ok(out)
        })
    }
}

#[tokio::test]
async fn a_2_gib_frame_is_refused_at_its_length() {
    let bytes = [0x80u8, 0, 0, 0, 0x80, 0x01];
    let wire = WireFormat::new(Protocol::Binary, Framing::Framed);
    let mut reader = MessageReader::new(&bytes[..], wire, Limits::default());
    let got = reader.read_message().await;
    assert!(matches!(got, Err(WireError::FrameTooLarge { len: 0x8000_0000, .. })), "{got:?}");
    let mut reader = MessageReader::new(&[0u8, 0, 0, 0][..], wire, Limits::default());
    assert!(matches!(reader.read_message().await, Err(WireError::EmptyFrame)));
}

#[tokio::test]
async fn a_stream_that_ends_inside_a_message_is_truncated() {
    for wire in WIRES {
        let bytes = wire_bytes(wire, &[message(wire.protocol, "abc", 1)]);
        let cut = &bytes[..bytes.len() - 3];
        let mut reader = MessageReader::new(cut, wire, Limits::default());
        let got = reader.read_message().await;
        assert!(matches!(got, Err(WireError::Truncated { .. })), "{wire}: {got:?}");
    }
}

#[tokio::test]
async fn unframed_messages_are_bounded_by_the_frame_limit() {
    let limits = Limits { max_frame: 64, ..Limits::default() };
    for protocol in [Protocol::Binary, Protocol::Compact] {
        let long = message(protocol, "a_method_name_long_enough_to_pass_the_limit_of_sixty_four_bytes", 1);
        let wire = WireFormat::new(protocol, Framing::Unframed);
        // Cut short, so the reader learns the size from the header and stops before the end.
        let mut reader = MessageReader::new(&long[..70], wire, limits);
        let got = reader.read_message().await;
        assert!(matches!(got, Err(WireError::FrameTooLarge { limit: 64, .. })), "{protocol:?}: {got:?}");
    }
}

#[tokio::test]
async fn garbage_is_refused() {
    let got = MessageReader::detect(&[0xffu8, 1, 2, 3][..], Limits::default()).await;
    assert!(matches!(got, Err(WireError::NotThrift(_))), "{got:?}");
    let got = MessageReader::detect(&b"GET / HTTP/1.1\r\n\r\n"[..], Limits::default()).await.unwrap();
    let got = got.unwrap().read_message().await;
    assert!(matches!(got, Err(WireError::Malformed { header: None, .. })), "{got:?}");
    assert!(MessageReader::detect(&[][..], Limits::default()).await.unwrap().is_none());
}

/// The resumable scan, fed `bytes` in segments of the given sizes (cycled), and its result once
/// it completes, fails, or has all the bytes.
fn scan_in_segments(
    protocol: Protocol,
    bytes: &[u8],
    sizes: &[usize],
    limits: Limits,
) -> Result<crate::codec::Scanned, crate::codec::ProtocolError> {
    use crate::codec::{Encoding, MessageScan, Scanned};
    let encoding = match protocol {
        Protocol::Binary => Encoding::Binary,
        Protocol::Compact => Encoding::Compact,
    };
    let mut scan = MessageScan::new(encoding, limits);
    let mut end = 0;
    let mut sizes = sizes.iter().cycle();
    loop {
        end = (end + sizes.next().copied().unwrap_or(1).max(1)).min(bytes.len());
        match scan.scan(&bytes[..end]) {
            Ok(Scanned::Incomplete(_)) if end < bytes.len() => {}
            other => return other,
        }
    }
}

proptest::proptest! {
    /// The resumable scan finds the end the parse from the start finds, however the input is
    /// split, and refuses what it refuses.
    #[test]
    fn the_resumable_scan_agrees_with_parsing_from_the_start(
        compact: bool,
        which in 0usize..3,
        flips in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..4),
        cut in 0usize..400,
        sizes in proptest::collection::vec(1usize..9, 1..6),
        small: bool,
    ) {
        use super::message::{Scan, unframed_message_len};
        use crate::codec::Scanned;
        let protocol = if compact { Protocol::Compact } else { Protocol::Binary };
        let name = ["say", "a_longer_method_name", ""][which];
        let mut bytes = BytesMut::from(&message(protocol, name, 7)[..]);
        bytes.extend_from_slice(&message(protocol, "next", 8));
        let len = bytes.len();
        for (at, b) in flips {
            if let Some(slot) = bytes.get_mut(at % len) {
                *slot = b;
            }
        }
        bytes.truncate(cut.max(1));
        let limits = if small {
            Limits { max_depth: 2, max_container_len: 3, max_string_len: 8, max_method_name: 4, ..Limits::DEFAULT }
        } else {
            Limits::DEFAULT
        };
        let reference = unframed_message_len(protocol, bytes.clone().freeze(), limits);
        let whole = scan_in_segments(protocol, &bytes, &[bytes.len()], limits);
        let split = scan_in_segments(protocol, &bytes, &sizes, limits);
        match (&reference, &whole) {
            (Ok(Scan::Complete(a)), Ok(Scanned::Complete(b))) => proptest::prop_assert_eq!(a, b),
            (Ok(Scan::Incomplete(_)), Ok(Scanned::Incomplete(_)) | Err(_)) | (Err(_), Err(_)) => {}
            _ => proptest::prop_assert!(false, "reference {:?}, scan {:?}", reference, whole),
        }
        proptest::prop_assert_eq!(whole.is_ok(), split.is_ok());
        if let (Ok(Scanned::Complete(a)), Ok(b)) = (&whole, &split) {
            proptest::prop_assert_eq!(Scanned::Complete(*a), *b);
        }
    }
}
