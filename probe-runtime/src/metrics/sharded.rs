//! Counters striped over threads: each thread adds to its own cache-line-aligned shard, so two
//! worker threads counting calls of the same method do not bounce one cache line between their
//! cores (a contended atomic add costs ~15x an uncontended one). Readers sum the shards.
//!
//! The first threads to count (a runtime's workers, as a rule) each get a shard no other thread
//! writes, and add to it with a plain load and store: an atomic read-modify-write (`lock xadd`)
//! costs ~20 cycles even on a line the core holds, and a call records three of them on each side.
//! Threads after those share the remaining shards and add atomically.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The most shards one thread each, whatever the number of CPUs.
const MAX_OWNED: usize = 8;

/// A value on cache lines of its own (128 bytes: two lines, as adjacent-line prefetchers pair
/// them).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// One `T` per shard; a thread always uses the same one.
#[derive(Debug)]
pub(crate) struct Sharded<T> {
    shards: Box<[Padded<T>]>,
}

impl<T: Default> Default for Sharded<T> {
    fn default() -> Self {
        Sharded::new_with(T::default)
    }
}

impl<T> Sharded<T> {
    /// A value per shard, each made by `make`.
    pub(crate) fn new_with(mut make: impl FnMut() -> T) -> Self {
        let (owned, shared) = shard_counts();
        Sharded { shards: (0..owned + shared).map(|_| Padded(make())).collect() }
    }

    /// The calling thread's shard, which later threads share (for values any thread may use, as
    /// references to clone).
    #[inline]
    pub(crate) fn local(&self) -> &T {
        &self.shards[slot().index].0
    }

    /// The calling thread's shard, and how to add to the counters in it.
    #[inline]
    pub(crate) fn counting(&self) -> (&T, Add) {
        let slot = slot();
        (&self.shards[slot.index].0, slot.add)
    }

    /// Every shard, to sum.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.shards.iter().map(|p| &p.0)
    }
}

/// How a thread adds to the counters of its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Add {
    /// No other thread writes the shard: a load and a store.
    Owned,
    /// Other threads add to the shard too: an atomic addition.
    Shared,
}

impl Add {
    /// Adds `n` to `counter` (wrapping, as `fetch_add` does).
    #[inline]
    pub(crate) fn to(self, counter: &AtomicU64, n: u64) {
        match self {
            Add::Owned => counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed),
            Add::Shared => {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// Shards a thread has to itself (one per CPU, at most [`MAX_OWNED`]), and shards the threads
/// after those share (half as many, at least one).
fn shard_counts() -> (usize, usize) {
    static COUNTS: OnceLock<(usize, usize)> = OnceLock::new();
    *COUNTS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(MAX_OWNED, |n| n.get());
        let owned = cpus.min(MAX_OWNED);
        (owned, owned.div_ceil(2))
    })
}

/// A thread's shard in every [`Sharded`] value.
#[derive(Clone, Copy)]
struct Slot {
    index: usize,
    /// [`Add::Owned`] when the shard is this thread's alone.
    add: Add,
}

/// The calling thread's slot: threads are numbered in the order they first use a shard, the
/// first ones get shards of their own and the rest share the others in turn. Numbers are never
/// reused, so no two threads ever own the same shard.
#[inline]
fn slot() -> Slot {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: Slot = {
            let (owned, shared) = shard_counts();
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            match n < owned {
                true => Slot { index: n, add: Add::Owned },
                false => Slot { index: owned + (n - owned) % shared, add: Add::Shared },
            }
        };
    }
    SLOT.with(|slot| *slot)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn threads_add_to_shards_that_sum_up() {
        let counter = Arc::new(Sharded::<AtomicU64>::default());
        let (owned, shared) = shard_counts();
        assert_eq!(counter.iter().count(), owned + shared);
        // More threads than shards, so that some share theirs: not one addition may be lost.
        let threads: Vec<_> = (0..3 * (owned + shared))
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let (shard, add) = counter.counting();
                        add.to(shard, 1);
                    }
                    let slot = slot();
                    (slot.index, slot.add == Add::Owned)
                })
            })
            .collect();
        let slots: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let total = counter.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>();
        assert_eq!(total, 20_000 * slots.len() as u64);
        // A shard owned by one thread is written by no other.
        let owners: Vec<_> = slots.iter().filter(|s| s.1).map(|s| s.0).collect();
        assert_eq!(owners.iter().collect::<HashSet<_>>().len(), owners.len());
        assert!(slots.iter().filter(|s| !s.1).all(|s| s.0 >= owned && !owners.contains(&s.0)));
        assert_eq!(std::mem::align_of::<Padded<u8>>(), 128);
    }
}
