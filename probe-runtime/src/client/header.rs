//! Reading a message header in place (no copy of the name) and writing a call with its name
//! prefixed `Service:`: the client's hot path, which must not allocate per call.
//!
//! Only the forms probe's own encoder writes are read here (strict binary, compact); anything else
//! (an old non-strict binary reply) is left to the codec's full decoder by returning `None`.

use bytes::{BufMut, BytesMut};

use crate::codec::MessageType;
use crate::service::Protocol;
use crate::transport::Framing;

/// A message header, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peeked<'a> {
    pub(crate) kind: MessageType,
    pub(crate) seqid: i32,
    pub(crate) name: &'a [u8],
    /// Where the name's length field starts.
    len_at: usize,
    /// Where the name starts.
    name_at: usize,
    /// Where the body (the arguments or result struct) starts.
    body_at: usize,
}

impl Peeked<'_> {
    /// Where the body (the arguments or result struct) starts.
    pub(super) fn body_at(&self) -> usize {
        self.body_at
    }

    /// Whether the name is prefixed `service:` already.
    pub(super) fn has_prefix(&self, service: &str) -> bool {
        self.name.len() > service.len()
            && self.name.starts_with(service.as_bytes())
            && self.name[service.len()] == b':'
    }

    /// Whether the message names `method`, or `service:method` (what a probe server answers to a
    /// call sent with the service prefix).
    pub(super) fn names(&self, service: &str, method: &str) -> bool {
        let name = self.name;
        name == method.as_bytes()
            || (name.len() == service.len() + 1 + method.len()
                && name.starts_with(service.as_bytes())
                && name[service.len()] == b':'
                && name.ends_with(method.as_bytes()))
    }
}

/// The header of `message` in `protocol`, if it is strict binary or compact and whole.
pub(crate) fn peek(protocol: Protocol, message: &[u8]) -> Option<Peeked<'_>> {
    match protocol {
        Protocol::Binary => {
            let [0x80, 0x01, _, kind, l0, l1, l2, l3, ref rest @ ..] = *message else { return None };
            let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
            let (name, rest) = rest.split_at_checked(len)?;
            let seqid = i32::from_be_bytes(*rest.first_chunk::<4>()?);
            let kind = MessageType::try_from(kind).ok()?;
            Some(Peeked { kind, seqid, name, len_at: 4, name_at: 8, body_at: 8 + len + 4 })
        }
        Protocol::Compact => {
            let [0x82, kind_version, ref rest @ ..] = *message else { return None };
            if kind_version & 0x1f != 1 {
                return None;
            }
            let kind = MessageType::try_from(kind_version >> 5).ok()?;
            let (seqid, n) = varint(rest)?;
            let len_at = 2 + n;
            let (len, m) = varint(message.get(len_at..)?)?;
            let name_at = len_at + m;
            let name = message.get(name_at..name_at.checked_add(len as usize)?)?;
            let body_at = name_at + name.len();
            Some(Peeked { kind, seqid: seqid as i32, name, len_at, name_at, body_at })
        }
    }
}

