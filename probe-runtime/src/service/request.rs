//! A decoded call header with its still-encoded arguments, and the reply built from it.

use std::borrow::Cow;

use bytes::{Buf, Bytes, BytesMut};

use crate::codec::{
    ApplicationException, ApplicationExceptionKind, BinaryReader, BinaryWriter, CompactReader, CompactWriter,
    Decode, Encode, Limits, MessageHeader, MessageType, ProtocolError, ProtocolReader, ProtocolWriter, carve,
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
            // `advance`, not `slice`: the body keeps the message's buffer without counting
            // another reference to it.
            Protocol::Binary => {
                let mut r = BinaryReader::with_limits(message, limits);
                let header = r.read_message_begin()?;
                let at = r.position();
                let mut body = r.into_inner();
                body.advance(at);
                Ok((header, body))
            }
            Protocol::Compact => {
                let mut r = CompactReader::with_limits(message, limits);
                let header = r.read_message_begin()?;
                let at = r.position();
                let mut body = r.into_inner();
                body.advance(at);
                Ok((header, body))
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
    /// Who sent it, when a server read it from a connection.
    peer: Option<std::net::SocketAddr>,
    /// The appkey the connection's verified TLS client certificate names.
    tls_peer_appkey: Option<std::sync::Arc<str>>,
    /// The name replies carry when it is not the header's: the name the caller sent, once the
    /// server renamed the request for its handler.
    reply_name: Option<&'static str>,
}

impl Request {
    /// A request read with `protocol`, whose arguments struct starts at `body`.
    pub fn new(protocol: Protocol, header: MessageHeader, body: Bytes, limits: Limits) -> Self {
        Request { protocol, header, body, limits, peer: None, tls_peer_appkey: None, reply_name: None }
    }

    /// The address of the connection the request came on (`None` for a request made in process).
    pub fn peer(&self) -> Option<std::net::SocketAddr> {
        self.peer
    }

    pub(crate) fn set_peer(&mut self, peer: std::net::SocketAddr) {
        self.peer = Some(peer);
    }

    /// The appkey the verified TLS client certificate of the connection the request came on
    /// names (see [`Context::tls_peer_appkey`](crate::context::Context::tls_peer_appkey)).
    pub fn tls_peer_appkey(&self) -> Option<&str> {
        self.tls_peer_appkey.as_deref()
    }

    pub(crate) fn set_tls_peer_appkey(&mut self, appkey: std::sync::Arc<str>) {
        self.tls_peer_appkey = Some(appkey);
    }

    /// The bounds its arguments are decoded within.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Parses a whole message.
    pub fn parse(protocol: Protocol, message: Bytes, limits: Limits) -> Result<Self, ProtocolError> {
        let (header, body) = protocol.decode_header(message, limits)?;
        Ok(Request::new(protocol, header, body, limits))
    }

    /// [`Request::parse`] for a server that expects the method `expected` (the last one called
    /// on the connection): when a strict binary message names it, the request's name is that
    /// `&'static str`, and the name is neither copied nor checked again. Any other message parses
    /// as with [`Request::parse`].
    pub(crate) fn parse_expecting(
        protocol: Protocol,
        mut message: Bytes,
        limits: Limits,
        expected: &'static str,
    ) -> Result<Self, ProtocolError> {
        match peek_strict_binary(protocol, &message, expected, limits) {
            Some((kind, seqid, body_at)) => {
                message.advance(body_at);
                Ok(Request::new(protocol, MessageHeader::new(expected, kind, seqid), message, limits))
            }
            None => Request::parse(protocol, message, limits),
        }
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

    /// Renames the method to one of the names its service declares, and returns the header as
    /// it was: the server keeps that for the replies it makes itself. The replies the handler
    /// makes carry `reply_name`, the name as sent (`Service:method` for a multiplexed call), so
    /// they need no renaming, and copy no name.
    pub(crate) fn rename(&mut self, name: &'static str, reply_name: &'static str) -> MessageHeader {
        self.reply_name = (reply_name != name).then_some(reply_name);
        let sent = std::mem::replace(&mut self.header.name, Cow::Borrowed(name));
        MessageHeader::new(sent, self.header.kind, self.header.seqid)
    }

    /// Decodes the arguments struct.
    pub fn decode_args<T: Decode>(&self) -> Result<T, ProtocolError> {
        self.protocol.decode_body(self.body.clone(), self.limits)
    }

    fn message(&self, kind: MessageType, body: &(impl Encode + ?Sized)) -> Reply {
        if self.header.kind == MessageType::Oneway {
            return Reply::None;
        }
        let name = self.reply_name.map_or_else(|| self.header.name.clone(), Cow::Borrowed);
        let header = MessageHeader::new(name, kind, self.header.seqid);
        // Replies tend to be about as large as their requests (echoes, updates returning the
        // record): room for that rather than growing a small buffer several times. Carved from
        // the thread's encode block, as calls are: the connection copies the reply into its
        // frame and drops it.
        let expected = self.body.len() + self.header.name.len() + 32;
        match carve(expected, |buf| self.protocol.encode_message(&header, body, buf)) {
            Ok(reply) => Reply::Message(reply),
            Err(e) => {
                let exception = ApplicationException::new(
                    ApplicationExceptionKind::InternalError,
                    format!("the result of `{}` could not be encoded: {e}", self.method()),
                );
                let mut buf = BytesMut::with_capacity(64);
                let header = MessageHeader { kind: MessageType::Exception, ..header };
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

/// The type, seqid and body offset of `message` if it is a strict binary message whose method
/// is `name` (and so would parse with that header); `None` for anything else.
fn peek_strict_binary(
    protocol: Protocol,
    message: &[u8],
    name: &str,
    limits: Limits,
) -> Option<(MessageType, i32, usize)> {
    // Version 1 in the high 16 bits (the next byte is not checked, as a reader does not), the
    // type in the low byte, then the name's length.
    let [0x80, 0x01, _, kind, l0, l1, l2, l3, ref rest @ ..] = *message else {
        return None;
    };
    let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
    if protocol != Protocol::Binary || len != name.len() || len > limits.max_string_len {
        return None;
    }
    let (sent, rest) = rest.split_at_checked(len)?;
    if sent != name.as_bytes() {
        return None;
    }
    let seqid = i32::from_be_bytes(*rest.first_chunk::<4>()?);
    Some((MessageType::try_from(kind).ok()?, seqid, 8 + len + 4))
}

/// What a server sends back for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing (oneway calls).
    None,
    /// An encoded message (without transport framing). The replies [`Request`] makes share a
    /// block of the thread that made them (64 KiB, let go once all its replies are dropped), as
    /// decoded `binary` arguments share the frame they came in: a layer that keeps replies past
    /// the call (a cache) should keep copies (`Bytes::copy_from_slice`).
    Message(Bytes),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of `kind` named `name` with seqid 9 and a struct body holding one i32.
    fn message(protocol: Protocol, name: &'static str, kind: MessageType) -> Bytes {
        let mut buf = BytesMut::new();
        let body = ApplicationException::unknown_method("x");
        assert!(protocol.encode_message(&MessageHeader::new(name, kind, 9), &body, &mut buf).is_ok());
        buf.freeze()
    }

    fn parsed(r: Result<Request, ProtocolError>) -> Result<(MessageHeader, Bytes), ProtocolError> {
        r.map(|r| (r.header, r.body))
    }

    #[test]
    fn parsing_expecting_a_name_reads_what_parsing_reads() {
        let mut cases = Vec::new();
        for protocol in [Protocol::Binary, Protocol::Compact] {
            for name in ["echo", "echo2", "ech", "Echo:echo", ""] {
                for kind in [MessageType::Call, MessageType::Oneway, MessageType::Reply] {
                    cases.push(message(protocol, name, kind));
                }
            }
        }
        let call = message(Protocol::Binary, "echo", MessageType::Call);
        // Cut anywhere, a bad type byte, an old non-strict header.
        cases.extend((0..call.len()).map(|cut| call.slice(..cut)));
        let mut bad_type = call.to_vec();
        bad_type[3] = 9;
        cases.push(bad_type.into());
        cases.push(Bytes::from_static(&[0, 0, 0, 4, b'e', b'c', b'h', b'o', 1, 0, 0, 0, 9, 0]));
        for m in cases {
            for protocol in [Protocol::Binary, Protocol::Compact] {
                let limits = Limits::default();
                let want = parsed(Request::parse(protocol, m.clone(), limits));
                let got = parsed(Request::parse_expecting(protocol, m.clone(), limits, "echo"));
                assert_eq!(got, want, "{protocol:?} {m:02x?}");
            }
        }
        // The name a request expected to be named gets is the static one.
        let request = Request::parse_expecting(Protocol::Binary, call, Limits::default(), "echo");
        assert!(matches!(request.map(|r| r.header.name), Ok(Cow::Borrowed("echo"))));
    }
}
