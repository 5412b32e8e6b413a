use bytes::{Bytes, BytesMut};

use super::*;
use crate::codec::Limits;

fn hex(s: &str) -> Bytes {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<_>>().into()
}

/// Bytes Apache's Python `THeaderTransport` wrote, without the length prefix.
const PY_COMPACT_HEADERS: &str = "0fff000000000005000702000102016b01760b7472616365706172656e740530302d6162000068656c6c6f2068656c6c6f2068656c6c6f";
const PY_BINARY_ZLIB: &str = "0fff000000000001000100010100789c4b4c4a4e4442002df505bf";

fn encoded(frame: &HeaderFrame, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    encode(frame, payload, &mut out).unwrap();
    out.freeze()
}

#[test]
fn reads_what_apache_python_writes() {
    let (frame, payload) = decode(hex(PY_COMPACT_HEADERS), Limits::DEFAULT).unwrap();
    assert_eq!((frame.seqid, frame.protocol, frame.transforms.len()), (5, Protocol::Compact, 0));
    assert_eq!(frame.headers.get("k"), Some("v"));
    assert_eq!(frame.headers.get("traceparent"), Some("00-ab"));
    assert_eq!(&payload[..], b"hello hello hello");
    let (frame, payload) = decode(hex(PY_BINARY_ZLIB), Limits::DEFAULT).unwrap();
    assert_eq!(
        (frame.seqid, frame.protocol, &frame.transforms[..]),
        (1, Protocol::Binary, &[Transform::Zlib][..])
    );
    assert!(frame.headers.is_empty());
    assert_eq!(&payload[..], b"abcabcabcabcabc");
}

#[test]
fn writes_what_apache_python_writes() {
    let mut frame = HeaderFrame::new(Protocol::Compact, 5);
    frame.headers.insert("k", "v");
    frame.headers.insert("traceparent", "00-ab");
    assert_eq!(encoded(&frame, b"hello hello hello"), hex(PY_COMPACT_HEADERS));
}

#[test]
fn round_trips_with_every_protocol_transform_and_header() {
    for protocol in [Protocol::Binary, Protocol::Compact] {
        for transforms in [vec![], vec![Transform::Zlib], vec![Transform::Zlib, Transform::Zlib]] {
            let mut frame =
                HeaderFrame { seqid: -3, flags: 1, protocol, transforms, headers: Headers::new() };
            frame.headers.insert("probe-request-id", "abc-1");
            frame.headers.insert(vec![0xff, 0], vec![1u8; 300]);
            let payload = vec![7u8; 5000];
            let (back, got) = decode(encoded(&frame, &payload), Limits::DEFAULT).unwrap();
            assert_eq!(back, frame);
            assert_eq!(&got[..], &payload[..]);
            assert_eq!(frame_seqid(&encoded(&frame, b"")), Some(-3));
        }
    }
}

#[test]
fn malformed_frames_are_errors() {
    let good = hex(PY_COMPACT_HEADERS);
    let with = |at: usize, byte: u8| {
        let mut v = good.to_vec();
        v[at] = byte;
        Bytes::from(v)
    };
    let err = |frame: Bytes| decode(frame, Limits::DEFAULT).unwrap_err();
    assert_eq!(err(good.slice(..9)), HeaderError::TooShort { len: 9 });
    assert_eq!(err(with(0, 0x80)), HeaderError::NoMagic { found: 0x80ff });
    // Header words past the frame, and the 16-bit maximum.
    assert!(matches!(err(with(9, 0x40)), HeaderError::HeaderPastFrame { words: 0x40, .. }));
    assert!(matches!(err(with(8, 0xff)), HeaderError::HeaderPastFrame { .. }));
    assert_eq!(err(with(10, 1)), HeaderError::UnknownProtocol(1));
    // One transform, id 3 (snappy), where the count of 0 was.
    let mut snappy = good.to_vec();
    snappy[11] = 1;
    snappy[12] = 3;
    assert_eq!(err(snappy.into()), HeaderError::UnknownTransform(3));
    // A transform count larger than the header.
    assert!(matches!(err(with(11, 0x7f)), HeaderError::TooManyTransforms { count: 0x7f, .. }));
    // A key length past the header's end.
    assert!(matches!(err(with(14, 0x7f)), HeaderError::StringPastHeader { len: 0x7f, .. }));
    // A varint of six bytes (overflows 32 bits) and one cut by the header's end.
    let overflow = hex("0fff0000000000010002ffffffffff010000");
    assert_eq!(err(overflow), HeaderError::BadVarint("overflows 32 bits"));
    let cut = hex("0fff000000000001000180808080");
    assert_eq!(err(cut), HeaderError::BadVarint("runs past the header's end"));
}

