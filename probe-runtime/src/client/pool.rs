//! One call at a time per connection, connections pooled: what stock Thrift servers expect.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::endpoint::Endpoint;
use super::header::encode_prefixed;
use super::tcp::{Answer, timed_out};
use crate::deadlines::Deadlines;
use crate::error::Error;
use crate::metrics::PhaseStats;
use crate::tls::ClientStream;
use crate::transport::{MessageReader, encode_frame};

/// Write buffers larger than this are not kept with an idle connection.
const KEEP_CAPACITY: usize = 64 * 1024;

/// A pooled connection: its reader, and the buffer its calls are written from (kept, so a call
/// allocates nothing). Boxed, so that taking it from the pool, carrying it through a call and
/// putting it back moves a pointer, not the reader's few hundred bytes.
struct Conn {
    reader: MessageReader<ClientStream>,
    out: BytesMut,
}

/// A connection resting in the pool.
struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

/// Up to `size` connections to one endpoint, each carrying one call at a time. A call waits for
/// a free connection when all are busy; a connection that failed or timed out is dropped.
pub(super) struct Pool {
    endpoint: Arc<Endpoint>,
    idle: Mutex<Vec<Idle>>,
    permits: Semaphore,
    idle_timeout: Duration,
    /// Where connect, send and wait times go, unless metrics are off.
    phases: Option<Arc<PhaseStats>>,
    /// The deadlines of the calls in flight.
    deadlines: Deadlines,
}

impl Pool {
    pub(super) fn new(
        endpoint: Arc<Endpoint>,
        size: usize,
        idle_timeout: Duration,
        phases: Option<Arc<PhaseStats>>,
    ) -> Self {
        let (idle, permits, deadlines) = (Mutex::new(Vec::new()), Semaphore::new(size), Deadlines::default());
        Pool { endpoint, idle, permits, idle_timeout, phases, deadlines }
    }

    /// Connections free to take (all of them while no call is in flight).
    #[cfg(test)]
    pub(super) fn free(&self) -> usize {
        self.permits.available_permits()
    }

    /// Opens one connection now and keeps it for the first call.
    pub(super) async fn warm(&self) -> Result<(), Error> {
        let conn = self.open().await?;
        self.put_back(conn, Instant::now());
        Ok(())
    }

    /// Sends `message` (named `prefix:name` when `prefix` is given) and waits for its reply (none
    /// for oneway calls), or fails with a timeout of `method` at `deadline` (waiting for a
    /// connection, connecting, writing or waiting for the reply). `now` is when the call was
    /// handed over: a connection idle since then counts as idle, and its send time and its
    /// timeout's budget count from then (as a multiplexed call's do).
    pub(super) async fn call(
        &self,
        message: Bytes,
        prefix: Option<&'static str>,
        oneway: bool,
        method: &'static str,
        (now, deadline): (std::time::Instant, std::time::Instant),
    ) -> Answer {
        let mut call = std::pin::pin!(self.exchange(message, prefix, oneway, now));
        let mut watch = self.deadlines.watch(deadline);
        Answer::from(match std::future::poll_fn(|cx| watch.poll(call.as_mut(), cx)).await {
            Some(reply) => reply,
            // The call is dropped with its connection, whose reply may still come.
            None => Err(timed_out(method, deadline.saturating_duration_since(now))),
        })
    }

    /// [`Pool::call`] without its deadline.
    async fn exchange(
        &self,
        message: Bytes,
        prefix: Option<&'static str>,
        oneway: bool,
        now: std::time::Instant,
    ) -> Result<Option<Bytes>, Error> {
        let _permit = self.permits.acquire().await.map_err(|_| {
            self.endpoint.broken(io::ErrorKind::NotConnected, "the connection pool is closed")
        })?;
        let now = Instant::from_std(now);
        // The send time starts with the call (a wait for a free connection counts, as a wait for
        // room in a multiplexed connection's queue does), or once a new connection is open (its
        // connect time counts apart).
        let (mut conn, started) = match self.take_idle(now) {
            Some(conn) => (conn, now),
            // Boxed: connecting (a TLS handshake's state too) stays out of every call's future.
            None => (Box::pin(self.open()).await?, Instant::now()),
        };
        let Conn { reader, out } = &mut *conn;
        out.clear();
        let wire = self.endpoint.wire;
        match prefix {
            Some(service) if encode_prefixed(wire.protocol, wire.framing, &message, service, out) => {}
            Some(service) => {
                let renamed = super::mux::rename(wire, &message, service)
                    .map_err(|why| self.endpoint.broken(io::ErrorKind::InvalidInput, why))?;
                encode_frame(wire.framing, &renamed, out).map_err(|e| self.endpoint.wire_error(e))?;
            }
            None => encode_frame(wire.framing, &message, out).map_err(|e| self.endpoint.wire_error(e))?,
        }
        reader.get_mut().write_all(out).await.map_err(|e| self.endpoint.io_error(e))?;
        if out.capacity() > KEEP_CAPACITY {
            *out = BytesMut::new();
        }
        let sent = self.phases.as_ref().map(|phases| {
            let sent = std::time::Instant::now();
            phases.send.record(sent.saturating_duration_since(started.into_std()));
            (phases, sent)
        });
        if oneway {
            self.put_back(conn, now);
            return Ok(None);
        }
        match reader.read_message().await {
            Ok(Some(reply)) => {
                if let Some((phases, sent)) = sent {
                    phases.wait.record(sent.elapsed());
                }
                // Bytes beyond the reply mean the connection is out of step: don't reuse it.
                if reader.buffered() == 0 {
                    self.put_back(conn, now);
                }
                Ok(Some(reply))
            }
            Ok(None) => Err(self
                .endpoint
                .broken(io::ErrorKind::UnexpectedEof, "the server closed the connection before replying")),
            Err(e) => Err(self.endpoint.wire_error(e)),
        }
    }

