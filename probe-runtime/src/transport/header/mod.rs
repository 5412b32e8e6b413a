//! Apache Thrift's header transport (THeader): a frame that carries a Thrift message together
//! with per-call metadata.
//!
//! The format is Apache's `doc/specs/HeaderFormat.md`, as its C++ and Python libraries read and
//! write it (probe talks to both):
//!
//! ```text
//! length:u32 | 0x0FFF:u16 flags:u16 | seqid:u32 | header words:u16 |
//!     protocol id (varint) | transform count (varint) | transform ids (varints) |
//!     info headers: id 1 (key-value), count (varint), (varint length + bytes) x 2 per pair |
//!     zero padding to a multiple of 4 bytes | payload (the message, transformed)
//! ```
//!
//! The length prefix is the framed transport's ([`Framing::Header`](super::Framing) reads and
//! writes it); this module decodes and encodes what follows it. The protocol id is 0 (binary) or 2
//! (compact); the only transform is zlib (id 1), done with the `flate2` crate (a well-kept binding
//! whose default backend is the pure-Rust `miniz_oxide`; it uses zlib itself when another crate of
//! the build asks for it). Unknown info header ids end the info headers (the rest is skipped, as
//! the spec says); an unknown transform, a size past the frame or a varint that overflows is a
//! [`HeaderError`]. A zlib payload is inflated to at most the frame limit, so a small frame
//! cannot become a large allocation.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use probe_runtime::codec::Limits;
//! use probe_runtime::service::Protocol;
//! use probe_runtime::transport::header::{HeaderFrame, Headers, Transform, decode, encode};
//!
//! let mut headers = Headers::new();
//! headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! let frame = HeaderFrame { seqid: 7, flags: 0, protocol: Protocol::Compact, transforms: vec![Transform::Zlib], headers };
//! let mut out = BytesMut::new();
//! encode(&frame, b"the message", &mut out)?;
//! let (back, payload) = decode(out.freeze(), Limits::DEFAULT)?;
//! assert_eq!((back, &payload[..]), (frame, &b"the message"[..]));
//! # Ok::<(), probe_runtime::transport::header::HeaderError>(())
//! ```

mod decode;
mod encode;
mod error;
mod headers;
mod zlib;

pub(crate) use decode::decode_seeing;
pub use decode::{decode, frame_seqid, plain_payload_at};
pub(crate) use encode::{FrameHead, encode_plain_into};
pub use encode::{encode, encode_plain};
pub use error::HeaderError;
pub use headers::Headers;

use crate::service::Protocol;

/// The high 16 bits of a header frame's first word.
pub const HEADER_MAGIC: u16 = 0x0FFF;
/// Info header id of key-value pairs.
const INFO_KEY_VALUE: u32 = 1;
/// The bytes before the header words: magic, flags, seqid, header size.
const FIXED_LEN: usize = 10;
/// The most header words the 16-bit size field may claim that Apache's C++ library accepts
/// (16383 words, 64 KiB less 4 bytes).
const MAX_HEADER_WORDS: usize = 16383;

/// A transform applied to the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transform {
    /// zlib (RFC 1950) compression, transform id 1.
    Zlib,
}

impl Transform {
    /// The id on the wire.
    pub const fn id(self) -> u32 {
        match self {
            Transform::Zlib => 1,
        }
    }

    fn from_id(id: u32) -> Option<Transform> {
        match id {
            1 => Some(Transform::Zlib),
            _ => None,
        }
    }
}

/// Everything a header frame says besides its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFrame {
    /// The frame's sequence id (Apache's libraries write the message's seqid here).
    pub seqid: i32,
    /// The flags word (no flag is defined; kept and echoed).
    pub flags: u16,
    /// The protocol of the payload.
    pub protocol: Protocol,
    /// The transforms, in the order they were applied when writing.
    pub transforms: Vec<Transform>,
    /// The key-value info headers.
    pub headers: Headers,
}

impl HeaderFrame {
    /// A frame of `protocol` with `seqid`, no transform and no headers.
    pub fn new(protocol: Protocol, seqid: i32) -> Self {
        HeaderFrame { seqid, flags: 0, protocol, transforms: Vec::new(), headers: Headers::new() }
    }
}

/// The protocol id of `protocol`.
const fn protocol_id(protocol: Protocol) -> u32 {
    match protocol {
        Protocol::Binary => 0,
        Protocol::Compact => 2,
    }
}

#[cfg(test)]
mod tests;
