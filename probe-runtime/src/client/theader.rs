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
        let renamed;
        let message = match prefix {
            // A channel encodes the call with the prefix when every node it may reach wants it.
            Some(service) if !peek(wire.protocol, message).is_some_and(|h| h.has_prefix(service)) => {
                renamed = rename(wire, message, service).map_err(Error::BadReply)?;
                &renamed
            }
            _ => message,
        };
        if self.transforms.is_empty()
            && self.caller.is_none()
            && metadata.is_none()
            && !cfg!(feature = "otel")
        {
            let frame = wrap_plain(wire, seqid, message, request_id, deadline, now)?;
            return Ok((frame, Sent { metadata: None }));
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

/// [`HeaderOptions::wrap`] for a call without metadata, transforms or caller token (what a
/// discovered call to a probe node is, as a rule): the headers [`Metadata::outgoing`] makes for
/// it (the propagated headers of the call this task serves, the time left, a request id),
/// written with the frame straight into this thread's encode block, without a map of headers or
/// a string per header.
fn wrap_plain(
    wire: WireFormat,
    seqid: i32,
    message: &[u8],
    request_id: Option<RequestId>,
    deadline: Instant,
    now: Instant,
) -> Result<Bytes, Error> {
    use crate::context::names::{DEADLINE_MS, PRIORITY, REQUEST_ID, TRACEPARENT, TRACESTATE};
    let cx = crate::context::Context::current();
    let mut pairs: [(&[u8], &[u8]); 6] = [(&[], &[]); 6];
    let mut count = 0;
    let mut has_id = false;
    if let Some(cx) = &cx {
        for key in [REQUEST_ID, PRIORITY, TRACEPARENT, TRACESTATE] {
            if let Some(value) = cx.headers().get_bytes(key.as_bytes()) {
                pairs[count] = (key.as_bytes(), value);
                count += 1;
                has_id |= key == REQUEST_ID;
            }
        }
    }
    let left = deadline.saturating_duration_since(now).as_nanos().div_ceil(1_000_000);
    let mut millis = itoa::Buffer::new();
    pairs[count] =
        (DEADLINE_MS.as_bytes(), millis.format(u64::try_from(left).unwrap_or(u64::MAX)).as_bytes());
    count += 1;
    let mut id = [0u8; 25];
    if !has_id {
        let len = request_id.unwrap_or_else(RequestId::next).write_to(&mut id);
        pairs[count] = (REQUEST_ID.as_bytes(), &id[..len]);
        count += 1;
    }
    let pairs = pairs[..count].iter().copied();
    crate::codec::carve(message.len() + 64, |out| {
        header::encode_plain(wire.protocol, 0, seqid, pairs, message, out)
    })
    .map_err(|e| wire_error(e.into()))
}

impl Sent {
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
    fn a_reply_of_another_protocol_is_an_error_on_the_fast_path_too() {
        let wire = WireFormat::new(Protocol::Binary, Framing::Header);
        let mut reply = BytesMut::new();
        header::encode(&header::HeaderFrame::new(Protocol::Compact, 1), b"x", &mut reply).unwrap();
        let sent = Sent { metadata: None };
        assert!(matches!(sent.unwrap(Some(reply.freeze()), wire, Limits::DEFAULT), Err(Error::BadReply(_))));
    }
}
