//! Known byte vectors for the compact protocol.

use bytes::{Bytes, BytesMut};

use super::{CompactReader, CompactWriter, unzigzag32, unzigzag64, zigzag32, zigzag64};
use crate::codec::{
    FieldHeader, ListHeader, MapHeader, MessageHeader, MessageType, ProtocolError, ProtocolReader,
    ProtocolWriter, TType,
};

fn written(f: impl FnOnce(&mut CompactWriter<'_>) -> Result<(), ProtocolError>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let mut w = CompactWriter::new(&mut buf);
    assert_eq!(f(&mut w), Ok(()));
    buf.to_vec()
}

fn reader(bytes: &[u8]) -> CompactReader {
    CompactReader::new(Bytes::copy_from_slice(bytes))
}

#[test]
fn zigzag() {
    for (v, z) in [(0, 0), (-1, 1), (1, 2), (-2, 3), (i32::MAX, u32::MAX - 1), (i32::MIN, u32::MAX)] {
        assert_eq!(zigzag32(v), z);
        assert_eq!(unzigzag32(z), v);
    }
    assert_eq!(zigzag64(i64::MIN), u64::MAX);
    assert_eq!(unzigzag64(u64::MAX), i64::MIN);
}

#[test]
fn primitives() -> Result<(), ProtocolError> {
    assert_eq!(written(|w| w.write_bool(true)), [1]);
    assert_eq!(written(|w| w.write_bool(false)), [2]);
    assert_eq!(written(|w| w.write_i8(-1)), [0xff]);
    assert_eq!(written(|w| w.write_i16(-3)), [5]);
    assert_eq!(written(|w| w.write_i32(150)), [0xac, 0x02]);
    assert_eq!(written(|w| w.write_i32(i32::MIN)), [0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(
        written(|w| w.write_i64(i64::MIN)),
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
    );
    assert_eq!(written(|w| w.write_double(1.0)), [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
    assert_eq!(written(|w| w.write_string("hi")), [2, b'h', b'i']);
    assert_eq!(written(|w| w.write_binary(&[9; 200]))[..2], [0xc8, 0x01]);
    assert_eq!(written(|w| w.write_uuid(&[7; 16])), [7; 16]);

    assert!(reader(&[1]).read_bool()?);
    assert!(!reader(&[2]).read_bool()?);
    assert!(!reader(&[0]).read_bool()?);
    assert!(matches!(reader(&[3]).read_bool(), Err(ProtocolError::InvalidData(_))));
    assert_eq!(reader(&[0xff]).read_i8()?, -1);
    assert_eq!(reader(&[5]).read_i16()?, -3);
    assert_eq!(reader(&[0xac, 0x02]).read_i32()?, 150);
    assert_eq!(reader(&[0xff, 0xff, 0xff, 0xff, 0x0f]).read_i32()?, i32::MIN);
    assert_eq!(reader(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).read_i64()?, i64::MIN);
    assert_eq!(reader(&[0, 0, 0, 0, 0, 0, 0xf0, 0x3f]).read_double()?, 1.0);
    assert_eq!(reader(&[2, b'h', b'i']).read_string()?, "hi");
    assert_eq!(reader(&[1, 9]).read_binary()?, Bytes::from_static(&[9]));
    assert_eq!(reader(&[7; 16]).read_uuid()?, [7; 16]);
    Ok(())
}

#[test]
fn out_of_range_varints_are_rejected() {
    // zigzag(40000) does not fit an i16.
    assert!(matches!(reader(&[0x80, 0xf1, 0x04]).read_i16(), Err(ProtocolError::InvalidData(_))));
    // 2^32 does not fit 32 bits.
    assert!(matches!(reader(&[0x80, 0x80, 0x80, 0x80, 0x10]).read_i32(), Err(ProtocolError::InvalidData(_))));
}

#[test]
fn message_header() -> Result<(), ProtocolError> {
    let header = MessageHeader::new("ping", MessageType::Call, 1);
    let bytes = written(|w| w.write_message_begin(&header));
    assert_eq!(bytes, [0x82, 0x21, 0x01, 0x04, b'p', b'i', b'n', b'g']);
    assert_eq!(reader(&bytes).read_message_begin()?, header);

    let oneway = MessageHeader::new("x", MessageType::Oneway, -1);
    let bytes = written(|w| w.write_message_begin(&oneway));
    assert_eq!(bytes, [0x82, 0x81, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, b'x']);
    assert_eq!(reader(&bytes).read_message_begin()?, oneway);

    assert_eq!(reader(&[0x80, 0x01]).read_message_begin(), Err(ProtocolError::BadVersion { found: 0x8001 }));
    assert_eq!(reader(&[0x82, 0x22]).read_message_begin(), Err(ProtocolError::BadVersion { found: 0x8222 }));
    assert_eq!(reader(&[0x82, 0xa1, 0, 0]).read_message_begin(), Err(ProtocolError::InvalidMessageType(5)));
    for cut in 0..8 {
        let err = reader(&[0x82, 0x21, 0x01, 0x04, b'p', b'i', b'n', b'g'][..cut]).read_message_begin();
        assert!(matches!(err, Err(ProtocolError::Incomplete { .. })), "cut at {cut}: {err:?}");
    }
    Ok(())
}

/// Fields 1 (delta), 5 (delta 4), 100 (long form), 3 (going back: long form), nested struct.
fn write_fields<W: ProtocolWriter>(w: &mut W) -> Result<(), ProtocolError> {
    w.write_struct_begin("S")?;
    w.write_field_begin(TType::I32, 1)?;
    w.write_i32(0)?;
    w.write_field_begin(TType::I64, 5)?;
    w.write_i64(0)?;
    w.write_field_begin(TType::String, 100)?;
    w.write_string("")?;
    w.write_field_begin(TType::Struct, 3)?;
    w.write_struct_begin("Inner")?;
    w.write_field_begin(TType::I8, 2)?;
    w.write_i8(0)?;
    w.write_field_stop()?;
    w.write_struct_end()?;
    w.write_field_begin(TType::I16, 4)?; // delta 1 from 3: the outer last id was restored
    w.write_i16(0)?;
    w.write_field_stop()?;
    w.write_struct_end()
}

#[test]
fn field_deltas_and_long_form_ids() -> Result<(), ProtocolError> {
    let bytes = written(|w| write_fields(w));
    let want = [
        0x15, 0, // 1: i32, delta 1
        0x46, 0, // 5: i64, delta 4
        0x08, 0xc8, 0x01, 0, // 100: binary, long form zigzag(100) = 200
        0x0c, 0x06, // 3: struct, long form (the id went down)
        0x23, 0, 0, // inner 2: i8, delta 2 from 0; stop
        0x14, 0, // 4: i16, delta 1
        0,
    ];
    assert_eq!(bytes, want);

    let mut r = reader(&bytes);
    r.read_struct_begin()?;
    let mut ids = Vec::new();
    loop {
        let f = r.read_field_begin()?;
        if f.ttype == TType::Stop {
            break;
        }
        ids.push(f.id);
        r.skip(f.ttype)?;
    }
    r.read_struct_end()?;
    assert_eq!(ids, [1, 5, 100, 3, 4]);
    assert_eq!(r.remaining(), 0);
    Ok(())
}

#[test]
fn negative_field_ids_use_the_long_form() -> Result<(), ProtocolError> {
    let bytes = written(|w| w.write_field_begin(TType::I32, -1));
    assert_eq!(bytes, [0x05, 0x01]);
    assert_eq!(reader(&bytes).read_field_begin()?, FieldHeader { ttype: TType::I32, id: -1 });
    Ok(())
}

#[test]
fn bool_is_folded_into_the_field_header() -> Result<(), ProtocolError> {
    let bytes = written(|w| {
        w.write_field_begin(TType::Bool, 1)?;
        w.write_bool(true)?;
        w.write_field_begin(TType::Bool, 2)?;
        w.write_bool(false)?;
        w.write_field_begin(TType::Bool, 40)?;
        w.write_bool(true)
    });
    assert_eq!(bytes, [0x11, 0x12, 0x01, 0x50]);
    let mut r = reader(&bytes);
    for (id, v) in [(1, true), (2, false), (40, true)] {
        assert_eq!(r.read_field_begin()?, FieldHeader { ttype: TType::Bool, id });
        assert_eq!(r.read_bool()?, v);
    }
    assert_eq!(r.remaining(), 0);
    Ok(())
}

#[test]
fn field_delta_overflow_is_an_error() {
    // Long-form id 32767, then a delta of 1.
    let mut r = reader(&[0x05, 0xfe, 0xff, 0x03, 0x00, 0x15]);
    assert_eq!(r.read_field_begin().map(|f| f.id), Ok(i16::MAX));
    assert_eq!(r.read_i32(), Ok(0));
    assert!(matches!(r.read_field_begin(), Err(ProtocolError::InvalidData(_))));
}

#[test]
fn lists_short_and_long_form() -> Result<(), ProtocolError> {
    assert_eq!(written(|w| w.write_list_begin(TType::I32, 3)), [0x35]);
    assert_eq!(written(|w| w.write_set_begin(TType::String, 14)), [0xe8]);
    assert_eq!(written(|w| w.write_list_begin(TType::I32, 15)), [0xf5, 0x0f]);
    assert_eq!(written(|w| w.write_list_begin(TType::Bool, 0)), [0x01]);

    assert_eq!(reader(&[0x35, 0, 0, 0]).read_list_begin()?, ListHeader { elem: TType::I32, len: 3 });
    assert_eq!(reader(&[0x22, 1, 2]).read_list_begin()?, ListHeader { elem: TType::Bool, len: 2 });
    let mut long = vec![0xf5, 0x0f];
    long.extend([0; 15]);
    assert_eq!(reader(&long).read_set_begin()?, ListHeader { elem: TType::I32, len: 15 });
    // 3 doubles need 24 bytes.
    assert_eq!(reader(&[0x37, 0, 0]).read_list_begin(), Err(ProtocolError::Incomplete { needed: 22 }));
    Ok(())
}

#[test]
fn maps_and_the_empty_map() -> Result<(), ProtocolError> {
    assert_eq!(written(|w| w.write_map_begin(TType::String, TType::I32, 0)), [0]);
    assert_eq!(written(|w| w.write_map_begin(TType::String, TType::I32, 1)), [0x01, 0x85]);
    let mut r = reader(&[0]);
    assert_eq!(r.read_map_begin()?, MapHeader { key: TType::Stop, value: TType::Stop, len: 0 });
    r.read_map_end()?;
    assert_eq!(r.remaining(), 0);
    let h = reader(&[0x01, 0x85, 0, 0]).read_map_begin()?;
    assert_eq!(h, MapHeader { key: TType::String, value: TType::I32, len: 1 });
    assert!(matches!(reader(&[0x01, 0x05, 0, 0]).read_map_begin(), Err(ProtocolError::InvalidData(_))));
    assert_eq!(reader(&[0x01, 0xe5, 0, 0]).read_map_begin(), Err(ProtocolError::UnknownType(14)));
    Ok(())
}

#[test]
fn writing_a_too_long_length_fails_without_writing() {
    let mut buf = BytesMut::new();
    let mut w = CompactWriter::new(&mut buf);
    let too_long = i32::MAX as usize + 1;
    assert!(matches!(w.write_set_begin(TType::I8, too_long), Err(ProtocolError::SizeLimit { .. })));
    assert!(matches!(
        w.write_map_begin(TType::I8, TType::I8, too_long),
        Err(ProtocolError::SizeLimit { .. })
    ));
    assert!(buf.is_empty());
}
