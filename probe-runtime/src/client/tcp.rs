//! `TcpTransport`: calls to one server address over pooled or multiplexed TCP connections.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::channel::{Call, Channel, Transport};
use super::endpoint::Endpoint;
use super::mux::{Exchange, Form, Mux, MuxCall, Outgoing};
use super::pool::Pool;
use super::theader::{CallHeaders, HeaderOptions, Sent, named};
use crate::codec::Limits;
use crate::error::Error;
use crate::metrics::{NodeRecorder, Outcome, global, spans};
use crate::service::{BoxFuture, Protocol};
use crate::transport::header::Transform;
use crate::transport::{Framing, WireFormat};

/// Connections of a pool (one call in flight each) to one server, unless set.
pub(super) const POOL_SIZE: usize = 8;

/// Multiplexed connections to one server, unless set: twice this machine's CPUs, from 2 to 8.
///
/// Each connection has a reader and a writer task here and on the server, and the calls in flight
/// are spread over the connections: more connections than the cores that run them only split each
/// write (and each read of the server) into smaller batches. With 2 CPUs shared by client and
/// server, 100 callers made 870-890k calls/s over 4 connections, 820-840k over 2 and 680k over 8
/// (16 callers: 315k over 4, 300k over 8, 240k over 2).
pub fn default_mux_connections() -> usize {
    let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
    (2 * cpus).clamp(2, 8)
}

/// Configures a [`TcpTransport`]; from [`TcpTransport::builder`].
#[derive(Debug, Clone)]
pub struct TcpTransportBuilder {
    addr: String,
    wire: WireFormat,
    service_prefix: bool,
    multiplex: bool,
    connect_timeout: Duration,
    timeout: Duration,
    /// Set by [`TcpTransportBuilder::pool_size`]; else the default of the kind of connection.
    pool_size: Option<usize>,
    idle_timeout: Duration,
    limits: Limits,
    metrics: bool,
    /// The node label of the metrics, and whether this transport counts calls itself (a cluster
    /// transport counts its attempts instead).
    node: Option<Arc<str>>,
    count_calls: bool,
    header_transforms: Vec<Transform>,
    tls: Option<crate::tls::TlsClient>,
    caller: Option<crate::security::AppCredential>,
}

impl TcpTransportBuilder {
    /// Connects with TLS: every connection runs the handshake (within the connect timeout)
    /// before its first call, verifying the server against the CA bundle of `tls` for the host
    /// of the address (or its server name), and presenting its client certificate if it has one.
    /// Default: plaintext.
    pub fn tls(mut self, tls: crate::tls::TlsClient) -> Self {
        self.tls = Some(tls);
        self
    }

    /// With [`header`](Self::header), proves the caller's appkey to the server with a token
    /// signed by `credential` for the address dialled (renewed every minute), in every call's
    /// headers: what servers with a caller policy check. Default none.
    pub fn caller_credential(mut self, credential: crate::security::AppCredential) -> Self {
        self.caller = Some(credential);
        self
    }

