//! Many calls in flight on one connection, matched to their replies by seqid: for probe servers,
//! which run a connection's calls concurrently.
//!
//! Each call writes itself, framed as it goes on the wire (a THeader call's header too, made
//! before the lock), into its connection's outgoing buffer; the connection's writer task takes
//! the whole buffer and writes it in one system call: while callers whose replies the reader just
//! handed over have not run yet, it waits for them (the last one wakes it), so the calls they make
//! at once go in the same write and the batches the server replied with stay whole. A reader task
//! hands each reply to the call waiting for its seqid. The connection's state is one short-held
//! lock: a call takes it once to enter the table of waiting calls (its entry holds its task's
//! waker and, once it came, its reply) and write its message, and once more to take its reply;
//! the reader takes it once for the replies one read brought, the writer once for the whole
//! buffer. No channel is allocated per call, and a call that cannot be written fails alone.
//!
//! Deadlines take no timer per call: each waiting call keeps its deadline in the table, and one
//! task per connection sleeps until the soonest of them, fails the calls whose deadline passed
//! with [`Error::Timeout`], and sleeps again. The writer drops a queued call whose deadline passed
//! instead of sending it.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tracing::debug;

use super::endpoint::Endpoint;
use super::header::{encode_prefixed, peek};
use super::tcp::{Answer, timed_out};
use super::theader::{PlainHeaders, reply_seqid};
use crate::error::Error;
use crate::metrics::{PhaseStats, RequestId};
use crate::service::BoxFuture;
use crate::tls::ClientStream;
use crate::transport::{Framing, MessageReader, WireFormat, encode_frame};

/// Calls queued for a connection's writer before senders wait.
const WRITE_QUEUE: usize = 1024;
/// A call at least this long is framed before its connection's lock is taken and queued as it is
/// (copying it under the lock would hold up the reader and the other callers).
const LARGE_CALL: usize = 64 * 1024;
/// An emptied write buffer larger than this (grown for one large message) is given back.
const KEEP_CAPACITY: usize = 256 * 1024;

thread_local! {
    /// The mux and slot whose connection brought the reply a call on this thread took last,
    /// taken by the next call on the same mux: a caller that calls again at once (in the same
    /// poll) sends on the connection its reply came on. The callers one read of replies wakes
    /// then send on that connection together and their calls leave in one write, as a load
    /// generator keeps each call slot on its connection; spreading them in turn over every
    /// connection split each batch into one write per connection. Only a hint: a call without
    /// it (another task's, or the first) takes the next slot in turn.
    static LAST_REPLY: std::cell::Cell<Option<(usize, usize)>> = const { std::cell::Cell::new(None) };
}

/// One call's message on its way to its connection.
pub(super) struct Outgoing {
    pub(super) message: Bytes,
    /// How the message goes on the wire.
    pub(super) form: Form,
    /// When the caller stops waiting: not written after it.
    pub(super) deadline: Instant,
    /// The method (for its timeout error).
    pub(super) method: &'static str,
    /// When the transport took the call: the start of its send time.
    pub(super) taken: Instant,
}

