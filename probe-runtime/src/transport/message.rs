//! Whole-message helpers: renaming a message's method, and (for tests) where an unframed message
//! ends, parsed from its start.

use bytes::{Bytes, BytesMut};

#[cfg(test)]
use super::error::WireError;
#[cfg(test)]
use crate::codec::{BinaryReader, CompactReader, ProtocolReader, TType};
use crate::codec::{Encode, Limits, MessageHeader, ProtocolError, ProtocolWriter};
use crate::service::Protocol;

/// How far an unframed message at the start of a buffer got.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The message is complete and this many bytes long.
    Complete(usize),
    /// At least this many more bytes are needed.
    Incomplete(usize),
}

/// Finds where the unframed message at the start of `buf` ends: parses its header and skips its
/// arguments (or result) struct, bounded by `limits`. Parses from the start on every call: the
/// reference the resumable [`MessageScan`](crate::codec::MessageScan) is tested against.
#[cfg(test)]
pub(crate) fn unframed_message_len(
    protocol: Protocol,
    buf: Bytes,
    limits: Limits,
) -> Result<Scan, WireError> {
    let scanned = match protocol {
        Protocol::Binary => {
            let mut r = BinaryReader::with_limits(buf, limits);
            scan(&mut r).map(|()| r.position())
        }
        Protocol::Compact => {
            let mut r = CompactReader::with_limits(buf, limits);
            scan(&mut r).map(|()| r.position())
        }
    };
    match scanned {
        Ok(len) => Ok(Scan::Complete(len)),
        Err((_, ProtocolError::Incomplete { needed })) => Ok(Scan::Incomplete(needed.max(1))),
        Err((header, source)) => Err(WireError::Malformed { header, source }),
    }
}

/// Reads a message header and skips the struct after it; an error carries the header if it was
/// read.
#[cfg(test)]
fn scan<R: ProtocolReader>(r: &mut R) -> Result<(), (Option<MessageHeader>, ProtocolError)> {
    let header = r.read_message_begin().map_err(|e| (None, e))?;
    match r.skip(TType::Struct).and_then(|()| r.read_message_end()) {
        Ok(()) => Ok(()),
        Err(e) => Err((Some(header), e)),
    }
}

/// Writes nothing: lets [`Protocol::encode_message`] write a header alone.
struct NoBody;

impl Encode for NoBody {
    fn encode<W: ProtocolWriter>(&self, _: &mut W) -> Result<(), ProtocolError> {
        Ok(())
    }
}

/// The same message with its method name replaced by `name`: used to add and strip the
/// `Service:` prefix of multiplexed calls. The body is copied unchanged.
pub fn rename_message(
    protocol: Protocol,
    message: Bytes,
    name: &str,
    limits: Limits,
) -> Result<Bytes, ProtocolError> {
    let (header, body) = protocol.decode_header(message, limits)?;
    let header = MessageHeader::new(name.to_owned(), header.kind, header.seqid);
    let mut out = BytesMut::with_capacity(16 + name.len() + body.len());
    protocol.encode_message(&header, &NoBody, &mut out)?;
    out.extend_from_slice(&body);
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{ApplicationException, MessageType};

    fn message(protocol: Protocol, name: &'static str) -> Bytes {
        let mut buf = BytesMut::new();
        let body = ApplicationException::unknown_method("x");
        let header = MessageHeader::new(name, MessageType::Exception, 42);
        assert!(protocol.encode_message(&header, &body, &mut buf).is_ok());
        buf.freeze()
    }

    #[test]
    fn finds_the_end_of_a_message_or_asks_for_more() {
        for protocol in [Protocol::Binary, Protocol::Compact] {
            let m = message(protocol, "say");
            let mut two = BytesMut::from(&m[..]);
            two.extend_from_slice(&m);
            let got = unframed_message_len(protocol, two.freeze(), Limits::default()).ok();
            assert_eq!(got, Some(Scan::Complete(m.len())));
            for cut in 0..m.len() {
                let got = unframed_message_len(protocol, m.slice(..cut), Limits::default()).ok();
                assert!(
                    matches!(got, Some(Scan::Incomplete(n)) if n >= 1),
                    "{protocol:?} cut at {cut}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn a_bad_body_reports_the_header() {
        // Strict binary call `m` #7, then a field of type 1 (not a Thrift type).
        let bad = Bytes::from_static(&[0x80, 1, 0, 1, 0, 0, 0, 1, b'm', 0, 0, 0, 7, 1, 0, 1]);
        match unframed_message_len(Protocol::Binary, bad, Limits::default()) {
            Err(WireError::Malformed { header: Some(h), source }) => {
                assert_eq!((&*h.name, h.seqid), ("m", 7));
                assert_eq!(source, ProtocolError::UnknownType(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn renames_keep_the_rest() -> Result<(), ProtocolError> {
        for protocol in [Protocol::Binary, Protocol::Compact] {
            let m = message(protocol, "say");
            let renamed = rename_message(protocol, m.clone(), "Demo:say", Limits::default())?;
            assert_eq!(renamed, message(protocol, "Demo:say"));
            assert_eq!(rename_message(protocol, renamed, "say", Limits::default())?, m);
        }
        Ok(())
    }
}
