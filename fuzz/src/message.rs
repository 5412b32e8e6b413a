//! A message header then its arguments struct, as a server reads an unframed message.

use bytes::Bytes;
use probe_runtime::codec::{BinaryReader, CompactReader, ProtocolError, ProtocolReader, TType};

/// A protocol reader the checks can open over a buffer and ask how far it got.
pub trait Reader: ProtocolReader + Sized {
    /// A reader over `buf` with the default limits.
    fn open(buf: Bytes) -> Self;
    /// Bytes consumed so far.
    fn consumed(&self) -> usize;
}

impl Reader for BinaryReader {
    fn open(buf: Bytes) -> Self {
        BinaryReader::new(buf)
    }

    fn consumed(&self) -> usize {
        self.position()
    }
}

impl Reader for CompactReader {
    fn open(buf: Bytes) -> Self {
        CompactReader::new(buf)
    }

    fn consumed(&self) -> usize {
        self.position()
    }
}

/// Reads a message header and skips the struct after it; returns the message's length.
pub fn scan<R: Reader>(buf: Bytes) -> Result<usize, ProtocolError> {
    let mut r = R::open(buf);
    r.read_message_begin()?;
    r.skip(TType::Struct)?;
    r.read_message_end()?;
    Ok(r.consumed())
}

/// Scans `data` as a message. Must not panic; and when a whole message is found, a few strict
/// prefixes of it must scan as `Incomplete`, since an unframed stream reads more on `Incomplete`
/// and drops the connection on any other error.
pub fn check<R: Reader>(data: &[u8]) {
    let input = Bytes::copy_from_slice(data);
    let Ok(len) = scan::<R>(input.clone()) else { return };
    assert!(len <= data.len(), "consumed {len} of {} bytes", data.len());
    let pick = usize::from(data.first().copied().unwrap_or(0));
    for cut in [0, len / 2, len.saturating_sub(1), pick % len.max(1)] {
        if cut >= len {
            continue;
        }
        match scan::<R>(input.slice(..cut)) {
            Err(ProtocolError::Incomplete { needed }) => {
                assert!(needed >= 1, "a prefix of {cut} of {len} bytes needs 0 more bytes");
                assert!(
                    cut + needed <= len,
                    "a prefix of {cut} bytes claims {needed} more, the message is {len}"
                );
            }
            other => panic!("a prefix of {cut} of a {len}-byte message scans as {other:?}"),
        }
    }
}
