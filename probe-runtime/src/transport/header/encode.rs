//! Writing a header frame.

use bytes::{BufMut, BytesMut};

use super::error::HeaderError;
use super::{
    FIXED_LEN, HEADER_MAGIC, HeaderFrame, INFO_KEY_VALUE, MAX_HEADER_WORDS, Transform, protocol_id, zlib,
};

/// Appends the header frame of `frame` around `payload` to `out`, without the length prefix (the
/// framed writer adds it). Transforms are applied in order; headers are written when there are
/// any; the header words are padded with zeros to a multiple of 4 bytes.
pub fn encode(frame: &HeaderFrame, payload: &[u8], out: &mut BytesMut) -> Result<(), HeaderError> {
    if frame.transforms.is_empty() {
        return encode_plain(frame.protocol, frame.flags, frame.seqid, frame.headers.iter(), payload, out);
    }
    let mut header =
        Vec::with_capacity(16 + frame.headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>());
    varint(&mut header, protocol_id(frame.protocol));
    varint(&mut header, u32::try_from(frame.transforms.len()).map_err(|_| too_many())?);
    for transform in &frame.transforms {
        varint(&mut header, transform.id());
    }
    if !frame.headers.is_empty() {
        varint(&mut header, INFO_KEY_VALUE);
        varint(&mut header, u32::try_from(frame.headers.len()).map_err(|_| too_many())?);
        for (key, value) in frame.headers.iter() {
            string(&mut header, key)?;
            string(&mut header, value)?;
        }
    }
    header.resize(header.len().next_multiple_of(4), 0);
    let words = header.len() / 4;
    if words > MAX_HEADER_WORDS {
        return Err(HeaderError::Unwritable("the headers take more than 64 KiB"));
    }
    out.reserve(FIXED_LEN + header.len() + payload.len());
    out.put_u16(HEADER_MAGIC);
    out.put_u16(frame.flags);
    out.put_i32(frame.seqid);
    out.put_u16(words as u16);
    out.extend_from_slice(&header);
    match frame.transforms.as_slice() {
        [] => out.extend_from_slice(payload),
        transforms => {
            let mut data = payload.to_vec();
            for transform in transforms {
                data = match transform {
                    Transform::Zlib => {
                        let mut deflated = Vec::new();
                        zlib::deflate(&data, &mut deflated)?;
                        deflated
                    }
                };
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(())
}

/// Appends a header frame without transforms around `payload` to `out` (no length prefix), with
/// `pairs` as its info headers: what [`encode`] writes for such a frame, written straight into
/// `out` (sizes first, then the bytes; nothing else is allocated). A client's calls take this path.
pub fn encode_plain<'a>(
    protocol: crate::service::Protocol,
    flags: u16,
    seqid: i32,
    pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
    payload: &[u8],
    out: &mut BytesMut,
) -> Result<(), HeaderError> {
    encode_plain_into(protocol, flags, seqid, pairs, payload, false, out)
}

/// [`encode_plain`], after the frame's length word if `framed` (as the frame goes on the wire).
/// The header's room is made at once (zeros, which pad it) and written in place: a few appends in
/// all, not four per header.
pub(crate) fn encode_plain_into<'a>(
    protocol: crate::service::Protocol,
    flags: u16,
    seqid: i32,
    pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
    payload: &[u8],
    framed: bool,
    out: &mut BytesMut,
) -> Result<(), HeaderError> {
    let count = u32::try_from(pairs.len()).map_err(|_| too_many())?;
    // Protocol id and transform count (0): a byte each; then the pairs' group, if any.
    let mut len = 2;
    if count > 0 {
        len += varint_len(INFO_KEY_VALUE) + varint_len(count);
        for (key, value) in pairs.clone() {
            len += string_len(key)? + string_len(value)?;
        }
    }
    let padded = len.next_multiple_of(4);
    let words = padded / 4;
    if words > MAX_HEADER_WORDS {
        return Err(HeaderError::Unwritable("the headers take more than 64 KiB"));
    }
    let lead = if framed { 4 } else { 0 };
    let head_len = lead + FIXED_LEN + padded;
    let frame_len = i32::try_from(FIXED_LEN + padded + payload.len())
        .map_err(|_| HeaderError::Unwritable("a frame over 2 GiB"))?;
    out.reserve(head_len + payload.len());
    let start = out.len();
    out.resize(start + head_len, 0);
    let head = &mut out[start..];
    if framed {
        head[..4].copy_from_slice(&frame_len.to_be_bytes());
    }
    // The fixed part, the protocol id and the transform count (0).
    let [m0, m1] = HEADER_MAGIC.to_be_bytes();
    let [f0, f1] = flags.to_be_bytes();
    let [s0, s1, s2, s3] = seqid.to_be_bytes();
    let [w0, w1] = (words as u16).to_be_bytes();
    let fixed = [m0, m1, f0, f1, s0, s1, s2, s3, w0, w1, protocol_id(protocol) as u8, 0];
    head[lead..lead + fixed.len()].copy_from_slice(&fixed);
    if count > 0 {
        let mut at = put_varint_at(head, lead + fixed.len(), INFO_KEY_VALUE);
        at = put_varint_at(head, at, count);
        for (key, value) in pairs {
            for s in [key, value] {
                at = put_varint_at(head, at, s.len() as u32);
                head[at..at + s.len()].copy_from_slice(s);
                at += s.len();
            }
        }
    }
    out.extend_from_slice(payload);
    Ok(())
}

/// The start of a length-prefixed header frame without transforms, built before its payload is
/// written: the frame's length, the fixed part and the info headers, in a small array (a call's
/// usual few short headers fit; [`FrameHead::pair`] says when one more does not). Its bytes are
/// what [`encode_plain_into`] writes before the payload when framed.
#[derive(Debug, Clone)]
pub(crate) struct FrameHead {
    bytes: [u8; FRAME_HEAD],
    /// Where the next byte goes; once finished, where the head ends.
    len: u8,
    /// Headers written.
    count: u8,
}

/// The most bytes a [`FrameHead`] holds.
const FRAME_HEAD: usize = 164;
/// Where a [`FrameHead`]'s header words start (after the length word and the fixed part).
const HEAD_WORDS_AT: usize = 4 + FIXED_LEN;
/// Where its key-value pairs start: after the protocol id, the transform count (0), the info
/// header id and the pair count (each a byte).
const HEAD_PAIRS_AT: usize = HEAD_WORDS_AT + 4;

impl FrameHead {
    /// The head of a frame of `protocol` with `flags` and `seqid`, without headers yet.
    #[inline]
    pub(crate) fn new(protocol: crate::service::Protocol, flags: u16, seqid: i32) -> Self {
        let mut bytes = [0; FRAME_HEAD];
        let [m0, m1] = HEADER_MAGIC.to_be_bytes();
        let [f0, f1] = flags.to_be_bytes();
        let [s0, s1, s2, s3] = seqid.to_be_bytes();
        let (id, info) = (protocol_id(protocol) as u8, INFO_KEY_VALUE as u8);
        // The length and the header size are set when the head is finished; the pair count too.
        bytes[4..HEAD_PAIRS_AT].copy_from_slice(&[m0, m1, f0, f1, s0, s1, s2, s3, 0, 0, id, 0, info, 0]);
        FrameHead { bytes, len: HEAD_PAIRS_AT as u8, count: 0 }
    }

    /// Adds the header `key` = `value`; `false` (nothing added) if it does not fit. (Inlined:
    /// a key known where it is called is copied without a call to `memcpy`.)
    #[inline(always)]
    pub(crate) fn pair(&mut self, key: &[u8], value: &[u8]) -> bool {
        let at = usize::from(self.len);
        // Strings under 128 bytes take a one-byte length (longer ones do not fit); room is kept
        // for the padding after the pair.
        let end = at + 2 + key.len() + value.len();
        if key.len() >= 0x80 || value.len() >= 0x80 || end + 3 > FRAME_HEAD {
            return false;
        }
        self.bytes[at] = key.len() as u8;
        self.bytes[at + 1..at + 1 + key.len()].copy_from_slice(key);
        let at = at + 1 + key.len();
        self.bytes[at] = value.len() as u8;
        self.bytes[at + 1..end].copy_from_slice(value);
        self.len = end as u8;
        self.count += 1;
        true
    }

    /// Finishes the head for a payload of `payload_len` bytes.
    pub(crate) fn finish(&mut self, payload_len: usize) -> Result<(), HeaderError> {
        // Without headers the info header id and count are not written (zeros pad instead).
        let end = match self.count {
            0 => {
                self.bytes[HEAD_WORDS_AT + 2] = 0;
                HEAD_WORDS_AT + 2
            }
            count => {
                self.bytes[HEAD_PAIRS_AT - 1] = count;
                usize::from(self.len)
            }
        };
        // The zeros after `end` pad the header to whole words.
        let padded = (end - HEAD_WORDS_AT).next_multiple_of(4);
        let end = HEAD_WORDS_AT + padded;
        self.bytes[HEAD_WORDS_AT - 2..HEAD_WORDS_AT].copy_from_slice(&((padded / 4) as u16).to_be_bytes());
        let frame = i32::try_from(end - 4 + payload_len)
            .map_err(|_| HeaderError::Unwritable("a frame over 2 GiB"))?;
        self.bytes[..4].copy_from_slice(&frame.to_be_bytes());
        self.len = end as u8;
        Ok(())
    }

    /// The head's bytes (once finished, all that goes before the payload).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Writes `value` as a varint at `at` in `buf` (which has room: the header's length was counted
/// first); where it ends.
fn put_varint_at(buf: &mut [u8], mut at: usize, mut value: u32) -> usize {
    while value >= 0x80 {
        buf[at] = (value as u8 & 0x7F) | 0x80;
        value >>= 7;
        at += 1;
    }
    buf[at] = value as u8;
    at + 1
}

/// The bytes of a varint length and the string after it.
fn string_len(s: &[u8]) -> Result<usize, HeaderError> {
    let len = u32::try_from(s.len()).map_err(|_| HeaderError::Unwritable("a header string over 4 GiB"))?;
    Ok(varint_len(len) + s.len())
}

fn varint_len(value: u32) -> usize {
    (32 - value.leading_zeros() as usize).max(1).div_ceil(7)
}

fn too_many() -> HeaderError {
    HeaderError::Unwritable("more than 2^32 transforms or headers")
}

fn varint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn string(out: &mut Vec<u8>, s: &[u8]) -> Result<(), HeaderError> {
    varint(out, u32::try_from(s.len()).map_err(|_| HeaderError::Unwritable("a header string over 4 GiB"))?);
    out.extend_from_slice(s);
    Ok(())
}
