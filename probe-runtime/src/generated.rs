//! Small helpers that generated code calls; reached through `probe::__codegen`.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use crate::codec::{MapHeader, ProtocolError, TType};

/// Containers generated code fills while decoding.
pub trait WithCapacity {
    /// An empty container with room for `n` entries.
    fn with_capacity(n: usize) -> Self;
}

impl<T> WithCapacity for Vec<T> {
    fn with_capacity(n: usize) -> Self {
        Vec::with_capacity(n)
    }
}

impl<T: Hash + Eq> WithCapacity for HashSet<T> {
    fn with_capacity(n: usize) -> Self {
        HashSet::with_capacity(n)
    }
}

impl<K: Hash + Eq, V> WithCapacity for HashMap<K, V> {
    fn with_capacity(n: usize) -> Self {
        HashMap::with_capacity(n)
    }
}

/// An empty container with room for `n` entries (the caller caps `n` by the bytes available).
#[inline]
pub fn with_capacity<C: WithCapacity>(n: usize) -> C {
    C::with_capacity(n)
}

/// Checks a non-empty list's or set's element type against the IDL.
#[inline]
pub fn check_elem(found: TType, expected: TType, len: usize) -> Result<(), ProtocolError> {
    if len == 0 || found == expected {
        Ok(())
    } else {
        Err(ProtocolError::WrongElementType { what: "list or set element", found, expected })
    }
}

/// Checks a non-empty map's key and value types against the IDL.
#[inline]
pub fn check_map(header: &MapHeader, key: TType, value: TType) -> Result<(), ProtocolError> {
    if header.len == 0 {
        return Ok(());
    }
    if header.key != key {
        return Err(ProtocolError::WrongElementType { what: "map key", found: header.key, expected: key });
    }
    if header.value != value {
        return Err(ProtocolError::WrongElementType { what: "map value", found: header.value, expected: value });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_checks() {
        assert!(check_elem(TType::I32, TType::I32, 3).is_ok());
        assert!(check_elem(TType::Stop, TType::I32, 0).is_ok());
        assert!(check_elem(TType::I64, TType::I32, 1).is_err());
        let h = MapHeader { key: TType::String, value: TType::I32, len: 2 };
        assert!(check_map(&h, TType::String, TType::I32).is_ok());
        assert!(check_map(&h, TType::String, TType::I64).is_err());
    }
}