#[test]
fn unknown_info_headers_and_padding_are_skipped() {
    // Protocol 0, no transforms, info id 9 (unknown) with junk after it, then the payload.
    let (frame, payload) = decode(hex("0fff0000000000010002000009ffff000000aa"), Limits::DEFAULT).unwrap();
    assert!(frame.headers.is_empty());
    assert_eq!(&payload[..], [0xaa]);
}

#[test]
fn zlib_payloads_inflate_within_the_frame_limit() {
    let mut frame = HeaderFrame::new(Protocol::Binary, 1);
    frame.transforms.push(Transform::Zlib);
    // 1 MiB of zeros deflates to about a kilobyte.
    let bomb = encoded(&frame, &vec![0u8; 1 << 20]);
    assert!(bomb.len() < 8 * 1024, "{}", bomb.len());
    let small = Limits { max_frame: 64 * 1024, ..Limits::DEFAULT };
    assert_eq!(decode(bomb.clone(), small).unwrap_err(), HeaderError::InflatedTooLarge { limit: 64 * 1024 });
    assert_eq!(decode(bomb.clone(), Limits::DEFAULT).unwrap().1.len(), 1 << 20);
    // Exactly at the limit inflates; one byte over does not.
    let exact = Limits { max_frame: 1 << 20, ..Limits::DEFAULT };
    assert_eq!(decode(bomb.clone(), exact).unwrap().1.len(), 1 << 20);
    let under = Limits { max_frame: (1 << 20) - 1, ..Limits::DEFAULT };
    assert!(decode(bomb.clone(), under).is_err());
    // A cut stream and garbage are errors, not hangs.
    let cut = bomb.slice(..bomb.len() - 10);
    assert!(matches!(decode(cut, Limits::DEFAULT).unwrap_err(), HeaderError::Inflate(_)));
    let mut garbage = bomb.to_vec();
    let at = garbage.len() - 20;
    garbage[at..].fill(0xff);
    assert!(decode(garbage.into(), Limits::DEFAULT).is_err());
}

#[test]
fn the_payload_of_a_frame_without_transforms_is_found_without_its_headers() {
    let (_, payload) = decode(hex(PY_COMPACT_HEADERS), Limits::DEFAULT).unwrap();
    let frame = hex(PY_COMPACT_HEADERS);
    let (protocol, at) = plain_payload_at(&frame).unwrap();
    assert_eq!((protocol, &frame[at..]), (Protocol::Compact, &payload[..]));
    // Transforms, or not a header frame: left to `decode`.
    assert_eq!(plain_payload_at(&hex(PY_BINARY_ZLIB)), None);
    for cut in 0..at {
        assert_eq!(plain_payload_at(&frame[..cut]), None, "cut at {cut}");
    }
    let mut other = frame.to_vec();
    other[0] = 0x80;
    assert_eq!(plain_payload_at(&other), None);
    for protocol in [Protocol::Binary, Protocol::Compact] {
        let mut frame = HeaderFrame::new(protocol, 9);
        let bare = encoded(&frame, b"payload");
        assert_eq!(
            plain_payload_at(&bare).map(|(p, at)| (p, &bare[at..])),
            Some((protocol, &b"payload"[..]))
        );
        frame.headers.insert("probe-deadline-ms", "250");
        let with = encoded(&frame, b"payload");
        assert_eq!(
            plain_payload_at(&with).map(|(p, at)| (p, &with[at..])),
            Some((protocol, &b"payload"[..]))
        );
    }
}
