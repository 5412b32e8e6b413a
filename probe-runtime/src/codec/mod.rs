//! The Thrift wire codec: the binary and compact protocols.
//!
//! Generated code implements [`Encode`] and [`Decode`] against the [`ProtocolWriter`] and
//! [`ProtocolReader`] traits; transports pick the protocol. Writers append straight into a
//! `BytesMut`; readers decode a `Bytes` in place, returning `binary` values as zero-copy slices.
//!
//! Readers treat their input as hostile: every length is checked against [`Limits`] and against
//! the bytes left before anything is allocated, nesting is bounded in decoding and in
//! [`ProtocolReader::skip`], and malformed input is an error, never a panic or an endless loop.
//! Input that ends early is [`ProtocolError::Incomplete`], so an unframed stream can read more
//! and try again.
//!
//! ```
//! use bytes::BytesMut;
//! use probe_runtime::codec::{
//!     BinaryReader, BinaryWriter, MessageHeader, MessageType, ProtocolReader, ProtocolWriter,
//! };
//!
//! let mut buf = BytesMut::new();
//! let mut w = BinaryWriter::new(&mut buf);
//! w.write_message_begin(&MessageHeader::new("say", MessageType::Call, 7))?;
//! w.write_message_end()?;
//!
//! let mut r = BinaryReader::new(buf.freeze());
//! let header = r.read_message_begin()?;
//! assert_eq!((&*header.name, header.kind, header.seqid), ("say", MessageType::Call, 7));
//! # Ok::<(), probe_runtime::codec::ProtocolError>(())
//! ```

mod application_exception;
mod binary;
mod block;
mod collections;
mod compact;
mod error;
#[cfg(test)]
mod fixtures;
mod input;
mod limits;
mod scan;
mod skip;
mod traits;
mod types;
mod wire;

pub use application_exception::{ApplicationException, ApplicationExceptionKind, shown_method};
pub use binary::{BinaryReader, BinaryWriter};
pub(crate) use block::carve;
pub use collections::{ListMap, ListSet};
pub use compact::{CompactReader, CompactWriter};
pub use error::ProtocolError;
pub use limits::Limits;
pub(crate) use scan::{Encoding, MessageScan, Scanned};
pub use traits::{Decode, Encode, ProtocolReader, ProtocolWriter};
pub use types::{FieldHeader, ListHeader, MapHeader, MessageHeader, MessageType, TType};
pub use wire::{Wire, read_fields, required, write_field};
