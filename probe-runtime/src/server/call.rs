//! Running one call: route it, start its handler inside the call's span (a panic becomes an
//! `InternalError` reply), give the reply the method name the caller sent, and tell how to count
//! it.
//!
//! [`Routes::start`] does everything up to the handler's future and polls it once, so a handler
//! that does not wait costs neither a queued task nor a wake-up; one that waits is kept by its
//! connection as a [`Running`] call.
//!
//! A call that carries a deadline (THeader's `probe-deadline-ms`) is not started once it passed,
//! and its handler's future is dropped when it runs past it; either way the caller gets a
//! `TApplicationException` of kind [`Timeout`](ApplicationExceptionKind::Timeout), which probe
//! clients turn into [`Error::Timeout`]. Calls without a deadline pay nothing for this.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use tracing::{Span, debug, error};

use super::callers::ConnectionCaller;
use super::connection::Shared;
use super::header_call::HeaderCall;
use super::limits::{Permit, ServiceGates};
use crate::codec::{
    ApplicationException, ApplicationExceptionKind, Limits, MessageHeader, MessageType, shown_method,
};
use crate::context::Context;
use crate::deadlines::Watch;
use crate::error::Error;
use crate::metrics::{Outcome, SeriesId, spans};
use crate::service::{BoxFuture, Dispatch, Protocol, Reply, Request};
use crate::transport::rename_message;

/// How to count a finished call: its series in the server's metrics, its outcome, and when its
/// request was read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counted {
    pub(super) series: SeriesId,
    pub(super) outcome: Outcome,
    pub(super) received: Instant,
}

/// A finished call: the reply to send ([`Reply::None`] for oneway calls), when metrics are on
/// and the call was routed how to count it, and for a call that came in a header frame what its
/// reply's frame needs.
#[derive(Debug)]
pub(super) struct Finished {
    pub(super) reply: Reply,
    pub(super) counted: Option<Counted>,
    pub(super) header: Option<HeaderCall>,
}

/// A call just read, after [`Routes::start`].
pub(super) enum Started<'a> {
    /// Answered: without a handler (not a call, an unknown method), or by one that finished
    /// (or panicked) at its first poll.
    Done(Finished),
    /// Its handler waits.
    Running(Running<'a>),
}

/// How many methods a connection remembers routed.
const REMEMBERED: usize = 4;

/// A connection's router: the server's, in front of which it remembers the last few methods it
/// routed, so that the calls after them (most name a method called just before) skip the
/// router's hashing and the metrics lookup.
pub(super) struct Routes<'a> {
    shared: &'a Shared,
    /// The connection's peer (requests carry it for middleware).
    peer: std::net::SocketAddr,
    /// The appkey the peer's verified TLS client certificate names (requests and contexts carry
    /// it).
    tls_appkey: Option<Arc<str>>,
    /// The address the peer connected to (caller tokens are signed for it).
    local: std::net::SocketAddr,
    /// What the connection proved of its caller (checked under caller policies).
    caller: ConnectionCaller,
    known: [Option<Routed<'a>>; REMEMBERED],
    /// Where the next method routed is remembered.
    next: usize,
    /// The name of the method called last, as it was sent.
    last: Option<&'static str>,
}

/// A method routed once.
#[derive(Clone, Copy)]
struct Routed<'a> {
    service: &'a Arc<dyn Dispatch>,
    service_name: &'static str,
    /// The method's name as its service declares it.
    method: &'static str,
    /// The name as the caller sent it: `method`, or `Service:method`.
    sent: &'static str,
    series: Option<SeriesId>,
    /// The service's gates and the method's position among them.
    gates: Option<(&'a ServiceGates, usize)>,
}

impl Routed<'_> {
    /// Whether a call named `name` goes here.
    fn is_named(&self, name: &str) -> bool {
        name == self.sent
    }

    /// Whether it was named with a `Service:` prefix.
    fn prefixed(&self) -> bool {
        self.sent.len() != self.method.len()
    }
}

impl<'a> Routes<'a> {
    /// Nothing remembered yet.
    pub(super) fn new(
        shared: &'a Shared,
        peer: std::net::SocketAddr,
        local: std::net::SocketAddr,
        tls_appkey: Option<Arc<str>>,
    ) -> Self {
        Routes {
            shared,
            peer,
            tls_appkey,
            local,
            caller: ConnectionCaller::default(),
            known: [None; REMEMBERED],
            next: 0,
            last: None,
        }
    }

