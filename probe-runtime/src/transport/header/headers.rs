//! The key-value info headers of a header frame.

use std::fmt;

use bytes::Bytes;

/// Key-value pairs as a header frame carries them: byte strings, kept exactly as received (the
/// spec forbids altering them), in order, each key at most once (a key sent twice keeps its last
/// value, as Apache's libraries do).
///
/// Lookups are linear: a call carries a handful of headers, and a scan of a few short keys beats
/// hashing them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(Bytes, Bytes)>,
}

impl Headers {
    /// No headers.
    pub const fn new() -> Self {
        Headers { entries: Vec::new() }
    }

    /// The value of `key` as text; `None` if absent or not UTF-8 (see [`Headers::get_bytes`]).
    pub fn get(&self, key: &str) -> Option<&str> {
        std::str::from_utf8(self.get_bytes(key.as_bytes())?).ok()
    }

    /// The value of `key` as it was received.
    pub fn get_bytes(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| &v[..])
    }

    /// Whether `key` is there.
    pub fn contains(&self, key: &str) -> bool {
        self.get_bytes(key.as_bytes()).is_some()
    }

    /// Sets `key` to `value`, replacing the value it had.
    pub fn insert(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        let (key, value) = (key.into(), value.into());
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Sets `key` to `value` unless `key` has a value already.
    pub fn insert_if_absent(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        let key = key.into();
        if !self.entries.iter().any(|(k, _)| *k == key) {
            self.entries.push((key, value.into()));
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Bytes> {
        let at = self.entries.iter().position(|(k, _)| k == key.as_bytes())?;
        Some(self.entries.remove(at).1)
    }

    /// Adds every header of `other`, replacing values of keys both have.
    pub fn extend_from(&mut self, other: &Headers) {
        for (k, v) in &other.entries {
            self.insert(k.clone(), v.clone());
        }
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + Clone {
        self.entries.iter().map(|(k, v)| (&k[..], &v[..]))
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<Bytes>, V: Into<Bytes>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (k, v) in iter {
            headers.insert(k, v);
        }
        headers
    }
}

impl fmt::Debug for Headers {
    /// Keys and values as escaped text: they come from peers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|(k, v)| (k.escape_ascii().to_string(), v.escape_ascii().to_string())),
            )
            .finish()
    }
}
