//! What can go wrong while encoding or decoding.

/// An encoding or decoding failure.
///
/// Every error except [`ProtocolError::Incomplete`] means the input is malformed, hostile or
/// beyond the configured [`Limits`](super::Limits): the connection that sent it should get a
/// `TApplicationException` of kind `ProtocolError` (where it still can) and be closed.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The input ended early: at least `needed` more bytes are required.
    ///
    /// On an unframed stream the caller reads more bytes and decodes the message again from its
    /// start. Inside a complete frame it means the frame is truncated.
    #[error("input ended early: at least {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes at least the reader needed.
        needed: usize,
    },
    /// The bytes do not form valid Thrift.
    #[error("invalid Thrift data: {0}")]
    InvalidData(String),
    /// Structs and containers are nested deeper than [`Limits::max_depth`](super::Limits).
    #[error("nesting deeper than the limit of {limit} levels")]
    DepthLimit {
        /// The configured limit.
        limit: usize,
    },
    /// A length is larger than its configured limit.
    #[error("{what} of length {len} is over the limit of {limit}")]
    SizeLimit {
        /// What was too large: "string", "list", "map", ...
        what: &'static str,
        /// The length found on the wire (or being written).
        len: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// A message header with an unknown protocol id or version.
    #[error("bad protocol version or id {found:#010x}: the peer speaks another protocol")]
    BadVersion {
        /// The version word (binary) or id and version bytes (compact) that were found.
        found: u32,
    },
    /// A type number that is not a Thrift type (or not valid where it was found).
    #[error("unknown Thrift type {0}")]
    UnknownType(u8),
    /// A message type number that is not call, reply, exception or oneway.
    #[error("unknown message type {0}")]
    InvalidMessageType(u8),
    /// A `string` that is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A negative string or container length.
    #[error("negative {what} length {len}")]
    NegativeSize {
        /// What had the negative length.
        what: &'static str,
        /// The length found on the wire.
        len: i64,
    },
    /// A required field was absent from a struct.
    #[error("required field `{field}` of `{strukt}` is missing")]
    MissingRequiredField {
        /// The struct's IDL name.
        strukt: &'static str,
        /// The field's IDL name.
        field: &'static str,
    },
    /// A union arrived with none of its fields set.
    #[error("union `{union}` has no field set")]
    EmptyUnion {
        /// The union's IDL name.
        union: &'static str,
    },
    /// A container's element, key or value type on the wire is not the one the IDL declares.
    #[error("{what} has wire type {found:?} where the IDL declares {expected:?}")]
    WrongElementType {
        /// "list or set element", "map key" or "map value".
        what: &'static str,
        /// The type on the wire.
        found: super::TType,
        /// The type the IDL declares.
        expected: super::TType,
    },
}

crate::debug_as_display!(ProtocolError);

impl ProtocolError {
    /// A [`ProtocolError::InvalidData`] with this message.
    #[cold]
    pub fn invalid_data(msg: impl Into<String>) -> Self {
        ProtocolError::InvalidData(msg.into())
    }

    /// Whether more input could fix this error (only [`ProtocolError::Incomplete`]).
    #[inline]
    pub fn is_incomplete(&self) -> bool {
        matches!(self, ProtocolError::Incomplete { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_failed() {
        let e = ProtocolError::SizeLimit { what: "string", len: 10, limit: 5 };
        assert_eq!(e.to_string(), "string of length 10 is over the limit of 5");
        let e = ProtocolError::BadVersion { found: 0x8002_0001 };
        assert!(e.to_string().contains("0x80020001"));
        let e = ProtocolError::MissingRequiredField { strukt: "User", field: "id" };
        assert_eq!(e.to_string(), "required field `id` of `User` is missing");
        assert!(ProtocolError::Incomplete { needed: 1 }.is_incomplete());
        assert!(!ProtocolError::InvalidUtf8.is_incomplete());
    }
}
