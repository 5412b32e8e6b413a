//! What a client sends with its calls.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::current::Context;
use super::names;
use super::priority::Priority;
use crate::metrics::RequestId;
use crate::transport::header::Headers;

/// Headers a client sends with calls: set on a channel with
/// [`Channel::with_metadata`](crate::client::Channel::with_metadata), for every call made through
/// it (take a channel per call for per-call values: clones are cheap).
///
/// Sent only to peers that speak THeader (probe providers that advertise it, or a transport built
/// with `header(true)`); other peers get the plain call. Calls made while a handler runs inherit
/// its request id, priority and trace context unless set here, and their deadline is the sooner
/// of this budget and the time the handler has left. A call with no request id gets its span's
/// (or a new one).
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    headers: Headers,
    budget: Option<Duration>,
    /// The headers of the last reply to a call made with this metadata (or a clone of it).
    reply: Arc<Mutex<Option<Headers>>>,
}

impl Metadata {
    /// No headers.
    pub fn new() -> Self {
        Metadata::default()
    }

    /// The caller's appkey and service ([`names::CALLER_APPKEY`], [`names::CALLER_SERVICE`]).
    pub fn caller(self, appkey: &str, service: &str) -> Self {
        self.header(names::CALLER_APPKEY, appkey.to_owned()).header(names::CALLER_SERVICE, service.to_owned())
    }

    /// The request id ([`names::REQUEST_ID`]); by default the call span's.
    pub fn request_id(self, id: impl Into<Bytes>) -> Self {
        self.header(names::REQUEST_ID, id)
    }

    /// The time the server has for the call, sent as the milliseconds left when it is sent
    /// ([`names::DEADLINE_MS`]).
    pub fn deadline(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The call's priority ([`names::PRIORITY`]).
    pub fn priority(self, priority: Priority) -> Self {
        self.header(names::PRIORITY, priority.to_string())
    }

    /// W3C `traceparent`.
    pub fn traceparent(self, value: impl Into<Bytes>) -> Self {
        self.header(names::TRACEPARENT, value)
    }

    /// W3C `tracestate`.
    pub fn tracestate(self, value: impl Into<Bytes>) -> Self {
        self.header(names::TRACESTATE, value)
    }

    /// Any header (a user key-value, or one of [`names`]).
    pub fn header(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        self.headers.insert(key, value);
        self
    }

    /// The headers set (the deadline is added when a call is sent).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The deadline budget set.
    pub fn budget(&self) -> Option<Duration> {
        self.budget
    }

    /// The headers of the last reply that came in a header frame to a call made with this
    /// metadata or a clone of it (with concurrent calls, whichever finished last).
    pub fn reply_headers(&self) -> Option<Headers> {
        self.reply.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn record_reply(&self, headers: Headers) {
        *self.reply.lock().unwrap_or_else(PoisonError::into_inner) = Some(headers);
    }

    /// The headers of a call sent now: `metadata`'s, what the handler running this task passes
    /// on (request id, priority, trace context) unless set there, the milliseconds left before
    /// `deadline` (rounded up: a call is not sent once it passed), and a request id (`span_id`, or
    /// a new one) if none is set.
    pub(crate) fn outgoing(
        metadata: Option<&Metadata>,
        span_id: Option<RequestId>,
        deadline: Option<Instant>,
    ) -> Headers {
        let mut out = metadata.map(|m| m.headers.clone()).unwrap_or_default();
        // The trace of the span the call is made from, unless the metadata names one.
        #[cfg(feature = "otel")]
        if !out.contains(names::TRACEPARENT) {
            crate::telemetry::inject(&mut out);
        }
        if let Some(cx) = Context::current() {
            for key in [names::REQUEST_ID, names::PRIORITY, names::TRACEPARENT, names::TRACESTATE] {
                if let Some(value) = cx.headers().get_bytes(key.as_bytes()) {
                    out.insert_if_absent(key, Bytes::copy_from_slice(value));
                }
            }
        }
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(super::now());
            out.insert(names::DEADLINE_MS, super::ceil_millis(left).to_string());
        }
        if !out.contains(names::REQUEST_ID) {
            out.insert(names::REQUEST_ID, span_id.unwrap_or_else(RequestId::next).to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_headers_get_a_request_id_and_the_deadline() {
        let m = Metadata::new().caller("a", "S").deadline(Duration::from_millis(900)).header("x", "1");
        let deadline = Instant::now() + m.budget().unwrap();
        let out = Metadata::outgoing(Some(&m), None, Some(deadline));
        assert_eq!(out.get(names::CALLER_APPKEY), Some("a"));
        assert_eq!(out.get(names::DEADLINE_MS), Some("900"), "rounded up");
        assert!(out.get(names::REQUEST_ID).is_some_and(|id| !id.is_empty()));
        assert_eq!(Metadata::outgoing(None, None, None).len(), 1);
        let passed = Metadata::outgoing(None, None, Some(Instant::now()));
        assert_eq!(passed.get(names::DEADLINE_MS), Some("0"));
    }

    #[test]
    fn the_time_left_rounds_up_to_whole_milliseconds() {
        for nanos in [0u64, 1, 999_999, 1_000_000, 1_000_001, 1_500_000_000, 86_400_000_000_123] {
            let time = Duration::from_nanos(nanos);
            assert_eq!(u128::from(super::super::ceil_millis(time)), time.as_nanos().div_ceil(1_000_000));
        }
        assert_eq!(super::super::ceil_millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn calls_made_by_a_handler_inherit_its_context() {
        let inbound: Headers = [
            (names::REQUEST_ID, "up-1"),
            (names::DEADLINE_MS, "100"),
            (names::TRACEPARENT, "00-aa-bb-01"),
            (names::CALLER_APPKEY, "upstream"),
        ]
        .into_iter()
        .collect();
        let cx = Context::new(inbound, Instant::now());
        let m = Metadata::new().caller("me", "Mine");
        let out = cx.sync_scope(|| Metadata::outgoing(Some(&m), None, None));
        assert_eq!(out.get(names::REQUEST_ID), Some("up-1"));
        assert_eq!(out.get(names::TRACEPARENT), Some("00-aa-bb-01"));
        assert_eq!(out.get(names::CALLER_APPKEY), Some("me"));
    }
}
