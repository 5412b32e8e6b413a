//! Thrift transports: how messages are cut out of a byte stream and put back into one.
//!
//! A transport is a [`Protocol`] (binary or compact) with a [`Framing`]: framed messages carry a
//! 4-byte big-endian length; unframed ones end where their encoding ends, which a reader finds by
//! parsing the message header and skipping the arguments struct. A server learns the [`WireFormat`] a
//! peer speaks from its first bytes ([`detect`]), so every kind of client works on one port.
//!
//! [`MessageReader`] reads whole messages off any `AsyncRead`, bounded by
//! [`Limits::max_frame`](crate::codec::Limits): a hostile length is refused before anything is
//! allocated, and a message that cannot be parsed is a [`WireError`], never a panic or a hang.
//! [`encode_frame`] writes a message for the wire.
//!
//! ```
//! use probe_runtime::service::Protocol;
//! use probe_runtime::transport::{Framing, WireFormat, detect};
//!
//! // A framed binary message: length, then the strict binary header 0x80 0x01 ...
//! let first = [0, 0, 0, 20, 0x80, 0x01, 0, 1];
//! let wire = detect(&first)?;
//! assert_eq!(wire, Some(WireFormat::new(Protocol::Binary, Framing::Framed)));
//! # Ok::<(), probe_runtime::transport::WireError>(())
//! ```

mod budget;
mod detect;
mod error;
pub mod header;
mod message;
mod reader;
mod writer;

pub(crate) use budget::Held;
pub use budget::MemoryBudget;
pub use detect::detect;
pub use error::WireError;
pub use message::rename_message;
pub use reader::MessageReader;
pub(crate) use writer::FrameWriter;
pub use writer::encode_frame;

use std::fmt;

use crate::service::Protocol;

/// How messages are delimited on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Each message follows its length as a 4-byte big-endian integer (`TFramedTransport`).
    Framed,
    /// Messages follow each other with nothing between them (`TBufferedTransport`, thriftpy2's
    /// default); a reader finds where one ends by parsing it.
    Unframed,
    /// Apache's header transport (`THeaderTransport`): framed, each frame a [`header`] frame that
    /// carries per-call metadata and the message (binary or compact, possibly compressed).
    Header,
}

impl Framing {
    /// The name used in registry data (`"framed"`, `"buffered"`) and logs (`"header"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Framing::Framed => "framed",
            Framing::Unframed => "buffered",
            Framing::Header => "header",
        }
    }

    /// Whether each message follows a 4-byte length (framed and header).
    pub fn has_length(self) -> bool {
        self != Framing::Unframed
    }
}

/// What a connection speaks: a protocol and a framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireFormat {
    /// Binary or compact.
    pub protocol: Protocol,
    /// Framed or not.
    pub framing: Framing,
}

impl WireFormat {
    /// A protocol with a framing.
    pub const fn new(protocol: Protocol, framing: Framing) -> Self {
        WireFormat { protocol, framing }
    }
}

impl fmt::Display for WireFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.framing.as_str(), self.protocol.as_str())
    }
}

#[cfg(test)]
mod tests;
