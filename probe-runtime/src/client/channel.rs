//! A cheap-to-clone handle that generated clients call through.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};

use super::header::peek;
use crate::codec::{
    ApplicationException, ApplicationExceptionKind, Decode, Encode, Limits, MessageHeader, MessageType, carve,
};
use crate::context::{Context, Metadata};
use crate::error::{CallError, Error};
use crate::metrics::RequestId;
use crate::service::{BoxFuture, Dispatch, MethodResult, Protocol, Reply, Request};
use crate::set_once::service_method;

/// Seqids a thread takes at a time from [`SEQIDS`].
const SEQID_BLOCK: i32 = 1024;

/// The next block of seqids, for whichever thread runs out first.
static SEQIDS: AtomicI32 = AtomicI32::new(0);

thread_local! {
    /// This thread's next seqid and the end of its block.
    static SEQID: std::cell::Cell<(i32, i32)> = const { std::cell::Cell::new((0, 0)) };
}

/// A seqid for a call: unique among the calls in flight of the process (blocks go round the
/// 2^32 ids, far more than calls in flight at once), taken from this thread's block, so calls
/// on different cores do not all write one shared counter.
fn next_seqid() -> i32 {
    SEQID.with(|cell| {
        let (mut next, mut end) = cell.get();
        if next == end {
            next = SEQIDS.fetch_add(SEQID_BLOCK, Ordering::Relaxed);
            end = next.wrapping_add(SEQID_BLOCK);
        }
        cell.set((next.wrapping_add(1), end));
        next
    })
}

/// `header` and `args` encoded with `protocol`, carved from this thread's encode block.
fn encode_call<A: Encode>(protocol: Protocol, header: &MessageHeader, args: &A) -> Result<Bytes, Error> {
    carve(0, |buf| protocol.encode_message(header, args, buf)).map_err(Error::from)
}

/// Per-method settings generated from the IDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallOptions {
    /// The method expects no reply.
    pub oneway: bool,
    /// The method may be retried after a failure that may have reached the server.
    pub idempotent: bool,
    /// The method's own timeout (the IDL's `(probe.timeout_ms = "200")`), in place of the
    /// transport's; [`Channel::method_timeout`] overrides it.
    pub timeout: Option<Duration>,
}

/// One encoded call on its way to a server.
#[derive(Debug, Clone)]
pub struct Call {
    /// The service (for multiplexing and discovery).
    pub service: &'static str,
    /// The method.
    pub method: &'static str,
    /// Sequence id written in the message.
    pub seqid: i32,
    /// The encoded message, header included.
    pub message: Bytes,
    /// Per-method settings.
    pub options: CallOptions,
    /// The caller's affinity key, for consistent-hash balancing.
    pub affinity: Option<Bytes>,
    /// Headers for peers that speak THeader ([`Channel::with_metadata`]).
    pub metadata: Option<Arc<Metadata>>,
    /// The call span's request id, once a transport opened the span (sent in THeader).
    pub request_id: Option<RequestId>,
    /// When the caller stops waiting: the soonest of the transport's timeout, the metadata's
    /// budget and the deadline of the call the running handler serves. Transports fail the call
    /// with [`Error::Timeout`] then, never send it after it, and tell THeader peers the time left.
    pub deadline: Option<Instant>,
}

/// What moves calls: a pooled TCP connection set, a balancer over discovered nodes, or an
/// in-process loopback for tests.
pub trait Transport: Send + Sync + 'static {
    /// The protocol messages must be encoded with.
    fn protocol(&self) -> Protocol;

    /// Sends a call; returns the encoded reply message, or `None` for oneway calls.
    fn send(&self, call: Call) -> BoxFuture<'_, Result<Option<Bytes>, Error>>;

    /// How long a call may take in all, if the transport bounds it: [`Channel`] folds it into
    /// each call's [`Call::deadline`].
    fn timeout(&self) -> Option<Duration> {
        None
    }
}

