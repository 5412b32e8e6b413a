//! The deadlines of a pool's calls in flight, watched by one task instead of a timer per call.
//!
//! A call joins the watch when it first waits (a lock and a push) and leaves it when it ends; a
//! call that ends at its first poll never joins. The watcher sleeps until the soonest deadline
//! it knows and wakes the calls past theirs, which then find their time spent. A tokio timer
//! per call cost a pooled call about 620 instructions (its entry in the timer wheel, put there
//! and taken out, and the wheel's turns), the watch about 200; calls of one channel share a
//! timeout, so deadlines come in order and the watcher wakes about once per timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// The deadlines of one pool's calls.
#[derive(Default)]
pub(super) struct Deadlines {
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
    calls: Vec<Watched>,
    next_id: u64,
    /// When the watcher wakes next (`None`: not before a call joins). A sooner deadline lowers
    /// it; calls that end leave it stale, and the watcher, waking early, finds the next one.
    next_wake: Option<Instant>,
    /// The watcher, spawned when the first call joins (and again if its runtime ended it).
    watcher: Option<AbortHandle>,
}

struct Watched {
    id: u64,
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
    pub(super) fn watch(&self, deadline: Instant) -> Watch<'_> {
        Watch { deadlines: self, deadline, joined: None }
    }

    /// Joins a call ending at `deadline`, woken through `waker`; returns its id.
    fn join(&self, deadline: Instant, waker: Waker) -> u64 {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.calls.push(Watched { id, deadline, waker, woken: false });
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
        id
    }

    /// Points call `id`'s wake at `waker` if it was joined with another (a call polled again
    /// while it waits: rare, as most are polled once more, for their reply).
    fn rewake(&self, id: u64, waker: &Waker) {
        if let Some(call) = self.lock().calls.iter_mut().find(|c| c.id == id)
            && !call.waker.will_wake(waker)
        {
            call.waker.clone_from(waker);
        }
    }

    fn leave(&self, id: u64) {
        let mut state = self.lock();
        if let Some(at) = state.calls.iter().position(|c| c.id == id) {
            let call = state.calls.swap_remove(at);
            drop(state);
            drop(call);
        }
    }

    /// Calls watched now (for tests).
    #[cfg(test)]
    fn watched(&self) -> usize {
        self.lock().calls.len()
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
pub(super) struct Watch<'d> {
    deadlines: &'d Deadlines,
    deadline: Instant,
    /// The call's id in the watch, once it waited.
    joined: Option<u64>,
}

impl Watch<'_> {
    /// Polls `call`: its output, or `None` once the deadline has passed without one (the clock
    /// is read only when the call is polled again and is still waiting).
    pub(super) fn poll<F: Future>(
        &mut self,
        call: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<F::Output>> {
        if let Poll::Ready(output) = call.poll(cx) {
            return Poll::Ready(Some(output));
        }
        match self.joined {
            None => self.joined = Some(self.deadlines.join(self.deadline, cx.waker().clone())),
            Some(_) if crate::context::now() >= self.deadline => return Poll::Ready(None),
            Some(id) => self.deadlines.rewake(id, cx.waker()),
        }
        Poll::Pending
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.joined {
            self.deadlines.leave(id);
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
                .filter(|c| !c.woken && c.deadline <= now)
                .map(|c| {
                    c.woken = true;
                    c.waker.clone()
                })
                .collect();
            state.next_wake = state.calls.iter().filter(|c| !c.woken).map(|c| c.deadline).min();
            wake
        };
        wake.into_iter().for_each(Waker::wake);
    }
}

/// Waits until `at` (for ever without it) or until `sooner` is told, whichever comes first;
/// true if it was `at`. A watcher's sleep: told of a sooner deadline, it looks again.
pub(super) async fn until_or_told(at: Option<Instant>, sooner: &Notify) -> bool {
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
