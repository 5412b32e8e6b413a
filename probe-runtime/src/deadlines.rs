//! Deadlines of calls in flight, watched by one task instead of a timer per call: a pool's
//! client calls, a server's handlers that wait.
//!
//! A call joins the watch when it first waits (a lock and a push) and leaves it when it ends; a
//! call that ends at its first poll never joins. The watcher sleeps until the soonest deadline
//! it knows and wakes the calls past theirs, which then find their time spent. A tokio timer
//! per call cost a pooled call about 620 instructions (its entry in the timer wheel, put there
//! and taken out, and the wheel's turns), the watch about 200; calls of one channel share a
//! timeout, so their deadlines come in order and the watcher wakes about once per timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// The deadlines of a pool's calls, or of a server's.
#[derive(Default)]
pub(crate) struct Deadlines {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the watcher when a call's deadline is sooner than its next wake.
    sooner: Notify,
}

#[derive(Default)]
struct State {
    /// The calls watched, each in a slot of its own until it leaves (a server may watch many:
    /// joining and leaving take no search).
    calls: Vec<Option<Watched>>,
    /// Slots left by calls that ended, for the next to join.
    free: Vec<usize>,
    /// When the watcher wakes next (`None`: not before a call joins). A sooner deadline lowers
    /// it; calls that end leave it stale, and the watcher, waking early, finds the next one.
    next_wake: Option<Instant>,
    /// The watcher, spawned when the first call joins (and again if its runtime ended it).
    watcher: Option<AbortHandle>,
}

struct Watched {
    deadline: Instant,
    waker: Waker,
    /// Woken for its deadline already.
    woken: bool,
}

impl Deadlines {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A watch over a call that must end by `deadline`: see [`Watch::poll`].
    pub(crate) fn watch(&self, deadline: Instant) -> Watch<'_> {
        Watch { deadlines: self, deadline, joined: None }
    }

    /// Joins a call ending at `deadline`, woken through `waker`; returns its slot.
    fn join(&self, deadline: Instant, waker: Waker) -> usize {
        let mut state = self.lock();
        let watched = Some(Watched { deadline, waker, woken: false });
        let slot = match state.free.pop() {
            Some(slot) => {
                state.calls[slot] = watched;
                slot
            }
            None => {
                state.calls.push(watched);
                state.calls.len() - 1
            }
        };
        let mut sooner = state.next_wake.is_none_or(|at| deadline < at);
        if sooner {
            state.next_wake = Some(deadline);
        }
        if state.watcher.as_ref().is_none_or(AbortHandle::is_finished) {
            state.watcher = Some(tokio::spawn(watch_deadlines(Arc::clone(&self.shared))).abort_handle());
            sooner = false;
        }
        drop(state);
        if sooner {
            self.shared.sooner.notify_one();
        }
        slot
    }

    /// Points the wake of the call in `slot` at `waker` if it joined with another (a call
    /// polled again while it waits: rare, as most are polled once more, for their reply).
    fn rewake(&self, slot: usize, waker: &Waker) {
        if let Some(Some(call)) = self.lock().calls.get_mut(slot)
            && !call.waker.will_wake(waker)
        {
            call.waker.clone_from(waker);
        }
    }

    fn leave(&self, slot: usize) {
        let mut state = self.lock();
        let call = state.calls.get_mut(slot).and_then(Option::take);
        if call.is_some() {
            state.free.push(slot);
            // None left: the watcher scans no empty slots after a burst.
            if state.free.len() == state.calls.len() {
                state.calls.clear();
                state.free.clear();
            }
        }
        drop(state);
        drop(call);
    }

    /// Calls watched now (for tests).
    #[cfg(test)]
    pub(crate) fn watched(&self) -> usize {
        self.lock().calls.iter().flatten().count()
    }
}

impl Drop for Deadlines {
    fn drop(&mut self) {
        if let Some(watcher) = &self.lock().watcher {
            watcher.abort();
        }
    }
}

/// One call under watch; leaves the watch when dropped.
pub(crate) struct Watch<'d> {
    deadlines: &'d Deadlines,
    deadline: Instant,
    /// The call's slot in the watch, once it waited.
    joined: Option<usize>,
}

impl Watch<'_> {
    /// When the call must end.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Polls `call`: its output, or `None` once the deadline has passed without one.
    pub(crate) fn poll<F: Future>(
        &mut self,
        call: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<F::Output>> {
        match call.poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending => self.poll_expired(cx).map(|()| None),
        }
    }

    /// For a call that was just polled and waits: `Ready` once its deadline has passed, else
    /// `Pending`, the call joined to the watch (to be woken through `cx` at its deadline). The
    /// clock is read only when a call that joined waits again.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.joined {
            None => self.joined = Some(self.deadlines.join(self.deadline, cx.waker().clone())),
            Some(_) if crate::context::now() >= self.deadline => return Poll::Ready(()),
            Some(slot) => self.deadlines.rewake(slot, cx.waker()),
        }
        Poll::Pending
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.joined {
            self.deadlines.leave(slot);
        }
    }
}