/// How a call's message goes on the wire.
#[derive(Debug, Clone, Copy)]
pub(super) enum Form {
    /// Framed as it is (a header frame made already, too), with its name prefixed `service:`
    /// first when `Some` (see [`encode_prefixed`]).
    Message(Option<&'static str>),
    /// In a header frame without transforms carrying the headers of a call without metadata
    /// ([`PlainHeaders`]), with this request id (a new one if `None`) and what the call the
    /// calling task's handler serves passes on (read as the call is first polled, in its task).
    Header(Option<RequestId>),
}

/// How a call is written under its connection's lock.
enum Staged<'a> {
    /// Into the outgoing buffer.
    InPlace(Body<'a>),
    /// Queued as it is: a large call's frame, made before the lock.
    Frame(Bytes),
}

/// What goes on the wire around a call's message.
#[derive(Clone, Copy)]
enum Body<'a> {
    /// The message framed as it is, named `service:` first when `Some`.
    Message(Option<&'static str>),
    /// The message in a plain header frame with these headers.
    Header(&'a PlainHeaders),
}

impl Outgoing {
    /// What `queue` (which takes the connection's lock and writes the call) gives, handed call
    /// `seqid` staged: its plain headers, if it has them, made before the lock is taken (and only
    /// then: a framed call carries none around), and a large call framed before it too.
    #[inline(always)]
    fn stage<T>(
        &self,
        wire: WireFormat,
        seqid: i32,
        queue: impl FnOnce(Staged<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let headers;
        let body = match self.form {
            Form::Message(prefix) => Body::Message(prefix),
            Form::Header(request_id) => {
                headers = self.headers(wire, seqid, request_id)?;
                Body::Header(&headers)
            }
        };
        let staged = match self.message.len() >= LARGE_CALL {
            true => Staged::Frame(frame_of(wire, seqid, &self.message, body)?),
            false => Staged::InPlace(body),
        };
        // (One call of `queue`: it is inlined here.)
        queue(staged)
    }

    /// The plain headers of call `seqid`, with `request_id`.
    #[inline(always)]
    fn headers(
        &self,
        wire: WireFormat,
        seqid: i32,
        request_id: Option<RequestId>,
    ) -> Result<PlainHeaders, Error> {
        let served = crate::context::Context::current();
        let (len, deadline, taken) = (self.message.len(), self.deadline, self.taken);
        PlainHeaders::new(wire, seqid, len, request_id, served.as_ref(), deadline, taken)
    }

    /// The time the call had when it was sent.
    fn budget(&self) -> Duration {
        self.deadline.saturating_duration_since(self.taken)
    }

    /// The call's error once its deadline passed.
    fn timed_out(&self) -> Error {
        timed_out(self.method, self.budget())
    }
}

/// Up to `size` multiplexed connections to one endpoint, used in turn, opened when first needed
/// and replaced when they break.
pub(super) struct Mux {
    endpoint: Arc<Endpoint>,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    /// Where connect, send and wait times go, unless metrics are off.
    phases: Option<Arc<PhaseStats>>,
}

/// One connection of a [`Mux`]: read without locking; (re)opened under the async lock, so
/// concurrent callers of one slot share one connect.
#[derive(Default)]
struct Slot {
    conn: ArcSwapOption<MuxConn>,
    opening: tokio::sync::Mutex<()>,
}

impl Mux {
    pub(super) fn new(endpoint: Arc<Endpoint>, size: usize, phases: Option<Arc<PhaseStats>>) -> Self {
        let slots = (0..size.max(1)).map(|_| Slot::default()).collect();
        Mux { endpoint, slots, next: AtomicUsize::new(0), phases }
    }

    /// Sends `call` (whose seqid is `seqid`) and waits for its reply (none for oneway calls), or
    /// fails at its deadline: on an open connection, its exchange; else the connect and the
    /// exchange after it, boxed (that is rare, and its state large), or why there is no slot.
    pub(super) fn call(&self, seqid: i32, call: Outgoing, oneway: bool) -> MuxCall<'_> {
        let index = match LAST_REPLY.take() {
            // (A mux made where a dropped one was may have fewer slots.)
            Some((mux, at)) if mux == self.id() && at < self.slots.len() => at,
            _ => self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len(),
        };
        let Some(slot) = self.slots.get(index) else {
            return MuxCall::Failed(self.endpoint.broken(io::ErrorKind::NotConnected, "no connection slot"));
        };
        let phases = self.phases.as_deref();
        let hint = (self.id(), index);
        match slot.conn.load_full().filter(|c| !c.is_closed()) {
            Some(conn) => MuxCall::Exchange(MuxConn::call(conn, seqid, call, oneway, phases, hint)),
            None => MuxCall::Connecting(Box::pin(async move {
                let conn = match tokio::time::timeout_at(call.deadline.into(), self.open(slot)).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => return Answer::from(Err(e)),
                    Err(_) => return Answer::from(Err(call.timed_out())),
                };
                MuxConn::call(conn, seqid, call, oneway, phases, hint).await
            })),
        }
    }

    /// The connections calls are spread over.
    #[cfg(test)]
    pub(super) fn size(&self) -> usize {
        self.slots.len()
    }

    /// This mux's identity for [`LAST_REPLY`]: its address, stable while calls borrow it.
    fn id(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }

    /// Opens the first connection now.
    pub(super) async fn warm(&self) -> Result<(), Error> {
        let Some(slot) = self.slots.first() else { return Ok(()) };
        self.open(slot).await.map(drop)
    }

    /// The slot's connection, opened (or reopened) if needed.
    #[cold]
    async fn open(&self, slot: &Slot) -> Result<Arc<MuxConn>, Error> {
        let _opening = slot.opening.lock().await;
        if let Some(conn) = slot.conn.load_full().filter(|c| !c.is_closed()) {
            return Ok(conn);
        }
        let conn = MuxConn::open(&self.endpoint, self.phases.as_deref()).await?;
        slot.conn.store(Some(Arc::clone(&conn)));
        Ok(conn)
    }
}

/// [`Mux::call`]: a call on an open connection (the usual case), one that connects first, or
/// one that failed before it started.
pub(super) enum MuxCall<'a> {
    Exchange(Exchange<'a>),
    Connecting(BoxFuture<'a, Answer>),
    Failed(Error),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hashes a seqid as itself (multiplied to spread sequential ids): seqids are not attacker
/// chosen (the client picks them; a reply only finds a call by one it sent).
#[derive(Default)]
struct SeqidHasher(u64);

impl Hasher for SeqidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i32(&mut self, n: i32) {
        self.0 = u64::from(n as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A call waiting for its reply.
struct Waiter {
    /// The reply and when the read that brought it returned, or why there is none, once it is
    /// known; the caller takes it with the entry.
    outcome: Option<Result<(Bytes, Instant), Error>>,
    /// The caller's task, woken (and let go) when `outcome` is set.
    waker: Option<Waker>,
    deadline: Instant,
    /// When the call was sent: its timeout error gives the time it had.
    taken: Instant,
    method: &'static str,
    /// The reader settled this call with its reply: counted in [`Pending::released`] until the
    /// caller takes it.
    released: bool,
}

impl Waiter {
    /// Settles the call (unless it was settled already); the waker to wake once the lock is let go.
    fn settle(&mut self, outcome: Result<(Bytes, Instant), Error>) -> Option<Waker> {
        if self.outcome.is_some() {
            return None;
        }
        self.outcome = Some(outcome);
        // Nothing wakes the call after this: its waker is handed over, not cloned.
        self.waker.take()
    }
}

/// Slots of a [`Waiting`] table: a power of two.
const SLOTS: usize = 256;

/// The calls waiting on one connection, by seqid. A seqid's low bits pick a slot that holds
/// where its entry is; a thread's seqids are consecutive, so calls in flight together mostly
/// pick different slots, and the few whose slot is taken go to a map. Finding a call is two
/// array reads, not a hash table's probe (a call is looked up four times). Entries sit in a
/// dense vector whose freed places are reused: each live one holds a slot, so there are at most
/// [`SLOTS`] of them.
struct Waiting {
    /// Per slot: 1 + the index in `entries` of the call whose seqid picked it, or 0.
    slots: Box<[u16; SLOTS]>,
    entries: Vec<Held>,
    /// Indexes of `entries` that hold no call.
    free: Vec<u16>,
    /// Calls whose slot was taken when they came.
    spill: HashMap<i32, Waiter, BuildHasherDefault<SeqidHasher>>,
}

/// A place in [`Waiting::entries`].
struct Held {
    seqid: i32,
    waiter: Option<Waiter>,
}

impl Default for Waiting {
    fn default() -> Self {
        Waiting {
            slots: Box::new([0; SLOTS]),
            entries: Vec::new(),
            free: Vec::new(),
            spill: HashMap::default(),
        }
    }
}

impl Waiting {
    fn slot(seqid: i32) -> usize {
        seqid as u32 as usize & (SLOTS - 1)
    }

    /// The index in `entries` of call `seqid`, if its slot holds it.
    fn index(&self, seqid: i32) -> Option<usize> {
        let at = (self.slots[Self::slot(seqid)] as usize).checked_sub(1)?;
        (self.entries[at].seqid == seqid).then_some(at)
    }

    /// Adds call `seqid`, unless one with that seqid waits already (then gives `waiter` back).
    fn insert(&mut self, seqid: i32, waiter: Waiter) -> Result<(), Waiter> {
        if self.get_mut(seqid).is_some() {
            return Err(waiter);
        }
        let slot = Self::slot(seqid);
        if self.slots[slot] == 0 {
            let held = Held { seqid, waiter: Some(waiter) };
            let at = match self.free.pop() {
                Some(at) => {
                    self.entries[at as usize] = held;
                    at as usize
                }
                None => {
                    self.entries.push(held);
                    self.entries.len() - 1
                }
            };
            // (At most `SLOTS` entries: the index fits.)
            self.slots[slot] = at as u16 + 1;
        } else {
            self.spill.insert(seqid, waiter);
        }
        Ok(())
    }

    fn get_mut(&mut self, seqid: i32) -> Option<&mut Waiter> {
        match self.index(seqid) {
            Some(at) => self.entries[at].waiter.as_mut(),
            None if self.spill.is_empty() => None,
            None => self.spill.get_mut(&seqid),
        }
    }

    #[cfg(test)]
    fn remove(&mut self, seqid: i32) -> Option<Waiter> {
        match self.index(seqid) {
            Some(at) => {
                self.slots[Self::slot(seqid)] = 0;
                self.free.push(at as u16);
                self.entries[at].waiter.take()
            }
            None if self.spill.is_empty() => None,
            None => self.spill.remove(&seqid),
        }
    }

    /// [`Waiting::remove`], dropping the entry where it is.
    fn discard(&mut self, seqid: i32) {
        match self.index(seqid) {
            Some(at) => {
                self.slots[Self::slot(seqid)] = 0;
                self.free.push(at as u16);
                self.entries[at].waiter = None;
            }
            None if self.spill.is_empty() => {}
            None => {
                self.spill.remove(&seqid);
            }
        }
    }

    fn values(&self) -> impl Iterator<Item = &Waiter> {
        self.entries.iter().filter_map(|e| e.waiter.as_ref()).chain(self.spill.values())
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Waiter> {
        self.entries.iter_mut().filter_map(|e| e.waiter.as_mut()).chain(self.spill.values_mut())
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len() - self.free.len() + self.spill.len()
    }
}

/// The calls waiting for replies on one connection.
struct Pending {
    waiting: Waiting,
    /// Why the connection closed, once it has.
    closed: Option<String>,
    /// When the deadline sweeper wakes next (`None`: not before a call comes). A call with a
    /// sooner deadline lowers it and wakes the sweeper; calls that end leave it stale, and the
    /// sweeper, waking early, finds the next one.
    next_sweep: Option<Instant>,
    /// Calls queued for the writer, as they go on the wire: each caller writes its own here (but
    /// large ones, see [`Queued`]).
    out: BytesMut,
    /// The calls queued, in order (at most [`WRITE_QUEUE`]).
    queued: Vec<Queued>,
    /// The writer's task, while it waits for calls to write.
    writer: Option<Waker>,
    /// Replies the reader handed over that their callers have not taken yet. Those callers are
    /// about to run, and most call again at once: the writer waits for them (see
    /// [`wait_for_released`]).
    released: usize,
    /// The writer's task, while it waits for the callers of the released replies.
    flush: Option<Waker>,
    /// Calls wait for room in the queue: the writer tells them when it takes it.
    room_wanted: bool,
    /// The connection's handle is gone: the writer writes what is queued and shuts the socket.
    ended: bool,
}

/// A call queued for the writer: its bytes are the outgoing buffer's up to `end` (after the call
/// before it), then its `frame` if it has one.
struct Queued {
    end: usize,
    /// Not written after this: its caller has its error.
    deadline: Instant,
    /// A large call's frame, kept out of the buffer.
    frame: Option<Bytes>,
}

impl Pending {
    fn new() -> Self {
        Pending {
            waiting: Waiting::default(),
            closed: None,
            next_sweep: None,
            out: BytesMut::new(),
            queued: Vec::new(),
            writer: None,
            released: 0,
            flush: None,
            room_wanted: false,
            ended: false,
        }
    }

    /// Queues call `seqid`, `staged`, for the writer, written as it goes on the wire, unless the
    /// queue is full or the call cannot be written.
    fn push(
        &mut self,
        wire: WireFormat,
        seqid: i32,
        call: &Outgoing,
        staged: Staged<'_>,
    ) -> Result<Pushed, Error> {
        if self.queued.len() >= WRITE_QUEUE {
            self.room_wanted = true;
            return Ok(Pushed::Full);
        }
        let frame = match staged {
            Staged::InPlace(body) => {
                write_call(wire, seqid, &call.message, body, &mut self.out)?;
                None
            }
            Staged::Frame(frame) => Some(frame),
        };
        self.queued.push(Queued { end: self.out.len(), deadline: call.deadline, frame });
        Ok(Pushed::Queued(self.writer.take()))
    }

    /// The writer's waker, whichever it waits for (calls, or released callers), to wake once the
    /// lock is let go: the connection ended or closed.
    fn writer_wakers(&mut self) -> impl Iterator<Item = Waker> + use<> {
        [self.writer.take(), self.flush.take()].into_iter().flatten()
    }

    /// Removes call `seqid`'s entry. If the reader had released its reply, one fewer caller is
    /// still to run; the last one gives the writer's waker, to wake once the lock is let go.
    fn discard(&mut self, seqid: i32) -> Option<Waker> {
        let released = self.waiting.get_mut(seqid).is_some_and(|w| w.released);
        // Dropped where it is, not moved out whole: a caller took what it needed of it.
        self.waiting.discard(seqid);
        if !released {
            return None;
        }
        self.released -= 1;
        if self.released == 0 { self.flush.take() } else { None }
    }
}

/// What a connection's handle and its reader and writer tasks share.
struct Shared {
    endpoint: Arc<Endpoint>,
    pending: Mutex<Pending>,
    /// Set once `pending.closed` is: read without the lock.
    is_closed: AtomicBool,
    /// Wakes the deadline sweeper when a call's deadline is sooner than its next wake.
    sweep: Notify,
    /// Wakes calls waiting for room in the write queue.
    room: Notify,
}

impl Shared {
    /// Fails every waiting call and every later one.
    fn close(&self, why: &str) {
        let (wake, writer) = {
            let mut p = lock(&self.pending);
            p.closed.get_or_insert_with(|| why.to_owned());
            self.is_closed.store(true, Ordering::Release);
            let endpoint = &self.endpoint;
            let wake: Vec<Waker> = p
                .waiting
                .values_mut()
                .filter_map(|w| w.settle(Err(endpoint.broken(io::ErrorKind::ConnectionAborted, why))))
                .collect();
            (wake, p.writer_wakers())
        };
        debug!(peer = %self.endpoint.addr, reason = why, failed_calls = wake.len(), "connection closed");
        wake.into_iter().for_each(Waker::wake);
        writer.for_each(Waker::wake);
        self.sweep.notify_one();
        self.room.notify_waiters();
    }

    fn closed_error(&self) -> Error {
        let why = lock(&self.pending).closed.clone().unwrap_or_else(|| "the connection closed".to_owned());
        self.endpoint.broken(io::ErrorKind::ConnectionAborted, why)
    }
}

/// One multiplexed connection: a writer task that writes what the calls wrote into its buffer, a
/// reader task that hands each reply to the call waiting for its seqid.
struct MuxConn {
    shared: Arc<Shared>,
    reader: AbortHandle,
    sweeper: AbortHandle,
}

impl Drop for MuxConn {
    fn drop(&mut self) {
        // The writer ends by itself once it wrote what is queued.
        let writer = {
            let mut p = lock(&self.shared.pending);
            p.ended = true;
            p.writer_wakers()
        };
        writer.for_each(Waker::wake);
        self.reader.abort();
        self.sweeper.abort();
    }
}

impl MuxConn {
    async fn open(endpoint: &Arc<Endpoint>, phases: Option<&PhaseStats>) -> Result<Arc<MuxConn>, Error> {
        let started = std::time::Instant::now();
        let stream = endpoint.connect().await?;
        if let Some(phases) = phases {
            phases.connect.record(started.elapsed());
        }
        // Plaintext halves are the socket's own; a TLS session's are shared through a lock.
        Ok(match stream {
            ClientStream::Plain(tcp) => {
                let (read_half, write_half) = tcp.into_split();
                MuxConn::start(endpoint, read_half, write_half)
            }
            ClientStream::Tls(tls) => {
                let (read_half, write_half) = tokio::io::split(*tls);
                MuxConn::start(endpoint, read_half, write_half)
            }
        })
    }

    /// Starts the writer, reader and deadline tasks of a connection open as `read_half` and
    /// `write_half`.
    fn start<R, W>(endpoint: &Arc<Endpoint>, read_half: R, write_half: W) -> Arc<MuxConn>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            endpoint: endpoint.clone(),
            pending: Mutex::new(Pending::new()),
            is_closed: AtomicBool::new(false),
            sweep: Notify::new(),
            room: Notify::new(),
        });
        let writer_shared = shared.clone();
        let writer = tokio::spawn(async move {
            match write_calls(write_half, &writer_shared).await {
                Ok(()) => writer_shared.close("the transport was dropped"),
                Err(e) => writer_shared.close(&format!("write failed: {e}")),
            }
        });
        let reader = MessageReader::new(read_half, endpoint.wire, endpoint.limits);
        let reader = tokio::spawn(read_replies(reader, shared.clone(), writer.abort_handle())).abort_handle();
        let sweeper = tokio::spawn(sweep_deadlines(shared.clone())).abort_handle();
        Arc::new(MuxConn { shared, reader, sweeper })
    }

    fn is_closed(&self) -> bool {
        self.shared.is_closed.load(Ordering::Acquire)
    }

    /// Sends a call and waits for its reply or its deadline, recording the send (queueing) and
    /// wait times; with the reply, the time the read that brought it returned (one clock read per
    /// read, not per call). `slot`: the mux and slot of the connection, for [`LAST_REPLY`].
    fn call<'a>(
        self: Arc<Self>,
        seqid: i32,
        call: Outgoing,
        oneway: bool,
        phases: Option<&'a PhaseStats>,
        slot: (usize, usize),
    ) -> Exchange<'a> {
        Exchange { conn: self, seqid, oneway, phases, slot, step: Step::Start(call) }
    }

    /// Queues `call` (seqid `seqid`) for the writer, unless the queue is full: then the call
    /// is given back.
    fn try_queue(&self, seqid: i32, call: Outgoing) -> Result<Option<Outgoing>, Error> {
        let wire = self.shared.endpoint.wire;
        let pushed = call.stage(wire, seqid, |staged| {
            let mut p = lock(&self.shared.pending);
            if p.closed.is_some() {
                drop(p);
                return Err(self.shared.closed_error());
            }
            p.push(wire, seqid, &call, staged)
        })?;
        Ok(pushed.hand(call))
    }

    /// Queues `call` (seqid `seqid`) once the writer made room, or fails at its deadline or the
    /// connection's end.
    #[cold]
    async fn wait_for_room(self: Arc<Self>, seqid: i32, call: Outgoing) -> Result<(), Error> {
        let wire = self.shared.endpoint.wire;
        let wait = async {
            loop {
                // Listening before looking: room made after the look still wakes this call.
                let room = self.shared.room.notified();
                tokio::pin!(room);
                room.as_mut().enable();
                let pushed = call.stage(wire, seqid, |staged| {
                    let mut p = lock(&self.shared.pending);
                    match p.closed {
                        Some(_) => Ok(None),
                        None => p.push(wire, seqid, &call, staged).map(Some),
                    }
                })?;
                match pushed {
                    None => return Ok(false),
                    Some(Pushed::Queued(writer)) => {
                        writer.into_iter().for_each(Waker::wake);
                        return Ok(true);
                    }
                    Some(Pushed::Full) => room.await,
                }
            }
        };
        match tokio::time::timeout_at(call.deadline.into(), wait).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(self.shared.closed_error()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(call.timed_out()),
        }
    }
}

/// What [`Pending::push`] did: queued the call (with the writer's waker, if it waited for calls,
/// to wake once the lock is let go), or found the queue full.
enum Pushed {
    Queued(Option<Waker>),
    Full,
}

impl Pushed {
    /// Once the lock is let go: the writer woken if the call was queued and it waited; the call
    /// given back if the queue was full.
    fn hand(self, call: Outgoing) -> Option<Outgoing> {
        match self {
            Pushed::Queued(writer) => {
                writer.into_iter().for_each(Waker::wake);
                None
            }
            Pushed::Full => Some(call),
        }
    }
}

/// [`MuxConn::call`]: one call's exchange on a connection, written out rather than an `async`
/// block. Its state is the call until it is queued, then a few words. (An `async` block kept room
/// for each of its locals across each of its waits, 840 bytes, which the levels above copied
/// twice per call as it started.)
pub(super) struct Exchange<'a> {
    conn: Arc<MuxConn>,
    seqid: i32,
    oneway: bool,
    phases: Option<&'a PhaseStats>,
    /// The connection's mux and slot: where this thread's next call goes once this one took its
    /// reply ([`LAST_REPLY`]).
    slot: (usize, usize),
    step: Step<'a>,
}

