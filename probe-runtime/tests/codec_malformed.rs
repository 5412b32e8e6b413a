//! Hostile inputs from Apache Thrift's own advisories: huge claimed lengths, deep nesting,
//! truncation. Each must fail fast with a precise error, without a large allocation.

use bytes::{Bytes, BytesMut};
use probe_runtime::codec::{
    BinaryReader, BinaryWriter, CompactReader, CompactWriter, Decode, Encode, Limits, MessageHeader,
    MessageType, ProtocolError, ProtocolReader, ProtocolWriter, TType,
};

/// A recursive struct `Node { 1: optional Node child }`, decoded the way generated code does.
#[derive(Debug, PartialEq)]
struct Node {
    child: Option<Box<Node>>,
}

impl Encode for Node {
    fn encode<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        w.write_struct_begin("Node")?;
        if let Some(child) = &self.child {
            w.write_field_begin(TType::Struct, 1)?;
            child.encode(w)?;
            w.write_field_end()?;
        }
        w.write_field_stop()?;
        w.write_struct_end()
    }
}

impl Decode for Node {
    fn decode<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        let mut child = None;
        r.read_struct_begin()?;
        loop {
            let f = r.read_field_begin()?;
            match (f.id, f.ttype) {
                (_, TType::Stop) => break,
                (1, TType::Struct) => child = Some(Box::new(Node::decode(r)?)),
                (_, t) => r.skip(t)?,
            }
            r.read_field_end()?;
        }
        r.read_struct_end()?;
        Ok(Node { child })
    }
}

/// A decoder of `list<i64>` the way generated code writes one.
fn decode_list<R: ProtocolReader>(r: &mut R) -> Result<Vec<i64>, ProtocolError> {
    let h = r.read_list_begin()?;
    let mut v = Vec::with_capacity(h.capacity_hint());
    for _ in 0..h.len {
        v.push(r.read_i64()?);
    }
    r.read_list_end()?;
    Ok(v)
}

fn nested(depth: usize) -> Node {
    (0..depth).fold(Node { child: None }, |n, _| Node { child: Some(Box::new(n)) })
}

#[test]
fn list_of_2_pow_31_with_10_bytes_behind_binary() {
    let mut input = vec![TType::I64.as_u8(), 0x80, 0, 0, 0];
    input.extend([0; 10]);
    let input = Bytes::from(input);
    // As an i32, 2^31 is negative.
    let got = decode_list(&mut BinaryReader::new(input.clone()));
    assert_eq!(got, Err(ProtocolError::NegativeSize { what: "list", len: -(1 << 31) }));
    // Just under it: over the default limit.
    let input2 = Bytes::from_static(&[10, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let got = decode_list(&mut BinaryReader::new(input2.clone()));
    assert!(matches!(got, Err(ProtocolError::SizeLimit { what: "list", .. })), "{got:?}");
    // Without a length limit, the bytes left still bound it.
    let unlimited = Limits { max_container_len: usize::MAX, ..Limits::default() };
    let got = decode_list(&mut BinaryReader::with_limits(input2, unlimited));
    assert!(matches!(got, Err(ProtocolError::Incomplete { .. })), "{got:?}");
    let got = BinaryReader::with_limits(input, unlimited).skip(TType::List);
    assert!(matches!(got, Err(ProtocolError::NegativeSize { .. })), "{got:?}");
}

#[test]
fn list_of_2_pow_31_with_10_bytes_behind_compact() {
    // Long-form header for i64 elements, then varint(2^31).
    let mut input = vec![0xf6, 0x80, 0x80, 0x80, 0x80, 0x08];
    input.extend([0; 10]);
    let input = Bytes::from(input);
    let got = decode_list(&mut CompactReader::new(input.clone()));
    assert!(matches!(got, Err(ProtocolError::SizeLimit { what: "list", len: 2147483648, .. })), "{got:?}");
    let unlimited = Limits { max_container_len: usize::MAX, ..Limits::default() };
    let got = decode_list(&mut CompactReader::with_limits(input.clone(), unlimited));
    assert!(matches!(got, Err(ProtocolError::Incomplete { .. })), "{got:?}");
    let got = CompactReader::with_limits(input, unlimited).skip(TType::List);
    assert!(matches!(got, Err(ProtocolError::Incomplete { .. })), "{got:?}");
}

#[test]
fn huge_string_and_map_lengths_are_refused() {
    let got = BinaryReader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, b'a'])).read_string();
    assert!(matches!(got, Err(ProtocolError::SizeLimit { what: "string", .. })), "{got:?}");
    let got = CompactReader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x07, b'a'])).read_binary();
    assert!(matches!(got, Err(ProtocolError::SizeLimit { what: "string", .. })), "{got:?}");
    // map<i32, i32> of 1,000,000 entries in 3 bytes.
    let got = CompactReader::new(Bytes::from_static(&[0xc0, 0x84, 0x3d, 0x55, 0, 0])).read_map_begin();
    assert!(matches!(got, Err(ProtocolError::Incomplete { needed }) if needed == 1_999_998), "{got:?}");
}

