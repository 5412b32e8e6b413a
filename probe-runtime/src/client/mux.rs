//! Many calls in flight on one connection, matched to their replies by seqid: for probe servers,
//! which run a connection's calls concurrently.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{OnceCell, mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::debug;

use super::endpoint::Endpoint;
use crate::error::Error;
use crate::metrics::PhaseStats;
use crate::transport::{MessageReader, write_loop};

/// Messages queued for a connection's writer before senders wait.
const WRITE_QUEUE: usize = 1024;

/// Up to `size` multiplexed connections to one endpoint, used in turn, opened when first needed
/// and replaced when they break.
pub(super) struct Mux {
    endpoint: Arc<Endpoint>,
    slots: Vec<Mutex<Arc<OnceCell<Arc<MuxConn>>>>>,
    next: AtomicUsize,
    /// Where connect, send and wait times go, unless metrics are off.
    phases: Option<Arc<PhaseStats>>,
}

impl Mux {
    pub(super) fn new(endpoint: Arc<Endpoint>, size: usize, phases: Option<Arc<PhaseStats>>) -> Self {
        let slots = (0..size.max(1)).map(|_| Mutex::new(Arc::new(OnceCell::new()))).collect();
        Mux { endpoint, slots, next: AtomicUsize::new(0), phases }
    }

    /// Sends `message` (whose seqid is `seqid`) and waits for its reply (none for oneway calls).
    pub(super) async fn call(
        &self,
        seqid: i32,
        message: Bytes,
        oneway: bool,
    ) -> Result<Option<Bytes>, Error> {
        let conn = self.conn().await?;
        conn.call(seqid, message, oneway, self.phases.as_deref()).await
    }

    /// Opens the first connection now.
    pub(super) async fn warm(&self) -> Result<(), Error> {
        self.conn().await.map(drop)
    }

