//! Telling from a connection's first bytes which protocol and framing the peer speaks.

use super::error::WireError;
use super::{Framing, WireFormat};
use crate::service::Protocol;

/// The first byte of a strict binary message (the high byte of version 1).
const BINARY_STRICT_0: u8 = 0x80;
/// The second byte of a strict binary message (the low byte of version 1).
const BINARY_STRICT_1: u8 = 0x01;
/// The first byte of a compact message (its protocol id).
const COMPACT_ID: u8 = 0x82;
/// The bytes of a header frame's magic (0x0FFF), after its length.
const HEADER_0: u8 = 0x0F;
const HEADER_1: u8 = 0xFF;
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Which [`WireFormat`] a connection speaks, from the first bytes it sent.
///
/// Returns `Ok(None)` while `prefix` is too short to tell (at most 15 bytes are needed, 6 but for
/// header frames), and an error for bytes no Thrift peer sends first.
///
/// - `80 01`: unframed strict binary; `82`: unframed compact.
/// - Otherwise the first 4 bytes are a big-endian length, and byte 4 tells whose: `80 01` is a
///   framed strict binary message, `82` a framed compact one, `00` a framed old non-strict binary
///   message (whose name length starts with a zero byte), and anything else the first byte of the
///   method name of an unframed old non-strict binary message; `0F FF` is a header frame
///   (THeader), whose protocol is told by byte 14, the first of its header words (each frame
///   names its protocol again; this one is what logs show).
pub fn detect(prefix: &[u8]) -> Result<Option<WireFormat>, WireError> {
    let unframed = |p| Ok(Some(WireFormat::new(p, Framing::Unframed)));
    let framed = |p| Ok(Some(WireFormat::new(p, Framing::Framed)));
    match *prefix {
        [] | [BINARY_STRICT_0] => Ok(None),
        [BINARY_STRICT_0, BINARY_STRICT_1, ..] => unframed(Protocol::Binary),
        [COMPACT_ID, ..] => unframed(Protocol::Compact),
        // A TLS record header (handshake, version 3.x): a frame or name of over 369 MB otherwise.
        [TLS_HANDSHAKE, 0x03, ..] => Err(WireError::NotThrift(
            "a TLS client on a port that serves no TLS: serve TLS with PROBE_SERVER_TLS_MODE=optional \
             (or ServerBuilder::tls), or connect without TLS"
                .to_owned(),
        )),
        // A length with the high bit set is negative: no Thrift message starts that way.
        [b0, ..] if b0 >= 0x80 => Err(not_thrift(prefix)),
        [_, _, _, _, BINARY_STRICT_0, BINARY_STRICT_1, ..] => framed(Protocol::Binary),
        [_, _, _, _, BINARY_STRICT_0] => Ok(None),
        [_, _, _, _, BINARY_STRICT_0, _, ..] => Err(not_thrift(prefix)),
        [_, _, _, _, COMPACT_ID, ..] => framed(Protocol::Compact),
        [_, _, _, _, HEADER_0, HEADER_1, _, _, _, _, _, _, _, _, id, ..] => match id {
            0 => Ok(Some(WireFormat::new(Protocol::Binary, Framing::Header))),
            2 => Ok(Some(WireFormat::new(Protocol::Compact, Framing::Header))),
            _ => Err(not_thrift(prefix)),
        },
        [_, _, _, _, HEADER_0] | [_, _, _, _, HEADER_0, HEADER_1, ..] => Ok(None),
        [_, _, _, _, 0, ..] => framed(Protocol::Binary),
        [_, _, _, _, _, ..] => unframed(Protocol::Binary),
        _ => Ok(None),
    }
}

fn not_thrift(prefix: &[u8]) -> WireError {
    let shown: Vec<String> = prefix.iter().take(8).map(|b| format!("{b:02x}")).collect();
    WireError::NotThrift(format!("a connection starting with bytes [{}] speaks no Thrift", shown.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(p: Protocol, f: Framing) -> Option<WireFormat> {
        Some(WireFormat::new(p, f))
    }

    #[test]
    fn unframed_protocols_need_one_or_two_bytes() {
        assert_eq!(detect(&[]).ok(), Some(None));
        assert_eq!(detect(&[0x80]).ok(), Some(None));
        assert_eq!(detect(&[0x80, 0x01]).ok(), Some(wire(Protocol::Binary, Framing::Unframed)));
        assert_eq!(detect(&[0x82]).ok(), Some(wire(Protocol::Compact, Framing::Unframed)));
        assert!(detect(&[0x80, 0x02]).is_err());
    }

    #[test]
    fn framed_protocols_are_told_by_byte_four() {
        let fb = [0, 0, 0, 30, 0x80, 0x01, 0, 1];
        assert_eq!(detect(&fb).ok(), Some(wire(Protocol::Binary, Framing::Framed)));
        let fc = [0, 0, 0, 30, 0x82, 0x21];
        assert_eq!(detect(&fc).ok(), Some(wire(Protocol::Compact, Framing::Framed)));
        let f_old = [0, 0, 0, 30, 0, 0, 0, 3];
        assert_eq!(detect(&f_old).ok(), Some(wire(Protocol::Binary, Framing::Framed)));
        for short in 1..5 {
            assert_eq!(detect(&fb[..short]).ok(), Some(None), "{short} bytes");
        }
        assert_eq!(detect(&fb[..5]).ok(), Some(None));
    }

    #[test]
    fn header_frames_are_told_by_their_magic_and_protocol_id() {
        let header = [0, 0, 0, 30, 0x0F, 0xFF, 0, 0, 0, 0, 0, 1, 0, 1, 2, 0];
        assert_eq!(detect(&header).ok(), Some(wire(Protocol::Compact, Framing::Header)));
        let mut binary = header;
        binary[14] = 0;
        assert_eq!(detect(&binary).ok(), Some(wire(Protocol::Binary, Framing::Header)));
        for short in 5..15 {
            assert_eq!(detect(&header[..short]).ok(), Some(None), "{short} bytes");
        }
        let mut json = header;
        json[14] = 1;
        assert!(detect(&json).is_err());
    }

    #[test]
    fn old_binary_starts_with_the_name() {
        let old = [0, 0, 0, 3, b's', b'a', b'y', 1, 0, 0, 0, 1];
        assert_eq!(detect(&old).ok(), Some(wire(Protocol::Binary, Framing::Unframed)));
    }

    #[test]
    fn a_tls_client_hello_is_named() {
        let hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
        let e = detect(&hello).unwrap_err().to_string();
        assert!(e.contains("a TLS client on a port that serves no TLS"), "{e}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(detect(&[0xff, 0, 0, 0]).is_err());
        assert!(detect(&[0x81]).is_err());
        assert!(detect(&[0, 0, 0, 9, 0x80, 0x7f]).is_err());
        // Text such as an HTTP request reads as an old binary name length of 1.2 G; the reader
        // refuses that length against its limits.
        assert_eq!(detect(b"GET / HTTP/1.1").ok(), Some(wire(Protocol::Binary, Framing::Unframed)));
    }
}
