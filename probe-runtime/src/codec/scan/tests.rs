use bytes::{Bytes, BytesMut};

use super::*;
use crate::codec::{BinaryWriter, CompactWriter, MessageHeader, MessageType, ProtocolWriter};

/// A call `m` #7 whose arguments hold a field of every type, nested containers included.
fn everything<W: ProtocolWriter>(w: &mut W) -> Result<(), ProtocolError> {
    w.write_message_begin(&MessageHeader::new("m", MessageType::Call, 7))?;
    crate::codec::fixtures::write_every_type(w)?;
    w.write_message_end()
}

/// A call `m` whose arguments are `fields` i8 fields: the many-tiny-fields message of issue 12.
fn tiny_fields<W: ProtocolWriter>(w: &mut W, fields: usize) -> Result<(), ProtocolError> {
    w.write_message_begin(&MessageHeader::new("m", MessageType::Call, 1))?;
    w.write_struct_begin("args")?;
    for i in 0..fields {
        w.write_field_begin(TType::I8, (i % 1000) as i16 + 1)?;
        w.write_i8(1)?;
    }
    w.write_field_stop()?;
    w.write_struct_end()?;
    w.write_message_end()
}

fn encoded(write: impl FnOnce(&mut BytesMut) -> Result<(), ProtocolError>) -> Bytes {
    let mut buf = BytesMut::new();
    assert!(write(&mut buf).is_ok());
    buf.freeze()
}

/// Old non-strict binary: name length, name, type byte, seqid; empty arguments.
const OLD_BINARY: &[u8] = &[0, 0, 0, 1, b'm', 1, 0, 0, 0, 7, 0];

fn messages() -> Vec<(Encoding, Bytes)> {
    vec![
        (Encoding::Binary, encoded(|b| everything(&mut BinaryWriter::new(b)))),
        (Encoding::Compact, encoded(|b| everything(&mut CompactWriter::new(b)))),
        (Encoding::Binary, encoded(|b| tiny_fields(&mut BinaryWriter::new(b), 50))),
        (Encoding::Compact, encoded(|b| tiny_fields(&mut CompactWriter::new(b), 50))),
        (Encoding::Binary, Bytes::from_static(OLD_BINARY)),
    ]
}

/// Feeds `message` in segments of `chunk` bytes: incomplete until its last byte, then complete
/// at its length; returns the bytes examined.
fn feed(encoding: Encoding, message: &[u8], chunk: usize) -> u64 {
    let mut scan = MessageScan::new(encoding, Limits::DEFAULT);
    let mut end = 0;
    while end < message.len() {
        end = (end + chunk).min(message.len());
        let got = scan.scan(&message[..end]);
        if end < message.len() {
            assert!(matches!(got, Ok(Scanned::Incomplete(n)) if n >= 1), "{encoding:?} at {end}: {got:?}");
        } else {
            assert_eq!(got, Ok(Scanned::Complete(message.len())), "{encoding:?} chunk {chunk}");
        }
    }
    scan.examined()
}

#[test]
fn finds_the_end_however_the_message_is_split() {
    for (encoding, message) in messages() {
        for chunk in [1, 2, 3, 5, 7, 16, message.len()] {
            feed(encoding, &message, chunk);
        }
        // A message followed by the start of the next ends where it ends.
        let mut two = BytesMut::from(&message[..]);
        two.extend_from_slice(&message[..3]);
        let mut scan = MessageScan::new(encoding, Limits::DEFAULT);
        assert_eq!(scan.scan(&two), Ok(Scanned::Complete(message.len())));
        scan.reset();
        assert_eq!(scan.scan(&message), Ok(Scanned::Complete(message.len())));
    }
}

#[test]
fn examines_each_byte_about_once() {
    for encoding in [Encoding::Binary, Encoding::Compact] {
        let message = match encoding {
            Encoding::Binary => encoded(|b| tiny_fields(&mut BinaryWriter::new(b), 100_000)),
            Encoding::Compact => encoded(|b| tiny_fields(&mut CompactWriter::new(b), 100_000)),
        };
        let n = message.len() as u64;
        for chunk in [1usize, 3, 64] {
            let examined = feed(encoding, &message, chunk);
            // Each byte once, plus a partial token (at most 16 bytes) again per segment.
            let segments = n.div_ceil(chunk as u64);
            assert!(examined <= n + 16 * segments, "{encoding:?} chunk {chunk}: {examined} for {n} bytes");
        }
        assert_eq!(feed(encoding, &message, message.len()), n);
    }
}

#[test]
fn refuses_what_the_readers_refuse() {
    let limits = Limits { max_depth: 3, max_container_len: 4, max_string_len: 8, ..Limits::DEFAULT };
    let scan = |bytes: &[u8]| MessageScan::new(Encoding::Binary, limits).scan(bytes);
    // Strict call `m` #7, then the arguments.
    let call = |body: &[u8]| [&[0x80, 1, 0, 1, 0, 0, 0, 1, b'm', 0, 0, 0, 7][..], body].concat();
    assert_eq!(scan(&call(&[1, 0, 1])), Err(ProtocolError::UnknownType(1)));
    assert_eq!(scan(&[0x80, 2, 0, 1]), Err(ProtocolError::BadVersion { found: 0x8002_0001 }));
    let deep = call(&[15, 0, 1, 15, 0, 0, 0, 1, 15, 0, 0, 0, 1, 15, 0, 0, 0, 1]);
    assert_eq!(scan(&deep), Err(ProtocolError::DepthLimit { limit: 3 }));
    let long_list = call(&[15, 0, 1, 3, 0, 0, 0, 5]);
    assert_eq!(scan(&long_list), Err(ProtocolError::SizeLimit { what: "list", len: 5, limit: 4 }));
    let negative = call(&[11, 0, 1, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(scan(&negative), Err(ProtocolError::NegativeSize { what: "string", len: -1 }));
    let stops = call(&[15, 0, 1, 0, 0, 0, 0, 1]);
    assert!(matches!(scan(&stops), Err(ProtocolError::InvalidData(_))));
    // A method name over the limit is refused from its length, before its bytes come.
    let name = [0x80, 1, 0, 1, 0, 0, 0, 9];
    assert_eq!(scan(&name), Err(ProtocolError::SizeLimit { what: "method name", len: 9, limit: 8 }));
    assert_eq!(scan(&[0x80, 1, 0, 1, 0, 0, 0, 1, 0xff, 0, 0, 0, 7, 0]), Err(ProtocolError::InvalidUtf8));
    // A list longer than the bytes that can follow it asks for them all at once.
    let big = call(&[15, 0, 1, 10, 0, 0, 0, 4]);
    assert_eq!(scan(&big), Ok(Scanned::Incomplete(4 * 8)));
}
