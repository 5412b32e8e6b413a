//! One connection: detect what the peer speaks, then read requests, run their calls and write
//! their replies, all on the connection's task.
//!
//! A call is polled as soon as its request is read; when its handler does not wait (most do
//! not), its reply is framed into the connection's output buffer right away, and everything
//! buffered goes out in one write once the requests read so far have run. Calls that wait run
//! concurrently on the same task and their replies go out as they complete, matched by the
//! client through their seqid.
//!
//! A server with TLS tells a TLS connection from a plaintext one by its first byte, runs the
//! handshake within the handshake timeout, and serves the decrypted stream the same way (the code
//! is generic over the stream's halves, so plaintext connections run exactly as without TLS).

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::coop::unconstrained;
use tokio::time::{Instant, Sleep, sleep_until, timeout, timeout_at};
use tracing::{debug, warn};

use super::ServerConfig;
use super::admission::{Admission, Ticket};
use super::call::{Counted, Finished, Routes, Running, Started};
use super::header_call::HeaderCall;
use super::limits::ServerLimits;
use super::router::Router;
use crate::codec::{ApplicationException, ApplicationExceptionKind, shown_method};
use crate::metrics::ServerStats;
use crate::service::{Protocol, Reply, Request};
use crate::tls::{HANDSHAKE_RECORD, ServerTlsState, TlsMode};
use crate::transport::header::{self, HeaderError};
use crate::transport::{FrameWriter, Framing, Held, MemoryBudget, MessageReader, WireError};

/// How long, and how many bytes, to drain from a peer that broke the protocol before closing.
const LINGER_TIME: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 1024 * 1024;
/// Requests are not read while more reply bytes than this wait for the peer to read them.
const MAX_QUEUED_REPLIES: usize = 256 * 1024;
/// Reply bytes held of the memory budget beyond those queued that are given back.
const REPLY_SLACK: usize = 64 * 1024;
/// What a plaintext peer of a port that requires TLS is told.
pub(crate) const TLS_REQUIRED: &str = "this port requires TLS; configure the client's TLS (probe: \
     PROBE_CLIENT_TLS_CA or TcpTransportBuilder::tls; Apache Thrift Python: TSSLSocket) and connect again";

/// What every connection of a server shares.
pub(super) struct Shared {
    pub(super) router: Router,
    pub(super) config: ServerConfig,
    /// The call statistics, unless metrics are off.
    pub(super) metrics: Option<Arc<ServerStats>>,
    /// The address served, as call spans show it.
    pub(super) node: String,
    /// The connection slots.
    pub(super) admission: Arc<Admission>,
    /// What all connections' read buffers and queued replies may hold.
    pub(super) budget: Arc<MemoryBudget>,
    /// The request limits.
    pub(super) limits: Arc<ServerLimits>,
    /// The caller policies (replaced by the builder when it configures some).
    pub(super) callers: Arc<super::ServerCallers>,
    /// TLS, when the server serves it.
    pub(super) tls: Option<Arc<ServerTlsState>>,
    /// The deadlines of handlers that wait: a watch per CPU, a connection's calls in one (by its
    /// peer's port), so the workers seldom take the same lock.
    deadlines: Box<[crate::deadlines::Deadlines]>,
}

impl Shared {
    /// Where the deadlines of `peer`'s waiting calls are watched.
    pub(super) fn deadlines(&self, peer: SocketAddr) -> &crate::deadlines::Deadlines {
        &self.deadlines[usize::from(peer.port()) % self.deadlines.len()]
    }

    pub(super) fn new(
        router: Router,
        services: &[Arc<dyn crate::service::Dispatch>],
        configured: std::collections::HashMap<&'static str, crate::limits::RequestLimits>,
        config: ServerConfig,
        metrics: Option<Arc<ServerStats>>,
        node: String,
    ) -> Self {
        // Room for a whole frame being read and a whole reply being written, at least.
        let budget =
            Arc::new(MemoryBudget::new(config.memory_budget.max(config.limits.max_frame.saturating_mul(2))));
        let admission = Arc::new(Admission::new(&config, budget.clone()));
        let limits = Arc::new(ServerLimits::new(services, configured, admission.clone()));
        if let Some(metrics) = &metrics {
            metrics.watch_buffered(&node, budget.clone());
            metrics.watch_limits(limits.clone());
        }
        let callers = Arc::new(super::ServerCallers::new(services, std::collections::HashMap::new()));
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let deadlines = (0..cpus.min(16)).map(|_| crate::deadlines::Deadlines::default()).collect();
        Shared { router, config, metrics, node, admission, budget, limits, callers, tls: None, deadlines }
    }
}

