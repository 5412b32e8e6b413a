//! The key-value info headers of a header frame.

use std::fmt;

use bytes::Bytes;

/// Received pairs kept in the form they came in (see [`Headers::from_wire`]) up to this many:
/// more are copied into a list of their own as they are read.
pub(super) const WIRE_PAIRS: usize = 8;

/// Key-value pairs as a header frame carries them: byte strings, kept exactly as received (the
/// spec forbids altering them), in order, each key at most once (a key sent twice keeps its last
/// value, as Apache's libraries do).
///
/// Headers read from a frame stay in the frame's bytes, as they came, until one is changed: a
/// call's few headers cost no allocation and no reference count each, and a lookup reads them
/// in place. Lookups are linear: a call carries a handful of headers, and a scan of a few short
/// keys beats hashing them.
#[derive(Clone, Default)]
pub struct Headers {
    /// Received pairs in wire form (groups of a varint count and varint-length-prefixed keys
    /// and values, as [`WirePairs`] reads them), checked when the frame was read, with distinct
    /// keys. Empty once any header was changed (or if none was received).
    wire: Bytes,
    /// The pairs in `wire`.
    wire_len: usize,
    /// Pairs set here; the received ones are moved here the first time one is changed.
    entries: Vec<(Bytes, Bytes)>,
}

impl Headers {
    /// No headers.
    pub const fn new() -> Self {
        Headers { wire: Bytes::new(), wire_len: 0, entries: Vec::new() }
    }

    /// Headers read in place from `wire`, the info headers of a frame that [`WirePairs`] reads
    /// as `len` pairs with distinct keys (the frame's decoder checked both).
    pub(super) fn from_wire(wire: Bytes, len: usize) -> Self {
        Headers { wire, wire_len: len, entries: Vec::new() }
    }

    /// The value of `key` as text; `None` if absent or not UTF-8 (see [`Headers::get_bytes`]).
    pub fn get(&self, key: &str) -> Option<&str> {
        std::str::from_utf8(self.get_bytes(key.as_bytes())?).ok()
    }

    /// The value of `key` as it was received.
    pub fn get_bytes(&self, key: &[u8]) -> Option<&[u8]> {
        match self.wire.is_empty() {
            true => self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| &v[..]),
            false => WirePairs::new(&self.wire).find(|(k, _)| *k == key).map(|(_, v)| v),
        }
    }

    /// Whether `key` is there.
    pub fn contains(&self, key: &str) -> bool {
        self.get_bytes(key.as_bytes()).is_some()
    }

    /// The pairs as a list that may change: the received ones are moved into it first.
    fn entries_mut(&mut self) -> &mut Vec<(Bytes, Bytes)> {
        if !self.wire.is_empty() {
            let wire = std::mem::take(&mut self.wire);
            self.entries =
                WirePairs::new(&wire).map(|(k, v)| (wire.slice_ref(k), wire.slice_ref(v))).collect();
            self.wire_len = 0;
        }
        &mut self.entries
    }

    /// Sets `key` to `value`, replacing the value it had.
    pub fn insert(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        let (key, value) = (key.into(), value.into());
        let entries = self.entries_mut();
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        }
    }

    /// Sets `key` to `value` unless `key` has a value already.
    pub fn insert_if_absent(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        let key = key.into();
        if !self.contains_bytes(&key) {
            self.entries_mut().push((key, value.into()));
        }
    }

    fn contains_bytes(&self, key: &[u8]) -> bool {
        self.get_bytes(key).is_some()
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Bytes> {
        if !self.contains_bytes(key.as_bytes()) {
            return None;
        }
        let entries = self.entries_mut();
        let at = entries.iter().position(|(k, _)| k == key.as_bytes())?;
        Some(entries.remove(at).1)
    }

    /// Adds every header of `other`, replacing values of keys both have.
    pub fn extend_from(&mut self, other: &Headers) {
        if self.is_empty() {
            *self = other.clone();
            return;
        }
        for (k, v) in other.shared_pairs() {
            self.insert(k, v);
        }
    }

    /// The pairs, in order, each part sharing these headers' buffers.
    fn shared_pairs(&self) -> impl Iterator<Item = (Bytes, Bytes)> + '_ {
        let wire = WirePairs::new(&self.wire).map(|(k, v)| (self.wire.slice_ref(k), self.wire.slice_ref(v)));
        wire.chain(self.entries.iter().cloned())
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + Clone + '_ {
        let pairs = match self.wire.is_empty() {
            true => Pairs::Listed(self.entries.iter()),
            false => Pairs::Wire(WirePairs::new(&self.wire)),
        };
        Iter { pairs, left: self.len() }
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        match self.wire.is_empty() {
            true => self.entries.len(),
            false => self.wire_len,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The pairs of [`Headers`], in order: [`Headers::iter`].
#[derive(Clone)]
struct Iter<'a> {
    pairs: Pairs<'a>,
    left: usize,
}

#[derive(Clone)]
enum Pairs<'a> {
    Listed(std::slice::Iter<'a, (Bytes, Bytes)>),
    Wire(WirePairs<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = match &mut self.pairs {
            Pairs::Listed(entries) => entries.next().map(|(k, v)| (&k[..], &v[..])),
            Pairs::Wire(pairs) => pairs.next(),
        }?;
        self.left = self.left.saturating_sub(1);
        Some(pair)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Reads the pairs of info headers in wire form: groups of a varint count and that many pairs,
/// each a varint length and that many bytes of key, then the same of value; a group that is not
/// a key-value group (its id is not 1) ends them. What the frame's decoder read and checked
/// (`decode`): here anything unreadable just ends the pairs.
#[derive(Clone)]
pub(super) struct WirePairs<'a> {
    rest: &'a [u8],
    /// Pairs left in the current group.
    group: u32,
}

impl<'a> WirePairs<'a> {
    pub(super) fn new(wire: &'a [u8]) -> Self {
        WirePairs { rest: wire, group: 0 }
    }

    fn varint(&mut self) -> Option<u32> {
        // Counts and lengths under 128 (nearly all) are one byte.
        if let [byte @ 0..0x80, rest @ ..] = self.rest {
            self.rest = rest;
            return Some(u32::from(*byte));
        }
        let mut value = 0u32;
        for (i, &byte) in self.rest.iter().enumerate().take(5) {
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let (s, rest) = self.rest.split_at_checked(len)?;
        self.rest = rest;
        Some(s)
    }

    fn pair(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        while self.group == 0 {
            if self.rest.is_empty() || self.varint()? != super::INFO_KEY_VALUE {
                return None;
            }
            self.group = self.varint()?;
        }
        if self.rest.is_empty() {
            return None;
        }
        self.group -= 1;
        Some((self.string()?, self.string()?))
    }
}

impl<'a> Iterator for WirePairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = self.pair();
        if pair.is_none() {
            self.rest = &[];
        }
        pair
    }
}

impl PartialEq for Headers {
    /// The same pairs in the same order, however each side keeps them.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

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
            .entries(self.iter().map(|(k, v)| (k.escape_ascii().to_string(), v.escape_ascii().to_string())))
            .finish()
    }
}
