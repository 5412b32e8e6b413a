//! `TApplicationException`: the error a server sends in place of a reply.

use std::fmt;

use super::error::ProtocolError;
use super::traits::{Decode, Encode, ProtocolReader, ProtocolWriter};
use super::types::TType;

/// Why a call failed at the RPC layer, as numbered by every Thrift implementation.
///
/// Values this crate does not know are kept in [`ApplicationExceptionKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplicationExceptionKind {
    /// 0: no more specific kind.
    Unknown,
    /// 1: the server has no such method.
    UnknownMethod,
    /// 2: the message type was not valid for the call.
    InvalidMessageType,
    /// 3: the reply names another method than the call.
    WrongMethodName,
    /// 4: the reply's seqid matches no call.
    BadSequenceId,
    /// 5: the reply has no result.
    MissingResult,
    /// 6: the handler failed.
    InternalError,
    /// 7: the arguments could not be decoded.
    ProtocolError,
    /// 8: a transform (e.g. compression) failed.
    InvalidTransform,
    /// 9: the protocol is not supported.
    InvalidProtocol,
    /// 10: the client type is not supported.
    UnsupportedClientType,
    /// 11: the server shed the call to protect itself (fbthrift's number; Apache's stacks read it
    /// as an unknown kind).
    Loadshedding,
    /// 12: the call's deadline passed before the server finished it (fbthrift's number).
    Timeout,
    /// A kind this crate does not know, kept as its number.
    Other(i32),
}

impl ApplicationExceptionKind {
    /// The kind numbered `v` on the wire.
    pub fn from_i32(v: i32) -> Self {
        use ApplicationExceptionKind::*;
        match v {
            0 => Unknown,
            1 => UnknownMethod,
            2 => InvalidMessageType,
            3 => WrongMethodName,
            4 => BadSequenceId,
            5 => MissingResult,
            6 => InternalError,
            7 => ProtocolError,
            8 => InvalidTransform,
            9 => InvalidProtocol,
            10 => UnsupportedClientType,
            11 => Loadshedding,
            12 => Timeout,
            other => Other(other),
        }
    }

    /// The wire number of this kind.
    pub fn as_i32(self) -> i32 {
        use ApplicationExceptionKind::*;
        match self {
            Unknown => 0,
            UnknownMethod => 1,
            InvalidMessageType => 2,
            WrongMethodName => 3,
            BadSequenceId => 4,
            MissingResult => 5,
            InternalError => 6,
            ProtocolError => 7,
            InvalidTransform => 8,
            InvalidProtocol => 9,
            UnsupportedClientType => 10,
            Loadshedding => 11,
            Timeout => 12,
            Other(v) => v,
        }
    }
}

impl From<i32> for ApplicationExceptionKind {
    fn from(v: i32) -> Self {
        ApplicationExceptionKind::from_i32(v)
    }
}

impl From<ApplicationExceptionKind> for i32 {
    fn from(k: ApplicationExceptionKind) -> Self {
        k.as_i32()
    }
}

/// A `TApplicationException`: struct `{1: string message, 2: i32 type}`, sent with message type
/// [`Exception`](super::MessageType::Exception).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationException {
    /// What went wrong, for humans.
    pub message: String,
    /// What went wrong, for programs.
    pub kind: ApplicationExceptionKind,
}

impl ApplicationException {
    /// An exception of `kind` saying `message`.
    pub fn new(kind: ApplicationExceptionKind, message: impl Into<String>) -> Self {
        ApplicationException { message: message.into(), kind }
    }

    /// The exception a server sends for a method it does not have; the name is shown as
    /// [`shown_method`] shows it (escaped, at most 128 bytes).
    pub fn unknown_method(name: &str) -> Self {
        let message = format!("unknown method `{}`", shown_method(name));
        ApplicationException::new(ApplicationExceptionKind::UnknownMethod, message)
    }
}

/// The most bytes of a peer's method name shown in errors and logs.
const SHOWN_NAME: usize = 128;

/// A method name a peer sent, for errors and logs: control and other non-printing characters
/// escaped, cut to its first 128 bytes with `...` after a longer one.
pub fn shown_method(name: &str) -> String {
    let mut end = name.len().min(SHOWN_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let head = name.get(..end).unwrap_or_default();
    let mut shown: String = head.escape_debug().collect();
    if end < name.len() {
        shown.push_str(&format!("... ({} bytes)", name.len()));
    }
    shown
}

impl fmt::Display for ApplicationException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "application exception ({:?}): {}", self.kind, self.message)
    }
}

