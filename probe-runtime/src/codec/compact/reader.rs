//! The compact protocol reader.

use bytes::Bytes;

use super::id_stack::IdStack;
use super::{
    PROTOCOL_ID, TYPE_SHIFT, VERSION, VERSION_MASK, ct, from_compact, min_size, unzigzag32, unzigzag64,
};
use crate::codec::error::ProtocolError;
use crate::codec::input::Input;
use crate::codec::limits::{Depth, Limits, check_len};
use crate::codec::traits::ProtocolReader;
use crate::codec::types::{FieldHeader, ListHeader, MapHeader, MessageHeader, MessageType, TType};

/// Reads the compact protocol from a `Bytes` holding a message (or the start of one).
///
/// `binary` values are zero-copy slices of the input. Lengths and nesting are bounded by the
/// reader's [`Limits`].
///
/// ```
/// use bytes::Bytes;
/// use probe_runtime::codec::{CompactReader, ProtocolReader};
///
/// let mut r = CompactReader::new(Bytes::from_static(&[3]));
/// assert_eq!(r.read_i32()?, -2);
/// # Ok::<(), probe_runtime::codec::ProtocolError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CompactReader {
    input: Input,
    depth: Depth,
    limits: Limits,
    last_field_id: i16,
    outer_ids: IdStack,
    /// The value of a `bool` field, read with its header.
    pending_bool: Option<bool>,
}

impl CompactReader {
    /// A reader over `buf` with the default [`Limits`].
    #[inline]
    pub fn new(buf: Bytes) -> Self {
        CompactReader::with_limits(buf, Limits::DEFAULT)
    }

    /// A reader over `buf` with the given limits.
    #[inline]
    pub fn with_limits(buf: Bytes, limits: Limits) -> Self {
        CompactReader {
            input: Input::new(buf),
            depth: Depth::new(limits.max_depth),
            limits,
            last_field_id: 0,
            outer_ids: IdStack::default(),
            pending_bool: None,
        }
    }

    /// Bytes consumed so far: after a whole message, its length on an unframed stream.
    #[inline]
    pub fn position(&self) -> usize {
        self.input.position()
    }

    /// Bytes not yet consumed.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.input.remaining()
    }

    /// The limits this reader enforces.
    #[inline]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The whole input, consumed or not.
    pub fn into_inner(self) -> Bytes {
        self.input.into_inner()
    }

    #[inline]
    fn varint32(&mut self) -> Result<u32, ProtocolError> {
        let v = self.input.varint(5)?;
        u32::try_from(v).map_err(|_| ProtocolError::invalid_data("varint overflows 32 bits"))
    }

    #[inline]
    fn read_len(
        &mut self,
        what: &'static str,
        limit: usize,
        min_elem: usize,
    ) -> Result<usize, ProtocolError> {
        let len = self.varint32()?;
        check_len(what, i64::from(len), limit, min_elem, self.input.remaining())
    }

    #[inline]
    fn list_header(&mut self, what: &'static str) -> Result<ListHeader, ProtocolError> {
        let b = self.input.u8()?;
        let elem = from_compact(b & 0x0f)?;
        let len = match b >> 4 {
            15 => self.varint32()?,
            short => u32::from(short),
        };
        let len =
            check_len(what, i64::from(len), self.limits.max_container_len, min_size(elem), self.remaining())?;
        if elem == TType::Stop && len > 0 {
            return Err(ProtocolError::invalid_data(format!("{what} of Stop elements")));
        }
        self.depth.enter()?;
        self.pending_bool = None;
        Ok(ListHeader { elem, len })
    }
}

impl ProtocolReader for CompactReader {
    fn read_message_begin(&mut self) -> Result<MessageHeader, ProtocolError> {
        let [id, version_and_type] = self.input.array()?;
        if id != PROTOCOL_ID || version_and_type & VERSION_MASK != VERSION {
            return Err(ProtocolError::BadVersion {
                found: u32::from_be_bytes([0, 0, id, version_and_type]),
            });
        }
        let kind = MessageType::try_from(version_and_type >> TYPE_SHIFT)?;
        // The seqid is a plain (not zigzag) varint of its 32 bits.
        let seqid = self.varint32()? as i32;
        let len = self.read_len("method name", self.limits.method_name_limit(), 1)?;
        let name = self.input.string(len)?;
        self.last_field_id = 0;
        self.outer_ids.clear();
        self.pending_bool = None;
        Ok(MessageHeader { name: name.into(), kind, seqid })
    }

    #[inline]
    fn read_message_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn read_struct_begin(&mut self) -> Result<(), ProtocolError> {
        self.depth.enter()?;
        self.outer_ids.push(self.last_field_id);
        self.last_field_id = 0;
        Ok(())
    }

