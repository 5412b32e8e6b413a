//! What is wrong with a header frame.

/// A header frame that cannot be read (or a frame that cannot be written). The connection it came
/// on is out of step and is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Fewer bytes than the fixed part of a header frame.
    #[error("a header frame of {len} bytes is shorter than its fixed 10 bytes")]
    TooShort {
        /// The frame's length.
        len: usize,
    },
    /// The first word is not the header magic 0x0FFF.
    #[error("a header frame starts with {found:#06x}, not the header magic 0x0fff")]
    NoMagic {
        /// The high 16 bits found.
        found: u16,
    },
    /// The header size field claims more header bytes than the frame has (or than 64 KiB).
    #[error("the header claims {words} words ({} bytes) but the frame has {left} bytes after its fixed part", u64::from(*words) * 4)]
    HeaderPastFrame {
        /// The header size field, in 4-byte words.
        words: u16,
        /// The bytes the frame has after its fixed 10 bytes.
        left: usize,
    },
    /// A varint in the header runs past the header's end or past 32 bits.
    #[error("a varint in the header {0}")]
    BadVarint(&'static str),
    /// A key or value of an info header runs past the header's end.
    #[error("an info header string of {len} bytes runs past the header's end ({left} bytes left)")]
    StringPastHeader {
        /// The length claimed.
        len: u64,
        /// The header bytes left.
        left: usize,
    },
    /// More transforms than header bytes could describe.
    #[error("{count} transforms claimed in a header of {left} bytes")]
    TooManyTransforms {
        /// The count claimed.
        count: u32,
        /// The header bytes left.
        left: usize,
    },
    /// A protocol id other than binary (0) and compact (2).
    #[error("protocol id {0} is not supported: probe speaks binary (0) and compact (2) inside THeader")]
    UnknownProtocol(u32),
    /// A transform probe does not know (the spec requires an error: the payload cannot be read).
    #[error("transform id {0} is not supported: probe knows zlib (1)")]
    UnknownTransform(u32),
    /// The zlib payload does not inflate.
    #[error("the zlib payload does not inflate: {0}")]
    Inflate(String),
    /// The zlib payload inflates past the frame limit.
    #[error("the zlib payload inflates past the frame limit of {limit} bytes")]
    InflatedTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Something to write does not fit the format.
    #[error("cannot write a header frame: {0}")]
    Unwritable(&'static str),
}
