//! Writing messages: framing them, and the buffer a connection's outgoing messages gather in
//! until the socket takes them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::AsyncWrite;

use super::Framing;
use super::error::WireError;
use super::header::{self, HeaderFrame};
use crate::service::Protocol;

/// An emptied buffer larger than this (grown for one large message) is given back.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Appends `message` to `out` as it goes on the wire: after its 4-byte big-endian length when
/// framed (a header frame too), as it is when not.
pub fn encode_frame(framing: Framing, message: &[u8], out: &mut BytesMut) -> Result<(), WireError> {
    if framing.has_length() {
        let len = i32::try_from(message.len()).map_err(|_| WireError::Unframeable { len: message.len() })?;
        out.reserve(4 + message.len());
        out.put_i32(len);
    }
    out.extend_from_slice(message);
    Ok(())
}

/// A connection's outgoing side: messages are framed into one buffer as they come and written
/// with as few system calls as the socket allows (everything queued goes in one write).
///
/// Nothing here waits: [`FrameWriter::poll_flush`] writes what the socket takes and registers
/// for writability if it takes less, so one task can read, run calls and write.
#[derive(Debug)]
pub(crate) struct FrameWriter<W> {
    io: W,
    /// Framed messages not yet written.
    queued: BytesMut,
    framing: Framing,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer of `framing` messages to `io`.
    pub(crate) fn new(io: W, framing: Framing) -> Self {
        // Grown as needed, so an idle connection holds no buffer.
        FrameWriter { io, queued: BytesMut::new(), framing }
    }

    /// Queues `message`; [`FrameWriter::poll_flush`] writes it.
    pub(crate) fn push(&mut self, message: &[u8]) -> Result<(), WireError> {
        encode_frame(self.framing, message, &mut self.queued)
    }

    /// Queues `message` in a header frame described by `frame`, encoded in place after its
    /// length.
    pub(crate) fn push_header(&mut self, frame: &HeaderFrame, message: &[u8]) -> Result<(), WireError> {
        self.push_framed(|out| header::encode(frame, message, out))
    }

    /// [`FrameWriter::push_header`] for a frame without transforms: `message` in a header frame
    /// of `protocol`, `flags` and `seqid` with the headers `pairs` (no frame built to describe it).
    pub(crate) fn push_plain_header<'a>(
        &mut self,
        protocol: Protocol,
        flags: u16,
        seqid: i32,
        pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
        message: &[u8],
    ) -> Result<(), WireError> {
        self.push_framed(|out| header::encode_plain(protocol, flags, seqid, pairs, message, out))
    }

    /// Queues what `encode` appends, after its length.
    fn push_framed(
        &mut self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), header::HeaderError>,
    ) -> Result<(), WireError> {
        let start = self.queued.len();
        self.queued.put_u32(0);
        if let Err(e) = encode(&mut self.queued) {
            self.queued.truncate(start);
            return Err(e.into());
        }
        let len = self.queued.len() - start - 4;
        let Ok(len) = i32::try_from(len) else {
            self.queued.truncate(start);
            return Err(WireError::Unframeable { len });
        };
        self.queued[start..start + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Bytes queued and not written yet.
    pub(crate) fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Writes what is queued: `Ready(Ok)` once all of it is written; `Pending` (the task is
    /// woken when the socket takes more) while the socket is full.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.queued.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.queued))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.queued.advance(n);
        }
        if self.queued.capacity() > KEEP_CAPACITY {
            self.queued = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what is queued, then shuts the write side down, so the peer sees the end of the
    /// stream.
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_flush(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn writes_queued_messages_framed_then_ends_the_stream() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut writer = FrameWriter::new(client, Framing::Framed);
        for m in [&b"ab"[..], b"", b"cde"] {
            writer.push(m).unwrap();
        }
        assert_eq!(writer.queued(), 17);
        poll_fn(|cx| writer.poll_shutdown(cx)).await.unwrap();
        assert_eq!(writer.queued(), 0);
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, [0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 0, 3, b'c', b'd', b'e']);
    }

    #[tokio::test]
    async fn unframed_messages_go_as_they_are() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut writer = FrameWriter::new(client, Framing::Unframed);
        writer.push(b"xyz").unwrap();
        poll_fn(|cx| writer.poll_shutdown(cx)).await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"xyz");
    }

    #[tokio::test]
    async fn a_full_socket_keeps_the_rest_queued_until_it_drains() {
        let (client, mut server) = tokio::io::duplex(8);
        let mut writer = FrameWriter::new(client, Framing::Unframed);
        let big = Bytes::from(vec![7u8; 100]);
        writer.push(&big).unwrap();
        let flushed = poll_fn(|cx| Poll::Ready(writer.poll_flush(cx).is_ready())).await;
        assert!(!flushed, "8 bytes of room cannot take 100");
        assert_eq!(writer.queued(), 92);
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.map(|_| got)
        });
        poll_fn(|cx| writer.poll_shutdown(cx)).await.unwrap();
        assert_eq!(reading.await.unwrap().unwrap(), big);
    }
}
