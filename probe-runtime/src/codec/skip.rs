//! Skipping values of unknown fields, bounded on any input.
//!
//! `skip` goes through the reader's own `*_begin` methods, so nesting is counted against
//! [`Limits::max_depth`](super::Limits) and container lengths are checked against the input before
//! the loop over them starts. Each field header and each element consumes at least one byte, so
//! the loops end when the input does.

use super::error::ProtocolError;
use super::traits::ProtocolReader;
use super::types::TType;

/// Skips one value of type `ttype`.
pub(crate) fn skip_value<R: ProtocolReader + ?Sized>(r: &mut R, ttype: TType) -> Result<(), ProtocolError> {
    match ttype {
        TType::Stop => return Err(ProtocolError::invalid_data("cannot skip a value of type Stop")),
        TType::Bool => drop(r.read_bool()?),
        TType::I8 => drop(r.read_i8()?),
        TType::I16 => drop(r.read_i16()?),
        TType::I32 => drop(r.read_i32()?),
        TType::I64 => drop(r.read_i64()?),
        TType::Double => drop(r.read_double()?),
        TType::String => r.skip_binary()?,
        TType::Uuid => drop(r.read_uuid()?),
        TType::Struct => {
            r.read_struct_begin()?;
            loop {
                let field = r.read_field_begin()?;
                if field.ttype == TType::Stop {
                    break;
                }
                skip_value(r, field.ttype)?;
                r.read_field_end()?;
            }
            r.read_struct_end()?;
        }
        TType::List => {
            let h = r.read_list_begin()?;
            skip_elems(r, h.elem, h.len)?;
            r.read_list_end()?;
        }
        TType::Set => {
            let h = r.read_set_begin()?;
            skip_elems(r, h.elem, h.len)?;
            r.read_set_end()?;
        }
        TType::Map => {
            let h = r.read_map_begin()?;
            for _ in 0..h.len {
                skip_value(r, h.key)?;
                skip_value(r, h.value)?;
            }
            r.read_map_end()?;
        }
    }
    Ok(())
}

/// Skips `len` elements of type `elem`. `len` was checked against the input by the reader.
fn skip_elems<R: ProtocolReader + ?Sized>(r: &mut R, elem: TType, len: usize) -> Result<(), ProtocolError> {
    for _ in 0..len {
        skip_value(r, elem)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::codec::{BinaryReader, BinaryWriter, CompactReader, CompactWriter, ProtocolWriter};

    /// Writes a struct holding one field of every type, nested containers included, then a
    /// trailing i32 field the test reads after skipping the whole struct.
    fn write_everything<W: ProtocolWriter>(w: &mut W) -> Result<(), ProtocolError> {
        crate::codec::fixtures::write_every_type(w)?;
        w.write_i32(0x1234_5678)
    }

    fn skip_then_read_trailer<R: ProtocolReader>(r: &mut R) -> Result<i32, ProtocolError> {
        r.skip(TType::Struct)?;
        r.read_i32()
    }

    #[test]
    fn skips_every_type_binary() -> Result<(), ProtocolError> {
        let mut buf = BytesMut::new();
        write_everything(&mut BinaryWriter::new(&mut buf))?;
        let mut r = BinaryReader::new(buf.freeze());
        assert_eq!(skip_then_read_trailer(&mut r)?, 0x1234_5678);
        assert_eq!(r.remaining(), 0);
        Ok(())
    }

    #[test]
    fn skips_every_type_compact() -> Result<(), ProtocolError> {
        let mut buf = BytesMut::new();
        write_everything(&mut CompactWriter::new(&mut buf))?;
        let mut r = CompactReader::new(buf.freeze());
        assert_eq!(skip_then_read_trailer(&mut r)?, 0x1234_5678);
        assert_eq!(r.remaining(), 0);
        Ok(())
    }

    #[test]
    fn skip_stop_is_an_error() {
        let mut r = BinaryReader::new(Bytes::from_static(&[0]));
        assert!(matches!(r.skip(TType::Stop), Err(ProtocolError::InvalidData(_))));
    }

    #[test]
    fn skip_respects_depth() {
        // Binary: 100 nested list<list<...>> headers, each of one element.
        let mut v = Vec::new();
        for _ in 0..100 {
            v.extend_from_slice(&[TType::List.as_u8(), 0, 0, 0, 1]);
        }
        let mut r = BinaryReader::new(Bytes::from(v));
        assert_eq!(r.skip(TType::List), Err(ProtocolError::DepthLimit { limit: 64 }));
    }
}