/// Serves one accepted connection until the peer closes it, it breaks the protocol, it idles past
/// the read timeout, or `stop` turns true; calls already running finish first.
///
/// A new connection has the handshake timeout to send its first bytes and the read timeout, from
/// the connect, to send its first whole request; until then it holds a pending slot of `ticket`
/// and may be evicted for a newer connection.
pub(super) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    ticket: Ticket,
    mut stop: watch::Receiver<bool>,
) {
    let accepted = Instant::now();
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let config = &shared.config;
    // One deadline from the connect to the first whole request; a shorter one for the first bytes
    // (and the TLS handshake).
    let first_request = accepted + config.read_timeout;
    let first_bytes = (accepted + config.handshake_timeout).min(first_request);
    // The address the peer reached: caller tokens are signed for it.
    let local = stream.local_addr().unwrap_or(peer);
    let start = Start { peer, local, first_bytes, first_request };
    let Some(tls) = shared.tls.clone() else {
        let (read_half, write_half) = stream.into_split();
        return serve_stream(read_half, write_half, start, &shared, ticket, stop, Peer::PLAIN).await;
    };
    // A TLS ClientHello starts with a handshake record; no Thrift message starts with its byte.
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        peeked = timeout_at(first_bytes, stream.peek(&mut first)) => peeked,
        () = ticket.evicted() => return debug!("closing: evicted for a newer connection before sending anything"),
        () = stopped(&mut stop) => return,
    };
    match peeked {
        Ok(Ok(0)) => return debug!("closed before sending anything"),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return debug!(error = %e, "closing: reading the first byte failed"),
        Err(_) => return debug!("closing: nothing received within the handshake timeout"),
    }
    if first[0] != HANDSHAKE_RECORD {
        let refuse = tls.mode() == TlsMode::Required;
        let (read_half, write_half) = stream.into_split();
        let peer = Peer { tls_appkey: None, refuse_plaintext: refuse };
        return serve_stream(read_half, write_half, start, &shared, ticket, stop, peer).await;
    }
    let handshake = tokio_rustls::TlsAcceptor::from(tls.config()).accept(stream);
    let accepted = tokio::select! {
        accepted = timeout_at(first_bytes, handshake) => accepted,
        () = ticket.evicted() => return debug!("closing: evicted for a newer connection during the TLS handshake"),
        () = stopped(&mut stop) => return,
    };
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return warn!(error = %e, "closing: the TLS handshake failed"),
        Err(_) => return debug!("closing: the TLS handshake did not finish within the handshake timeout"),
    };
    let tls_appkey = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|cert| crate::tls::certificate_appkey(cert))
        .map(Arc::<str>::from);
    debug!(appkey = ?tls_appkey, "TLS established");
    let (read_half, write_half) = tokio::io::split(stream);
    let peer = Peer { tls_appkey, refuse_plaintext: false };
    serve_stream(read_half, write_half, start, &shared, ticket, stop, peer).await
}

/// When a connection was accepted, as deadlines.
#[derive(Debug, Clone, Copy)]
struct Start {
    peer: SocketAddr,
    /// The address the peer connected to.
    local: SocketAddr,
    /// The first bytes (and the TLS handshake) must come by then.
    first_bytes: Instant,
    /// The first whole request must come by then.
    first_request: Instant,
}

/// What the server knows of a connection's peer besides its address.
#[derive(Debug, Clone)]
struct Peer {
    /// The appkey its verified TLS client certificate names.
    tls_appkey: Option<Arc<str>>,
    /// A plaintext peer of a port that requires TLS: its first call is answered with an error.
    refuse_plaintext: bool,
}