    /// The appkey the peer's verified TLS client certificate names.
    pub(super) fn tls_appkey(&self) -> Option<&Arc<str>> {
        self.tls_appkey.as_ref()
    }

    /// The name the next call probably has: that of the last call.
    pub(super) fn expected(&self) -> Option<&'static str> {
        self.last
    }

    /// Where a call named `name` goes; `None` if no service here has that method.
    fn route(&mut self, name: &str) -> Option<Routed<'a>> {
        let routed = match self.known.iter().flatten().find(|r| r.is_named(name)) {
            Some(routed) => *routed,
            None => {
                let route = self.shared.router.route(name)?;
                let method = name.get(route.method_at..).unwrap_or_default();
                let series =
                    self.shared.metrics.as_deref().and_then(|m| m.find(route.service.as_ref(), method));
                // The router knows the same names: always found.
                let method_name = route.service.methods().iter().find(|m| m.name == method)?.name;
                let gates = self
                    .shared
                    .limits
                    .service(route.service.service_name())
                    .and_then(|g| Some((g, g.method_index(method)?)));
                let routed = Routed {
                    service: route.service,
                    service_name: route.service.service_name(),
                    method: method_name,
                    sent: match route.method_at {
                        0 => method_name,
                        _ => crate::set_once::service_method(route.service.service_name(), method_name),
                    },
                    series,
                    gates,
                };
                self.known[self.next] = Some(routed);
                self.next = (self.next + 1) % REMEMBERED;
                routed
            }
        };
        self.last = Some(routed.sent);
        Some(routed)
    }

    /// Starts the call `request`, read at `received` (in a header frame if `header`): routes it,
    /// creates its handler's future and polls it once in `cx` (the connection's task), with the
    /// call's context current if it has one (made current once for both).
    pub(super) fn start(
        &mut self,
        mut request: Request,
        received: Instant,
        header: Option<HeaderCall>,
        cx: &mut std::task::Context<'_>,
    ) -> Started<'a> {
        let kind = request.header().kind;
        if !matches!(kind, MessageType::Call | MessageType::Oneway) {
            let message = format!("a request must be a call or oneway message, not {kind:?}");
            let e = ApplicationException::new(ApplicationExceptionKind::InvalidMessageType, message);
            return Started::Done(Finished { reply: request.exception(&e), counted: None, header });
        }
        let Some(routed) = self.route(request.method()) else {
            return Started::Done(Finished { reply: request.unknown_method(), counted: None, header });
        };
        let shared = self.shared;
        // The caller's policy first: a refused caller spends nothing of the limits.
        if shared.callers.any() {
            let headers = header.as_ref().map(|h| h.context.headers());
            let token = headers.and_then(|h| h.get_bytes(crate::context::names::CALLER_TOKEN.as_bytes()));
            let claimed = headers.and_then(|h| h.get(crate::context::names::CALLER_APPKEY));
            let presented =
                super::callers::Presented { certificate: self.tls_appkey.as_deref(), token, claimed };
            let checked =
                shared.callers.check(routed.service_name, &mut self.caller, presented, self.peer, self.local);
            if let Err(why) = checked {
                let message = format!("{} was not executed: {why}", shown_method(request.method()));
                let e = ApplicationException::new(ApplicationExceptionKind::Unknown, message);
                return Started::Done(Finished { reply: request.exception(&e), counted: None, header });
            }
        }
        // Limits are checked before anything else is spent on the call.
        let mut permit = match routed.gates {
            Some((gates, method)) if shared.limits.any() => {
                let priority = header.as_ref().and_then(|h| h.context.priority()).unwrap_or_default();
                match shared.limits.acquire(gates, method, priority, received) {
                    Ok(permit) => Some(Box::new(permit)),
                    Err(refused) => {
                        let scope = match refused.method {
                            Some(method) => format!("method {method} of service {}", routed.service_name),
                            None => format!("service {}", routed.service_name),
                        };
                        debug!(method = %shown_method(request.method()), %scope, refusal = %refused.refusal, "call refused");
                        let message = format!(
                            "{} was not executed: {} on {} for {scope}",
                            shown_method(request.method()),
                            refused.refusal,
                            shared.node,
                        );
                        let e = ApplicationException::new(ApplicationExceptionKind::Loadshedding, message);
                        return Started::Done(Finished {
                            reply: request.exception(&e),
                            counted: None,
                            header,
                        });
                    }
                }
            }
            _ => None,
        };
        let seqid = request.header().seqid;
        let request_id = || header.as_ref().and_then(|h| h.context.request_id());
        let span = spans::server_call(routed.service_name, routed.method, &shared.node, seqid, request_id);
        #[cfg(feature = "otel")]
        if let Some(header) = &header {
            crate::telemetry::adopt(&span, header.context.headers());
        }
        // The handler sees the method's name as its service declares it (without a `Service:`
        // prefix, and static, so its reply copies no string); the name sent is kept for the
        // replies made here.
        let sent = request.rename(routed.method, routed.sent);
        request.set_peer(self.peer);
        if let Some(appkey) = &self.tls_appkey {
            request.set_tls_peer_appkey(appkey.clone());
        }
        // A certificate's identity reaches the handler through a context of its own (a header
        // call's context is its header's).
        let own_context = match (&header, &self.tls_appkey) {
            (None, Some(appkey)) => {
                let headers = crate::transport::header::Headers::default();
                Some(Context::with_tls_peer(headers, received, Some(appkey.clone())))
            }
            _ => None,
        };
        let mut finish = Finish {
            sent,
            renamed: routed.prefixed(),
            protocol: request.protocol(),
            limits: shared.config.limits,
            series: routed.series,
            received,
            header,
        };
        let context = finish.header.as_ref().map(|h| &h.context).or(own_context.as_ref());
        let deadline = context.and_then(Context::deadline);
        // Calls start as soon as they are read: past the deadline then means no time was left.
        if let Some(deadline) = deadline
            && deadline <= received
        {
            // The caller has stopped waiting: the handler is not run.
            return Started::Done(span.in_scope(|| finish.finish(Ok(finish.timed_out(deadline)))));
        }
        let entered = span.enter();
        let service = routed.service;
        let first = || {
            let mut handler = service.dispatch(request);
            let poll = handler.as_mut().poll(cx);
            (handler, poll)
        };
        // Only header calls and TLS calls with a client certificate pay for the task-local,
        // made current while the handler is made, polled and dropped unfinished (see `Running`).
        let first = match context {
            None => catch_unwind(AssertUnwindSafe(first)),
            Some(context) => catch_unwind(AssertUnwindSafe(|| context.clone().sync_scope(first))),
        };
        let reply = match first {
            Ok((handler, Poll::Pending)) => {
                drop(entered);
                let context = own_context.or_else(|| finish.header.as_ref().map(|h| h.context.clone()));
                let watch = deadline.map(|deadline| shared.deadlines(self.peer).watch(deadline));
                let mut running = Running { handler, context, span, finish, watch, permit };
                return match running.waiting(cx) {
                    Poll::Ready(finished) => Started::Done(finished),
                    Poll::Pending => Started::Running(running),
                };
            }
            // Finished: its future has returned (dropping it runs none of the handler's code).
            Ok((_, Poll::Ready(reply))) => Ok(reply),
            Err(panic) => Err(panic),
        };
        Started::Done(finished(&mut permit, &mut finish, reply))
    }
}

