//! Counters striped over threads: each thread adds to its own cache-line-aligned shard, so two
//! worker threads counting calls of the same method do not bounce one cache line between their
//! cores (a contended atomic add costs ~15x an uncontended one). Readers sum the shards.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most shards a value is striped over, whatever the number of CPUs.
const MAX_SHARDS: usize = 8;

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
        Sharded { shards: (0..shard_count()).map(|_| Padded::default()).collect() }
    }
}

impl<T> Sharded<T> {
    /// A value per shard, each made by `make`.
    pub(crate) fn new_with(mut make: impl FnMut() -> T) -> Self {
        Sharded { shards: (0..shard_count()).map(|_| Padded(make())).collect() }
    }

    /// The calling thread's shard.
    #[inline]
    pub(crate) fn local(&self) -> &T {
        // The count is a power of two, so the mask keeps the index in range.
        &self.shards[thread_index() & (self.shards.len() - 1)].0
    }

    /// Every shard, to sum.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.shards.iter().map(|p| &p.0)
    }
}

/// Shards per value: the CPUs rounded up to a power of two, at most [`MAX_SHARDS`].
fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(MAX_SHARDS, |n| n.get());
        cpus.next_power_of_two().min(MAX_SHARDS)
    })
}

/// A number per thread, handed out in the order threads first record something, so the first
/// threads to count (a runtime's workers) get distinct shards.
#[inline]
fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|i| *i)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use super::*;

    #[test]
    fn threads_add_to_shards_that_sum_up() {
        let counter = Arc::new(Sharded::<AtomicU64>::default());
        assert!(counter.iter().count().is_power_of_two());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counter.local().fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(counter.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>(), 4000);
        assert_eq!(std::mem::align_of::<Padded<u8>>(), 128);
    }
}
