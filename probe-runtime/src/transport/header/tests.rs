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
fn a_frame_without_headers_takes_one_header_word() {
    for (protocol, id) in [(Protocol::Binary, "00"), (Protocol::Compact, "02")] {
        let mut out = BytesMut::new();
        encode_plain(protocol, 0x0102, -2, std::iter::empty(), b"pay", &mut out).unwrap();
        assert_eq!(out.freeze(), hex(&format!("0fff0102fffffffe0001{id}000000706179")));
        let (frame, payload) =
            decode(encoded(&HeaderFrame::new(protocol, 9), b"pay"), Limits::DEFAULT).unwrap();
        assert_eq!((frame, &payload[..]), (HeaderFrame::new(protocol, 9), &b"pay"[..]));
    }
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
fn headers_built_on_the_stack_or_appended_one_by_one_read_back_alike() {
    // Values from well inside the stack header to well past it, across its edge.
    for len in (0..40).chain(200..270).chain([1000]) {
        let value = vec![b'v'; len];
        let pairs = [(&b"probe-deadline-ms"[..], &b"1500"[..]), (&b"k"[..], &value[..])];
        let mut out = BytesMut::new();
        encode_plain(Protocol::Compact, 0, 11, pairs.iter().copied(), b"pay", &mut out).unwrap();
        let (frame, payload) = decode(out.freeze(), Limits::DEFAULT).unwrap();
        assert_eq!(
            (frame.seqid, frame.protocol, &payload[..]),
            (11, Protocol::Compact, &b"pay"[..]),
            "{len}"
        );
        let got: Vec<_> = frame.headers.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        let expected: Vec<_> = pairs.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(got, expected, "{len}");
    }
}

#[test]
fn a_framed_plain_frame_is_its_length_then_the_plain_frame() {
    let pairs: [(&[u8], &[u8]); 2] = [(b"probe-deadline-ms", b"1500"), (b"k", &[b'v'; 300])];
    for protocol in [Protocol::Binary, Protocol::Compact] {
        for pairs in [&pairs[..0], &pairs[..1], &pairs[..]] {
            let mut plain = BytesMut::from(&b"before"[..]);
            encode_plain(protocol, 0, 7, pairs.iter().copied(), b"payload", &mut plain).unwrap();
            let mut framed = BytesMut::from(&b"before"[..]);
            encode_plain_into(protocol, 0, 7, pairs.iter().copied(), b"payload", true, &mut framed).unwrap();
            let len = (plain.len() - 6) as u32;
            assert_eq!(&framed[..6], b"before");
            assert_eq!(&framed[6..10], len.to_be_bytes());
            assert_eq!(&framed[10..], &plain[6..]);
        }
    }
}

#[test]
fn a_frame_head_is_what_a_framed_plain_frame_has_before_the_payload() {
    let long = vec![b'x'; 127];
    let sets: [&[(&[u8], &[u8])]; 4] = [
        &[],
        &[(b"probe-deadline-ms", b"1500"), (b"probe-request-id", b"5f3a9c01-2a")],
        &[(b"k", b""), (b"", b"v"), (b"abc", b"de")],
        &[(b"k", &long)],
    ];
    for protocol in [Protocol::Binary, Protocol::Compact] {
        for pairs in sets {
            let mut head = FrameHead::new(protocol, 0x0102, -9);
            assert!(pairs.iter().all(|(k, v)| head.pair(k, v)));
            head.finish(7).unwrap();
            let mut expected = BytesMut::new();
            encode_plain_into(protocol, 0x0102, -9, pairs.iter().copied(), b"payload", true, &mut expected)
                .unwrap();
            assert_eq!([head.as_bytes(), b"payload"].concat(), expected, "{pairs:?}");
        }
    }
    // What does not fit is refused, and the head stays as it was.
    let mut head = FrameHead::new(Protocol::Binary, 0, 1);
    assert!(!head.pair(b"k", &[b'x'; 128]), "a string of 128 bytes takes a two-byte length");
    let mut fitted = 0;
    while head.pair(b"k", &long[..60]) {
        fitted += 1;
    }
    head.finish(0).unwrap();
    let (frame, payload) = decode(Bytes::copy_from_slice(&head.as_bytes()[4..]), Limits::DEFAULT).unwrap();
    assert!(payload.is_empty() && fitted > 0);
    assert!(frame.headers.iter().all(|(k, v)| k == b"k" && v == &long[..60]));
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

/// A frame of protocol 0 without transforms whose info headers are `info` (padded here), then
/// the payload `p`.
fn with_info(info: &[u8]) -> Bytes {
    let mut words = vec![0u8, 0];
    words.extend_from_slice(info);
    words.resize(words.len().next_multiple_of(4), 0);
    let mut out = hex("0fff00000000000a").to_vec();
    out.extend_from_slice(&u16::try_from(words.len() / 4).unwrap().to_be_bytes());
    out.extend_from_slice(&words);
    out.push(b'p');
    out.into()
}

/// `pairs` as one key-value group: id 1, count, then each string with its length.
fn group(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = vec![1, u8::try_from(pairs.len()).unwrap()];
    for (k, v) in pairs {
        for s in [k, v] {
            out.push(u8::try_from(s.len()).unwrap());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

#[test]
fn received_headers_read_as_headers_built_with_the_same_inserts() {
    let many: Vec<(String, String)> = (0..20).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cases: Vec<Vec<u8>> = vec![
        group(&[("a", "1"), ("b", "2")]),
        // A key twice: its last value, at its first place.
        group(&[("a", "1"), ("b", "2"), ("a", "3")]),
        // Two groups, an empty value, and an unknown id ending the pairs.
        [group(&[("a", "1")]), group(&[("", "x"), ("c", "")]), vec![9, 1, 1, b'z', 1, b'z']].concat(),
        // More pairs than are kept in place.
        group(&many),
        // A group claiming more pairs than there are (the padding ends it).
        vec![1, 5, 1, b'k', 1, b'v'],
        group(&[]),
    ];
    for info in cases {
        let (frame, payload) = decode(with_info(&info), Limits::DEFAULT).unwrap();
        assert_eq!(&payload[..], b"p");
        let got = frame.headers;
        // The same pairs put in one by one, as the spec's map semantics say.
        let mut want = Headers::new();
        let mut pairs = Vec::new();
        let mut scan = &info[..];
        while let [1, count, rest @ ..] = scan {
            scan = rest;
            for _ in 0..*count {
                let Some((&klen, rest)) = scan.split_first() else { break };
                let (k, rest) = rest.split_at(usize::from(klen));
                let (&vlen, rest) = rest.split_first().unwrap();
                let (v, rest) = rest.split_at(usize::from(vlen));
                want.insert(k.to_vec(), v.to_vec());
                pairs.push((k.to_vec(), v.to_vec()));
                scan = rest;
            }
        }
        assert_eq!(got, want, "{info:x?}");
        assert_eq!(got.len(), want.len());
        assert_eq!(got.iter().len(), want.len());
        assert_eq!(got.iter().collect::<Vec<_>>(), want.iter().collect::<Vec<_>>());
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
        for (k, v) in want.iter() {
            assert_eq!(got.get_bytes(k), Some(v));
        }
        assert_eq!(got.get_bytes(b"absent"), None);
        // Encoded again, the headers read back the same.
        let (back, _) =
            decode(encoded(&HeaderFrame { headers: got.clone(), ..frame }, b"p"), Limits::DEFAULT).unwrap();
        assert_eq!(back.headers, want);
        // Shown as read: every pair in order, a key sent twice twice.
        let mut seen = Vec::new();
        let read =
            decode_seeing(with_info(&info), Limits::DEFAULT, |k, v| seen.push((k.to_vec(), v.to_vec())));
        assert_eq!(read.unwrap().0.headers, want);
        assert_eq!(seen, pairs, "{info:x?}");
    }
}

#[test]
fn received_headers_change_like_built_ones() {
    let (frame, _) =
        decode(with_info(&group(&[("a", "1"), ("b", "2"), ("c", "3")])), Limits::DEFAULT).unwrap();
    let built: Headers = [("a", "1"), ("b", "2"), ("c", "3")].into_iter().collect();
    type Change = fn(&mut Headers) -> Option<Bytes>;
    let changes: [Change; 6] = [
        |h| {
            h.insert("b", "20");
            None
        },
        |h| {
            h.insert("d", "4");
            None
        },
        |h| {
            h.insert_if_absent("a", "10");
            h.insert_if_absent("e", "5");
            None
        },
        |h| h.remove("b"),
        |h| h.remove("zz"),
        |h| {
            let other: Headers = [("c", "30"), ("f", "6")].into_iter().collect();
            h.extend_from(&other);
            None
        },
    ];
    for change in changes {
        let (mut got, mut want) = (frame.headers.clone(), built.clone());
        assert_eq!(change(&mut got), change(&mut want));
        assert_eq!(got, want);
        assert_eq!(got.iter().collect::<Vec<_>>(), want.iter().collect::<Vec<_>>());
    }
    // Received headers added to others, and to none.
    let mut some: Headers = [("a", "0"), ("z", "26")].into_iter().collect();
    some.extend_from(&frame.headers);
    let want: Headers = [("a", "1"), ("z", "26"), ("b", "2"), ("c", "3")].into_iter().collect();
    assert_eq!(some, want);
    let mut none = Headers::new();
    none.extend_from(&frame.headers);
    assert_eq!(none, built);
}