/// Sleeps until the soonest deadline, wakes the calls past theirs, and again; ends when aborted.
async fn watch_deadlines(shared: Arc<Shared>) {
    let lock = || shared.state.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let next = lock().next_wake;
        if !until_or_told(next, &shared.sooner).await {
            continue;
        }
        let now = crate::context::now();
        let wake: Vec<Waker> = {
            let mut state = lock();
            let wake = state
                .calls
                .iter_mut()
                .flatten()
                .filter(|c| !c.woken && c.deadline <= now)
                .map(|c| {
                    c.woken = true;
                    c.waker.clone()
                })
                .collect();
            state.next_wake = state.calls.iter().flatten().filter(|c| !c.woken).map(|c| c.deadline).min();
            wake
        };
        wake.into_iter().for_each(Waker::wake);
    }
}

/// Waits until `at` (for ever without it) or until `sooner` is told, whichever comes first;
/// true if it was `at`. A watcher's sleep: told of a sooner deadline, it looks again.
pub(crate) async fn until_or_told(at: Option<Instant>, sooner: &Notify) -> bool {
    let Some(at) = at else {
        sooner.notified().await;
        return false;
    };
    tokio::select! {
        () = tokio::time::sleep_until(at.into()) => true,
        () = sooner.notified() => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Polls `call` under `watch` until it ends.
    async fn watched<F: Future>(deadlines: &Deadlines, deadline: Instant, call: F) -> Option<F::Output> {
        let mut call = std::pin::pin!(call);
        let mut watch = deadlines.watch(deadline);
        std::future::poll_fn(|cx| watch.poll(call.as_mut(), cx)).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_deadline_ends_without_its_output_and_leaves_the_watch() {
        let deadlines = Deadlines::default();
        let start = crate::context::now();
        let got = watched(&deadlines, start + Duration::from_secs(2), std::future::pending::<()>()).await;
        assert_eq!(got, None);
        assert_eq!(crate::context::now() - start, Duration::from_secs(2), "ended at its deadline");
        assert_eq!(deadlines.watched(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_end_at_their_own_deadlines_whatever_order_they_join_in() {
        let deadlines = Deadlines::default();
        let start = crate::context::now();
        let ends = [5, 1, 3, 2, 4].map(|s| {
            let deadlines = &deadlines;
            async move {
                watched(deadlines, start + Duration::from_secs(s), std::future::pending::<()>()).await;
                (s, crate::context::now() - start)
            }
        });
        for (s, ended) in futures_util::future::join_all(ends).await {
            assert_eq!(ended, Duration::from_secs(s));
        }
        assert_eq!(deadlines.watched(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_ends_in_time_gives_its_output_and_leaves_the_watch() {
        let deadlines = Deadlines::default();
        let start = crate::context::now();
        let call = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            7
        };
        assert_eq!(watched(&deadlines, start + Duration::from_secs(1), call).await, Some(7));
        assert_eq!(deadlines.watched(), 0);
        // A call that ends at its first poll never joins.
        assert_eq!(watched(&deadlines, start + Duration::from_secs(1), async { 8 }).await, Some(8));
    }

    #[tokio::test(start_paused = true)]
    async fn calls_that_end_in_time_and_calls_that_time_out_share_the_watch() {
        let deadlines = Deadlines::default();
        let start = crate::context::now();
        let calls = (0..40u64).map(|i| {
            let deadlines = &deadlines;
            async move {
                let work = tokio::time::sleep(Duration::from_millis(i * 10 + 5));
                watched(deadlines, start + Duration::from_millis(200), work).await.is_some()
            }
        });
        let in_time: Vec<bool> = futures_util::future::join_all(calls).await;
        assert_eq!(in_time, (0..40).map(|i| i * 10 + 5 < 200).collect::<Vec<_>>());
        assert_eq!(deadlines.watched(), 0);
        assert!(deadlines.lock().calls.is_empty(), "the slots are let go once none is used");
    }

    #[test]
    fn a_watch_outlives_the_runtime_its_watcher_ran_on() {
        let deadlines = Deadlines::default();
        for _ in 0..2 {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let got = runtime.block_on(async {
                let deadline = crate::context::now() + Duration::from_millis(20);
                watched(&deadlines, deadline, std::future::pending::<()>()).await
            });
            assert_eq!(got, None);
        }
    }
}
