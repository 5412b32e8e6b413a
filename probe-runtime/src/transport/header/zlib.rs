//! The zlib transform, with inflation bounded by the frame limit.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::error::HeaderError;

/// Inflates `input` (a zlib stream) to at most `limit` bytes: the output grows only as bytes
/// come out, never by more than the limit allows, so a zip bomb costs at most `limit + 1` bytes.
pub(super) fn inflate(input: &[u8], limit: usize) -> Result<Vec<u8>, HeaderError> {
    let mut inflater = Decompress::new(true);
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).clamp(64, limit.max(64)));
    loop {
        let (read, written) = (inflater.total_in(), inflater.total_out());
        let rest = input.get(usize::try_from(read).unwrap_or(usize::MAX)..).unwrap_or_default();
        let status = inflater
            .decompress_vec(rest, &mut out, FlushDecompress::Finish)
            .map_err(|e| HeaderError::Inflate(e.to_string()))?;
        if out.len() > limit {
            return Err(HeaderError::InflatedTooLarge { limit });
        }
        if status == Status::StreamEnd {
            return Ok(out);
        }
        if out.len() == out.capacity() {
            // At the limit, room for one more byte tells whether more would come.
            let grow = match limit.saturating_sub(out.len()) {
                0 => 1,
                room => out.len().max(64).min(room),
            };
            out.reserve_exact(grow);
        } else if inflater.total_in() == read && inflater.total_out() == written {
            return Err(HeaderError::Inflate("the stream ends before its end marker".into()));
        }
    }
}

/// Appends `input` deflated as a zlib stream to `out`.
pub(super) fn deflate(input: &[u8], out: &mut Vec<u8>) -> Result<(), HeaderError> {
    let mut deflater = Compress::new(Compression::fast(), true);
    out.reserve(input.len() / 2 + 64);
    loop {
        let read = usize::try_from(deflater.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(read..).unwrap_or_default();
        let status = deflater
            .compress_vec(rest, out, FlushCompress::Finish)
            .map_err(|_| HeaderError::Unwritable("zlib compression failed"))?;
        match status {
            Status::StreamEnd => return Ok(()),
            _ => out.reserve(out.capacity().max(64)),
        }
    }
}