/// The soonest of two optional instants.
pub(crate) fn sooner(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How a channel reaches its transport: probe's own transports are called directly, so a call's
/// future lives in the caller's (no allocation per call, and none freed on another thread, where
/// glibc's allocator locks the arena it came from); any other through [`Transport::send`].
#[derive(Clone)]
enum Route {
    Tcp(Arc<super::TcpTransport>),
    Cluster(Arc<super::cluster::ClusterTransport>),
    Dyn,
}

impl Route {
    /// `transport` in a shared pointer, and the direct route to it if it is one of probe's.
    fn of<T: Transport>(transport: T) -> (Arc<dyn Transport>, Route) {
        let mut slot = Some(transport);
        let any: &mut dyn std::any::Any = &mut slot;
        if let Some(tcp) = any.downcast_mut::<Option<super::TcpTransport>>().and_then(Option::take) {
            let tcp = Arc::new(tcp);
            return (tcp.clone(), Route::Tcp(tcp));
        }
        if let Some(cluster) =
            any.downcast_mut::<Option<super::cluster::ClusterTransport>>().and_then(Option::take)
        {
            let cluster = Arc::new(cluster);
            return (cluster.clone(), Route::Cluster(cluster));
        }
        match slot {
            Some(transport) => (Arc::new(transport), Route::Dyn),
            None => unreachable!("only a transport taken above leaves the slot empty"),
        }
    }
}

/// The handle generated clients call through; clones share the transport.
#[derive(Clone)]
pub struct Channel {
    transport: Arc<dyn Transport>,
    route: Route,
    limits: Limits,
    affinity: Option<Bytes>,
    metadata: Option<Arc<Metadata>>,
    /// Timeouts set per method (`Service.method` or `method`), over the IDL's.
    timeouts: Option<Arc<Vec<(String, Duration)>>>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel").field("protocol", &self.transport.protocol()).finish_non_exhaustive()
    }
}

impl Channel {
    /// A channel over any transport.
    pub fn new(transport: impl Transport) -> Self {
        let (transport, route) = Route::of(transport);
        Channel {
            transport,
            route,
            limits: Limits::default(),
            affinity: None,
            metadata: None,
            timeouts: None,
        }
    }

    /// This channel with every call carrying the affinity `key`: a consistent-hash balancer sends
    /// calls with equal keys to the same node while it is there. Clones are cheap, so take one per
    /// key: `DemoClient::new(channel.with_affinity_key(user_id.to_be_bytes().to_vec()))`.
    pub fn with_affinity_key(&self, key: impl Into<Bytes>) -> Channel {
        Channel { affinity: Some(key.into()), ..self.clone() }
    }

    /// This channel with every call carrying `metadata` (caller, deadline, priority, trace
    /// context, user headers) to peers that speak THeader; other peers get plain calls. Clones
    /// are cheap, so take one per call for per-call values:
    /// `DemoClient::new(channel.with_metadata(Metadata::new().priority(Priority::CRITICAL)))`.
    pub fn with_metadata(&self, metadata: Metadata) -> Channel {
        Channel { metadata: Some(Arc::new(metadata)), ..self.clone() }
    }

    /// This channel with every call going through `layer`, a tower [`Layer`](tower::Layer) over
    /// [`ClientService`](crate::middleware::ClientService): it sees each encoded [`Call`] (service,
    /// method, metadata, deadline) before the transport (and, for a discovered channel, before
    /// balancing) and the reply or error after. Each layer wraps the channel as it is, so the last
    /// added runs first. See [`middleware`](crate::middleware).
    pub fn layer<L>(&self, layer: L) -> Channel
    where
        L: tower::Layer<crate::middleware::ClientService> + Send + Sync + 'static,
        L::Service:
            tower::Service<Call, Response = Option<Bytes>, Error = Error> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<Call>>::Future: Send + 'static,
    {
        let layer = crate::middleware::client_layer(layer);
        let layered = crate::middleware::LayeredTransport::new(self.transport.clone(), &layer);
        Channel { transport: Arc::new(layered), route: Route::Dyn, ..self.clone() }
    }