impl Peer {
    const PLAIN: Peer = Peer { tls_appkey: None, refuse_plaintext: false };
}

/// [`serve_connection`] once the stream is known: plaintext or TLS, split in halves.
async fn serve_stream<R, W>(
    read_half: R,
    write_half: W,
    start: Start,
    shared: &Arc<Shared>,
    mut ticket: Ticket,
    mut stop: watch::Receiver<bool>,
    about: Peer,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Start { peer, local, first_bytes, first_request } = start;
    let config = &shared.config;
    let detected = tokio::select! {
        detected = timeout_at(first_bytes, MessageReader::detect(read_half, config.limits)) => detected,
        () = ticket.evicted() => return debug!("closing: evicted for a newer connection before sending anything"),
        () = stopped(&mut stop) => return,
    };
    let mut reader = match detected {
        Ok(Ok(Some(reader))) => reader,
        Ok(Ok(None)) => return debug!("closed before sending anything"),
        Ok(Err(e)) => return warn!(error = %e, "closing: not a Thrift peer"),
        Err(_) => return debug!("closing: nothing received within the handshake timeout"),
    };
    let wire = reader.wire();
    if wire.framing == Framing::Unframed && !config.allow_unframed {
        return warn!(%wire, "closing: this server accepts framed peers only");
    }
    debug!(%wire, "peer detected");
    reader.set_budget(shared.budget.clone());
    let mut connection = Connection {
        shared,
        routes: Routes::new(shared, peer, local, about.tls_appkey),
        protocol: wire.protocol,
        header: wire.framing == Framing::Header,
        reader,
        writer: FrameWriter::new(write_half, wire.framing),
        calls: FuturesUnordered::new(),
        deadline: first_request,
        closing: None,
        failed: None,
        uncounted: Vec::new(),
        replies_held: Held::new(shared.budget.clone()),
    };
    let first = tokio::select! {
        first = timeout_at(first_request, poll_fn(|cx| connection.reader.poll_read_message(cx))) => first,
        () = ticket.evicted() => return debug!("closing: evicted for a newer connection before a whole request"),
        () = stopped(&mut stop) => return,
    };
    match first {
        Ok(Ok(Some(message))) if about.refuse_plaintext => connection.refuse_plaintext(message),
        Ok(Ok(Some(message))) => {
            ticket.established();
            let now = Instant::now();
            connection.touch(now);
            let mut message = Some(message);
            poll_fn(|cx| {
                if let Some(message) = message.take() {
                    connection.received(message, now.into_std(), cx);
                }
                Poll::Ready(())
            })
            .await;
        }
        Ok(Ok(None)) => return debug!("closed before a whole request"),
        Ok(Err(e)) => connection.refuse(e),
        Err(_) => return debug!("closing: no whole request within the read timeout of the connect"),
    }
    // Checked without a lock on every poll; the future below (which locks) is only polled
    // again once the value changed.
    let signal = stop.clone();
    let shutdown = stopped(&mut stop);
    tokio::pin!(shutdown);
    // Built once: activity only moves `deadline`; the timer is re-armed when it fires early.
    let idle = sleep_until(connection.deadline);
    tokio::pin!(idle);
    let mut watch = Watch { signal, shutdown, shutdown_armed: false, idle, idle_armed: false };
    match poll_fn(|cx| connection.poll_serve(cx, &mut watch)).await {
        Ok(Closing::Broken) => {
            connection.shut_down().await;
            linger(connection.reader).await;
        }
        Ok(Closing::Stop | Closing::PeerClosed | Closing::Idle) => connection.shut_down().await,
        // The peer is gone or does not read: drop its calls.
        Err(e) => debug!(error = %e, "closing: write failed"),
    }
    debug!("connection closed");
}

/// Why a connection stopped reading requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// The server shuts down.
    Stop,
    /// The peer closed its side.
    PeerClosed,
    /// Nothing happened for the read timeout.
    Idle,
    /// The peer broke the protocol (it may still be sending).
    Broken,
}

