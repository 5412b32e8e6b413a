//! THeader on the client: a call goes in a header frame carrying its [`Metadata`] (and what the
//! handler running this task passes on), and its reply comes out of one, whose headers are kept
//! for [`Metadata::reply_headers`]. Used by a [`TcpTransport`](super::TcpTransport) built with
//! `header(true)`, which the cluster transport does for providers that advertise THeader.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::header::peek;
use super::mux::rename;
use crate::codec::Limits;
use crate::context::Metadata;
use crate::context::names::{DEADLINE_MS, PRIORITY, REQUEST_ID, TRACEPARENT, TRACESTATE};
use crate::error::Error;
use crate::metrics::RequestId;
use crate::transport::header::{self, HeaderFrame, Transform};
use crate::transport::{WireError, WireFormat};

/// How a transport wraps its calls.
#[derive(Debug, Clone, Default)]
pub(super) struct HeaderOptions {
    /// Applied to every call's payload (the server answers with the same).
    pub(super) transforms: Vec<Transform>,
    /// Signs the caller token every call carries, when the client holds an app credential.
    pub(super) caller: Option<Arc<crate::security::token::Signer>>,
}

/// What a call's headers are made of.
pub(super) struct CallHeaders {
    /// The channel's metadata.
    pub(super) metadata: Option<Arc<Metadata>>,
    /// The call span's request id (sent if the metadata sets none).
    pub(super) request_id: Option<RequestId>,
    /// The call's deadline (the time left is sent).
    pub(super) deadline: Instant,
    /// When the transport took the call (the time left counts from it).
    pub(super) now: Instant,
}

/// What reading the reply to a call sent in a header frame needs.
pub(super) struct Sent {
    metadata: Option<Arc<Metadata>>,
}

impl HeaderOptions {
    /// `message` (named `prefix:name` when `prefix` is given) in a header frame with seqid
    /// `seqid` and the call's headers, ready to be framed.
    pub(super) fn wrap(
        &self,
        wire: WireFormat,
        seqid: i32,
        message: &Bytes,
        prefix: Option<&str>,
        call: CallHeaders,
    ) -> Result<(Bytes, Sent), Error> {
        let CallHeaders { metadata, request_id, deadline, now } = call;
        let message = &named(wire, message.clone(), prefix)?;
        if self.is_plain(metadata.as_deref()) {
            let served = crate::context::Context::current();
            let headers =
                PlainHeaders::new(wire, seqid, message.len(), request_id, served.as_ref(), deadline, now)?;
            let frame = crate::codec::carve(message.len() + 64, |out| {
                headers.encode(wire, seqid, message, false, out)
            })
            .map_err(|e| wire_error(e.into()))?;
            return Ok((frame, Sent::plain()));
        }
        let frame = HeaderFrame {
            seqid,
            flags: 0,
            protocol: wire.protocol,
            transforms: self.transforms.clone(),
            headers: Metadata::outgoing(metadata.as_deref(), request_id, Some(deadline)),
        };
        let mut frame = frame;
        if let Some(signer) = &self.caller {
            let names = crate::context::names::CALLER_APPKEY;
            frame.headers.insert_if_absent(names, signer.appkey().to_owned());
            frame.headers.insert(crate::context::names::CALLER_TOKEN, signer.token());
        }
        let mut out = BytesMut::with_capacity(message.len() + 128);
        header::encode(&frame, message, &mut out).map_err(|e| wire_error(e.into()))?;
        Ok((out.freeze(), Sent { metadata }))
    }
}

/// `message`, named `prefix:name` when `prefix` is given: as it is if so named already (a channel
/// encodes calls so when every node it may reach wants it), else renamed by the codec.
pub(super) fn named(wire: WireFormat, message: Bytes, prefix: Option<&str>) -> Result<Bytes, Error> {
    match prefix {
        Some(service) if !peek(wire.protocol, &message).is_some_and(|h| h.has_prefix(service)) => {
            rename(wire, &message, service).map_err(Error::BadReply)
        }
        _ => Ok(message),
    }
}

