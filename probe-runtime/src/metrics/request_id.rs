//! Request ids for call spans: unique in the process and, through a per-process prefix, across
//! processes in practice. Threads take ids in blocks, so making one touches no shared memory.

use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Ids a thread takes from the shared counter at once.
const BLOCK: u64 = 1024;

static NEXT_BLOCK: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The next id of this thread's block, and the end of the block.
    static LOCAL: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// The id of one call, shown as `{process prefix}-{counter}` in hex, e.g. `5f3a9c01-2a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    /// A new id, never handed out before in this process.
    pub fn next() -> RequestId {
        LOCAL.with(|local| {
            let (mut next, mut end) = local.get();
            if next == end {
                next = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) * BLOCK;
                end = next + BLOCK;
            }
            local.set((next + 1, end));
            RequestId(next)
        })
    }

    /// The counter part.
    pub fn counter(self) -> u64 {
        self.0
    }

    /// The id as [`Display`](fmt::Display) shows it, written into `buf` without allocating (a
    /// client writes one into every THeader call): the text's length.
    pub(crate) fn write_to(self, buf: &mut [u8; 25]) -> usize {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        static PREFIX: OnceLock<[u8; 9]> = OnceLock::new();
        let prefix = PREFIX.get_or_init(|| {
            let mut text = [b'-'; 9];
            let prefix = process_prefix();
            for (i, byte) in text[..8].iter_mut().enumerate() {
                *byte = HEX[(prefix >> (28 - 4 * i) & 0xf) as usize];
            }
            text
        });
        buf[..9].copy_from_slice(prefix);
        let digits = (64 - self.0.leading_zeros() as usize).div_ceil(4).max(1);
        for (i, byte) in buf[9..9 + digits].iter_mut().enumerate() {
            *byte = HEX[(self.0 >> (4 * (digits - 1 - i)) & 0xf) as usize];
        }
        9 + digits
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}-{:x}", process_prefix(), self.0)
    }
}

/// 32 bits that tell this process from others: its pid mixed with its start time.
fn process_prefix() -> u32 {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    *PREFIX.get_or_init(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mixed = (u64::from(std::process::id()) << 32 ^ nanos).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 32) as u32
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_unique_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..3000).map(|_| RequestId::next()).collect::<Vec<_>>()))
            .collect();
        let mut seen = HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(seen.insert(id), "{id} handed out twice");
            }
        }
        assert_eq!(seen.len(), 12_000);
    }

    #[test]
    fn ids_written_without_allocating_read_as_displayed() {
        let mut buf = [0u8; 25];
        for n in [0, 1, 0xf, 0x10, 0xabc, u64::from(u32::MAX), u64::MAX] {
            let id = RequestId(n);
            let len = id.write_to(&mut buf);
            assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), id.to_string());
        }
    }

    #[test]
    fn ids_show_the_process_prefix() {
        let (a, b) = (RequestId::next(), RequestId::next());
        let (a, b) = (a.to_string(), b.to_string());
        let prefix = |s: &str| s.split_once('-').map(|(p, _)| p.to_owned());
        assert_eq!(prefix(&a), prefix(&b));
        assert_eq!(prefix(&a).map(|p| p.len()), Some(8));
        assert_ne!(a, b);
    }
}