/// A compact varint (at most 5 bytes for 32 bits) and its length.
fn varint(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u32;
    for (i, &b) in bytes.iter().take(5).enumerate() {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn put_varint(mut value: u32, out: &mut BytesMut) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

fn varint_len(value: u32) -> usize {
    match value {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        0x20_0000..0x1000_0000 => 4,
        _ => 5,
    }
}

/// Appends `message` to `out` as it goes on the wire with its name prefixed `service:`: the
/// prefixed header is written straight into the outgoing buffer, the rest copied once, as an
/// unprefixed message would be; a message whose name has the prefix already (a channel encodes
/// it so when every node it may reach wants it) is framed as it is. `false` (nothing appended)
/// if the header cannot be read here or the frame would be too long.
pub(super) fn encode_prefixed(
    protocol: Protocol,
    framing: Framing,
    message: &[u8],
    service: &str,
    out: &mut BytesMut,
) -> bool {
    let Some(header) = peek(protocol, message) else { return false };
    if header.has_prefix(service) {
        let Ok(len) = i32::try_from(message.len()) else { return false };
        out.reserve(4 + message.len());
        if framing == Framing::Framed {
            out.put_i32(len);
        }
        out.extend_from_slice(message);
        return true;
    }
    let added = service.len() + 1;
    let Ok(name_len) = u32::try_from(header.name.len() + added) else { return false };
    let (len_field, new_len_field) = match protocol {
        Protocol::Binary => (4, 4),
        Protocol::Compact => (header.name_at - header.len_at, varint_len(name_len)),
    };
    let total = message.len() - len_field + new_len_field + added;
    let Ok(frame_len) = i32::try_from(total) else { return false };
    out.reserve(4 + total);
    if framing == Framing::Framed {
        out.put_i32(frame_len);
    }
    // The binary protocol's header up to the name is one word: copied as one (a slice of
    // unknown length is a call to memcpy).
    match <[u8; 4]>::try_from(&message[..header.len_at]) {
        Ok(word) => out.put_slice(&word),
        Err(_) => out.extend_from_slice(&message[..header.len_at]),
    }
    match protocol {
        Protocol::Binary => out.put_u32(name_len),
        Protocol::Compact => put_varint(name_len, out),
    }
    out.extend_from_slice(service.as_bytes());
    out.put_u8(b':');
    out.extend_from_slice(&message[header.name_at..]);
    true
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::codec::{ApplicationException, Limits, MessageHeader};

    fn message(protocol: Protocol, name: &'static str, seqid: i32) -> Bytes {
        let mut buf = BytesMut::new();
        let header = MessageHeader::new(name, MessageType::Call, seqid);
        let body = ApplicationException::unknown_method("x");
        assert!(protocol.encode_message(&header, &body, &mut buf).is_ok());
        buf.freeze()
    }

    #[test]
    fn peeks_what_the_codec_writes() {
        for protocol in [Protocol::Binary, Protocol::Compact] {
            for seqid in [0, 1, 127, 128, 300_000, i32::MAX, -1] {
                let m = message(protocol, "say", seqid);
                let got = peek(protocol, &m).expect("a header");
                assert_eq!((got.kind, got.seqid, got.name), (MessageType::Call, seqid, &b"say"[..]));
                let (_, body) = protocol.decode_header(m.clone(), Limits::default()).unwrap();
                assert_eq!(&m[got.body_at()..], &body[..]);
                assert!(got.names("Demo", "say") && !got.names("Demo", "sa"));
                for cut in 0..got.name_at + 3 {
                    assert!(peek(protocol, &m[..cut]).is_none_or(|p| p.seqid == seqid), "{protocol:?} {cut}");
                }
            }
        }
    }

    #[test]
    fn a_prefixed_call_decodes_as_the_codec_would_write_it() {
        for protocol in [Protocol::Binary, Protocol::Compact] {
            for framing in [Framing::Framed, Framing::Unframed] {
                let long: &'static str = "m".repeat(126).leak();
                for name in ["say", long] {
                    let m = message(protocol, name, 77);
                    let mut out = BytesMut::new();
                    assert!(encode_prefixed(protocol, framing, &m, "Demo", &mut out));
                    let mut out = out.freeze();
                    if framing == Framing::Framed {
                        let len = i32::from_be_bytes(out[..4].try_into().unwrap());
                        assert_eq!(len as usize, out.len() - 4);
                        out = out.slice(4..);
                    }
                    let (header, body) = protocol.decode_header(out.clone(), Limits::default()).unwrap();
                    assert_eq!(header.name, format!("Demo:{name}"));
                    assert_eq!(header.seqid, 77);
                    assert!(m.ends_with(&body));
                    assert!(peek(protocol, &out).unwrap().names("Demo", name));
                }
            }
        }
    }

    #[test]
    fn a_call_encoded_with_its_prefix_goes_out_as_it_is() {
        for protocol in [Protocol::Binary, Protocol::Compact] {
            for framing in [Framing::Framed, Framing::Unframed] {
                let m = message(protocol, "Demo:say", 9);
                assert!(peek(protocol, &m).unwrap().has_prefix("Demo"));
                assert!(!peek(protocol, &m).unwrap().has_prefix("Dem"));
                let mut out = BytesMut::new();
                assert!(encode_prefixed(protocol, framing, &m, "Demo", &mut out));
                let framed = match framing {
                    Framing::Framed => [&(m.len() as u32).to_be_bytes()[..], &m[..]].concat(),
                    _ => m.to_vec(),
                };
                assert_eq!(out[..], framed[..], "{protocol:?} {framing:?}");
                // Another service's prefix is not this one's: prefixed again.
                let mut out = BytesMut::new();
                assert!(encode_prefixed(protocol, framing, &m, "Other", &mut out));
                assert!(out.ends_with(&m[m.len() - 4..]) && out.len() > framed.len());
            }
        }
    }
}