    /// The protocol. Default binary.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.wire.protocol = protocol;
        self
    }

    /// Framed (a 4-byte length before each message) or not. Default framed.
    pub fn framed(mut self, framed: bool) -> Self {
        self.wire.framing = if framed { Framing::Framed } else { Framing::Unframed };
        self
    }

    /// Apache's header transport (THeader): each call in a header frame carrying the channel's
    /// [`Metadata`](crate::context::Metadata), for probe servers (which advertise it in their
    /// node data) and Apache servers using `THeaderProtocol`. Default off; off after on, framed.
    pub fn header(mut self, on: bool) -> Self {
        if on {
            self.wire.framing = Framing::Header;
        } else if self.wire.framing == Framing::Header {
            self.wire.framing = Framing::Framed;
        }
        self
    }

    /// With [`header`](Self::header), compresses every call with THeader's zlib transform (the
    /// server answers likewise). Default off.
    pub fn header_zlib(mut self, on: bool) -> Self {
        self.header_transforms = if on { vec![Transform::Zlib] } else { Vec::new() };
        self
    }

    /// Name methods `Service:method`, for servers that host several services behind Apache's
    /// `TMultiplexedProcessor` (probe servers take both forms). Default off.
    pub fn service_prefix(mut self, on: bool) -> Self {
        self.service_prefix = on;
        self
    }

    /// Many calls in flight on each connection, matched to replies by seqid. Only for peers known
    /// to be probe servers: stock Thrift servers handle one call at a time per connection. Off
    /// (the default), each connection carries one call at a time and is reused after it.
    pub fn multiplex(mut self, on: bool) -> Self {
        self.multiplex = on;
        self
    }

    /// How long opening a connection may take before [`Error::ConnectTimeout`]. Default 3 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a call may take in all (waiting for a connection, connecting, sending, waiting
    /// for the reply) before [`Error::Timeout`]. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most connections: without multiplexing, the most calls in flight at once (more wait
    /// for a free connection), default 8; with it, the connections calls are spread over, default
    /// [`default_mux_connections`].
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = Some(size.max(1));
        self
    }

    /// How long an unused pooled connection is kept before it is closed rather than reused.
    /// Default 50 s: less than a probe server's default read timeout, so the server never closes
    /// a connection the pool is about to reuse.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The bounds on replies. Default [`Limits::DEFAULT`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Counts every call per service, method and outcome with its latency, and the connect, send
    /// and wait times, in [`metrics::global`](crate::metrics::global) with the node label
    /// `host:port`. Default on.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Labels the metrics with `node` and leaves counting calls to the caller (a cluster
    /// transport, which counts each attempt).
    pub(super) fn metrics_node(mut self, node: Arc<str>) -> Self {
        self.node = Some(node);
        self.count_calls = false;
        self
    }

    /// The transport; connections are opened when calls need them.
    pub fn build(self) -> TcpTransport {
        let (caller, audience) = (self.caller.clone(), self.addr.clone());
        let node = self.node.unwrap_or_else(|| self.addr.as_str().into());
        let recorder = self.metrics.then(|| Arc::new(NodeRecorder::new(global(), Arc::clone(&node))));
        let phases = recorder.as_ref().map(|r| Arc::clone(r.phases()));
        let endpoint = Arc::new(Endpoint {
            addr: self.addr,
            wire: self.wire,
            limits: self.limits,
            connect_timeout: self.connect_timeout,
            tls: self.tls,
        });
        let conns = if self.multiplex {
            let size = self.pool_size.unwrap_or_else(default_mux_connections);
            Conns::Mux(Mux::new(endpoint.clone(), size, phases))
        } else {
            let size = self.pool_size.unwrap_or(POOL_SIZE);
            Conns::Pool(Pool::new(endpoint.clone(), size, self.idle_timeout, phases))
        };
        let header = (self.wire.framing == Framing::Header).then(|| {
            let caller = caller.map(|c| Arc::new(crate::security::token::Signer::new(c, audience)));
            Arc::new(HeaderOptions { transforms: self.header_transforms, caller })
        });
        TcpTransport {
            node,
            header,
            endpoint,
            conns,
            service_prefix: self.service_prefix,
            timeout: self.timeout,
            count_calls: self.count_calls,
            recorder,
        }
    }

    /// The transport with one connection opened, so an unreachable server shows at once.
    pub async fn connect(self) -> Result<TcpTransport, Error> {
        let transport = self.build();
        match &transport.conns {
            Conns::Pool(pool) => pool.warm().await?,
            Conns::Mux(mux) => mux.warm().await?,
        }
        Ok(transport)
    }
}

enum Conns {
    Pool(Pool),
    Mux(Mux),
}

/// A [`Transport`] to one server address over TCP: pooled connections with one call in flight
/// each, or multiplexed ones for probe servers. Build with [`TcpTransport::builder`].
///
/// ```no_run
/// # async fn run() -> Result<(), probe_runtime::Error> {
/// use probe_runtime::client::{Channel, TcpTransport};
/// use probe_runtime::service::Protocol;
/// use std::time::Duration;
///
/// let transport = TcpTransport::builder("127.0.0.1:9090")
///     .protocol(Protocol::Compact)
///     .multiplex(true)
///     .timeout(Duration::from_secs(2))
///     .connect()
///     .await?;
/// let channel = Channel::new(transport);
/// # Ok(())
/// # }
/// ```
pub struct TcpTransport {
    endpoint: Arc<Endpoint>,
    /// The node the metrics label: the registry node id, or `host:port`.
    node: Arc<str>,
    /// Set when calls go in header frames.
    header: Option<Arc<HeaderOptions>>,
    conns: Conns,
    service_prefix: bool,
    timeout: Duration,
    /// Where calls to this node are counted, unless metrics are off.
    recorder: Option<Arc<NodeRecorder>>,
    /// Whether [`Transport::send`] counts calls (else the caller does).
    count_calls: bool,
}

