//! THeader on the client: a call goes in a header frame carrying its [`Metadata`] (and what the
//! handler running this task passes on), and its reply comes out of one, whose headers are kept
//! for [`Metadata::reply_headers`]. Used by a [`TcpTransport`](super::TcpTransport) built with
//! `header(true)`, which the cluster transport does for providers that advertise THeader.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

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
        let CallHeaders { metadata, request_id, deadline } = call;
        let renamed;
        let message = match prefix {
            Some(service) => {
                renamed = rename(wire, message, service).map_err(Error::BadReply)?;
                &renamed
            }
            None => message,
        };
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

impl Sent {
    /// The reply message inside `reply`, a header frame of `wire`'s protocol; its headers go to
    /// the call's metadata.
    pub(super) fn unwrap(
        self,
        reply: Option<Bytes>,
        wire: WireFormat,
        limits: Limits,
    ) -> Result<Option<Bytes>, Error> {
        let Some(reply) = reply else { return Ok(None) };
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
