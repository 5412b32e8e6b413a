//! A call that came in a header frame (THeader): its context while the handler runs, and the
//! header frame its reply goes back in.
//!
//! The reply mirrors the request's frame (seqid, flags, protocol and transforms, as Apache's C++
//! server does) and carries the headers the handler set with
//! [`Context::set_reply_header`](crate::context::Context::set_reply_header).

use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWrite;

use crate::context::{Arrival, Context};
use crate::service::Protocol;
use crate::transport::header::{HeaderFrame, Transform};
use crate::transport::{FrameWriter, WireError};

/// What the reply to a header call needs, kept with the call (not boxed: a discovered call to a
/// probe node is a header call, and the box was one more allocation per call). The request's
/// headers are in its context.
#[derive(Debug)]
pub(super) struct HeaderCall {
    /// The request frame's seqid, flags, protocol and transforms, for the reply's frame.
    seqid: i32,
    flags: u16,
    protocol: Protocol,
    transforms: Vec<Transform>,
    pub(super) context: Context,
}

impl HeaderCall {
    /// The call of `frame` (whose headers said `arrival`), received at `received` on a
    /// connection whose TLS client certificate names `tls_appkey`.
    pub(super) fn new(
        frame: HeaderFrame,
        arrival: Arrival,
        received: Instant,
        tls_appkey: Option<&Arc<str>>,
    ) -> HeaderCall {
        let HeaderFrame { seqid, flags, protocol, transforms, headers } = frame;
        let context = Context::arrived(headers, received, arrival, tls_appkey.cloned());
        HeaderCall { seqid, flags, protocol, transforms, context }
    }

    /// The protocol of the call's message.
    pub(super) fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Queues `reply` in a header frame like the request's, with the reply headers set.
    pub(super) fn push_reply<W: AsyncWrite + Unpin>(
        &self,
        reply: &[u8],
        writer: &mut FrameWriter<W>,
    ) -> Result<(), WireError> {
        let headers = self.context.take_reply_headers();
        if self.transforms.is_empty() {
            let (protocol, flags, seqid) = (self.protocol, self.flags, self.seqid);
            return match &headers {
                None => writer.push_plain_header(protocol, flags, seqid, std::iter::empty(), reply),
                Some(headers) => writer.push_plain_header(protocol, flags, seqid, headers.iter(), reply),
            };
        }
        let frame = HeaderFrame {
            seqid: self.seqid,
            flags: self.flags,
            protocol: self.protocol,
            transforms: self.transforms.clone(),
            headers: headers.unwrap_or_default(),
        };
        writer.push_header(&frame, reply)
    }
}