    /// The next slot's connection, opened (or reopened) if needed. Concurrent callers of one
    /// slot share one connect.
    async fn conn(&self) -> Result<Arc<MuxConn>, Error> {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let Some(slot) = self.slots.get(at) else {
            return Err(self.endpoint.broken(io::ErrorKind::NotConnected, "no connection slot"));
        };
        let mut cell = lock(slot).clone();
        if cell.get().is_some_and(|conn| conn.is_closed()) {
            let mut current = lock(slot);
            if Arc::ptr_eq(&current, &cell) {
                *current = Arc::new(OnceCell::new());
            }
            cell = current.clone();
        }
        cell.get_or_try_init(|| MuxConn::open(&self.endpoint, self.phases.as_deref())).await.cloned()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The calls waiting for replies on one connection.
struct Pending {
    waiting: HashMap<i32, oneshot::Sender<Result<Bytes, Error>>>,
    /// Why the connection closed, once it has.
    closed: Option<String>,
}

/// What a connection's handle and its reader and writer tasks share.
struct Shared {
    endpoint: Arc<Endpoint>,
    pending: Mutex<Pending>,
}

impl Shared {
    /// Fails every waiting call and every later one.
    fn close(&self, why: &str) {
        let waiting = {
            let mut p = lock(&self.pending);
            p.closed.get_or_insert_with(|| why.to_owned());
            std::mem::take(&mut p.waiting)
        };
        debug!(peer = %self.endpoint.addr, reason = why, failed_calls = waiting.len(), "connection closed");
        for (_, tx) in waiting {
            let _ = tx.send(Err(self.endpoint.broken(io::ErrorKind::ConnectionAborted, why)));
        }
    }
}

/// One multiplexed connection: a writer task fed by a queue, a reader task that hands each reply
/// to the call waiting for its seqid.
struct MuxConn {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Bytes>,
    reader: AbortHandle,
}

impl Drop for MuxConn {
    fn drop(&mut self) {
        // The writer ends by itself once the queue's sender is gone and all is written.
        self.reader.abort();
    }
}

impl MuxConn {
    async fn open(endpoint: &Arc<Endpoint>, phases: Option<&PhaseStats>) -> Result<Arc<MuxConn>, Error> {
        let started = std::time::Instant::now();
        let (read_half, write_half) = endpoint.connect().await?.into_split();
        if let Some(phases) = phases {
            phases.connect.record(started.elapsed());
        }
        let shared = Arc::new(Shared {
            endpoint: endpoint.clone(),
            pending: Mutex::new(Pending { waiting: HashMap::new(), closed: None }),
        });
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let writer_shared = shared.clone();
        let framing = endpoint.wire.framing;
        let writer = tokio::spawn(async move {
            match write_loop(write_half, rx, framing).await {
                Ok(()) => writer_shared.close("the transport was dropped"),
                Err(e) => writer_shared.close(&format!("write failed: {e}")),
            }
        });
        let reader = MessageReader::new(read_half, endpoint.wire, endpoint.limits);
        let reader = tokio::spawn(read_replies(reader, shared.clone(), writer.abort_handle())).abort_handle();
        Ok(Arc::new(MuxConn { shared, tx, reader }))
    }

    fn is_closed(&self) -> bool {
        lock(&self.shared.pending).closed.is_some()
    }

    /// Sends a call and waits for its reply, recording the send (queueing) and wait times.
    async fn call(
        &self,
        seqid: i32,
        message: Bytes,
        oneway: bool,
        phases: Option<&PhaseStats>,
    ) -> Result<Option<Bytes>, Error> {
        let endpoint = &self.shared.endpoint;
        let closed = || endpoint.broken(io::ErrorKind::ConnectionAborted, "the connection closed");
        if oneway {
            if let Some(why) = &lock(&self.shared.pending).closed {
                return Err(endpoint.broken(io::ErrorKind::ConnectionAborted, why.clone()));
            }
            self.tx.send(message).await.map_err(|_| closed())?;
            return Ok(None);
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        {
            let mut p = lock(&self.shared.pending);
            if let Some(why) = &p.closed {
                return Err(endpoint.broken(io::ErrorKind::ConnectionAborted, why.clone()));
            }
            match p.waiting.entry(seqid) {
                Entry::Occupied(_) => {
                    let why = format!("seqid {seqid} is already in flight on this connection");
                    return Err(Error::BadReply(why));
                }
                Entry::Vacant(v) => v.insert(reply_tx),
            };
        }
        // If this call is dropped (timed out) before its reply, forget it.
        let forget = Forget { shared: &self.shared, seqid: Some(seqid) };
        let started = phases.map(|_| std::time::Instant::now());
        self.tx.send(message).await.map_err(|_| closed())?;
        let sent = phases.zip(started).map(|(phases, started)| {
            let now = std::time::Instant::now();
            phases.send.record(now.saturating_duration_since(started));
            (phases, now)
        });
        let reply = reply_rx.await.map_err(|_| closed())?;
        forget.disarm();
        if let Some((phases, sent)) = sent {
            phases.wait.record(sent.elapsed());
        }
        reply.map(Some)
    }
}

/// Removes a call's entry if the call ends before its reply arrives.
struct Forget<'a> {
    shared: &'a Shared,
    seqid: Option<i32>,
}

impl Forget<'_> {
    fn disarm(mut self) {
        self.seqid = None;
    }
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(seqid) = self.seqid {
            lock(&self.shared.pending).waiting.remove(&seqid);
        }
    }
}

/// Hands each reply to the call waiting for its seqid, until the connection fails; then stops the
/// writer too, so the socket closes rather than lingering half-open.
async fn read_replies(mut reader: MessageReader<OwnedReadHalf>, shared: Arc<Shared>, writer: AbortHandle) {
    let endpoint = &shared.endpoint;
    let why = loop {
        let reply = match reader.read_message().await {
            Ok(Some(reply)) => reply,
            Ok(None) => break "the server closed the connection".to_owned(),
            Err(e) => break format!("reading a reply failed: {e}"),
        };
        let seqid = match endpoint.wire.protocol.decode_header(reply.clone(), endpoint.limits) {
            Ok((header, _)) => header.seqid,
            Err(e) => break format!("a reply header does not decode: {e}"),
        };
        let waiting = lock(&shared.pending).waiting.remove(&seqid);
        match waiting {
            Some(tx) => drop(tx.send(Ok(reply))),
            None => {
                debug!(peer = %endpoint.addr, seqid, "a reply for no waiting call (timed out?) is dropped")
            }
        }
    };
    shared.close(&why);
    writer.abort();
}