impl fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpTransport")
            .field("addr", &self.endpoint.addr)
            .field("wire", &self.endpoint.wire)
            .field("multiplex", &matches!(self.conns, Conns::Mux(_)))
            .field("service_prefix", &self.service_prefix)
            .finish_non_exhaustive()
    }
}

impl TcpTransport {
    /// A builder for calls to `addr` (`host:port`, resolved at each connect): binary, framed, no
    /// service prefix, no multiplexing, 8 connections ([`default_mux_connections`] once
    /// multiplexed), 3 s to connect, 30 s per call.
    pub fn builder(addr: impl Into<String>) -> TcpTransportBuilder {
        TcpTransportBuilder {
            addr: addr.into(),
            wire: WireFormat::new(Protocol::Binary, Framing::Framed),
            service_prefix: false,
            multiplex: false,
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(30),
            pool_size: None,
            idle_timeout: Duration::from_secs(50),
            limits: Limits::DEFAULT,
            metrics: true,
            node: None,
            count_calls: true,
            header_transforms: Vec::new(),
            caller: None,
            tls: None,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> &str {
        &self.endpoint.addr
    }

    /// The node its metrics label: the registry node id of a cluster's transport, else the
    /// address.
    pub(super) fn node(&self) -> &Arc<str> {
        &self.node
    }

    /// Whether calls go out named `Service:method` (a channel then encodes them so).
    pub(super) fn prefixes_names(&self) -> bool {
        self.service_prefix
    }

    /// Whether calls are multiplexed, and over how many connections at most.
    #[cfg(test)]
    pub(super) fn connections(&self) -> (bool, usize) {
        match &self.conns {
            Conns::Mux(mux) => (true, mux.size()),
            Conns::Pool(pool) => (false, pool.free()),
        }
    }

    /// Whether connections use TLS.
    pub fn is_tls(&self) -> bool {
        self.endpoint.tls.is_some()
    }

    /// The protocol and framing this transport speaks.
    pub fn wire(&self) -> WireFormat {
        self.endpoint.wire
    }

    /// Where calls to this node are counted, unless metrics are off.
    pub(super) fn recorder(&self) -> Option<&NodeRecorder> {
        self.recorder.as_deref()
    }

    /// The call's deadline, or the transport's timeout from `now`.
    fn deadline_of(&self, call: &Call, now: Instant) -> Instant {
        call.deadline.unwrap_or(now + self.timeout)
    }

    /// [`Transport::send`] without a box: what [`Channel`] calls, with the time it read when
    /// it made the call (`now`). Unless metrics are off, the call goes in a call span (entered
    /// while it is polled, if a subscriber wants it) and is counted when it ends.
    pub(super) fn send_direct(&self, mut call: Call, now: Instant) -> SendDirect<'_> {
        if !self.count_calls {
            let deadline = self.deadline_of(&call, now);
            let send = self.send_now(Handed::Owned(call), deadline, now);
            return SendDirect { send, span: None, counted: None };
        }
        let (service, method) = (call.service, call.method);
        let (span, request_id) = spans::client_call(service, method, Some(&self.endpoint.addr));
        call.request_id = call.request_id.or(request_id);
        let deadline = self.deadline_of(&call, now);
        let counted = self.recorder().map(|recorder| Counted { recorder, service, method, started: now });
        let span = (!span.is_disabled()).then(|| Box::new(span));
        SendDirect { send: self.send_now(Handed::Owned(call), deadline, now), span, counted }
    }

    /// Sends now, failing with [`Error::Timeout`] at `deadline` (and without sending once it
    /// passed): the cluster transport's attempts call this. With the service prefix, the call
    /// goes out named `Service:method`, written so straight into the outgoing buffer; the reply
    /// comes back as the server named it (probe servers answer with the name as sent, Apache's
    /// without the prefix), which [`Channel`] takes either way. `now` is when the call was handed
    /// over (its time left and send time count from it). The answer carries the time the reply
    /// came when the transport read it (to time the call's wait).
    pub(super) fn send_now(&self, mut call: Handed<'_>, deadline: Instant, now: Instant) -> SendNow<'_> {
        let Call { service, method, seqid, ref options, .. } = *call.get();
        let oneway = options.oneway;
        let ready = |reply: Result<Option<Bytes>, Error>| SendNow {
            transport: self,
            step: SendStep::Ready(Some(Answer::from(reply))),
            sent: None,
        };
        if deadline <= now {
            return ready(Err(timed_out(method, Duration::ZERO)));
        }
        let prefix = self.service_prefix.then_some(service);
        // THeader: the call goes in a header frame with its metadata; its reply comes in one.
        // A multiplexed call's plain frame is written by the caller into its connection's
        // buffer, with its message (named as it goes) and headers (`plain`); any other is made
        // here.
        let (message, prefix, plain, sent) = match &self.header {
            None => (call.into_message(), prefix, None, None),
            Some(header)
                if matches!(self.conns, Conns::Mux(_)) && header.is_plain(call.get().metadata.as_deref()) =>
            {
                let form = Form::Header(call.get().request_id);
                match named(self.endpoint.wire, call.into_message(), prefix) {
                    Ok(message) => (message, None, Some(form), Some(Sent::plain())),
                    Err(e) => return ready(Err(e)),
                }
            }
            Some(header) => {
                let wire = self.endpoint.wire;
                let metadata = call.take_metadata();
                let kept = call.get();
                let request_id = kept.request_id;
                let about = CallHeaders { metadata, request_id, deadline, now };
                match header.wrap(wire, seqid, &kept.message, prefix, about) {
                    Ok((frame, sent)) => (frame, None, None, Some(sent)),
                    Err(e) => return ready(Err(e)),
                }
            }
        };
        let step = match &self.conns {
            // Boxed: a pooled call's state (a connection's reader, its write and read, its
            // deadline's watch) stays out of the future of every multiplexed call, which is
            // moved at each level of the call as it starts; a pooled call (a system call each
            // way) hardly notices.
            Conns::Pool(pool) => {
                SendStep::Boxed(Box::pin(pool.call(message, prefix, oneway, method, (now, deadline))))
            }
            Conns::Mux(mux) => {
                let form = plain.unwrap_or(Form::Message(prefix));
                let outgoing = Outgoing { message, form, deadline, method, taken: now };
                match mux.call(seqid, outgoing, oneway) {
                    MuxCall::Exchange(exchange) => SendStep::Mux(exchange),
                    MuxCall::Connecting(call) => SendStep::Boxed(call),
                    MuxCall::Failed(e) => SendStep::Ready(Some(Answer::from(Err(e)))),
                }
            }
        };
        SendNow { transport: self, step, sent }
    }
}

/// A call handed to [`TcpTransport::send_now`]: the caller's own, or one the caller keeps (the
/// cluster keeps each call, to try another node with it), whose message is then cloned only if it
/// is queued as it is (not in a THeader frame, which is a copy).
pub(super) enum Handed<'c> {
    Owned(Call),
    Kept(&'c Call),
}

impl Handed<'_> {
    fn get(&self) -> &Call {
        match self {
            Handed::Owned(call) => call,
            Handed::Kept(call) => call,
        }
    }

    /// The call's metadata: moved out of an owned call, shared with a kept one.
    fn take_metadata(&mut self) -> Option<Arc<crate::context::Metadata>> {
        match self {
            Handed::Owned(call) => call.metadata.take(),
            Handed::Kept(call) => call.metadata.clone(),
        }
    }

    fn into_message(self) -> Bytes {
        match self {
            Handed::Owned(call) => call.message,
            Handed::Kept(call) => call.message.clone(),
        }
    }
}

/// [`TcpTransport::send_now`]: the call, already encoded for the wire and handed to its
/// connections, until its answer. Written out rather than an `async` block, so what the levels
/// above copy as the call starts is its connection's call and a few words (an `async` block
/// kept 408 bytes, copied twice per call).
pub(super) struct SendNow<'a> {
    transport: &'a TcpTransport,
    step: SendStep<'a>,
    /// The call went in a THeader frame: its reply is unwrapped from one.
    sent: Option<super::theader::Sent>,
}