/// One connection being served: its reader, its calls and its writer, driven by one task.
struct Connection<'a, R, W> {
    shared: &'a Shared,
    routes: Routes<'a>,
    protocol: Protocol,
    /// The peer speaks THeader: each request is a header frame (which names its protocol).
    header: bool,
    reader: MessageReader<R>,
    writer: FrameWriter<W>,
    /// The calls whose handlers wait.
    calls: FuturesUnordered<Running<'a>>,
    /// When the connection closes unless something happens (a request read, a call finishing,
    /// a reply written) or calls are running.
    deadline: Instant,
    /// Set once no more requests are read, and why.
    closing: Option<Closing>,
    /// A reply could not be queued: the connection closes.
    failed: Option<WireError>,
    /// Calls finished and not counted yet: counted together, with one clock read, once the
    /// requests read so far have run.
    uncounted: Vec<Counted>,
    /// What the queued replies hold of the memory budget.
    replies_held: Held,
}

/// Where reading requests stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// The socket has nothing more; the task is woken when it has.
    Waiting,
    /// Held back: `max_in_flight` calls run, or too many replies wait to be written.
    HeldBack,
    /// No more requests are read.
    Closed,
}

impl<'a, R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Connection<'a, R, W> {
    /// Serves until the connection should close and every call has finished and been written
    /// (`Ok`, with why it closes), or until writing fails or the peer stops reading (`Err`).
    fn poll_serve<S: Future<Output = ()>>(
        &mut self,
        cx: &mut Context<'_>,
        watch: &mut Watch<'_, S>,
    ) -> Poll<Result<Closing, WireError>> {
        if self.closing.is_none() && watch.shutting_down(cx) {
            debug!("closing: the server is shutting down");
            self.closing = Some(Closing::Stop);
        }
        loop {
            let finished = self.poll_calls(cx);
            let reading = self.poll_requests(cx);
            self.count(finished);
            let queued = self.writer.queued();
            if queued > 0 {
                // Replies already made are counted even past the budget; reads wait meanwhile.
                self.replies_held.cover(queued);
                match self.writer.poll_flush(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    // A peer reading a large reply slowly is not idle.
                    Poll::Pending if self.writer.queued() < queued => self.touch(Instant::now()),
                    Poll::Pending => {}
                }
                self.replies_held.shrink_to(self.writer.queued(), REPLY_SLACK);
            }
            if let Some(e) = self.failed.take() {
                return Poll::Ready(Err(e));
            }
            if let Some(closing) = self.closing
                && self.calls.is_empty()
                && self.writer.queued() == 0
            {
                return Poll::Ready(Ok(closing));
            }
            // Read on if what held reading back is gone (calls finished, replies written).
            if !(reading == Reading::HeldBack && self.may_read()) {
                break;
            }
        }
        while watch.poll_idle(cx, self.deadline).is_ready() {
            let now = Instant::now();
            if !self.calls.is_empty() {
                // Calls are running: not idle.
                self.touch(now);
            } else if self.writer.queued() > 0 {
                let stuck = std::io::Error::new(std::io::ErrorKind::TimedOut, "the peer reads no replies");
                return Poll::Ready(Err(stuck.into()));
            } else {
                debug!("closing: idle past the read timeout");
                return Poll::Ready(Ok(Closing::Idle));
            }
        }
        Poll::Pending
    }

    /// Whether another request may be read now.
    fn may_read(&self) -> bool {
        self.closing.is_none()
            && self.calls.len() < self.shared.config.max_in_flight
            && self.writer.queued() < MAX_QUEUED_REPLIES
    }

    /// Moves the deadline: something happened at `now`.
    fn touch(&mut self, now: Instant) {
        self.deadline = now + self.shared.config.read_timeout;
    }

    /// Reads the requests that have arrived, as long as it may, and starts their calls.
    fn poll_requests(&mut self, cx: &mut Context<'_>) -> Reading {
        // Requests that came in one read were received at the same time: one clock read each.
        let mut received = None;
        loop {
            if self.closing.is_some() {
                return Reading::Closed;
            }
            if !self.may_read() {
                return Reading::HeldBack;
            }
            match self.reader.poll_read_message(cx) {
                Poll::Pending => return Reading::Waiting,
                Poll::Ready(Ok(Some(message))) => {
                    let now = *received.get_or_insert_with(Instant::now);
                    if self.reader.buffered() == 0 {
                        received = None;
                    }
                    self.touch(now);
                    self.received(message, now.into_std(), cx);
                }
                Poll::Ready(Ok(None)) => {
                    debug!("the peer closed its side");
                    self.closing = Some(Closing::PeerClosed);
                }
                Poll::Ready(Err(e)) => self.refuse(e),
            }
        }
    }