#[test]
fn thousand_deep_structs_hit_the_depth_limit() -> Result<(), ProtocolError> {
    let deep = nested(1000);
    for compact in [false, true] {
        let mut buf = BytesMut::new();
        if compact {
            deep.encode(&mut CompactWriter::new(&mut buf))?;
        } else {
            deep.encode(&mut BinaryWriter::new(&mut buf))?;
        }
        let bytes = buf.freeze();
        let (decoded, skipped) = if compact {
            (
                Node::decode(&mut CompactReader::new(bytes.clone())),
                CompactReader::new(bytes).skip(TType::Struct),
            )
        } else {
            (
                Node::decode(&mut BinaryReader::new(bytes.clone())),
                BinaryReader::new(bytes).skip(TType::Struct),
            )
        };
        assert_eq!(decoded, Err(ProtocolError::DepthLimit { limit: 64 }), "compact: {compact}");
        assert_eq!(skipped, Err(ProtocolError::DepthLimit { limit: 64 }), "compact: {compact}");
    }
    Ok(())
}

#[test]
fn nesting_up_to_the_limit_is_fine() -> Result<(), ProtocolError> {
    let ok = nested(63); // 64 structs
    let mut buf = BytesMut::new();
    ok.encode(&mut CompactWriter::new(&mut buf))?;
    assert_eq!(Node::decode(&mut CompactReader::new(buf.freeze()))?, ok);
    Ok(())
}

#[test]
fn deep_containers_hit_the_depth_limit() {
    // list<list<list<...>>> 1000 deep, one element each.
    let binary: Vec<u8> = (0..1000).flat_map(|_| [TType::List.as_u8(), 0, 0, 0, 1]).collect();
    let got = BinaryReader::new(Bytes::from(binary)).skip(TType::List);
    assert_eq!(got, Err(ProtocolError::DepthLimit { limit: 64 }));
    // Compact map<i8, map<i8, ...>> 1000 deep.
    let compact: Vec<u8> = (0..1000).flat_map(|_| [0x01, 0x3b, 0x00]).collect();
    let got = CompactReader::new(Bytes::from(compact)).skip(TType::Map);
    assert_eq!(got, Err(ProtocolError::DepthLimit { limit: 64 }));
}

#[test]
fn truncated_message_is_incomplete() -> Result<(), ProtocolError> {
    let mut buf = BytesMut::new();
    let w = &mut BinaryWriter::new(&mut buf);
    w.write_message_begin(&MessageHeader::new("getUser", MessageType::Call, 3))?;
    nested(5).encode(w)?;
    w.write_message_end()?;
    let bytes = buf.freeze();
    for cut in 0..bytes.len() {
        let mut r = BinaryReader::new(bytes.slice(..cut));
        let got = r.read_message_begin().and_then(|_| Node::decode(&mut r));
        assert!(matches!(got, Err(ProtocolError::Incomplete { .. })), "cut {cut}: {got:?}");
    }
    let mut r = BinaryReader::new(bytes.clone());
    r.read_message_begin()?;
    assert_eq!(Node::decode(&mut r)?, nested(5));
    assert_eq!(r.position(), bytes.len());
    Ok(())
}

#[test]
fn unknown_types_are_errors_not_loops() {
    // A field of type 1 (not a Thrift type) inside a struct being skipped.
    let got = BinaryReader::new(Bytes::from_static(&[1, 0, 1, 0])).skip(TType::Struct);
    assert_eq!(got, Err(ProtocolError::UnknownType(1)));
    // Compact field of type 14.
    let got = CompactReader::new(Bytes::from_static(&[0x1e, 0])).skip(TType::Struct);
    assert_eq!(got, Err(ProtocolError::UnknownType(14)));
}
