//! Known byte vectors for the binary protocol.

use bytes::{Bytes, BytesMut};

use super::{BinaryReader, BinaryWriter};
use crate::codec::{
    Limits, MapHeader, MessageHeader, MessageType, ProtocolError, ProtocolReader, ProtocolWriter, TType,
};

fn written(f: impl FnOnce(&mut BinaryWriter<'_>) -> Result<(), ProtocolError>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let mut w = BinaryWriter::new(&mut buf);
    assert_eq!(f(&mut w), Ok(()));
    buf.to_vec()
}

fn reader(bytes: &[u8]) -> BinaryReader {
    BinaryReader::new(Bytes::copy_from_slice(bytes))
}

#[test]
fn primitives() -> Result<(), ProtocolError> {
    assert_eq!(written(|w| w.write_bool(true)), [1]);
    assert_eq!(written(|w| w.write_bool(false)), [0]);
    assert_eq!(written(|w| w.write_i8(-1)), [0xff]);
    assert_eq!(written(|w| w.write_i16(0x0102)), [1, 2]);
    assert_eq!(written(|w| w.write_i32(-2)), [0xff, 0xff, 0xff, 0xfe]);
    assert_eq!(written(|w| w.write_i64(0x0102_0304_0506_0708)), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(written(|w| w.write_double(1.0)), [0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(written(|w| w.write_string("hi")), [0, 0, 0, 2, b'h', b'i']);
    assert_eq!(written(|w| w.write_binary(&[9])), [0, 0, 0, 1, 9]);
    assert_eq!(written(|w| w.write_uuid(&[7; 16])), [7; 16]);

    assert!(reader(&[1]).read_bool()?);
    assert!(!reader(&[0]).read_bool()?);
    assert_eq!(reader(&[0xff]).read_i8()?, -1);
    assert_eq!(reader(&[1, 2]).read_i16()?, 0x0102);
    assert_eq!(reader(&[0xff, 0xff, 0xff, 0xfe]).read_i32()?, -2);
    assert_eq!(reader(&[1, 2, 3, 4, 5, 6, 7, 8]).read_i64()?, 0x0102_0304_0506_0708);
    assert_eq!(reader(&[0x3f, 0xf0, 0, 0, 0, 0, 0, 0]).read_double()?, 1.0);
    assert_eq!(reader(&[0, 0, 0, 2, b'h', b'i']).read_string()?, "hi");
    assert_eq!(reader(&[0, 0, 0, 1, 9]).read_binary()?, Bytes::from_static(&[9]));
    assert_eq!(reader(&[7; 16]).read_uuid()?, [7; 16]);
    Ok(())
}

#[test]
fn read_binary_is_a_slice_of_the_input() -> Result<(), ProtocolError> {
    let input = Bytes::from_static(&[0, 0, 0, 3, b'a', b'b', b'c']);
    let got = BinaryReader::new(input.clone()).read_binary()?;
    assert_eq!(got.as_ptr(), input[4..].as_ptr());
    Ok(())
}

#[test]
fn fields_and_containers() -> Result<(), ProtocolError> {
    assert_eq!(written(|w| w.write_field_begin(TType::I32, 0x0102)), [8, 1, 2]);
    assert_eq!(written(|w| w.write_field_stop()), [0]);
    assert_eq!(written(|w| w.write_list_begin(TType::I16, 3)), [6, 0, 0, 0, 3]);
    assert_eq!(written(|w| w.write_set_begin(TType::String, 1)), [11, 0, 0, 0, 1]);
    assert_eq!(written(|w| w.write_map_begin(TType::String, TType::I64, 0)), [11, 10, 0, 0, 0, 0]);

    let mut r = reader(&[8, 0xff, 0xfe, 0]);
    let f = r.read_field_begin()?;
    assert_eq!((f.ttype, f.id), (TType::I32, -2));
    assert_eq!(r.read_field_begin()?.ttype, TType::Stop);

    let mut r = reader(&[11, 10, 0, 0, 0, 0]);
    assert_eq!(r.read_map_begin()?, MapHeader { key: TType::String, value: TType::I64, len: 0 });
    r.read_map_end()?;
    let h = reader(&[6, 0, 0, 0, 2, 0, 1, 0, 2]).read_list_begin()?;
    assert_eq!((h.elem, h.len), (TType::I16, 2));
    Ok(())
}

#[test]
fn strict_message_header() -> Result<(), ProtocolError> {
    let header = MessageHeader::new("ping", MessageType::Reply, 0x0a0b_0c0d);
    let bytes = written(|w| w.write_message_begin(&header));
    assert_eq!(bytes, [0x80, 1, 0, 2, 0, 0, 0, 4, b'p', b'i', b'n', b'g', 0x0a, 0x0b, 0x0c, 0x0d]);
    assert_eq!(reader(&bytes).read_message_begin()?, header);
    Ok(())
}

#[test]
fn non_strict_message_header() -> Result<(), ProtocolError> {
    // Name length, name, type byte, seqid: what old clients send.
    let bytes = [0, 0, 0, 4, b'p', b'i', b'n', b'g', 1, 0, 0, 0, 9];
    let mut r = reader(&bytes);
    assert_eq!(r.read_message_begin()?, MessageHeader::new("ping", MessageType::Call, 9));
    assert_eq!(r.position(), bytes.len());
    Ok(())
}

#[test]
fn bad_message_headers() {
    let wrong_version = [0x80, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        reader(&wrong_version).read_message_begin(),
        Err(ProtocolError::BadVersion { found: 0x8002_0001 })
    );
    let wrong_type = [0x80, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(reader(&wrong_type).read_message_begin(), Err(ProtocolError::InvalidMessageType(9)));
    // An HTTP request read as a non-strict name length is far over the string limit.
    assert!(matches!(reader(b"GET / HTTP/1.1").read_message_begin(), Err(ProtocolError::SizeLimit { .. })));
    let bad_utf8 = [0x80, 1, 0, 1, 0, 0, 0, 1, 0xff, 0, 0, 0, 0];
    assert_eq!(reader(&bad_utf8).read_message_begin(), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn truncated_input_is_incomplete() {
    let header = MessageHeader::new("ping", MessageType::Call, 1);
    let bytes = written(|w| w.write_message_begin(&header));
    for cut in 0..bytes.len() {
        let err = reader(&bytes[..cut]).read_message_begin();
        assert!(
            matches!(err, Err(ProtocolError::Incomplete { needed }) if needed > 0),
            "cut at {cut}: {err:?}"
        );
    }
    assert_eq!(reader(&[0, 0, 0, 5, b'a']).read_string(), Err(ProtocolError::Incomplete { needed: 4 }));
}

#[test]
fn lengths_are_checked() {
    assert_eq!(
        reader(&[0xff, 0xff, 0xff, 0xff]).read_string(),
        Err(ProtocolError::NegativeSize { what: "string", len: -1 })
    );
    // 1000 i64 elements need 8000 bytes; 10 are there.
    let mut r = reader(&[10, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(r.read_list_begin(), Err(ProtocolError::Incomplete { needed: 7990 }));
    let limits = Limits { max_container_len: 2, max_string_len: 2, ..Limits::default() };
    let mut r = BinaryReader::with_limits(Bytes::from_static(&[2, 0, 0, 0, 3, 1, 1, 1]), limits);
    assert_eq!(r.read_set_begin(), Err(ProtocolError::SizeLimit { what: "set", len: 3, limit: 2 }));
    let mut r = BinaryReader::with_limits(Bytes::from_static(&[0, 0, 0, 3, 1, 1, 1]), limits);
    assert_eq!(r.read_binary(), Err(ProtocolError::SizeLimit { what: "string", len: 3, limit: 2 }));
    assert!(matches!(reader(&[0, 0, 0, 0, 1, 0]).read_list_begin(), Err(ProtocolError::InvalidData(_))));
    assert_eq!(reader(&[7, 0, 0, 0, 0]).read_list_begin(), Err(ProtocolError::UnknownType(7)));
    assert_eq!(reader(&[1, 0, 0]).read_field_begin(), Err(ProtocolError::UnknownType(1)));
}

#[test]
fn struct_depth_is_bounded() {
    let limits = Limits { max_depth: 3, ..Limits::default() };
    let mut r = BinaryReader::with_limits(Bytes::new(), limits);
    for _ in 0..3 {
        assert_eq!(r.read_struct_begin(), Ok(()));
    }
    assert_eq!(r.read_struct_begin(), Err(ProtocolError::DepthLimit { limit: 3 }));
    assert_eq!(r.read_list_begin(), Err(ProtocolError::Incomplete { needed: 5 }));
    assert_eq!(r.read_struct_end(), Ok(()));
    assert_eq!(r.read_struct_begin(), Ok(()));
}

#[test]
fn writing_a_too_long_length_fails_without_writing() {
    let mut buf = BytesMut::new();
    let mut w = BinaryWriter::new(&mut buf);
    let too_long = i32::MAX as usize + 1;
    assert!(matches!(w.write_list_begin(TType::I8, too_long), Err(ProtocolError::SizeLimit { .. })));
    assert!(matches!(
        w.write_map_begin(TType::I8, TType::I8, too_long),
        Err(ProtocolError::SizeLimit { .. })
    ));
    assert!(buf.is_empty());
}