impl std::error::Error for ApplicationException {}

impl Encode for ApplicationException {
    fn encode<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        w.write_struct_begin("TApplicationException")?;
        w.write_field_begin(TType::String, 1)?;
        w.write_string(&self.message)?;
        w.write_field_end()?;
        w.write_field_begin(TType::I32, 2)?;
        w.write_i32(self.kind.as_i32())?;
        w.write_field_end()?;
        w.write_field_stop()?;
        w.write_struct_end()
    }
}

impl Decode for ApplicationException {
    /// Reads the struct; absent fields default to an empty message and kind `Unknown`, as in
    /// other Thrift implementations, and unknown fields are skipped.
    fn decode<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        let mut message = String::new();
        let mut kind = ApplicationExceptionKind::Unknown;
        r.read_struct_begin()?;
        loop {
            let field = r.read_field_begin()?;
            match (field.id, field.ttype) {
                (_, TType::Stop) => break,
                (1, TType::String) => message = r.read_string()?,
                (2, TType::I32) => kind = ApplicationExceptionKind::from_i32(r.read_i32()?),
                (_, other) => r.skip(other)?,
            }
            r.read_field_end()?;
        }
        r.read_struct_end()?;
        Ok(ApplicationException { message, kind })
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::codec::{BinaryReader, BinaryWriter, CompactReader, CompactWriter};

    #[test]
    fn names_are_shown_escaped_and_cut() {
        assert_eq!(shown_method("say"), "say");
        assert_eq!(shown_method("a\u{202e}\n"), "a\\u{202e}\\n");
        let long = "é".repeat(1000);
        let shown = shown_method(&long);
        assert!(shown.len() < 160 && shown.ends_with("... (2000 bytes)"), "{shown}");
        assert!(ApplicationException::unknown_method(&long).message.len() < 200);
    }

    #[test]
    fn kinds_round_trip_and_keep_unknown_values() {
        for v in -2..=12 {
            assert_eq!(ApplicationExceptionKind::from_i32(v).as_i32(), v);
        }
        assert_eq!(ApplicationExceptionKind::from(1), ApplicationExceptionKind::UnknownMethod);
        assert_eq!(ApplicationExceptionKind::from(99), ApplicationExceptionKind::Other(99));
    }

    #[test]
    fn binary_bytes_match_the_spec() -> Result<(), ProtocolError> {
        let e = ApplicationException::new(ApplicationExceptionKind::UnknownMethod, "no");
        let mut buf = BytesMut::new();
        e.encode(&mut BinaryWriter::new(&mut buf))?;
        let want = [11, 0, 1, 0, 0, 0, 2, b'n', b'o', 8, 0, 2, 0, 0, 0, 1, 0];
        assert_eq!(&buf[..], &want[..]);
        assert_eq!(ApplicationException::decode(&mut BinaryReader::new(buf.freeze()))?, e);
        Ok(())
    }

    #[test]
    fn compact_round_trip() -> Result<(), ProtocolError> {
        let e = ApplicationException::new(ApplicationExceptionKind::Other(42), "boom");
        let mut buf = BytesMut::new();
        e.encode(&mut CompactWriter::new(&mut buf))?;
        assert_eq!(ApplicationException::decode(&mut CompactReader::new(buf.freeze()))?, e);
        Ok(())
    }

    #[test]
    fn unknown_fields_are_skipped_and_missing_ones_default() -> Result<(), ProtocolError> {
        // Field 3 (i64) unknown, then only the message; kind defaults to Unknown.
        let bytes = [10, 0, 3, 0, 0, 0, 0, 0, 0, 0, 9, 11, 0, 1, 0, 0, 0, 1, b'x', 0];
        let e = ApplicationException::decode(&mut BinaryReader::new(Bytes::copy_from_slice(&bytes)))?;
        assert_eq!(e, ApplicationException::new(ApplicationExceptionKind::Unknown, "x"));
        assert_eq!(e.to_string(), "application exception (Unknown): x");
        Ok(())
    }
}
