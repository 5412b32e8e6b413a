//! A decoded call header with its still-encoded arguments, and the reply built from it.

use bytes::{Bytes, BytesMut};

use crate::codec::{
    ApplicationException, ApplicationExceptionKind, BinaryReader, BinaryWriter, CompactReader, CompactWriter,
    Decode, Encode, Limits, MessageHeader, MessageType, ProtocolError, ProtocolReader, ProtocolWriter,
};
use crate::error::Error;

/// A Thrift protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The binary protocol.
    Binary,
    /// The compact protocol.
    Compact,
}

impl Protocol {
    /// The name used in registry data (`"binary"`, `"compact"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Binary => "binary",
            Protocol::Compact => "compact",
        }
    }

    /// Encodes a whole message: header and body.
    pub fn encode_message<T: Encode + ?Sized>(
        self,
        header: &MessageHeader,
        body: &T,
        buf: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        fn write<W: ProtocolWriter, T: Encode + ?Sized>(
            w: &mut W,
            header: &MessageHeader,
            body: &T,
        ) -> Result<(), ProtocolError> {
            w.write_message_begin(header)?;
            body.encode(w)?;
            w.write_message_end()
        }
        match self {
            Protocol::Binary => write(&mut BinaryWriter::new(buf), header, body),
            Protocol::Compact => write(&mut CompactWriter::new(buf), header, body),
        }
    }

    /// Reads a message header; returns it with the bytes after it.
    pub fn decode_header(
        self,
        message: Bytes,
        limits: Limits,
    ) -> Result<(MessageHeader, Bytes), ProtocolError> {
        match self {
            Protocol::Binary => {
                let mut r = BinaryReader::with_limits(message, limits);
                let header = r.read_message_begin()?;
                let at = r.position();
                Ok((header, r.into_inner().slice(at..)))
            }
            Protocol::Compact => {
                let mut r = CompactReader::with_limits(message, limits);
                let header = r.read_message_begin()?;
                let at = r.position();
                Ok((header, r.into_inner().slice(at..)))
            }
        }
    }

    /// Decodes a value (a struct) from `body`.
    pub fn decode_body<T: Decode>(self, body: Bytes, limits: Limits) -> Result<T, ProtocolError> {
        match self {
            Protocol::Binary => T::decode(&mut BinaryReader::with_limits(body, limits)),
            Protocol::Compact => T::decode(&mut CompactReader::with_limits(body, limits)),
        }
    }
}

/// One incoming call: its header, and its arguments not yet decoded.
#[derive(Debug, Clone)]
pub struct Request {
    protocol: Protocol,
    header: MessageHeader,
    body: Bytes,
    limits: Limits,
}

impl Request {
    /// A request read with `protocol`, whose arguments struct starts at `body`.
    pub fn new(protocol: Protocol, header: MessageHeader, body: Bytes, limits: Limits) -> Self {
        Request { protocol, header, body, limits }
    }

    /// Parses a whole message.
    pub fn parse(protocol: Protocol, message: Bytes, limits: Limits) -> Result<Self, ProtocolError> {
        let (header, body) = protocol.decode_header(message, limits)?;
        Ok(Request::new(protocol, header, body, limits))
    }

    /// The method name (without a multiplexing prefix once the server has routed it).
    pub fn method(&self) -> &str {
        &self.header.name
    }

    /// The call's header.
    pub fn header(&self) -> &MessageHeader {
        &self.header
    }

    /// The protocol the caller speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Renames the method: the server strips the `Service:` prefix of multiplexed calls.
    pub fn set_method(&mut self, name: String) {
        self.header.name = name.into();
    }

    /// Decodes the arguments struct.
    pub fn decode_args<T: Decode>(&self) -> Result<T, ProtocolError> {
        self.protocol.decode_body(self.body.clone(), self.limits)
    }

    fn message(&self, kind: MessageType, body: &(impl Encode + ?Sized)) -> Reply {
        if self.header.kind == MessageType::Oneway {
            return Reply::None;
        }
        let header = MessageHeader::new(self.header.name.clone(), kind, self.header.seqid);
        // Replies tend to be about as large as their requests (echoes, updates returning the
        // record): start there rather than growing a small buffer several times.
        let mut buf = BytesMut::with_capacity(self.body.len() + self.header.name.len() + 32);
        match self.protocol.encode_message(&header, body, &mut buf) {
            Ok(()) => Reply::Message(buf.freeze()),
            Err(e) => {
                let exception = ApplicationException::new(
                    ApplicationExceptionKind::InternalError,
                    format!("the result of `{}` could not be encoded: {e}", self.method()),
                );
                let mut buf = BytesMut::with_capacity(64);
                let header =
                    MessageHeader::new(self.header.name.clone(), MessageType::Exception, self.header.seqid);
                match self.protocol.encode_message(&header, &exception, &mut buf) {
                    Ok(()) => Reply::Message(buf.freeze()),
                    Err(_) => Reply::None,
                }
            }
        }
    }

    /// The reply carrying a generated result struct.
    pub fn reply<T: Encode + ?Sized>(&self, result: &T) -> Reply {
        self.message(MessageType::Reply, result)
    }

    /// A `TApplicationException` reply.
    pub fn exception(&self, exception: &ApplicationException) -> Reply {
        self.message(MessageType::Exception, exception)
    }

    /// The reply to arguments that did not decode.
    pub fn protocol_error(&self, error: &ProtocolError) -> Reply {
        let message = format!("bad arguments for `{}`: {error}", self.method());
        self.exception(&ApplicationException::new(ApplicationExceptionKind::ProtocolError, message))
    }

    /// The reply to a method this service does not have.
    pub fn unknown_method(&self) -> Reply {
        self.exception(&ApplicationException::unknown_method(self.method()))
    }

    /// The reply to a handler that failed without a declared exception.
    pub fn internal_error(&self, error: &Error) -> Reply {
        let exception = match error {
            Error::Application(e) => e.clone(),
            other => ApplicationException::new(ApplicationExceptionKind::InternalError, other.to_string()),
        };
        self.exception(&exception)
    }
}

/// What a server sends back for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing (oneway calls).
    None,
    /// An encoded message (without transport framing).
    Message(Bytes),
}
