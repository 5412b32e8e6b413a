//! How a call ended, for counting: from the error a client saw, or from the first bytes of a reply
//! (read in place, without decoding the message).

use crate::error::Error;
use crate::service::Protocol;

/// How one call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Outcome {
    /// A result (or a oneway call sent).
    Ok,
    /// One of the method's declared Thrift exceptions: a business answer, not a failure.
    Exception,
    /// A `TApplicationException`: unknown method, bad arguments, a handler that failed or panicked.
    AppError,
    /// The connection failed, or the reply was not valid Thrift.
    TransportError,
    /// No reply within the timeout.
    Timeout,
}

impl Outcome {
    /// Every outcome, in the order of their counters.
    pub const ALL: [Outcome; 5] =
        [Outcome::Ok, Outcome::Exception, Outcome::AppError, Outcome::TransportError, Outcome::Timeout];

    /// The outcomes a server can see (it cannot tell transport failures or timeouts per call).
    pub const SERVER: [Outcome; 3] = [Outcome::Ok, Outcome::Exception, Outcome::AppError];

    /// The label value: `ok`, `exception`, `app_error`, `transport_error`, `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Exception => "exception",
            Outcome::AppError => "app_error",
            Outcome::TransportError => "transport_error",
            Outcome::Timeout => "timeout",
        }
    }

    /// Whether this counts as an error in error rates: every failure, but not a declared exception.
    pub fn is_error(self) -> bool {
        matches!(self, Outcome::AppError | Outcome::TransportError | Outcome::Timeout)
    }

    /// The position in [`Outcome::ALL`].
    #[inline]
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The outcome of a call that failed with `error`.
    pub fn of_error(error: &Error) -> Outcome {
        match error {
            Error::Timeout { .. } => Outcome::Timeout,
            Error::Transport { .. }
            | Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::NoNode { .. }
            | Error::Protocol(_)
            | Error::BadReply(_) => Outcome::TransportError,
            _ => Outcome::AppError,
        }
    }

    /// The outcome of a client call's result: the reply's, or the error's.
    pub fn of_result(protocol: Protocol, result: &Result<Option<bytes::Bytes>, Error>) -> Outcome {
        match result {
            Ok(Some(reply)) => Outcome::of_reply(protocol, reply),
            Ok(None) => Outcome::Ok,
            Err(e) => Outcome::of_error(e),
        }
    }

    /// The outcome a reply message (without framing) carries: a `TApplicationException`, a result
    /// struct whose first field is a declared exception (id other than 0), or a result. Bytes
    /// that are not a reply count as [`Outcome::TransportError`].
    pub fn of_reply(protocol: Protocol, message: &[u8]) -> Outcome {
        let peeked = match protocol {
            Protocol::Binary => peek_binary(message),
            Protocol::Compact => peek_compact(message),
        };
        match peeked {
            Some((EXCEPTION, _)) => Outcome::AppError,
            Some((REPLY, true)) => Outcome::Exception,
            Some((REPLY, false)) => Outcome::Ok,
            _ => Outcome::TransportError,
        }
    }
}

const REPLY: u8 = 2;
const EXCEPTION: u8 = 3;

/// The message type, and whether the body's first field has an id other than 0.
fn peek_binary(m: &[u8]) -> Option<(u8, bool)> {
    let word = i32::from_be_bytes(m.get(..4)?.try_into().ok()?);
    let (kind, body) = if word < 0 {
        // Strict: version | type, name length, name, seqid.
        let len = u32::from_be_bytes(m.get(4..8)?.try_into().ok()?) as usize;
        (*m.get(3)?, 8usize.checked_add(len)?.checked_add(4)?)
    } else {
        // Old non-strict: name length, name, type, seqid.
        let at = 4usize.checked_add(word as usize)?;
        (*m.get(at)?, at + 5)
    };
    let field = match *m.get(body)? {
        0 => false,
        _ => m.get(body + 1..body + 3)? != [0, 0],
    };
    Some((kind, field))
}