enum Step<'a> {
    /// Not polled yet.
    Start(Outgoing),
    /// Waits for room in the full queue (rare: boxed), since `taken`. A call that expects a reply
    /// has its entry.
    Room(BoxFuture<'a, Result<(), Error>>, Instant),
    /// Entered and queued at `sent`; `first`: in the poll that made the entry.
    Reply { sent: Instant, first: bool },
    /// Ended: the entry taken, or never made.
    Done,
}

impl Exchange<'_> {
    /// Ends the exchange: its entry, if it has one, is no longer this call's to remove.
    fn end<T>(&mut self, outcome: T) -> Poll<T> {
        self.step = Step::Done;
        Poll::Ready(outcome)
    }

    /// Makes the call's entry (its waker `cx`'s) and queues its message, under one lock; the next
    /// step is the reply, or room in the queue.
    fn enter(&mut self, call: Outgoing, cx: &Context<'_>) -> Result<(), Error> {
        let shared = &*self.conn.shared;
        // Cloned before the lock; the entry is made under it (what the closure below takes is
        // references and this, not the whole entry, which it would copy).
        let waker = cx.waker().clone();
        let (taken, deadline, seqid) = (call.taken, call.deadline, self.seqid);
        let wire = shared.endpoint.wire;
        let (wake_sweeper, pushed) = call.stage(wire, seqid, |staged| {
            let mut p = lock(&shared.pending);
            if p.closed.is_some() {
                drop(p);
                return Err(shared.closed_error());
            }
            let (method, released) = (call.method, false);
            let waiter = Waiter { outcome: None, waker: Some(waker), deadline, taken, method, released };
            if p.waiting.insert(seqid, waiter).is_err() {
                drop(p);
                return Err(Error::BadReply(format!(
                    "seqid {seqid} is already in flight on this connection"
                )));
            }
            let pushed = match p.push(wire, seqid, &call, staged) {
                Ok(pushed) => pushed,
                Err(e) => {
                    p.waiting.discard(seqid);
                    return Err(e);
                }
            };
            let sooner = p.next_sweep.is_none_or(|at| deadline < at);
            if sooner {
                p.next_sweep = Some(deadline);
            }
            Ok((sooner, pushed))
        })?;
        if wake_sweeper {
            shared.sweep.notify_one();
        }
        self.step = match pushed.hand(call) {
            None => {
                // Queued at once (the usual case), the send time is nil: no clock read for it.
                if let Some(phases) = self.phases {
                    phases.send.record(Duration::ZERO);
                }
                Step::Reply { sent: taken, first: true }
            }
            Some(call) => Step::Room(Box::pin(Arc::clone(&self.conn).wait_for_room(seqid, call)), taken),
        };
        Ok(())
    }

    /// The outcome of the call, taken (with its entry) once the reader, the deadline sweeper or
    /// the connection's end settled it.
    fn take(&mut self, sent: Instant, cx: &Context<'_>) -> Poll<Exchanged> {
        let shared = &*self.conn.shared;
        let mut p = lock(&shared.pending);
        let Some(waiter) = p.waiting.get_mut(self.seqid) else {
            drop(p);
            return self.end(Err(shared.closed_error()));
        };
        if waiter.outcome.is_none() {
            match &mut waiter.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                waker => *waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let outcome = waiter.outcome.take();
        let flush = p.discard(self.seqid);
        drop(p);
        flush.into_iter().for_each(Waker::wake);
        let outcome = outcome.unwrap_or_else(|| Err(shared.closed_error()));
        // The reply's time (the reader's, once per read): its wait ends then, and the caller's
        // metrics take it as the end.
        self.end(outcome.map(|(reply, at)| {
            if let Some(phases) = self.phases {
                phases.wait.record(at.saturating_duration_since(sent));
            }
            (Some(reply), Some(at))
        }))
    }

    /// Removes the call's entry, if it made one and did not take it: the call ends (fails, or
    /// is dropped: timed out, cancelled) before its reply.
    fn forget(&mut self) {
        if !self.oneway && matches!(self.step, Step::Room(..) | Step::Reply { .. }) {
            self.step = Step::Done;
            let flush = lock(&self.conn.shared.pending).discard(self.seqid);
            flush.into_iter().for_each(Waker::wake);
        }
    }
}