/// A call whose handler runs: a future of the finished call, polled inside the call's span.
pub(super) struct Running<'a> {
    handler: BoxFuture<'a, Reply>,
    /// The call's context, current whenever the handler runs or is dropped unfinished (as a
    /// task-local scope around the handler would make it, without boxing the handler a second
    /// time).
    context: Option<Context>,
    span: Span,
    finish: Finish,
    /// The call's deadline, if it has one, under the server's watch: joined when the handler
    /// first waits (most finish at their first poll and never do).
    watch: Option<Watch<'a>>,
    /// Its place under the request limits, if any is set (boxed: servers without limits keep
    /// their calls' futures as small as before).
    permit: Option<Box<Permit<'a>>>,
}

impl Future for Running<'_> {
    type Output = Finished;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Finished> {
        let this = &mut *self;
        let entered = this.span.enter();
        let (handler, context) = (&mut this.handler, &this.context);
        let poll = || match context {
            None => handler.as_mut().poll(cx),
            Some(context) => context.clone().sync_scope(|| handler.as_mut().poll(cx)),
        };
        let reply = match catch_unwind(AssertUnwindSafe(poll)) {
            Ok(Poll::Pending) => {
                drop(entered);
                return this.waiting(cx);
            }
            // Finished: its future has returned, and is dropped without the context.
            Ok(Poll::Ready(reply)) => {
                this.context = None;
                Ok(reply)
            }
            Err(panic) => Err(panic),
        };
        Poll::Ready(finished(&mut this.permit, &mut this.finish, reply))
    }
}