/// The same for the compact protocol: id, version | type << 5, varint seqid, varint length, name.
fn peek_compact(m: &[u8]) -> Option<(u8, bool)> {
    if *m.first()? != 0x82 {
        return None;
    }
    let kind = *m.get(1)? >> 5;
    let mut at = skip_varint(m, 2)?;
    let (len, after) = read_varint(m, at)?;
    at = after.checked_add(usize::try_from(len).ok()?)?;
    let field = match *m.get(at)? {
        0 => false,
        // A short-form header: an id delta of 1 to 15 from 0.
        b if b >> 4 != 0 => true,
        // A long-form header: the id follows as a zigzag varint; 0 encodes as one zero byte.
        _ => *m.get(at + 1)? != 0,
    };
    Some((kind, field))
}

fn skip_varint(m: &[u8], at: usize) -> Option<usize> {
    read_varint(m, at).map(|(_, next)| next)
}

fn read_varint(m: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *m.get(at)?;
        at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((value, at));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::codec::{ApplicationException, MessageHeader, MessageType};
    use crate::service::{Outcome as Result_, VoidOutcome};

    /// A result struct whose field 1 (a declared exception) is an empty struct.
    struct Declared;

    impl crate::codec::Encode for Declared {
        fn encode<W: crate::codec::ProtocolWriter>(
            &self,
            w: &mut W,
        ) -> Result<(), crate::codec::ProtocolError> {
            w.write_struct_begin("result")?;
            w.write_field_begin(crate::codec::TType::Struct, 1)?;
            w.write_struct_begin("E")?;
            w.write_field_stop()?;
            w.write_struct_end()?;
            w.write_field_end()?;
            w.write_field_stop()?;
            w.write_struct_end()
        }
    }

    fn message<T: crate::codec::Encode>(protocol: Protocol, kind: MessageType, body: &T) -> Vec<u8> {
        let mut buf = BytesMut::new();
        protocol.encode_message(&MessageHeader::new("get_user", kind, 7), body, &mut buf).unwrap();
        buf.to_vec()
    }

    #[test]
    fn replies_are_classified_in_both_protocols() {
        for p in [Protocol::Binary, Protocol::Compact] {
            let ok = message(p, MessageType::Reply, &Result_::<i32, crate::NoException>::Ok(5));
            assert_eq!(Outcome::of_reply(p, &ok), Outcome::Ok, "{p:?}");
            let void = message(p, MessageType::Reply, &VoidOutcome::<crate::NoException>::Ok);
            assert_eq!(Outcome::of_reply(p, &void), Outcome::Ok, "{p:?}");
            let declared = message(p, MessageType::Reply, &Declared);
            assert_eq!(Outcome::of_reply(p, &declared), Outcome::Exception, "{p:?}");
            let app = ApplicationException::unknown_method("x");
            let app = message(p, MessageType::Exception, &app);
            assert_eq!(Outcome::of_reply(p, &app), Outcome::AppError, "{p:?}");
            assert_eq!(Outcome::of_reply(p, &ok[..ok.len() / 2]), Outcome::TransportError, "{p:?}");
            assert_eq!(Outcome::of_reply(p, b""), Outcome::TransportError, "{p:?}");
        }
    }

    #[test]
    fn errors_are_classified() {
        let timeout = Error::Timeout { method: "m".into(), timeout_ms: 1 };
        assert_eq!(Outcome::of_error(&timeout), Outcome::Timeout);
        let refused =
            Error::Connect { peer: "p".into(), source: std::io::ErrorKind::ConnectionRefused.into() };
        assert_eq!(Outcome::of_error(&refused), Outcome::TransportError);
        assert_eq!(Outcome::of_error(&Error::handler("boom")), Outcome::AppError);
        assert!(Outcome::Timeout.is_error() && !Outcome::Exception.is_error() && !Outcome::Ok.is_error());
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
        }
    }
}
