//! Reading a header frame: every size checked against the bytes that are there.

use bytes::{Buf, Bytes};

use super::error::HeaderError;
use super::headers::{Headers, WIRE_PAIRS, WirePairs};
use super::{FIXED_LEN, HEADER_MAGIC, HeaderFrame, INFO_KEY_VALUE, MAX_HEADER_WORDS, Transform, zlib};
use crate::codec::Limits;
use crate::service::Protocol;

/// Reads a header frame (the bytes after its length prefix): what it says, and its payload with
/// the transforms undone (a zlib payload inflates to at most [`Limits::max_frame`]). Keys and
/// values share `frame`'s buffer; nothing is copied but an inflated payload.
pub fn decode(frame: Bytes, limits: Limits) -> Result<(HeaderFrame, Bytes), HeaderError> {
    decode_seeing(frame, limits, |_, _| {})
}

/// [`decode`], showing each info header to `seen` as it is read (a key sent twice is shown
/// twice, its last value last): what a reader of a few headers learns without another pass.
pub(crate) fn decode_seeing(
    frame: Bytes,
    limits: Limits,
    seen: impl FnMut(&[u8], &[u8]),
) -> Result<(HeaderFrame, Bytes), HeaderError> {
    let Some(&[m0, m1, f0, f1, s0, s1, s2, s3, w0, w1]) = frame.first_chunk::<FIXED_LEN>() else {
        return Err(HeaderError::TooShort { len: frame.len() });
    };
    let magic = u16::from_be_bytes([m0, m1]);
    if magic != HEADER_MAGIC {
        return Err(HeaderError::NoMagic { found: magic });
    }
    let flags = u16::from_be_bytes([f0, f1]);
    let seqid = i32::from_be_bytes([s0, s1, s2, s3]);
    let words = u16::from_be_bytes([w0, w1]);
    let left = frame.len() - FIXED_LEN;
    let header_len = usize::from(words) * 4;
    if usize::from(words) > MAX_HEADER_WORDS || header_len > left {
        return Err(HeaderError::HeaderPastFrame { words, left });
    }
    let end = FIXED_LEN + header_len;
    let mut cursor = Cursor { rest: &frame[FIXED_LEN..end] };
    let protocol = match cursor.varint()? {
        0 => Protocol::Binary,
        2 => Protocol::Compact,
        other => return Err(HeaderError::UnknownProtocol(other)),
    };
    let count = cursor.varint()?;
    if usize::try_from(count).map_or(true, |count| count > cursor.left()) {
        return Err(HeaderError::TooManyTransforms { count, left: cursor.left() });
    }
    let mut transforms = Vec::new();
    for _ in 0..count {
        let id = cursor.varint()?;
        transforms.push(Transform::from_id(id).ok_or(HeaderError::UnknownTransform(id))?);
    }
    let read = read_headers(&frame, cursor, seen)?;
    let mut payload = frame.slice(end..);
    for transform in transforms.iter().rev() {
        payload = match transform {
            Transform::Zlib => Bytes::from(zlib::inflate(&payload, limits.max_frame)?),
        };
    }
    let headers = match read {
        ReadHeaders::None => Headers::new(),
        // The frame's own bytes, cut to the pairs: no other reference to its buffer.
        ReadHeaders::InPlace { at, len, count } => {
            let mut wire = frame;
            wire.truncate(at + len);
            wire.advance(at);
            Headers::from_wire(wire, count)
        }
        ReadHeaders::Listed(headers) => headers,
    };
    Ok((HeaderFrame { seqid, flags, protocol, transforms, headers }, payload))
}

/// The info headers of a frame, as [`read_headers`] found them.
enum ReadHeaders {
    None,
    /// `count` pairs, with distinct keys, in the frame's bytes `at..at + len`.
    InPlace {
        at: usize,
        len: usize,
        count: usize,
    },
    /// Too many to keep in place, or a key came twice.
    Listed(Headers),
}

