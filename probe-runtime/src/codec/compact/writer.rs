//! The compact protocol writer.

use bytes::{BufMut, BytesMut};

use super::id_stack::IdStack;
use super::{PROTOCOL_ID, TYPE_SHIFT, VERSION, ct, to_compact, zigzag32, zigzag64};
use crate::codec::error::ProtocolError;
use crate::codec::limits::write_len;
use crate::codec::traits::ProtocolWriter;
use crate::codec::types::{MessageHeader, TType};

/// Writes the compact protocol straight into a borrowed `BytesMut`.
///
/// ```
/// use bytes::BytesMut;
/// use probe_runtime::codec::{CompactWriter, ProtocolWriter};
///
/// let mut buf = BytesMut::new();
/// CompactWriter::new(&mut buf).write_i32(-2)?;
/// assert_eq!(&buf[..], &[3]); // zigzag
/// # Ok::<(), probe_runtime::codec::ProtocolError>(())
/// ```
#[derive(Debug)]
pub struct CompactWriter<'a> {
    buf: &'a mut BytesMut,
    last_field_id: i16,
    outer_ids: IdStack,
    /// The id of a `bool` field whose header waits for its value.
    pending_bool_field: Option<i16>,
}

impl<'a> CompactWriter<'a> {
    /// A writer appending to `buf`.
    #[inline]
    pub fn new(buf: &'a mut BytesMut) -> Self {
        CompactWriter { buf, last_field_id: 0, outer_ids: IdStack::default(), pending_bool_field: None }
    }

    /// The buffer written so far.
    #[inline]
    pub fn buffer(&mut self) -> &mut BytesMut {
        self.buf
    }

    #[inline]
    fn put_varint(&mut self, mut v: u64) {
        if v < 0x80 {
            self.buf.put_u8(v as u8);
            return;
        }
        let mut tmp = [0u8; 10];
        let mut n = 0;
        for slot in tmp.iter_mut() {
            n += 1;
            if v < 0x80 {
                *slot = v as u8;
                break;
            }
            *slot = (v as u8) | 0x80;
            v >>= 7;
        }
        self.buf.put_slice(&tmp[..n]);
    }

    #[inline]
    fn put_field_header(&mut self, ctype: u8, id: i16) {
        let delta = i32::from(id) - i32::from(self.last_field_id);
        if (1..=15).contains(&delta) {
            self.buf.put_u8(((delta as u8) << 4) | ctype);
        } else {
            self.buf.put_u8(ctype);
            self.put_varint(u64::from(zigzag32(i32::from(id))));
        }
        self.last_field_id = id;
    }

    #[inline]
    fn put_list_header(&mut self, what: &'static str, elem: TType, len: usize) -> Result<(), ProtocolError> {
        let len = write_len(what, len)?;
        let ctype = to_compact(elem);
        if len <= 14 {
            self.buf.put_u8(((len as u8) << 4) | ctype);
        } else {
            self.buf.put_u8(0xf0 | ctype);
            self.put_varint(len as u64);
        }
        Ok(())
    }
}

impl ProtocolWriter for CompactWriter<'_> {
    #[inline]
    fn write_message_begin(&mut self, header: &MessageHeader) -> Result<(), ProtocolError> {
        let name_len = write_len("string", header.name.len())?;
        self.last_field_id = 0;
        self.outer_ids.clear();
        self.pending_bool_field = None;
        self.buf.put_slice(&[PROTOCOL_ID, VERSION | (header.kind.as_u8() << TYPE_SHIFT)]);
        // The seqid is a plain (not zigzag) varint of its 32 bits.
        self.put_varint(u64::from(header.seqid as u32));
        self.put_varint(name_len as u64);
        self.buf.put_slice(header.name.as_bytes());
        Ok(())
    }

    #[inline]
    fn write_message_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn write_struct_begin(&mut self, _name: &'static str) -> Result<(), ProtocolError> {
        self.outer_ids.push(self.last_field_id);
        self.last_field_id = 0;
        Ok(())
    }

    #[inline]
    fn write_struct_end(&mut self) -> Result<(), ProtocolError> {
        self.last_field_id = self.outer_ids.pop();
        Ok(())
    }

    #[inline]
    fn write_field_begin(&mut self, ttype: TType, id: i16) -> Result<(), ProtocolError> {
        if ttype == TType::Bool {
            // The header carries the value: wait for write_bool.
            self.pending_bool_field = Some(id);
        } else {
            self.put_field_header(to_compact(ttype), id);
        }
        Ok(())
    }

    #[inline]
    fn write_field_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn write_field_stop(&mut self) -> Result<(), ProtocolError> {
        self.buf.put_u8(ct::STOP);
        Ok(())
    }

    #[inline]
    fn write_bool(&mut self, v: bool) -> Result<(), ProtocolError> {
        let ctype = if v { ct::BOOL_TRUE } else { ct::BOOL_FALSE };
        match self.pending_bool_field.take() {
            Some(id) => self.put_field_header(ctype, id),
            None => self.buf.put_u8(ctype),
        }
        Ok(())
    }

    #[inline]
    fn write_i8(&mut self, v: i8) -> Result<(), ProtocolError> {
        self.buf.put_i8(v);
        Ok(())
    }

    #[inline]
    fn write_i16(&mut self, v: i16) -> Result<(), ProtocolError> {
        self.put_varint(u64::from(zigzag32(i32::from(v))));
        Ok(())
    }

    #[inline]
    fn write_i32(&mut self, v: i32) -> Result<(), ProtocolError> {
        self.put_varint(u64::from(zigzag32(v)));
        Ok(())
    }

    #[inline]
    fn write_i64(&mut self, v: i64) -> Result<(), ProtocolError> {
        self.put_varint(zigzag64(v));
        Ok(())
    }

    #[inline]
    fn write_double(&mut self, v: f64) -> Result<(), ProtocolError> {
        self.buf.put_u64_le(v.to_bits());
        Ok(())
    }

    #[inline]
    fn write_string(&mut self, v: &str) -> Result<(), ProtocolError> {
        self.write_binary(v.as_bytes())
    }

    #[inline]
    fn write_binary(&mut self, v: &[u8]) -> Result<(), ProtocolError> {
        let len = write_len("string", v.len())?;
        self.put_varint(len as u64);
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
        self.put_list_header("list", elem, len)
    }

    #[inline]
    fn write_list_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn write_set_begin(&mut self, elem: TType, len: usize) -> Result<(), ProtocolError> {
        self.put_list_header("set", elem, len)
    }

    #[inline]
    fn write_set_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn write_map_begin(&mut self, key: TType, value: TType, len: usize) -> Result<(), ProtocolError> {
        let len = write_len("map", len)?;
        if len == 0 {
            self.buf.put_u8(0);
        } else {
            self.put_varint(len as u64);
            self.buf.put_u8((to_compact(key) << 4) | to_compact(value));
        }
        Ok(())
    }

    #[inline]
    fn write_map_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }
}