impl Running<'_> {
    /// After the handler's poll said it waits: under the call's deadline, the watch wakes the
    /// call when it passes, and then the handler's future is dropped (cancelling its work).
    fn waiting(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Finished> {
        let Some(watch) = &mut self.watch else { return Poll::Pending };
        std::task::ready!(watch.poll_expired(cx));
        let _entered = self.span.enter();
        let deadline = watch.deadline();
        drop_handler(&mut self.handler, self.context.as_ref());
        self.watch = None;
        let reply = Ok(self.finish.timed_out(deadline));
        Poll::Ready(finished(&mut self.permit, &mut self.finish, reply))
    }
}

/// The finished call of `reply` (or of the handler's panic), its `permit` released.
fn finished(
    permit: &mut Option<Box<Permit<'_>>>,
    finish: &mut Finish,
    reply: Result<Reply, Box<dyn Any + Send>>,
) -> Finished {
    if let Some(permit) = permit.take() {
        permit.finish(reply.is_err());
    }
    finish.finish(reply)
}

/// Drops a handler's future, with the call's context current, leaving one that never finishes in
/// its place (a box of nothing: no allocation).
fn drop_handler(handler: &mut BoxFuture<'_, Reply>, context: Option<&Context>) {
    let handler = std::mem::replace(handler, Box::pin(std::future::pending()));
    match context {
        None => drop(handler),
        Some(context) => context.clone().sync_scope(|| drop(handler)),
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.context.is_some() {
            drop_handler(&mut self.handler, self.context.as_ref());
        }
    }
}

/// What finishing a routed call needs once its request went to the handler.
struct Finish {
    /// The header the caller sent.
    sent: MessageHeader,
    /// Whether the handler saw another name than the caller sent (a `Service:` prefix), so its
    /// reply must be renamed.
    renamed: bool,
    protocol: Protocol,
    limits: Limits,
    series: Option<SeriesId>,
    received: Instant,
    header: Option<HeaderCall>,
}

impl Finish {
    /// The finished call, from what the handler returned or the panic it raised.
    fn finish(&mut self, reply: Result<Reply, Box<dyn Any + Send>>) -> Finished {
        let sent = &self.sent;
        let reply = match reply {
            // Replies made by the request carry the name as sent already; another (a
            // hand-written `Dispatch`'s own) is renamed.
            Ok(Reply::Message(message))
                if self.renamed
                    && crate::client::header::peek(self.protocol, &message)
                        .is_none_or(|reply| reply.name != sent.name.as_bytes()) =>
            {
                match rename_message(self.protocol, message, &sent.name, self.limits) {
                    Ok(message) => Reply::Message(message),
                    Err(e) => {
                        error!(method = %shown_method(&sent.name), error = %e, "the handler's reply does not decode");
                        self.failed(Error::handler(format!("the reply could not be re-addressed: {e}")))
                    }
                }
            }
            Ok(reply) => reply,
            Err(panic) => {
                let what = panic_message(panic.as_ref());
                error!(method = %shown_method(&sent.name), panic = %what, "handler panicked");
                self.failed(Error::handler(format!("the handler of `{}` panicked", sent.name)))
            }
        };
        let counted = self.series.map(|series| {
            let outcome = match &reply {
                Reply::Message(message) => Outcome::of_reply(self.protocol, message),
                Reply::None => Outcome::Ok,
            };
            Counted { series, outcome, received: self.received }
        });
        Finished { reply, counted, header: self.header.take() }
    }

    /// The `Timeout` reply to a call whose deadline passed (the reply of a oneway call: none).
    fn timed_out(&self, deadline: Instant) -> Reply {
        if self.sent.kind == MessageType::Oneway {
            return Reply::None;
        }
        let budget = deadline.saturating_duration_since(self.received).as_millis();
        debug!(method = %shown_method(&self.sent.name), budget_ms = %budget, "the call's deadline passed");
        let message = format!("the deadline of `{}` ({budget} ms) passed", shown_method(&self.sent.name));
        let exception = ApplicationException::new(ApplicationExceptionKind::Timeout, message);
        Request::new(self.protocol, self.sent.clone(), Bytes::new(), self.limits).exception(&exception)
    }

    /// The `InternalError` reply to a call whose handler failed.
    fn failed(&self, error: Error) -> Reply {
        Request::new(self.protocol, self.sent.clone(), Bytes::new(), self.limits).internal_error(&error)
    }
}

/// A panic's message, if it has one.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s,
        _ => "(no message)",
    }
}