    async fn open(&self) -> Result<Box<Conn>, Error> {
        let started = std::time::Instant::now();
        let stream = self.endpoint.connect().await?;
        if let Some(phases) = &self.phases {
            phases.connect.record(started.elapsed());
        }
        let reader = MessageReader::new(stream, self.endpoint.wire, self.endpoint.limits);
        Ok(Box::new(Conn { reader, out: BytesMut::new() }))
    }

    /// The most recently used idle connection that is still open and was not idle too long at
    /// `now`.
    fn take_idle(&self, now: Instant) -> Option<Box<Conn>> {
        loop {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()?;
            if now.saturating_duration_since(idle.since) < self.idle_timeout
                && idle.conn.reader.get_mut().still_open()
            {
                return Some(idle.conn);
            }
        }
    }

    /// Rests `conn` in the pool; its last call began at `since`.
    fn put_back(&self, conn: Box<Conn>, since: Instant) {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(Idle { conn, since });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::codec::Limits;
    use crate::service::Protocol;
    use crate::transport::{Framing, WireFormat};

    /// A server that echoes every frame after `delay`; its address, and the most connections it
    /// had open at once.
    async fn slow_echo(delay: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let seen = Arc::clone(&most);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
                seen.fetch_max(now_open, Ordering::SeqCst);
                let open = Arc::clone(&open);
                tokio::spawn(async move {
                    while let Ok(len) = stream.read_u32().await {
                        let mut frame = len.to_be_bytes().to_vec();
                        frame.resize(4 + len as usize, 0);
                        if stream.read_exact(&mut frame[4..]).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(delay).await;
                        if stream.write_all(&frame).await.is_err() {
                            break;
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (addr, most)
    }

    fn pool(addr: String, size: usize) -> Pool {
        let endpoint = Arc::new(Endpoint {
            addr,
            wire: WireFormat::new(Protocol::Binary, Framing::Framed),
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(3),
            tls: None,
        });
        Pool::new(endpoint, size, Duration::from_secs(60), None)
    }

    async fn call(pool: &Pool, text: &str) -> Result<Option<Bytes>, Error> {
        let now = std::time::Instant::now();
        let message = Bytes::copy_from_slice(text.as_bytes());
        pool.call(message, None, false, "echo", (now, now + Duration::from_secs(10))).await.reply
    }

    #[tokio::test]
    async fn callers_beyond_the_size_wait_and_each_gets_its_own_reply() {
        let (addr, most) = slow_echo(Duration::from_millis(5)).await;
        let pool = pool(addr, 2);
        let calls = (0..12).map(|i| {
            let pool = &pool;
            async move { (i, call(pool, &format!("call {i}")).await) }
        });
        for (i, got) in futures_util::future::join_all(calls).await {
            assert_eq!(got.unwrap().as_deref(), Some(format!("call {i}").as_bytes()));
        }
        assert!(most.load(Ordering::SeqCst) <= 2, "{} connections at once", most.load(Ordering::SeqCst));
        assert_eq!(pool.free(), 2);
        assert_eq!(pool.idle.lock().unwrap().len(), 2, "both connections rest in the pool");
    }

    #[tokio::test]
    async fn cancelled_calls_give_their_room_back_and_strand_no_waiter() {
        let (addr, most) = slow_echo(Duration::from_millis(30)).await;
        let pool = pool(addr, 1);
        // One call on the only connection, cancelled mid-call; two waiting for it, one of them
        // cancelled while it waits; the last must still get the connection.
        let cancelled_mid_call = tokio::time::timeout(Duration::from_millis(10), call(&pool, "a"));
        let cancelled_waiting = tokio::time::timeout(Duration::from_millis(5), call(&pool, "b"));
        let patient = call(&pool, "c");
        let (a, b, c) = tokio::join!(cancelled_mid_call, cancelled_waiting, patient);
        assert!(a.is_err() && b.is_err(), "both cancelled: {a:?} {b:?}");
        assert_eq!(c.unwrap().as_deref(), Some(&b"c"[..]));
        assert_eq!(pool.free(), 1);
        // The cancelled call's connection was out of step: it was closed, not put back.
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
        // The server may still hold the closed connection while it sleeps, beside the new one.
        assert!(most.load(Ordering::SeqCst) <= 2, "{} connections at once", most.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_call_past_its_deadline_times_out_and_its_connection_is_not_reused() {
        let (addr, _) = slow_echo(Duration::from_millis(300)).await;
        let pool = pool(addr, 1);
        let now = std::time::Instant::now();
        let message = Bytes::from_static(b"late");
        let answer = pool.call(message, None, false, "echo", (now, now + Duration::from_millis(30))).await;
        let waited = now.elapsed();
        match answer.reply {
            Err(Error::Timeout { method, timeout_ms: 30 }) if method == "echo" => {}
            other => panic!("expected a timeout of echo after 30 ms, got {other:?}"),
        }
        assert!(waited >= Duration::from_millis(30) && waited < Duration::from_millis(250), "{waited:?}");
        assert_eq!(pool.free(), 1);
        assert_eq!(pool.idle.lock().unwrap().len(), 0, "the late reply would be read as the next one's");
        assert_eq!(pool.deadlines.watched(), 0);
        assert_eq!(call(&pool, "next").await.unwrap().as_deref(), Some(&b"next"[..]));
    }

    #[tokio::test]
    async fn a_failed_connect_gives_its_room_back() {
        // Nothing listens there.
        let addr = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let pool = pool(addr, 1);
        for _ in 0..3 {
            assert!(call(&pool, "x").await.is_err());
            assert_eq!(pool.free(), 1);
        }
    }
}
