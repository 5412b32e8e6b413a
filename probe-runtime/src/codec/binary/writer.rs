//! The binary protocol writer.

use bytes::{BufMut, BytesMut};

use super::VERSION_1;
use crate::codec::error::ProtocolError;
use crate::codec::limits::write_len;
use crate::codec::traits::ProtocolWriter;
use crate::codec::types::{MessageHeader, TType};

/// Writes the binary protocol (strict message headers) straight into a borrowed `BytesMut`.
///
/// ```
/// use bytes::BytesMut;
/// use probe_runtime::codec::{BinaryWriter, ProtocolWriter};
///
/// let mut buf = BytesMut::new();
/// BinaryWriter::new(&mut buf).write_i32(7)?;
/// assert_eq!(&buf[..], &[0, 0, 0, 7]);
/// # Ok::<(), probe_runtime::codec::ProtocolError>(())
/// ```
#[derive(Debug)]
pub struct BinaryWriter<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> BinaryWriter<'a> {
    /// A writer appending to `buf`.
    #[inline]
    pub fn new(buf: &'a mut BytesMut) -> Self {
        BinaryWriter { buf }
    }

    /// The buffer written so far.
    #[inline]
    pub fn buffer(&mut self) -> &mut BytesMut {
        self.buf
    }
}

impl ProtocolWriter for BinaryWriter<'_> {
    #[inline]
    fn write_message_begin(&mut self, header: &MessageHeader) -> Result<(), ProtocolError> {
        let name_len = write_len("string", header.name.len())?;
        self.buf.put_u32(VERSION_1 | u32::from(header.kind.as_u8()));
        self.buf.put_i32(name_len);
        self.buf.put_slice(header.name.as_bytes());
        self.buf.put_i32(header.seqid);
        Ok(())
    }

    #[inline]
    fn write_message_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn write_struct_begin(&mut self, _name: &'static str) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn write_struct_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn write_field_begin(&mut self, ttype: TType, id: i16) -> Result<(), ProtocolError> {
        // One put of three bytes: type, then the id big-endian.
        let [hi, lo] = id.to_be_bytes();
        self.buf.put_slice(&[ttype.as_u8(), hi, lo]);
        Ok(())
    }

    #[inline]
    fn write_field_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn write_field_stop(&mut self) -> Result<(), ProtocolError> {
        self.buf.put_u8(TType::Stop.as_u8());
        Ok(())
    }

    #[inline]
    fn write_bool(&mut self, v: bool) -> Result<(), ProtocolError> {
        self.buf.put_u8(u8::from(v));
        Ok(())
    }

    #[inline]
    fn write_i8(&mut self, v: i8) -> Result<(), ProtocolError> {
        self.buf.put_i8(v);
        Ok(())
    }

    #[inline]
    fn write_i16(&mut self, v: i16) -> Result<(), ProtocolError> {
        self.buf.put_i16(v);
        Ok(())
    }

    #[inline]
    fn write_i32(&mut self, v: i32) -> Result<(), ProtocolError> {
        self.buf.put_i32(v);
        Ok(())
    }

    #[inline]
    fn write_i64(&mut self, v: i64) -> Result<(), ProtocolError> {
        self.buf.put_i64(v);
        Ok(())
    }

    #[inline]
    fn write_double(&mut self, v: f64) -> Result<(), ProtocolError> {
        self.buf.put_u64(v.to_bits());
        Ok(())
    }

    #[inline]
    fn write_string(&mut self, v: &str) -> Result<(), ProtocolError> {
        self.write_binary(v.as_bytes())
    }

    #[inline]
    fn write_binary(&mut self, v: &[u8]) -> Result<(), ProtocolError> {
        self.buf.put_i32(write_len("string", v.len())?);
        self.buf.put_slice(v);
        Ok(())
    }

    #[inline]
    fn write_uuid(&mut self, v: &[u8; 16]) -> Result<(), ProtocolError> {
        self.buf.put_slice(v);
        Ok(())
    }

    #[inline]
    fn write_list_begin(&mut self, elem: TType, len: usize) -> Result<(), ProtocolError> {
        let len = write_len("list", len)?;
        self.buf.put_u8(elem.as_u8());
        self.buf.put_i32(len);
        Ok(())
    }

    #[inline]
    fn write_list_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn write_set_begin(&mut self, elem: TType, len: usize) -> Result<(), ProtocolError> {
        let len = write_len("set", len)?;
        self.buf.put_u8(elem.as_u8());
        self.buf.put_i32(len);
        Ok(())
    }

    #[inline]
    fn write_set_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn write_map_begin(&mut self, key: TType, value: TType, len: usize) -> Result<(), ProtocolError> {
        let len = write_len("map", len)?;
        self.buf.put_slice(&[key.as_u8(), value.as_u8()]);
        self.buf.put_i32(len);
        Ok(())
    }

    #[inline]
    fn write_map_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }
}
