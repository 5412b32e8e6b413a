//! A map for the call path whose entries are added once and never removed or changed (a client's
//! series per method, the prefixed names of methods): found with a load per slot looked at.
//!
//! Entries sit in a fixed table of set-once slots, open addressing: a key may take one of
//! [`PROBES`] slots from the one its hash picks, and since slots are never cleared, it is in the
//! table if and only if it is in one of those. A key whose slots are all taken by others goes to
//! a map behind an `ArcSwap` (lock-free to read, copied to add to): that load takes and pays back
//! a debt, which is why the slots come first (an `ArcSwap` load per call cost about 160
//! instructions; a slot costs a load and a compare).

use std::hash::{BuildHasher, BuildHasherDefault, Hash};
use std::sync::OnceLock;

use arc_swap::ArcSwap;

use crate::metrics::fast_hash::{FastMap, FxHasher};

/// Slots of the table: a power of two, room for the methods a client calls on one node as a rule.
const SLOTS: usize = 32;
/// Slots a key may take, from the one its hash picks.
const PROBES: usize = 8;

/// Keys to values, each added once; see the module documentation. Keys are hashed with the Fx
/// hash: only for keys this process chooses (names of generated code), not a peer.
pub(crate) struct SetOnce<K, V> {
    slots: Box<[OnceLock<(K, V)>; SLOTS]>,
    /// Entries whose slots were all taken by others.
    more: ArcSwap<FastMap<K, V>>,
}

impl<K, V> Default for SetOnce<K, V> {
    fn default() -> Self {
        SetOnce { slots: Box::new(std::array::from_fn(|_| OnceLock::new())), more: ArcSwap::default() }
    }
}

impl<K: Copy + Eq + Hash, V: Clone> SetOnce<K, V> {
    /// The value of `key` if it has a slot (else [`SetOnce::get_or_add`] finds or adds it).
    #[inline]
    pub(crate) fn get(&self, key: K) -> Option<&V> {
        let start = first_slot(&key);
        for probe in 0..PROBES {
            match self.slots[(start + probe) % SLOTS].get() {
                Some((k, value)) if *k == key => return Some(value),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }

    /// The value of `key`, made by `make` and added if it has none. Threads that add the same
    /// key at once may each call `make`; one value is kept, and every caller gets it.
    #[cold]
    pub(crate) fn get_or_add(&self, key: K, make: impl FnOnce() -> V) -> V {
        if let Some(value) = self.get(key) {
            return value.clone();
        }
        if let Some(value) = self.more.load().get(&key) {
            return value.clone();
        }
        let made = make();
        let start = first_slot(&key);
        for probe in 0..PROBES {
            // Another thread may set the slot first: with this key, or another.
            let (k, value) = self.slots[(start + probe) % SLOTS].get_or_init(|| (key, made.clone()));
            if *k == key {
                return value.clone();
            }
        }
        let mut kept = None;
        self.more.rcu(|more| {
            let mut more = FastMap::clone(more);
            kept = Some(more.entry(key).or_insert_with(|| made.clone()).clone());
            more
        });
        kept.unwrap_or(made)
    }

    /// Whether every slot is taken (for tests).
    #[cfg(test)]
    pub(crate) fn is_full(&self) -> bool {
        self.slots.iter().all(|slot| slot.get().is_some()) && !self.more.load().is_empty()
    }
}

/// `service:method`, made once per pair and kept for the life of the process (names of generated
/// code: one per method): the name a call has on a server that hosts several services, which a
/// client encodes calls with and a server's routes answer with, without a string per call.
pub(crate) fn service_method(service: &'static str, method: &'static str) -> &'static str {
    static NAMES: std::sync::LazyLock<SetOnce<[usize; 4], &'static str>> =
        std::sync::LazyLock::new(SetOnce::default);
    let key = [service.as_ptr().addr(), service.len(), method.as_ptr().addr(), method.len()];
    match NAMES.get(key) {
        Some(name) => name,
        None => NAMES.get_or_add(key, || String::leak(format!("{service}:{method}"))),
    }
}

/// The first slot `key` may take.
#[inline]
fn first_slot<K: Hash>(key: &K) -> usize {
    (BuildHasherDefault::<FxHasher>::default().hash_one(key) >> 32) as usize % SLOTS
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn every_key_keeps_the_first_value_added_however_many_keys_come() {
        let table = Arc::new(SetOnce::<u64, u64>::default());
        // Four threads add the same keys at once, each with its own values: one value per key wins.
        let threads: Vec<_> = (0..4u64)
            .map(|thread| {
                let table = Arc::clone(&table);
                std::thread::spawn(move || {
                    (0..4 * SLOTS as u64)
                        .map(|key| table.get_or_add(key, || key * 10 + thread))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let seen: Vec<Vec<u64>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for key in 0..4 * SLOTS as u64 {
            let value = table.get_or_add(key, || unreachable!("key {key} was added"));
            assert_eq!(value / 10, key);
            assert!(seen.iter().all(|values| values[key as usize] == value), "key {key}: one value for all");
            if let Some(slot) = table.get(key) {
                assert_eq!(*slot, value);
            }
        }
        assert!(table.is_full(), "the slots filled up and the other keys went to the map");
    }
}