    /// This channel with calls of `method` timing out after `timeout`, in place of the
    /// transport's timeout and of the IDL's `(probe.timeout_ms = ...)`. `method` is
    /// `Service.method`, or a bare `method` for that method of any service; the first match, in
    /// the order set, wins. A deadline in the call's metadata or inherited from the handler
    /// making the call still applies when it is sooner.
    pub fn method_timeout(&self, method: &str, timeout: Duration) -> Channel {
        let mut timeouts = self.timeouts.as_deref().cloned().unwrap_or_default();
        timeouts.retain(|(m, _)| m != method);
        timeouts.push((method.to_owned(), timeout));
        Channel { timeouts: Some(Arc::new(timeouts)), ..self.clone() }
    }

    /// The timeout set for `service.method`, if any.
    fn timeout_of(&self, service: &str, method: &str) -> Option<Duration> {
        let timeouts = self.timeouts.as_deref()?;
        timeouts
            .iter()
            .find(|(name, _)| match name.split_once('.') {
                Some((s, m)) => s == service && m == method,
                None => name == method,
            })
            .map(|(_, timeout)| *timeout)
    }

    /// A channel that hands calls straight to a service in this process: for tests, with the full
    /// encode and decode path.
    pub fn loopback(service: impl Dispatch, protocol: Protocol) -> Self {
        Channel::new(Loopback { service: Arc::new(service), protocol })
    }

    /// Calls `method` with `args` and decodes its result struct. The reply must carry the call's
    /// seqid and name it `method` or `service:method` (a probe server answers a prefixed call
    /// with the name as sent).
    pub async fn call<A: Encode, R: Decode>(
        &self,
        service: &'static str,
        method: &'static str,
        args: &A,
        options: CallOptions,
    ) -> Result<Option<R>, Error> {
        let protocol = self.transport.protocol();
        let timeout = match &self.timeouts {
            None => options.timeout,
            Some(_) => self.timeout_of(service, method).or(options.timeout),
        };
        let (started, deadline) = self.deadline(timeout);
        if let Some(deadline) = deadline
            && deadline <= started
        {
            // The budget is spent (a handler's call past its own deadline): never sent.
            return Err(Error::Timeout { method: method.to_owned(), timeout_ms: 0 });
        }
        let seqid = next_seqid();
        let kind = if options.oneway { MessageType::Oneway } else { MessageType::Call };
        // Named as the transport sends it: `Service:method` where every node it may reach wants
        // that (probe nodes), so it is not renamed per call on its way out.
        let name = match &self.route {
            Route::Tcp(tcp) if tcp.prefixes_names() => service_method(service, method),
            Route::Cluster(cluster) if cluster.prefixes_names() => service_method(service, method),
            _ => method,
        };
        let message = encode_call(protocol, &MessageHeader::new(name, kind, seqid), args)?;
        let call = Call {
            service,
            method,
            seqid,
            message,
            options,
            affinity: self.affinity.clone(),
            metadata: self.metadata.clone(),
            request_id: None,
            deadline,
        };
        let sent = match &self.route {
            Route::Tcp(tcp) => tcp.send_direct(call, started).await,
            Route::Cluster(cluster) => cluster.send_direct(call, started).await,
            Route::Dyn => self.transport.send(call).await,
        };
        let Some(reply) = sent? else { return Ok(None) };
        // The header read in place (no copy of the name), or by the codec if it is another form.
        let fast = peek(protocol, &reply)
            .filter(|header| header.seqid == seqid && header.names(service, method))
            .map(|header| (header.kind, header.body_at()));
        let (kind, body) = match fast {
            Some((kind, at)) => {
                // `advance`, not `slice`: the body keeps the reply's buffer without another reference.
                let mut body = reply;
                body.advance(at);
                (kind, body)
            }
            None => {
                let (header, body) = protocol.decode_header(reply, self.limits)?;
                let prefixed = header.name.strip_prefix(service).and_then(|rest| rest.strip_prefix(':'));
                if header.seqid != seqid || (header.name != method && prefixed != Some(method)) {
                    return Err(Error::BadReply(format!(
                        "expected `{method}` #{seqid}, got `{}` #{}",
                        header.name, header.seqid
                    )));
                }
                (header.kind, body)
            }
        };
        match kind {
            MessageType::Reply => Ok(Some(protocol.decode_body(body, self.limits)?)),
            MessageType::Exception => {
                let exception = protocol.decode_body::<ApplicationException>(body, self.limits)?;
                match (exception.kind, deadline) {
                    // The server gave up at the deadline this call sent: the caller's timeout.
                    (ApplicationExceptionKind::Timeout, Some(deadline)) => Err(Error::Timeout {
                        method: method.to_owned(),
                        timeout_ms: super::endpoint::millis(deadline.saturating_duration_since(started)),
                    }),
                    _ => Err(Error::Application(exception)),
                }
            }
            other => Err(Error::BadReply(format!("message type {other:?} in a reply"))),
        }
    }