enum SendStep<'a> {
    /// Answered before it was sent (its budget spent, its header did not encode, no connection).
    Ready(Option<Answer>),
    /// On an open multiplexed connection.
    Mux(Exchange<'a>),
    /// A pooled call, or a multiplexed one that connects first.
    Boxed(BoxFuture<'a, Answer>),
}

impl Future for SendNow<'_> {
    type Output = Answer;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let this = self.get_mut();
        let answer = match &mut this.step {
            SendStep::Ready(answer) => answer.take().expect("a call was polled after its answer"),
            SendStep::Mux(exchange) => std::task::ready!(Pin::new(exchange).poll(cx)),
            SendStep::Boxed(call) => std::task::ready!(call.as_mut().poll(cx)),
        };
        Poll::Ready(match this.sent.take() {
            None => answer,
            Some(sent) => this.transport.unwrap_header(sent, answer),
        })
    }
}

impl TcpTransport {
    /// `answer` to a call sent in a THeader frame, its reply unwrapped from the frame.
    fn unwrap_header(&self, sent: super::theader::Sent, answer: Answer) -> Answer {
        let endpoint = &self.endpoint;
        Answer {
            reply: answer.reply.and_then(|r| sent.unwrap(r, endpoint.wire, endpoint.limits)),
            at: answer.at,
        }
    }
}

