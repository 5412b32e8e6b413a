//! A service's methods by name, for the call path: open addressing over a hash of the name's
//! length and its first and last eight bytes (one multiply), built once and never changed. Only
//! names the router accepted are looked up, so no peer can choose colliding keys.

/// Methods by name; each lookup is a hash, a probe or two, and one string comparison.
#[derive(Debug)]
pub(crate) struct MethodTable<T> {
    entries: Vec<(&'static str, T)>,
    /// Index + 1 of the entry in each slot; 0 for an empty slot. Twice as many slots as entries
    /// (at least 4), a power of two.
    slots: Box<[u32]>,
}

impl<T> MethodTable<T> {
    /// A table of `entries` (names should differ; a repeated name finds its first entry).
    pub(crate) fn new(entries: Vec<(&'static str, T)>) -> Self {
        let size = (entries.len() * 2).max(4).next_power_of_two();
        let mut slots = vec![0u32; size].into_boxed_slice();
        for (i, (name, _)) in entries.iter().enumerate() {
            let mut at = slot(name, size);
            while slots[at] != 0 {
                at = (at + 1) & (size - 1);
            }
            slots[at] = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        MethodTable { entries, slots }
    }

    /// The position of `name`, if the table has it.
    #[inline]
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        let size = self.slots.len();
        let mut at = slot(name, size);
        loop {
            let index = (*self.slots.get(at)? as usize).checked_sub(1)?;
            if self.entries.get(index)?.0 == name {
                return Some(index);
            }
            at = (at + 1) & (size - 1);
        }
    }

    /// The entry at `position`.
    #[inline]
    pub(crate) fn at(&self, position: usize) -> Option<&(&'static str, T)> {
        self.entries.get(position)
    }

    /// The value of `name`.
    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<&T> {
        self.at(self.position(name)?).map(|(_, value)| value)
    }

    /// Every entry, in the order given.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(&'static str, T)> {
        self.entries.iter()
    }
}

/// The first slot of `name` in a table of `size` (a power of two) slots.
#[inline]
fn slot(name: &str, size: usize) -> usize {
    let bytes = name.as_bytes();
    let n = bytes.len();
    let (head, tail) = match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
        _ => (short_word(bytes), 0),
    };
    let hash = (head ^ tail.rotate_left(23) ^ (n as u64) << 57).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (hash >> 32) as usize & (size - 1)
}

/// Fewer than eight bytes as a little-endian word.
#[inline]
fn short_word(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0, |word, b| word << 8 | u64::from(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_name_and_only_those() {
        // Names alike but for their middle share head, tail and length: they collide and probe.
        let names: Vec<&'static str> = vec![
            "get",
            "put",
            "",
            "x",
            "echo",
            "get_user_by_id_a_v1",
            "get_user_by_id_b_v1",
            "get_user_by_id_c_v1",
            "findAllUsersByPrefix",
            "count",
        ];
        let table = MethodTable::new(names.iter().map(|n| (*n, n.len())).collect());
        for (i, name) in names.iter().enumerate() {
            assert_eq!(table.position(name), Some(i), "{name}");
            assert_eq!(table.get(name), Some(&name.len()));
        }
        for absent in ["gets", "ge", "get_user_by_id_d_v1", "Echo", "count "] {
            assert_eq!(table.position(absent), None, "{absent}");
        }
        assert_eq!(MethodTable::<()>::new(Vec::new()).get("get"), None);
    }

    #[test]
    fn a_large_table_finds_everything() {
        let names: Vec<String> = (0..500).map(|i| format!("method_number_{i}_of_a_large_service")).collect();
        let leaked: Vec<&'static str> = names.into_iter().map(|n| &*Box::leak(n.into_boxed_str())).collect();
        let table = MethodTable::new(leaked.iter().map(|n| (*n, ())).collect());
        assert!(leaked.iter().enumerate().all(|(i, n)| table.position(n) == Some(i)));
    }
}