/// How a connection's call ended: the reply (none for a oneway call) and the time it came.
type Exchanged = Result<(Option<Bytes>, Option<Instant>), Error>;

impl Future for Exchange<'_> {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let this = self.get_mut();
        Poll::Ready(match std::task::ready!(this.exchange(cx)) {
            Ok((reply, at)) => {
                LAST_REPLY.set(Some(this.slot));
                Answer { reply: Ok(reply), at }
            }
            Err(e) => Answer::from(Err(e)),
        })
    }
}

impl Exchange<'_> {
    /// Enters and queues the call when first polled, then takes its outcome once settled.
    #[inline]
    fn exchange(&mut self, cx: &mut Context<'_>) -> Poll<Exchanged> {
        let this = self;
        loop {
            match &mut this.step {
                Step::Start(_) => {
                    let Step::Start(call) = std::mem::replace(&mut this.step, Step::Done) else {
                        unreachable!("the step was just matched")
                    };
                    if !this.oneway {
                        if let Err(e) = this.enter(call, cx) {
                            return this.end(Err(e));
                        }
                        continue;
                    }
                    let taken = call.taken;
                    match this.conn.try_queue(this.seqid, call) {
                        Err(e) => return this.end(Err(e)),
                        Ok(None) => return this.end(Ok((None, None))),
                        Ok(Some(call)) => {
                            let room = Arc::clone(&this.conn).wait_for_room(this.seqid, call);
                            this.step = Step::Room(Box::pin(room), taken);
                        }
                    }
                }
                Step::Room(room, taken) => {
                    let taken = *taken;
                    if let Err(e) = std::task::ready!(room.as_mut().poll(cx)) {
                        this.forget();
                        return this.end(Err(e));
                    }
                    if this.oneway {
                        return this.end(Ok((None, None)));
                    }
                    let now = crate::context::now();
                    if let Some(phases) = this.phases {
                        phases.send.record(now.saturating_duration_since(taken));
                    }
                    this.step = Step::Reply { sent: now, first: false };
                }
                Step::Reply { sent, first } => {
                    // Whatever settles the entry wakes the waker it holds, this task's: in the
                    // poll that made the entry nothing can have come that did not wake it, so the
                    // table is not read.
                    if std::mem::take(first) {
                        return Poll::Pending;
                    }
                    let sent = *sent;
                    return this.take(sent, cx);
                }
                Step::Done => panic!("a connection's call was polled after it ended"),
            }
        }
    }
}

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        self.forget();
    }
}

/// Appends call `seqid`'s `message` to the outgoing buffer as it goes on the wire, with `body`
/// around it; on an error `out` is as it was. (Inlined: every call is written here, under its
/// connection's lock.)
#[inline(always)]
fn write_call(
    wire: WireFormat,
    seqid: i32,
    message: &Bytes,
    body: Body<'_>,
    out: &mut BytesMut,
) -> Result<(), Error> {
    let unwritable = |what: String| Error::Protocol(crate::codec::ProtocolError::invalid_data(what));
    let prefix = match body {
        Body::Header(headers) => {
            return headers.encode(wire, seqid, message, true, out).map_err(|e| unwritable(e.to_string()));
        }
        Body::Message(prefix) => prefix,
    };
    if let Some(service) = prefix
        && encode_prefixed(wire.protocol, wire.framing, message, service, out)
    {
        return Ok(());
    }
    let framed = match prefix {
        // A message the in-place header reader does not know: rename it with the full codec.
        Some(service) => {
            let renamed = rename(wire, message, service).map_err(unwritable)?;
            encode_frame(wire.framing, &renamed, out)
        }
        None => encode_frame(wire.framing, message, out),
    };
    framed.map_err(|e| unwritable(e.to_string()))
}