    #[inline]
    fn read_struct_end(&mut self) -> Result<(), ProtocolError> {
        self.depth.leave();
        self.last_field_id = self.outer_ids.pop();
        Ok(())
    }

    #[inline]
    fn read_field_begin(&mut self) -> Result<FieldHeader, ProtocolError> {
        let b = self.input.u8()?;
        if b == ct::STOP {
            return Ok(FieldHeader::STOP);
        }
        let ctype = b & 0x0f;
        let ttype = from_compact(ctype)?;
        let id = match b >> 4 {
            0 => self.read_i16()?,
            delta => self
                .last_field_id
                .checked_add(i16::from(delta))
                .ok_or_else(|| ProtocolError::invalid_data("field id delta overflows i16"))?,
        };
        self.last_field_id = id;
        self.pending_bool = if ttype == TType::Bool { Some(ctype == ct::BOOL_TRUE) } else { None };
        Ok(FieldHeader { ttype, id })
    }

    #[inline]
    fn read_field_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn read_bool(&mut self) -> Result<bool, ProtocolError> {
        if let Some(v) = self.pending_bool.take() {
            return Ok(v);
        }
        // In containers: 1 is true; 2 (and 0, from older writers) is false.
        match self.input.u8()? {
            ct::BOOL_TRUE => Ok(true),
            ct::BOOL_FALSE | 0 => Ok(false),
            other => Err(ProtocolError::invalid_data(format!("bool byte {other}"))),
        }
    }

    #[inline]
    fn read_i8(&mut self) -> Result<i8, ProtocolError> {
        Ok(self.input.u8()? as i8)
    }

    #[inline]
    fn read_i16(&mut self) -> Result<i16, ProtocolError> {
        let v = unzigzag32(self.varint32()?);
        i16::try_from(v).map_err(|_| ProtocolError::invalid_data("varint overflows i16"))
    }

    #[inline]
    fn read_i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(unzigzag32(self.varint32()?))
    }

    #[inline]
    fn read_i64(&mut self) -> Result<i64, ProtocolError> {
        Ok(unzigzag64(self.input.varint(10)?))
    }

    #[inline]
    fn read_double(&mut self) -> Result<f64, ProtocolError> {
        Ok(f64::from_bits(u64::from_le_bytes(self.input.array()?)))
    }

    #[inline]
    fn read_string(&mut self) -> Result<String, ProtocolError> {
        let len = self.read_len("string", self.limits.max_string_len, 1)?;
        self.input.string(len)
    }

    #[inline]
    fn read_binary(&mut self) -> Result<Bytes, ProtocolError> {
        let len = self.read_len("string", self.limits.max_string_len, 1)?;
        self.input.bytes(len)
    }

    #[inline]
    fn read_uuid(&mut self) -> Result<[u8; 16], ProtocolError> {
        self.input.array()
    }

    #[inline]
    fn read_list_begin(&mut self) -> Result<ListHeader, ProtocolError> {
        self.list_header("list")
    }

    #[inline]
    fn read_list_end(&mut self) -> Result<(), ProtocolError> {
        self.depth.leave();
        Ok(())
    }

    #[inline]
    fn read_set_begin(&mut self) -> Result<ListHeader, ProtocolError> {
        self.list_header("set")
    }

    #[inline]
    fn read_set_end(&mut self) -> Result<(), ProtocolError> {
        self.depth.leave();
        Ok(())
    }

    #[inline]
    fn read_map_begin(&mut self) -> Result<MapHeader, ProtocolError> {
        let len = self.varint32()?;
        let header = if len == 0 {
            MapHeader { key: TType::Stop, value: TType::Stop, len: 0 }
        } else {
            let kv = self.input.u8()?;
            let key = from_compact(kv >> 4)?;
            let value = from_compact(kv & 0x0f)?;
            let min = min_size(key) + min_size(value);
            let limit = self.limits.max_container_len;
            let len = check_len("map", i64::from(len), limit, min, self.remaining())?;
            if key == TType::Stop || value == TType::Stop {
                return Err(ProtocolError::invalid_data("map of Stop keys or values"));
            }
            MapHeader { key, value, len }
        };
        self.depth.enter()?;
        self.pending_bool = None;
        Ok(header)
    }

    #[inline]
    fn read_map_end(&mut self) -> Result<(), ProtocolError> {
        self.depth.leave();
        Ok(())
    }

    #[inline]
    fn skip_binary(&mut self) -> Result<(), ProtocolError> {
        let len = self.read_len("string", self.limits.max_string_len, 1)?;
        self.input.advance(len)
    }
}