    /// Starts the call of `message`, read at `received`, and polls it once: finished at once,
    /// its reply is queued; otherwise it joins the running calls.
    fn received(&mut self, message: Bytes, received: std::time::Instant, cx: &mut Context<'_>) {
        let limits = self.shared.config.limits;
        let (protocol, message, header) = match self.header {
            false => (self.protocol, message, None),
            true => {
                // The headers the context reads are read as the frame is.
                let mut arrival = crate::context::Arrival::default();
                match header::decode_seeing(message, limits, |key, value| arrival.see(key, value)) {
                    Ok((frame, payload)) => {
                        let call = HeaderCall::new(frame, arrival, received, self.routes.tls_appkey());
                        (call.protocol(), payload, Some(call))
                    }
                    Err(e) => return self.bad_header(e),
                }
            }
        };
        let parsed = match self.routes.expected() {
            Some(expected) => Request::parse_expecting(protocol, message, limits, expected),
            None => Request::parse(protocol, message, limits),
        };
        let request = match parsed {
            Ok(request) => request,
            Err(e) => {
                warn!(error = %e, "closing: a request header does not decode");
                self.closing = Some(Closing::Broken);
                return;
            }
        };
        match self.routes.start(request, received, header, cx) {
            Started::Done(finished) => self.finish(finished),
            Started::Running(running) => self.calls.push(running),
        }
    }

    /// Finishes the running calls that have completed; returns whether any had.
    fn poll_calls(&mut self, cx: &mut Context<'_>) -> bool {
        let mut finished_any = false;
        while !self.calls.is_empty() {
            match self.calls.poll_next_unpin(cx) {
                Poll::Ready(Some(finished)) => {
                    finished_any = true;
                    self.finish(finished);
                }
                _ => break,
            }
        }
        finished_any
    }

    /// Stops reading after a header frame that cannot be read: counted, logged, closed.
    fn bad_header(&mut self, error: HeaderError) {
        warn!(error = %error, "closing: malformed header frame");
        if let Some(metrics) = &self.shared.metrics {
            metrics.count_bad_header_frame();
        }
        self.closing = Some(Closing::Broken);
    }

    /// Queues a finished call's reply (in a header frame for a header call); the call is counted
    /// by [`Connection::count`].
    fn finish(&mut self, finished: Finished) {
        if let Reply::Message(reply) = &finished.reply {
            let pushed = match &finished.header {
                None => self.writer.push(reply),
                Some(header) => header.push_reply(reply, &mut self.writer),
            };
            if let Err(e) = pushed {
                self.failed = Some(e);
            }
        }
        if let Some(counted) = finished.counted {
            self.uncounted.push(counted);
        }
    }

    /// Counts the calls finished since the last count, each with its latency from its request
    /// read to now (its reply is queued, and written next with the others); moves the deadline
    /// if running calls finished.
    fn count(&mut self, running_finished: bool) {
        if self.uncounted.is_empty() && !running_finished {
            return;
        }
        let now = Instant::now();
        if running_finished {
            self.touch(now);
        }
        let now = now.into_std();
        if let Some(metrics) = &self.shared.metrics {
            for counted in self.uncounted.drain(..) {
                metrics.record_at(
                    counted.series,
                    counted.outcome,
                    now.saturating_duration_since(counted.received),
                );
            }
        }
    }