impl HeaderOptions {
    /// Whether a call carrying `metadata` goes in a plain frame: no transforms, no caller token,
    /// no metadata (nor the trace context `otel` adds), so its headers are [`PlainHeaders`].
    pub(super) fn is_plain(&self, metadata: Option<&Metadata>) -> bool {
        self.transforms.is_empty() && self.caller.is_none() && metadata.is_none() && !cfg!(feature = "otel")
    }
}

/// The headers [`Metadata::outgoing`] makes for a call without metadata (what a discovered call
/// to a probe node is, as a rule): the propagated headers of the call this task serves, the time
/// left and a request id, without a map of headers or a string per header. A multiplexed call's
/// are made before its connection's lock is taken, and written with its message under it.
pub(super) enum PlainHeaders {
    /// The frame's start, built at once (the usual few short headers).
    Built(header::FrameHead),
    /// Headers too long for that (a served call's trace context), written one by one.
    Long(Long),
}

/// What [`PlainHeaders::Long`] writes.
pub(super) struct Long {
    /// The context of the call this task serves: its propagated headers go on.
    served: crate::context::Context,
    /// The time left, in milliseconds, as decimal digits.
    millis: [u8; 20],
    millis_len: u8,
    /// The request id to send, unless the served call has one.
    id: [u8; 25],
    id_len: u8,
}

/// The headers a served call passes on to the calls its handler makes.
const PROPAGATED: [&str; 4] = [REQUEST_ID, PRIORITY, TRACEPARENT, TRACESTATE];

impl PlainHeaders {
    /// The headers of call `seqid` (a message of `message_len` bytes) with `request_id` (a new one
    /// if `None`, unless the call `served` has one) and `deadline`, taken at `now`.
    pub(super) fn new(
        wire: WireFormat,
        seqid: i32,
        message_len: usize,
        request_id: Option<RequestId>,
        served: Option<&crate::context::Context>,
        deadline: Instant,
        now: Instant,
    ) -> Result<Self, Error> {
        let left = crate::context::ceil_millis(deadline.saturating_duration_since(now));
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(left).as_bytes();
        let mut id = [0u8; 25];
        let has_id = served.is_some_and(|cx| cx.headers().get_bytes(REQUEST_ID.as_bytes()).is_some());
        let id_len = if has_id { 0 } else { request_id.unwrap_or_else(RequestId::next).write_to(&mut id) };
        // In the order `Metadata::outgoing` has them (the tests compare the two).
        let mut head = header::FrameHead::new(wire.protocol, 0, seqid);
        let propagated = served.is_none_or(|cx| {
            PROPAGATED.iter().all(|key| match cx.headers().get_bytes(key.as_bytes()) {
                Some(value) => head.pair(key.as_bytes(), value),
                None => true,
            })
        });
        let fits = propagated
            && head.pair(DEADLINE_MS.as_bytes(), digits)
            && (id_len == 0 || head.pair(REQUEST_ID.as_bytes(), &id[..id_len]));
        // (A call of no served one always fits: the time left and an id are short.)
        let served = match served {
            Some(served) if !fits => served.clone(),
            _ => {
                head.finish(message_len).map_err(|e| wire_error(e.into()))?;
                return Ok(PlainHeaders::Built(head));
            }
        };
        let mut millis = [0u8; 20];
        millis[..digits.len()].copy_from_slice(digits);
        let (millis_len, id_len) = (digits.len() as u8, id_len as u8);
        Ok(PlainHeaders::Long(Long { served, millis, millis_len, id, id_len }))
    }

