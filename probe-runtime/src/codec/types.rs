//! The protocol-independent vocabulary: Thrift types, message kinds and the headers readers return.

use std::borrow::Cow;
use std::fmt;

use super::error::ProtocolError;

/// A Thrift wire type, as the binary protocol numbers it.
///
/// The compact protocol uses its own numbers on the wire; its reader and writer translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TType {
    /// End of a struct's fields.
    Stop = 0,
    /// `bool`.
    Bool = 2,
    /// `byte` / `i8`.
    I8 = 3,
    /// `double` (IEEE 754 binary64).
    Double = 4,
    /// `i16`.
    I16 = 6,
    /// `i32`, also every IDL `enum`.
    I32 = 8,
    /// `i64`.
    I64 = 10,
    /// `string` and `binary`: a length-prefixed byte string.
    String = 11,
    /// A struct, union or exception.
    Struct = 12,
    /// `map<K, V>`.
    Map = 13,
    /// `set<T>`.
    Set = 14,
    /// `list<T>`.
    List = 15,
    /// `uuid`: 16 raw bytes.
    Uuid = 16,
}

impl TType {
    /// The binary-protocol number of this type.
    #[inline]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for TType {
    type Error = ProtocolError;

    #[inline]
    fn try_from(v: u8) -> Result<Self, ProtocolError> {
        Ok(match v {
            0 => TType::Stop,
            2 => TType::Bool,
            3 => TType::I8,
            4 => TType::Double,
            6 => TType::I16,
            8 => TType::I32,
            10 => TType::I64,
            11 => TType::String,
            12 => TType::Struct,
            13 => TType::Map,
            14 => TType::Set,
            15 => TType::List,
            16 => TType::Uuid,
            other => return Err(ProtocolError::UnknownType(other)),
        })
    }
}

impl fmt::Display for TType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The kind of an RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// A request that expects a reply.
    Call = 1,
    /// A normal reply: a result struct.
    Reply = 2,
    /// A `TApplicationException` in place of a reply.
    Exception = 3,
    /// A request that expects no reply.
    Oneway = 4,
}

impl MessageType {
    /// The wire number of this kind.
    #[inline]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for MessageType {
    type Error = ProtocolError;

    #[inline]
    fn try_from(v: u8) -> Result<Self, ProtocolError> {
        Ok(match v {
            1 => MessageType::Call,
            2 => MessageType::Reply,
            3 => MessageType::Exception,
            4 => MessageType::Oneway,
            other => return Err(ProtocolError::InvalidMessageType(other)),
        })
    }
}

/// The header every RPC message starts with.
///
/// `name` is a [`Cow`] so a client writes `MessageHeader::new("say", ..)` without allocating; a
/// reader returns an owned name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    /// The method name.
    pub name: Cow<'static, str>,
    /// Call, reply, exception or oneway.
    pub kind: MessageType,
    /// The sequence id that matches a reply to its call.
    pub seqid: i32,
}

impl MessageHeader {
    /// A header for method `name`.
    #[inline]
    pub fn new(name: impl Into<Cow<'static, str>>, kind: MessageType, seqid: i32) -> Self {
        MessageHeader { name: name.into(), kind, seqid }
    }
}

/// A field header inside a struct. [`TType::Stop`] marks the end of the struct (its `id` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldHeader {
    /// The field's wire type.
    pub ttype: TType,
    /// The field id from the IDL.
    pub id: i16,
}

impl FieldHeader {
    /// The header a reader returns at the end of a struct.
    pub const STOP: FieldHeader = FieldHeader { ttype: TType::Stop, id: 0 };
}

/// The header of a list or a set.
///
/// `len` has been checked against the reader's [`Limits`](super::Limits) and against the bytes
/// left in the input, so a container of `len` elements fits in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHeader {
    /// The element type.
    pub elem: TType,
    /// The number of elements.
    pub len: usize,
}

impl ListHeader {
    /// A capacity to pre-allocate for the decoded collection: `len`, capped so that a small
    /// input cannot make a large allocation of big elements (each element may be as small as one
    /// byte on the wire). Collections that need more grow as they decode.
    #[inline]
    pub fn capacity_hint(&self) -> usize {
        self.len.min(MAX_PREALLOC)
    }
}

/// The header of a map.
///
/// `len` is checked as for [`ListHeader`]. For an empty map `key` and `value` are whatever the
/// peer sent (the compact protocol sends none; its reader reports [`TType::Stop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapHeader {
    /// The key type.
    pub key: TType,
    /// The value type.
    pub value: TType,
    /// The number of entries.
    pub len: usize,
}

impl MapHeader {
    /// A capacity to pre-allocate for the decoded map; see [`ListHeader::capacity_hint`].
    #[inline]
    pub fn capacity_hint(&self) -> usize {
        self.len.min(MAX_PREALLOC)
    }
}

/// The most elements `capacity_hint` will suggest pre-allocating.
const MAX_PREALLOC: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttype_round_trips_and_rejects_unknown() {
        for v in 0..=u8::MAX {
            match TType::try_from(v) {
                Ok(t) => assert_eq!(t.as_u8(), v),
                Err(e) => assert!(matches!(e, ProtocolError::UnknownType(x) if x == v)),
            }
        }
        assert!(TType::try_from(1).is_err());
        assert!(TType::try_from(17).is_err());
    }

    #[test]
    fn message_type_round_trips() {
        for v in 1..=4u8 {
            assert_eq!(MessageType::try_from(v).map(MessageType::as_u8).ok(), Some(v));
        }
        assert!(MessageType::try_from(0).is_err());
        assert!(MessageType::try_from(5).is_err());
    }

    #[test]
    fn capacity_hint_is_capped() {
        assert_eq!(ListHeader { elem: TType::I8, len: 3 }.capacity_hint(), 3);
        assert_eq!(ListHeader { elem: TType::I8, len: usize::MAX }.capacity_hint(), MAX_PREALLOC);
    }
}