/// The info headers `cursor` reads (up to the end of the header words), checked, each shown to
/// `seen`; kept in `frame`'s bytes unless there are more than [`WIRE_PAIRS`] or a key comes twice.
fn read_headers(
    frame: &Bytes,
    mut cursor: Cursor<'_>,
    mut seen: impl FnMut(&[u8], &[u8]),
) -> Result<ReadHeaders, HeaderError> {
    let info = cursor.rest;
    // The length of the pairs read so far, their keys (the first few), and how many there are.
    let (mut read, mut keys, mut count) = (0, [&[][..]; WIRE_PAIRS], 0);
    let mut in_place = true;
    while cursor.left() > 0 {
        // 0 is padding; an unknown id means none after it is known either: skip to the payload.
        if cursor.varint()? != INFO_KEY_VALUE {
            break;
        }
        let mut pairs = cursor.varint()?;
        while pairs > 0 && cursor.left() > 0 {
            let key = cursor.string()?;
            seen(key, cursor.string()?);
            in_place = in_place && count < WIRE_PAIRS && !keys[..count].contains(&key);
            if in_place {
                keys[count] = key;
            }
            count += 1;
            pairs -= 1;
        }
        read = info.len() - cursor.left();
    }
    let wire = &info[..read];
    Ok(match (count, in_place) {
        (0, _) => ReadHeaders::None,
        (_, true) => {
            ReadHeaders::InPlace { at: wire.as_ptr().addr() - frame.as_ptr().addr(), len: read, count }
        }
        (_, false) => ReadHeaders::Listed(
            WirePairs::new(wire).map(|(k, v)| (frame.slice_ref(k), frame.slice_ref(v))).collect(),
        ),
    })
}

/// Where the payload of a header frame without transforms starts, and its protocol, read without
/// the info headers (for a caller that wants none of them): `None` if `frame` has transforms or
/// does not read as a header frame (then [`decode`] says what is wrong).
pub fn plain_payload_at(frame: &[u8]) -> Option<(Protocol, usize)> {
    let &[m0, m1, _, _, _, _, _, _, w0, w1, protocol, transforms, ..] = frame else { return None };
    let words = usize::from(u16::from_be_bytes([w0, w1]));
    let end = FIXED_LEN + words * 4;
    if u16::from_be_bytes([m0, m1]) != HEADER_MAGIC || words == 0 || end > frame.len() || transforms != 0 {
        return None;
    }
    let protocol = match protocol {
        0 => Protocol::Binary,
        2 => Protocol::Compact,
        _ => return None,
    };
    Some((protocol, end))
}

/// The sequence id of a header frame, from its fixed part; `None` if `frame` is not one.
pub fn frame_seqid(frame: &[u8]) -> Option<i32> {
    match *frame {
        [0x0F, 0xFF, _, _, s0, s1, s2, s3, ..] => Some(i32::from_be_bytes([s0, s1, s2, s3])),
        _ => None,
    }
}

/// Reads varints and strings from the header words of a frame, never past their end.
struct Cursor<'a> {
    /// The header words not read yet.
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.rest.len()
    }

    /// An unsigned LEB128 varint of at most 32 bits (5 bytes), as the compact protocol writes.
    fn varint(&mut self) -> Result<u32, HeaderError> {
        // Counts and lengths under 128 (nearly all) are one byte.
        if let [byte @ 0..0x80, rest @ ..] = self.rest {
            self.rest = rest;
            return Ok(u32::from(*byte));
        }
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let [byte, rest @ ..] = self.rest else {
                return Err(HeaderError::BadVarint("runs past the header's end"));
            };
            self.rest = rest;
            if shift == 28 && *byte > 0x0F {
                return Err(HeaderError::BadVarint("overflows 32 bits"));
            }
            value |= u32::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(HeaderError::BadVarint("overflows 32 bits"))
    }

    /// A varint length, then that many bytes.
    fn string(&mut self) -> Result<&'a [u8], HeaderError> {
        let len = self.varint()?;
        let left = self.left();
        match usize::try_from(len).ok().and_then(|len| self.rest.split_at_checked(len)) {
            Some((s, rest)) => {
                self.rest = rest;
                Ok(s)
            }
            None => Err(HeaderError::StringPastHeader { len: u64::from(len), left }),
        }
    }
}