    /// Answers the first call of a plaintext peer on a port that requires TLS with a
    /// `TApplicationException` saying so (in a header frame for a header peer), and stops reading.
    fn refuse_plaintext(&mut self, message: Bytes) {
        self.closing = Some(Closing::Broken);
        let limits = self.shared.config.limits;
        let (protocol, message, header) = match self.header {
            false => (self.protocol, message, None),
            true => match header::decode(message, limits) {
                Ok((frame, payload)) => {
                    // Answered at once: the time left and the priority do not matter.
                    let (arrival, now) = (crate::context::Arrival::default(), std::time::Instant::now());
                    (frame.protocol, payload, Some(HeaderCall::new(frame, arrival, now, None)))
                }
                Err(e) => return warn!(error = %e, "closing: a plaintext peer on a TLS-only port"),
            },
        };
        let request = match Request::parse(protocol, message, limits) {
            Ok(request) => request,
            Err(e) => return warn!(error = %e, "closing: a plaintext peer on a TLS-only port"),
        };
        warn!(method = %shown_method(request.method()), "closing: a plaintext peer on a TLS-only port");
        let e = ApplicationException::new(ApplicationExceptionKind::UnsupportedClientType, TLS_REQUIRED);
        self.finish(Finished { reply: request.exception(&e), counted: None, header });
    }

    /// Stops reading after input that cannot be read, answering the call if its header is
    /// known.
    fn refuse(&mut self, error: WireError) {
        match error {
            WireError::Malformed { header: Some(header), source } => {
                let (method, seqid) = (shown_method(&header.name), header.seqid);
                warn!(%method, seqid, error = %source, "closing: malformed request");
                let request = Request::new(self.protocol, header, Bytes::new(), self.shared.config.limits);
                if let Reply::Message(reply) = request.protocol_error(&source) {
                    // An error reply is small: it always frames.
                    let _ = self.writer.push(&reply);
                }
            }
            e => warn!(error = %e, "closing: unreadable request"),
        }
        self.closing = Some(Closing::Broken);
    }

    /// Shuts the write side down (after the replies queued), so the peer sees the end of the
    /// stream.
    async fn shut_down(&mut self) {
        if let Err(e) = poll_fn(|cx| self.writer.poll_shutdown(cx)).await {
            debug!(error = %e, "writing the last replies failed");
        }
    }
}

/// What a connection waits for besides its socket and its calls: the server's shutdown and the
/// read timeout. Each is polled (which registers the task to be woken) only when it may have
/// completed: after it was last polled it is checked by an atomic load.
struct Watch<'p, S> {
    /// A receiver of the shutdown flag, to see without a lock whether it changed.
    signal: watch::Receiver<bool>,
    /// Completes once the server shuts down.
    shutdown: Pin<&'p mut S>,
    shutdown_armed: bool,
    /// The read timeout's timer: fires at some deadline, re-armed to the current one.
    idle: Pin<&'p mut Sleep>,
    idle_armed: bool,
}

impl<S: Future<Output = ()>> Watch<'_, S> {
    /// Whether the server shuts down (else the task is woken when it does).
    fn shutting_down(&mut self, cx: &mut Context<'_>) -> bool {
        if self.shutdown_armed && matches!(self.signal.has_changed(), Ok(false)) {
            return false;
        }
        self.shutdown_armed = true;
        // Unconstrained: a poll refused for want of budget would not register the task.
        Pin::new(&mut unconstrained(self.shutdown.as_mut())).poll(cx).is_ready()
    }

    /// Ready once `deadline` has passed (else the task is woken when it does).
    fn poll_idle(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        if self.idle_armed && !self.idle.is_elapsed() {
            return Poll::Pending;
        }
        loop {
            if Pin::new(&mut unconstrained(self.idle.as_mut())).poll(cx).is_pending() {
                self.idle_armed = true;
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                self.idle_armed = false;
                return Poll::Ready(());
            }
            self.idle.as_mut().reset(deadline);
        }
    }
}

/// Reads and drops what a peer that broke the protocol still sends, for a moment, before the
/// connection closes: closing with unread input resets the connection, which can destroy the
/// error reply before the peer reads it.
async fn linger<R: AsyncRead + Unpin>(mut reader: MessageReader<R>) {
    let mut sink = [0u8; 4096];
    let mut left = LINGER_BYTES;
    let drain = async {
        while left > 0 {
            match reader.get_mut().read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = timeout(LINGER_TIME, drain).await;
}

/// Completes once the server shuts down (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests;
