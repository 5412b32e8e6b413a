//! The bounds a reader enforces on untrusted input, and the nesting counter that applies one.

use super::error::ProtocolError;

/// Bounds on what a reader accepts, so hostile input cannot exhaust memory or the stack.
///
/// Readers check every string and container length against these limits and against the bytes
/// left in the input before anything is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame (or unframed message) a transport accepts, in bytes. Default 16 MiB.
    ///
    /// Transports enforce it; readers never look past the bytes they were given.
    pub max_frame: usize,
    /// Deepest nesting of structs, lists, sets and maps, in decoding and in `skip`. Default 64.
    pub max_depth: usize,
    /// Most elements in one list or set, or entries in one map. Default 16 Mi (16,777,216).
    pub max_container_len: usize,
    /// Longest `string` or `binary`, in bytes. Default 16 MiB.
    pub max_string_len: usize,
    /// Longest method name in a message header, in bytes (the lower of this and
    /// `max_string_len` applies). Default 1 KiB: names are echoed in replies, errors and logs.
    pub max_method_name: usize,
}

impl Limits {
    /// The defaults: 16 MiB frames and strings, 16 Mi container elements, 64 levels of nesting,
    /// 1 KiB method names.
    pub const DEFAULT: Limits = Limits {
        max_frame: 16 * 1024 * 1024,
        max_depth: 64,
        max_container_len: 16 * 1024 * 1024,
        max_string_len: 16 * 1024 * 1024,
        max_method_name: 1024,
    };

    /// The longest method name these limits accept.
    #[inline]
    pub const fn method_name_limit(&self) -> usize {
        if self.max_method_name < self.max_string_len { self.max_method_name } else { self.max_string_len }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Counts how deep a reader is in nested structs and containers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Depth {
    current: usize,
    limit: usize,
}

impl Depth {
    pub(crate) fn new(limit: usize) -> Self {
        Depth { current: 0, limit }
    }

    /// Enters one level; fails past the limit.
    #[inline]
    pub(crate) fn enter(&mut self) -> Result<(), ProtocolError> {
        if self.current >= self.limit {
            return Err(ProtocolError::DepthLimit { limit: self.limit });
        }
        self.current += 1;
        Ok(())
    }

    /// Leaves one level.
    #[inline]
    pub(crate) fn leave(&mut self) {
        self.current = self.current.saturating_sub(1);
    }
}

/// Checks a length read off the wire: not over `limit`, and `len` elements of at least
/// `min_elem_size` bytes each fit in the `remaining` bytes of input.
///
/// Returns the length as `usize`. A length that cannot fit in the input is
/// [`ProtocolError::Incomplete`], because on an unframed stream more bytes may yet come.
#[inline]
pub(crate) fn check_len(
    what: &'static str,
    len: i64,
    limit: usize,
    min_elem_size: usize,
    remaining: usize,
) -> Result<usize, ProtocolError> {
    let len = usize::try_from(len).map_err(|_| ProtocolError::NegativeSize { what, len })?;
    if len > limit {
        return Err(ProtocolError::SizeLimit { what, len, limit });
    }
    // len <= limit <= usize::MAX and min_elem_size is at most 16, but saturate anyway.
    let need = len.saturating_mul(min_elem_size);
    if need > remaining {
        return Err(ProtocolError::Incomplete { needed: need - remaining });
    }
    Ok(len)
}

/// Converts a length being written into the `i32` both protocols carry.
#[inline]
pub(crate) fn write_len(what: &'static str, len: usize) -> Result<i32, ProtocolError> {
    i32::try_from(len).map_err(|_| ProtocolError::SizeLimit { what, len, limit: i32::MAX as usize })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_stops_at_the_limit() {
        let mut d = Depth::new(2);
        assert!(d.enter().is_ok());
        assert!(d.enter().is_ok());
        assert_eq!(d.enter(), Err(ProtocolError::DepthLimit { limit: 2 }));
        d.leave();
        assert!(d.enter().is_ok());
    }

    #[test]
    fn check_len_orders_its_checks() {
        assert_eq!(check_len("list", 3, 10, 4, 12), Ok(3));
        assert_eq!(
            check_len("list", -1, 10, 4, 12),
            Err(ProtocolError::NegativeSize { what: "list", len: -1 })
        );
        assert_eq!(
            check_len("list", 11, 10, 1, 100),
            Err(ProtocolError::SizeLimit { what: "list", len: 11, limit: 10 })
        );
        assert_eq!(check_len("list", 4, 10, 4, 12), Err(ProtocolError::Incomplete { needed: 4 }));
    }

    #[test]
    fn write_len_rejects_what_i32_cannot_carry() {
        assert_eq!(write_len("string", 5), Ok(5));
        assert!(write_len("string", i32::MAX as usize + 1).is_err());
    }
}
