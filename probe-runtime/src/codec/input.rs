//! A bounds-checked cursor over the input `Bytes`, shared by both readers.

use bytes::Bytes;

use super::error::ProtocolError;

/// The bytes a reader decodes and how far it got. Every read checks bounds and fails with
/// [`ProtocolError::Incomplete`] instead of panicking.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    buf: Bytes,
    pos: usize,
}

impl Input {
    pub(crate) fn new(buf: Bytes) -> Self {
        Input { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The whole input.
    pub(crate) fn into_inner(self) -> Bytes {
        self.buf
    }

    #[cold]
    fn incomplete(&self, want: usize) -> ProtocolError {
        ProtocolError::Incomplete { needed: want.saturating_sub(self.remaining()) }
    }

    /// Reads one byte.
    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, ProtocolError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.incomplete(1)),
        }
    }

    /// Reads `N` bytes.
    #[inline]
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        match self.buf.get(self.pos..).and_then(|rest| rest.first_chunk::<N>()) {
            Some(a) => {
                self.pos += N;
                Ok(*a)
            }
            None => Err(self.incomplete(N)),
        }
    }

    /// Reads `n` bytes as a slice borrowed from the input.
    #[inline]
    pub(crate) fn slice(&mut self, n: usize) -> Result<&[u8], ProtocolError> {
        if n > self.remaining() {
            return Err(self.incomplete(n));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    /// Reads `n` bytes as a zero-copy `Bytes` sharing the input's buffer.
    #[inline]
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, ProtocolError> {
        if n > self.remaining() {
            return Err(self.incomplete(n));
        }
        let start = self.pos;
        self.pos += n;
        Ok(self.buf.slice(start..self.pos))
    }

    /// Skips `n` bytes.
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) -> Result<(), ProtocolError> {
        if n > self.remaining() {
            return Err(self.incomplete(n));
        }
        self.pos += n;
        Ok(())
    }

    /// Reads `n` bytes as an owned UTF-8 `String`.
    #[inline]
    pub(crate) fn string(&mut self, n: usize) -> Result<String, ProtocolError> {
        let s = self.slice(n)?;
        match std::str::from_utf8(s) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }

    /// Reads an unsigned LEB128 varint of at most `max_bytes` bytes (5 for 32 bits, 10 for 64).
    ///
    /// Bits beyond 64 in the last byte are rejected, as is a varint longer than `max_bytes`.
    #[inline]
    pub(crate) fn varint(&mut self, max_bytes: usize) -> Result<u64, ProtocolError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        // Fast path: one byte, the common case for lengths, small ints and field ids.
        if let Some(&b) = rest.first()
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut value: u64 = 0;
        for (i, &b) in rest.iter().take(max_bytes).enumerate() {
            let shift = 7 * i as u32;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(ProtocolError::invalid_data("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if b < 0x80 {
                self.pos += i + 1;
                return Ok(value);
            }
        }
        if rest.len() >= max_bytes {
            return Err(ProtocolError::invalid_data(format!("varint longer than {max_bytes} bytes")));
        }
        Err(ProtocolError::Incomplete { needed: 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(b: &'static [u8]) -> Input {
        Input::new(Bytes::from_static(b))
    }

    #[test]
    fn reads_and_reports_how_much_is_missing() {
        let mut i = input(&[1, 2, 3]);
        assert_eq!(i.u8(), Ok(1));
        assert_eq!(i.array::<4>(), Err(ProtocolError::Incomplete { needed: 2 }));
        assert_eq!(i.array::<2>(), Ok([2, 3]));
        assert_eq!(i.u8(), Err(ProtocolError::Incomplete { needed: 1 }));
        assert_eq!(i.position(), 3);
    }

    #[test]
    fn slices_share_the_buffer() {
        let mut i = input(b"abcdef");
        assert_eq!(i.bytes(2).as_deref(), Ok(&b"ab"[..]));
        assert!(i.advance(1).is_ok());
        assert_eq!(i.string(3).as_deref(), Ok("def"));
        assert_eq!(i.slice(1), Err(ProtocolError::Incomplete { needed: 1 }));
        assert_eq!(input(&[0xff]).string(1), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn varints() {
        assert_eq!(input(&[0x05]).varint(5), Ok(5));
        assert_eq!(input(&[0x96, 0x01]).varint(5), Ok(150));
        assert_eq!(input(&[0xff, 0xff, 0xff, 0xff, 0x0f]).varint(5), Ok(u64::from(u32::MAX)));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Input::new(Bytes::copy_from_slice(&max)).varint(10), Ok(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(matches!(
            Input::new(Bytes::copy_from_slice(&over)).varint(10),
            Err(ProtocolError::InvalidData(_))
        ));
        assert!(matches!(
            input(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).varint(5),
            Err(ProtocolError::InvalidData(_))
        ));
        assert_eq!(input(&[0x80, 0x80]).varint(5), Err(ProtocolError::Incomplete { needed: 1 }));
        assert_eq!(input(&[]).varint(5), Err(ProtocolError::Incomplete { needed: 1 }));
    }
}