    /// Appends the message these headers were made for (`seqid`, `message`) in its header frame
    /// of `wire`'s protocol to `out`, after the frame's length if `framed`.
    pub(super) fn encode(
        &self,
        wire: WireFormat,
        seqid: i32,
        message: &[u8],
        framed: bool,
        out: &mut BytesMut,
    ) -> Result<(), header::HeaderError> {
        let long = match self {
            PlainHeaders::Built(head) => {
                let head = head.as_bytes();
                debug_assert_eq!(
                    u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize,
                    head.len() - 4 + message.len(),
                    "the headers were made for this message"
                );
                let head = if framed { head } else { &head[4..] };
                out.reserve(head.len() + message.len());
                out.extend_from_slice(head);
                out.extend_from_slice(message);
                return Ok(());
            }
            PlainHeaders::Long(long) => long,
        };
        // As `new` tried them.
        let mut pairs: [(&[u8], &[u8]); 6] = [(&[], &[]); 6];
        let mut count = 0;
        for key in PROPAGATED {
            if let Some(value) = long.served.headers().get_bytes(key.as_bytes()) {
                pairs[count] = (key.as_bytes(), value);
                count += 1;
            }
        }
        pairs[count] = (DEADLINE_MS.as_bytes(), &long.millis[..usize::from(long.millis_len)]);
        count += 1;
        if long.id_len > 0 {
            pairs[count] = (REQUEST_ID.as_bytes(), &long.id[..usize::from(long.id_len)]);
            count += 1;
        }
        let pairs = pairs[..count].iter().copied();
        header::encode_plain_into(wire.protocol, 0, seqid, pairs, message, framed, out)
    }
}

impl Sent {
    /// What a call sent in a plain frame ([`PlainHeaders`]) needs to read its reply.
    pub(super) fn plain() -> Sent {
        Sent { metadata: None }
    }

    /// The reply message inside `reply`, a header frame of `wire`'s protocol; its headers go to
    /// the call's metadata.
    pub(super) fn unwrap(
        self,
        reply: Option<Bytes>,
        wire: WireFormat,
        limits: Limits,
    ) -> Result<Option<Bytes>, Error> {
        let Some(mut reply) = reply else { return Ok(None) };
        // Nobody reads the reply's headers: the payload is found without them.
        if self.metadata.is_none()
            && let Some((protocol, at)) = header::plain_payload_at(&reply)
            && protocol == wire.protocol
        {
            bytes::Buf::advance(&mut reply, at);
            return Ok(Some(reply));
        }
        let (frame, payload) = header::decode(reply, limits).map_err(|e| wire_error(e.into()))?;
        if frame.protocol != wire.protocol {
            let why = format!("a {} reply to a {} call", frame.protocol.as_str(), wire.protocol.as_str());
            return Err(Error::BadReply(why));
        }
        if let Some(metadata) = self.metadata {
            metadata.record_reply(frame.headers);
        }
        Ok(Some(payload))
    }
}

/// The seqid of a reply in a header frame (for matching it to its call).
pub(super) fn reply_seqid(frame: &[u8]) -> Option<i32> {
    header::frame_seqid(frame)
}

