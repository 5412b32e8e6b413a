//! What can go wrong reading or writing messages on a connection.

use std::io;

use super::header::HeaderError;
use crate::codec::{MessageHeader, ProtocolError};
use crate::error::Error;

/// A failure to read or write a message on a connection. After any of these the connection is
/// out of step with its peer and should be closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The first bytes are not the start of any Thrift message.
    #[error("{0}")]
    NotThrift(String),
    /// A frame (or an unframed message) is longer than [`Limits::max_frame`].
    ///
    /// [`Limits::max_frame`]: crate::codec::Limits
    #[error("a message of {len} bytes is over the frame limit of {limit} bytes")]
    FrameTooLarge {
        /// The length claimed or reached.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// A frame of length zero.
    #[error("empty frame")]
    EmptyFrame,
    /// The peer closed the connection in the middle of a message.
    #[error("connection closed in the middle of a message ({buffered} bytes received)")]
    Truncated {
        /// The bytes of the partial message received.
        buffered: usize,
    },
    /// An unframed message could not be parsed, so where it ends is unknown.
    #[error("malformed message: {source}")]
    Malformed {
        /// The message header, if it could be read: a server answers it with a
        /// `TApplicationException` before closing.
        header: Option<MessageHeader>,
        /// Why it could not be parsed.
        source: ProtocolError,
    },
    /// A header frame (THeader) that cannot be read.
    #[error("malformed header frame: {0}")]
    Header(#[from] HeaderError),
    /// A message longer than the 4-byte frame length can carry.
    #[error("a message of {len} bytes cannot be framed")]
    Unframeable {
        /// The message's length.
        len: usize,
    },
}

impl WireError {
    /// The client-side error for this failure on a connection to `peer`.
    pub(crate) fn into_error(self, peer: &str) -> Error {
        let peer = peer.to_owned();
        match self {
            WireError::Io(source) => Error::Transport { peer, source },
            WireError::Truncated { .. } => Error::Transport {
                peer,
                source: io::Error::new(io::ErrorKind::UnexpectedEof, self.to_string()),
            },
            WireError::Malformed { source, .. } => Error::Protocol(source),
            WireError::FrameTooLarge { len, limit } => Error::Protocol(ProtocolError::SizeLimit {
                what: "frame",
                len: usize::try_from(len).unwrap_or(usize::MAX),
                limit,
            }),
            WireError::Unframeable { len } => {
                Error::Protocol(ProtocolError::SizeLimit { what: "frame", len, limit: i32::MAX as usize })
            }
            other @ (WireError::NotThrift(_) | WireError::EmptyFrame | WireError::Header(_)) => {
                Error::Protocol(ProtocolError::invalid_data(other.to_string()))
            }
        }
    }
}
