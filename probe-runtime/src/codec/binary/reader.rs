//! The binary protocol reader.

use bytes::Bytes;

use super::{VERSION_1, VERSION_MASK, min_size};
use crate::codec::error::ProtocolError;
use crate::codec::input::Input;
use crate::codec::limits::{Depth, Limits, check_len};
use crate::codec::traits::ProtocolReader;
use crate::codec::types::{FieldHeader, ListHeader, MapHeader, MessageHeader, MessageType, TType};

/// Reads the binary protocol from a `Bytes` holding a message (or the start of one).
///
/// `binary` values are zero-copy slices of the input. Lengths and nesting are bounded by the
/// reader's [`Limits`].
///
/// ```
/// use bytes::Bytes;
/// use probe_runtime::codec::{BinaryReader, ProtocolReader};
///
/// let mut r = BinaryReader::new(Bytes::from_static(&[0, 0, 0, 7]));
/// assert_eq!(r.read_i32()?, 7);
/// # Ok::<(), probe_runtime::codec::ProtocolError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BinaryReader {
    input: Input,
    depth: Depth,
    limits: Limits,
}

impl BinaryReader {
    /// A reader over `buf` with the default [`Limits`].
    #[inline]
    pub fn new(buf: Bytes) -> Self {
        BinaryReader::with_limits(buf, Limits::DEFAULT)
    }

    /// A reader over `buf` with the given limits.
    #[inline]
    pub fn with_limits(buf: Bytes, limits: Limits) -> Self {
        BinaryReader { input: Input::new(buf), depth: Depth::new(limits.max_depth), limits }
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
    fn read_len(
        &mut self,
        what: &'static str,
        limit: usize,
        min_elem: usize,
    ) -> Result<usize, ProtocolError> {
        let len = i32::from_be_bytes(self.input.array()?);
        check_len(what, i64::from(len), limit, min_elem, self.input.remaining())
    }

    #[inline]
    fn list_header(&mut self, what: &'static str) -> Result<ListHeader, ProtocolError> {
        let [e, a, b, c, d] = self.input.array()?;
        let elem = TType::try_from(e)?;
        let len = i32::from_be_bytes([a, b, c, d]);
        let len =
            check_len(what, i64::from(len), self.limits.max_container_len, min_size(elem), self.remaining())?;
        if elem == TType::Stop && len > 0 {
            return Err(ProtocolError::invalid_data(format!("{what} of Stop elements")));
        }
        self.depth.enter()?;
        Ok(ListHeader { elem, len })
    }
}

impl ProtocolReader for BinaryReader {
    fn read_message_begin(&mut self) -> Result<MessageHeader, ProtocolError> {
        let word = i32::from_be_bytes(self.input.array()?);
        if word < 0 {
            // Strict: version | type, name, seqid.
            let word = word as u32;
            if word & VERSION_MASK != VERSION_1 {
                return Err(ProtocolError::BadVersion { found: word });
            }
            let kind = MessageType::try_from((word & 0xff) as u8)?;
            let len = self.read_len("method name", self.limits.method_name_limit(), 1)?;
            let name = self.input.string(len)?;
            let seqid = self.read_i32()?;
            Ok(MessageHeader { name: name.into(), kind, seqid })
        } else {
            // Old non-strict: the first word is the name's length; name, type byte, seqid.
            let limit = self.limits.method_name_limit();
            let len = check_len("method name", i64::from(word), limit, 1, self.remaining())?;
            let name = self.input.string(len)?;
            let kind = MessageType::try_from(self.input.u8()?)?;
            let seqid = self.read_i32()?;
            Ok(MessageHeader { name: name.into(), kind, seqid })
        }
    }

    #[inline]
    fn read_message_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn read_struct_begin(&mut self) -> Result<(), ProtocolError> {
        self.depth.enter()
    }

    #[inline]
    fn read_struct_end(&mut self) -> Result<(), ProtocolError> {
        self.depth.leave();
        Ok(())
    }

    #[inline]
    fn read_field_begin(&mut self) -> Result<FieldHeader, ProtocolError> {
        let t = self.input.u8()?;
        if t == TType::Stop.as_u8() {
            return Ok(FieldHeader::STOP);
        }
        let ttype = TType::try_from(t)?;
        let id = i16::from_be_bytes(self.input.array()?);
        Ok(FieldHeader { ttype, id })
    }

    #[inline]
    fn read_field_end(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }

    #[inline]
    fn read_bool(&mut self) -> Result<bool, ProtocolError> {
        Ok(self.input.u8()? != 0)
    }

    #[inline]
    fn read_i8(&mut self) -> Result<i8, ProtocolError> {
        Ok(self.input.u8()? as i8)
    }

    #[inline]
    fn read_i16(&mut self) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(self.input.array()?))
    }

    #[inline]
    fn read_i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.input.array()?))
    }

    #[inline]
    fn read_i64(&mut self) -> Result<i64, ProtocolError> {
        Ok(i64::from_be_bytes(self.input.array()?))
    }

    #[inline]
    fn read_double(&mut self) -> Result<f64, ProtocolError> {
        Ok(f64::from_bits(u64::from_be_bytes(self.input.array()?)))
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
        let [k, v, a, b, c, d] = self.input.array()?;
        let key = TType::try_from(k)?;
        let value = TType::try_from(v)?;
        let len = i32::from_be_bytes([a, b, c, d]);
        let min = min_size(key) + min_size(value);
        let len = check_len("map", i64::from(len), self.limits.max_container_len, min, self.remaining())?;
        if (key == TType::Stop || value == TType::Stop) && len > 0 {
            return Err(ProtocolError::invalid_data("map of Stop keys or values"));
        }
        self.depth.enter()?;
        Ok(MapHeader { key, value, len })
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
