//! The Thrift compact protocol.
//!
//! Integers are zigzag varints, a field header packs the id's delta from the previous field with
//! the type into one byte (a `bool` field's value is folded into that type), short lists put their
//! length in the header byte, an empty map is one zero byte, and a `double` is 8 bytes
//! little-endian, as every implementation sends it.

mod id_stack;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use reader::CompactReader;
pub use writer::CompactWriter;

use super::error::ProtocolError;
use super::types::TType;

/// The first byte of every compact message.
pub(super) const PROTOCOL_ID: u8 = 0x82;
/// The protocol version in the low five bits of the second byte.
pub(super) const VERSION: u8 = 1;
/// The bits of the second byte that hold the version.
pub(super) const VERSION_MASK: u8 = 0x1f;
/// Where the message type sits in the second byte.
pub(super) const TYPE_SHIFT: u8 = 5;

/// Compact type codes; `BOOL_TRUE` also stands for `bool` in container headers.
pub(super) mod ct {
    pub(in crate::codec) const STOP: u8 = 0;
    pub(in crate::codec) const BOOL_TRUE: u8 = 1;
    pub(in crate::codec) const BOOL_FALSE: u8 = 2;
    pub(in crate::codec) const I8: u8 = 3;
    pub(in crate::codec) const I16: u8 = 4;
    pub(in crate::codec) const I32: u8 = 5;
    pub(in crate::codec) const I64: u8 = 6;
    pub(in crate::codec) const DOUBLE: u8 = 7;
    pub(in crate::codec) const BINARY: u8 = 8;
    pub(in crate::codec) const LIST: u8 = 9;
    pub(in crate::codec) const SET: u8 = 10;
    pub(in crate::codec) const MAP: u8 = 11;
    pub(in crate::codec) const STRUCT: u8 = 12;
    pub(in crate::codec) const UUID: u8 = 13;
}

/// The compact code of `t`.
#[inline]
const fn to_compact(t: TType) -> u8 {
    match t {
        TType::Stop => ct::STOP,
        TType::Bool => ct::BOOL_TRUE,
        TType::I8 => ct::I8,
        TType::I16 => ct::I16,
        TType::I32 => ct::I32,
        TType::I64 => ct::I64,
        TType::Double => ct::DOUBLE,
        TType::String => ct::BINARY,
        TType::List => ct::LIST,
        TType::Set => ct::SET,
        TType::Map => ct::MAP,
        TType::Struct => ct::STRUCT,
        TType::Uuid => ct::UUID,
    }
}

/// The type of compact code `c` (a nibble).
#[inline]
pub(super) fn from_compact(c: u8) -> Result<TType, ProtocolError> {
    Ok(match c {
        ct::STOP => TType::Stop,
        ct::BOOL_TRUE | ct::BOOL_FALSE => TType::Bool,
        ct::I8 => TType::I8,
        ct::I16 => TType::I16,
        ct::I32 => TType::I32,
        ct::I64 => TType::I64,
        ct::DOUBLE => TType::Double,
        ct::BINARY => TType::String,
        ct::LIST => TType::List,
        ct::SET => TType::Set,
        ct::MAP => TType::Map,
        ct::STRUCT => TType::Struct,
        ct::UUID => TType::Uuid,
        other => return Err(ProtocolError::UnknownType(other)),
    })
}

/// The fewest bytes a value of type `t` takes in the compact protocol.
#[inline]
pub(super) const fn min_size(t: TType) -> usize {
    match t {
        TType::Double => 8,
        TType::Uuid => 16,
        _ => 1,
    }
}

#[inline]
const fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline]
const fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(super) const fn unzigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

#[inline]
const fn unzigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