fn wire_error(e: WireError) -> Error {
    Error::Protocol(crate::codec::ProtocolError::invalid_data(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::codec::{ApplicationException, MessageHeader, MessageType};
    use crate::context::names;
    use crate::service::Protocol;
    use crate::transport::Framing;

    fn call(protocol: Protocol, name: &'static str) -> Bytes {
        let mut buf = BytesMut::new();
        let header = MessageHeader::new(name, MessageType::Call, 3);
        assert!(
            protocol.encode_message(&header, &ApplicationException::unknown_method("x"), &mut buf).is_ok()
        );
        buf.freeze()
    }

    #[test]
    fn a_call_without_metadata_carries_what_the_metadata_path_sends() {
        for protocol in [Protocol::Binary, Protocol::Compact] {
            let wire = WireFormat::new(protocol, Framing::Header);
            let options = HeaderOptions::default();
            let now = Instant::now();
            let deadline = now + Duration::from_millis(1500);
            let id = RequestId::next();
            for name in ["echo", "Echo:echo"] {
                let about = CallHeaders { metadata: None, request_id: Some(id), deadline, now };
                let (frame, sent) =
                    options.wrap(wire, 3, &call(protocol, name), Some("Echo"), about).unwrap();
                let (got, payload) = header::decode(frame, Limits::DEFAULT).unwrap();
                // The slow path's headers for the same call (its time left counts from its own clock).
                let expected = Metadata::outgoing(None, Some(id), Some(deadline));
                let keys = |h: &header::Headers| h.iter().map(|(k, _)| k.to_vec()).collect::<Vec<_>>();
                assert_eq!(keys(&got.headers), keys(&expected));
                assert_eq!(got.headers.get(names::REQUEST_ID), Some(id.to_string().as_str()));
                assert_eq!(got.headers.get(names::DEADLINE_MS), Some("1500"));
                assert_eq!((got.seqid, got.protocol), (3, protocol));
                // Named `Echo:echo` whether it came so or was renamed.
                assert_eq!(payload, call(protocol, "Echo:echo"));
                // The reply comes out of its frame the same way.
                let mut reply = BytesMut::new();
                let mut frame = header::HeaderFrame::new(protocol, 3);
                frame.headers.insert("k", "v");
                header::encode(&frame, b"the reply", &mut reply).unwrap();
                let back = sent.unwrap(Some(reply.freeze()), wire, Limits::DEFAULT).unwrap();
                assert_eq!(back.as_deref(), Some(&b"the reply"[..]));
            }
        }
    }

    #[test]
    fn a_handler_s_call_carries_its_propagated_headers() {
        let wire = WireFormat::new(Protocol::Compact, Framing::Header);
        for tracestate in ["a=1".to_owned(), "k=".to_owned() + &"v".repeat(300)] {
            let mut inbound = header::Headers::new();
            inbound.insert(names::REQUEST_ID, "up-1");
            inbound.insert(names::PRIORITY, "critical");
            inbound.insert(names::TRACEPARENT, "00-aa-bb-01");
            inbound.insert(names::TRACESTATE, tracestate.clone());
            let cx = crate::context::Context::new(inbound, Instant::now());
            let now = Instant::now();
            let deadline = now + Duration::from_millis(80);
            let (headers, expected) = cx.sync_scope(|| {
                let served = crate::context::Context::current();
                let headers = PlainHeaders::new(wire, 4, 3, None, served.as_ref(), deadline, now).unwrap();
                (headers, Metadata::outgoing(None, None, Some(deadline)))
            });
            assert_eq!(matches!(headers, PlainHeaders::Built(_)), tracestate.len() < 100, "{tracestate}");
            let mut frame = BytesMut::new();
            headers.encode(wire, 4, b"abc", true, &mut frame).unwrap();
            assert_eq!(u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize, frame.len() - 4);
            let (got, payload) = header::decode(frame.freeze().slice(4..), Limits::DEFAULT).unwrap();
            assert_eq!((got.seqid, &payload[..]), (4, &b"abc"[..]));
            let pairs = |h: &header::Headers| {
                let mut pairs: Vec<_> = h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                pairs.sort();
                pairs
            };
            // The time left is the slow path's, counted from its own clock: compared apart.
            let without_time = |h: &header::Headers| {
                pairs(h).into_iter().filter(|(k, _)| k != names::DEADLINE_MS.as_bytes()).collect::<Vec<_>>()
            };
            assert_eq!(without_time(&got.headers), without_time(&expected));
            assert_eq!(got.headers.get(names::REQUEST_ID), Some("up-1"), "the served call's id goes on");
            assert_eq!(got.headers.get(names::DEADLINE_MS), Some("80"));
        }
    }

    #[test]
    fn a_reply_of_another_protocol_is_an_error_on_the_fast_path_too() {
        let wire = WireFormat::new(Protocol::Binary, Framing::Header);
        let mut reply = BytesMut::new();
        header::encode(&header::HeaderFrame::new(Protocol::Compact, 1), b"x", &mut reply).unwrap();
        let sent = Sent { metadata: None };
        assert!(matches!(sent.unwrap(Some(reply.freeze()), wire, Limits::DEFAULT), Err(Error::BadReply(_))));
    }
}
