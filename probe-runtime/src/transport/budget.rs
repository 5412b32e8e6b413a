//! A byte budget shared by a server's connections: what their read buffers and queued replies may
//! hold together.
//!
//! Reads wait for room ([`MemoryBudget::poll_take`]) before a buffer grows; replies already made
//! are queued anyway ([`MemoryBudget::take`] may go past the limit), and while the budget is spent
//! every read waits until replies drain. Hand-written rather than a `tokio::sync::Semaphore` of
//! bytes: a semaphore cannot lend past its permits, which a reply already made needs, and one
//! atomic add per change keeps the hot path free of locks (wakers are locked only while some
//! connection waits).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// Bytes buffered by a server's connections, against a limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    /// Whether `waiters` may hold wakers.
    waiting: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most bytes held at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Whether nothing is left (new connections are refused then).
    pub(crate) fn is_spent(&self) -> bool {
        self.in_use() >= self.limit
    }

    fn try_take(&self, n: usize) -> bool {
        let taken = self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            used.checked_add(n).filter(|&after| after <= self.limit)
        });
        match taken {
            Ok(before) => {
                self.peak.fetch_max(before + n, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Takes `n` bytes, past the limit if need be: for what is already in memory.
    pub(crate) fn take(&self, n: usize) {
        let after = self.used.fetch_add(n, Ordering::SeqCst).saturating_add(n);
        self.peak.fetch_max(after, Ordering::Relaxed);
    }

    /// Takes `n` bytes once they fit under the limit (else the task is woken when bytes are given
    /// back).
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>, n: usize) -> Poll<()> {
        if self.try_take(n) {
            return Poll::Ready(());
        }
        {
            let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            self.waiting.store(true, Ordering::SeqCst);
        }
        // Bytes given back between the first try and the registration would wake no one.
        if self.try_take(n) { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Gives `n` bytes back and wakes the tasks waiting for room.
    pub(crate) fn give(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.used.fetch_sub(n, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) {
            let wakers = {
                let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
                self.waiting.store(false, Ordering::SeqCst);
                std::mem::take(&mut *waiters)
            };
            wakers.into_iter().for_each(Waker::wake);
        }
    }
}

/// Bytes one buffer holds of a budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Held {
    /// Nothing held yet of `budget`.
    pub(crate) fn new(budget: Arc<MemoryBudget>) -> Self {
        Held { budget, bytes: 0 }
    }

    /// Ready once at least `bytes` are held, waiting for room if the budget is spent.
    pub(crate) fn poll_cover(&mut self, cx: &mut Context<'_>, bytes: usize) -> Poll<()> {
        if bytes > self.bytes {
            std::task::ready!(self.budget.poll_take(cx, bytes - self.bytes));
            self.bytes = bytes;
        }
        Poll::Ready(())
    }

    /// Holds at least `bytes` at once, past the limit if need be.
    pub(crate) fn cover(&mut self, bytes: usize) {
        if bytes > self.bytes {
            self.budget.take(bytes - self.bytes);
            self.bytes = bytes;
        }
    }

    /// Gives back what is held beyond `bytes`, once that is more than `slack` (so a buffer that
    /// shrinks and grows by small amounts touches the shared counter rarely).
    pub(crate) fn shrink_to(&mut self, bytes: usize, slack: usize) {
        if self.bytes > bytes.saturating_add(slack) {
            self.budget.give(self.bytes - bytes);
            self.bytes = bytes;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    #[test]
    fn reads_wait_for_room_and_replies_do_not() {
        let budget = Arc::new(MemoryBudget::new(100));
        let mut cx = Context::from_waker(Waker::noop());
        let mut a = Held::new(budget.clone());
        let mut b = Held::new(budget.clone());
        assert!(a.poll_cover(&mut cx, 80).is_ready());
        assert!(b.poll_cover(&mut cx, 30).is_pending());
        b.cover(30);
        assert_eq!((budget.in_use(), budget.peak()), (110, 110));
        assert!(budget.is_spent());
        a.shrink_to(10, 16);
        assert_eq!(budget.in_use(), 40);
        a.shrink_to(0, 16);
        assert_eq!(budget.in_use(), 40);
        drop((a, b));
        assert_eq!(budget.in_use(), 0);
    }
}
