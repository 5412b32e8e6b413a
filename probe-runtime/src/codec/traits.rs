//! The protocol traits generated code is written against.
//!
//! Generated `Encode` impls call a [`ProtocolWriter`] and generated `Decode` impls a
//! [`ProtocolReader`]; both are generic, so a call site is monomorphised per protocol and the small
//! methods inline away. Every writer method returns `Result` so generated code treats them alike
//! (`w.write_i32(x)?;`); the infallible ones always return `Ok` and cost nothing once inlined.

use bytes::Bytes;

use super::error::ProtocolError;
use super::skip::skip_value;
use super::types::{FieldHeader, ListHeader, MapHeader, MessageHeader, TType};

/// Writes Thrift values in one protocol's encoding.
pub trait ProtocolWriter {
    /// Starts a message.
    fn write_message_begin(&mut self, header: &MessageHeader) -> Result<(), ProtocolError>;
    /// Ends a message.
    fn write_message_end(&mut self) -> Result<(), ProtocolError>;
    /// Starts a struct (the name is not sent by binary or compact).
    fn write_struct_begin(&mut self, name: &'static str) -> Result<(), ProtocolError>;
    /// Ends a struct. Write [`ProtocolWriter::write_field_stop`] before it.
    fn write_struct_end(&mut self) -> Result<(), ProtocolError>;
    /// Starts field `id` of type `ttype`; its value follows.
    fn write_field_begin(&mut self, ttype: TType, id: i16) -> Result<(), ProtocolError>;
    /// Ends a field.
    fn write_field_end(&mut self) -> Result<(), ProtocolError>;
    /// Marks the end of a struct's fields.
    fn write_field_stop(&mut self) -> Result<(), ProtocolError>;
    /// Writes a `bool`.
    fn write_bool(&mut self, v: bool) -> Result<(), ProtocolError>;
    /// Writes an `i8`.
    fn write_i8(&mut self, v: i8) -> Result<(), ProtocolError>;
    /// Writes an `i16`.
    fn write_i16(&mut self, v: i16) -> Result<(), ProtocolError>;
    /// Writes an `i32`.
    fn write_i32(&mut self, v: i32) -> Result<(), ProtocolError>;
    /// Writes an `i64`.
    fn write_i64(&mut self, v: i64) -> Result<(), ProtocolError>;
    /// Writes a `double`.
    fn write_double(&mut self, v: f64) -> Result<(), ProtocolError>;
    /// Writes a `string`. Fails only past `i32::MAX` bytes.
    fn write_string(&mut self, v: &str) -> Result<(), ProtocolError>;
    /// Writes a `binary`. Fails only past `i32::MAX` bytes.
    fn write_binary(&mut self, v: &[u8]) -> Result<(), ProtocolError>;
    /// Writes a `uuid` (16 bytes, in RFC 4122 byte order).
    fn write_uuid(&mut self, v: &[u8; 16]) -> Result<(), ProtocolError>;
    /// Starts a list of `len` elements of type `elem`.
    fn write_list_begin(&mut self, elem: TType, len: usize) -> Result<(), ProtocolError>;
    /// Ends a list.
    fn write_list_end(&mut self) -> Result<(), ProtocolError>;
    /// Starts a set of `len` elements of type `elem`.
    fn write_set_begin(&mut self, elem: TType, len: usize) -> Result<(), ProtocolError>;
    /// Ends a set.
    fn write_set_end(&mut self) -> Result<(), ProtocolError>;
    /// Starts a map of `len` entries.
    fn write_map_begin(&mut self, key: TType, value: TType, len: usize) -> Result<(), ProtocolError>;
    /// Ends a map.
    fn write_map_end(&mut self) -> Result<(), ProtocolError>;
}

/// Reads Thrift values in one protocol's encoding, with every length and the nesting depth
/// bounded by the reader's [`Limits`](super::Limits).
///
/// Decoding a struct goes: `read_struct_begin`, then `read_field_begin` until it returns
/// [`TType::Stop`], reading (or [`skip`](ProtocolReader::skip)ping) each value and calling
/// `read_field_end`, then `read_struct_end`. Every `*_begin` of a struct, list, set or map enters
/// one nesting level and its `*_end` leaves it, so each must be paired.
pub trait ProtocolReader {
    /// Reads a message header (binary: strict or old non-strict).
    fn read_message_begin(&mut self) -> Result<MessageHeader, ProtocolError>;
    /// Ends a message.
    fn read_message_end(&mut self) -> Result<(), ProtocolError>;
    /// Enters a struct; fails past the depth limit.
    fn read_struct_begin(&mut self) -> Result<(), ProtocolError>;
    /// Leaves a struct.
    fn read_struct_end(&mut self) -> Result<(), ProtocolError>;
    /// Reads a field header; [`TType::Stop`] at the end of the struct.
    fn read_field_begin(&mut self) -> Result<FieldHeader, ProtocolError>;
    /// Ends a field.
    fn read_field_end(&mut self) -> Result<(), ProtocolError>;
    /// Reads a `bool`.
    fn read_bool(&mut self) -> Result<bool, ProtocolError>;
    /// Reads an `i8`.
    fn read_i8(&mut self) -> Result<i8, ProtocolError>;
    /// Reads an `i16`.
    fn read_i16(&mut self) -> Result<i16, ProtocolError>;
    /// Reads an `i32`.
    fn read_i32(&mut self) -> Result<i32, ProtocolError>;
    /// Reads an `i64`.
    fn read_i64(&mut self) -> Result<i64, ProtocolError>;
    /// Reads a `double`.
    fn read_double(&mut self) -> Result<f64, ProtocolError>;
    /// Reads a `string`, checking it is UTF-8.
    fn read_string(&mut self) -> Result<String, ProtocolError>;
    /// Reads a `binary` as a zero-copy slice of the input.
    fn read_binary(&mut self) -> Result<Bytes, ProtocolError>;
    /// Reads a `uuid`.
    fn read_uuid(&mut self) -> Result<[u8; 16], ProtocolError>;
    /// Enters a list; fails past the depth limit or if the length is too large.
    fn read_list_begin(&mut self) -> Result<ListHeader, ProtocolError>;
    /// Leaves a list.
    fn read_list_end(&mut self) -> Result<(), ProtocolError>;
    /// Enters a set; fails past the depth limit or if the length is too large.
    fn read_set_begin(&mut self) -> Result<ListHeader, ProtocolError>;
    /// Leaves a set.
    fn read_set_end(&mut self) -> Result<(), ProtocolError>;
    /// Enters a map; fails past the depth limit or if the length is too large.
    fn read_map_begin(&mut self) -> Result<MapHeader, ProtocolError>;
    /// Leaves a map.
    fn read_map_end(&mut self) -> Result<(), ProtocolError>;