/// [`TcpTransport::send_direct`]: the call, in its span, counted when it ends (written out, as
/// [`SendNow`] is, so that the level above copies a few words more than the call as it starts).
pub(super) struct SendDirect<'a> {
    send: SendNow<'a>,
    /// Entered at each poll: the call span, unless no subscriber wants it. (Boxed: a span
    /// takes five words, which every call's future would carry and copy as it starts.)
    span: Option<Box<tracing::Span>>,
    /// Where the call is counted when it ends, unless metrics are off.
    counted: Option<Counted<'a>>,
}

struct Counted<'a> {
    recorder: &'a NodeRecorder,
    service: &'static str,
    method: &'static str,
    started: Instant,
}

impl Future for SendDirect<'_> {
    type Output = Result<Option<Bytes>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let answer = {
            let _entered = this.span.as_deref().map(tracing::Span::enter);
            std::task::ready!(Pin::new(&mut this.send).poll(cx))
        };
        if let Some(Counted { recorder, service, method, started }) = this.counted.take() {
            let outcome = Outcome::of_result(this.send.transport.endpoint.wire.protocol, &answer.reply);
            let ended = answer.at.unwrap_or_else(crate::context::now);
            recorder.record(service, method, outcome, ended.saturating_duration_since(started));
        }
        Poll::Ready(answer.reply)
    }
}

/// What a send gives back: the reply (none for a oneway call) or the error, and the time the
/// reply came if the transport read the clock for it (to time the call's wait), which the
/// caller's metrics then take as the call's end instead of reading the clock again.
pub(super) struct Answer {
    pub(super) reply: Result<Option<Bytes>, Error>,
    pub(super) at: Option<Instant>,
}

impl From<Result<Option<Bytes>, Error>> for Answer {
    fn from(reply: Result<Option<Bytes>, Error>) -> Self {
        Answer { reply, at: None }
    }
}

/// The error of a call whose deadline passed, `budget` (rounded up to whole milliseconds: the
/// microseconds between taking the deadline and sending do not show) after it was sent.
pub(super) fn timed_out(method: &str, budget: Duration) -> Error {
    let timeout_ms = u64::try_from(budget.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    Error::Timeout { method: method.to_owned(), timeout_ms }
}

impl Transport for TcpTransport {
    fn protocol(&self) -> Protocol {
        self.endpoint.wire.protocol
    }

    fn send(&self, call: Call) -> BoxFuture<'_, Result<Option<Bytes>, Error>> {
        Box::pin(self.send_direct(call, crate::context::now()))
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }
}

impl Channel {
    /// A channel to the Thrift server at `addr` over a [`TcpTransport`] with its defaults
    /// (binary, framed, pooled): connects once before returning, so an unreachable server shows
    /// at once. For other settings use `Channel::new(TcpTransport::builder(addr)...build())`.
    pub async fn connect(addr: impl Into<String>) -> Result<Channel, Error> {
        Ok(Channel::new(TcpTransport::builder(addr).connect().await?))
    }
}