    /// Now, and the deadline of a call made now: the soonest of the method's timeout (else the
    /// transport's), the metadata's budget and the deadline of the call this task's handler
    /// serves.
    fn deadline(&self, method_timeout: Option<Duration>) -> (Instant, Option<Instant>) {
        let now = crate::context::now();
        let after = |budget: Option<Duration>| budget.and_then(|b| now.checked_add(b));
        let timeout = method_timeout.or_else(|| self.transport.timeout());
        let own = sooner(after(timeout), after(self.metadata.as_ref().and_then(|m| m.budget())));
        let inherited = Context::current().and_then(|cx| cx.deadline());
        (now, sooner(own, inherited))
    }
}

impl Channel {
    /// Calls a generated method: encodes `args`, sends them, and turns the result struct `M` into
    /// the method's value or error.
    pub async fn invoke<A: Encode, M: MethodResult>(
        &self,
        service: &'static str,
        method: &'static str,
        args: &A,
        options: CallOptions,
    ) -> Result<M::Value, CallError<M::Exception>> {
        match self.call::<A, M>(service, method, args, options).await? {
            Some(result) => result.into_result(method),
            None => {
                M::without_reply().ok_or_else(|| Error::MissingResult { method: method.to_owned() }.into())
            }
        }
    }
}

struct Loopback {
    service: Arc<dyn Dispatch>,
    protocol: Protocol,
}

impl Transport for Loopback {
    fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn send(&self, call: Call) -> BoxFuture<'_, Result<Option<Bytes>, Error>> {
        Box::pin(async move {
            let request = Request::parse(self.protocol, call.message, Limits::default())?;
            match self.service.dispatch(request).await {
                Reply::None => Ok(None),
                Reply::Message(bytes) => Ok(Some(bytes)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn seqids_from_thread_blocks_are_unique_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..3 * SEQID_BLOCK).map(|_| next_seqid()).collect::<Vec<_>>()))
            .collect();
        let mut seen = HashSet::new();
        for thread in threads {
            for seqid in thread.join().unwrap() {
                assert!(seen.insert(seqid), "seqid {seqid} was handed out twice");
            }
        }
        assert_eq!(seen.len(), 4 * 3 * SEQID_BLOCK as usize);
    }

    /// A transport of the user's: answers every call with no reply.
    struct Silent;

    impl Transport for Silent {
        fn protocol(&self) -> Protocol {
            Protocol::Binary
        }

        fn send(&self, _call: Call) -> BoxFuture<'_, Result<Option<Bytes>, Error>> {
            Box::pin(async { Ok(None) })
        }
    }

    #[test]
    fn probe_transports_are_called_directly_and_others_through_the_trait() {
        let tcp = Channel::new(super::super::TcpTransport::builder("127.0.0.1:1").build());
        assert!(matches!(tcp.route, Route::Tcp(_)));
        let other = Channel::new(Silent);
        assert!(matches!(other.route, Route::Dyn));
        // A layer sees every call, so a layered channel goes through the trait.
        let layered = tcp.layer(tower::layer::util::Identity::new());
        assert!(matches!(layered.route, Route::Dyn));
    }
}
