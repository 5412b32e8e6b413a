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
    out.reserve(FIXED_LEN + padded + payload.len());
    // The fixed part, the protocol id and the transform count in one append.
    let [m0, m1] = HEADER_MAGIC.to_be_bytes();
    let [f0, f1] = flags.to_be_bytes();
    let [s0, s1, s2, s3] = seqid.to_be_bytes();
    let [w0, w1] = (words as u16).to_be_bytes();
    out.extend_from_slice(&[m0, m1, f0, f1, s0, s1, s2, s3, w0, w1, protocol_id(protocol) as u8, 0]);
    if count > 0 {
        put_varint(out, INFO_KEY_VALUE);
        put_varint(out, count);
        for (key, value) in pairs {
            put_varint(out, key.len() as u32);
            out.extend_from_slice(key);
            put_varint(out, value.len() as u32);
            out.extend_from_slice(value);
        }
    }
    out.extend_from_slice(&[0; 3][..padded - len]);
    out.extend_from_slice(payload);
    Ok(())
}

/// The bytes of a varint length and the string after it.
fn string_len(s: &[u8]) -> Result<usize, HeaderError> {
    let len = u32::try_from(s.len()).map_err(|_| HeaderError::Unwritable("a header string over 4 GiB"))?;
    Ok(varint_len(len) + s.len())
}

fn varint_len(value: u32) -> usize {
    (32 - value.leading_zeros() as usize).max(1).div_ceil(7)
}

fn put_varint(out: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
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