    /// Skips a `string` or `binary` without copying or checking it.
    fn skip_binary(&mut self) -> Result<(), ProtocolError> {
        self.read_binary().map(drop)
    }

    /// Skips one value of type `ttype`, however nested, within the depth limit. Every step
    /// consumes input, so `skip` ends on any input.
    fn skip(&mut self, ttype: TType) -> Result<(), ProtocolError> {
        skip_value(self, ttype)
    }
}

/// A value that can write itself with any protocol: implemented by generated structs.
pub trait Encode {
    /// Writes `self` to `w`.
    fn encode<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError>;
}

/// A value that can read itself with any protocol: implemented by generated structs.
pub trait Decode: Sized {
    /// Reads a value from `r`.
    fn decode<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError>;
}

impl<T: Encode + ?Sized> Encode for &T {
    #[inline]
    fn encode<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        (**self).encode(w)
    }
}

impl<T: Encode + ?Sized> Encode for Box<T> {
    #[inline]
    fn encode<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        (**self).encode(w)
    }
}

impl<T: Decode> Decode for Box<T> {
    #[inline]
    fn decode<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        T::decode(r).map(Box::new)
    }
}

impl<T: Encode + ?Sized> Encode for std::sync::Arc<T> {
    #[inline]
    fn encode<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        (**self).encode(w)
    }
}

impl<T: Decode> Decode for std::sync::Arc<T> {
    #[inline]
    fn decode<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        T::decode(r).map(std::sync::Arc::new)
    }
}