/// A large call's frame, made before its connection's lock is taken.
#[cold]
#[inline(never)]
fn frame_of(wire: WireFormat, seqid: i32, message: &Bytes, body: Body<'_>) -> Result<Bytes, Error> {
    let mut frame = BytesMut::new();
    write_call(wire, seqid, message, body, &mut frame)?;
    Ok(frame.freeze())
}

/// `message` renamed `service:name` by the codec (the slow path of [`write_call`]); as it is if it
/// is named so already.
#[cold]
pub(super) fn rename(wire: WireFormat, message: &Bytes, service: &str) -> Result<Bytes, String> {
    let limits = crate::codec::Limits::default();
    let (header, _) = wire.protocol.decode_header(message.clone(), limits).map_err(|e| e.to_string())?;
    if header.name.strip_prefix(service).is_some_and(|rest| rest.starts_with(':')) {
        return Ok(message.clone());
    }
    let name = format!("{service}:{}", header.name);
    crate::transport::rename_message(wire.protocol, message.clone(), &name, limits).map_err(|e| e.to_string())
}

/// Writes every call queued, gathering the ones queued into one write. Returns once the
/// connection's handle is gone and all is written (then shuts the write side down, so the peer
/// sees the end of the stream), or at the first write error.
async fn write_calls<W: AsyncWrite + Unpin>(mut io: W, shared: &Shared) -> io::Result<()> {
    let mut out = BytesMut::new();
    let mut queued: Vec<Queued> = Vec::new();
    loop {
        // Calls queued, or the end.
        let any = std::future::poll_fn(|cx| {
            let mut p = lock(&shared.pending);
            if !p.queued.is_empty() {
                return Poll::Ready(true);
            }
            if p.ended || p.closed.is_some() {
                return Poll::Ready(false);
            }
            match &mut p.writer {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await;
        if !any {
            break;
        }
        wait_for_released(shared).await;
        // The callers' buffer is taken whole; they write into this one's emptied twin.
        let room_wanted = {
            let mut p = lock(&shared.pending);
            std::mem::swap(&mut p.out, &mut out);
            std::mem::swap(&mut p.queued, &mut queued);
            std::mem::take(&mut p.room_wanted)
        };
        if room_wanted {
            shared.room.notify_waiters();
        }
        leave_out_expired(&mut out, &mut queued, crate::context::now());
        // The buffer in one write, but for large calls' frames, written in their places.
        let mut start = 0;
        for call in &queued {
            if let Some(frame) = &call.frame {
                io.write_all(&out[start..call.end]).await?;
                io.write_all(frame).await?;
                start = call.end;
            }
        }
        if start < out.len() {
            io.write_all(&out[start..]).await?;
        }
        out.clear();
        queued.clear();
        if out.capacity() > KEEP_CAPACITY {
            out = BytesMut::new();
        }
    }
    io.shutdown().await
}

/// Takes out of `out` and `queued` the calls whose deadline passed while they were queued (their
/// callers have their error).
fn leave_out_expired(out: &mut BytesMut, queued: &mut Vec<Queued>, now: Instant) {
    if queued.iter().all(|call| call.deadline > now) {
        return;
    }
    let (mut kept, mut start) = (0, 0);
    queued.retain_mut(|call| {
        let (from, end) = (start, call.end);
        start = end;
        if call.deadline <= now {
            return false;
        }
        out.copy_within(from..end, kept);
        kept += end - from;
        call.end = kept;
        true
    });
    out.truncate(kept);
}

/// Waits, before a write, until the callers of the replies the reader released have taken them
/// (the last one wakes the writer): they are ready to run, and most call again at once, so their
/// calls go in this write with the others. A round of the scheduler in which none of them ran
/// (a deferred yield comes back first and none took its reply since the last) ends the wait: a
/// caller that holds its call without polling it does not hold back the calls of others.
async fn wait_for_released(shared: &Shared) {
    let mut left = usize::MAX;
    loop {
        let mut round = std::pin::pin!(tokio::task::yield_now());
        let now_left = std::future::poll_fn(|cx| {
            let mut p = lock(&shared.pending);
            if p.released == 0 || p.ended || p.closed.is_some() {
                p.flush = None;
                return Poll::Ready(0);
            }
            if round.as_mut().poll(cx).is_ready() {
                p.flush = None;
                return Poll::Ready(p.released);
            }
            match &mut p.flush {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await;
        if now_left == 0 || now_left >= left {
            return;
        }
        left = now_left;
    }
}

/// Hands each reply to the call waiting for its seqid, until the connection fails; then stops the
/// writer too, so the socket closes rather than lingering half-open. The replies one read
/// brought are handed over under one lock.
async fn read_replies<R: AsyncRead + Unpin>(
    mut reader: MessageReader<R>,
    shared: Arc<Shared>,
    writer: AbortHandle,
) {
    let endpoint = &shared.endpoint;
    // The replies one read brought, settled under one lock; and the callers to wake after.
    let mut replies: Vec<(i32, Bytes)> = Vec::new();
    let mut wake: Vec<Waker> = Vec::new();
    let why = loop {
        let read = reader.read_message().await;
        // The time of every reply this read brought.
        let at = crate::context::now();
        let mut failed = match read {
            Ok(Some(reply)) => seqid_of(endpoint, reply).map(|reply| replies.push(reply)).err(),
            Ok(None) => Some("the server closed the connection".to_owned()),
            Err(e) => Some(format!("reading a reply failed: {e}")),
        };
        while failed.is_none() && replies.len() < MAX_SETTLED {
            match reader.next_buffered() {
                Ok(Some(reply)) => failed = seqid_of(endpoint, reply).map(|reply| replies.push(reply)).err(),
                Ok(None) => break,
                Err(e) => failed = Some(format!("reading a reply failed: {e}")),
            }
        }
        {
            let mut p = lock(&shared.pending);
            for (seqid, reply) in replies.drain(..) {
                let settled = p.waiting.get_mut(seqid).and_then(|waiter| {
                    let waker = waiter.settle(Ok((reply, at)))?;
                    waiter.released = true;
                    Some(waker)
                });
                match settled {
                    Some(waker) => wake.push(waker),
                    None => {
                        debug!(peer = %endpoint.addr, seqid, "a reply for no waiting call (timed out?) is dropped")
                    }
                }
            }
            // Every caller woken here was released.
            p.released += wake.len();
        }
        wake.drain(..).for_each(Waker::wake);
        if let Some(why) = failed {
            break why;
        }
    };
    shared.close(&why);
    writer.abort();
}

/// Replies settled under one lock at most: a read's worth of small replies.
const MAX_SETTLED: usize = 256;

/// `reply` with its seqid, or why its header does not decode.
fn seqid_of(endpoint: &Endpoint, reply: Bytes) -> Result<(i32, Bytes), String> {
    let peeked = match endpoint.wire.framing {
        Framing::Header => reply_seqid(&reply),
        _ => peek(endpoint.wire.protocol, &reply).map(|header| header.seqid),
    };
    match peeked {
        Some(seqid) => Ok((seqid, reply)),
        None => match endpoint.wire.protocol.decode_header(reply.clone(), endpoint.limits) {
            Ok((header, _)) => Ok((header.seqid, reply)),
            Err(e) => Err(format!("a reply header does not decode: {e}")),
        },
    }
}

/// Fails each waiting call with [`Error::Timeout`] once its deadline passes: sleeps until the
/// soonest deadline known (woken sooner by a call with a sooner one), then fails the calls past
/// theirs and finds the next. Ends when the connection closes.
async fn sweep_deadlines(shared: Arc<Shared>) {
    loop {
        let next = lock(&shared.pending).next_sweep;
        if shared.is_closed.load(Ordering::Acquire) {
            return;
        }
        if !crate::deadlines::until_or_told(next, &shared.sweep).await {
            continue;
        }
        let now = crate::context::now();
        let wake: Vec<Waker> = {
            let mut p = lock(&shared.pending);
            let wake = p
                .waiting
                .values_mut()
                .filter(|w| w.deadline <= now)
                .filter_map(|w| {
                    w.settle(Err(timed_out(w.method, w.deadline.saturating_duration_since(w.taken))))
                })
                .collect();
            p.next_sweep = p.waiting.values().filter(|w| w.outcome.is_none()).map(|w| w.deadline).min();
            wake
        };
        wake.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;
    use crate::codec::{ApplicationException, ApplicationExceptionKind, Limits, MessageHeader, MessageType};
    use crate::service::Protocol;
    use crate::transport::Framing;

    fn waiter(method: &'static str) -> Waiter {
        let deadline = crate::context::now();
        Waiter { outcome: None, waker: None, deadline, taken: deadline, method, released: false }
    }

    #[test]
    fn the_waiting_table_finds_calls_whose_slots_collide_and_refuses_a_seqid_twice() {
        let mut table = Waiting::default();
        // 7, 7 + SLOTS and 7 - SLOTS pick one slot; -1 and u32::MAX-like seqids wrap into others.
        let seqids = [7, 7 + SLOTS as i32, 7 - SLOTS as i32, -1, i32::MIN, i32::MAX, 8];
        for (n, &seqid) in seqids.iter().enumerate() {
            let name: &'static str = Box::leak(format!("m{n}").into_boxed_str());
            assert!(table.insert(seqid, waiter(name)).is_ok(), "seqid {seqid}");
            assert!(table.insert(seqid, waiter("again")).is_err(), "seqid {seqid} twice");
        }
        assert_eq!((table.len(), table.values().count()), (seqids.len(), seqids.len()));
        for (n, &seqid) in seqids.iter().enumerate() {
            assert_eq!(table.get_mut(seqid).map(|w| w.method), Some(format!("m{n}").as_str()));
        }
        // The slot's holder leaves: the calls that spilled over are still found, and a seqid
        // that waits in the spill is still refused while the slot is free.
        assert_eq!(table.remove(7).map(|w| w.method), Some("m0"));
        assert!(table.get_mut(7).is_none() && table.remove(7).is_none());
        assert_eq!(table.get_mut(7 + SLOTS as i32).map(|w| w.method), Some("m1"));
        assert!(table.insert(7 - SLOTS as i32, waiter("again")).is_err());
        // Freed places are reused.
        let places = table.entries.len();
        assert!(table.insert(7, waiter("back")).is_ok());
        assert_eq!(table.entries.len(), places);
        // Discarded in place, from a slot or from the spill, as removed.
        table.discard(7);
        table.discard(7 - SLOTS as i32);
        assert!(table.get_mut(7).is_none() && table.get_mut(7 - SLOTS as i32).is_none());
        assert_eq!(table.len(), seqids.len() - 2);
        assert!(
            table.insert(7, waiter("again")).is_ok()
                && table.insert(7 - SLOTS as i32, waiter("again")).is_ok()
        );
        assert_eq!(table.entries.len(), places);
        for seqid in seqids {
            assert!(table.remove(seqid).is_some(), "seqid {seqid}");
        }
        assert!(table.is_empty() && table.values_mut().next().is_none());
        assert!(table.remove(8).is_none());
    }

    /// A call's reply through the mux, as a transport's send takes it.
    async fn send(mux: &Mux, seqid: i32, call: Outgoing, oneway: bool) -> Result<Option<Bytes>, Error> {
        match mux.call(seqid, call, oneway) {
            MuxCall::Exchange(exchange) => exchange.await.reply,
            MuxCall::Connecting(call) => call.await.reply,
            MuxCall::Failed(e) => Err(e),
        }
    }

    fn call(seqid: i32) -> Outgoing {
        call_within(seqid, Duration::from_secs(30))
    }

    fn call_within(seqid: i32, budget: Duration) -> Outgoing {
        let mut buf = BytesMut::new();
        let header = MessageHeader::new("say", MessageType::Call, seqid);
        assert!(
            Protocol::Binary
                .encode_message(&header, &ApplicationException::unknown_method("x"), &mut buf)
                .is_ok()
        );
        let taken = Instant::now();
        Outgoing {
            message: buf.freeze(),
            form: Form::Message(Some("Demo")),
            deadline: taken + budget,
            method: "say",
            taken,
        }
    }

    /// Echoes every frame but those whose seqid is odd, which it never answers.
    async fn echo_even_seqids() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            loop {
                let Ok(len) = stream.read_u32().await else { return };
                let mut frame = vec![0; len as usize];
                stream.read_exact(&mut frame).await.unwrap();
                let header = peek(Protocol::Binary, &frame).unwrap();
                assert_eq!(header.name, b"Demo:say", "written with the prefix");
                if header.seqid % 2 == 0 {
                    stream.write_u32(len).await.unwrap();
                    stream.write_all(&frame).await.unwrap();
                }
            }
        });
        addr
    }

    fn endpoint(addr: String) -> Arc<Endpoint> {
        endpoint_of(addr, Framing::Framed)
    }

    fn endpoint_of(addr: String, framing: Framing) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            addr,
            wire: WireFormat::new(Protocol::Binary, framing),
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(3),
            tls: None,
        })
    }

    fn first_conn(mux: &Mux) -> Arc<MuxConn> {
        mux.slots[0].conn.load_full().expect("opened")
    }

    #[tokio::test]
    async fn a_dropped_call_frees_its_seqid_and_the_connection_goes_on() {
        let mux = Mux::new(endpoint(echo_even_seqids().await), 1, None);
        let timed_out = tokio::time::timeout(Duration::from_millis(50), send(&mux, 1, call(1), false)).await;
        assert!(timed_out.is_err(), "seqid 1 is never answered");
        let conn = first_conn(&mux);
        assert!(lock(&conn.shared.pending).waiting.is_empty(), "the dropped call's entry is gone");
        // Many calls at once share writes and each gets its own reply.
        let replies =
            futures_util::future::join_all((1..=20).map(|n| send(&mux, 2 * n, call(2 * n), false))).await;
        for (n, reply) in (1..=20).zip(replies) {
            let reply = reply.unwrap().unwrap();
            assert_eq!(peek(Protocol::Binary, &reply).unwrap().seqid, 2 * n);
        }
        // The same seqid may be used again once its call is gone.
        let again = tokio::time::timeout(Duration::from_millis(50), send(&mux, 1, call(1), false)).await;
        assert!(again.is_err());
        assert!(!conn.is_closed());
    }

    #[tokio::test]
    async fn calls_fail_at_their_own_deadlines_without_a_timer_each() {
        let mux = Mux::new(endpoint(echo_even_seqids().await), 1, None);
        mux.warm().await.unwrap();
        let started = Instant::now();
        // Unanswered calls with deadlines in no particular order, and answered ones among them.
        let budgets = [300u64, 60, 180, 120];
        let unanswered = budgets.iter().enumerate().map(|(n, ms)| {
            send(&mux, 2 * n as i32 + 1, call_within(2 * n as i32 + 1, Duration::from_millis(*ms)), false)
        });
        let answered = (1..=4).map(|n| send(&mux, 2 * n, call(2 * n), false));
        let timed = futures_util::future::join_all(unanswered.map(|c| async {
            let e = c.await.unwrap_err();
            (e, started.elapsed())
        }));
        let (timed, answered) = tokio::join!(timed, futures_util::future::join_all(answered));
        assert!(answered.iter().all(|r| r.is_ok()), "{answered:?}");
        for ((error, took), ms) in timed.iter().zip(budgets) {
            match error {
                Error::Timeout { method, timeout_ms } => {
                    assert_eq!((method.as_str(), *timeout_ms), ("say", ms));
                }
                other => panic!("expected a timeout, got {other}"),
            }
            let late = took.saturating_sub(Duration::from_millis(ms));
            assert!(
                *took >= Duration::from_millis(ms) && late < Duration::from_millis(40),
                "{ms} ms: {took:?}"
            );
        }
        let conn = first_conn(&mux);
        assert!(lock(&conn.shared.pending).waiting.is_empty());
        assert!(!conn.is_closed(), "timeouts leave the connection open");
    }

    #[tokio::test]
    async fn a_call_past_its_deadline_is_never_written() {
        // A server that counts the frames it gets and answers none.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            while let Ok(len) = stream.read_u32().await {
                let mut frame = vec![0; len as usize];
                stream.read_exact(&mut frame).await.unwrap();
                seen_tx.send(peek(Protocol::Binary, &frame).unwrap().seqid).unwrap();
            }
        });
        let mux = Mux::new(endpoint(addr), 1, None);
        mux.warm().await.unwrap();
        let mut expired = call_within(7, Duration::from_millis(1));
        expired.deadline = Instant::now() - Duration::from_millis(1);
        let error = send(&mux, 7, expired, true).await;
        assert!(error.is_ok(), "a oneway call is queued: {error:?}");
        let live = send(&mux, 8, call(8), true).await;
        assert!(live.is_ok());
        assert_eq!(seen.recv().await, Some(8), "only the live call was written");
    }

    #[tokio::test]
    async fn a_call_that_cannot_be_written_fails_alone() {
        let mux = Mux::new(endpoint(echo_even_seqids().await), 1, None);
        mux.warm().await.unwrap();
        // Not a message: its name cannot be found to prefix.
        let mut garbled = call(2);
        garbled.message = Bytes::from_static(b"not a thrift message");
        let error = send(&mux, 2, garbled, false).await.unwrap_err();
        assert!(matches!(error, Error::Protocol(_)), "{error}");
        let conn = first_conn(&mux);
        assert!(!conn.is_closed() && lock(&conn.shared.pending).waiting.is_empty());
        let reply = send(&mux, 4, call(4), false).await.unwrap().unwrap();
        assert_eq!(peek(Protocol::Binary, &reply).unwrap().seqid, 4, "the connection goes on");
    }

    #[test]
    fn expired_calls_are_left_out_of_a_batch_wherever_they_are() {
        let now = Instant::now();
        let (live, gone) = (now + Duration::from_secs(1), now);
        let at = |end, deadline, frame: Option<&'static [u8]>| Queued {
            end,
            deadline,
            frame: frame.map(Bytes::from_static),
        };
        let mut out = BytesMut::from(&b"aabbbcdddd"[..]);
        // Calls `aa`, `bbb`, a large `L1`, `c`, a large `L2`, `dddd`: `bbb`, `L2` and `dddd` expired.
        let mut queued = vec![
            at(2, live, None),
            at(5, gone, None),
            at(5, live, Some(b"L1")),
            at(6, live, None),
            at(6, gone, Some(b"L2")),
            at(10, gone, None),
        ];
        leave_out_expired(&mut out, &mut queued, now);
        assert_eq!(&out[..], b"aac");
        let left: Vec<_> = queued.iter().map(|q| (q.end, q.frame.as_deref())).collect();
        assert_eq!(left, [(2, None), (2, Some(&b"L1"[..])), (3, None)]);
        let mut whole = BytesMut::from(&b"aabbb"[..]);
        let mut queued = vec![at(2, live, None), at(5, live, None)];
        leave_out_expired(&mut whole, &mut queued, now);
        assert_eq!((&whole[..], queued.len()), (&b"aabbb"[..], 2), "nothing expired: the batch is as it was");
    }

    #[tokio::test]
    async fn large_calls_go_in_their_places_among_small_ones() {
        let (addr, _) = echo_server().await;
        let mux = Arc::new(Mux::new(endpoint(addr), 1, None));
        let sized = |seqid: i32, len: usize| {
            let mut buf = BytesMut::new();
            let header = MessageHeader::new("say", MessageType::Call, seqid);
            let args = ApplicationException::new(ApplicationExceptionKind::Unknown, "x".repeat(len));
            assert!(Protocol::Binary.encode_message(&header, &args, &mut buf).is_ok());
            let mut call = call_within(seqid, Duration::from_secs(30));
            call.message = buf.freeze();
            call
        };
        // Calls at once, every third one large, so that batches mix both.
        let calls = (1..=30).map(|n: i32| {
            let mux = Arc::clone(&mux);
            let len = if n % 3 == 0 { LARGE_CALL + 1000 * n as usize } else { 10 };
            let call = sized(n, len);
            let expected = call.message.clone();
            tokio::spawn(async move { (send(&mux, n, call, false).await, expected) })
        });
        for call in futures_util::future::join_all(calls).await {
            let (reply, expected) = call.unwrap();
            // The echo server sends the call back: renamed `Demo:say`, and otherwise the same.
            let reply = reply.unwrap().unwrap();
            let sent = peek(Protocol::Binary, &expected).unwrap();
            let got = peek(Protocol::Binary, &reply).unwrap();
            assert_eq!((got.seqid, got.name), (sent.seqid, &b"Demo:say"[..]));
            assert_eq!(reply[got.body_at()..], expected[sent.body_at()..], "seqid {}", sent.seqid);
        }
    }

    #[tokio::test]
    async fn a_call_in_a_plain_header_frame_is_written_with_the_headers_of_the_wrapped_path() {
        use crate::context::names;
        use crate::transport::header;
        // A server that reads one header frame, sends back what it found, and echoes it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (found_tx, found) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let len = stream.read_u32().await.unwrap();
            let mut frame = vec![0; len as usize];
            stream.read_exact(&mut frame).await.unwrap();
            let (got, payload) = header::decode(Bytes::from(frame.clone()), Limits::DEFAULT).unwrap();
            let _ = found_tx.send((got, payload));
            stream.write_u32(len).await.unwrap();
            stream.write_all(&frame).await.unwrap();
        });
        let mux = Mux::new(endpoint_of(addr, Framing::Header), 1, None);
        let id = RequestId::next();
        let mut plain = call_within(5, Duration::from_millis(1500));
        plain.form = Form::Header(Some(id));
        let message = plain.message.clone();
        let reply = send(&mux, 5, plain, false).await.unwrap().unwrap();
        assert_eq!(reply_seqid(&reply), Some(5));
        let (got, payload) = found.await.unwrap();
        let expected = crate::context::Metadata::outgoing(None, Some(id), Some(Instant::now()));
        let keys = |h: &header::Headers| h.iter().map(|(k, _)| k.to_vec()).collect::<Vec<_>>();
        assert_eq!(keys(&got.headers), keys(&expected));
        assert_eq!(got.headers.get(names::REQUEST_ID), Some(id.to_string().as_str()));
        assert_eq!(got.headers.get(names::DEADLINE_MS), Some("1500"));
        assert_eq!((got.seqid, got.protocol, payload), (5, Protocol::Binary, message));
    }

    #[tokio::test]
    async fn calls_wait_for_room_in_a_full_queue_until_their_deadline_and_then_go() {
        // A server that reads nothing until told to, then echoes every frame.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = go.await;
            loop {
                let Ok(len) = stream.read_u32().await else { return };
                let mut frame = vec![0; len as usize];
                stream.read_exact(&mut frame).await.unwrap();
                stream.write_u32(len).await.unwrap();
                stream.write_all(&frame).await.unwrap();
            }
        });
        let mux = Arc::new(Mux::new(endpoint(addr), 1, None));
        mux.warm().await.unwrap();
        // Large calls fill the socket's buffers, the writer blocks, and the queue fills up.
        let big = |seqid: i32, budget: Duration| {
            let mut buf = BytesMut::new();
            let header = MessageHeader::new("say", MessageType::Call, seqid);
            let args = ApplicationException::new(ApplicationExceptionKind::Unknown, "x".repeat(16 * 1024));
            assert!(Protocol::Binary.encode_message(&header, &args, &mut buf).is_ok());
            let taken = Instant::now();
            let message = buf.freeze();
            Outgoing { message, form: Form::Message(None), deadline: taken + budget, method: "say", taken }
        };
        // One batch in the writer's hands, a full queue behind it, and more than fit.
        let calls = 2 * WRITE_QUEUE + 300;
        let first: Vec<_> = (0..calls as i32)
            .map(|n| {
                let mux = Arc::clone(&mux);
                let call = big(n, Duration::from_millis(300));
                tokio::spawn(async move { send(&mux, n, call, true).await })
            })
            .collect();
        let mut waited_out = 0;
        for call in first {
            match call.await.unwrap() {
                Ok(_) => {}
                Err(Error::Timeout { .. }) => waited_out += 1,
                Err(e) => panic!("expected a queued call or a timeout, got {e}"),
            }
        }
        assert!(waited_out > 0, "some calls found the queue full and timed out waiting for room");
        let conn = first_conn(&mux);
        assert!(lock(&conn.shared.pending).queued.len() <= WRITE_QUEUE, "the queue stays bounded");
        // A call that expects a reply has its entry while it waits for room; it is gone when the
        // call times out waiting, or is dropped waiting.
        let entries = || lock(&conn.shared.pending).waiting.len();
        let before = entries();
        let timed_out = send(&mux, -2, big(-2, Duration::from_millis(100)), false).await;
        assert!(matches!(timed_out, Err(Error::Timeout { .. })), "timed out waiting for room: {timed_out:?}");
        assert_eq!(entries(), before, "the timed-out call's entry is removed");
        let mut dropped = Box::pin(send(&mux, -3, big(-3, Duration::from_secs(20)), false));
        assert!(futures_util::FutureExt::now_or_never(&mut dropped).is_none());
        assert_eq!(entries(), before + 1, "the waiting call has its entry");
        drop(dropped);
        assert_eq!(entries(), before, "the dropped call's entry is removed");
        // Once the server reads, the queue drains and calls waiting for room go too.
        go_tx.send(()).unwrap();
        let waiting = big(-1, Duration::from_secs(20));
        let reply = send(&mux, -1, waiting, false).await.unwrap().unwrap();
        assert_eq!(peek(Protocol::Binary, &reply).unwrap().seqid, -1);
        assert!(!conn.is_closed());
    }

    #[tokio::test]
    async fn a_caller_calls_again_on_the_connection_its_reply_came_on() {
        let (addr, accepted) = echo_server().await;
        let mux = Mux::new(endpoint(addr), 4, None);
        for seqid in 1..=10 {
            let reply = send(&mux, seqid, call(seqid), false).await.unwrap().unwrap();
            assert_eq!(peek(Protocol::Binary, &reply).unwrap().seqid, seqid);
        }
        // In turn, the calls would have opened all four connections.
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "every call went where the last reply came from");
        // A call made elsewhere (no reply taken on this thread since) takes the next slot in turn.
        LAST_REPLY.set(None);
        send(&mux, 11, call(11), false).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// A server that echoes every frame; its address, and the connections it accepted.
    async fn echo_server() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    while let Ok(len) = stream.read_u32().await {
                        let mut frame = len.to_be_bytes().to_vec();
                        frame.resize(4 + len as usize, 0);
                        stream.read_exact(&mut frame[4..]).await.unwrap();
                        stream.write_all(&frame).await.unwrap();
                    }
                });
            }
        });
        (addr, accepted)
    }

    /// A connection's write side that hands over each write as it is made.
    struct Writes(mpsc::UnboundedSender<Vec<u8>>);

    impl AsyncWrite for Writes {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let _ = self.0.send(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A connection whose writes come out of the receiver and whose replies go into the stream.
    fn scripted_conn() -> (Arc<MuxConn>, mpsc::UnboundedReceiver<Vec<u8>>, tokio::io::DuplexStream) {
        let (client, server) = tokio::io::duplex(256 * 1024);
        let (writes, written) = mpsc::unbounded_channel();
        let conn = MuxConn::start(&endpoint("scripted".to_owned()), client, Writes(writes));
        (conn, written, server)
    }

    /// The frames of one write, each with its length prefix.
    fn frames(mut write: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while write.len() >= 4 {
            let len = 4 + u32::from_be_bytes(write[..4].try_into().unwrap()) as usize;
            frames.push(write[..len].to_vec());
            write = &write[len..];
        }
        assert!(write.is_empty(), "a write ends with a whole frame");
        frames
    }

    // One worker of the multi-threaded scheduler: a task woken by the running one runs next (the
    // writer, woken by the first caller's call, would write that call alone).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_callers_one_read_released_call_again_in_one_write() {
        // More callers than the scheduler runs between two looks at its I/O (61 tasks), so a
        // writer that only let the others run once would split their calls.
        const CALLERS: i32 = 150;
        let (conn, mut written, mut server) = scripted_conn();
        let callers: Vec<_> = (1..=CALLERS)
            .map(|n| {
                let conn = Arc::clone(&conn);
                tokio::spawn(async move {
                    Arc::clone(&conn).call(n, call(n), false, None, (0, 0)).await.reply.unwrap();
                    // At once, the next call: its reply never comes.
                    conn.call(1000 + n, call(1000 + n), false, None, (0, 0)).await.reply
                })
            })
            .collect();
        let mut first = Vec::new();
        while first.len() < CALLERS as usize {
            first.extend(frames(&written.recv().await.unwrap()));
        }
        // Every reply in one write: one read of the connection hands them all over.
        server.write_all(&first.concat()).await.unwrap();
        let next = frames(&written.recv().await.unwrap());
        let seqids: Vec<i32> = next.iter().map(|f| peek(Protocol::Binary, &f[4..]).unwrap().seqid).collect();
        assert_eq!(seqids.len(), CALLERS as usize, "one write carries every caller's next call: {seqids:?}");
        assert!(seqids.iter().all(|s| *s > 1000));
        callers.iter().for_each(|c| c.abort());
    }

    #[tokio::test]
    async fn a_caller_that_does_not_take_its_reply_holds_back_no_other_call() {
        let (conn, mut written, mut server) = scripted_conn();
        // Polled once (entry made, call queued), then held and never polled again.
        let mut held = Box::pin(Arc::clone(&conn).call(1, call(1), false, None, (0, 0)));
        assert!(futures_util::FutureExt::now_or_never(&mut held).is_none());
        let write = written.recv().await.unwrap();
        server.write_all(&write).await.unwrap();
        while lock(&conn.shared.pending).released == 0 {
            tokio::task::yield_now().await;
        }
        // Another call goes out and gets its answer though the held one's reply is never taken.
        let other = tokio::spawn({
            let conn = Arc::clone(&conn);
            async move { conn.call(2, call(2), false, None, (0, 0)).await.reply }
        });
        let write = tokio::time::timeout(Duration::from_secs(5), written.recv()).await;
        let write = write.expect("the other call is written").unwrap();
        server.write_all(&write).await.unwrap();
        let reply = other.await.unwrap().unwrap();
        assert_eq!(peek(Protocol::Binary, &reply.unwrap()).unwrap().seqid, 2);
        // The held call takes its reply when polled at last; none is left released.
        let reply = held.await.reply.unwrap();
        assert_eq!(peek(Protocol::Binary, &reply.unwrap()).unwrap().seqid, 1);
        assert_eq!(lock(&conn.shared.pending).released, 0);
    }

    // Two workers: callers run on both, callers released by one read are stolen by the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_cancelled_or_held_unpolled_never_stall_the_others() {
        let (addr, _) = echo_server().await;
        let mux = Arc::new(Mux::new(endpoint(addr), 2, None));
        const CALLERS: i32 = 64;
        const CALLS: i32 = 200;
        let callers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let mux = Arc::clone(&mux);
                tokio::spawn(async move {
                    let mut answered = 0;
                    for n in 0..CALLS {
                        let seqid = caller * 1000 + n;
                        match n % 10 {
                            // Given up at once: dropped queued, in flight, or with its reply.
                            3 => {
                                let _ = tokio::time::timeout(
                                    Duration::ZERO,
                                    send(&mux, seqid, call(seqid), false),
                                )
                                .await;
                            }
                            // Sent, then held without being polled while its reply comes, then dropped.
                            7 => {
                                let mut held = Box::pin(send(&mux, seqid, call(seqid), false));
                                let _ = futures_util::FutureExt::now_or_never(&mut held);
                                for _ in 0..3 {
                                    tokio::task::yield_now().await;
                                }
                            }
                            // Every other call must be answered well within its 30 s.
                            _ => {
                                let reply = tokio::time::timeout(
                                    Duration::from_secs(5),
                                    send(&mux, seqid, call(seqid), false),
                                )
                                .await;
                                let reply =
                                    reply.expect("answered in time: no writer stalled").unwrap().unwrap();
                                assert_eq!(peek(Protocol::Binary, &reply).unwrap().seqid, seqid);
                                answered += 1;
                            }
                        }
                    }
                    answered
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), CALLS * 8 / 10);
        }
        // Nothing is left waiting, or counted as released.
        for slot in mux.slots.iter() {
            if let Some(conn) = slot.conn.load_full() {
                let p = lock(&conn.shared.pending);
                assert!(p.waiting.is_empty(), "{} entries left", p.waiting.len());
                assert_eq!(p.released, 0);
            }
        }
    }
}
